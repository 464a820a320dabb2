// \brief Prediction metrics on the factual arm: per-arm mean squared error, and log loss for binary outcomes.
//
//   MSE_j     = mean over rows with t_i = j of (yhat_{i,j} - y_i)^2
//   logloss_j = -mean over rows with t_i = j of [ y_i log q + (1 - y_i) log(1 - q) ],  q = clip(yhat_{i,j}, 1e-7, 1 -
//   1e-7)
// "all" pools every row (each on its own factual arm). Log loss needs y in {0, 1} and yhat read as a probability.
#pragma once
#include <cstdint>  // for int64_t, int32_t
#include <vector>   // for std::vector

namespace dfcl::metrics {

enum class LogLoss {
  kAuto,    // computed when every outcome is 0 or 1, NaN otherwise
  kAlways,  // a non-binary outcome is a DataError naming the row
  kNever,
};

struct ArmPrediction {
  int64_t rows = 0;
  double mse = 0;
  double logloss = 0;  // NaN when not computed
};

struct PredictionReport {
  std::vector<ArmPrediction> arm;  // one per arm
  ArmPrediction all;
  bool binary = false;  // every outcome was 0 or 1
};

/// `pred` is N x M row-major (one prediction per arm), `arm` the factual arm, `y` the observed outcome.
/// Throws DataError on null columns, an arm id out of range or a non-finite value.
PredictionReport prediction_metrics(const float* pred, int m, const int32_t* arm, const float* y, int64_t n,
                                    LogLoss logloss = LogLoss::kAuto);

}  // namespace dfcl::metrics
