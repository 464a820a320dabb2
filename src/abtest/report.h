// \brief The A/B report: one comparison's text table, its JSON, and the CI plot (one panel per comparison, every
// estimator's interval), as `dfcl abtest` prints and writes them.
#pragma once
#include <nlohmann/json.hpp>  // for nlohmann::json

#include <cstdint>  // for int64_t
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "abtest/abtest.h"  // for Estimate

namespace dfcl::abtest {

/// One comparison (a treatment arm against the control on one metric) and its estimates.
struct Comparison {
  std::string treatment, control, metric;  // metric: the column, or "numerator / denominator"
  std::string numerator, denominator;
  bool ratio = false;
  int64_t n_treatment = 0, n_control = 0;
  double mean_treatment = 0, mean_control = 0;  // arm means (ratio metrics: sum of numerators / sum of denominators)
  std::vector<Estimate> estimates;
  double seconds = 0;
};


/// The table: a header line (arms, n, means), one row per estimator (effect, SE, CI, p, variance reduction; '*'
/// when it has warnings), then the warnings.
std::string comparison_table(const Comparison& c, double alpha);
/// The comparison as JSON: arms, n, means, seconds, and every estimate (without STATE's log-likelihood trace).
nlohmann::json comparison_json(const Comparison& c);
/// The CI plot as SVG.
std::string forest_svg(const std::vector<Comparison>& cs, double alpha);
/// Writes forest_svg to `path`; IoError naming the path and `key` when it cannot.
void write_forest_svg(const std::string& path, const std::string& key, const std::vector<Comparison>& cs,
                      double alpha);

}  // namespace dfcl::abtest
