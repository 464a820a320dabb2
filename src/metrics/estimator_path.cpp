// \brief EstimatorPath construction and queries (see estimator_path.h).
#include "metrics/estimator_path.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::sort, std::partition_point
#include <cmath>      // for std::isinf
#include <limits>     // for std::numeric_limits

#include "core/error.h"           // for DataError
#include "core/parallel.h"        // for parallel_for
#include "core/threads.h"         // for resolve_threads
#include "metrics/score_table.h"  // for check_scores, check_same_shape
#include "solver/hull.h"          // for row_hull, breakpoint, kMaxArms

namespace dfcl::metrics {
namespace {

constexpr int64_t kRowBlock = 1 << 14;
constexpr int64_t kEventBlock = 256;
constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace

EstimatorPath::~EstimatorPath() = default;
EstimatorPath::EstimatorPath(EstimatorPath&&) noexcept = default;

EstimatorPath::EstimatorPath(const solver::Scores& sc, const RctSample& sample, EstimatorKind kind,
                             const solver::Scores* outcome, int threads)
    : s_(sample), kind_(kind) {
  validate(s_, "RCT sample");
  check_scores(sc, "scores");
  check_same_shape(sc, s_.n, s_.m, "scores");
  threads = resolve_threads(threads);
  const int M = s_.m;
  const int64_t n = s_.n;
  const bool dr = needs_outcome_model(kind);
  if (dr) {
    if (!outcome || outcome->n == 0)
      throw DataError(fmt::format("the {} estimator needs an outcome model's predictions for the trial rows; give "
                                  "estimator.outcome_model or use estimator.kind=ipw",
                                  to_string(kind)));
    check_scores(*outcome, "the outcome model's predictions");
    check_same_shape(*outcome, n, M, "the outcome model's predictions");
    om_ = *outcome;
    resid_r_.resize(size_t(n)), resid_c_.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) {
      const int t = s_.arm[i];
      resid_r_[size_t(i)] = float(double(s_.revenue[i]) - double(om_.r[i * M + t]));
      resid_c_[size_t(i)] = float(double(s_.cost[i]) - double(om_.c[i * M + t]));
    }
    resid_s_ = s_;
    resid_s_.revenue = resid_r_.data(), resid_s_.cost = resid_c_.data();
    correction_ = std::make_unique<IpwPath>(sc, resid_s_, threads);
  } else {
    correction_ = std::make_unique<IpwPath>(sc, s_, threads);
  }
  if (self_normalised(kind)) {
    ones_.assign(size_t(n), 1.0f);
    ones_s_ = s_;
    ones_s_.revenue = ones_.data(), ones_s_.cost = ones_.data();
    mass_ = std::make_unique<IpwPath>(sc, ones_s_, threads);
  }
  if (dr) {
    if (n >= (int64_t(1) << 32)) throw DataError(fmt::format("RCT sample: {} rows; evaluate shards", n));
    // The direct part's events: each row's hull, one event per hull step.
    const int64_t blocks = (n + kRowBlock - 1) / kRowBlock;
    std::vector<int64_t> offset(size_t(blocks) + 1, 0);
    start_.resize(size_t(n));
    parallel_for(blocks, threads, [&](int64_t b) {
      uint8_t h[solver::kMaxArms];
      int64_t cnt = 0;
      for (int64_t i = b * kRowBlock, e = std::min(n, (b + 1) * kRowBlock); i < e; ++i) {
        const int hs = solver::row_hull(sc.r + i * M, sc.c + i * M, M, h);
        start_[size_t(i)] = h[0];
        cnt += hs - 1;
      }
      offset[size_t(b) + 1] = cnt;
    });
    for (int64_t b = 0; b < blocks; ++b) offset[size_t(b) + 1] += offset[size_t(b)];
    ev_.resize(size_t(offset[size_t(blocks)]));
    parallel_for(blocks, threads, [&](int64_t b) {
      uint8_t h[solver::kMaxArms];
      Event* out = ev_.data() + offset[size_t(b)];
      for (int64_t i = b * kRowBlock, e = std::min(n, (b + 1) * kRowBlock); i < e; ++i) {
        const float* r = sc.r + i * M;
        const float* c = sc.c + i * M;
        const int hs = solver::row_hull(r, c, M, h);
        for (int k = 0; k + 1 < hs; ++k) *out++ = {solver::breakpoint(r, c, h[k], h[k + 1]), uint32_t(i), h[k], h[k + 1]};
      }
    });
    std::sort(ev_.begin(), ev_.end(), [](const Event& a, const Event& b) {
      return a.lambda != b.lambda ? a.lambda > b.lambda : (a.row != b.row ? a.row < b.row : a.to < b.to);
    });
  }
  unit_ = weigh(nullptr);
}

inline void EstimatorPath::add(const Event& e, const Weights& w, double& r, double& c) const {
  const double f = w.counts ? double(w.counts[e.row]) : 1.0;
  const int64_t base = int64_t(e.row) * s_.m;
  r += f * (double(om_.r[base + e.to]) - double(om_.r[base + e.from]));
  c += f * (double(om_.c[base + e.to]) - double(om_.c[base + e.from]));
}

EstimatorPath::Weights EstimatorPath::weigh(const uint32_t* counts) const {
  Weights w;
  w.counts = counts;
  w.correction = correction_->weigh(counts);
  if (mass_) w.mass = mass_->weigh(counts);
  w.total = w.correction.total;
  if (om_.n == 0) return w;
  // The direct part at lambda = +inf: every row on its cheapest hull arm; then the events.
  double r = 0, c = 0;
  const int M = s_.m;
  for (int64_t i = 0; i < s_.n; ++i) {
    const double f = counts ? double(counts[i]) : 1.0;
    r += f * om_.r[i * M + start_[size_t(i)]], c += f * om_.c[i * M + start_[size_t(i)]];
  }
  const int64_t E = int64_t(ev_.size()), nb = E / kEventBlock + 1;
  w.block_r.assign(size_t(nb), 0.0), w.block_c.assign(size_t(nb), 0.0);
  for (int64_t e = 0; e < E; ++e) {
    if (e % kEventBlock == 0) w.block_r[size_t(e / kEventBlock)] = r, w.block_c[size_t(e / kEventBlock)] = c;
    add(ev_[size_t(e)], w, r, c);
  }
  if (E % kEventBlock == 0) w.block_r[size_t(nb - 1)] = r, w.block_c[size_t(nb - 1)] = c;
  return w;
}

PolicyValue EstimatorPath::combine(const PolicyValue& corr, const PolicyValue& mass, double dm_r, double dm_c,
                                   double total) const {
  double cr = corr.revenue, cc = corr.cost;
  if (mass_) {
    const double mv = mass.revenue;  // (1/N) sum 1[t = pi] w
    cr = mv > 0 ? cr / mv : 0.0, cc = mv > 0 ? cc / mv : 0.0;
  }
  return {dm_r / total + cr, dm_c / total + cc};
}

PolicyValue EstimatorPath::at(double lambda, const Weights& w) const {
  const PolicyValue corr = correction_->at(lambda, w.correction);
  const PolicyValue mass = mass_ ? mass_->at(lambda, w.mass) : PolicyValue{1, 1};
  double r = 0, c = 0;
  if (om_.n > 0) {
    auto it = std::isinf(lambda)
                  ? std::partition_point(ev_.begin(), ev_.end(), [](const Event& e) { return std::isinf(e.lambda); })
                  : std::partition_point(ev_.begin(), ev_.end(), [lambda](const Event& e) { return e.lambda > lambda; });
    const int64_t p = it - ev_.begin(), b = p / kEventBlock;
    r = w.block_r[size_t(b)], c = w.block_c[size_t(b)];
    for (int64_t e = b * kEventBlock; e < p; ++e) add(ev_[size_t(e)], w, r, c);
  }
  return combine(corr, mass, r, c, w.total);
}

PolicyValue EstimatorPath::uniform(int arm, const uint32_t* counts) const {
  if (arm < 0 || arm >= s_.m) throw DataError(fmt::format("arm {} is outside [0, {})", arm, s_.m));
  const PolicyValue corr = uniform_policy_value(om_.n > 0 ? resid_s_ : s_, arm, counts);
  PolicyValue mass{1, 1};
  if (mass_) mass = uniform_policy_value(ones_s_, arm, counts);
  double r = 0, c = 0, total = 0;
  for (int64_t i = 0; i < s_.n; ++i) {
    const double f = counts ? double(counts[i]) : 1.0;
    total += f;
    if (om_.n > 0) r += f * om_.r[i * s_.m + arm], c += f * om_.c[i * s_.m + arm];
  }
  // uniform_policy_value uses the sample's propensities as they are; with an empirical sample under counts the shares
  // differ, which only the bootstrap would see: callers use unit weights for the curve.
  return combine(corr, mass, r, c, total);
}

void EstimatorPath::sweep(const std::function<void(double, const PolicyValue&)>& fn) const {
  // Merge the parts' step functions in decreasing lambda: each part's value is its latest step at or above lambda.
  std::vector<std::pair<double, PolicyValue>> corr, mass;
  correction_->sweep([&](double l, const PolicyValue& v) { corr.emplace_back(l, v); });
  if (mass_) mass_->sweep([&](double l, const PolicyValue& v) { mass.emplace_back(l, v); });
  std::vector<std::pair<double, PolicyValue>> dm;  // raw sums (not divided)
  if (om_.n > 0) {
    double r = unit_.block_r.empty() ? 0 : unit_.block_r[0], c = unit_.block_c.empty() ? 0 : unit_.block_c[0];
    size_t e = 0;
    for (; e < ev_.size() && std::isinf(ev_[e].lambda); ++e) add(ev_[e], unit_, r, c);
    dm.emplace_back(kInf, PolicyValue{r, c});
    while (e < ev_.size()) {
      const double lam = ev_[e].lambda;
      for (; e < ev_.size() && ev_[e].lambda == lam; ++e) add(ev_[e], unit_, r, c);
      dm.emplace_back(lam, PolicyValue{r, c});
    }
  }
  size_t a = 0, b = 0, d = 0;  // next unread step of each part
  PolicyValue vc = corr[0].second, vm = mass_ ? mass[0].second : PolicyValue{1, 1},
              vd = dm.empty() ? PolicyValue{} : dm[0].second;
  a = 1, b = 1, d = 1;
  fn(kInf, combine(vc, vm, vd.revenue, vd.cost, unit_.total));
  for (;;) {
    double next = -1;
    if (a < corr.size()) next = std::max(next, corr[a].first);
    if (mass_ && b < mass.size()) next = std::max(next, mass[b].first);
    if (d < dm.size()) next = std::max(next, dm[d].first);
    if (next < 0) break;
    if (a < corr.size() && corr[a].first == next) vc = corr[a++].second;
    if (mass_ && b < mass.size() && mass[b].first == next) vm = mass[b++].second;
    if (d < dm.size() && dm[d].first == next) vd = dm[d++].second;
    fn(next, combine(vc, vm, vd.revenue, vd.cost, unit_.total));
  }
}

}  // namespace dfcl::metrics
