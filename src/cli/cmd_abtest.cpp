// \brief `dfcl abtest`: the effect of each treatment arm of an A/B test on each metric, by DIM, CUPED, CUPAC, MLRATE
// and STATE (docs/abtest.md). Reads a CSV or a dfcl dataset (cli/abtest_input.h); prints one table per (treatment vs
// control, metric) on stderr, the JSON result on stdout, and with --plot an SVG of every estimator's CI
// (abtest/report.h).
#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join

#include <chrono>  // for std::chrono::steady_clock
#include <memory>  // for std::shared_ptr

#include "abtest/abtest.h"      // for analyse, Options, Units, estimator_names
#include "abtest/report.h"      // for Comparison, comparison_table, comparison_json, write_forest_svg
#include "cli/abtest_input.h"   // for AbtestSettings, UnitTable, Arms, read_unit_table, comparison_units
#include "cli/command.h"        // for Registrar, CommonOptions
#include "core/log.h"           // for log::info
#include "dist/communicator.h"  // for make_communicator, CommOptions

namespace dfcl::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct AbtestOptions {
  CommonOptions common;
  std::string plot;  // --plot FILE.svg (overrides abtest.plot)
};

int run_abtest(AbtestOptions& o) {
  Config cfg = load_config(o.common);
  apply_runtime(cfg);
  AbtestSettings s = AbtestSettings::from(cfg);
  if (!o.plot.empty()) s.plot = o.plot;
  const abtest::Options options = abtest::Options::from(cfg);
  const dist::CommOptions comm_options = dist::CommOptions::from(cfg);
  if (dumped(cfg, o.common)) return 0;
  cfg.check_all_used();  // config errors before any I/O
  auto comm = dist::make_communicator(comm_options, "cpu");

  const auto t0 = Clock::now();
  Arms arms;
  const UnitTable f = read_unit_table(s, arms);
  std::vector<std::string> arm_rows;
  for (size_t k = 0; k < f.labels.size(); ++k) arm_rows.push_back(fmt::format("{} {}", f.labels[k], f.label_rows[k]));
  std::vector<std::string> one_hot;
  for (const auto& [col, lv] : f.one_hot) one_hot.push_back(fmt::format("{} ({} levels)", col, lv.size()));
  log::info("abtest: {} rows from {} in {:.2f}s; arms: {}; {} feature columns{}", f.rows_read, f.name,
            std::chrono::duration<double>(Clock::now() - t0).count(), fmt::join(arm_rows, ", "), f.feature_names.size(),
            one_hot.empty() ? "" : fmt::format(", one-hot: {}", fmt::join(one_hot, ", ")));

  std::vector<abtest::Comparison> cs;
  for (int tr : arms.treatments)
    for (size_t m = 0; m < s.metrics.size(); ++m) {
      abtest::Comparison c;
      c.treatment = f.labels[tr], c.control = f.labels[arms.control];
      c.metric = s.denominator.empty() ? s.metrics[m] : s.metrics[m] + " / " + s.denominator;
      c.ratio = !s.denominator.empty();
      c.numerator = s.metrics[m], c.denominator = s.denominator;
      const auto t1 = Clock::now();
      ArmSummary sum;
      const abtest::Units units = comparison_units(f, s, arms, tr, m, c.metric, *comm, sum);
      c.n_treatment = sum.n_treatment, c.n_control = sum.n_control;
      c.mean_treatment = sum.mean_treatment, c.mean_control = sum.mean_control;
      c.estimates = abtest::analyse(units, options, *comm, s.methods);
      c.seconds = std::chrono::duration<double>(Clock::now() - t1).count();
      log::info("{}", abtest::comparison_table(c, options.alpha));
      cs.push_back(std::move(c));
    }
  if (!s.plot.empty() && log::rank() == 0) {
    abtest::write_forest_svg(s.plot, "abtest.plot / --plot", cs, options.alpha);
    log::info("abtest: CI plot written to {}", s.plot);
  }

  json out;
  out["data"] = s.data;
  out["format"] = s.h5 ? "dataset" : "csv";
  out["rows"] = f.rows_read;
  out["arm_column"] = s.arm_column;
  out["control"] = f.labels[arms.control];
  out["treatments"] = s.treatments;
  out["arms"] = json::object();
  for (size_t k = 0; k < f.labels.size(); ++k) out["arms"][f.labels[k]] = f.label_rows[k];
  out["metrics"] = s.metrics;
  out["denominator"] = s.denominator.empty() ? json() : json(s.denominator);
  out["pre"] = s.pre.empty() ? json() : json(s.pre);
  out["features"] = f.feature_names;
  out["one_hot"] = f.one_hot;
  out["alpha"] = options.alpha;
  out["world_size"] = comm->size();
  json list = json::array(), warnings = json::array();
  for (const auto& c : cs) {
    list.push_back(abtest::comparison_json(c));
    for (const auto& e : c.estimates)
      for (const auto& w : e.warnings)
        warnings.push_back(fmt::format("{} vs {}, {}, {}: {}", c.treatment, c.control, c.metric, e.method, w));
  }
  out["comparisons"] = std::move(list);
  out["warnings"] = std::move(warnings);
  out["plot"] = s.plot.empty() ? json() : json(s.plot);
  out["seconds"] = std::chrono::duration<double>(Clock::now() - t0).count();
  emit_json(out, o.common);
  return 0;
}

Registrar reg{{"abtest", "A/B-test effects with CIs: DIM, CUPED, CUPAC, MLRATE and STATE, for count and ratio metrics",
               [](CLI::App* cmd) {
                 auto o = std::make_shared<AbtestOptions>();
                 add_common_options(cmd, o->common);
                 cmd->add_option("--plot", o->plot, "draw every estimator's CI, one panel per comparison (SVG)")
                     ->type_name("FILE.svg");
                 cmd->footer(fmt::format(
                     "Config section: abtest (data: a CSV or a dfcl dataset .h5; arm_column, control, treatments\n"
                     "(default: every other arm), metrics, denominator (makes every metric a ratio), pre (the CUPED\n"
                     "covariate), features (text columns are one-hot encoded), categorical, methods ({}; default:\n"
                     "all that apply), plot, delimiter, alpha, folds, seed, predictor, ridge_lambda, state.*),\n"
                     "runtime (threads). docs/abtest.md lists every key and the estimators.\n"
                     "Example: dfcl abtest -c configs/abtest_hillstrom.yaml --plot hillstrom.svg",
                     fmt::join(abtest::estimator_names(), "|")));
                 return [o] { return run_abtest(*o); };
               }}};

}  // namespace
}  // namespace dfcl::cli
