// \brief `dfcl tune`: grid or random search over named config keys. Every trial is a `dfcl train` run (a child
// process) on the same configuration plus the trial's values, judged by its best validation result; trials run a few
// at a time, or spread over the ranks of an mpirun/srun job. Writes a table of the trials (JSON and CSV) and the best
// trial's values as a config layer (best.yaml).
#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join

#include <unistd.h>  // for readlink

#include <cmath>    // for std::isfinite
#include <fstream>  // for std::ifstream, std::ofstream
#include <thread>   // for std::thread::hardware_concurrency

#include "cli/command.h"         // for Registrar, CommonOptions
#include "core/atomic_file.h"  // for AtomicFile
#include "core/error.h"          // for ConfigError, IoError
#include "core/log.h"            // for log::info
#include "core/progress.h"       // for Progress
#include "dist/communicator.h"   // for make_communicator
#include "train/train_config.h"  // for TrainConfig
#include "train/validation.h"    // for BestSoFar, ValidationResult
#include "tune/runner.h"         // for run_processes
#include "tune/search_space.h"   // for SearchSpace

namespace dfcl::cli {
namespace {

using nlohmann::json;

struct Trial {
  int64_t index = 0;
  std::vector<std::string> overrides;
  std::string dir, status = "not run";
  double seconds = 0;
  bool ok = false;
  json result;  // the trial's `dfcl train` JSON
  double value = NAN;
  bool meets = true;
  double overspend = 0;
};

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

std::string self_executable() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw IoError("tune: cannot find the dfcl executable (/proc/self/exe) to run the trials with");
  return std::string(buf, size_t(n));
}

// A trial's best validation; with metric dr_eom its budgets are judged by the DR spend, as the trial's epochs were.
void read_result(Trial& t, bool by_dr) {
  std::ifstream f(t.dir + "/train.json");
  if (!f) return;
  try {
    t.result = json::parse(f);
  } catch (const std::exception& e) {
    t.status = fmt::format("failed: its train.json does not parse ({})", e.what());
    return;
  }
  if (!t.result.contains("best") || !t.result["best_value"].is_number()) {
    t.status = "failed: no validated epoch";
    return;
  }
  t.ok = true;
  t.status = "ok";
  t.value = t.result["best_value"].get<double>();
  const json& b = by_dr && t.result["best"].contains("dr") ? t.result["best"]["dr"] : t.result["best"];
  t.meets = b.value("meets_budgets", true);
  t.overspend = b.value("overspend", 0.0);
}

int run_tune(const CommonOptions& o) {
  Config cfg = load_config(o);
  const Config t = cfg.sub("tune");
  const tune::SearchSpace space = tune::SearchSpace::from(t);
  const std::string output = t.get<std::string>("output", "tune");
  const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  const int parallel = t.get<int>("parallel", cores);
  if (parallel < 1) throw ConfigError(fmt::format("tune.parallel is {}; run at least 1 trial at a time", parallel));
  const int threads = t.get<int>("threads", std::max(1, cores / parallel));
  if (threads < 1 || threads > 4096)
    throw ConfigError(fmt::format("tune.threads is {}; give 1 to 4096 threads per trial", threads));
  // Everything else is each trial's training configuration: checked here as far as it can be without data, then by
  // every trial (the first trial's error is reported if all of them fail).
  const train::TrainConfig tc = train::TrainConfig::from(cfg);
  if (dumped(cfg, o)) return 0;
  for (const char* s :
       {"train", "validation", "model", "loss", "optimizer", "schedule", "dist", "runtime", "generate", "io", "bilevel"})
    cfg.mark_used(s);
  cfg.check_all_used();
  auto comm = dist::make_communicator(dist::CommOptions::from(cfg));

  std::vector<Trial> trials(size_t(space.trials));
  std::vector<tune::TrialProcess> mine;  // this rank's share: trials k with k % ranks == rank
  for (int64_t k = 0; k < space.trials; ++k) {
    Trial& tr = trials[size_t(k)];
    tr.index = k;
    tr.overrides = space.trial(k);
    tr.dir = fmt::format("{}/trial_{:03d}", output, k);
    if (k % comm->size() != comm->rank()) continue;
    tune::TrialProcess p;
    p.index = k;
    p.dir = tr.dir;
    p.args = {"train"};
    for (const auto& c : o.configs) p.args.insert(p.args.end(), {"-c", c});
    for (const auto& s : o.sets) p.args.insert(p.args.end(), {"--set", s});
    for (const auto& s : tr.overrides) p.args.insert(p.args.end(), {"--set", s});
    p.args.insert(p.args.end(), {"--set", "train.output=" + tr.dir, "--set", fmt::format("runtime.threads={}", threads),
                                 "--json", tr.dir + "/train.json"});
    mine.push_back(p);
  }
  std::vector<std::string> keys;
  for (const auto& d : space.dims) keys.push_back(d.key);
  // Which estimator selects: IPW for eom (the papers' protocol), the DR estimate for dr_eom.
  const train::SelectMetric sm = tc.validation.metric;
  const std::string selector =
      sm == train::SelectMetric::kDrEom  ? fmt::format("dr_eom: {}", tc.validation.estimator.describe())
      : sm == train::SelectMetric::kEom  ? std::string("eom: ipw")
      : sm == train::SelectMetric::kLoss ? std::string("loss")
                                         : tc.validation.metric_name;
  log::info(
      "tune: {} {} trial(s) of {} key(s) ({}), {} at a time on {} rank(s), {} thread(s) each; selected on "
      "validation.metric = {}; trials in {}/",
      space.trials, space.mode, keys.size(), fmt::join(keys, ", "), parallel, comm->size(), threads, selector, output);
  Progress bar("tune", int64_t(mine.size()), "trials");
  tune::run_processes(self_executable(), mine, parallel, threads, [&](const tune::TrialProcess& p) {
    Trial& tr = trials[size_t(p.index)];
    tr.seconds = p.seconds;
    if (p.exit_code == 0) read_result(tr, tc.validation.metric == train::SelectMetric::kDrEom);
    if (p.exit_code != 0)
      tr.status = fmt::format("failed (exit {}): {}", p.exit_code, tune::last_line(p.dir + "/log.txt"));
    bar.advance(1);
    bar.set_status(fmt::format("trial {} {}", p.index, tr.ok ? fmt::format("{:.5g}", tr.value) : "failed"));
  });
  bar.finish();
  comm->barrier();  // every rank's trials are written (a shared filesystem across nodes: docs/cli.md)
  if (comm->rank() != 0) return 0;
  for (auto& tr : trials)
    if (!tr.ok && tr.status == "not run") {  // another rank ran it: read what it wrote
      read_result(tr, tc.validation.metric == train::SelectMetric::kDrEom);
      if (!tr.ok) tr.status = fmt::format("failed: {}", tune::last_line(tr.dir + "/log.txt"));
    }

  // The best trial by the validation rule every run uses (BestSoFar): with metric eom, trials whose best epoch meets
  // the budgets come first.
  train::ValidationConfig vc = tc.validation;
  vc.min_delta = 0;
  train::BestSoFar best;
  int64_t best_k = -1;
  for (const auto& tr : trials) {
    if (!tr.ok) continue;
    train::ValidationResult v;
    v.meets_budgets = tr.meets, v.overspend = tr.overspend;
    if (best.improved_by(v, tr.value, vc)) best.take(v, tr.value, tr.index), best_k = tr.index;
  }
  if (best_k < 0)
    throw ConfigError(
        fmt::format("tune: every trial failed; trial 0: {} (its log: {}/log.txt)", trials[0].status, trials[0].dir));

  // Outputs: trials.json, trials.csv, best.yaml (the best trial's values as a config layer).
  json all = json::array();
  AtomicFile csv_file(output + "/trials.csv", "tune trials table");
  std::ofstream& csv = csv_file.stream();
  csv << "trial";
  for (const auto& d : space.dims) csv << ',' << d.key;
  csv << ',' << tc.validation.metric_name << ",meets_budgets,best_epoch,seconds,status\n";
  std::string table =
      fmt::format("{:>5}  {:<60} {:>12} {:>6}  {}\n", "trial", "values", tc.validation.metric_name, "meets", "status");
  for (const auto& tr : trials) {
    json j = {{"trial", tr.index},     {"overrides", tr.overrides}, {"dir", tr.dir},
              {"status", tr.status},   {"value", num(tr.value)},    {"meets_budgets", tr.meets},
              {"seconds", tr.seconds}, {"best", tr.index == best_k}};
    if (tr.ok) j["best_epoch"] = tr.result["best_epoch"], j["validation"] = tr.result["best"];
    all.push_back(j);
    csv << tr.index;
    for (const auto& ov : tr.overrides) {
      std::string v = ov.substr(ov.find('=') + 1);
      if (v.find_first_of(",\"") != std::string::npos) {
        std::string q = "\"";
        for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
        v = q + "\"";
      }
      csv << ',' << v;
    }
    csv << ',' << (tr.ok ? fmt::format("{}", tr.value) : "") << ',' << (tr.meets ? 1 : 0) << ','
        << (tr.ok ? fmt::format("{}", tr.result["best_epoch"].get<int64_t>()) : "") << ','
        << fmt::format("{:.2f}", tr.seconds) << ',' << (tr.ok ? "ok" : "failed") << '\n';
    std::string values;
    for (const auto& ov : tr.overrides) values += (values.empty() ? "" : " ") + ov;
    table += fmt::format("{:>5}  {:<60} {:>12} {:>6}  {}{}\n", tr.index, values.substr(0, 60),
                         tr.ok ? fmt::format("{:.6g}", tr.value) : "-", tr.ok ? (tr.meets ? "yes" : "NO") : "-",
                         tr.status, tr.index == best_k ? "  <- best" : "");
  }
  csv_file.commit();
  const Trial& b = trials[size_t(best_k)];
  Config layer = Config::from_string("{}", "best");
  for (const auto& ov : b.overrides) layer.set(ov);
  {
    AtomicFile best(output + "/best.yaml", "tune best values");
    std::ofstream& f = best.stream();
    f << "# dfcl tune: the best of " << space.trials << " trials (trial " << best_k << ", validation "
      << tc.validation.metric_name << " " << b.value
      << "). Layer it on the tuned config:\n#   dfcl train -c BASE.yaml -c " << output << "/best.yaml\n"
      << layer.dump();
    AtomicFile trials_json(output + "/trials.json", "tune trials");
    trials_json.stream() << all.dump(2) << '\n';
    trials_json.commit();
    best.commit();
  }
  log::info("{}", table);
  log::info("tune: best trial {} ({} = {:.6g}{}): {}; its run is {} ({}/best.yaml holds its values)", best_k,
            selector, b.value, b.meets ? "" : ", overspending: no trial met the budgets",
            fmt::join(b.overrides, " "), b.dir, output);
  json out = {
      {"trials", all},
      {"best",
       {{"trial", best_k},
        {"overrides", b.overrides},
        {"value", b.value},
        {"dir", b.dir},
        {"checkpoint", b.dir + "/best.ckpt"}}},
      {"metric", tc.validation.metric_name},
      {"selected_by", selector},
      {"mode", space.mode},
      {"files", {{"json", output + "/trials.json"}, {"csv", output + "/trials.csv"}, {"best", output + "/best.yaml"}}}};
  emit_json(out, o);
  return 0;
}

Registrar reg{{"tune", "search config values (grid or random): every trial a train run, selected on validation",
               [](CLI::App* cmd) {
                 auto o = std::make_shared<CommonOptions>();
                 add_common_options(cmd, *o);
                 cmd->footer(
                     "Config section: tune (mode: grid|random, trials, seed, space: [{key, values} or {key, min, max,\n"
                     "log, integer}], output, parallel, threads). Every other section is the trials' training config\n"
                     "(as for dfcl train). Writes OUTPUT/trial_NNN/ (each run), trials.json, trials.csv, best.yaml.\n"
                     "Example: dfcl tune -c configs/train.yaml -c configs/tune.yaml --set tune.trials=8");
                 return [o] { return run_tune(*o); };
               }}};

}  // namespace
}  // namespace dfcl::cli
