// \brief Prediction metrics by hand: per-arm MSE on the factual arm, log loss for binary outcomes.
#include <gtest/gtest.h>  // for TEST

#include <cmath>  // for std::log, std::isnan

#include "core/error.h"          // for DataError
#include "metrics/prediction.h"  // for prediction_metrics

namespace dfcl::metrics {
namespace {

TEST(Prediction, MseAndLogLossByHand) {
  // 4 rows, 2 arms. Factual predictions: row 0 arm 0: 0.2 vs y 0; row 1 arm 1: 0.9 vs 1; row 2 arm 1: 0.4 vs 0;
  // row 3 arm 0: 0.7 vs 1.
  const std::vector<float> pred = {0.2f, 0.5f, 0.3f, 0.9f, 0.6f, 0.4f, 0.7f, 0.1f};
  const std::vector<int32_t> arm = {0, 1, 1, 0};
  const std::vector<float> y = {0, 1, 0, 1};
  PredictionReport r = prediction_metrics(pred.data(), 2, arm.data(), y.data(), 4);
  ASSERT_TRUE(r.binary);
  const double p0 = 0.2f, p1 = 0.9f, p2 = 0.4f, p3 = 0.7f;  // as stored in float
  EXPECT_NEAR(r.arm[0].mse, (p0 * p0 + (1 - p3) * (1 - p3)) / 2, 1e-12);
  EXPECT_NEAR(r.arm[1].mse, ((1 - p1) * (1 - p1) + p2 * p2) / 2, 1e-12);
  EXPECT_NEAR(r.all.mse, (p0 * p0 + (1 - p3) * (1 - p3) + (1 - p1) * (1 - p1) + p2 * p2) / 4, 1e-12);
  EXPECT_NEAR(r.arm[0].logloss, -(std::log(1 - p0) + std::log(p3)) / 2, 1e-12);
  EXPECT_NEAR(r.arm[1].logloss, -(std::log(p1) + std::log(1 - p2)) / 2, 1e-12);
  EXPECT_EQ(r.arm[0].rows, 2);
  EXPECT_EQ(r.all.rows, 4);
}

TEST(Prediction, ContinuousOutcomesSkipLogLossOrFail) {
  const std::vector<float> pred = {1, 2, 3, 4};
  const std::vector<int32_t> arm = {0, 1};
  const std::vector<float> y = {1.5f, 2};
  PredictionReport r = prediction_metrics(pred.data(), 2, arm.data(), y.data(), 2);
  EXPECT_FALSE(r.binary);
  EXPECT_TRUE(std::isnan(r.all.logloss));
  EXPECT_NEAR(r.arm[0].mse, 0.25, 1e-12);
  EXPECT_NEAR(r.arm[1].mse, 4.0, 1e-12);
  try {
    prediction_metrics(pred.data(), 2, arm.data(), y.data(), 2, LogLoss::kAlways);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("row 0: outcome 1.5 is not 0 or 1"), std::string::npos) << e.what();
  }
  const std::vector<int32_t> bad = {0, 2};
  EXPECT_THROW(prediction_metrics(pred.data(), 2, bad.data(), y.data(), 2), DataError);
}

}  // namespace
}  // namespace dfcl::metrics
