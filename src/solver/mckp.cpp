// \brief DualPath and the bisection baseline (see mckp.h).
#include "solver/mckp.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::sort
#include <cmath>      // for std::isfinite
#include <cstring>    // for std::memcpy
#include <limits>     // for std::numeric_limits
#include <tuple>      // for std::tie

#include "core/error.h"     // for ConfigError, DataError
#include "core/parallel.h"  // for parallel_for
#include "core/threads.h"   // for resolve_threads
#include "solver/hull.h"    // for row_hull, breakpoint

namespace dfcl::solver {
namespace {

constexpr int kBucketBits = 16;
constexpr int kBuckets = 1 << kBucketBits;
constexpr int64_t kBlock = 1 << 14;  // users per parallel task
constexpr int64_t kLanes = 16;       // fixed user ranges for the histogram (thread-count independent sums)

// Order-preserving bucket of a positive slope: the top bits of its float representation.
inline uint32_t bucket_of(double lambda) {
  float f = static_cast<float>(lambda);
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits >> (32 - kBucketBits);
}

void check_shape(const Scores& s) {
  if (s.m < 1 || s.m > kMaxArms)
    throw DataError(fmt::format("scores: {} arms; the solver handles 1 to {}", s.m, kMaxArms));
  if (s.n > int64_t(UINT32_MAX)) throw DataError("scores: more than 2^32 users in one solver call; shard the users");
}

// Throws for the first non-finite value of user i (called only when a row's sum is not finite).
void check_row(const Scores& s, int64_t i) {
  for (int j = 0; j < s.m; ++j)
    if (!std::isfinite(s.r[i * s.m + j]) || !std::isfinite(s.c[i * s.m + j]))
      throw DataError(fmt::format("scores: user {}, arm {}: revenue {} / cost {} is not finite; fix the model output",
                                  i, j, s.r[i * s.m + j], s.c[i * s.m + j]));
}

void check_scores(const Scores& s) {
  check_shape(s);
  for (int64_t i = 0; i < s.n; ++i) check_row(s, i);
}

}  // namespace

// A segment in the total order the dual path uses: larger lambda first, then lower user, then earlier k.
struct DualPath::Key {
  double lambda;
  uint32_t user;
  uint8_t k;
  double dc, dr;
  bool before(const Key& o) const {
    if (lambda != o.lambda) return lambda > o.lambda;
    if (user != o.user) return user < o.user;
    return k < o.k;
  }
};

DualPath::Key DualPath::key(int64_t i, int k) const {
  const int M = s_.m;
  const uint8_t* hu = &hull_[size_t(i) * M];
  const float* r = s_.r + i * M;
  const float* c = s_.c + i * M;
  return {breakpoint(r, c, hu[k], hu[k + 1]), uint32_t(i), uint8_t(k), double(c[hu[k + 1]]) - c[hu[k]],
          double(r[hu[k + 1]]) - r[hu[k]]};
}

template <class KeepBucket>
void DualPath::collect(KeepBucket keep, std::vector<Key>& out) const {
  for (int64_t i = 0; i < s_.n; ++i)
    for (int k = 0; k + 1 < hull_size_[i]; ++k) {
      Key x = key(i, k);
      if (keep(int(bucket_of(x.lambda)))) out.push_back(x);
    }
}

DualPath::DualPath(const Scores& s, int threads) : s_(s), threads_(resolve_threads(threads)) {
  check_shape(s);
  const int M = s.m;
  hull_.assign(size_t(s.n) * M, 0);
  hull_size_.assign(s.n, 0);
  seg_bucket_.reset(new uint16_t[std::max<size_t>(1, size_t(s.n) * (M - 1))]);  // written before read; no zero fill
  const int64_t blocks = (s.n + kBlock - 1) / kBlock;
  std::vector<double> spend(blocks), rev(blocks), dc(blocks), dr(blocks), mx(blocks);
  std::vector<int64_t> segs(blocks);
  // Spend per slope bucket over all segments is built here too, once. Lanes are fixed runs of blocks merged in
  // lane order, so the sums (and every budget's cut) are the same for any thread count.
  const int64_t lanes = std::min<int64_t>(kLanes, std::max<int64_t>(1, blocks / 32));  // small inputs: one lane
  std::vector<std::vector<double>> lane_hist(lanes);
  parallel_for(lanes, threads_, [&](int64_t l) {
    auto& hist = lane_hist[l];
    hist.assign(kBuckets, 0.0);
    for (int64_t b = blocks * l / lanes; b < blocks * (l + 1) / lanes; ++b) {
      const int64_t lo = b * kBlock, hi = std::min(s.n, (b + 1) * kBlock);
      // One vectorisable scan of the block: non-finite values (exponent all ones) and the largest revenue.
      uint32_t bad = 0;
      float m = -INFINITY;
      for (int64_t k = lo * M; k < hi * M; ++k) {
        uint32_t br, bc;
        std::memcpy(&br, &s.r[k], 4);
        std::memcpy(&bc, &s.c[k], 4);
        bad |= uint32_t((br & 0x7f800000u) == 0x7f800000u) | uint32_t((bc & 0x7f800000u) == 0x7f800000u);
        m = std::max(m, s.r[k]);
      }
      if (bad)
        for (int64_t i = lo; i < hi; ++i) check_row(s, i);
      double sp = 0, rv = 0, tc = 0, tr = 0;
      int64_t ns = 0;
      for (int64_t i = lo; i < hi; ++i) {
        const float* r = s.r + i * M;
        const float* c = s.c + i * M;
        uint8_t* h = &hull_[size_t(i) * M];
        int hs = row_hull(r, c, M, h);
        hull_size_[i] = static_cast<uint8_t>(hs);
        ns += hs - 1;
        sp += c[h[0]], rv += r[h[0]];
        tc += double(c[h[hs - 1]]) - c[h[0]], tr += double(r[h[hs - 1]]) - r[h[0]];
        for (int k = 0; k + 1 < hs; ++k) {
          const uint32_t bk = bucket_of(breakpoint(r, c, h[k], h[k + 1]));
          seg_bucket_[size_t(i) * (M - 1) + k] = static_cast<uint16_t>(bk);
          hist[bk] += double(c[h[k + 1]]) - c[h[k]];
        }
      }
      spend[b] = sp, rev[b] = rv, dc[b] = tc, dr[b] = tr, mx[b] = m, segs[b] = ns;
    }
  });
  hist_.assign(kBuckets, 0.0);
  for (const auto& h : lane_hist)
    for (int b = 0; b < kBuckets; ++b) hist_[b] += h[b];
  max_r_ = s.n > 0 ? -1e300 : 0;
  for (int64_t b = 0; b < blocks; ++b) {  // fixed order: the sums do not depend on the thread count
    base_spend_ += spend[b], base_revenue_ += rev[b], total_dc_ += dc[b], total_dr_ += dr[b];
    max_r_ = std::max(max_r_, mx[b]);
    segments_ += segs[b];
  }
}

void DualPath::assign(const std::vector<uint8_t>& taken, Allocation& a) const {
  const int M = s_.m;
  a.arm.resize(s_.n);
  const int64_t blocks = (s_.n + kBlock - 1) / kBlock;
  std::vector<double> sp(blocks), rv(blocks);
  parallel_for(blocks, threads_, [&](int64_t b) {
    double s = 0, r = 0;
    for (int64_t i = b * kBlock, e = std::min(s_.n, (b + 1) * kBlock); i < e; ++i) {
      int j = hull_[size_t(i) * M + taken[i]];
      a.arm[i] = static_cast<uint8_t>(j);
      s += s_.c[i * M + j], r += s_.r[i * M + j];
    }
    sp[b] = s, rv[b] = r;
  });
  a.spend = a.revenue = 0;
  for (int64_t b = 0; b < blocks; ++b) a.spend += sp[b], a.revenue += rv[b];
}

Allocation DualPath::solve(double budget, const SolveOptions& opt) const {
  if (!std::isfinite(budget)) throw ConfigError(fmt::format("budget {} is not a finite number", budget));
  const int M = s_.m;
  Allocation a;
  a.budget = budget;
  a.max_revenue = max_r_;
  std::vector<uint8_t> taken(s_.n, 0);  // hull segments taken per user (a prefix of the user's hull)

  if (budget < base_spend_) {
    if (!opt.clamp_below_min)
      throw ConfigError(
          fmt::format("budget {} is below the minimum possible spend {} (every user on their cheapest arm); "
                      "raise the budget, or clamp it to the cheapest policy (dfcl allocate: allocate.clamp=true; "
                      "SolveOptions::clamp_below_min)",
                      budget, base_spend_));
    a.clamped = true;
    a.note = fmt::format("budget {:.6g} < minimum spend {:.6g}: clamped to the cheapest policy", budget, base_spend_);
    a.lambda = std::numeric_limits<double>::infinity();
    assign(taken, a);
    a.lp_bound = a.revenue;
    return a;
  }
  const double room = budget - base_spend_;
  if (room >= total_dc_) {  // saturated: lambda* = 0, everyone on their best-revenue arm
    for (int64_t i = 0; i < s_.n; ++i) taken[i] = static_cast<uint8_t>(hull_size_[i] - 1);
    a.saturated = true;
    a.lambda = 0;
    a.note = fmt::format("budget {:.6g} >= maximum useful spend {:.6g}: every user gets their best-revenue arm", budget,
                         max_spend());
    assign(taken, a);
    a.lp_bound = a.revenue;
    return a;
  }

  // The bucket where the budget binds, from the histogram built once (float bits keep the order of slopes).
  double before = 0;
  int cut = kBuckets - 1;
  for (; cut >= 0; --cut) {
    if (before + hist_[cut] > room) break;
    before += hist_[cut];
  }
  // One pass: segments above the cut bucket are taken; those inside it are collected for an exact ordering.
  const int64_t blocks = (s_.n + kBlock - 1) / kBlock;
  std::vector<std::vector<Key>> found(blocks);
  parallel_for(blocks, threads_, [&](int64_t b) {
    for (int64_t i = b * kBlock, e = std::min(s_.n, (b + 1) * kBlock); i < e; ++i) {
      const uint16_t* sb = &seg_bucket_[size_t(i) * (M - 1)];
      int k = 0;
      for (; k + 1 < hull_size_[i]; ++k) {
        const int bk = sb[k];
        if (bk < cut) break;
        if (bk == cut) {  // this and any later segment of the user in the same bucket: decided after the sort
          for (int q = k; q + 1 < hull_size_[i] && sb[q] == cut; ++q) found[b].push_back(key(i, q));
          break;
        }
      }
      taken[i] = static_cast<uint8_t>(k);
    }
  });
  std::vector<Key> keys;
  for (auto& f : found) keys.insert(keys.end(), f.begin(), f.end());
  std::sort(keys.begin(), keys.end(), [](const Key& x, const Key& y) { return x.before(y); });
  size_t split = 0;
  double used = before;
  for (; split < keys.size() && used + keys[split].dc <= room; ++split) used += keys[split].dc;
  const Key* first_out = split < keys.size() ? &keys[split] : nullptr;
  // Taken keys of the cut bucket extend their user's prefix (a user's slopes decrease, so they come in k order).
  for (size_t q = 0; q < split; ++q)
    taken[keys[q].user] = std::max<uint8_t>(taken[keys[q].user], static_cast<uint8_t>(keys[q].k + 1));
  assign(taken, a);
  a.lambda = first_out ? first_out->lambda : 0.0;
  double frac = first_out ? (room - used) / first_out->dc : 0.0;
  a.lp_bound = a.revenue + (first_out ? frac * first_out->dr : 0.0);
  a.gap_bound = a.lp_bound - a.revenue;

  if (opt.greedy_fill && first_out) {
    // Remaining segments in the same total order; a user's next segment is eligible once its previous one is taken.
    std::vector<Key> rest(keys.begin() + split, keys.end());
    collect([cut](int bucket) { return bucket < cut; }, rest);
    std::sort(rest.begin(), rest.end(), [](const Key& x, const Key& y) { return x.before(y); });
    double left = room - (a.spend - base_spend_);
    std::vector<uint8_t> moved(s_.n, 0);
    for (const Key& k : rest) {
      if (taken[k.user] != k.k || k.dc > left) continue;
      left -= k.dc;
      taken[k.user] = static_cast<uint8_t>(k.k + 1);
      a.arm[k.user] = hull_[size_t(k.user) * M + k.k + 1];
      a.fill_spend += k.dc, a.fill_revenue += k.dr;
      if (!moved[k.user]) moved[k.user] = 1, ++a.fill_users;
    }
  }
  return a;
}

std::vector<CurvePoint> DualPath::curve(int64_t max_points) const {
  std::vector<Key> keys;
  keys.reserve(size_t(segments_));
  collect([](int) { return true; }, keys);
  std::sort(keys.begin(), keys.end(), [](const Key& x, const Key& y) { return x.before(y); });
  std::vector<CurvePoint> out;
  const int64_t S = static_cast<int64_t>(keys.size());
  const int64_t stride = max_points > 1 && S + 1 > max_points ? (S + max_points - 2) / (max_points - 1) : 1;
  double sp = base_spend_, rv = base_revenue_;
  out.push_back({keys.empty() ? 0.0 : keys[0].lambda, sp, rv});
  for (int64_t k = 0; k < S; ++k) {
    sp += keys[k].dc, rv += keys[k].dr;
    if ((k + 1) % stride == 0 || k + 1 == S) out.push_back({keys[k].lambda, sp, rv});
  }
  return out;
}

void policy_at(const Scores& s, double lambda, std::vector<uint8_t>& arm) {
  arm.resize(s.n);
  for (int64_t i = 0; i < s.n; ++i)
    arm[i] = static_cast<uint8_t>(row_policy(s.r + i * s.m, s.c + i * s.m, s.m, lambda));
}

Allocation solve_bisection(const Scores& s, double budget, int max_iter, double eps) {
  check_scores(s);
  Allocation a;
  a.budget = budget;
  const int M = s.m;
  auto spend_at = [&](double lambda, std::vector<uint8_t>& arm) {
    policy_at(s, lambda, arm);
    double sp = 0;
    for (int64_t i = 0; i < s.n; ++i) sp += s.c[i * M + arm[i]];
    return sp;
  };
  // Upper bracket: the largest first breakpoint of any user's hull. Above it every user is on their cheapest hull arm,
  // whatever the signs of r and c (a ratio max r/c is no bound when control earns < 0 or costs > 0).
  double hi = 0;
  uint8_t hull[kMaxArms];
  for (int64_t i = 0; i < s.n; ++i) {
    const float *r = s.r + i * M, *c = s.c + i * M;
    if (row_hull(r, c, M, hull) > 1) hi = std::max(hi, breakpoint(r, c, hull[0], hull[1]));
  }
  hi = hi * (1 + 1e-9) + 1e-300;  // strictly above: ties at the breakpoint go to the cheaper arm anyway
  double lo = 0;
  std::vector<uint8_t> arm;
  if (spend_at(0, arm) <= budget) {
    a.saturated = true;
    hi = 0;
  } else {
    for (int it = 0; it < max_iter && hi - lo > eps * hi; ++it) {
      double mid = 0.5 * (lo + hi);
      (spend_at(mid, arm) > budget ? lo : hi) = mid;
    }
  }
  a.lambda = hi;  // the feasible side
  double sp = spend_at(hi, a.arm);
  if (sp > budget)
    throw ConfigError(fmt::format("budget {} is below the minimum possible spend {} (every user on their cheapest arm); "
                                  "raise the budget",
                                  budget, sp));
  a.spend = sp;
  for (int64_t i = 0; i < s.n; ++i) a.revenue += s.r[i * M + a.arm[i]];
  // The Lagrangian bound at the final lambda: sum_i max_j (r_ij - lambda c_ij) + lambda B >= the integer optimum.
  double g = a.lambda * budget;
  for (int64_t i = 0; i < s.n; ++i) {
    double best = -std::numeric_limits<double>::infinity();
    for (int j = 0; j < M; ++j) best = std::max(best, double(s.r[i * M + j]) - a.lambda * double(s.c[i * M + j]));
    g += best;
  }
  a.lp_bound = g;
  a.gap_bound = g - a.revenue;
  return a;
}

}  // namespace dfcl::solver
