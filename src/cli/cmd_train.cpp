// \brief `dfcl train`: train an uplift model with a registered loss (docs/training.md); `--resume` continues a run.
#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join

#include <memory>  // for std::unique_ptr

#include "bilevel/bilevel.h"     // for bilevel_method, BilevelConfig
#include "cli/command.h"         // for Registrar, CommonOptions
#include "core/error.h"          // for ConfigError
#include "core/log.h"            // for log::info
#include "data/generator.h"      // for Generator
#include "data/source.h"         // for open_source, MemorySource
#include "dist/communicator.h"   // for make_communicator, CommOptions
#include "loss/loss.h"           // for loss_names
#include "metrics/spend.h"       // for to_string(BudgetCalibration)
#include "train/checkpoint.h"    // for read_checkpoint
#include "train/lr_schedule.h"   // for LrSchedule
#include "train/optimizer.h"     // for OptimizerConfig
#include "model/uplift_net_config.h"  // for UpliftNetConfig
#include "dist/reducer.h"        // for ReducerOptions
#include "train/trainer.h"       // for Trainer, summary_table

namespace dfcl::cli {
namespace {

using nlohmann::json;

struct TrainOptions {
  CommonOptions common;
  bool resume = false;
  std::string resume_path;
};

int run_train(TrainOptions& o) {
  if (!o.resume && !o.resume_path.empty())
    throw ConfigError(fmt::format("--from {} names a checkpoint to continue from, which only --resume does: add "
                                  "--resume (dfcl train --resume --from {})",
                                  o.resume_path, o.resume_path));
  Config cfg = load_config(o.common);
  if (o.resume) {
    // The run continues with the configuration it was started with; --set overrides apply on top of it.
    std::string path = o.resume_path;
    if (path.empty()) path = cfg.get<std::string>("train.output", "run") + "/last.ckpt";
    Config base = Config::from_string(train::read_checkpoint(path).config, path);
    for (const auto& s : o.common.sets) base.set(s);
    base.set("train.resume=" + path);
    if (o.common.dump_config) base.set_dump_mode(), dumping() = std::make_unique<Config>(base);
    cfg = base;
  }
  const int threads = apply_runtime(cfg);
  const train::TrainConfig tc = train::TrainConfig::from(cfg);  // config errors before any I/O
  if (o.common.dump_config) {  // the sections the Trainer reads once it knows the data, read here for their defaults
    read_training_sections(cfg, tc.generate);
    if (cfg.has("bilevel")) bilevel::BilevelConfig::from(cfg.sub("bilevel"), cfg.get<double>("optimizer.lr", 1e-3));
  }
  if (dumped(cfg, o.common)) return 0;
  if (!tc.generate) cfg.mark_used("generate");  // a shared config file may hold the generate section too
  cfg.mark_used("tune");                        // ... and the tune section (dfcl tune passes its files to every trial)
  // The communicator first: under mpirun/srun every rank joins (and self-tests) before any data is read.
  auto comm = dist::make_communicator(dist::CommOptions::from(cfg), tc.device);
  std::unique_ptr<data::RowSource> src = tc.generate ? generated_source(cfg, threads) : data::open_sources(tc.data, "train.data");
  if (cfg.has("bilevel")) bilevel::check_inputs(*src, tc);
  // A `bilevel` section makes the run Bi-DFCL: the trainer takes its step from src/bilevel.
  train::Trainer trainer(cfg, *src, *comm, threads, cfg.has("bilevel") ? bilevel::bilevel_method() : train::StepMethodFactory{});
  cfg.check_all_used();
  const train::TrainResult r = trainer.run();
  log::info("{}", train::summary_table(r, trainer.config().validation.metric_name));
  if (r.best_epoch > 0 && !r.budgets.empty() && !r.best.eom.empty()) {
    std::string t = fmt::format(
        "best model (epoch {}) on the validation RCT rows, lambda by {} calibration:\n{:>10} {:>10} {:>10} {:>21} "
        "{:<11} {:>12} {:>12} {:>9} {:>14}\n",
        r.best_epoch, metrics::to_string(trainer.config().validation.calibration), "budget", "predicted", "IPW spend",
        "95% CI", "verdict", "IPW revenue", "true revenue", "regret", "random regret");
    for (size_t k = 0; k < r.budgets.size(); ++k) {
      const auto& e = r.best.eom[k];
      const auto& d = r.best.decisions[k];
      const bool truth = k < r.best.regret.size();
      t += fmt::format("{:>10.4g} {:>10.4g} {:>10.4g} {:>21} {:<11} {:>12.5g} {:>12} {:>9} {:>14}\n", e.budget,
                       d.predicted_spend, d.spend.value, fmt::format("[{:.4g}, {:.4g}]", d.spend.lo, d.spend.hi),
                       metrics::to_string(d.verdict), e.revenue,
                       truth ? fmt::format("{:.5g}", r.best.true_revenue[k]) : "-",
                       truth ? fmt::format("{:.4g}", r.best.regret[k]) : "-",
                       k < r.random_regret.size() ? fmt::format("{:.4g}", r.random_regret[k]) : "-");
    }
    std::string cal;
    for (const auto& a : r.best.cost_calibration)
      cal += fmt::format(" {}: {:.4g}/{:.4g}", a.arm, a.predicted, a.observed);
    t += fmt::format("cost calibration (arm: predicted/observed mean cost):{}; worst factor x{:.3g}", cal,
                     r.best.cost_factor);
    log::info("{}", t);
  }
  log::info("train: {} steps, {:.0f} samples/s in training steps ({} path), {:.1f}s; wrote {}, {}, {}{}", r.steps,
            r.samples_per_s, cfg.has("bilevel") ? "bi-level" : r.fused ? "fused" : "autograd", r.seconds, r.last_checkpoint, r.metrics_file,
            r.curve_plot, r.best_checkpoint.empty() ? "" : ", " + r.best_checkpoint + ", " + r.model_file);
  if (r.partial)
    log::info("train: stopped at train.max_steps; continue with `dfcl train --resume --from {} --set "
              "train.max_steps=0` (the checkpoint keeps this run's settings, max_steps included)",
              r.last_checkpoint);

  json out;
  out["steps"] = r.steps;
  out["epochs_done"] = r.epochs_done;
  out["samples"] = r.samples;
  out["seconds"] = r.seconds;
  out["samples_per_s"] = r.samples_per_s;
  out["fused"] = r.fused;
  out["world_size"] = comm->size();
  out["backend"] = comm->name();
  out["logical_shards"] = r.logical_shards;
  out["partial"] = r.partial;
  out["early_stopped"] = r.early_stopped;
  out["best_epoch"] = r.best_epoch;
  out["best_value"] = r.best_value;
  out["metric"] = trainer.config().validation.metric_name;
  if (r.best_epoch > 0) out["best"] = r.best.to_json();
  out["budgets"] = r.budgets;
  out["random_regret"] = r.random_regret;
  out["derived"] = r.derived;
  out["history"] = r.history;
  out["files"] = {{"last_checkpoint", r.last_checkpoint}, {"best_checkpoint", r.best_checkpoint},
                  {"model", r.model_file},                {"metrics", r.metrics_file},
                  {"training_curve", r.curve_plot}};
  emit_json(out, o.common);
  return 0;
}

Registrar reg{{"train", "train an uplift model with a registered loss (TSM-SL, ...); --resume continues a run",
               [](CLI::App* cmd) {
                 auto o = std::make_shared<TrainOptions>();
                 add_common_options(cmd, o->common);
                 cmd->add_flag("--resume", o->resume,
                               "continue the run whose last checkpoint is <train.output>/last.ckpt, with its own "
                               "configuration (--set overrides apply on top, e.g. train.epochs=20)");
                 cmd->add_option("--from", o->resume_path, "with --resume: the checkpoint to continue from");
                 cmd->footer(fmt::format(
                     "Config sections: train (data or generate, source, split_fractions, split_seed, epochs,\n"
                     "batch_size, shuffle_buffer, remainder, standardize, propensity, seed, dtype, device, fused,\n"
                     "output, checkpoint_steps, max_steps, logical_shards, accumulate), dist (backend, timeout_s,\n"
                     "startup_timeout_s, debug, deterministic, bucket_mb, first_bucket_mb, find_unused), validation (budgets, metric, max_rows, every, patience,\n"
                     "min_delta, quantiles), model (preset, trunk, head, activation, ...), loss (name: {}), optimizer\n"
                     "(name: sgd|adam|adamw, lr, weight_decay, ...), schedule (kind, warmup_steps, ...), generate\n"
                     "(with train.generate=true), runtime (threads); bilevel (teacher, labels, hypergradient, k, inner_lr,\n"
                     "warm_start_epochs, rct_batch, cg.{{iterations, tol, damping, hvp}}, ...): Bi-DFCL, the loss section\n"
                     "being its upper loss. docs/training.md lists every key.\n"
                     "Example: dfcl train -c configs/train.yaml --set train.epochs=5\n"
                     "Bi-DFCL: dfcl train -c configs/bidfcl.yaml",
                     fmt::join(loss::loss_names(), "|")));
                 return [o] { return run_train(*o); };
               }}};

}  // namespace
}  // namespace dfcl::cli
