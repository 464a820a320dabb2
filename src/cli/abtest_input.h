// \brief `dfcl abtest`'s input: its `abtest` keys, the experiment's unit table read from a CSV (an arm column, metric
// columns, an optional denominator, a pre-period covariate, features; text features one-hot encoded) or a dfcl
// dataset (its RCT rows), the arms to compare, and one comparison's units for this rank. Bad input throws DataError
// naming the file, line, row, column and the fix; bad keys ConfigError.
#pragma once
#include <cstdint>  // for int64_t, int32_t
#include <map>      // for std::map
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "abtest/abtest.h"  // for Units
#include "core/config.h"    // for Config

namespace dfcl::dist {
class Communicator;
}

namespace dfcl::cli {

/// The `abtest` keys that say what to read and compare (the estimators' keys are abtest::Options).
struct AbtestSettings {
  std::string data, arm_column, control, denominator, pre, plot;
  std::vector<std::string> treatments, metrics, features, categorical, methods;
  char delimiter = ',';
  bool h5 = false;  // a dfcl dataset (.h5/.hdf5) rather than a CSV
  /// Reads and checks the keys (one role per column; the methods' needs): ConfigError naming the key and the fix.
  static AbtestSettings from(const Config& cfg);
};

/// The units of the analysed arms, column by column, in file order.
struct UnitTable {
  std::string name;                         // the file, for messages
  std::vector<std::string> labels;          // arm labels found in the data (CSV: sorted; dataset: arm order)
  std::vector<int64_t> label_rows;          // rows per label
  std::vector<int32_t> arm;                 // per kept row: index into labels
  std::vector<std::vector<double>> metric;  // per metric: per kept row
  std::vector<double> denominator, pre;     // per kept row (empty when not asked for)
  std::vector<double> x;                    // kept rows x feature_names.size(), row-major
  std::vector<std::string> feature_names;   // numeric columns by name, one-hot columns as "column=level"
  std::map<std::string, std::vector<std::string>> one_hot;  // text column -> its levels
  int64_t rows_read = 0;                                    // data rows in the file
  int64_t rows() const { return int64_t(arm.size()); }
};

/// The arms to analyse, as indices into UnitTable::labels.
struct Arms {
  int control = -1;
  std::vector<int> treatments;
};

/// Reads `s.data` (CSV or dataset) and resolves the arms: `s.control` defaults to a dataset's arm 0 and
/// `s.treatments` to every other arm with rows. A single arm, an empty arm or an unknown label is an error.
UnitTable read_unit_table(AbtestSettings& s, Arms& arms);

/// The arm sizes and means of one comparison over all units (a ratio metric's means: sum of numerators over sum of
/// denominators).
struct ArmSummary {
  int64_t n_treatment = 0, n_control = 0;
  double mean_treatment = 0, mean_control = 0;
};

/// This rank's contiguous share of the units of `treatment` vs the control on metric `metric` (the table is on
/// every rank; rank r of W takes rows [rN/W, (r+1)N/W) of the comparison), with the arm summary over all of them.
/// `label` names the metric in messages.
abtest::Units comparison_units(const UnitTable& f, const AbtestSettings& s, const Arms& arms, int treatment,
                               size_t metric, const std::string& label, const dist::Communicator& comm,
                               ArmSummary& summary);

}  // namespace dfcl::cli
