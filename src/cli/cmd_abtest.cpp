// \brief `dfcl abtest`: the effect of each treatment arm of an A/B test on each metric, by DIM, CUPED, CUPAC, MLRATE
// and STATE (docs/abtest.md). Reads a CSV (an arm column, metric columns, an optional denominator, a pre-period
// covariate, features; text features are one-hot encoded) or a dfcl dataset; prints one table per (treatment vs
// control, metric) on stderr, the JSON result on stdout, and with --plot an SVG of every estimator's CI.
#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join

#include <algorithm>    // for std::find, std::min, std::max, std::sort
#include <cctype>       // for std::toupper
#include <chrono>       // for std::chrono::steady_clock
#include <cmath>        // for std::isfinite, std::abs, std::pow, std::floor, std::ceil, std::log10
#include <fstream>      // for std::ofstream
#include <functional>   // for std::less
#include <map>          // for std::map
#include <memory>       // for std::unique_ptr
#include <set>          // for std::set
#include <string_view>  // for std::string_view

#include "abtest/abtest.h"      // for analyse, Options, Units, Estimate, estimator_names
#include "cli/command.h"        // for Registrar, CommonOptions
#include "core/error.h"         // for ConfigError, DataError, IoError
#include "core/log.h"           // for log::info
#include "data/csv.h"           // for CsvReader, trim_field, show_field, parse_field
#include "data/source.h"        // for open_source
#include "dist/communicator.h"  // for make_communicator, CommOptions

namespace dfcl::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// A text feature with more distinct values than this is an error, not thousands of one-hot columns.
constexpr size_t kMaxLevels = 100;

struct AbtestOptions {
  CommonOptions common;
  std::string plot;  // --plot FILE.svg (overrides abtest.plot)
};

struct Settings {
  std::string data, arm_column, control, denominator, pre, plot;
  std::vector<std::string> treatments, metrics, features, categorical, methods;
  char delimiter = ',';
  bool h5 = false;  // a dfcl dataset (.h5/.hdf5) rather than a CSV
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The whole (trimmed) field is a number (NaN and inf included: they parse).
bool parse_double(std::string_view s, double& out) { return data::parse_field(s, out) == std::errc(); }

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

Settings read_settings(const Config& cfg) {
  Settings s;
  s.data = cfg.get<std::string>("abtest.data", "");
  if (s.data.empty())
    throw ConfigError(
        "abtest.data is required: a CSV file with one row per unit, or a dfcl dataset (.h5); pass --set "
        "abtest.data=FILE, or start from configs/abtest_hillstrom.yaml");
  s.h5 = ends_with(s.data, ".h5") || ends_with(s.data, ".hdf5");
  s.arm_column = cfg.get<std::string>("abtest.arm_column", s.h5 ? "treatment" : "");
  if (s.arm_column.empty())
    throw ConfigError(
        "abtest.arm_column is required for a CSV: the column holding each unit's arm label (Hillstrom: segment); "
        "pass --set abtest.arm_column=NAME");
  if (s.h5 && s.arm_column != "treatment")
    throw ConfigError(
        fmt::format("abtest.arm_column ({}) = '{}': a dfcl dataset has one arm column, 'treatment'; leave the key out",
                    cfg.origin("abtest.arm_column"), s.arm_column));
  s.control = cfg.get<std::string>("abtest.control", "");
  if (s.control.empty() && !s.h5)
    throw ConfigError(
        "abtest.control is required for a CSV: the control arm's label in the arm column (Hillstrom: No E-Mail); "
        "pass --set \"abtest.control=LABEL\"");
  s.treatments = cfg.get<std::vector<std::string>>("abtest.treatments", {});
  s.metrics = cfg.get<std::vector<std::string>>(
      "abtest.metrics", s.h5 ? std::vector<std::string>{"revenue"} : std::vector<std::string>{});
  if (s.metrics.empty())
    throw ConfigError(
        "abtest.metrics is required: the metric columns to analyse, a list (Hillstrom: [spend, visit, conversion])");
  s.denominator = cfg.get<std::string>("abtest.denominator", "");
  s.pre = cfg.get<std::string>("abtest.pre", "");
  s.features = cfg.get<std::vector<std::string>>("abtest.features", {});
  s.categorical = cfg.get<std::vector<std::string>>("abtest.categorical", {});
  s.methods = cfg.get<std::vector<std::string>>("abtest.methods", {});
  s.plot = cfg.get<std::string>("abtest.plot", "");
  std::string delim = cfg.get<std::string>("abtest.delimiter", ",");
  if (delim == "\\t" || delim == "tab") delim = "\t";
  if (delim.size() != 1 || delim[0] == '"' || delim[0] == '\n' || delim[0] == '\r')
    throw ConfigError(
        fmt::format("config key 'abtest.delimiter' ({}) = '{}' must be one character other than '\"' "
                    "(e.g. \",\", \";\", \"\\t\")",
                    cfg.origin("abtest.delimiter"), delim));
  s.delimiter = delim[0];

  // Columns have one role each; a feature must be known before the experiment starts.
  for (const auto& m : s.metrics) {
    if (m == s.arm_column)
      throw ConfigError(
          fmt::format("abtest.metrics: '{}' is the arm column (abtest.arm_column); list metric columns", m));
    if (m == s.denominator)
      throw ConfigError(
          fmt::format("abtest.metrics: '{}' is also abtest.denominator; a ratio metric's numerator and "
                      "denominator are different columns",
                      m));
  }
  for (const auto& f : s.features) {
    if (contains(s.metrics, f) || f == s.denominator || f == s.arm_column)
      throw ConfigError(fmt::format(
          "abtest.features: '{}' is also the arm column, a metric or the denominator; features must be measured "
          "before the experiment (pre-period), or the adjusted estimators absorb the effect: remove it",
          f));
  }
  if (!s.pre.empty() && (contains(s.metrics, s.pre) || s.pre == s.denominator || s.pre == s.arm_column))
    throw ConfigError(
        fmt::format("abtest.pre: '{}' is also the arm column, a metric or the denominator; give the "
                    "pre-period covariate (Hillstrom: history)",
                    s.pre));
  for (const auto& c : s.categorical)
    if (!contains(s.features, c))
      throw ConfigError(fmt::format("abtest.categorical: '{}' is not in abtest.features; list it there too", c));
  if (s.h5 && !s.categorical.empty())
    throw ConfigError("abtest.categorical applies to CSV input; a dfcl dataset's features are numeric already");

  const auto known = abtest::estimator_names();
  for (const auto& m : s.methods) {
    if (!contains(known, m))
      throw ConfigError(fmt::format("abtest.methods ({}): unknown method '{}'; known methods: {}",
                                    cfg.origin("abtest.methods"), m, fmt::join(known, ", ")));
    if (m == "cuped" && s.pre.empty())
      throw ConfigError("abtest.methods: cuped needs a pre-period covariate: set abtest.pre=COLUMN (or drop cuped)");
    if ((m == "cupac" || m == "mlrate" || m == "state") && s.features.empty())
      throw ConfigError(fmt::format(
          "abtest.methods: {} needs features for its ML covariate: set abtest.features=[...] (or drop {})", m, m));
  }
  return s;
}

/// The units of the analysed arms, column by column, in file order.
struct Frame {
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

/// The arms to analyse, as indices into Frame::labels.
struct Arms {
  int control = -1;
  std::vector<int> treatments;
};

// The labels with their row counts, for messages (the first 20: a wrong arm_column can hold thousands).
std::string label_list(const Frame& f) {
  std::vector<std::string> v;
  for (size_t k = 0; k < f.labels.size() && k < 20; ++k)
    v.push_back(fmt::format("'{}' ({} rows)", f.labels[k], f.label_rows[k]));
  if (f.labels.size() > 20) v.push_back(fmt::format("and {} more", f.labels.size() - 20));
  return fmt::format("{}", fmt::join(v, ", "));
}

// Control and treatments from the labels the data holds: unknown labels, empty arms and a single arm are errors.
Arms resolve_arms(Settings& s, const Frame& f) {
  std::vector<int> present;
  for (size_t k = 0; k < f.labels.size(); ++k)
    if (f.label_rows[k] > 0) present.push_back(int(k));
  if (present.empty())
    throw DataError(fmt::format("{}: no rows to analyse (column '{}'); check the file is the experiment's unit table",
                                f.name, s.arm_column));
  if (present.size() == 1)
    throw DataError(fmt::format(
        "{}: column '{}' holds a single arm, '{}' ({} rows); an A/B test needs a control and at least one treatment "
        "arm: check abtest.arm_column names the column that records the assignment, and that the file holds every arm",
        f.name, s.arm_column, f.labels[present[0]], f.label_rows[present[0]]));
  if (s.control.empty()) s.control = f.labels[0];  // datasets: arm 0 is control
  auto find = [&](const std::string& label, const char* key) {
    const auto it = std::find(f.labels.begin(), f.labels.end(), label);
    if (it == f.labels.end())
      throw ConfigError(fmt::format(
          "{}: arm label '{}' is not in column '{}' of {}; the labels there are {} (matched exactly, case included, "
          "after trimming spaces); fix {}",
          key, label, s.arm_column, f.name, label_list(f), key));
    const int k = int(it - f.labels.begin());
    if (f.label_rows[k] == 0)
      throw DataError(
          fmt::format("{}: arm '{}' ({}) has no rows (empty arm): an effect needs units in both arms; choose arms "
                      "that have rows: {}",
                      f.name, label, key, label_list(f)));
    return k;
  };
  Arms a;
  a.control = find(s.control, "abtest.control");
  if (s.treatments.empty()) {
    for (int k : present)
      if (k != a.control) s.treatments.push_back(f.labels[k]);
  }
  for (const auto& t : s.treatments) {
    const int k = find(t, "abtest.treatments");
    if (k == a.control)
      throw ConfigError(
          fmt::format("abtest.treatments: '{}' is the control arm (abtest.control); list the other arms", t));
    if (std::find(a.treatments.begin(), a.treatments.end(), k) == a.treatments.end()) a.treatments.push_back(k);
  }
  return a;
}

// ---- CSV input ----

struct FeatureColumn {
  std::string name;
  int col = -1;
  bool categorical = false;
  std::set<std::string> levels;  // distinct values while there are at most kMaxLevels
  bool many = false;             // more than kMaxLevels distinct values
  std::string first_text;        // the first value that is not a number, and its line
  int64_t first_text_line = 0;
  int first = 0;                                 // index of its first column in Frame::feature_names
  const std::vector<std::string>* lv = nullptr;  // its levels (Frame::one_hot), sorted
};

Frame read_csv(Settings& s, Arms& arms) {
  Frame f;
  f.name = s.data;
  data::CsvOptions copt;
  copt.delimiter = s.delimiter;
  data::CsvRecord rec;

  // Pass 1: arm labels and their counts, and which features are text (one-hot encoded) with their levels.
  std::vector<FeatureColumn> feats;
  int arm_col = -1;
  std::map<std::string, int64_t, std::less<>> counts;
  {
    data::CsvReader r(s.data, copt);
    arm_col = r.require_column(s.arm_column, "abtest.arm_column");
    for (const auto& m : s.metrics) r.require_column(m, "abtest.metrics");
    if (!s.denominator.empty()) r.require_column(s.denominator, "abtest.denominator");
    if (!s.pre.empty()) r.require_column(s.pre, "abtest.pre");
    for (const auto& name : s.features) {
      FeatureColumn fc;
      fc.name = name;
      fc.col = r.require_column(name, "abtest.features");
      fc.categorical = contains(s.categorical, name);
      feats.push_back(std::move(fc));
    }
    double v;
    while (r.next(rec)) {
      const std::string_view label = data::trim_field(rec.fields[arm_col]);
      const auto it = counts.find(label);
      if (it == counts.end())
        counts.emplace(std::string(label), 1);
      else
        ++it->second;
      for (auto& fc : feats) {
        const std::string_view t = data::trim_field(rec.fields[fc.col]);
        if (!fc.categorical && !t.empty() && !parse_double(t, v)) {
          fc.categorical = true;
          fc.first_text = std::string(t);
          fc.first_text_line = rec.line;
        }
        if (!fc.many) {
          fc.levels.emplace(t);
          if (fc.levels.size() > kMaxLevels) fc.many = true, fc.levels.clear();
        }
      }
      ++f.rows_read;
    }
  }
  for (const auto& [label, n] : counts) f.labels.push_back(label), f.label_rows.push_back(n);
  arms = resolve_arms(s, f);
  for (auto& fc : feats) {
    fc.first = int(f.feature_names.size());
    if (!fc.categorical) {
      f.feature_names.push_back(fc.name);
      continue;
    }
    if (fc.many)
      throw DataError(fmt::format(
          "{}: feature column '{}' is one-hot encoded ({}) but has more than {} distinct values, too many; fix the "
          "value if it is a typo in a numeric column, map the column to fewer levels upstream, or leave it out of "
          "abtest.features",
          f.name, fc.name,
          fc.first_text.empty()
              ? std::string("abtest.categorical lists it")
              : fmt::format("it holds text: {} at line {}", data::show_field(fc.first_text), fc.first_text_line),
          kMaxLevels));
    auto& lv = f.one_hot[fc.name];
    for (const auto& l : fc.levels) lv.push_back(l), f.feature_names.push_back(fc.name + "=" + l);
    fc.lv = &lv;
  }

  // Pass 2: the values of the analysed arms' rows.
  std::vector<char> keep(f.labels.size(), 0);
  keep[arms.control] = 1;
  for (int k : arms.treatments) keep[k] = 1;
  std::map<std::string, int, std::less<>> code;
  for (size_t k = 0; k < f.labels.size(); ++k) code[f.labels[k]] = int(k);
  data::CsvReader r(s.data, copt);
  std::vector<int> metric_col;
  for (const auto& m : s.metrics) metric_col.push_back(r.require_column(m, "abtest.metrics"));
  const int den_col = s.denominator.empty() ? -1 : r.require_column(s.denominator, "abtest.denominator");
  const int pre_col = s.pre.empty() ? -1 : r.require_column(s.pre, "abtest.pre");
  f.metric.resize(s.metrics.size());
  const size_t nf = f.feature_names.size();
  auto number = [&](const data::CsvRecord& rc, int col, const char* key) {
    const std::string_view t = data::trim_field(rc.fields[col]);
    auto where = [&] {
      return fmt::format("{}:{} (row {}), column '{}' ({})", f.name, rc.line, rc.row, r.header()[col], key);
    };
    double v = 0;
    if (t.empty())
      throw DataError(
          fmt::format("{}: the value is empty; every unit needs a value: fill it in upstream (e.g. 0 "
                      "for no spend) or drop the row",
                      where()));
    if (!parse_double(t, v))
      throw DataError(
          fmt::format("{}: {} is not a number; fix the value (metrics, the denominator, the pre-period "
                      "covariate and numeric features are plain numbers)",
                      where(), data::show_field(t)));
    if (!std::isfinite(v))
      throw DataError(
          fmt::format("{}: {} is not a finite number (NaN and inf are not allowed); impute the value or "
                      "drop the row upstream",
                      where(), data::show_field(t)));
    return v;
  };
  while (r.next(rec)) {
    const auto it = code.find(data::trim_field(rec.fields[arm_col]));
    if (it == code.end())
      throw DataError(
          fmt::format("{}:{}: arm label {} was not there when the file was first read; the file changed "
                      "while dfcl read it: run again",
                      f.name, rec.line, data::show_field(rec.fields[arm_col])));
    if (!keep[it->second]) continue;
    f.arm.push_back(it->second);
    for (size_t m = 0; m < metric_col.size(); ++m) f.metric[m].push_back(number(rec, metric_col[m], "abtest.metrics"));
    if (den_col >= 0) {
      const double d = number(rec, den_col, "abtest.denominator");
      if (d <= 0)
        throw DataError(fmt::format(
            "{}:{} (row {}), column '{}' (abtest.denominator): the denominator is {}; a ratio metric needs a positive "
            "denominator for every unit: leave out the units without any (e.g. no visits) upstream, or analyse the "
            "numerator as a count metric (no abtest.denominator)",
            f.name, rec.line, rec.row, s.denominator, d));
      f.denominator.push_back(d);
    }
    if (pre_col >= 0) f.pre.push_back(number(rec, pre_col, "abtest.pre"));
    const size_t base = f.x.size();
    f.x.resize(base + nf, 0.0);
    for (const auto& fc : feats) {
      if (!fc.categorical) {
        f.x[base + fc.first] = number(rec, fc.col, "abtest.features");
        continue;
      }
      const auto& lv = *fc.lv;
      const std::string_view v = data::trim_field(rec.fields[fc.col]);
      const auto l = std::lower_bound(lv.begin(), lv.end(), v,
                                      [](const std::string& a, std::string_view b) { return std::string_view(a) < b; });
      if (l == lv.end() || *l != v)
        throw DataError(
            fmt::format("{}:{}: column '{}' value {} was not there when the file was first read; the file "
                        "changed while dfcl read it: run again",
                        f.name, rec.line, fc.name, data::show_field(rec.fields[fc.col])));
      f.x[base + fc.first + (l - lv.begin())] = 1.0;
    }
  }
  return f;
}

// ---- dfcl dataset input: the RCT rows; arms by name, metrics revenue/cost, features by name ----

Frame read_dataset(Settings& s, Arms& arms) {
  Frame f;
  f.name = s.data;
  auto src = data::open_source(s.data);
  const data::Meta& meta = src->meta();
  for (const auto& m : s.metrics)
    if (m != "revenue" && m != "cost")
      throw ConfigError(
          fmt::format("abtest.metrics: '{}' is not a metric of the dfcl dataset {}; its metrics are "
                      "revenue and cost",
                      m, s.data));
  if (!s.denominator.empty() && s.denominator != "revenue" && s.denominator != "cost")
    throw ConfigError(fmt::format(
        "abtest.denominator: '{}' is not a column of the dfcl dataset {}; use revenue or cost", s.denominator, s.data));
  auto feature_index = [&](const std::string& name, const char* key) {
    const auto it = std::find(meta.feature_names.begin(), meta.feature_names.end(), name);
    if (it == meta.feature_names.end())
      throw ConfigError(fmt::format("{}: '{}' is not a feature of {}; its features are: {} (or features: [all])", key,
                                    name, s.data, fmt::join(meta.feature_names, ", ")));
    return int(it - meta.feature_names.begin());
  };
  const int pre_idx = s.pre.empty() ? -1 : feature_index(s.pre, "abtest.pre");
  std::vector<int> feat_idx;
  if (s.features.size() == 1 && s.features[0] == "all" && !contains(meta.feature_names, "all")) {
    for (int k = 0; k < meta.num_features; ++k) feat_idx.push_back(k);
  } else {
    for (const auto& name : s.features) feat_idx.push_back(feature_index(name, "abtest.features"));
  }
  for (int k : feat_idx) f.feature_names.push_back(meta.feature_names[k]);
  f.labels = meta.arm_names;
  f.label_rows.assign(f.labels.size(), 0);

  // One pass into memory (RCT rows only: observational rows are not a randomised experiment), then the arms.
  data::Table t;
  std::vector<int32_t> arm_all;
  std::vector<std::vector<double>> metric_all(s.metrics.size());
  std::vector<double> den_all, pre_all, x_all;
  const int64_t step = std::max<int64_t>(src->chunk_rows(), 1);
  auto value = [&](const std::string& col, int64_t i) { return double(col == "revenue" ? t.revenue[i] : t.cost[i]); };
  for (int64_t b = 0; b < meta.num_rows; b += step) {
    src->read(b, std::min(step, meta.num_rows - b), t);
    for (int64_t i = 0; i < t.rows; ++i) {
      if (t.source[i] != uint8_t(data::Source::kRct)) continue;
      arm_all.push_back(t.treatment[i]);
      ++f.label_rows[t.treatment[i]];
      for (size_t m = 0; m < s.metrics.size(); ++m) metric_all[m].push_back(value(s.metrics[m], i));
      if (!s.denominator.empty()) {
        const double d = value(s.denominator, i);
        if (d <= 0)
          throw DataError(
              fmt::format("{}: row {}, field '{}' (abtest.denominator): the denominator is {}; a ratio "
                          "metric needs a positive denominator for every unit: analyse the numerator as a "
                          "count metric (no abtest.denominator)",
                          s.data, b + i, s.denominator, d));
        den_all.push_back(d);
      }
      if (pre_idx >= 0) pre_all.push_back(t.features[i * t.num_features + pre_idx]);
      for (int k : feat_idx) x_all.push_back(t.features[i * t.num_features + k]);
    }
  }
  f.rows_read = int64_t(arm_all.size());
  arms = resolve_arms(s, f);
  std::vector<char> keep(f.labels.size(), 0);
  keep[arms.control] = 1;
  for (int k : arms.treatments) keep[k] = 1;
  f.metric.resize(s.metrics.size());
  const size_t nf = feat_idx.size();
  for (size_t i = 0; i < arm_all.size(); ++i) {
    if (!keep[arm_all[i]]) continue;
    f.arm.push_back(arm_all[i]);
    for (size_t m = 0; m < s.metrics.size(); ++m) f.metric[m].push_back(metric_all[m][i]);
    if (!den_all.empty()) f.denominator.push_back(den_all[i]);
    if (!pre_all.empty()) f.pre.push_back(pre_all[i]);
    f.x.insert(f.x.end(), x_all.begin() + i * nf, x_all.begin() + (i + 1) * nf);
  }
  return f;
}

// ---- one comparison ----

struct Comparison {
  std::string treatment, control, metric;  // metric: the column, or "numerator / denominator"
  std::string numerator, denominator;
  bool ratio = false;
  int64_t n_treatment = 0, n_control = 0;
  double mean_treatment = 0, mean_control = 0;  // arm means (ratio metrics: sum of numerators / sum of denominators)
  std::vector<abtest::Estimate> estimates;
  double seconds = 0;
};

// This rank's share of one comparison's units (ranks take contiguous slices), plus the arm means over all units.
abtest::Units make_units(const Frame& f, const Settings& s, const Arms& arms, int treatment, size_t metric,
                         const dist::Communicator& comm, Comparison& c) {
  std::vector<int64_t> rows;
  double sum[2] = {0, 0}, den[2] = {0, 0};
  for (int64_t i = 0; i < f.rows(); ++i) {
    const int a = f.arm[i];
    if (a != arms.control && a != treatment) continue;
    rows.push_back(i);
    const int t = a == treatment;
    sum[t] += f.metric[metric][i];
    den[t] += f.denominator.empty() ? 1.0 : f.denominator[i];
    (t ? c.n_treatment : c.n_control) += 1;
  }
  c.mean_treatment = sum[1] / den[1];
  c.mean_control = sum[0] / den[0];

  const int64_t n = int64_t(rows.size());
  const int64_t b = n * comm.rank() / comm.size(), e = n * (comm.rank() + 1) / comm.size();
  abtest::Units u;
  u.offset = b;
  u.num_features = int(f.feature_names.size());
  u.where = fmt::format("{}, {} vs {}, metric '{}' (rows counted within the comparison)", f.name, c.treatment,
                        c.control, c.metric);
  u.y_name = s.metrics[metric], u.t_name = s.arm_column;
  if (!s.denominator.empty()) u.d_name = s.denominator;
  if (!s.pre.empty()) u.pre_name = s.pre;
  u.feature_names = f.feature_names;
  const size_t nf = f.feature_names.size();
  for (int64_t k = b; k < e; ++k) {
    const int64_t i = rows[k];
    u.y.push_back(f.metric[metric][i]);
    u.t.push_back(f.arm[i] == treatment ? 1 : 0);
    if (!f.denominator.empty()) u.d.push_back(f.denominator[i]);
    if (!s.pre.empty()) u.pre.push_back(f.pre[i]);
    if (nf > 0) u.x.insert(u.x.end(), f.x.begin() + i * nf, f.x.begin() + (i + 1) * nf);
  }
  return u;
}

// ---- output ----

std::string ci_header(double alpha) { return fmt::format("{:g}% CI", 100 * (1 - alpha)); }

// The method as shown: upper case, with '*' when it has warnings (printed below the table).
std::string label(const abtest::Estimate& e) { return upper(e.method) + (e.warnings.empty() ? "" : "*"); }

std::string table(const Comparison& c, double alpha) {
  std::string o =
      fmt::format("{} vs {}, {}{}: n = {} vs {}, means {:.6g} vs {:.6g}\n", c.treatment, c.control, c.metric,
                  c.ratio ? " (ratio)" : "", c.n_treatment, c.n_control, c.mean_treatment, c.mean_control);
  o += fmt::format("{:<8} {:>12} {:>11} {:>27} {:>10} {:>9}\n", "method", "effect", "SE", ci_header(alpha), "p-value",
                   "var. red.");
  for (const auto& e : c.estimates)
    o += fmt::format("{:<8} {:>12.6g} {:>11.5g} {:>27} {:>10.3g} {:>9}\n", label(e), e.effect, e.se,
                     fmt::format("[{:.6g}, {:.6g}]", e.ci_low, e.ci_high), e.p_value,
                     std::isfinite(e.variance_reduction) ? fmt::format("{:.1f}%", 100 * e.variance_reduction) : "-");
  for (const auto& e : c.estimates)
    for (const auto& w : e.warnings) o += fmt::format("* {}: {}\n", upper(e.method), w);
  return o;
}

std::string escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '&')
      o += "&amp;";
    else if (ch == '<')
      o += "&lt;";
    else if (ch == '>')
      o += "&gt;";
    else if (ch == '"')
      o += "&quot;";
    else
      o += ch;
  }
  return o;
}

// CI bars per estimator: one panel per comparison, each with its own effect axis and a dashed line at zero.
std::string forest_svg(const std::vector<Comparison>& cs, double alpha) {
  static const char* colors[] = {"#555555", "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b"};
  const double W = 760, left = 96, right = 28, row_h = 22, title_h = 30, axis_h = 34, gap = 14;
  const double pw = W - left - right;
  double H = 12;
  for (const auto& c : cs) H += title_h + row_h * c.estimates.size() + axis_h + gap;
  std::string o = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      W, H);
  double top = 12;
  for (const auto& c : cs) {
    double lo = 0, hi = 0;  // zero is always on the axis
    for (const auto& e : c.estimates)
      for (double v : {e.ci_low, e.ci_high, e.effect})
        if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    if (!(hi > lo)) hi = lo + 1;
    if (std::abs(lo) < 1e-9 * (hi - lo)) lo = 0;  // rounding-level values (a degenerate fit) do not move the axis
    if (std::abs(hi) < 1e-9 * (hi - lo)) hi = 0;
    const double raw = (hi - lo) / 6, p = std::pow(10.0, std::floor(std::log10(raw))), fr = raw / p;
    const double step = (fr < 1.5 ? 1 : fr < 3 ? 2 : fr < 7 ? 5 : 10) * p;
    lo = std::floor(lo / step) * step, hi = std::ceil(hi / step) * step;
    auto X = [&](double v) { return left + (v - lo) / (hi - lo) * pw; };
    const double ph = row_h * c.estimates.size(), y0 = top + title_h;
    o += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"14\">{} vs {}: {}{} ({}, n = {} vs {})</text>\n", left,
                     top + 18, escape(c.treatment), escape(c.control), escape(c.metric), c.ratio ? " (ratio)" : "",
                     escape(ci_header(alpha)), c.n_treatment, c.n_control);
    const int digits = std::max(0, -int(std::floor(std::log10(step) + 1e-9)));
    for (double v = lo; v <= hi + step * 1e-9; v += step) {
      o += fmt::format("<line x1=\"{0:.2f}\" y1=\"{1:.2f}\" x2=\"{0:.2f}\" y2=\"{2:.2f}\" stroke=\"#e5e5e5\"/>\n", X(v),
                       y0, y0 + ph);
      o += fmt::format("<text x=\"{:.2f}\" y=\"{:.2f}\" text-anchor=\"middle\">{:.{}f}</text>\n", X(v), y0 + ph + 16,
                       std::abs(v) < step * 1e-9 ? 0.0 : v, digits);
    }
    o += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", left, y0,
                     pw, ph);
    o += fmt::format(
        "<line x1=\"{0:.2f}\" y1=\"{1:.2f}\" x2=\"{0:.2f}\" y2=\"{2:.2f}\" stroke=\"#888\" stroke-dasharray=\"4 "
        "3\"/>\n",
        X(0), y0, y0 + ph);
    bool warned = false;
    for (const auto& e : c.estimates) warned = warned || !e.warnings.empty();
    o += fmt::format("<text x=\"{}\" y=\"{:.2f}\" text-anchor=\"middle\" fill=\"#555\">effect on {}{}</text>\n",
                     left + pw / 2, y0 + ph + 30, escape(c.metric),
                     warned ? " (* has warnings: see the table or the JSON)" : "");
    for (size_t k = 0; k < c.estimates.size(); ++k) {
      const auto& e = c.estimates[k];
      const double y = y0 + row_h * (k + 0.5);
      const char* color = colors[k % (sizeof(colors) / sizeof(colors[0]))];
      o +=
          fmt::format("<text x=\"{}\" y=\"{:.2f}\" text-anchor=\"end\">{}</text>\n", left - 8, y + 4, escape(label(e)));
      if (!std::isfinite(e.effect)) continue;
      o += fmt::format("<g><title>{}: {:.6g} [{:.6g}, {:.6g}], p = {:.3g}</title>\n", escape(upper(e.method)), e.effect,
                       e.ci_low, e.ci_high, e.p_value);
      if (std::isfinite(e.ci_low) && std::isfinite(e.ci_high)) {
        o += fmt::format(
            "<line x1=\"{:.2f}\" y1=\"{:.2f}\" x2=\"{:.2f}\" y2=\"{:.2f}\" stroke=\"{}\" "
            "stroke-width=\"2\"/>\n",
            X(e.ci_low), y, X(e.ci_high), y, color);
        for (double v : {e.ci_low, e.ci_high})
          o += fmt::format(
              "<line x1=\"{0:.2f}\" y1=\"{1:.2f}\" x2=\"{0:.2f}\" y2=\"{2:.2f}\" stroke=\"{3}\" "
              "stroke-width=\"2\"/>\n",
              X(v), y - 5, y + 5, color);
      }
      o += fmt::format("<circle cx=\"{:.2f}\" cy=\"{:.2f}\" r=\"4\" fill=\"{}\"/></g>\n", X(e.effect), y, color);
    }
    top += title_h + ph + axis_h + gap;
  }
  o += "</svg>\n";
  return o;
}

void write_plot(const std::string& path, const std::vector<Comparison>& cs, double alpha) {
  std::ofstream f(path);
  if (!f)
    throw IoError(
        fmt::format("cannot write the plot '{}' (abtest.plot / --plot): check the directory exists "
                    "and is writable",
                    path));
  f << forest_svg(cs, alpha);
  if (!f) throw IoError(fmt::format("writing the plot '{}' failed (disk full?)", path));
}

int run_abtest(AbtestOptions& o) {
  Config cfg = load_config(o.common);
  if (dumped(cfg, o.common)) return 0;
  apply_runtime(cfg);
  Settings s = read_settings(cfg);
  if (!o.plot.empty()) s.plot = o.plot;
  const abtest::Options options = abtest::Options::from(cfg);
  const dist::CommOptions comm_options = dist::CommOptions::from(cfg);
  cfg.check_all_used();  // config errors before any I/O
  auto comm = dist::make_communicator(comm_options, "cpu");

  const auto t0 = Clock::now();
  Arms arms;
  const Frame f = s.h5 ? read_dataset(s, arms) : read_csv(s, arms);
  std::vector<std::string> arm_rows;
  for (size_t k = 0; k < f.labels.size(); ++k) arm_rows.push_back(fmt::format("{} {}", f.labels[k], f.label_rows[k]));
  std::vector<std::string> one_hot;
  for (const auto& [col, lv] : f.one_hot) one_hot.push_back(fmt::format("{} ({} levels)", col, lv.size()));
  log::info("abtest: {} rows from {} in {:.2f}s; arms: {}; {} feature columns{}", f.rows_read, f.name,
            std::chrono::duration<double>(Clock::now() - t0).count(), fmt::join(arm_rows, ", "), f.feature_names.size(),
            one_hot.empty() ? "" : fmt::format(", one-hot: {}", fmt::join(one_hot, ", ")));

  std::vector<Comparison> cs;
  for (int tr : arms.treatments)
    for (size_t m = 0; m < s.metrics.size(); ++m) {
      Comparison c;
      c.treatment = f.labels[tr], c.control = f.labels[arms.control];
      c.metric = s.denominator.empty() ? s.metrics[m] : s.metrics[m] + " / " + s.denominator;
      c.ratio = !s.denominator.empty();
      c.numerator = s.metrics[m], c.denominator = s.denominator;
      const auto t1 = Clock::now();
      const abtest::Units units = make_units(f, s, arms, tr, m, *comm, c);
      c.estimates = abtest::analyse(units, options, *comm, s.methods);
      c.seconds = std::chrono::duration<double>(Clock::now() - t1).count();
      log::info("{}", table(c, options.alpha));
      cs.push_back(std::move(c));
    }
  if (!s.plot.empty() && log::rank() == 0) {
    write_plot(s.plot, cs, options.alpha);
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
    json j;
    j["treatment"] = c.treatment;
    j["control"] = c.control;
    j["metric"] = c.metric;
    j["ratio"] = c.ratio;
    if (c.ratio) j["numerator"] = c.numerator, j["denominator"] = c.denominator;
    j["n_treatment"] = c.n_treatment;
    j["n_control"] = c.n_control;
    j["mean_treatment"] = c.mean_treatment;
    j["mean_control"] = c.mean_control;
    j["seconds"] = c.seconds;
    j["estimates"] = json::array();
    for (const auto& e : c.estimates) {
      nlohmann::json ej = e.to_json();
      if (ej.contains("details") && ej["details"].contains("loglik_trace"))
        ej["details"].erase("loglik_trace");  // hundreds of numbers; its length and final value stay
      j["estimates"].push_back(ej);
      for (const auto& w : e.warnings)
        warnings.push_back(fmt::format("{} vs {}, {}, {}: {}", c.treatment, c.control, c.metric, e.method, w));
    }
    list.push_back(std::move(j));
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
