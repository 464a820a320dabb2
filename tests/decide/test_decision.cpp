// \brief The decision layer (decide/decision.h, decide/evaluation.h) and the held-out rule (decide/heldout.h):
// lambda by the DR spend meets the budget on the calibration rows, the decisions are the calibrated policy's, the
// paired comparison ties a scorer with itself and separates the oracle from random targeting, and the rule picks the
// rows a model never trained on.
#include <gtest/gtest.h>

#include <cmath>  // for std::fabs

#include "core/error.h"               // for ConfigError
#include "decide/crossfit.h"          // for crossfit, ridge_fit_predict
#include "decide/decision.h"          // for Decider, TrialView
#include "decide/evaluation.h"        // for evaluate_scorer, compare
#include "decide/heldout.h"           // for judged_rows, calibration_rows
#include "metrics/scorers.h"          // for random_scores
#include "metrics/synthetic.h"        // for test::Trial

namespace dfcl {
namespace {

using metrics::EstimatorKind;

metrics::ScoreTable ridge(const data::Table& t) {
  return decide::crossfit(t, t.num_arms, 5, 0, {}, "k",
                          [&](const data::Table& r, const std::vector<int64_t>& tr, const std::vector<int64_t>& pr, int) {
                            return decide::ridge_fit_predict(r, t.num_arms, tr, pr, 1.0);
                          });
}

TEST(Decider, LambdaByTheDrSpendMeetsTheBudgetOnTheCalibrationRows) {
  test::Trial tr(6000, 4, 5);
  const metrics::RctSample s = tr.sample();
  const metrics::ScoreTable om = ridge(tr.t);
  const solver::Scores omv = om.view();
  const decide::TrialView view(tr.truth(), s, EstimatorKind::kDr, &omv, 2);
  decide::DecisionOptions o;
  o.calibrate_by_estimator = true;
  const decide::Decider dr(tr.truth(), &view, &view, o);
  o.calibrate_by_estimator = false;
  const decide::Decider ipw(tr.truth(), &view, &view, o);
  for (double b : {0.3, 0.6, 1.0}) {
    const decide::Decision d = dr.at(b), i = ipw.at(b);
    ASSERT_TRUE(d.reached) << b;
    // The DR spend of the deployed decisions meets b (to the bisection's tolerance, or one row's step on 6k rows).
    EXPECT_NEAR(d.estimate.spend.value, b, 0.01 * b) << b;
    EXPECT_NEAR(i.ipw.spend.value, b, 0.01 * b) << b;
    // The decisions are the calibrated policy at lambda, and judged rows = decided rows are not recomputed.
    std::vector<uint8_t> again;
    decide::decisions_at(tr.truth(), d, again);
    EXPECT_EQ(again, d.alloc.arm);
    EXPECT_EQ(d.judged_arms, d.alloc.arm);
    // The estimator's spend CI is DR's, narrower than IPW's on the same decisions.
    EXPECT_LT(d.estimate.spend.se, d.ipw.spend.se) << b;
  }
}

TEST(Compare, ItselfIsATieAndTheOracleBeatsRandom) {
  test::Trial tr(20000, 4, 9, 4, /*quiet=*/true);  // outcome noise small enough to resolve the gain on 20k rows
  const metrics::RctSample s = tr.sample();
  const metrics::ScoreTable om = ridge(tr.t);
  const solver::Scores omv = om.view();
  const metrics::ScoreTable rnd = metrics::random_scores(tr.n(), tr.m(), 1, 2);
  const decide::TrialView oracle(tr.truth(), s, EstimatorKind::kDr, &omv, 2), oracle2(tr.truth(), s, EstimatorKind::kDr, &omv, 2),
      random(rnd.view(), s, EstimatorKind::kDr, &omv, 2);
  decide::EvaluationOptions o;
  o.budgets = {0.3, 0.8};
  o.decision.calibrate_by_estimator = true;
  o.boot.replicates = 60, o.boot.threads = 2;
  std::vector<decide::ScorerEvaluation> ev;
  ev.push_back(decide::evaluate_scorer("oracle", "oracle", oracle, oracle, tr.t, nullptr, o));
  ev.push_back(decide::evaluate_scorer("oracle2", "oracle again", oracle2, oracle2, tr.t, nullptr, o));
  ev.push_back(decide::evaluate_scorer("random", "random", random, random, tr.t, nullptr, o));
  decide::compare(ev, {&oracle, &oracle2, &random}, {&oracle, &oracle2, &random}, 2, o);
  for (size_t b = 0; b < 2; ++b) {
    // The same scores on the same rows: the paired difference is 0 in every replicate, and the two share a rank.
    EXPECT_DOUBLE_EQ(ev[0].difference[b].estimate - ev[1].difference[b].estimate, 0.0);
    EXPECT_EQ(ev[0].rank[b], 1);
    EXPECT_EQ(ev[1].rank[b], 1);
    EXPECT_TRUE(ev[0].tied[b] && ev[1].tied[b]);
    // Against random targeting (the reference) the oracle's gain is resolved: its paired CI excludes 0.
    EXPECT_GT(ev[0].difference[b].lo, 0) << b << ": " << ev[0].difference[b].estimate << " [" << ev[0].difference[b].lo
                                         << ", " << ev[0].difference[b].hi << "] oracle " << ev[0].at[b].estimate.revenue.value
                                         << " random " << ev[2].at[b].estimate.revenue.value;
    EXPECT_EQ(ev[2].rank[b], 3);
    EXPECT_FALSE(ev[2].tied[b]);
    EXPECT_DOUBLE_EQ(ev[2].difference[b].estimate, 0.0);  // the reference against itself
  }
  EXPECT_EQ(ev[0].j["estimate"]["reference"], "random");
}

TEST(Heldout, JudgedAndCalibrationRowsLeaveTheTrainingRowsOut) {
  const decide::TrainedOn a{"a.ckpt", {"/tmp/dfcl_heldout_trial.h5"}, {0.8, 0.1, 0}};
  decide::TrainedOn b = a;
  b.origin = "b.ckpt", b.split.seed = 7;
  const std::vector<std::string> files{"/tmp/dfcl_heldout_trial.h5"};
  // A file a model trained on: its test split, with the model's fractions.
  const decide::RowChoice j = decide::judged_rows("auto", {0.5, 0.2, 3}, false, files, false, {a}, "evaluate.split");
  EXPECT_EQ(j.split, data::Split::kTest);
  EXPECT_EQ(j.spec.train, 0.8);
  EXPECT_EQ(j.trained->origin, "a.ckpt");
  // A file no model trained on: all of it.
  EXPECT_EQ(decide::judged_rows("auto", {}, false, {"/tmp/other.h5"}, false, {a}, "evaluate.split").split,
            data::Split::kAll);
  // Two models with different splits of the judged file: no test split is held out from both.
  EXPECT_THROW(decide::judged_rows("auto", {}, false, files, false, {a, b}, "evaluate.split"), ConfigError);
  // Calibration: the judged rows by default (evaluate), else the held-out rows of a training file, all of another.
  EXPECT_TRUE(decide::calibration_rows("auto", files, {a}, &j, "k").judged);
  EXPECT_EQ(decide::calibration_rows("auto", files, {a}, nullptr, "k").split, data::Split::kHeldOut);
  EXPECT_EQ(decide::calibration_rows("auto", {"/tmp/other.h5"}, {a}, nullptr, "k").split, data::Split::kAll);
  EXPECT_THROW(decide::calibration_rows("evaluated", files, {a}, nullptr, "allocate.calibration_split"), ConfigError);
  EXPECT_EQ(decide::calibration_rows("validation", files, {a}, nullptr, "k").split, data::Split::kValidation);
}

}  // namespace
}  // namespace dfcl
