// \brief `dfcl allocate`: scores (r_hat, c_hat) + budgets -> one arm per user per budget, written to HDF5 or CSV,
// with a JSON summary (lambda*, spend, revenue, LP bound and gap per budget).
#include <fmt/format.h>  // for fmt::format

#include <chrono>   // for steady_clock
#include <fstream>  // for std::ofstream

#include "cli/command.h"          // for Registrar, CommonOptions
#include "core/error.h"           // for ConfigError, IoError
#include "core/log.h"             // for log::info
#include "core/progress.h"        // for Progress
#include "data/source.h"          // for open_source
#include "metrics/score_file.h"   // for read_score_file
#include "solver/mckp.h"          // for DualPath, solve_bisection
#include "train/trained_model.h"  // for load_trained_model, predict
#ifdef DFCL_HAVE_HDF5
#include "data/h5_util.h"  // for write_array
#endif

namespace dfcl::cli {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Assignments: one row per budget in HDF5 (`arm` K x N uint8, plus per-budget vectors), or one column per budget in CSV.
void write_assignments(const std::string& path, const std::vector<solver::Allocation>& all, int64_t n) {
  if (ends_with(path, ".csv")) {
    std::ofstream f(path);
    if (!f) throw IoError(fmt::format("cannot write '{}' (allocate.output): check the directory", path));
    f << "user";
    for (const auto& a : all) f << fmt::format(",arm_at_budget_{:g}", a.budget);
    f << '\n';
    std::string line;
    for (int64_t i = 0; i < n; ++i) {
      line = std::to_string(i);
      for (const auto& a : all) line += ',' + std::to_string(int(a.arm[i]));
      f << line << '\n';
    }
    if (!f) throw IoError(fmt::format("writing '{}' failed (disk full?)", path));
    return;
  }
#ifdef DFCL_HAVE_HDF5
  namespace h5 = data::h5;
  h5::quiet();
  h5::Hid file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (file < 0) throw IoError(fmt::format("cannot create '{}' (allocate.output): {}", path, h5::error_text()));
  const hsize_t K = all.size();
  std::vector<uint8_t> arm(K * n);
  std::vector<double> budget, lambda, spend, revenue;
  for (size_t k = 0; k < K; ++k) {
    std::copy(all[k].arm.begin(), all[k].arm.end(), arm.begin() + k * n);
    budget.push_back(all[k].budget), lambda.push_back(all[k].lambda);
    spend.push_back(all[k].spend), revenue.push_back(all[k].revenue);
  }
  h5::write_array(file, "arm", H5T_NATIVE_UINT8, {K, hsize_t(n)}, arm.data(), path);
  h5::write_array(file, "budget", H5T_NATIVE_DOUBLE, {K}, budget.data(), path);
  h5::write_array(file, "lambda", H5T_NATIVE_DOUBLE, {K}, lambda.data(), path);
  h5::write_array(file, "spend", H5T_NATIVE_DOUBLE, {K}, spend.data(), path);
  h5::write_array(file, "revenue", H5T_NATIVE_DOUBLE, {K}, revenue.data(), path);
#else
  throw IoError(fmt::format("'{}': this dfcl was built without HDF5; write CSV instead (allocate.output: x.csv)", path));
#endif
}

// The oracle's scores: the true potential-outcome tables of a synthetic dataset, every row.
metrics::ScoreTable truth_of(const std::string& path) {
  auto src = data::open_source(path);
  const data::Meta& meta = src->meta();
  if (!meta.has_truth)
    throw ConfigError(fmt::format("allocate.scores = oracle needs true_revenue/true_cost, which '{}' does not have "
                                  "(only `dfcl generate` writes them); give a scores file instead", path));
  metrics::ScoreTable t;
  t.n = meta.num_rows, t.m = meta.num_arms;
  t.r.resize(size_t(t.n) * t.m), t.c.resize(size_t(t.n) * t.m);
  data::Table block;
  for (int64_t a = 0; a < t.n; a += src->chunk_rows()) {
    src->read(a, std::min(src->chunk_rows(), t.n - a), block);
    std::copy(block.true_revenue.begin(), block.true_revenue.end(), t.r.begin() + a * t.m);
    std::copy(block.true_cost.begin(), block.true_cost.end(), t.c.begin() + a * t.m);
  }
  return t;
}

// A trained model's scores for every row of a dataset, chunk by chunk.
metrics::ScoreTable model_scores(const std::string& checkpoint, const std::string& path) {
  const train::TrainedModel model = train::load_trained_model(checkpoint);
  auto src = data::open_source(path);
  const data::Meta& meta = src->meta();
  model.check_compatible(meta, path);
  metrics::ScoreTable t;
  t.n = meta.num_rows, t.m = meta.num_arms;
  t.r.resize(size_t(t.n) * t.m), t.c.resize(size_t(t.n) * t.m);
  data::Table block;
  Progress bar("score", t.n);
  for (int64_t a = 0; a < t.n; a += src->chunk_rows()) {
    src->read(a, std::min(src->chunk_rows(), t.n - a), block);
    const metrics::ScoreTable s = train::predict(model, block);
    std::copy(s.r.begin(), s.r.end(), t.r.begin() + a * t.m);
    std::copy(s.c.begin(), s.c.end(), t.c.begin() + a * t.m);
    bar.advance(block.rows);
  }
  return t;
}

bool is_checkpoint(const std::string& s) { return s.size() > 5 && s.compare(s.size() - 5, 5, ".ckpt") == 0; }

int run_allocate(const CommonOptions& o) {
  Config cfg = load_config(o);
  if (dumped(cfg, o)) return 0;
  const int threads = apply_runtime(cfg);
  const Config a = cfg.sub("allocate");
  const std::string scores_path = a.require<std::string>("scores");
  const std::string data_path = a.get<std::string>("data", "");
  const auto budgets = a.get<std::vector<double>>("budgets", {});
  const auto per_capita = a.get<std::vector<double>>("budgets_per_capita", {});
  const std::string output = a.get<std::string>("output", "");
  const std::string method = a.get<std::string>("method", "dual");
  solver::SolveOptions so;
  so.greedy_fill = a.get<bool>("greedy_fill", false);
  so.clamp_below_min = a.get<bool>("clamp", false);
  cfg.check_all_used();
  if (budgets.empty() == per_capita.empty())
    throw ConfigError("give exactly one of allocate.budgets (absolute) or allocate.budgets_per_capita, as a list");
  if (method != "dual" && method != "bisection")
    throw ConfigError(fmt::format("allocate.method '{}' is not one of dual, bisection", method));

  const bool model = is_checkpoint(scores_path);
  if ((scores_path == "oracle" || model) != !data_path.empty())
    throw ConfigError(
        "allocate.data (the users to allocate) goes with allocate.scores = oracle (a synthetic dataset) or a model "
        "checkpoint (.ckpt from `dfcl train`), and only with them; a scores file already holds every user");
  metrics::ScoreTable scores = scores_path == "oracle" ? truth_of(data_path)
                               : model               ? model_scores(scores_path, data_path)
                                                     : metrics::read_score_file(scores_path);
  const solver::Scores s = scores.view();
  std::vector<double> targets = budgets;
  for (double b : per_capita) targets.push_back(b * double(s.n));

  auto t0 = std::chrono::steady_clock::now();
  std::vector<solver::Allocation> all;
  std::unique_ptr<solver::DualPath> path;
  if (method == "dual") path = std::make_unique<solver::DualPath>(s, threads);
  for (double b : targets) all.push_back(path ? path->solve(b, so) : solver::solve_bisection(s, b));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  nlohmann::json result;
  result["scores"] = scores_path;
  result["users"] = s.n;
  result["arms"] = s.m;
  result["method"] = method;
  result["seconds"] = seconds;
  if (path) result["min_spend"] = path->min_spend(), result["max_spend"] = path->max_spend();
  std::string table = fmt::format("{} users x {} arms, {} budget(s), {} in {:.3f}s\n", s.n, s.m, targets.size(), method, seconds);
  table += fmt::format("  {:>14} {:>12} {:>14} {:>14} {:>14} {:>10}\n", "budget", "lambda*", "spend", "revenue", "LP bound", "gap<=");
  for (const auto& x : all) {
    std::vector<int64_t> per_arm(s.m, 0);
    for (uint8_t j : x.arm) ++per_arm[j];
    result["budgets"].push_back({{"budget", x.budget}, {"per_capita", x.budget / std::max<int64_t>(1, s.n)},
                                 {"lambda", x.lambda}, {"spend", x.spend}, {"revenue", x.revenue},
                                 {"lp_bound", x.lp_bound}, {"gap_bound", x.gap_bound}, {"saturated", x.saturated},
                                 {"clamped", x.clamped}, {"note", x.note}, {"users_per_arm", per_arm},
                                 {"fill_spend", x.fill_spend}, {"fill_revenue", x.fill_revenue}, {"fill_users", x.fill_users}});
    table += fmt::format("  {:>14.6g} {:>12.6g} {:>14.6g} {:>14.6g} {:>14.6g} {:>10.3g}{}\n", x.budget, x.lambda, x.spend,
                         x.revenue, x.lp_bound, x.gap_bound, x.note.empty() ? "" : "  (" + x.note + ")");
    if (so.greedy_fill)
      table += fmt::format("  {:>14} greedy fill: +{:.6g} spend, +{:.6g} revenue over {} users\n", "", x.fill_spend,
                           x.fill_revenue, x.fill_users);
  }
  log::info("{}", table);
  if (!output.empty()) {
    write_assignments(output, all, s.n);
    result["output"] = output;
    log::info("assignments written to {}", output);
  }
  emit_json(result, o);
  return 0;
}

Registrar reg{{"allocate", "choose one arm per user under each budget (multiple-choice knapsack, exact dual path)",
               [](CLI::App* cmd) {
                 auto o = std::make_shared<CommonOptions>();
                 add_common_options(cmd, *o);
                 cmd->footer(
                     "Config keys: allocate.scores (HDF5 with r_hat, c_hat: N x M float32; or a model checkpoint .ckpt\n"
                     "from `dfcl train`, scoring the users of allocate.data; or oracle with allocate.data, a synthetic\n"
                     "dataset whose true tables are used), allocate.budgets [absolute]\n"
                     "or allocate.budgets_per_capita [per user], allocate.output (.h5 or .csv), allocate.method\n"
                     "(dual|bisection), allocate.greedy_fill, allocate.clamp (budget below the minimum spend).\n"
                     "Example: dfcl allocate --set allocate.scores=s.h5 --set allocate.budgets_per_capita=[0.5,1]");
                 return [o] { return run_allocate(*o); };
               }}};

}  // namespace
}  // namespace dfcl::cli
