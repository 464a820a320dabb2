// \brief IpwPath construction, weighting and queries (see ipw_path.h).
#include "metrics/ipw_path.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::sort, std::partition_point
#include <cmath>      // for std::isinf
#include <limits>     // for std::numeric_limits

#include "core/error.h"           // for DataError
#include "core/parallel.h"        // for parallel_for
#include "core/threads.h"         // for resolve_threads
#include "metrics/ipw_rows.h"     // for ipw_row_events (the device evaluation's row function)
#include "metrics/score_table.h"  // for check_scores, check_same_shape

namespace dfcl::metrics {
namespace {

constexpr int64_t kRowBlock = 1 << 14;  // rows per parallel task
constexpr int64_t kEventBlock = 256;    // events per stored block sum
constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace

IpwPath::IpwPath(const solver::Scores& sc, const RctSample& sample, int threads) : s_(sample) {
  validate(s_, "RCT sample");
  check_scores(sc, "scores");
  check_same_shape(sc, s_.n, s_.m, "scores");
  if (s_.n >= (int64_t(1) << 31))
    throw DataError(fmt::format("RCT sample: {} rows; one evaluation handles < 2^31 rows, evaluate shards", s_.n));
  threads = resolve_threads(threads);
  const int M = s_.m;
  const int64_t blocks = (s_.n + kRowBlock - 1) / kRowBlock;
  std::vector<int64_t> offset(blocks + 1, 0);
  std::vector<LambdaBound> part(blocks);
  // Pass 1: hull per row, event counts per block, the lambda bound.
  parallel_for(blocks, threads, [&](int64_t b) {
    int64_t cnt = 0;
    for (int64_t i = b * kRowBlock, e = std::min(s_.n, (b + 1) * kRowBlock); i < e; ++i)
      cnt += ipw_row_events(sc.r + i * M, sc.c + i * M, M, s_.arm[i], part[b]).events;
    offset[b + 1] = cnt;
  });
  for (int64_t b = 0; b < blocks; ++b) {
    offset[b + 1] += offset[b];
    merge_bound(part[b], bound_);
  }
  finish_bound(bound_);
  // Pass 2: write the events into each block's slot.
  ev_.resize(offset[blocks]);
  parallel_for(blocks, threads, [&](int64_t b) {
    Event* out = ev_.data() + offset[b];
    LambdaBound unused;
    for (int64_t i = b * kRowBlock, e = std::min(s_.n, (b + 1) * kRowBlock); i < e; ++i) {
      const IpwRowEvents ev = ipw_row_events(sc.r + i * M, sc.c + i * M, M, s_.arm[i], unused);
      const uint32_t row = static_cast<uint32_t>(i) << 1;
      if (ev.events > 0) *out++ = {ev.enter, row};
      if (ev.events > 1) *out++ = {ev.leave, row | 1u};
    }
  });
  std::sort(ev_.begin(), ev_.end(),
            [](const Event& a, const Event& b) { return a.lambda != b.lambda ? a.lambda > b.lambda : a.tag < b.tag; });
  unit_ = weigh(nullptr);
}

inline void IpwPath::add(const Event& e, const Weights& w, double& r, double& c) const {
  const int64_t i = e.tag >> 1;
  double f = (w.counts ? double(w.counts[i]) : 1.0) * w.inv_p[s_.arm[i]];
  if (e.tag & 1u) f = -f;
  r += f * s_.revenue[i];
  c += f * s_.cost[i];
}

IpwPath::Weights IpwPath::weigh(const uint32_t* counts) const {
  Weights w;
  w.counts = counts;
  std::vector<double> p = s_.propensity;
  if (counts && s_.empirical) p = empirical_propensity(s_.arm, s_.n, s_.m, counts);
  w.inv_p.resize(s_.m);
  for (int j = 0; j < s_.m; ++j) w.inv_p[j] = p[j] > 0 ? 1.0 / p[j] : 0.0;
  if (counts) {
    for (int64_t i = 0; i < s_.n; ++i) w.total += counts[i];
  } else {
    w.total = static_cast<double>(s_.n);
  }
  if (w.total <= 0) throw DataError("no RCT rows: the sample (or its bootstrap replicate) has total weight 0");
  const int64_t E = events(), nb = E / kEventBlock + 1;
  w.block_r.assign(nb, 0.0);
  w.block_c.assign(nb, 0.0);
  double r = 0, c = 0;
  for (int64_t e = 0; e < E; ++e) {
    if (e % kEventBlock == 0) w.block_r[e / kEventBlock] = r, w.block_c[e / kEventBlock] = c;
    add(ev_[e], w, r, c);
  }
  if (E % kEventBlock == 0) w.block_r[nb - 1] = r, w.block_c[nb - 1] = c;
  return w;
}

PolicyValue IpwPath::at(double lambda, const Weights& w) const {
  // Events taken: lambda_e > lambda (at lambda_e itself the row keeps its cheaper arm). +inf takes the +inf events.
  auto it = std::isinf(lambda)
                ? std::partition_point(ev_.begin(), ev_.end(), [](const Event& e) { return std::isinf(e.lambda); })
                : std::partition_point(ev_.begin(), ev_.end(), [lambda](const Event& e) { return e.lambda > lambda; });
  const int64_t p = it - ev_.begin(), b = p / kEventBlock;
  double r = w.block_r[b], c = w.block_c[b];
  for (int64_t e = b * kEventBlock; e < p; ++e) add(ev_[e], w, r, c);
  return {r / w.total, c / w.total};
}

void IpwPath::sweep(const std::function<void(double, const PolicyValue&)>& fn) const {
  const int64_t E = events();
  const double W = unit_.total;
  double r = 0, c = 0;
  int64_t e = 0;
  for (; e < E && std::isinf(ev_[e].lambda); ++e) add(ev_[e], unit_, r, c);
  fn(kInf, {r / W, c / W});
  while (e < E) {
    const double lam = ev_[e].lambda;
    for (; e < E && ev_[e].lambda == lam; ++e) add(ev_[e], unit_, r, c);
    fn(lam, {r / W, c / W});
  }
}

}  // namespace dfcl::metrics
