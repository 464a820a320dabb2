// \brief TrainConfig: reading and checking the `train` and `validation` sections.
#include "train/train_config.h"

#include <fmt/format.h>  // for fmt::format

#include "core/config.h"  // for Config
#include "core/error.h"   // for ConfigError
#include "metrics/eom.h"  // for check_budget

namespace dfcl::train {
namespace {
template <class T>
void require_at_least(const char* key, T v, T lo, const char* fix) {
  if (v < lo) throw ConfigError(fmt::format("{} is {}; it must be >= {} ({})", key, v, lo, fix));
}
}  // namespace

TrainConfig TrainConfig::from(const Config& cfg) {
  TrainConfig t;
  t.data = cfg.get_strings("train.data");
  t.generate = cfg.get<bool>("train.generate", false);
  if (t.generate == !t.data.empty() && !cfg.dump_mode())
    throw ConfigError(
        "train: give exactly one of train.data=FILE.h5 (a dataset from `dfcl generate` or `dfcl import`, or a list "
        "[trial.h5, log.h5] read as one dataset) or train.generate=true (the `generate` section's population, built "
        "in memory)");
  t.source_name = cfg.get<std::string>("train.source", "rct");
  t.source = data::parse_source_filter(t.source_name);
  const auto fr = cfg.get<std::vector<double>>("train.split_fractions", {0.8, 0.1});
  if (fr.size() != 2 || fr[0] <= 0 || fr[1] < 0 || fr[0] + fr[1] > 1)
    throw ConfigError(
        "train.split_fractions: give [train, validation], train > 0, validation >= 0, summing to <= 1 (test gets "
        "the rest); `dfcl evaluate` must use the same fractions and split_seed");
  t.split.train = fr[0], t.split.validation = fr[1];
  t.split.seed = static_cast<uint64_t>(cfg.get<int64_t>("train.split_seed", 0));
  t.batch_size_auto = cfg.get<std::string>("train.batch_size", "auto") == "auto";
  if (!t.batch_size_auto) {
    t.batch_size = cfg.get<int64_t>("train.batch_size", 4096);
    require_at_least("train.batch_size", t.batch_size, int64_t(1), "rows per global batch (or auto)");
  }
  t.shuffle_buffer = cfg.get<int64_t>("train.shuffle_buffer", 65536);
  require_at_least("train.shuffle_buffer", t.shuffle_buffer, int64_t(0), "0 = chunk-order shuffling only");
  t.remainder = data::parse_remainder(cfg.get<std::string>("train.remainder", "drop_last"));
  t.standardize = cfg.get<bool>("train.standardize", true);
  t.standardize_rows = cfg.get<int64_t>("train.standardize_rows", 1000000);
  require_at_least("train.standardize_rows", t.standardize_rows, int64_t(1), "rows scanned to fit the scaler");
  t.propensity = cfg.get<std::string>("train.propensity", "batch");
  if (t.propensity != "batch" && t.propensity != "design")
    throw ConfigError(fmt::format(
        "train.propensity is '{}'; use batch (N_j = arm rows of the global batch) or design (N_j = p_j N with the "
        "dataset's rct_propensity)",
        t.propensity));
  t.lambda_sample_rows = cfg.get<int64_t>("train.lambda_sample_rows", 100000);
  require_at_least("train.lambda_sample_rows", t.lambda_sample_rows, int64_t(1), "RCT rows for the epoch's λ*");
  t.logical_shards = cfg.get<int>("train.logical_shards", 0);
  require_at_least("train.logical_shards", t.logical_shards, 0, "0 = the number of ranks at the start of the run");
  t.accumulate = cfg.get<int64_t>("train.accumulate", 1);
  require_at_least("train.accumulate", t.accumulate, int64_t(1), "batches per optimiser step");
  t.deterministic = cfg.get<bool>("dist.deterministic", false);
  t.debug = cfg.get<bool>("dist.debug", false);
  if (t.deterministic && t.accumulate > 1)
    throw ConfigError("dist.deterministic with train.accumulate > 1 is not supported; use one of them");
  t.epochs_auto = cfg.get<std::string>("train.epochs", "auto") == "auto";
  if (!t.epochs_auto) {
    t.epochs = cfg.get<int>("train.epochs", 10);
    require_at_least("train.epochs", t.epochs, 1, "passes over the training rows (or auto)");
  }
  t.min_steps = cfg.get<int64_t>("train.min_steps", 300);
  require_at_least("train.min_steps", t.min_steps, int64_t(1), "optimiser steps train.epochs = auto aims for");
  t.max_steps = cfg.get<int64_t>("train.max_steps", 0);
  require_at_least("train.max_steps", t.max_steps, int64_t(0), "0 = no limit");
  t.seed = static_cast<uint64_t>(cfg.get<int64_t>("train.seed", 0));
  t.dtype = cfg.get<std::string>("train.dtype", "float32");
  if (t.dtype != "float32" && t.dtype != "float64")
    throw ConfigError(fmt::format("train.dtype is '{}'; use float32 or float64", t.dtype));
  t.device = cfg.get<std::string>("train.device", "cpu");
  if (t.device != "cpu" && t.device.rfind("cuda", 0) != 0)
    throw ConfigError(fmt::format("train.device is '{}'; use cpu, cuda or cuda:N", t.device));
  t.fused = cfg.get<std::string>("train.fused", "auto");
  if (t.fused != "auto" && t.fused != "off")
    throw ConfigError(fmt::format("train.fused is '{}'; use auto or off (always autograd)", t.fused));
  t.output = cfg.get<std::string>("train.output", "run");
  if (t.output.empty()) throw ConfigError("train.output is empty; give a directory for checkpoints and metrics");
  t.checkpoint_steps = cfg.get<int64_t>("train.checkpoint_steps", 0);
  require_at_least("train.checkpoint_steps", t.checkpoint_steps, int64_t(0), "0 = at epoch ends only");
  t.resume = cfg.get<std::string>("train.resume", "");
  t.init_from = cfg.get<std::string>("train.init_from", "");
  if (!t.resume.empty() && !t.init_from.empty())
    throw ConfigError("train.resume and train.init_from are both set; resume continues a run, init_from starts a new "
                      "one from another run's parameters: keep one");

  ValidationConfig& v = t.validation;
  v.data = cfg.get_strings("validation.data");
  if (!v.data.empty() && t.generate)
    throw ConfigError("validation.data with train.generate=true: the generated population is in memory only; write it "
                      "with `dfcl generate` and give train.data, or drop validation.data");
  const std::string vsplit = cfg.get<std::string>("validation.split", "auto");
  v.split_given = vsplit != "auto";
  v.split = v.split_given ? data::parse_split(vsplit)
                          : v.data.empty() ? data::Split::kValidation
                                           : data::default_split(v.data, t.data, data::Split::kValidation);
  if (v.split == data::Split::kTrain)
    throw ConfigError("validation.split = train would judge the model on the rows it trains on; use auto, validation, "
                      "test or all");
  v.budgets = cfg.get<std::vector<double>>("validation.budgets", {});
  for (double b : v.budgets) metrics::check_budget(b, "validation.budgets");
  v.calibration = metrics::parse_budget_calibration(cfg.get<std::string>("validation.budget_calibration", "auto"), true,
                                                    "validation.budget_calibration");
  v.metric_name = cfg.get<std::string>("validation.metric", "eom");
  auto parse_metric = [](const std::string& name, SelectMetric& m) {
    if (name == "eom") m = SelectMetric::kEom;
    else if (name == "dr_eom") m = SelectMetric::kDrEom;
    else if (name == "regret") m = SelectMetric::kRegret;
    else if (name == "aucc") m = SelectMetric::kAucc;
    else if (name == "loss") m = SelectMetric::kLoss;
    else return false;
    return true;
  };
  for (const std::string& k : cfg.get_strings("validation.keep_best")) {
    SelectMetric m;
    if (!parse_metric(k, m))
      throw ConfigError(fmt::format("validation.keep_best lists '{}'; use eom, dr_eom, regret, aucc or loss", k));
    v.keep_best.emplace_back(m, k);
  }
  if (!parse_metric(v.metric_name, v.metric))
    throw ConfigError(fmt::format(
        "validation.metric is '{}'; use eom (mean EOM over the budgets: IPW revenue at equal IPW spend), dr_eom "
        "(the same by the doubly robust estimator, validation.estimator), regret (mean oracle regret, synthetic "
        "data), aucc (two arms) or loss",
        v.metric_name));
  v.estimator = EstimatorSettings::from(cfg, "validation.estimator", metrics::EstimatorKind::kDr, true);
  bool wants_dr = v.metric == SelectMetric::kDrEom;
  for (const auto& kb : v.keep_best) wants_dr = wants_dr || kb.first == SelectMetric::kDrEom;
  if (wants_dr && !metrics::needs_outcome_model(v.estimator.kind))
    throw ConfigError(fmt::format("validation.metric (or keep_best) = dr_eom needs a doubly robust estimator, but "
                                  "validation.estimator.kind is {}; set it to dr (the default) or sndr, or select on eom",
                                  metrics::to_string(v.estimator.kind)));
  v.max_rows = cfg.get<int64_t>("validation.max_rows", 200000);
  require_at_least("validation.max_rows", v.max_rows, int64_t(1), "validation RCT rows held in memory");
  v.every = cfg.get<int>("validation.every", 1);
  require_at_least("validation.every", v.every, 1, "epochs between validations");
  v.patience = cfg.get<int>("validation.patience", 0);
  require_at_least("validation.patience", v.patience, 0, "0 = no early stopping");
  v.min_delta = cfg.get<double>("validation.min_delta", 0.0);
  require_at_least("validation.min_delta", v.min_delta, 0.0, "the smallest change that counts as better");
  v.quantiles = cfg.get<int>("validation.quantiles", 200);
  require_at_least("validation.quantiles", v.quantiles, 1, "AUCC quantiles");
  if (fr[1] == 0 && v.split == data::Split::kValidation)
    throw ConfigError(
        "train.split_fractions gives validation 0; validation needs held-out RCT rows (e.g. [0.8, 0.1]), or "
        "validation.data: a held-out file");
  return t;
}

}  // namespace dfcl::train
