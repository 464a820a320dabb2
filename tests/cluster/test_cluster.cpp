// \brief Cluster allocation's pieces: K-means recovers a known Gaussian mixture (adjusted Rand index), 2 thread ranks
// equal 1 rank, group statistics against float64 loops (with the fallback and the robust shift in closed form), and
// the distilled classifier on separable clusters.
#include <gtest/gtest.h>  // for TEST
#include <torch/torch.h>

#include <cmath>    // for std::sqrt
#include <mutex>    // for std::mutex
#include <numeric>  // for std::iota

#include "cluster/distill.h"      // for Student, distill
#include "cluster/group_stats.h"  // for group_stats, group_scores
#include "cluster/kmeans.h"       // for kmeans, adjusted_rand_index
#include "core/error.h"           // for DataError
#include "core/rng.h"             // for Rng
#include "thread_comm.h"          // for run_ranks

using namespace dfcl;

namespace {

// n points from k spherical Gaussians (sd 1) whose centres lie `sep` apart on average in d dimensions.
struct Mixture {
  at::Tensor x;
  std::vector<int32_t> truth;
};
Mixture mixture(int64_t n, int k, int d, double sep, uint64_t seed) {
  Rng g(seed, 3);
  std::vector<double> centre(size_t(k * d));
  for (auto& c : centre) c = sep * g.normal();
  Mixture m;
  m.x = torch::empty({n, d}, torch::kFloat);
  float* p = m.x.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int c = int(g.uniform() * k);
    m.truth.push_back(c);
    for (int j = 0; j < d; ++j) p[i * d + j] = float(centre[size_t(c * d + j)] + g.normal());
  }
  return m;
}

std::vector<int64_t> iota_ids(int64_t n, int64_t from = 0) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), from);
  return v;
}

::testing::AssertionResult run_ok(int world, const std::function<void(dist::Communicator&)>& fn) {
  const auto err = test::run_ranks(world, fn);
  std::string msg;
  for (int r = 0; r < world; ++r)
    if (err[size_t(r)]) msg += "rank " + std::to_string(r) + ": " + test::error_text(err[size_t(r)]) + "\n";
  if (msg.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << msg;
}

}  // namespace

TEST(KMeans, AdjustedRandIndexOfKnownPartitions) {
  EXPECT_DOUBLE_EQ(cluster::adjusted_rand_index({0, 0, 1, 1, 2, 2}, {5, 5, 3, 3, 9, 9}), 1.0);  // renamed
  // Hubert and Arabie's example by hand: contingency [[2,1],[0,3]] -> ARI = (2 - 1.6) / (4.5 - 1.6)
  // sum C(nij,2) = 1 + 0 + 0 + 3 = 4 ... computed: a = (3,3), b = (2,4): sa = 6, sb = 1 + 6 = 7, expected = 42/15
  const double sij = 1 + 3, sa = 3 + 3, sb = 1 + 6, exp = sa * sb / 15, mx = 0.5 * (sa + sb);
  EXPECT_NEAR(cluster::adjusted_rand_index({0, 0, 0, 1, 1, 1}, {0, 0, 1, 1, 1, 1}), (sij - exp) / (mx - exp), 1e-15);
}

TEST(KMeans, RecoversAGaussianMixture) {
  for (uint64_t seed : {1, 2, 3})
    for (bool minibatch : {false, true}) {
      const Mixture m = mixture(12000, 8, 6, 6.0, seed);
      auto comm = dist::make_local_communicator();
      cluster::KMeansOptions o;
      o.k = 8, o.seed = seed, o.minibatch = minibatch, o.batch = 2000, o.max_iter = minibatch ? 60 : 100;
      const cluster::KMeansResult r = cluster::kmeans(m.x, iota_ids(12000), o, *comm);
      const double ari = cluster::adjusted_rand_index(r.label, m.truth);
      EXPECT_GE(ari, 0.95) << "seed " << seed << (minibatch ? " mini-batch" : " Lloyd");
      if (!minibatch) EXPECT_TRUE(r.converged);
      // Every row is at its nearest centroid.
      const std::vector<int32_t> again = cluster::nearest(m.x, r.centroids);
      EXPECT_EQ(again, r.label);
    }
}

TEST(KMeans, LloydCentroidsAreTheMeansOfTheirClusters) {
  const Mixture m = mixture(3000, 5, 4, 5.0, 9);
  auto comm = dist::make_local_communicator();
  cluster::KMeansOptions o;
  o.k = 5, o.max_iter = 300, o.tol = 0;
  const cluster::KMeansResult r = cluster::kmeans(m.x, iota_ids(3000), o, *comm);
  ASSERT_TRUE(r.converged);
  const at::Tensor x = m.x.to(torch::kDouble);
  double inertia = 0;
  for (int c = 0; c < 5; ++c) {
    std::vector<int64_t> rows;
    for (size_t i = 0; i < r.label.size(); ++i)
      if (r.label[i] == c) rows.push_back(int64_t(i));
    ASSERT_FALSE(rows.empty());
    const at::Tensor xc = x.index_select(0, torch::tensor(rows, torch::kLong));
    EXPECT_LT((xc.mean(0) - r.centroids[c]).abs().max().item<double>(), 1e-12);
    inertia += (xc - r.centroids[c]).pow(2).sum().item<double>();
  }
  EXPECT_NEAR(r.inertia, inertia, 1e-9 * inertia);
}

TEST(KMeans, TwoRanksEqualOneRank) {
  for (bool minibatch : {false, true}) {
    const Mixture m = mixture(6000, 6, 5, 0.8, 4);  // overlapping: the fit takes many iterations
    cluster::KMeansOptions o;
    o.k = 6, o.seed = 11, o.minibatch = minibatch, o.batch = 1500, o.max_iter = 40, o.sample = 4000, o.tol = 0;
    auto one_comm = dist::make_local_communicator();
    const cluster::KMeansResult one = cluster::kmeans(m.x, iota_ids(6000), o, *one_comm);
    EXPECT_GT(one.iterations, 5) << (minibatch ? "mini-batch" : "Lloyd");  // many reductions, each of which could drift
    std::vector<cluster::KMeansResult> parts(2);
    ASSERT_TRUE(run_ok(2, [&](dist::Communicator& c) {
      const int64_t lo = c.rank() == 0 ? 0 : 2500, n = c.rank() == 0 ? 2500 : 3500;  // unequal shares
      parts[size_t(c.rank())] = cluster::kmeans(m.x.narrow(0, lo, n), iota_ids(n, lo), o, c);
    }));
    for (int r = 0; r < 2; ++r) {
      EXPECT_EQ(parts[size_t(r)].iterations, one.iterations);
      EXPECT_EQ(parts[size_t(r)].fitted_rows, one.fitted_rows);
      EXPECT_LT((parts[size_t(r)].centroids - one.centroids).abs().max().item<double>(), 1e-9);
      EXPECT_NEAR(parts[size_t(r)].inertia, one.inertia, 1e-9 * one.inertia);
    }
    std::vector<int32_t> joined = parts[0].label;
    joined.insert(joined.end(), parts[1].label.begin(), parts[1].label.end());
    EXPECT_EQ(joined, one.label) << (minibatch ? "mini-batch" : "Lloyd");
    // the same seed gives the same fit; another seed, another start
    EXPECT_TRUE(at::equal(cluster::kmeans(m.x, iota_ids(6000), o, *one_comm).centroids, one.centroids));
  }
}

TEST(KMeans, AnEmptyClusterIsReseededWithTheFarthestPoint) {
  // Three separated clusters; a warm start with two centres on clusters 0 and 1 and the third far from every row:
  // the third gets no row, is moved to the sample point farthest from its centroid (in cluster 2), and the fit then
  // recovers all three. On 2 thread ranks the same.
  Rng g(17, 1);
  const double centre[3][2] = {{0, 0}, {20, 0}, {0, 20}};
  at::Tensor x = torch::empty({1500, 2}, torch::kFloat);
  std::vector<int32_t> truth;
  for (int64_t i = 0; i < 1500; ++i) {
    const int c = int(i % 3);
    truth.push_back(c);
    x[i][0] = float(centre[c][0] + g.normal()), x[i][1] = float(centre[c][1] + g.normal());
  }
  cluster::KMeansOptions o;
  o.k = 3;
  o.init = torch::tensor({0.0, 0.0, 20.0, 0.0, 1e4, 1e4}, torch::kDouble).view({3, 2});
  auto comm = dist::make_local_communicator();
  const cluster::KMeansResult r = cluster::kmeans(x, iota_ids(1500), o, *comm);
  EXPECT_EQ(r.reseeded, 1);
  EXPECT_TRUE(r.converged);
  EXPECT_GE(cluster::adjusted_rand_index(r.label, truth), 0.99);
  EXPECT_LT((r.centroids[2] - torch::tensor({0.0, 20.0}, torch::kDouble)).abs().max().item<double>(), 0.3);
  std::vector<cluster::KMeansResult> parts(2);
  ASSERT_TRUE(run_ok(2, [&](dist::Communicator& c) {
    parts[size_t(c.rank())] = cluster::kmeans(x.narrow(0, c.rank() * 700, c.rank() ? 800 : 700),
                                              iota_ids(c.rank() ? 800 : 700, c.rank() * 700), o, c);
  }));
  EXPECT_EQ(parts[1].reseeded, 1);
  EXPECT_LT((parts[1].centroids - r.centroids).abs().max().item<double>(), 1e-9);
}

TEST(KMeans, MoreClustersThanRowsIsAClearError) {
  auto comm = dist::make_local_communicator();
  cluster::KMeansOptions o;
  o.k = 20;
  try {
    cluster::kmeans(torch::randn({10, 3}), iota_ids(10), o, *comm);
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("cluster.k = 20 is larger than the number of rows clustered (10)"),
              std::string::npos)
        << e.what();
  }
}

TEST(KMeans, EveryRowItsOwnClusterWhenKEqualsRows) {
  // k = n distinct rows: k-means++ must pick each row once and every cluster holds one row (inertia 0).
  auto comm = dist::make_local_communicator();
  cluster::KMeansOptions o;
  o.k = 7;
  const at::Tensor x = torch::arange(7, torch::kFloat).unsqueeze(1) * torch::tensor({1.0f, -2.0f});
  const cluster::KMeansResult r = cluster::kmeans(x, iota_ids(7), o, *comm);
  std::vector<int32_t> sorted = r.label;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, std::vector<int32_t>({0, 1, 2, 3, 4, 5, 6}));
  EXPECT_NEAR(r.inertia, 0.0, 1e-12);
}

TEST(GroupStats, MeansVariancesAndFallbacksInClosedForm) {
  const int k = 4, m = 3;
  Rng g(5, 1);
  const int64_t n = 3000;
  std::vector<int32_t> label, arm;
  std::vector<float> rev, cost;
  for (int64_t i = 0; i < n; ++i) {
    int l = int(g.uniform() * k), a = int(g.uniform() * m);
    if (l == 2 && a == 1) a = 0;  // cell (2, 1) stays empty
    label.push_back(l), arm.push_back(a);
    rev.push_back(float(std::exp(g.normal()) * (1 + a))), cost.push_back(float(a * (0.5 + g.uniform())));
  }
  auto comm = dist::make_local_communicator();
  const cluster::GroupStats s = cluster::group_stats(label, arm, rev.data(), cost.data(), k, m, *comm);
  for (int l = 0; l < k; ++l)
    for (int a = 0; a < m; ++a) {
      double cnt = 0, sr = 0;
      for (int64_t i = 0; i < n; ++i)
        if (label[size_t(i)] == l && arm[size_t(i)] == a) cnt += 1, sr += rev[size_t(i)];
      ASSERT_EQ(s.n[s.cell(l, a)], cnt);
      if (cnt == 0) continue;
      double ss = 0;
      for (int64_t i = 0; i < n; ++i)
        if (label[size_t(i)] == l && arm[size_t(i)] == a) ss += (rev[size_t(i)] - sr / cnt) * (rev[size_t(i)] - sr / cnt);
      EXPECT_NEAR(s.mean_r(l, a), sr / cnt, 1e-12 * std::abs(sr / cnt));
      EXPECT_NEAR(s.var_r(l, a), ss / (cnt - 1), 1e-9 * ss / (cnt - 1));
    }
  // Robust shift: revenue mean - z se, cost mean + z se.
  cluster::GroupScoreOptions o;
  o.robust_z = 1.5;
  const cluster::GroupScores gs = cluster::group_scores(s, o);
  EXPECT_NEAR(gs.revenue[s.cell(0, 2)], s.mean_r(0, 2) - 1.5 * std::sqrt(s.var_r(0, 2) / s.n[s.cell(0, 2)]), 1e-12);
  EXPECT_NEAR(gs.cost[s.cell(3, 1)], s.mean_c(3, 1) + 1.5 * std::sqrt(s.var_c(3, 1) / s.n[s.cell(3, 1)]), 1e-12);
  // The empty cell (2, 1): the arm's global mean (no shift: there is no se), counted and named.
  EXPECT_EQ(gs.filled_cells, 1);
  EXPECT_NE(gs.fallback_note.find("(2, 1)"), std::string::npos) << gs.fallback_note;
  double n1 = 0, r1 = 0;
  for (int l = 0; l < k; ++l) n1 += s.n[s.cell(l, 1)], r1 += s.sum_r[s.cell(l, 1)];
  EXPECT_NEAR(gs.revenue[s.cell(2, 1)], r1 / n1, 1e-12);
  // ... or the nearest cluster's cell: cluster 0 is nearest to 2 here.
  o.robust_z = 0, o.empty_cell = cluster::EmptyCell::kNearest;
  std::vector<double> d2(size_t(k * k), 100.0);
  d2[size_t(2 * k + 0)] = 1.0;
  const cluster::GroupScores near = cluster::group_scores(s, o, d2);
  EXPECT_DOUBLE_EQ(near.revenue[s.cell(2, 1)], s.mean_r(0, 1));
  EXPECT_DOUBLE_EQ(near.cost[s.cell(2, 1)], s.mean_c(0, 1));
  // 2 ranks: the same sums (each rank half the rows).
  std::vector<cluster::GroupStats> parts(2);
  ASSERT_TRUE(run_ok(2, [&](dist::Communicator& c) {
    const size_t lo = c.rank() == 0 ? 0 : 1700, hi = c.rank() == 0 ? 1700 : size_t(n);
    std::vector<int32_t> l(label.begin() + lo, label.begin() + hi), a(arm.begin() + lo, arm.begin() + hi);
    parts[size_t(c.rank())] = cluster::group_stats(l, a, rev.data() + lo, cost.data() + lo, k, m, c);
  }));
  for (size_t c = 0; c < s.n.size(); ++c) {
    EXPECT_EQ(parts[1].n[c], s.n[c]);
    EXPECT_NEAR(parts[1].sum_r[c], s.sum_r[c], 1e-9 * std::max(1.0, std::abs(s.sum_r[c])));
    EXPECT_NEAR(parts[0].sum_c2[c], s.sum_c2[c], 1e-9 * std::max(1.0, std::abs(s.sum_c2[c])));
  }
}

TEST(Distill, StudentAgreesWithTheTeacherOnSeparableClusters) {
  // Features are the representation here: 6 well-separated clusters in 4 dimensions.
  const Mixture m = mixture(9000, 6, 4, 5.0, 21);
  auto comm = dist::make_local_communicator();
  cluster::KMeansOptions o;
  o.k = 6;
  const cluster::KMeansResult km = cluster::kmeans(m.x, iota_ids(9000), o, *comm);
  cluster::DistillOptions d;
  d.epochs = 15, d.hidden = {32, 32};
  cluster::Student s(4, 6, d.hidden, 3);
  const cluster::DistillResult r = cluster::distill(s, m.x, km.label, m.x, km.centroids, iota_ids(9000), d, *comm);
  EXPECT_GE(r.agreement, 0.95);
  EXPECT_GT(r.holdout_rows, 600);
  // Its predictions are what predict() returns, and survive a round trip through named tensors.
  const cluster::Student back = cluster::Student::from_tensors(s.to_tensors(), 4, 6, d.hidden, "test");
  EXPECT_EQ(back.predict(m.x), s.predict(m.x));
  // An untrained student agrees no better than chance would allow on 6 clusters.
  cluster::Student fresh(4, 6, d.hidden, 3);
  int64_t hit = 0;
  const auto p = fresh.predict(m.x);
  for (size_t i = 0; i < p.size(); ++i) hit += p[i] == km.label[i];
  EXPECT_LT(double(hit) / double(p.size()), 0.6);
}
