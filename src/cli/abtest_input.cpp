// \brief `dfcl abtest`'s input (abtest_input.h): the keys, the CSV and dataset readers, the arms, the units.
#include "cli/abtest_input.h"

#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join

#include <algorithm>     // for std::find, std::lower_bound, std::min, std::max
#include <cmath>         // for std::isfinite
#include <functional>    // for std::less
#include <set>           // for std::set
#include <string_view>   // for std::string_view
#include <system_error>  // for std::errc

#include "core/error.h"         // for ConfigError, DataError
#include "data/csv.h"           // for CsvReader, trim_field, show_field, parse_field
#include "data/source.h"        // for open_source
#include "dist/communicator.h"  // for Communicator

namespace dfcl::cli {
namespace {

// A text feature with more distinct values than this is an error, not thousands of one-hot columns.
constexpr size_t kMaxLevels = 100;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The whole (trimmed) field is a number (NaN and inf included: they parse).
bool parse_double(std::string_view s, double& out) { return data::parse_field(s, out) == std::errc(); }

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// The labels with their row counts, for messages (the first 20: a wrong arm_column can hold thousands).
std::string label_list(const UnitTable& f) {
  std::vector<std::string> v;
  for (size_t k = 0; k < f.labels.size() && k < 20; ++k)
    v.push_back(fmt::format("'{}' ({} rows)", f.labels[k], f.label_rows[k]));
  if (f.labels.size() > 20) v.push_back(fmt::format("and {} more", f.labels.size() - 20));
  return fmt::format("{}", fmt::join(v, ", "));
}

// Control and treatments from the labels the data holds: unknown labels, empty arms and a single arm are errors.
Arms resolve_arms(AbtestSettings& s, const UnitTable& f) {
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
  int first = 0;                                 // index of its first column in UnitTable::feature_names
  const std::vector<std::string>* lv = nullptr;  // its levels (UnitTable::one_hot), sorted
};

UnitTable read_csv(AbtestSettings& s, Arms& arms) {
  UnitTable f;
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

UnitTable read_dataset(AbtestSettings& s, Arms& arms) {
  UnitTable f;
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

}  // namespace

AbtestSettings AbtestSettings::from(const Config& cfg) {
  AbtestSettings s;
  s.data = cfg.get<std::string>("abtest.data", "");
  if (s.data.empty() && !cfg.dump_mode())
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

UnitTable read_unit_table(AbtestSettings& s, Arms& arms) { return s.h5 ? read_dataset(s, arms) : read_csv(s, arms); }

abtest::Units comparison_units(const UnitTable& f, const AbtestSettings& s, const Arms& arms, int treatment,
                               size_t metric, const std::string& label, const dist::Communicator& comm,
                               ArmSummary& c) {
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
  u.where = fmt::format("{}, {} vs {}, metric '{}' (rows counted within the comparison)", f.name,
                        f.labels[treatment], f.labels[arms.control], label);
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

}  // namespace dfcl::cli
