// \brief K-means across ranks (kmeans.h): the seeding pool is gathered to every rank in global-id order, so seeding is
// the same computation everywhere; Lloyd and mini-batch steps reduce (sums, counts) through the Communicator.
#include "cluster/kmeans.h"

#include <fmt/format.h>  // for fmt::format
#include <torch/torch.h>

#include <algorithm>  // for std::sort, std::max
#include <cmath>      // for std::log
#include <map>        // for std::map
#include <numeric>    // for std::iota
#include <utility>    // for std::pair

#include "core/error.h"         // for ConfigError, DataError
#include "core/rng.h"           // for Rng
#include "dist/communicator.h"  // for Communicator

namespace dfcl::cluster {
namespace {

// Counter-based streams: a row's draws depend on (seed, stream, global id) only.
constexpr uint64_t kSampleStream = 0x6b6d65616e73ull;  // "kmeans"
constexpr uint64_t kPoolStream = kSampleStream + 1;
constexpr uint64_t kSeedStream = kSampleStream + 2;
constexpr uint64_t kBatchStream = kSampleStream + 1000;  // + iteration

double draw(uint64_t seed, uint64_t stream, int64_t gid) { return Rng(seed, stream, uint64_t(gid)).uniform(); }

// Local rows whose draw falls below `fraction`.
std::vector<int64_t> select_rows(const std::vector<int64_t>& gid, uint64_t seed, uint64_t stream, double fraction) {
  std::vector<int64_t> rows;
  for (size_t i = 0; i < gid.size(); ++i)
    if (fraction >= 1 || draw(seed, stream, gid[i]) < fraction) rows.push_back(int64_t(i));
  return rows;
}

at::Tensor take(const at::Tensor& x, const std::vector<int64_t>& rows) {
  return x.index_select(0, torch::tensor(rows, torch::kLong)).to(at::kDouble).contiguous();
}

// The pool of every rank, as one p x d tensor ordered by global id (the same on every rank).
at::Tensor gather_pool(const at::Tensor& x, const std::vector<int64_t>& gid, const std::vector<int64_t>& rows,
                       int64_t d, dist::Communicator& comm) {
  std::vector<double> mine;
  mine.reserve(rows.size() * size_t(d + 1));
  const at::Tensor xs = take(x, rows);
  const double* px = xs.data_ptr<double>();
  for (size_t r = 0; r < rows.size(); ++r) {
    mine.push_back(double(gid[size_t(rows[r])]));
    mine.insert(mine.end(), px + r * size_t(d), px + (r + 1) * size_t(d));
  }
  std::vector<std::pair<int64_t, const double*>> all;
  const auto parts = comm.allgather(mine);
  for (const auto& p : parts)
    for (size_t o = 0; o < p.size(); o += size_t(d + 1)) all.emplace_back(int64_t(p[o]), p.data() + o + 1);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  at::Tensor pool = torch::empty({int64_t(all.size()), d}, torch::kDouble);
  double* q = pool.data_ptr<double>();
  for (size_t r = 0; r < all.size(); ++r) std::copy(all[r].second, all[r].second + d, q + r * size_t(d));
  return pool;
}

// k-means++ (Arthur and Vassilvitskii 2007) on the pool: the first centre uniformly, each next one with probability
// proportional to D(x)^2. Identical on every rank (same pool, same draws).
at::Tensor seed_plus_plus(const at::Tensor& pool, int k, uint64_t seed) {
  const int64_t p = pool.size(0), d = pool.size(1);
  Rng rng(seed, kSeedStream);
  at::Tensor c = torch::empty({k, d}, torch::kDouble);
  int64_t first = std::min<int64_t>(p - 1, int64_t(rng.uniform() * double(p)));
  c[0].copy_(pool[first]);
  std::vector<double> d2(static_cast<size_t>(p));
  nearest(pool, c.narrow(0, 0, 1), &d2);
  for (int j = 1; j < k; ++j) {
    double total = 0;
    for (double v : d2) total += v;
    int64_t pick = 0;
    if (total > 0) {
      const double u = rng.uniform() * total;
      double acc = 0;
      pick = p - 1;
      for (int64_t i = 0; i < p; ++i)
        if ((acc += d2[size_t(i)]) > u) {
          pick = i;
          break;
        }
    } else {
      pick = std::min<int64_t>(p - 1, int64_t(rng.uniform() * double(p)));  // every pool row is a centre already
    }
    c[j].copy_(pool[pick]);
    std::vector<double> dj(static_cast<size_t>(p));
    nearest(pool, c.narrow(0, j, 1), &dj);
    for (int64_t i = 0; i < p; ++i) d2[size_t(i)] = std::min(d2[size_t(i)], dj[size_t(i)]);
  }
  return c;
}

// Per-centroid sums (k x d), counts (k) and the inertia of rows `xs` under `labels`, reduced over the ranks; the
// packed tensor is [sums | counts | inertia, changed].
struct Reduced {
  at::Tensor sums, counts;
  double inertia = 0, changed = 0;
};
Reduced reduce_assignment(const at::Tensor& xs, const std::vector<int32_t>& labels, const std::vector<double>& d2,
                          double changed, int k, dist::Communicator& comm) {
  const int64_t d = xs.size(1);
  at::Tensor packed = torch::zeros({k * (d + 1) + 2}, torch::kDouble);
  at::Tensor sums = packed.narrow(0, 0, k * d).view({k, d}), counts = packed.narrow(0, k * d, k);
  if (xs.size(0) > 0) {
    at::Tensor idx = torch::from_blob(const_cast<int32_t*>(labels.data()), {int64_t(labels.size())}, torch::kInt)
                         .to(torch::kLong);
    sums.index_add_(0, idx, xs);
    counts.index_add_(0, idx, torch::ones({xs.size(0)}, torch::kDouble));
  }
  double inertia = 0;
  for (double v : d2) inertia += v;
  double* tail = packed.data_ptr<double>() + k * (d + 1);
  tail[0] = inertia, tail[1] = changed;
  comm.allreduce(packed);
  return {sums.clone(), counts.clone(), tail[0], tail[1]};
}

// Moves empty clusters to the sample points farthest from their centroids (one per empty cluster, over all ranks;
// ties: the lower global id). Returns the number reseeded.
int reseed_empty(at::Tensor& c, const at::Tensor& counts, const at::Tensor& xs, const std::vector<int64_t>& sgid,
                 std::vector<double> d2, dist::Communicator& comm) {
  const int64_t k = c.size(0), d = c.size(1);
  int reseeded = 0;
  for (int64_t j = 0; j < k; ++j) {
    if (counts[j].item<double>() > 0) continue;
    int64_t best = -1;  // this rank's farthest row not yet used
    for (size_t i = 0; i < d2.size(); ++i)
      if (d2[i] >= 0 && (best < 0 || d2[i] > d2[size_t(best)] || (d2[i] == d2[size_t(best)] && sgid[i] < sgid[size_t(best)])))
        best = int64_t(i);
    std::vector<double> mine;
    if (best >= 0) {
      mine = {d2[size_t(best)], double(sgid[size_t(best)])};
      const double* p = xs.data_ptr<double>() + best * d;
      mine.insert(mine.end(), p, p + d);
    }
    const auto parts = comm.allgather(mine);
    const std::vector<double>* win = nullptr;
    for (const auto& p : parts)
      if (!p.empty() && (!win || p[0] > (*win)[0] || (p[0] == (*win)[0] && p[1] < (*win)[1]))) win = &p;
    if (!win) break;  // no rows left at all
    std::copy(win->begin() + 2, win->end(), c[j].data_ptr<double>());
    if (best >= 0 && double(sgid[size_t(best)]) == (*win)[1]) d2[size_t(best)] = -1;
    ++reseeded;
  }
  return reseeded;
}

}  // namespace

void KMeansOptions::validate() const {
  if (k < 1) throw ConfigError(fmt::format("cluster.k: is {}; need at least 1 cluster", k));
  if (max_iter < 1) throw ConfigError(fmt::format("cluster.kmeans.max_iter: is {}; need >= 1", max_iter));
  if (!(tol >= 0)) throw ConfigError(fmt::format("cluster.kmeans.tol: is {}; need >= 0", tol));
  if (sample < 0) throw ConfigError(fmt::format("cluster.kmeans.sample: is {}; need >= 0 (0 = all rows)", sample));
  if (seed_pool < 0) throw ConfigError(fmt::format("cluster.kmeans.seed_pool: is {}; need >= 0 (0 = auto)", seed_pool));
  if (batch < 1) throw ConfigError(fmt::format("cluster.kmeans.batch: is {}; need >= 1", batch));
}

std::vector<int32_t> nearest(const at::Tensor& x_in, const at::Tensor& centroids, std::vector<double>* dist2) {
  torch::NoGradGuard no_grad;
  const int64_t n = x_in.size(0);
  const at::Tensor c = centroids.to(at::kDouble).contiguous();
  const at::Tensor c2 = (c * c).sum(1);
  std::vector<int32_t> out(static_cast<size_t>(n));
  if (dist2) dist2->assign(static_cast<size_t>(n), 0.0);
  constexpr int64_t kBlock = 8192;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    const at::Tensor x = x_in.narrow(0, b, e - b).to(at::kDouble);
    // ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2; the row's ||x||^2 does not change the argmin, so it is added after.
    const at::Tensor dist = at::addmm(c2.unsqueeze(0), x, c.t(), 1.0, -2.0);
    const auto mn = dist.min(1);  // ties: the first (lower) index
    const at::Tensor idx = std::get<1>(mn).to(at::kInt).contiguous();
    std::copy(idx.data_ptr<int32_t>(), idx.data_ptr<int32_t>() + (e - b), out.begin() + b);
    if (dist2) {
      const at::Tensor d = (std::get<0>(mn) + (x * x).sum(1)).clamp_min(0).contiguous();
      std::copy(d.data_ptr<double>(), d.data_ptr<double>() + (e - b), dist2->begin() + b);
    }
  }
  return out;
}

KMeansResult kmeans(const at::Tensor& x, const std::vector<int64_t>& gid, const KMeansOptions& opt,
                    dist::Communicator& comm) {
  torch::NoGradGuard no_grad;
  opt.validate();
  if (x.dim() != 2 || x.size(0) != int64_t(gid.size()))
    throw DataError(fmt::format("kmeans: {} rows of features but {} global ids", x.size(0), gid.size()));
  const int64_t d = x.size(1);
  const int k = opt.k;
  const double n_total = comm.allreduce_value(double(x.size(0)));
  if (n_total < k)
    throw DataError(fmt::format("cluster.k = {} is larger than the number of rows clustered ({:.0f}); lower cluster.k "
                                "to at most {:.0f} (or cluster more rows)",
                                k, n_total, n_total));
  KMeansResult res;
  // The sample the centroids are fitted on, and its pool for k-means++.
  const double frac = opt.sample > 0 ? double(opt.sample) / n_total : 1.0;
  const std::vector<int64_t> srows = select_rows(gid, opt.seed, kSampleStream, frac);
  const at::Tensor xs = take(x, srows);
  std::vector<int64_t> sgid(srows.size());
  for (size_t i = 0; i < srows.size(); ++i) sgid[i] = gid[size_t(srows[i])];
  res.fitted_rows = int64_t(comm.allreduce_value(double(srows.size())));
  if (res.fitted_rows < k)  // an unlucky small sample: fit on every row instead
    return kmeans(x, gid, [&] { KMeansOptions o = opt; o.sample = 0; return o; }(), comm);
  at::Tensor c;
  if (opt.init.defined()) {
    if (opt.init.dim() != 2 || opt.init.size(0) != k || opt.init.size(1) != d)
      throw DataError(fmt::format("kmeans: the initial centroids are {} x {}; need k x d = {} x {}", opt.init.size(0),
                                  opt.init.dim() > 1 ? opt.init.size(1) : 0, k, d));
    c = opt.init.to(at::kDouble).contiguous().clone();
  } else {
    const int64_t pool_target = opt.seed_pool > 0 ? opt.seed_pool : std::max<int64_t>(10000, 20 * int64_t(k));
    const double pool_frac = double(pool_target) / double(res.fitted_rows);
    std::vector<int64_t> pool_rows;
    for (size_t i = 0; i < srows.size(); ++i)
      if (pool_frac >= 1 || draw(opt.seed, kPoolStream, sgid[i]) < pool_frac) pool_rows.push_back(srows[i]);
    at::Tensor pool = gather_pool(x, gid, pool_rows, d, comm);
    if (pool.size(0) < k) pool = gather_pool(x, gid, srows, d, comm);  // fewer pooled rows than clusters: pool all
    c = seed_plus_plus(pool, k, opt.seed);
  }

  const double mean_sq = comm.allreduce_value((xs * xs).sum().item<double>()) / double(res.fitted_rows);
  const double tol = opt.tol * std::max(mean_sq, 1e-300);
  std::vector<int32_t> labels(srows.size(), -1);
  at::Tensor seen = torch::zeros({k}, torch::kDouble);  // mini-batch: rows each centre has absorbed so far
  for (int it = 1; it <= opt.max_iter; ++it) {
    res.iterations = it;
    at::Tensor next;
    if (!opt.minibatch) {
      std::vector<double> d2;
      std::vector<int32_t> lab = nearest(xs, c, &d2);
      double changed = 0;
      for (size_t i = 0; i < lab.size(); ++i) changed += lab[i] != labels[i];
      labels = std::move(lab);
      const Reduced r = reduce_assignment(xs, labels, d2, changed, k, comm);
      next = r.sums / r.counts.clamp_min(1).unsqueeze(1);
      // an empty cluster keeps its centroid until reseeded below
      const at::Tensor empty = r.counts.eq(0);
      next.index_put_({empty}, c.index({empty}));
      if (empty.any().item<bool>()) {
        res.reseeded += reseed_empty(next, r.counts, xs, sgid, d2, comm);
        c = next;
        continue;  // a reseeded centre needs another pass
      }
      const double shift = (next - c).pow(2).sum(1).max().item<double>();
      c = next;
      if (r.changed == 0 || shift <= tol) {
        res.converged = true;
        break;
      }
    } else {
      const double bfrac = double(opt.batch) / double(res.fitted_rows);
      std::vector<int64_t> brows;
      for (size_t i = 0; i < srows.size(); ++i)
        if (bfrac >= 1 || draw(opt.seed, kBatchStream + uint64_t(it), sgid[i]) < bfrac) brows.push_back(int64_t(i));
      const at::Tensor xb = xs.index_select(0, torch::tensor(brows, torch::kLong));
      std::vector<double> d2;
      const std::vector<int32_t> lab = nearest(xb, c, &d2);
      const Reduced r = reduce_assignment(xb, lab, d2, 0, k, comm);
      // Sculley's per-centre learning rate 1/(rows absorbed), applied to the batch's mean pull on each centre.
      seen += r.counts;
      next = c + (r.sums - r.counts.unsqueeze(1) * c) / seen.clamp_min(1).unsqueeze(1);
      const double shift = (next - c).pow(2).sum(1).max().item<double>();
      c = next;
      if (shift <= tol) {
        res.converged = true;
        break;
      }
    }
  }
  if (opt.minibatch) {  // centres no batch ever reached: reseed them from the sample, then one Lloyd pass to settle
    std::vector<double> d2;
    const std::vector<int32_t> lab = nearest(xs, c, &d2);
    const Reduced r = reduce_assignment(xs, lab, d2, 0, k, comm);
    if (r.counts.eq(0).any().item<bool>()) res.reseeded += reseed_empty(c, r.counts, xs, sgid, d2, comm);
  }
  std::vector<double> d2;
  res.label = nearest(x, c, &d2);
  double inertia = 0;
  for (double v : d2) inertia += v;
  res.inertia = comm.allreduce_value(inertia);
  res.centroids = c;
  return res;
}

double adjusted_rand_index(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  if (a.size() != b.size()) throw DataError("adjusted_rand_index: labelings of different lengths");
  const double n = double(a.size());
  std::map<std::pair<int32_t, int32_t>, double> nij;
  std::map<int32_t, double> ai, bj;
  for (size_t i = 0; i < a.size(); ++i) nij[{a[i], b[i]}] += 1, ai[a[i]] += 1, bj[b[i]] += 1;
  auto c2 = [](double v) { return v * (v - 1) / 2; };
  double sij = 0, sa = 0, sb = 0;
  for (const auto& kv : nij) sij += c2(kv.second);
  for (const auto& kv : ai) sa += c2(kv.second);
  for (const auto& kv : bj) sb += c2(kv.second);
  const double expected = sa * sb / c2(n), mx = 0.5 * (sa + sb);
  return mx == expected ? 1.0 : (sij - expected) / (mx - expected);
}

}  // namespace dfcl::cluster
