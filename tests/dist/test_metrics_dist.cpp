// \brief Metrics across ranks (metrics/distributed.h) against the one-process metrics on the concatenated rows: on W
// in-process thread ranks (thread_comm.h) and, when launched by mpiexec, on the real MPI ranks.
#include <ATen/ATen.h>    // for at::zeros
#include <fmt/format.h>   // for fmt::format
#include <gtest/gtest.h>  // for TEST

#include <algorithm>   // for std::max, std::rotate
#include <cmath>       // for std::abs, std::round, std::nanf
#include <cstdio>      // for std::printf
#include <functional>  // for std::function
#include <limits>      // for std::numeric_limits
#include <memory>      // for std::unique_ptr
#include <random>      // for std::mt19937_64, std::normal_distribution
#include <string>      // for std::string
#include <tuple>       // for std::tuple
#include <vector>      // for std::vector

#include "core/error.h"            // for DataError, ConfigError, DistError
#include "dist/communicator.h"     // for Communicator, make_communicator, launched_multi_process
#include "metrics/aucc.h"          // for Aucc, roi_scores
#include "metrics/cost_curve.h"    // for cost_curve
#include "metrics/distributed.h"   // for DistributedIpwPath, distributed_*
#include "metrics/eom.h"           // for eom_curve
#include "metrics/golden_trial.h"  // for Golden
#include "metrics/ipw_path.h"      // for IpwPath
#include "metrics/score_table.h"   // for ScoreTable
#include "metrics/synthetic.h"     // for Trial
#include "thread_comm.h"           // for run_ranks, error_text

namespace dfcl::metrics {
namespace {

// Relative agreement of the IPW sums: the ranks add the same terms in another grouping (per rank, then over ranks).
constexpr double kRel = 1e-12;

bool close(double a, double b, double scale) {
  return std::abs(a - b) <= kRel * std::max({std::abs(a), scale, 1e-300});
}

double g_max_rel = 0;  // the largest relative difference seen (printed once per test binary)
void note(double a, double b) {
  if (a != b) g_max_rel = std::max(g_max_rel, std::abs(a - b) / std::max(std::abs(a), std::abs(b)));
}

// Rows [bounds[r], bounds[r + 1]) go to rank r: contiguous shards, as a sharded loader hands them out.
struct Shard {
  int64_t a = 0, b = 0;
  int64_t n() const { return b - a; }
};
Shard shard_of(const std::vector<int64_t>& bounds, int rank) { return {bounds[rank], bounds[rank + 1]}; }

// The rank-local view of a sample and its scores (null arrays on an empty shard: a rank without rows).
RctSample local_sample(const RctSample& s, Shard sh, bool empirical = true) {
  RctSample l;
  l.n = sh.n(), l.m = s.m, l.empirical = empirical;
  if (!empirical) l.propensity = s.propensity;
  if (sh.n() > 0) l.arm = s.arm + sh.a, l.revenue = s.revenue + sh.a, l.cost = s.cost + sh.a;
  return l;
}
solver::Scores local_scores(const solver::Scores& sc, Shard sh) {
  solver::Scores l{sh.n(), sc.m, nullptr, nullptr};
  if (sh.n() > 0) l.r = sc.r + sh.a * sc.m, l.c = sc.c + sh.a * sc.m;
  return l;
}
AuccInput local_aucc(const AuccInput& in, Shard sh) {
  AuccInput l = in;
  l.n = sh.n();
  l.arm = in.arm + sh.a, l.revenue = in.revenue + sh.a, l.cost = in.cost + sh.a, l.score = in.score + sh.a;
  return l;
}

// Model-like scores: the true tables plus noise, so that hulls, breakpoints and dominated arms vary per row.
ScoreTable noisy(const solver::Scores& truth, uint64_t seed) {
  ScoreTable t;
  t.n = truth.n, t.m = truth.m;
  t.r.resize(truth.n * truth.m), t.c.resize(truth.n * truth.m);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> z(0.0, 1.0);
  for (int64_t k = 0; k < truth.n * truth.m; ++k) {
    t.r[k] = float(truth.r[k] + 0.5 * z(rng));
    t.c[k] = k % truth.m == 0 ? 0.0f : float(std::max(0.0, truth.c[k] + 0.2 * z(rng)));
  }
  return t;
}

// Budgets spread over the reachable range of cbar (one-process path): from the cheapest policy to the costliest.
std::vector<double> budgets_of(const IpwPath& path) {
  const double lo = path.at(std::numeric_limits<double>::infinity()).cost, hi = path.at(0).cost;
  std::vector<double> b;
  for (double f : {0.1, 0.3, 0.5, 0.7, 0.9}) b.push_back(lo + f * (hi - lo));
  return b;
}

void expect_same_curve(const std::vector<EomPoint>& one, const std::vector<EomPoint>& dist, const std::string& what) {
  ASSERT_EQ(one.size(), dist.size()) << what;
  for (size_t k = 0; k < one.size(); ++k) {
    SCOPED_TRACE(what + ", budget " + std::to_string(one[k].budget));
    EXPECT_EQ(dist[k].budget, one[k].budget);
    EXPECT_EQ(dist[k].lambda, one[k].lambda);  // the same midpoints: bitwise
    EXPECT_EQ(dist[k].iterations, one[k].iterations);
    EXPECT_EQ(dist[k].matched, one[k].matched);
    EXPECT_PRED3(close, dist[k].revenue, one[k].revenue, 0.0);
    EXPECT_PRED3(close, dist[k].cost, one[k].cost, 0.0);
    note(dist[k].revenue, one[k].revenue), note(dist[k].cost, one[k].cost);
  }
}

// Runs `fn` on W thread ranks; fails with every rank's error if any rank threw (use as ASSERT_TRUE(run_ok(...))).
::testing::AssertionResult run_ok(int world, const std::function<void(dist::Communicator&)>& fn) {
  const auto err = test::run_ranks(world, fn);
  std::string msg;
  for (int r = 0; r < world; ++r)
    if (err[r]) msg += "rank " + std::to_string(r) + ": " + test::error_text(err[r]) + "\n";
  if (msg.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << msg;
}

// Runs `fn` on W thread ranks and expects every rank (none may carry on alone) to throw E with `needle`.
template <class E>
void expect_all_throw(int world, const std::function<void(dist::Communicator&)>& fn, const std::string& needle) {
  const auto err = test::run_ranks(world, fn);
  for (int r = 0; r < world; ++r) {
    ASSERT_TRUE(err[r]) << "rank " << r << " did not throw";
    bool typed = false;
    try {
      std::rethrow_exception(err[r]);
    } catch (const E&) {
      typed = true;
    } catch (...) {
    }
    EXPECT_TRUE(typed) << "rank " << r << ": " << test::error_text(err[r]);
    EXPECT_NE(test::error_text(err[r]).find(needle), std::string::npos)
        << "rank " << r << ": " << test::error_text(err[r]);
  }
}

// ---- The thread communicator itself ----

TEST(ThreadComm, CollectivesReduceInRankOrder) {
  std::vector<std::vector<double>> sums(3), maxes(3), bcast(3);
  std::vector<std::vector<std::vector<double>>> gathered(3);
  ASSERT_TRUE(run_ok(3, [&](dist::Communicator& c) {
    const int r = c.rank();
    // 0.1 + 0.2 + 0.3 in rank order is 0.6000000000000001; another order gives 0.6.
    std::vector<double> v = {r == 0 ? 0.1 : r == 1 ? 0.2 : 0.3, double(r)};
    c.allreduce_values(v);
    sums[r] = v;
    maxes[r] = {c.allreduce_value(-double(r), dist::ReduceOp::kMax)};
    at::Tensor t = at::zeros({2}, at::kLong);
    if (r == 1) t.fill_(7);
    c.broadcast(t, 1);
    bcast[r] = {double(t[0].item<int64_t>()), double(t[1].item<int64_t>())};
    gathered[r] = c.allgather(std::vector<double>(size_t(r), double(r)));  // lengths 0, 1, 2
    c.barrier();
  }));
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(sums[r][0], (0.1 + 0.2) + 0.3);
    EXPECT_EQ(sums[r][1], 3.0);
    EXPECT_EQ(maxes[r][0], 0.0);
    EXPECT_EQ(bcast[r], (std::vector<double>{7, 7}));
    EXPECT_EQ(gathered[r], (std::vector<std::vector<double>>{{}, {1}, {2, 2}}));
  }
}

TEST(ThreadComm, MismatchedCollectivesAndFailedRanksDoNotHang) {
  // Different lengths: every rank gets DistError from the check.
  expect_all_throw<DistError>(
      2,
      [](dist::Communicator& c) {
        std::vector<double> v(size_t(1 + c.rank()), 1.0);
        c.allreduce_values(v);
      },
      "differs between rank 0");
  // Rank 1 fails before the collective: rank 0 is released with DistError instead of waiting forever.
  const auto err = test::run_ranks(2, [](dist::Communicator& c) {
    if (c.rank() == 1) throw DataError("rank 1 broke");
    c.barrier();
  });
  EXPECT_NE(test::error_text(err[0]).find("rank 1 failed"), std::string::npos) << test::error_text(err[0]);
  EXPECT_EQ(test::error_text(err[1]), "rank 1 broke");
}

// ---- EOM ----

TEST(MetricsAcrossRanks, GoldenTrialEomOnShards) {
  Golden g;
  const RctSample s = g.sample();
  const IpwPath path(g.scores(), s, 1);
  const std::vector<double> budgets = {1.5, 2.5, 0.5, 1.0};
  const auto one = eom_curve(path, budgets);
  // Two ranks, uneven; three ranks with an empty middle one; an empty rank 0.
  for (const std::vector<int64_t>& bounds :
       {std::vector<int64_t>{0, 5, 6}, std::vector<int64_t>{0, 2, 2, 6}, std::vector<int64_t>{0, 0, 3, 6}}) {
    const int W = int(bounds.size()) - 1;
    std::vector<std::vector<EomPoint>> out(W);
    ASSERT_TRUE(run_ok(W, [&](dist::Communicator& c) {
      const Shard sh = shard_of(bounds, c.rank());
      out[c.rank()] = distributed_eom_curve(c, local_scores(g.scores(), sh), local_sample(s, sh), budgets, {}, 1);
    }));
    for (int r = 0; r < W; ++r) {
      // Every value is a multiple of 0.5 summed exactly: bitwise equal to the one-process curve (and the golden 5.5,
      // 6, 3 of test_eom.cpp).
      ASSERT_EQ(out[r].size(), one.size());
      for (size_t k = 0; k < one.size(); ++k) {
        EXPECT_EQ(out[r][k].lambda, one[k].lambda) << W << " ranks, rank " << r << ", budget " << budgets[k];
        EXPECT_EQ(out[r][k].revenue, one[k].revenue);
        EXPECT_EQ(out[r][k].cost, one[k].cost);
        EXPECT_EQ(out[r][k].iterations, one[k].iterations);
        EXPECT_EQ(out[r][k].matched, one[k].matched);
      }
    }
  }
  EXPECT_EQ(one[0].revenue, 5.5);
  EXPECT_EQ(one[1].revenue, 6.0);
  EXPECT_EQ(one[2].revenue, 3.0);
}

TEST(MetricsAcrossRanks, EomCurveMatchesOneProcess) {
  test::Trial trial(30000, 4, 11);
  const ScoreTable sc = noisy(trial.truth(), 5);
  for (bool empirical : {true, false}) {
    RctSample s = trial.sample();
    if (!empirical) s.propensity = {0.25, 0.25, 0.25, 0.25}, s.empirical = false;  // the design probabilities
    const IpwPath path(sc.view(), s, 1);
    const std::vector<double> budgets = budgets_of(path);
    const auto one = eom_curve(path, budgets);
    const std::vector<double> probe = {
        0.0, 0.05, 0.3, 1.0, 2.5, path.bound().hi * 0.999, std::numeric_limits<double>::infinity()};
    for (const std::vector<int64_t>& bounds :
         {std::vector<int64_t>{0, 11111, 30000}, std::vector<int64_t>{0, 0, 17000, 30000},
          std::vector<int64_t>{0, 9000, 9000, 30000}}) {
      const int W = int(bounds.size()) - 1;
      std::vector<std::vector<EomPoint>> out(W);
      std::vector<std::vector<PolicyValue>> at(W);
      std::vector<LambdaBound> bound(W);
      std::vector<std::vector<double>> p(W);
      ASSERT_TRUE(run_ok(W, [&](dist::Communicator& c) {
        const Shard sh = shard_of(bounds, c.rank());
        const DistributedIpwPath dp(c, local_scores(sc.view(), sh), local_sample(s, sh, empirical), 1);
        out[c.rank()] = distributed_eom_curve(dp, budgets);
        for (double l : probe) at[c.rank()].push_back(dp.at(l));
        bound[c.rank()] = dp.bound();
        p[c.rank()] = dp.propensity();
      }));
      const std::string what = std::to_string(W) + " ranks, " + (empirical ? "empirical" : "design");
      for (int r = 0; r < W; ++r) {
        expect_same_curve(one, out[r], what + ", rank " + std::to_string(r));
        EXPECT_EQ(bound[r].hi, path.bound().hi) << what;  // a max: exact
        EXPECT_EQ(bound[r].spec, path.bound().spec) << what;
        EXPECT_EQ(p[r], s.propensity) << what;  // global arm shares N_j / N, bitwise
        for (size_t k = 0; k < probe.size(); ++k) {
          const PolicyValue v = path.at(probe[k]);
          EXPECT_PRED3(close, at[r][k].revenue, v.revenue, 0.0) << what << ", lambda " << probe[k];
          EXPECT_PRED3(close, at[r][k].cost, v.cost, 0.0) << what << ", lambda " << probe[k];
          note(at[r][k].revenue, v.revenue), note(at[r][k].cost, v.cost);
        }
      }
    }
  }
  std::printf("[ metrics ] EOM across ranks: largest relative difference from one process %.3g\n", g_max_rel);
}

TEST(MetricsAcrossRanks, EomStepIsOneAllreduce) {
  test::Trial trial(5000, 3, 2);
  const ScoreTable sc = noisy(trial.truth(), 3);
  const RctSample s = trial.sample();
  const std::vector<int64_t> bounds = {0, 2000, 5000};
  std::vector<int64_t> collectives(2);
  std::vector<EomPoint> pt(2);
  ASSERT_TRUE(run_ok(2, [&](dist::Communicator& c) {
    const Shard sh = shard_of(bounds, c.rank());
    const DistributedIpwPath dp(c, local_scores(sc.view(), sh), local_sample(s, sh), 1);
    const double budget = 0.5 * dp.at(0).cost;
    const int64_t before = c.sequence();
    pt[c.rank()] = distributed_eom_at(dp, budget);
    collectives[c.rank()] = c.sequence() - before;
  }));
  // One allgather checking that every rank passed the same budget and options, then one all-reduce per bisection
  // step: the cost of a step does not depend on the number of rows; a bisection that ends on a jump of the spend over
  // the budget reads both sides of it (two more).
  EXPECT_GT(pt[0].iterations, 3);
  EXPECT_EQ(collectives[0], 1 + pt[0].iterations + (pt[0].stepped ? 2 : 0));
  EXPECT_EQ(collectives[1], collectives[0]);
}

// ---- Cost curve ----

TEST(MetricsAcrossRanks, CostCurveMatchesOneProcess) {
  test::Trial trial(20000, 3, 21);
  const ScoreTable sc = noisy(trial.truth(), 8);
  const RctSample s = trial.sample();
  const IpwPath path(sc.view(), s, 1);
  CostCurveOptions opt;
  opt.max_points = 0;  // every point
  const CostCurve one = cost_curve(path, opt);
  ASSERT_TRUE(one.note.empty()) << one.note;
  ASSERT_GT(one.points, 1000);
  for (const std::vector<int64_t>& bounds :
       {std::vector<int64_t>{0, 6543, 20000}, std::vector<int64_t>{0, 12000, 12000, 20000},
        std::vector<int64_t>{0, 20000, 20000}}) {
    const int W = int(bounds.size()) - 1;
    std::vector<CostCurve> out(W);
    ASSERT_TRUE(run_ok(W, [&](dist::Communicator& c) {
      const Shard sh = shard_of(bounds, c.rank());
      const DistributedIpwPath dp(c, local_scores(sc.view(), sh), local_sample(s, sh), 1);
      out[c.rank()] = distributed_cost_curve(dp, opt);
    }));
    const double scale = std::abs(one.reference_revenue) + std::abs(one.reference_cost);
    for (int r = 0; r < W; ++r) {
      SCOPED_TRACE(std::to_string(W) + " ranks, rank " + std::to_string(r));
      const CostCurve& d = out[r];
      EXPECT_EQ(d.points, one.points);
      EXPECT_EQ(d.lambda, one.lambda);  // the union of every rank's breakpoints: exact
      ASSERT_EQ(d.cost.size(), one.cost.size());
      for (size_t k = 0; k < one.cost.size(); ++k) {
        ASSERT_PRED3(close, d.cost[k], one.cost[k], scale) << "point " << k;
        ASSERT_PRED3(close, d.revenue[k], one.revenue[k], scale) << "point " << k;
      }
      EXPECT_EQ(d.reference_arm, one.reference_arm);
      EXPECT_PRED3(close, d.reference_cost, one.reference_cost, 0.0);
      EXPECT_PRED3(close, d.reference_revenue, one.reference_revenue, 0.0);
      EXPECT_PRED3(close, d.control_revenue, one.control_revenue, 0.0);
      ASSERT_EQ(d.grid_revenue.size(), one.grid_revenue.size());
      for (size_t k = 0; k < one.grid_revenue.size(); ++k)
        EXPECT_PRED3(close, d.grid_revenue[k], one.grid_revenue[k], scale) << "grid " << k;
      EXPECT_PRED3(close, d.area, one.area, 0.0);
      note(d.area, one.area);
    }
  }
  // Thinned to 50 points: the same points are kept.
  opt.max_points = 50;
  const CostCurve thin = cost_curve(path, opt);
  std::vector<CostCurve> out(2);
  ASSERT_TRUE(run_ok(2, [&](dist::Communicator& c) {
    const Shard sh = shard_of({0, 7000, 20000}, c.rank());
    out[c.rank()] =
        distributed_cost_curve(DistributedIpwPath(c, local_scores(sc.view(), sh), local_sample(s, sh), 1), opt);
  }));
  EXPECT_EQ(out[0].lambda, thin.lambda);
  EXPECT_EQ(out[1].lambda, thin.lambda);
  EXPECT_LE(thin.lambda.size(), 50u);
}

// ---- AUCC ----

struct AuccCase {
  test::Trial trial;
  std::vector<double> score;
  int treated;
  AuccCase(int arms, int treated_arm, bool ties) : trial(20000, arms, 31 + arms), treated(treated_arm) {
    score = roi_scores(trial.truth(), treated_arm);
    if (ties)  // a handful of distinct values: the order of tied rows decides the curve
      for (double& v : score) v = std::round(v * 2) / 2;
  }
  AuccInput input() const {
    AuccInput in;
    in.n = trial.n(), in.arm = trial.t.treatment.data(), in.revenue = trial.t.revenue.data();
    in.cost = trial.t.cost.data(), in.score = score.data(), in.treated_arm = treated;
    return in;
  }
};

TEST(MetricsAcrossRanks, AuccEqualsOneProcessExactly) {
  for (const auto& [arms, treated, ties] : {std::tuple{2, 1, false}, std::tuple{2, 1, true}, std::tuple{3, 2, true}}) {
    const AuccCase ac(arms, treated, ties);
    const AuccResult one = Aucc(ac.input(), 200).result();
    if (ties) {  // the fixture really depends on the order of tied rows: rotating the rows changes AUCC
      AuccCase rot(arms, treated, ties);
      const int64_t n = rot.trial.n(), cut = 7777;
      auto rotate = [&](auto& v) { std::rotate(v.begin(), v.begin() + cut, v.begin() + n); };
      rotate(rot.trial.t.treatment), rotate(rot.trial.t.revenue), rotate(rot.trial.t.cost), rotate(rot.score);
      EXPECT_NE(Aucc(rot.input(), 200).result().aucc, one.aucc);
    }
    for (const std::vector<int64_t>& bounds :
         {std::vector<int64_t>{0, 7777, 20000}, std::vector<int64_t>{0, 12000, 12000, 20000},
          std::vector<int64_t>{0, 0, 1, 20000}}) {
      const int W = int(bounds.size()) - 1;
      std::vector<AuccResult> out(W);
      ASSERT_TRUE(run_ok(W, [&](dist::Communicator& c) {
        out[c.rank()] = distributed_aucc(c, local_aucc(ac.input(), shard_of(bounds, c.rank())), 200);
      }));
      for (int r = 0; r < W; ++r) {
        SCOPED_TRACE(std::to_string(arms) + " arms, ties " + std::to_string(ties) + ", " + std::to_string(W) +
                     " ranks, rank " + std::to_string(r));
        EXPECT_EQ(out[r].aucc, one.aucc);  // bitwise: the same rows in the same order through the same code
        EXPECT_EQ(out[r].x, one.x);
        EXPECT_EQ(out[r].y, one.y);
        EXPECT_EQ(out[r].n_treated, one.n_treated);
        EXPECT_EQ(out[r].n_control, one.n_control);
        EXPECT_EQ(out[r].dr, one.dr);
      }
    }
  }
}

// ---- Guard rails: every rank throws the same error, none is left waiting ----

TEST(MetricsAcrossRanks, GuardRails) {
  test::Trial trial(3000, 4, 4);
  const ScoreTable sc = noisy(trial.truth(), 1);
  const RctSample s = trial.sample();
  const std::vector<int64_t> bounds = {0, 1000, 1000, 3000};
  auto path_on = [&](dist::Communicator& c, const solver::Scores& scores, const RctSample& sample) {
    const DistributedIpwPath dp(c, scores, sample, 1);
    distributed_eom_curve(dp, {0.5});
  };
  // Rank 2 believes in 3 arms.
  expect_all_throw<DataError>(
      3,
      [&](dist::Communicator& c) {
        const Shard sh = shard_of(bounds, c.rank());
        RctSample l = local_sample(s, sh);
        solver::Scores v = local_scores(sc.view(), sh);
        if (c.rank() == 2) l.m = 3, v.m = 3;
        path_on(c, v, l);
      },
      "disagree on the number of arms (rank 0: 4, rank 2: 3; per rank: [4, 4, 3])");
  // A NaN prediction on rank 2, its local row 5: named by rank, local row and global row, on every rank.
  ScoreTable bad = sc;
  bad.r[(1000 + 5) * 4 + 2] = std::nanf("");
  expect_all_throw<DataError>(
      3,
      [&](dist::Communicator& c) {
        const Shard sh = shard_of(bounds, c.rank());
        path_on(c, local_scores(bad.view(), sh), local_sample(s, sh));
      },
      "rank 2 of 3, row 5 (global row 1005), arm 2: r_hat is nan");
  // No rows anywhere.
  expect_all_throw<DataError>(
      2,
      [&](dist::Communicator& c) {
        path_on(c, local_scores(sc.view(), {0, 0}), local_sample(s, {0, 0}));
      },
      "no RCT rows on any of the 2 ranks");
  // Different budgets on different ranks would desynchronise the bisections: refused up front.
  expect_all_throw<ConfigError>(
      2,
      [&](dist::Communicator& c) {
        const Shard sh = shard_of({0, 1500, 3000}, c.rank());
        const DistributedIpwPath dp(c, local_scores(sc.view(), sh), local_sample(s, sh), 1);
        distributed_eom_curve(dp, {0.5, c.rank() == 0 ? 1.0 : 2.0});
      },
      "rank 1 passes [0.0001, 60, 0.5, 2]");
  // Design propensities that differ between ranks.
  expect_all_throw<DataError>(
      2,
      [&](dist::Communicator& c) {
        const Shard sh = shard_of({0, 1500, 3000}, c.rank());
        RctSample l = local_sample(s, sh, false);
        l.propensity =
            c.rank() == 0 ? std::vector<double>{0.25, 0.25, 0.25, 0.25} : std::vector<double>{0.4, 0.2, 0.2, 0.2};
        path_on(c, local_scores(sc.view(), sh), l);
      },
      "rank 1 passes design propensities [0.4, 0.2, 0.2, 0.2]");
  // AUCC: a NaN score on rank 1, local row 3, and rank 2 has no rows.
  AuccCase ac(2, 1, false);
  ac.score[1000 + 3] = std::nan("");
  expect_all_throw<DataError>(
      3,
      [&](dist::Communicator& c) {
        distributed_aucc(c, local_aucc(ac.input(), shard_of({0, 1000, 20000, 20000}, c.rank())));
      },
      "rank 1 of 3, row 3 (global row 1003): score is nan");
}

// ---- Real MPI ranks (mpiexec -n 2 dfcl_test_metrics_dist --gtest_filter=MetricsMpi.*) ----

#ifdef DFCL_TEST_MPI
std::unique_ptr<dist::Communicator> g_mpi;

class MpiEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (!dist::launched_multi_process()) return;
    dist::CommOptions o;
    o.backend = "mpi";
    o.timeout_s = 120;
    g_mpi = dist::make_communicator(o);
  }
  void TearDown() override { g_mpi.reset(); }
};
const auto* const g_env = ::testing::AddGlobalTestEnvironment(new MpiEnvironment);

// Every rank builds the same trial (same seed), evaluates it whole in one process and its own shard across ranks.
TEST(MetricsMpi, EomCostCurveAndAuccMatchOneProcess) {
  if (!g_mpi) GTEST_SKIP() << "not launched by mpiexec";
  dist::Communicator& c = *g_mpi;
  const int W = c.size();
  ASSERT_GE(W, 2);
  test::Trial trial(20000, 3, 17);
  const ScoreTable sc = noisy(trial.truth(), 4);
  const RctSample s = trial.sample();
  const IpwPath path(sc.view(), s, 1);
  const std::vector<double> budgets = budgets_of(path);
  const auto one = eom_curve(path, budgets);
  CostCurveOptions copt;
  copt.max_points = 0;
  const CostCurve ccone = cost_curve(path, copt);
  // Uneven shards; then everything on the last rank (the others have zero rows).
  std::vector<int64_t> uneven(W + 1, 0), last(W + 1, 0);
  for (int r = 1; r <= W; ++r) uneven[r] = r == W ? 20000 : 20000 * r * r / (W * W + 1), last[r] = r == W ? 20000 : 0;
  for (const auto& bounds : {uneven, last}) {
    const Shard sh = shard_of(bounds, c.rank());
    const DistributedIpwPath dp(c, local_scores(sc.view(), sh), local_sample(s, sh), 1);
    expect_same_curve(one, distributed_eom_curve(dp, budgets), "mpi, rank " + std::to_string(c.rank()));
    const CostCurve cc = distributed_cost_curve(dp, copt);
    EXPECT_EQ(cc.points, ccone.points);
    EXPECT_EQ(cc.lambda, ccone.lambda);
    EXPECT_PRED3(close, cc.area, ccone.area, 0.0);
  }
  const AuccCase ac(2, 1, true);
  const AuccResult aone = Aucc(ac.input(), 200).result();
  for (const auto& bounds : {uneven, last}) {
    const AuccResult a = distributed_aucc(c, local_aucc(ac.input(), shard_of(bounds, c.rank())), 200);
    EXPECT_EQ(a.aucc, aone.aucc);
    EXPECT_EQ(a.y, aone.y);
  }
  std::printf("[ metrics ] rank %d of %d: EOM AUCC across MPI ranks checked; largest relative difference %.3g\n",
              c.rank(), W, g_max_rel);
}

TEST(MetricsMpi, GuardRailsThrowOnEveryRank) {
  if (!g_mpi) GTEST_SKIP() << "not launched by mpiexec";
  dist::Communicator& c = *g_mpi;
  test::Trial trial(2000, 3, 5);
  ScoreTable sc = noisy(trial.truth(), 2);
  const RctSample s = trial.sample();
  const int W = c.size();
  std::vector<int64_t> bounds(W + 1, 0);
  for (int r = 1; r <= W; ++r) bounds[r] = 2000 * r / W;
  const Shard sh = shard_of(bounds, c.rank());
  // A NaN c_hat on the last rank's row 7.
  sc.c[(bounds[W - 1] + 7) * 3 + 1] = std::nanf("");
  try {
    DistributedIpwPath(c, local_scores(sc.view(), sh), local_sample(s, sh), 1);
    ADD_FAILURE() << "no error on rank " << c.rank();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(fmt::format("rank {} of {}, row 7 (global row {}), arm 1: c_hat is nan", W - 1,
                                                     W, bounds[W - 1] + 7)),
              std::string::npos)
        << e.what();
  }
  // Mismatched arm counts.
  RctSample l = local_sample(s, sh);
  solver::Scores v = local_scores(sc.view(), sh);
  if (c.rank() == 0) l.m = 2, v.m = 2;
  EXPECT_THROW(DistributedIpwPath(c, v, l, 1), DataError);
  // Still in step: one more collective completes on every rank.
  EXPECT_EQ(c.allreduce_value(1.0), double(W));
}
#endif

}  // namespace
}  // namespace dfcl::metrics
