// \brief Cross-fitted outcome models for the doubly robust estimators: every trial row's prediction of every arm comes
// from a model fitted on the other folds, so no row's outcome corrects itself (docs/metrics.md §13).
//
// Folds are a hash of (seed, row id), so the same rows always fall in the same fold, whatever the file order or the
// number of threads. The built-in learner here is per-arm ridge regression (torch-free, closed form, float64); the
// TSM-SL learner (K uplift nets) lives with the other model-based pieces in decide/outcome_model.h.
#pragma once
#include <cstdint>     // for int64_t, uint64_t
#include <functional>  // for std::function
#include <string>      // for std::string
#include <vector>      // for std::vector

#include "data/schema.h"          // for Table
#include "metrics/score_table.h"  // for ScoreTable

namespace dfcl::decide {

/// The fold (0 .. folds - 1) of the row with this global row id.
int fold_of(int64_t row_id, int folds, uint64_t seed);

/// The rows of `rows` in each fold.
std::vector<std::vector<int64_t>> fold_rows(const data::Table& rows, int folds, uint64_t seed);

/// Checks that every fold's complement (the rows a fold's model is fitted on) has rows of every arm: DataError naming
/// the fold and the arm (and `key`, the folds setting) otherwise. `arm_names` may be empty.
void check_folds(const data::Table& rows, const std::vector<std::vector<int64_t>>& folds,
                 const std::vector<std::string>& arm_names, const std::string& key);

/// Fits one model on the rows `train` of `rows` and predicts every arm of the rows `predict` (predict.size() x m).
using FoldLearner = std::function<metrics::ScoreTable(const data::Table& rows, const std::vector<int64_t>& train,
                                                      const std::vector<int64_t>& predict, int fold)>;
/// The cross-fitted table: row i of `rows` predicted by the learner fitted on the folds that do not hold it.
metrics::ScoreTable crossfit(const data::Table& rows, int m, int folds, uint64_t seed,
                             const std::vector<std::string>& arm_names, const std::string& key,
                             const FoldLearner& learner);

/// Per-arm ridge regression of revenue and cost on the standardised features (intercept unpenalised; penalty
/// `penalty` on the standardised coefficients), fitted on `train` and predicting every arm for `predict`.
metrics::ScoreTable ridge_fit_predict(const data::Table& rows, int m, const std::vector<int64_t>& train,
                                      const std::vector<int64_t>& predict, double penalty);

}  // namespace dfcl::decide
