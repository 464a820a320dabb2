// \brief `dfcl cluster`: fit a cluster allocation policy (docs/methods.md, "Cluster allocation"; docs/cli.md): train
// the representation net (or take cluster.representation), sweep K, solve the group programme over a budget grid,
// distil the serving classifier, and write the .policy file that dfcl evaluate and dfcl allocate score with.
#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join

#include <filesystem>  // for std::filesystem::create_directories
#include <memory>      // for std::shared_ptr

#include "cli/command.h"              // for Registrar, CommonOptions
#include "cluster/fit.h"              // for ClusterConfig, fit_policy
#include "core/error.h"               // for ConfigError
#include "core/log.h"                 // for log::info
#include "data/source.h"              // for open_sources
#include "dist/communicator.h"        // for make_communicator, CommOptions
#include "train/trained_model.h"      // for load_trained_model
#include "train/trainer.h"            // for Trainer

namespace dfcl::cli {
namespace {

using nlohmann::json;

int run_cluster(const CommonOptions& o) {
  Config cfg = load_config(o);
  const int threads = apply_runtime(cfg);
  cluster::ClusterConfig cc = cluster::ClusterConfig::from(cfg.sub("cluster"));
  const train::TrainConfig tc = train::TrainConfig::from(cfg);
  if (o.dump_config) read_training_sections(cfg, tc.generate);  // the representation's training sections too
  if (dumped(cfg, o)) return 0;
  if (!tc.generate) cfg.mark_used("generate");
  if (cc.output.empty()) cc.output = tc.output + "/cluster.policy";
  auto comm = dist::make_communicator(dist::CommOptions::from(cfg), tc.device);
  std::unique_ptr<data::RowSource> src =
      tc.generate ? generated_source(cfg, threads) : data::open_sources(tc.data, "train.data");
  std::string rep_path = cc.representation;
  json trained = nullptr;
  if (rep_path.empty()) {
    // The representation net: a multi-task uplift net trained on the trial like any `dfcl train` run.
    train::Trainer trainer(cfg, *src, *comm, threads);
    cfg.check_all_used();
    const train::TrainResult r = trainer.run();
    rep_path = r.best_checkpoint.empty() ? r.last_checkpoint : r.best_checkpoint;
    trained = {{"checkpoint", rep_path}, {"epochs_done", r.epochs_done}, {"best_epoch", r.best_epoch},
               {"seconds", r.seconds}};
    log::info("cluster: representation net trained ({} epochs, {:.1f}s): {}", r.epochs_done, r.seconds, rep_path);
  } else {
    // The sections that would have trained it are not read: say so instead of failing on them.
    for (const char* s : {"model", "loss", "optimizer", "schedule", "bilevel"})
      if (cfg.has(s)) {
        log::info("cluster: cluster.representation = {} is given, so the {} section is not used", rep_path, s);
        cfg.mark_used(s);
      }
    cfg.check_all_used();
  }
  auto rep = std::make_shared<const train::TrainedModel>(train::load_trained_model(rep_path));
  cluster::ClusterPolicy policy;
  json report = cluster::fit_policy(cc, tc, rep, *src, *comm, threads, policy);
  if (comm->rank() == 0) {
    const std::filesystem::path parent = std::filesystem::path(cc.output).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    policy.save(cc.output, rep_path);
  }
  comm->barrier();
  std::string t = fmt::format("cluster policy: K = {} (chosen on validation {}), {} trial rows; group programme per "
                              "user:\n{:>10} {:>12} {:>10} {:>8} {:>10} {:>12} {:>10}  {}\n",
                              policy.k(), cc.metric_name, report["trial_rows"].get<int64_t>(), "budget",
                              "S2 revenue", "S2 spend", "gap", "nodes", "S1 revenue", "S1 spend", "S1 split");
  for (const auto& b : report["budgets"]) {
    const json& s1 = b["s1"];
    t += fmt::format("{:>10.4g} {:>12.5g} {:>10.4g} {:>8.2g} {:>10} {:>12.5g} {:>10.4g}  {}\n", b["budget"].get<double>(),
                     b["s2"]["revenue"].get<double>(), b["s2"]["spend"].get<double>(), b["s2"]["gap"].get<double>(),
                     b["s2"]["nodes"].get<int64_t>(), s1["revenue"].get<double>(), s1["spend"].get<double>(),
                     s1["split_cluster"].get<int>() < 0
                         ? std::string("none")
                         : fmt::format("cluster {}: {:.1f}% to arm {}", s1["split_cluster"].get<int>(),
                                       100 * s1["split_share"].get<double>(), s1["split_arm"].get<int>()));
  }
  log::info("{}wrote {} (score with it: dfcl evaluate --set evaluate.scores={})", t, cc.output, cc.output);
  report["representation_training"] = trained;
  report["files"] = {{"policy", cc.output}, {"representation", rep_path}};
  report["world_size"] = comm->size();
  emit_json(report, o);
  return 0;
}

Registrar reg{{"cluster",
               "fit a cluster allocation policy: representation net, K-means, group programme over budgets, distilled "
               "classifier",
               [](CLI::App* cmd) {
                 auto o = std::make_shared<CommonOptions>();
                 add_common_options(cmd, *o);
                 cmd->footer(
                     "Config sections: cluster (representation, layers, k, kmeans.{max_iter, tol, sample, seed_pool,\n"
                     "minibatch, batch, seed}, empty_cell, min_cell_rows, robust_z, budgets, budget_points,\n"
                     "node_limit, distill.{hidden, epochs, batch, lr, alpha, temperature, holdout, seed}, serve,\n"
                     "output, max_rows); train, validation, model, loss, optimizer, schedule, generate, dist, runtime\n"
                     "as in dfcl train (they train the representation net unless cluster.representation names a\n"
                     "checkpoint). docs/cli.md lists every key; docs/methods.md says what each choice does.\n"
                     "Example: dfcl cluster -c configs/cluster.yaml --set cluster.k=[20,50,100]\n"
                     "Then:    dfcl evaluate --set evaluate.scores=[run/cluster.policy,run/best.ckpt] ...");
                 return [o] { return run_cluster(*o); };
               }}};

}  // namespace
}  // namespace dfcl::cli
