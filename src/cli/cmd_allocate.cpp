// \brief `dfcl allocate`: scores (r_hat, c_hat) + budgets -> one arm per user per budget, written to HDF5 or CSV,
// with a JSON summary. lambda comes from the scorer's predicted costs (the exact dual path) or from the IPW estimate of
// the true spend on trial rows (budget_calibration: trial); where trial rows are at hand, what the decisions really
// spend is estimated there, with its CI, beside what the scorer predicts they spend.
#include <fmt/format.h>  // for fmt::format

#include <chrono>   // for steady_clock
#include <cmath>    // for std::isfinite
#include <fstream>  // for std::ofstream

#include "cli/command.h"          // for Registrar, CommonOptions
#include "core/atomic_file.h"       // for AtomicFile
#include "core/error.h"           // for ConfigError, IoError
#include "core/log.h"             // for log::info
#include "core/progress.h"        // for Progress
#include "data/source.h"          // for open_sources, read_rct_rows
#include "data/split.h"           // for shares_file, Split
#include "metrics/oracle.h"       // for true_value
#include "metrics/rct_sample.h"   // for make_sample
#include "metrics/score_file.h"   // for read_score_file
#include "metrics/spend.h"        // for BudgetCalibration, trial_calibrate, judge_policy
#include "solver/mckp.h"          // for DualPath, solve_bisection, policy_at
#include "cluster/policy.h"        // for ClusterPolicy, is_policy_file
#include "train/trained_model.h"  // for load_trained_model, predict
#ifdef DFCL_HAVE_HDF5
#include "data/h5_util.h"  // for write_array
#endif

namespace dfcl::cli {
namespace {

using nlohmann::json;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool is_checkpoint(const std::string& s) { return ends_with(s, ".ckpt"); }
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// Assignments: one row per budget in HDF5 (`arm` K x N uint8, plus per-budget vectors), or one column per budget in
// CSV, named after the budget as given (full precision: distinct budgets get distinct names).
void write_assignments(const std::string& path, const std::vector<solver::Allocation>& all,
                       const std::vector<std::string>& columns, int64_t n) {
  if (ends_with(path, ".csv")) {
    AtomicFile out(path, "allocate.output");
    std::ofstream& f = out.stream();
    f << "user";
    for (const auto& c : columns) f << ',' << c;
    f << '\n';
    std::string line;
    for (int64_t i = 0; i < n; ++i) {
      line = std::to_string(i);
      for (const auto& a : all) line += ',' + std::to_string(int(a.arm[size_t(i)]));
      f << line << '\n';
    }
    out.commit();
    return;
  }
#ifdef DFCL_HAVE_HDF5
  namespace h5 = data::h5;
  h5::quiet();
  const std::string tmp = path + ".partial";
  h5::Hid file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (file < 0) throw IoError(fmt::format("cannot create '{}' (allocate.output): {}", tmp, h5::error_text()));
  struct RemoveUnlessKept {  // the partial file goes with an exception
    std::string p;
    bool keep = false;
    ~RemoveUnlessKept() {
      if (!keep) std::remove(p.c_str());
    }
  } guard{tmp};
  const hsize_t K = all.size();
  std::vector<uint8_t> arm(K * size_t(n));
  std::vector<double> budget, lambda, spend, revenue;
  for (size_t k = 0; k < K; ++k) {
    std::copy(all[k].arm.begin(), all[k].arm.end(), arm.begin() + long(k * size_t(n)));
    budget.push_back(all[k].budget), lambda.push_back(all[k].lambda);
    spend.push_back(all[k].spend), revenue.push_back(all[k].revenue);
  }
  h5::write_array(file, "arm", H5T_NATIVE_UINT8, {K, hsize_t(n)}, arm.data(), path);
  h5::write_array(file, "budget", H5T_NATIVE_DOUBLE, {K}, budget.data(), path);
  h5::write_array(file, "lambda", H5T_NATIVE_DOUBLE, {K}, lambda.data(), path);
  h5::write_array(file, "spend", H5T_NATIVE_DOUBLE, {K}, spend.data(), path);
  h5::write_array(file, "revenue", H5T_NATIVE_DOUBLE, {K}, revenue.data(), path);
  const hid_t id = file.id;
  file.id = -1;
  if (H5Fclose(id) < 0)
    throw IoError(fmt::format("writing '{}' (allocate.output) failed: {} (disk full?)", path, h5::error_text()));
  guard.keep = true;
  AtomicFile::move_into_place(tmp, path, "allocate.output");
#else
  (void)columns;
  throw IoError(fmt::format("'{}': this dfcl was built without HDF5; write CSV instead (allocate.output: x.csv)", path));
#endif
}

// Scores of every row of `rows` (the true tables, or a model's predictions), block by block.
// A scorer that predicts from features: a model checkpoint, or a cluster policy (its representation net is `model`,
// which says what data and split it was fitted on).
struct Predictor {
  std::unique_ptr<train::TrainedModel> owned;
  std::shared_ptr<const cluster::ClusterPolicy> policy;
  const train::TrainedModel* model = nullptr;
  void check_compatible(const data::Meta& meta, const std::string& where) const {
    policy ? policy->check_compatible(meta, where) : model->check_compatible(meta, where);
  }
  metrics::ScoreTable predict(const data::Table& rows) const {
    return policy ? policy->score(rows) : train::predict(*model, rows);
  }
};

metrics::ScoreTable score_rows(data::RowSource& src, const Predictor* model) {
  const data::Meta& meta = src.meta();
  if (!model && !meta.has_truth)
    throw ConfigError(fmt::format("allocate.scores = oracle needs true_revenue/true_cost, which {} does not have (only "
                                  "`dfcl generate` writes them); give a model checkpoint or a scores file instead",
                                  src.name()));
  if (model) model->check_compatible(meta, src.name());  // a policy file from another dataset: a clear error
  metrics::ScoreTable t;
  t.n = meta.num_rows, t.m = meta.num_arms;
  t.r.resize(size_t(t.n) * size_t(t.m)), t.c.resize(size_t(t.n) * size_t(t.m));
  data::Table block;
  Progress bar(model ? "score" : "read", t.n);
  for (int64_t a = 0; a < t.n; a += src.chunk_rows()) {
    src.read(a, std::min(src.chunk_rows(), t.n - a), block);
    if (model) {
      const metrics::ScoreTable s = model->predict(block);
      std::copy(s.r.begin(), s.r.end(), t.r.begin() + a * t.m);
      std::copy(s.c.begin(), s.c.end(), t.c.begin() + a * t.m);
    } else {
      std::copy(block.true_revenue.begin(), block.true_revenue.end(), t.r.begin() + a * t.m);
      std::copy(block.true_cost.begin(), block.true_cost.end(), t.c.begin() + a * t.m);
    }
    bar.advance(block.rows);
  }
  return t;
}

// What each allocation truly spends and earns per user (synthetic data), reading the true tables chunk by chunk:
// memory is one chunk. Holding the tables whole cost 2 N M floats, 2 GB of the allocator's 6.3 GB at 50M users x 5
// arms (bench/run_scale.sh).
std::vector<metrics::PolicyValue> true_values_streamed(data::RowSource& src, const std::vector<solver::Allocation>& all,
                                                       int threads) {
  const int64_t N = src.meta().num_rows;
  const int M = src.meta().num_arms;
  std::vector<metrics::PolicyValue> sum(all.size());
  data::Table block;
  for (int64_t a = 0; a < N; a += src.chunk_rows()) {
    const int64_t n = std::min(src.chunk_rows(), N - a);
    src.read(a, n, block);
    const solver::Scores truth{n, M, block.true_revenue.data(), block.true_cost.data()};
    for (size_t k = 0; k < all.size(); ++k) {
      const metrics::PolicyValue v = metrics::true_value(truth, all[k].arm.data() + a, threads);
      sum[k].revenue += v.revenue * double(n), sum[k].cost += v.cost * double(n);
    }
  }
  for (auto& v : sum) v.revenue /= double(N), v.cost /= double(N);
  return sum;
}

// The trial rows lambda is calibrated on and the decisions are judged on: their outcomes, and the scorer's scores.
struct Trial {
  data::Table rows;
  metrics::ScoreTable scores;
  metrics::RctSample sample;
  std::unique_ptr<metrics::IpwPath> path;
  std::string name;
};

// The rows of one column of `budgets`: the per-capita budget and the CSV column name.
std::string column_name(double value, bool per_capita) {
  return per_capita ? fmt::format("arm_at_{}_per_user", value) : fmt::format("arm_at_{}", value);
}

int run_allocate(const CommonOptions& o) {
  Config cfg = load_config(o);
  const int threads = apply_runtime(cfg);
  const Config a = cfg.sub("allocate");
  const std::string scores_path = a.require<std::string>("scores");
  const std::vector<std::string> data_paths = a.get_strings("data");
  const auto budgets = a.get<std::vector<double>>("budgets", {});
  const auto per_capita = a.get<std::vector<double>>("budgets_per_capita", {});
  const std::string output = a.get<std::string>("output", "");
  const std::string method = a.get<std::string>("method", "dual");
  const std::string calibration_name = a.get<std::string>("budget_calibration", "auto");
  const std::vector<std::string> calibration_data = a.get_strings("calibration_data");
  const std::string calibration_split = a.get<std::string>("calibration_split", "auto");
  const std::string curve_path = a.get<std::string>("curve", "");
  const int64_t curve_points = a.get<int64_t>("curve_points", 200);
  const double level = a.get<double>("level", 0.95);
  solver::SolveOptions so;
  so.greedy_fill = a.get<bool>("greedy_fill", false);
  so.clamp_below_min = a.get<bool>("clamp", false);
  if (dumped(cfg, o)) return 0;
  cfg.check_all_used();
  if (budgets.empty() == per_capita.empty())
    throw ConfigError("give exactly one of allocate.budgets (absolute) or allocate.budgets_per_capita, as a list");
  if (method != "dual" && method != "bisection")
    throw ConfigError(fmt::format("allocate.method '{}' is not one of dual, bisection", method));
  if (curve_points < 2) throw ConfigError(fmt::format("allocate.curve_points is {}; it must be >= 2", curve_points));
  const std::vector<double>& given = budgets.empty() ? per_capita : budgets;
  for (size_t k = 0; k < given.size(); ++k) {
    if (!(given[k] > 0) || !std::isfinite(given[k]))
      throw ConfigError(fmt::format("allocate.{} has {} at position {}; budgets are finite and > 0",
                                    budgets.empty() ? "budgets_per_capita" : "budgets", given[k], k));
    for (size_t l = 0; l < k; ++l)
      if (given[l] == given[k])
        throw ConfigError(fmt::format("allocate.{} lists {} twice (positions {} and {}); list each budget once",
                                      budgets.empty() ? "budgets_per_capita" : "budgets", given[k], l, k));
  }

  const bool policy_file = cluster::is_policy_file(scores_path);
  const bool model = is_checkpoint(scores_path) || policy_file, oracle = scores_path == "oracle";
  if ((oracle || model) && data_paths.empty())
    throw ConfigError(fmt::format("allocate.scores = {} scores the users of allocate.data: give the dataset "
                                  "(allocate.data=FILE.h5, or a list of files)",
                                  scores_path));
  std::unique_ptr<Predictor> predictor;
  const train::TrainedModel* trained = nullptr;  // what the scorer was fitted on (its files and split)
  if (model) {
    predictor = std::make_unique<Predictor>();
    if (policy_file) {
      predictor->policy = std::make_shared<const cluster::ClusterPolicy>(cluster::ClusterPolicy::load(scores_path));
      predictor->model = predictor->policy->teacher.get();
    } else {
      predictor->owned = std::make_unique<train::TrainedModel>(train::load_trained_model(scores_path));
      predictor->model = predictor->owned.get();
    }
    trained = predictor->model;
  }
  std::unique_ptr<data::RowSource> src;
  if (!data_paths.empty()) src = data::open_sources(data_paths, "allocate.data");
  if (src && src->meta().num_rows == 0)
    throw DataError(fmt::format("{}: 0 rows, so no users to allocate; check that the file was written completely "
                                "(dfcl info {})",
                                src->name(), src->name()));
  metrics::ScoreTable scores =
      src && (oracle || model) ? score_rows(*src, predictor.get())
                               : metrics::read_score_file(scores_path, {}, src ? src->meta().num_rows : -1,
                                                          src ? src->meta().num_arms : -1);
  const solver::Scores s = scores.view();

  // Trial rows: those of calibration_data (scored by the model or the oracle), else those of allocate.data.
  std::unique_ptr<Trial> trial;
  std::unique_ptr<data::RowSource> cal_src;
  if (!calibration_data.empty()) {
    if (!model && !oracle)
      throw ConfigError("allocate.calibration_data needs a scorer that can score its rows: a model checkpoint or "
                        "oracle (a scores file covers allocate.data's users only)");
    cal_src = data::open_sources(calibration_data, "allocate.calibration_data");
  }
  data::RowSource* trial_src = cal_src ? cal_src.get() : src.get();
  // Which trial rows: never, by default, rows the model trained on. Its decisions there follow the outcomes it fit, so
  // their IPW spend can be biased (docs/metrics.md §12).
  const bool trained_here =
      trained && data::shares_file(cal_src ? calibration_data : data_paths, trained->train_files);
  data::Split cal_split = data::Split::kAll;
  if (calibration_split == "auto") {
    cal_split = trained_here ? data::Split::kHeldOut : data::Split::kAll;
  } else {
    cal_split = data::parse_split(calibration_split);
    if (trained_here && (cal_split == data::Split::kAll || cal_split == data::Split::kTrain))
      log::warn("allocate.calibration_split = {} includes the rows {} trained on: the IPW spend of a model's decisions "
                "on rows whose outcomes it fit is biased. calibration_split=auto (held_out) leaves them out",
                calibration_split, trained->origin);
  }
  if (trial_src && data::has_rct_rows(*trial_src)) {  // the rows decide, not the file's rct_rows attribute
    trial = std::make_unique<Trial>();
    trial->name = trial_src->name();
    trial->rows = data::read_rct_rows(*trial_src, trained ? trained->split : data::SplitSpec{}, cal_split,
                                      std::numeric_limits<int64_t>::max(), "allocate's budget calibration");
    if (calibration_split == "auto" && trained_here)
      log::info("allocate.calibration_split = auto: the {} held-out trial rows of {} (validation and test splits), "
                "because {} trained on the others",
                trial->rows.rows, trial->name, trained->origin);
    if (cal_src && model) {
      predictor->check_compatible(cal_src->meta(), cal_src->name());
      trial->scores = predictor->predict(trial->rows);
    } else if (cal_src) {  // the oracle: the true tables of those rows
      if (!trial->rows.with_truth)
        throw ConfigError(fmt::format("allocate.scores = oracle with allocate.calibration_data {}: that data has no "
                                      "true tables",
                                      cal_src->name()));
      trial->scores.n = trial->rows.rows, trial->scores.m = s.m;
      trial->scores.r = trial->rows.true_revenue, trial->scores.c = trial->rows.true_cost;
    } else {  // the trial rows are rows of allocate.data: their scores are rows of `scores`
      metrics::ScoreTable t;
      t.n = trial->rows.rows, t.m = s.m;
      for (int64_t i = 0; i < t.n; ++i) {
        const int64_t id = trial->rows.row_id[size_t(i)];
        t.r.insert(t.r.end(), scores.r.begin() + id * s.m, scores.r.begin() + (id + 1) * s.m);
        t.c.insert(t.c.end(), scores.c.begin() + id * s.m, scores.c.begin() + (id + 1) * s.m);
      }
      trial->scores = std::move(t);
    }
    trial->sample = metrics::make_sample(trial->rows.treatment, trial->rows.revenue, trial->rows.cost, s.m);
    trial->path = std::make_unique<metrics::IpwPath>(trial->scores.view(), trial->sample, threads);
  }
  const metrics::BudgetCalibration calibration =
      metrics::parse_budget_calibration(calibration_name, trial != nullptr, "allocate.budget_calibration");
  if (calibration == metrics::BudgetCalibration::kTrial && !trial)
    throw ConfigError(fmt::format(
        "allocate.budget_calibration = trial needs trial rows (source = 0) to estimate the true spend on: {}; give "
        "allocate.calibration_data (a trial with the same features) or use budget_calibration=predicted",
        src ? fmt::format("{} has none", src->name()) : "a scores file alone has no rows"));
  if (calibration == metrics::BudgetCalibration::kTrial && (method == "bisection" || so.greedy_fill || so.clamp_below_min))
    throw ConfigError(fmt::format(
        "allocate.method = bisection, greedy_fill and clamp shape the knapsack on predicted costs, but lambda comes from "
        "the trial's spend here (budget_calibration = {}{}): drop them, or set budget_calibration=predicted",
        calibration_name, calibration_name == "auto" ? ", which is trial because the data has trial rows" : ""));
  const bool truth = src && src->meta().has_truth && (oracle || model);

  std::vector<double> targets = budgets;
  std::vector<std::string> columns;
  for (double b : per_capita) {
    if (!std::isfinite(b * double(s.n)))
      throw ConfigError(fmt::format("allocate.budgets_per_capita has {} per user, which over {} users is beyond a "
                                    "double; give a budget per user of the order of the costs",
                                    b, s.n));
    targets.push_back(b * double(s.n));
  }
  for (double b : given) columns.push_back(column_name(b, budgets.empty()));

  auto t0 = std::chrono::steady_clock::now();
  std::vector<solver::Allocation> all;
  std::unique_ptr<solver::DualPath> path;
  if (calibration == metrics::BudgetCalibration::kPredicted && method == "dual")
    path = std::make_unique<solver::DualPath>(s, threads);
  std::vector<bool> reached;
  std::vector<metrics::TrialCalibration> tcs;  // trial calibration per budget
  for (double b : targets) {
    if (calibration == metrics::BudgetCalibration::kPredicted) {
      all.push_back(path ? path->solve(b, so) : solver::solve_bisection(s, b));
      reached.push_back(!all.back().clamped);
      continue;
    }
    bool ok = true;
    solver::Allocation x;
    x.budget = b;
    const metrics::TrialCalibration tc = metrics::trial_calibrate(trial->scores.view(), *trial->path, b / double(s.n));
    tcs.push_back(tc);
    ok = tc.reached;
    x.lambda = tc.lambda;
    metrics::calibrated_policy(s, tc, x.arm);
    for (int64_t i = 0; i < s.n; ++i) x.spend += s.c[i * s.m + x.arm[size_t(i)]], x.revenue += s.r[i * s.m + x.arm[size_t(i)]];
    x.lp_bound = x.gap_bound = NAN;  // no knapsack on predicted costs was solved
    if (!ok)
      x.note = fmt::format("no lambda brings the trial's IPW spend to {:.6g} per user", b / double(s.n));
    reached.push_back(ok);
    all.push_back(std::move(x));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  json result;
  result["scores"] = scores_path;
  result["users"] = s.n;
  result["arms"] = s.m;
  result["budget_calibration"] = metrics::to_string(calibration);
  result["method"] = calibration == metrics::BudgetCalibration::kTrial ? "trial lambda" : method;
  result["seconds"] = seconds;
  if (trial) result["trial"] = {{"data", trial->name}, {"split", data::to_string(cal_split)}, {"rows", trial->rows.rows}};
  if (path) result["min_spend"] = path->min_spend(), result["max_spend"] = path->max_spend();
  const double N = double(std::max<int64_t>(1, s.n));
  std::string table = fmt::format("{} users x {} arms, {} budget(s), lambda by {} calibration{}, {:.3f}s\n", s.n, s.m,
                                  targets.size(), metrics::to_string(calibration),
                                  trial ? fmt::format(" ({} trial rows of {})", trial->rows.rows, trial->name) : "",
                                  seconds);
  table += fmt::format("  {:>12} {:>11} {:>12} {:>12} {:>23} {:<11} {:>11} {:>12} {:>10}\n", "budget/user", "lambda*",
                       "predicted", "trial spend", fmt::format("{:.0f}% CI", 100 * level), "verdict", "true spend",
                       "pred. rev", "gap<=");
  // What the decisions truly spend and earn (synthetic data): the oracle's scores are the true tables; a model's
  // decisions are judged against them chunk by chunk.
  std::vector<metrics::PolicyValue> true_values;
  if (truth && oracle)
    for (const auto& x : all) true_values.push_back(metrics::true_value(s, x.arm, threads));
  else if (truth)
    true_values = true_values_streamed(*src, all, threads);
  for (size_t k = 0; k < all.size(); ++k) {
    const solver::Allocation& x = all[k];
    std::vector<int64_t> per_arm(size_t(s.m), 0);
    for (uint8_t j : x.arm) ++per_arm[j];
    json r = {{"budget", x.budget},          {"per_capita", x.budget / N}, {"column", columns[k]},
              {"lambda", num(x.lambda)},     {"spend", x.spend},           {"predicted_spend_per_user", x.spend / N},
              {"revenue", x.revenue},        {"lp_bound", num(x.lp_bound)}, {"gap_bound", num(x.gap_bound)},
              {"saturated", x.saturated},    {"clamped", x.clamped},       {"reached", bool(reached[k])},
              {"note", x.note},              {"users_per_arm", per_arm},   {"fill_spend", x.fill_spend},
              {"fill_revenue", x.fill_revenue}, {"fill_users", x.fill_users}};
    std::string tspend = "-", ci = "-", verdict = "-", true_spend = "-";
    if (trial) {
      std::vector<uint8_t> trial_policy;
      if (calibration == metrics::BudgetCalibration::kTrial) {
        metrics::calibrated_policy(trial->scores.view(), tcs[k], trial_policy);
        if (tcs[k].fill > 0) {
          r["tie_fill"] = {{"fill", tcs[k].fill}, {"tied_trial_rows", tcs[k].tied_trial_rows}};
          log::info("allocate: at {:.6g} per user {} trial rows switch arm at one lambda ({:.6g}); a share {:.3f} of "
                    "such users (by a fixed hash of the row) takes the costlier arm, so that the trial's spend meets "
                    "the budget",
                    x.budget / N, tcs[k].tied_trial_rows, x.lambda, tcs[k].fill);
        }
      } else {
        solver::policy_at(trial->scores.view(), x.lambda, trial_policy);
      }
      const metrics::BudgetDecision d =
          metrics::judge_policy(trial->scores.view(), *trial->path, x.budget / N, x.lambda, trial_policy, level);
      r["trial_spend_per_user"] = {{"value", d.spend.value}, {"se", d.spend.se}, {"lo", d.spend.lo}, {"hi", d.spend.hi}};
      r["trial_revenue_per_user"] = d.ipw.revenue;
      r["verdict"] = metrics::to_string(d.verdict);
      tspend = fmt::format("{:.5g}", d.spend.value), ci = fmt::format("[{:.4g}, {:.4g}]", d.spend.lo, d.spend.hi);
      verdict = metrics::to_string(d.verdict);
      if (d.verdict == metrics::SpendVerdict::kOverspends)
        log::warn("allocate: at {:.6g} per user the decisions spend {:.4g} per user on the trial rows (IPW, CI [{:.4g}, "
                  "{:.4g}]){}; {}",
                  x.budget / N, d.spend.value, d.spend.lo, d.spend.hi,
                  calibration == metrics::BudgetCalibration::kPredicted
                      ? fmt::format(" while the scorer predicts {:.4g}", x.spend / N)
                      : "",
                  calibration == metrics::BudgetCalibration::kPredicted
                      ? "set allocate.budget_calibration=trial to set lambda from the trial's spend"
                      : "no lambda of this scorer meets the budget: its costs barely separate the arms");
    }
    if (truth) {
      const metrics::PolicyValue& v = true_values[k];
      r["true_spend_per_user"] = v.cost, r["true_revenue_per_user"] = v.revenue;
      true_spend = fmt::format("{:.5g}", v.cost);
    }
    result["budgets"].push_back(r);
    table += fmt::format("  {:>12.6g} {:>11.6g} {:>12.6g} {:>12} {:>23} {:<11} {:>11} {:>12.6g} {:>10}{}\n", x.budget / N,
                         x.lambda, x.spend / N, tspend, ci, verdict, true_spend, x.revenue / N,
                         std::isfinite(x.gap_bound) ? fmt::format("{:.3g}", x.gap_bound) : "-",
                         x.note.empty() ? "" : "  (" + x.note + ")");
    if (so.greedy_fill)
      table += fmt::format("  {:>12} greedy fill: +{:.6g} spend, +{:.6g} revenue over {} users\n", "", x.fill_spend,
                           x.fill_revenue, x.fill_users);
  }
  table += "(per user; predicted = the scorer's own costs of the chosen arms; trial spend = the IPW estimate of what "
           "the decisions truly spend, on trial rows; true spend = from the true tables (synthetic data))";
  log::info("{}", table);
  if (!output.empty()) {
    write_assignments(output, all, columns, s.n);
    result["output"] = output;
    log::info("assignments written to {}", output);
  }
  // The whole budget curve: predicted spend and revenue of the dual policy at every breakpoint (thinned), and its IPW
  // spend and revenue on the trial rows at the same lambdas.
  if (!curve_path.empty()) {
    const solver::DualPath full(s, threads);
    const std::vector<solver::CurvePoint> curve = full.curve(curve_points);
    AtomicFile out(curve_path, "allocate.curve");
    std::ofstream& f = out.stream();
    f << "lambda,predicted_spend_per_user,predicted_revenue_per_user" << (trial ? ",trial_spend_per_user,trial_revenue_per_user" : "") << '\n';
    for (const auto& p : curve) {
      f << fmt::format("{},{},{}", p.lambda, p.spend / N, p.revenue / N);
      if (trial) {
        const metrics::PolicyValue v = trial->path->at(p.lambda);
        f << fmt::format(",{},{}", v.cost, v.revenue);
      }
      f << '\n';
    }
    out.commit();
    result["curve"] = {{"file", curve_path}, {"points", curve.size()}};
    log::info("budget curve ({} points) written to {}", curve.size(), curve_path);
  }
  emit_json(result, o);
  return 0;
}

Registrar reg{{"allocate", "choose one arm per user under each budget (multiple-choice knapsack, exact dual path)",
               [](CLI::App* cmd) {
                 auto o = std::make_shared<CommonOptions>();
                 add_common_options(cmd, *o);
                 cmd->footer(
                     "Config keys: allocate.scores (a model checkpoint .ckpt from `dfcl train`, a cluster policy .policy\n"
                     "from `dfcl cluster`, or oracle, scoring the\n"
                     "users of allocate.data, a dataset or a list of files; or a scores file: HDF5 with r_hat, c_hat,\n"
                     "N x M float32), allocate.budgets [absolute] or allocate.budgets_per_capita [per user],\n"
                     "allocate.budget_calibration (auto|trial|predicted: lambda from the IPW spend on trial rows, or\n"
                     "from the scorer's predicted costs), allocate.calibration_data / calibration_split (the trial\n"
                     "rows; default: those of allocate.data, leaving out the rows the model trained on:\n"
                     "calibration_split auto = held_out there, all elsewhere), allocate.output (.h5 or .csv), allocate.curve (CSV of\n"
                     "the whole budget curve) and curve_points, allocate.level (spend CI), and for predicted\n"
                     "calibration allocate.method (dual|bisection), greedy_fill, clamp (budget below the minimum).\n"
                     "Example: dfcl allocate --set allocate.scores=run/best.ckpt --set allocate.data=users.h5 \\\n"
                     "         --set allocate.budgets_per_capita=[0.5,1]");
                 return [o] { return run_allocate(*o); };
               }}};

}  // namespace
}  // namespace dfcl::cli
