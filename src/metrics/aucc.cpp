// \brief AUCC (see aucc.h).
#include "metrics/aucc.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::sort
#include <cmath>      // for std::isfinite, std::abs
#include <limits>     // for std::numeric_limits
#include <utility>    // for std::pair

#include "core/error.h"  // for ConfigError, DataError

namespace dfcl::metrics {

Aucc::Aucc(const AuccInput& in, int quantiles) : in_(in), q_(quantiles) {
  if (quantiles < 1)
    throw ConfigError(fmt::format("AUCC quantiles is {}; it must be >= 1 (the DFCL numbers use 200)", quantiles));
  if (in.n <= 0)
    throw DataError("AUCC: no rows; it needs treated and control trial rows (check the split and source filters)");
  if (!in.arm || !in.revenue || !in.cost || !in.score)
    throw DataError(
        fmt::format("AUCC: the {} column is missing (null); pass arm, revenue, cost and score for every row",
                    !in.arm       ? "arm"
                    : !in.revenue ? "revenue"
                    : !in.cost    ? "cost"
                                  : "score"));
  if (in.treated_arm <= 0)
    throw ConfigError(fmt::format("AUCC: treated_arm is {}; it must be a treatment arm (>= 1)", in.treated_arm));
  if (in.n >= (int64_t(1) << 32)) throw DataError("AUCC: 2^32 rows or more; evaluate shards separately");
  std::vector<std::pair<double, uint32_t>> keyed;
  keyed.reserve(in.n);
  int64_t treated = 0;
  for (int64_t i = 0; i < in.n; ++i) {
    const int t = in.arm[i];
    if (t != 0 && t != in.treated_arm) continue;
    if (!std::isfinite(in.score[i]))
      throw DataError(fmt::format("AUCC: score of row {} is {}; scores must be finite", i, in.score[i]));
    if (!std::isfinite(in.revenue[i]) || !std::isfinite(in.cost[i]))
      throw DataError(fmt::format("AUCC: row {}: revenue {} / cost {} is not finite; replace missing values upstream",
                                  i, in.revenue[i], in.cost[i]));
    treated += (t != 0);
    keyed.emplace_back(in.score[i], static_cast<uint32_t>(i));
  }
  if (treated == 0)
    throw DataError(
        fmt::format("AUCC: no rows of the treated arm {}; AUCC compares treated with control rows", in.treated_arm));
  std::sort(keyed.begin(), keyed.end(),
            [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  order_.resize(keyed.size());
  for (size_t k = 0; k < keyed.size(); ++k) order_[k] = keyed[k].second;
}

AuccResult Aucc::run(const uint32_t* counts, bool keep) const {
  AuccResult res;
  res.quantiles = q_;
  double rt = 0, rc = 0, ct = 0, cc = 0;  // whole-sample sums
  int64_t nt = 0, nc = 0;
  for (uint32_t i : order_) {
    const int64_t w = counts ? counts[i] : 1;
    if (in_.arm[i] != 0)
      nt += w, rt += double(w) * in_.revenue[i], ct += double(w) * in_.cost[i];
    else
      nc += w, rc += double(w) * in_.revenue[i], cc += double(w) * in_.cost[i];
  }
  res.n_treated = nt, res.n_control = nc;
  if (nt == 0) {
    res.aucc = std::numeric_limits<double>::quiet_NaN();
    return res;
  }
  double n_c = double(nc);
  if (nc > 0) {
    res.dr = rt / double(nt) - rc / n_c;
    res.dc = ct / double(nt) - cc / n_c;
  } else {
    n_c = 1;
    res.dr = rt / double(nt);
    res.dc = ct / double(nt);
  }
  const double n_t = double(nt), step = res.dc / q_;
  const int64_t last = nt + nc - 1;
  double CT = 0, CC = 0, RT = 0, RC = 0, sum_y = 0;
  int jbin = 1;
  int64_t k = 0;
  if (keep) res.x.push_back(0), res.y.push_back(0);
  for (uint32_t i : order_) {
    const int64_t w = counts ? counts[i] : 1;
    const bool treated = in_.arm[i] != 0;
    for (int64_t copy = 0; copy < w; ++copy, ++k) {
      if (treated)
        CT += in_.cost[i], RT += in_.revenue[i];
      else
        CC += in_.cost[i], RC += in_.revenue[i];
      const double x = CT / n_t - CC / n_c;
      if (k == last || (jbin < q_ && x >= step * jbin)) {
        const double y = RT / n_t - RC / n_c;
        sum_y += y;
        if (keep) res.x.push_back(x), res.y.push_back(y);
        ++jbin;
      }
    }
  }
  res.aucc = res.dr == 0 ? std::numeric_limits<double>::quiet_NaN() : sum_y / (res.dr * (q_ + 1));
  return res;
}

AuccResult Aucc::result() const {
  AuccResult r = run(nullptr, true);
  if (!std::isfinite(r.aucc))
    throw DataError(
        "AUCC is undefined: the treated and control mean revenues are equal (DR = 0), so there is no "
        "uplift to normalise by");
  return r;
}

double Aucc::value(const uint32_t* counts) const { return run(counts, false).aucc; }

std::vector<double> roi_scores(const solver::Scores& s, int treated_arm) {
  if (treated_arm <= 0 || treated_arm >= s.m)
    throw ConfigError(fmt::format("roi_scores: treated arm {} is outside [1, {})", treated_arm, s.m));
  std::vector<double> out(s.n);
  for (int64_t i = 0; i < s.n; ++i) {
    const int64_t a = i * s.m, b = a + treated_arm;
    double d = double(s.c[b]) - s.c[a];
    if (std::abs(d) < 1e-6) d = 1e-6;
    out[i] = (double(s.r[b]) - s.r[a]) / d;
  }
  return out;
}

}  // namespace dfcl::metrics
