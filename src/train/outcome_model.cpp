// \brief Estimator settings and the outcome models of the DR estimators (see outcome_model.h).
#include "train/outcome_model.h"

#include <fmt/format.h>  // for fmt::format
#include <unistd.h>      // for getpid

#include <algorithm>   // for std::min, std::copy
#include <atomic>      // for std::atomic
#include <chrono>      // for steady_clock
#include <cmath>       // for std::isfinite
#include <filesystem>  // for temp_directory_path, remove_all

#include "core/config.h"          // for Config
#include "core/error.h"           // for ConfigError, DataError
#include "core/log.h"             // for log::info, log::warn
#include "data/source.h"          // for MemorySource
#include "decide/crossfit.h"      // for crossfit, ridge_fit_predict
#include "dist/communicator.h"    // for make_communicator
#include "metrics/score_file.h"   // for read_score_file
#include "train/trained_model.h"  // for load_trained_model, predict
#include "train/trainer.h"        // for Trainer

namespace dfcl::train {
namespace {

using decide::crossfit;
using decide::ridge_fit_predict;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

data::Table subset(const data::Table& rows, const data::Meta& meta, const std::vector<int64_t>& idx) {
  data::Table t;
  data::Meta m = meta;
  m.has_truth = false;  // the learner never sees the truth
  t.reset(m, int64_t(idx.size()));
  t.with_truth = false;
  for (size_t q = 0; q < idx.size(); ++q) {
    const int64_t i = idx[q];
    std::copy(rows.features.begin() + i * rows.num_features, rows.features.begin() + (i + 1) * rows.num_features,
              t.features.begin() + int64_t(q) * rows.num_features);
    t.treatment[q] = rows.treatment[size_t(i)], t.revenue[q] = rows.revenue[size_t(i)], t.cost[q] = rows.cost[size_t(i)];
    if (!t.source.empty()) t.source[q] = 0;  // trial rows
    if (!t.row_id.empty()) t.row_id[q] = int64_t(q);
    if (t.with_propensity) t.propensity[q] = rows.with_propensity ? rows.propensity[size_t(i)] : 1.0f;
  }
  return t;
}

// One TSM-SL net per fold, trained on the fold's complement (fit_tsm_sl), predicting the fold.
metrics::ScoreTable tsm_sl_fit_predict(const EstimatorSettings& es, const data::Table& rows, const data::Meta& meta,
                                       const std::vector<int64_t>& train, const std::vector<int64_t>& predict, int fold,
                                       int threads) {
  const TrainedModel model =
      fit_tsm_sl(subset(rows, meta, train), meta, es.tsm_sl_epochs, es.seed + uint64_t(fold), threads,
                 fmt::format("{}.learner = tsm_sl, fold {}", es.key, fold));
  return train::predict(model, subset(rows, meta, predict));
}

}  // namespace

TrainedModel fit_tsm_sl(data::Table rows, const data::Meta& meta, int epochs, uint64_t seed, int threads,
                        const std::string& origin) {
  data::Meta m = meta;
  m.has_truth = false;
  rows.with_truth = false, rows.true_revenue.clear(), rows.true_cost.clear();
  m.num_rows = rows.rows, m.rct_rows = rows.rows, m.observational_rows = 0;
  m.rct_arm_rows.assign(size_t(m.num_arms), 0);
  for (int32_t a : rows.treatment) ++m.rct_arm_rows[size_t(a)];
  if (rows.source.size() == size_t(rows.rows)) std::fill(rows.source.begin(), rows.source.end(), uint8_t(0));
  for (int64_t i = 0; i < rows.rows && size_t(i) < rows.row_id.size(); ++i) rows.row_id[size_t(i)] = i;
  data::MemorySource src(m, std::move(rows));
  static std::atomic<int> serial{0};
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    fmt::format("dfcl-tsm-sl-{}-{}-{}", ::getpid(), seed, serial++);
  struct Cleanup {
    std::filesystem::path p;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(p, ec);
    }
  } cleanup{dir};
  Config c = Config::from_string(
      fmt::format("train: {{generate: true, output: '{}', seed: {}, split_fractions: [0.85, 0.15], batch_size: auto, "
                  "epochs: {}}}\n"
                  "loss: {{name: tsm_sl}}\nvalidation: {{metric: loss, estimator: {{kind: ipw}}}}\n"
                  "model: {{revenue_output: auto, cost_output: auto}}\nschedule: {{kind: cosine, warmup_steps: auto}}\n"
                  "optimizer: {{name: adam, lr: 0.003}}\ndist: {{backend: local}}\n",
                  dir.string(), seed, epochs > 0 ? std::to_string(epochs) : "auto"),
      origin);
  auto comm = dist::make_communicator(dist::CommOptions::from(c));
  const log::Level before = log::level();
  log::set_level(std::min(before, log::Level::kWarn));
  TrainResult r;
  try {
    Trainer trainer(c, src, *comm, threads);
    r = trainer.run();
  } catch (...) {
    log::set_level(before);
    throw;
  }
  log::set_level(before);
  TrainedModel model = load_trained_model(r.best_checkpoint.empty() ? r.last_checkpoint : r.best_checkpoint);
  model.origin = origin;
  return model;
}

EstimatorSettings EstimatorSettings::from(const Config& cfg, const std::string& key, metrics::EstimatorKind dflt,
                                          bool default_calibrate) {
  EstimatorSettings s;
  s.key = key;
  s.kind = metrics::parse_estimator(cfg.get<std::string>(key + ".kind", metrics::to_string(dflt)), key + ".kind");
  s.outcome_model = cfg.get<std::string>(key + ".outcome_model", "crossfit");
  s.learner = cfg.get<std::string>(key + ".learner", "ridge");
  if (s.learner != "ridge" && s.learner != "tsm_sl")
    throw ConfigError(fmt::format("{}.learner is '{}'; use ridge (per-arm ridge regression, instant) or tsm_sl (a "
                                  "TSM-SL net per fold, trained in this process)",
                                  key, s.learner));
  s.folds = cfg.get<int>(key + ".folds", 5);
  if (s.folds < 2 || s.folds > 100)
    throw ConfigError(fmt::format("{}.folds is {}; cross-fitting needs 2 to 100 folds (5 is usual)", key, s.folds));
  s.ridge = cfg.get<double>(key + ".ridge", 1.0);
  if (!(s.ridge >= 0) || !std::isfinite(s.ridge))
    throw ConfigError(fmt::format("{}.ridge is {}; give a penalty >= 0", key, s.ridge));
  s.tsm_sl_epochs = cfg.get<int>(key + ".tsm_sl_epochs", 0);
  if (s.tsm_sl_epochs < 0) throw ConfigError(fmt::format("{}.tsm_sl_epochs is {}; use 0 (auto) or more", key, s.tsm_sl_epochs));
  s.seed = static_cast<uint64_t>(cfg.get<int64_t>(key + ".seed", 0));
  s.calibrate = cfg.get<bool>(key + ".calibrate", default_calibrate);
  if (s.outcome_model.empty())
    throw ConfigError(fmt::format("{}.outcome_model is empty; use crossfit, a checkpoint (.ckpt) trained on other rows, "
                                  "or a scores file",
                                  key));
  return s;
}

std::string EstimatorSettings::describe() const {
  if (!metrics::needs_outcome_model(kind)) return metrics::to_string(kind);
  if (outcome_model == "crossfit")
    return fmt::format("{} (outcome model: {}, cross-fitted in {} folds)", metrics::to_string(kind),
                       learner == "ridge" ? "per-arm ridge" : "TSM-SL", folds);
  return fmt::format("{} (outcome model: {})", metrics::to_string(kind), outcome_model);
}

OutcomeModel outcome_model(const EstimatorSettings& es, const data::Table& rows, const data::Meta& meta,
                           const std::string& where, const RowsOrigin& origin, int threads) {
  OutcomeModel out;
  if (!metrics::needs_outcome_model(es.kind)) return out;
  const auto t0 = std::chrono::steady_clock::now();
  const int m = meta.num_arms;
  if (es.outcome_model == "crossfit") {
    if (es.learner == "ridge") {
      out.table = crossfit(rows, m, es.folds, es.seed, meta.arm_names, es.key + ".folds",
                           [&](const data::Table& r, const std::vector<int64_t>& tr, const std::vector<int64_t>& pr, int) {
                             return ridge_fit_predict(r, m, tr, pr, es.ridge);
                           });
    } else {
      out.table = crossfit(rows, m, es.folds, es.seed, meta.arm_names, es.key + ".folds",
                           [&](const data::Table& r, const std::vector<int64_t>& tr, const std::vector<int64_t>& pr,
                               int f) { return tsm_sl_fit_predict(es, r, meta, tr, pr, f, threads); });
    }
    out.description = es.describe();
  } else if (ends_with(es.outcome_model, ".ckpt")) {
    const train::TrainedModel model = train::load_trained_model(es.outcome_model);
    try {
      model.check_compatible(meta, where);
    } catch (const DataError& e) {
      throw DataError(fmt::format("{}.outcome_model {}: {}", es.key, es.outcome_model, e.what()));
    }
    // Held out from the model: a file it never trained on, or the validation or test split of one it did.
    if (!model.train_files.empty() && data::shares_file(origin.files, model.train_files)) {
      const bool same = model.split.train == origin.spec.train && model.split.validation == origin.spec.validation &&
                        model.split.seed == origin.spec.seed;
      const bool held = origin.split == data::Split::kValidation || origin.split == data::Split::kTest ||
                        origin.split == data::Split::kHeldOut;
      if (!same || !held)
        throw DataError(fmt::format(
            "{}.outcome_model {} trained on {}, and the rows judged here ({} split of it{}) include rows it trained on: "
            "a DR correction from a model that saw the outcomes it corrects is biased. Use {}.outcome_model=crossfit, a "
            "model trained on other rows, or judge its held-out rows only",
            es.key, es.outcome_model, where, data::to_string(origin.split),
            same ? "" : ", with other split fractions or seed than the model's", es.key));
    } else if (model.train_files.empty()) {
      log::warn("{}.outcome_model {} was trained on an in-memory population: dfcl cannot check that it never saw the "
                "rows judged here; if it did, its DR estimates are biased",
                es.key, es.outcome_model);
    }
    out.table = train::predict(model, rows);
    out.description = es.describe();
  } else {
    log::warn("{}.outcome_model {} is a scores file: nothing in it says which rows it was fit on; DR is unbiased only if "
              "it never saw the outcomes of the rows judged here",
              es.key, es.outcome_model);
    out.table = metrics::read_score_file(es.outcome_model, rows.row_id, meta.num_rows, m);
    out.description = es.describe();
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace dfcl::train
