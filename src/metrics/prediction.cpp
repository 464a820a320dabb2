// \brief Prediction metrics (see prediction.h).
#include "metrics/prediction.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::clamp
#include <cmath>      // for std::log, std::isfinite
#include <limits>     // for std::numeric_limits

#include "core/error.h"  // for DataError

namespace dfcl::metrics {

PredictionReport prediction_metrics(const float* pred, int m, const int32_t* arm, const float* y, int64_t n,
                                    LogLoss logloss) {
  if (n <= 0) throw DataError("prediction metrics: no rows; check the split and source filters");
  if (!pred || !arm || !y)
    throw DataError(fmt::format("prediction metrics: the {} column is missing (null)", !pred  ? "prediction"
                                                                                       : !arm ? "arm"
                                                                                              : "outcome"));
  if (m < 1) throw DataError(fmt::format("prediction metrics: {} arms; need at least one", m));
  bool binary = true;
  for (int64_t i = 0; i < n; ++i) {
    if (arm[i] < 0 || arm[i] >= m)
      throw DataError(
          fmt::format("prediction metrics: field treatment, row {}: arm id {} is outside [0, {})", i, arm[i], m));
    const float p = pred[i * m + arm[i]];
    if (!std::isfinite(p) || !std::isfinite(y[i]))
      throw DataError(fmt::format("prediction metrics: row {}: prediction {} / outcome {} is not finite", i, p, y[i]));
    if (y[i] != 0.0f && y[i] != 1.0f) {
      if (logloss == LogLoss::kAlways)
        throw DataError(
            fmt::format("prediction metrics: row {}: outcome {} is not 0 or 1; log loss needs a binary "
                        "outcome (use LogLoss::kAuto or kNever for continuous ones)",
                        i, y[i]));
      binary = false;
    }
  }
  const bool ll = logloss != LogLoss::kNever && binary;
  constexpr double kClip = 1e-7;
  std::vector<double> se(m, 0.0), nll(m, 0.0);
  std::vector<int64_t> rows(m, 0);
  for (int64_t i = 0; i < n; ++i) {
    const int t = arm[i];
    const double p = pred[i * m + t], d = p - y[i];
    se[t] += d * d;
    ++rows[t];
    if (ll) {
      const double q = std::clamp(p, kClip, 1 - kClip);
      nll[t] -= y[i] == 1.0f ? std::log(q) : std::log(1 - q);
    }
  }
  PredictionReport rep;
  rep.binary = binary;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  double se_all = 0, nll_all = 0;
  for (int j = 0; j < m; ++j) {
    ArmPrediction a;
    a.rows = rows[j];
    a.mse = rows[j] ? se[j] / double(rows[j]) : nan;
    a.logloss = ll && rows[j] ? nll[j] / double(rows[j]) : nan;
    rep.arm.push_back(a);
    se_all += se[j], nll_all += nll[j];
  }
  rep.all.rows = n;
  rep.all.mse = se_all / double(n);
  rep.all.logloss = ll ? nll_all / double(n) : nan;
  return rep;
}

}  // namespace dfcl::metrics
