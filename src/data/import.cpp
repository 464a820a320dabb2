// \brief CSV import: config + presets -> two streaming passes (check, then write) -> HDF5 (see import.h).
#include "data/import.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>     // for std::sort, std::lower_bound
#include <cfloat>        // for FLT_MAX
#include <chrono>        // for steady_clock
#include <cmath>         // for std::isfinite, std::abs
#include <optional>      // for std::optional
#include <set>           // for std::set
#include <string_view>   // for std::string_view
#include <utility>       // for std::pair

#include "core/error.h"     // for ConfigError, DataError
#include "core/progress.h"  // for Progress
#include "data/csv.h"       // for CsvReader, CsvRecord, trim_field, show_field, parse_field

namespace dfcl::data {
namespace {

// ---- the import plan: what the config asks for, presets applied --------------------------------

struct FeatureSpec {
  std::string column;
  bool categorical = false;
  bool discover = false;                           // categories found in pass 1
  std::vector<std::string> categories;             // one-hot order
  std::vector<std::pair<std::string, int>> index;  // sorted (value, position in categories)
  std::set<std::string, std::less<>> seen;         // pass 1 discovery
  int col = -1;                                    // CSV column
  int offset = 0;                                  // first output feature column
  std::string key;                                 // "import.features.3" for messages
};

struct Plan {
  std::string input, output, preset;
  char delimiter = ',';
  bool skip_bad = false;
  std::string treatment_column;
  std::vector<std::string> arms;
  std::string revenue_column, cost_column, propensity_column;
  std::string treatment_key, revenue_key, cost_key;  // names for messages, "(from preset 'x')" when the preset set them
  std::vector<double> cost_per_arm;
  std::vector<FeatureSpec> features;
  Source source = Source::kRct;
  bool empirical_propensity = true;
  std::vector<double> rct_propensity;
};

struct Preset {
  std::string treatment_column, revenue_column, cost_column;
  std::vector<std::string> arms;
  std::vector<double> cost_per_arm;
  std::vector<FeatureSpec> features;
};

FeatureSpec feature(const std::string& column, bool categorical) {
  FeatureSpec f;
  f.column = column;
  f.categorical = categorical;
  return f;
}

Preset make_preset(const std::string& name, const Config& cfg) {
  Preset p;
  if (name == "hillstrom") {
    p.treatment_column = "segment";
    p.arms = {"No E-Mail", "Mens E-Mail", "Womens E-Mail"};
    p.revenue_column = "spend";
    p.cost_per_arm = {0.0, 0.1, 0.1};
    for (const char* c : {"recency", "history", "mens", "womens", "newbie"}) p.features.push_back(feature(c, false));
    for (const char* c : {"history_segment", "zip_code", "channel"}) p.features.push_back(feature(c, true));
  } else if (name == "criteo") {
    p.treatment_column = "treatment";
    p.arms = {"0", "1"};
    p.revenue_column = "conversion";
    p.cost_column = "visit";
    for (int i = 0; i < 12; ++i) p.features.push_back(feature(fmt::format("f{}", i), false));
  } else if (!name.empty()) {
    throw ConfigError(fmt::format("config key 'import.preset' ({}) = '{}' is not a known preset; use hillstrom or criteo, "
                                  "or remove it and list treatment, revenue, cost and features yourself",
                                  cfg.origin("preset"), name));
  }
  return p;
}

std::string quoted_list(const std::vector<std::string>& v, size_t max = 20) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < max; ++i) s += (i ? ", '" : "'") + v[i] + "'";
  if (v.size() > max) s += fmt::format(", ... ({} in all)", v.size());
  return s;
}

std::string required_message(const std::string& key, const std::string& example) {
  return fmt::format("config key 'import.{}' is required (no preset supplies it); add it to the import section, e.g. {}",
                     key, example);
}

Plan read_plan(const Config& cfg) {
  Plan p;
  p.input = cfg.require<std::string>("input");
  p.output = cfg.require<std::string>("output");
  p.preset = cfg.get<std::string>("preset", "");
  Preset d = make_preset(p.preset, cfg);

  std::string delim = cfg.get<std::string>("delimiter", ",");
  if (delim == "\\t" || delim == "tab") delim = "\t";
  if (delim.size() != 1 || delim[0] == '"' || delim[0] == '\n' || delim[0] == '\r')
    throw ConfigError(fmt::format("config key 'import.delimiter' ({}) = '{}' must be one character other than '\"' "
                                  "(e.g. \",\", \";\", \"\\t\")", cfg.origin("delimiter"), delim));
  p.delimiter = delim[0];

  std::string bad = cfg.get<std::string>("on_bad_row", "error");
  if (bad != "error" && bad != "skip")
    throw ConfigError(fmt::format("config key 'import.on_bad_row' ({}) = '{}' must be 'error' (stop at the first bad row) "
                                  "or 'skip' (leave bad rows out and count them)", cfg.origin("on_bad_row"), bad));
  p.skip_bad = bad == "skip";

  auto key_name = [&](const std::string& key) {
    return "import." + key + (cfg.has(key) ? "" : fmt::format(" (from preset '{}')", p.preset));
  };
  p.treatment_column = cfg.get<std::string>("treatment.column", d.treatment_column);
  p.treatment_key = key_name("treatment.column");
  p.revenue_key = key_name("revenue.column");
  p.cost_key = key_name("cost.column");
  if (p.treatment_column.empty()) throw ConfigError(required_message("treatment.column", "treatment: {column: arm}"));
  p.arms = cfg.get<std::vector<std::string>>("treatment.arms", d.arms);
  if (p.arms.empty())
    throw ConfigError(required_message("treatment.arms", "treatment: {column: arm, arms: [control, email]} (arm 0 = control)"));
  if (p.arms.size() < 2)
    throw ConfigError(fmt::format("config key 'import.treatment.arms' ({}) lists {} arm; list the control arm first, then "
                                  "at least one treatment", cfg.origin("treatment.arms"), p.arms.size()));
  for (size_t i = 0; i < p.arms.size(); ++i)
    for (size_t j = i + 1; j < p.arms.size(); ++j)
      if (p.arms[i] == p.arms[j])
        throw ConfigError(fmt::format("config key 'import.treatment.arms' ({}) lists '{}' twice (arms {} and {}); "
                                      "each label must name one arm", cfg.origin("treatment.arms"), p.arms[i], i, j));
  const size_t M = p.arms.size();

  p.revenue_column = cfg.get<std::string>("revenue.column", d.revenue_column);
  if (p.revenue_column.empty()) throw ConfigError(required_message("revenue.column", "revenue: {column: spend}"));

  const bool has_col = cfg.has("cost.column"), has_per = cfg.has("cost.per_arm");
  std::string cost_col = cfg.get<std::string>("cost.column", "");
  std::vector<double> per_arm = cfg.get<std::vector<double>>("cost.per_arm", {});
  if (has_col && has_per)
    throw ConfigError(fmt::format("config keys 'import.cost.column' ({}) and 'import.cost.per_arm' ({}) are both set; "
                                  "use cost.column when the data has a cost column, cost.per_arm otherwise",
                                  cfg.origin("cost.column"), cfg.origin("cost.per_arm")));
  if (has_col) {
    p.cost_column = cost_col;
  } else if (has_per) {
    p.cost_per_arm = per_arm;
  } else {
    p.cost_column = d.cost_column;
    p.cost_per_arm = d.cost_per_arm;
  }
  if (p.cost_column.empty() && p.cost_per_arm.empty())
    throw ConfigError(required_message("cost", "cost: {column: cost} or cost: {per_arm: [0, 0.1]}"));
  if (p.cost_column.empty()) {
    if (p.cost_per_arm.size() != M)
      throw ConfigError(fmt::format("config key 'import.cost.per_arm' ({}) has {} values but import.treatment.arms lists {} "
                                    "arms; give one cost per arm, in arm order", cfg.origin("cost.per_arm"),
                                    p.cost_per_arm.size(), M));
    for (size_t j = 0; j < M; ++j)
      if (!(p.cost_per_arm[j] >= 0) || !std::isfinite(p.cost_per_arm[j]) || p.cost_per_arm[j] > FLT_MAX)
        throw ConfigError(fmt::format("config key 'import.cost.per_arm' ({}): the cost of arm {} ('{}') is {}; costs must be "
                                      "finite and >= 0", cfg.origin("cost.per_arm"), j, p.arms[j], p.cost_per_arm[j]));
  }

  if (cfg.has("features")) {
    auto items = cfg.items("features");
    if (items.empty())
      throw ConfigError(fmt::format("config key 'import.features' ({}) is an empty list; list at least one feature, "
                                    "e.g. [{{column: x1}}, {{column: region, type: categorical}}]", cfg.origin("features")));
    for (size_t i = 0; i < items.size(); ++i) {
      const Config& it = items[i];
      FeatureSpec f;
      f.column = it.require<std::string>("column");
      std::string type = it.get<std::string>("type", "numeric");
      if (type != "numeric" && type != "categorical")
        throw ConfigError(fmt::format("config key 'import.features.{}.type' ({}) = '{}' must be numeric or categorical",
                                      i, it.origin("type"), type));
      f.categorical = type == "categorical";
      if (it.has("categories")) {
        f.categories = it.get<std::vector<std::string>>("categories", {});
        if (!f.categorical)
          throw ConfigError(fmt::format("config key 'import.features.{}.categories' ({}) is set for numeric column '{}'; "
                                        "add 'type: categorical' or remove the categories", i, it.origin("categories"), f.column));
        if (f.categories.empty())
          throw ConfigError(fmt::format("config key 'import.features.{}.categories' ({}) is empty; list the values of '{}', or "
                                        "remove the key to find them in the data", i, it.origin("categories"), f.column));
      }
      p.features.push_back(std::move(f));
    }
  } else {
    cfg.items("features");  // marks the key as read
    p.features = d.features;
  }
  if (p.features.empty())
    throw ConfigError(required_message("features", "features: [{column: x1}, {column: region, type: categorical}]"));
  const bool from_preset = !cfg.has("features");
  for (size_t i = 0; i < p.features.size(); ++i) {
    FeatureSpec& f = p.features[i];
    f.key = from_preset ? fmt::format("preset '{}' (feature {})", p.preset, i) : fmt::format("import.features.{}", i);
    f.discover = f.categorical && f.categories.empty();
    for (size_t j = 0; j < i; ++j)
      if (p.features[j].column == f.column)
        throw ConfigError(fmt::format("config key 'import.features' lists column '{}' twice (features {} and {}); list it once",
                                      f.column, j, i));
  }

  std::string source = cfg.get<std::string>("source", "rct");
  if (source != "rct" && source != "observational")
    throw ConfigError(fmt::format("config key 'import.source' ({}) = '{}' must be rct (randomised trial) or observational",
                                  cfg.origin("source"), source));
  p.source = source == "rct" ? Source::kRct : Source::kObservational;
  p.propensity_column = cfg.get<std::string>("propensity_column", "");

  if (cfg.has("rct_propensity")) {
    if (p.source != Source::kRct)
      throw ConfigError(fmt::format("config key 'import.rct_propensity' ({}) applies to source: rct only; remove it, or give "
                                    "per-row propensities with import.propensity_column", cfg.origin("rct_propensity")));
    std::string mode;
    try {
      mode = cfg.get<std::string>("rct_propensity", "empirical");
    } catch (const ConfigError&) {
      try {
        p.rct_propensity = cfg.get<std::vector<double>>("rct_propensity", {});
      } catch (const ConfigError&) {
        throw ConfigError(fmt::format("config key 'import.rct_propensity' ({}) must be 'empirical' or a list of numbers, "
                                      "one per arm (e.g. [0.5, 0.5])", cfg.origin("rct_propensity")));
      }
      mode = "list";
    }
    if (mode != "empirical" && mode != "list")
      throw ConfigError(fmt::format("config key 'import.rct_propensity' ({}) = '{}' must be 'empirical' (arm shares in the data) "
                                    "or a list of numbers, one per arm", cfg.origin("rct_propensity"), mode));
    if (mode == "list") {
      p.empirical_propensity = false;
      if (p.rct_propensity.size() != M)
        throw ConfigError(fmt::format("config key 'import.rct_propensity' ({}) has {} values but there are {} arms; give one "
                                      "propensity per arm", cfg.origin("rct_propensity"), p.rct_propensity.size(), M));
      double sum = 0;
      for (size_t j = 0; j < M; ++j) {
        if (!(p.rct_propensity[j] > 0 && p.rct_propensity[j] <= 1))
          throw ConfigError(fmt::format("config key 'import.rct_propensity' ({}): arm {} ('{}') has {}; each must lie in (0, 1]",
                                        cfg.origin("rct_propensity"), j, p.arms[j], p.rct_propensity[j]));
        sum += p.rct_propensity[j];
      }
      if (std::abs(sum - 1) > 1e-6)
        throw ConfigError(fmt::format("config key 'import.rct_propensity' ({}) sums to {}; the arm propensities must sum to 1",
                                      cfg.origin("rct_propensity"), sum));
    }
  } else {
    cfg.get<std::string>("rct_propensity", "empirical");  // marks the key as read
  }

  // A column in two roles is a configuration mistake (an outcome used as a feature leaks the answer).
  std::vector<std::pair<std::string, std::string>> roles = {{"treatment.column", p.treatment_column},
                                                            {"revenue.column", p.revenue_column}};
  if (!p.cost_column.empty()) roles.push_back({"cost.column", p.cost_column});
  if (!p.propensity_column.empty()) roles.push_back({"propensity_column", p.propensity_column});
  for (size_t i = 0; i < p.features.size(); ++i)
    for (const auto& [key, col] : roles)
      if (p.features[i].column == col)
        throw ConfigError(fmt::format("column '{}' is both import.{} and feature import.features.{}; a feature must not be the "
                                      "treatment or an outcome, remove it from the features", col, key, i));
  if (p.treatment_column == p.revenue_column || p.treatment_column == p.cost_column)
    throw ConfigError(fmt::format("column '{}' is both import.treatment.column and an outcome column; fix the config",
                                  p.treatment_column));

  cfg.check_all_used();
  return p;
}

// ---- per-row parsing ------------------------------------------------------------------------

/// What is wrong with one value; `what` already holds the value and the fix.
struct Problem {
  std::string column, what;
};

constexpr const char* kSkipHint = "or set import.on_bad_row: skip";

// Parses a number that must be finite and fit a float. Returns false with `p` filled otherwise.
bool parse_number(const std::string& raw, const std::string& column, double& out, Problem& p) {
  std::string_view s = trim_field(raw);
  if (s.empty()) {
    p = {column, fmt::format("the value is empty; fill it in (impute missing values upstream), {}", kSkipHint)};
    return false;
  }
  const std::errc ec = parse_field(s, out);
  if (ec == std::errc::result_out_of_range || (ec == std::errc() && std::isfinite(out) && std::abs(out) > FLT_MAX)) {
    p = {column, fmt::format("{} is outside the float32 range (|x| <= 3.4e38); rescale the column, {}", show_field(s), kSkipHint)};
    return false;
  }
  if (ec != std::errc()) {
    p = {column, fmt::format("{} is not a number; fix the value {}", show_field(s), kSkipHint)};
    return false;
  }
  if (!std::isfinite(out)) {
    p = {column, fmt::format("{} is not a finite number (NaN and inf are not allowed); impute missing values upstream, {}",
                             show_field(s), kSkipHint)};
    return false;
  }
  return true;
}

int find_index(const std::vector<std::pair<std::string, int>>& index, std::string_view v) {
  auto it = std::lower_bound(index.begin(), index.end(), v,
                             [](const std::pair<std::string, int>& a, std::string_view b) { return std::string_view(a.first) < b; });
  return it != index.end() && it->first == v ? it->second : -1;
}

class RowParser {
 public:
  RowParser(Plan& plan, const CsvReader& csv) : plan_(plan) {
    treatment_ = csv.require_column(plan.treatment_column, plan.treatment_key);
    revenue_ = csv.require_column(plan.revenue_column, plan.revenue_key);
    if (!plan.cost_column.empty()) cost_ = csv.require_column(plan.cost_column, plan.cost_key);
    if (!plan.propensity_column.empty()) propensity_ = csv.require_column(plan.propensity_column, "import.propensity_column");
    for (auto& f : plan.features)
      f.col = csv.require_column(f.column, f.key.rfind("import.", 0) == 0 ? f.key + ".column" : f.key);
    for (size_t j = 0; j < plan.arms.size(); ++j) arm_index_.emplace_back(plan.arms[j], static_cast<int>(j));
    std::sort(arm_index_.begin(), arm_index_.end());
    arms_text_ = quoted_list(plan.arms);
  }

  /// Call after pass 1: fixes the one-hot layout (discovered categories sorted) and the feature names.
  std::vector<std::string> layout() {
    std::vector<std::string> names;
    for (auto& f : plan_.features) {
      f.offset = static_cast<int>(names.size());
      if (!f.categorical) {
        names.push_back(f.column);
        continue;
      }
      if (f.discover) f.categories.assign(f.seen.begin(), f.seen.end());
      build_index(f);
      for (const auto& c : f.categories) names.push_back(f.column + "=" + c);
    }
    return names;
  }
  void prepare_explicit_categories() {
    for (auto& f : plan_.features)
      if (f.categorical && !f.discover) build_index(f);
  }

  /// Text that becomes a label or a feature name must be UTF-8 (names are written as UTF-8 strings).
  static bool utf8(std::string_view s, const std::string& column, Problem& p) {
    const size_t at = invalid_utf8_at(s);
    if (at == std::string_view::npos) return true;
    p = {column, fmt::format("{} has the byte 0x{:02X} at position {}, which is not UTF-8 (a Latin-1 or Windows-1252 "
                             "file?); convert the file, e.g. iconv -f latin1 -t utf-8 in.csv > out.csv, {}",
                             show_field(s), static_cast<unsigned char>(s[at]), at, kSkipHint)};
    return false;
  }

  /// Parses one record. With `out` null (pass 1) it only checks and discovers categories.
  bool parse(const CsvRecord& rec, float* out, int32_t& arm, float& revenue, float& cost, float& propensity, Problem& p) {
    const auto& v = rec.fields;
    std::string_view label = trim_field(v[treatment_]);
    if (!utf8(label, plan_.treatment_column, p)) return false;
    arm = find_index(arm_index_, label);
    if (arm < 0) {
      p = {plan_.treatment_column,
           fmt::format("{} is not one of the arm labels in import.treatment.arms ({}); add it to the list (its position is the "
                       "arm id, arm 0 = control), {}", show_field(label), arms_text_, kSkipHint)};
      return false;
    }
    double x;
    for (auto& f : plan_.features) {
      if (!f.categorical) {
        if (!parse_number(v[f.col], f.column, x, p)) return false;
        if (out) out[f.offset] = static_cast<float>(x);
        continue;
      }
      std::string_view c = trim_field(v[f.col]);
      if (!utf8(c, f.column, p)) return false;
      if (f.discover && !out) {
        if (f.seen.find(c) == f.seen.end()) f.seen.emplace(c);
        continue;
      }
      int k = find_index(f.index, c);
      if (k < 0) {
        if (f.discover)
          throw DataError(fmt::format("{}:{} (row {}), column '{}': value {} was not in the file during the first pass; the file "
                                      "changed while importing, run the import again", rec_path_, rec.line, rec.row, f.column,
                                      show_field(c)));
        p = {f.column, fmt::format("{} is not one of the categories in {}.categories ({}); add it, remove 'categories' to find "
                                   "them in the data, {}", show_field(c), f.key, quoted_list(f.categories), kSkipHint)};
        return false;
      }
      if (out) {
        std::fill(out + f.offset, out + f.offset + f.categories.size(), 0.f);
        out[f.offset + k] = 1.f;
      }
    }
    if (!parse_number(v[revenue_], plan_.revenue_column, x, p)) return false;
    revenue = static_cast<float>(x);
    if (cost_ >= 0) {
      if (!parse_number(v[cost_], plan_.cost_column, x, p)) return false;
      if (x < 0) {
        p = {plan_.cost_column, fmt::format("{} is a negative cost; costs must be >= 0 (check the sign convention of the cost "
                                            "column), {}", show_field(trim_field(v[cost_])), kSkipHint)};
        return false;
      }
      cost = static_cast<float>(x);
    } else {
      cost = static_cast<float>(plan_.cost_per_arm[arm]);
    }
    if (propensity_ >= 0) {
      if (!parse_number(v[propensity_], plan_.propensity_column, x, p)) return false;
      if (!(x > 0 && x <= 1) || !(static_cast<float>(x) > 0)) {
        p = {plan_.propensity_column, fmt::format("{} is not a propensity in (0, 1]; fix the logging-policy column (clip tiny "
                                                  "values), {}", show_field(trim_field(v[propensity_])), kSkipHint)};
        return false;
      }
      propensity = static_cast<float>(x);
    }
    return true;
  }

  void set_path(const std::string& path) { rec_path_ = path; }

 private:
  static void build_index(FeatureSpec& f) {
    f.index.clear();
    for (size_t k = 0; k < f.categories.size(); ++k) f.index.emplace_back(f.categories[k], static_cast<int>(k));
    std::sort(f.index.begin(), f.index.end());
    for (size_t k = 1; k < f.index.size(); ++k)
      if (f.index[k].first == f.index[k - 1].first)
        throw ConfigError(fmt::format("config key '{}.categories' lists '{}' twice; list each category once", f.key,
                                      f.index[k].first));
  }

  Plan& plan_;
  int treatment_ = -1, revenue_ = -1, cost_ = -1, propensity_ = -1;
  std::vector<std::pair<std::string, int>> arm_index_;
  std::string arms_text_, rec_path_;
};

std::string basename(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

constexpr int64_t kProgressStep = 8192;  // rows between progress updates

}  // namespace

void check_import_config(const Config& cfg) { read_plan(cfg); }

ImportSummary import_csv(const Config& cfg, const WriteOptions& out_options, bool show_progress) {
  const auto t0 = std::chrono::steady_clock::now();
  Plan plan = read_plan(cfg);
  ImportSummary s;
  s.input = plan.input;
  s.output = plan.output;
  s.preset = plan.preset;
  s.source = plan.source;
  s.arm_names = plan.arms;
  const int M = static_cast<int>(plan.arms.size());

  CsvOptions copt;
  copt.delimiter = plan.delimiter;
  copt.check_field_count = false;  // handled here, so that on_bad_row: skip covers it

  // Reports (or, with on_bad_row: skip, counts) one bad row.
  auto bad_row = [&](const std::string& message) {
    if (!plan.skip_bad) throw DataError(message);
    ++s.rows_skipped;
    if (s.skip_reasons.size() < kMaxSkipReasons) s.skip_reasons.push_back(message);
  };
  auto row_message = [&](const CsvRecord& rec, const Problem& p) {
    return fmt::format("{}:{} (row {}), column '{}': {}", plan.input, rec.line, rec.row, p.column, p.what);
  };

  // ---- pass 1: check every row, count arms, find categories ----
  std::vector<int64_t> arm_rows(M, 0);
  int64_t good_rows = 0, first_line = 0, last_line = 0;
  {
    CsvReader csv(plan.input, copt);
    RowParser parser(plan, csv);
    parser.set_path(plan.input);
    parser.prepare_explicit_categories();
    std::optional<Progress> bar;
    if (show_progress) bar.emplace(fmt::format("import: checking {}", basename(plan.input)), csv.file_bytes(), "bytes");
    CsvRecord rec;
    int32_t arm;
    float revenue, cost, propensity;
    Problem p;
    int64_t last_bytes = 0;
    while (csv.next(rec)) {
      ++s.rows_read;
      if (first_line == 0) first_line = rec.line;
      last_line = rec.line;
      if (rec.fields.size() != csv.width()) {
        bad_row(csv.field_count_message(rec) + ", " + kSkipHint);
      } else if (!parser.parse(rec, nullptr, arm, revenue, cost, propensity, p)) {
        bad_row(row_message(rec, p));
      } else {
        ++arm_rows[arm];
        ++good_rows;
      }
      if (bar && s.rows_read % kProgressStep == 0) {
        bar->advance(csv.bytes_read() - last_bytes);
        last_bytes = csv.bytes_read();
      }
    }
    if (bar) bar->advance(csv.bytes_read() - last_bytes);
  }
  if (good_rows == 0)
    throw DataError(s.rows_read == 0
                        ? fmt::format("{}: the file has a header but no data rows; nothing to import", plan.input)
                        : fmt::format("{}: all {} data rows are bad (first: {}); nothing to import", plan.input, s.rows_read,
                                      s.skip_reasons.empty() ? "?" : s.skip_reasons.front()));
  if (plan.source == Source::kRct)
    for (int j = 0; j < M; ++j)
      if (arm_rows[j] == 0)
        throw DataError(fmt::format("{}: column '{}': RCT arm {} ('{}') has no rows among the {} good rows (lines {}..{}); every "
                                    "arm of a randomised trial needs rows: check import.treatment.arms against the labels in "
                                    "the data, or remove the arm", plan.input, plan.treatment_column, j, plan.arms[j],
                                    good_rows, first_line, last_line));

  // ---- dataset description ----
  Meta meta;
  meta.num_arms = M;
  meta.arm_names = plan.arms;
  meta.has_propensity = !plan.propensity_column.empty();
  meta.origin = fmt::format("import {} preset={}", basename(plan.input), plan.preset.empty() ? "none" : plan.preset);
  if (plan.source == Source::kRct) {
    if (plan.empirical_propensity) {
      for (int j = 0; j < M; ++j) meta.rct_propensity.push_back(double(arm_rows[j]) / double(good_rows));
    } else {
      meta.rct_propensity = plan.rct_propensity;
    }
  }
  s.origin = meta.origin;
  s.rct_propensity = meta.rct_propensity;

  // ---- pass 2: parse again and write blocks of chunk_rows rows ----
  CsvReader csv(plan.input, copt);
  RowParser parser(plan, csv);
  parser.set_path(plan.input);
  meta.feature_names = parser.layout();
  meta.num_features = static_cast<int>(meta.feature_names.size());
  s.feature_names = meta.feature_names;
  const int F = meta.num_features;

  const int64_t R = std::max<int64_t>(1, out_options.chunk_rows);
  H5Writer writer(plan.output, meta, out_options);
  Table block;
  block.reset(meta, R);
  std::vector<double> rev_sum(M, 0.0), cost_sum(M, 0.0);
  s.arm_rows.assign(M, 0);
  std::optional<Progress> bar;
  if (show_progress) bar.emplace(fmt::format("import: writing {}", basename(plan.output)), s.rows_read, "rows");
  const uint8_t source = static_cast<uint8_t>(plan.source);
  int64_t k = 0, seen = 0;
  CsvRecord rec;
  Problem p;
  float dummy_propensity = 0;
  while (csv.next(rec)) {
    ++seen;
    if (bar && seen % kProgressStep == 0) bar->advance(kProgressStep);
    if (rec.fields.size() != csv.width()) continue;  // counted in pass 1
    int32_t arm;
    float* prop = meta.has_propensity ? &block.propensity[k] : &dummy_propensity;
    if (!parser.parse(rec, &block.features[k * F], arm, block.revenue[k], block.cost[k], *prop, p)) continue;
    block.treatment[k] = arm;
    block.source[k] = source;
    block.row_id[k] = s.rows_written + k;
    ++s.arm_rows[arm];
    rev_sum[arm] += block.revenue[k];
    cost_sum[arm] += block.cost[k];
    if (++k == R) {
      writer.append(block);
      s.rows_written += k;
      k = 0;
    }
  }
  if (k > 0) {
    block.resize(k);
    writer.append(block);
    s.rows_written += k;
  }
  if (bar) bar->advance(seen % kProgressStep);
  if (seen != s.rows_read || s.rows_written != good_rows)
    throw DataError(fmt::format("{}: the file changed while importing ({} rows / {} good in the first pass, {} / {} in the "
                                "second); run the import again on a file nobody is writing", plan.input, s.rows_read, good_rows,
                                seen, s.rows_written));
  writer.close();
  if (bar) bar->finish();

  for (int j = 0; j < M; ++j) {
    double n = double(s.arm_rows[j]);
    s.arm_mean_revenue.push_back(n > 0 ? rev_sum[j] / n : 0.0);
    s.arm_mean_cost.push_back(n > 0 ? cost_sum[j] / n : 0.0);
  }
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return s;
}

nlohmann::json to_json(const ImportSummary& s) {
  nlohmann::json arms = nlohmann::json::array();
  for (size_t j = 0; j < s.arm_names.size(); ++j) {
    nlohmann::json a = {{"arm", j}, {"name", s.arm_names[j]}};
    if (j < s.arm_rows.size()) a["rows"] = s.arm_rows[j];
    if (j < s.arm_mean_revenue.size()) a["mean_revenue"] = s.arm_mean_revenue[j];
    if (j < s.arm_mean_cost.size()) a["mean_cost"] = s.arm_mean_cost[j];
    if (j < s.rct_propensity.size()) a["rct_propensity"] = s.rct_propensity[j];
    arms.push_back(std::move(a));
  }
  return {{"input", s.input},
          {"output", s.output},
          {"preset", s.preset},
          {"origin", s.origin},
          {"source", s.source == Source::kRct ? "rct" : "observational"},
          {"rows_read", s.rows_read},
          {"rows_written", s.rows_written},
          {"rows_skipped", s.rows_skipped},
          {"skip_reasons", s.skip_reasons},
          {"arms", std::move(arms)},
          {"num_features", s.feature_names.size()},
          {"feature_names", s.feature_names},
          {"seconds", s.seconds}};
}

}  // namespace dfcl::data
