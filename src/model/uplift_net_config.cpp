// \brief UpliftNetConfig: presets, reading the `model` section, validation, parameter count.
#include "model/uplift_net_config.h"

#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join (its home since fmt 11)

#include "core/config.h"       // for Config
#include "core/error.h"        // for ConfigError
#include "model/activation.h"  // for parse_activation, parse_output_transform

namespace dfcl::model {
namespace {
constexpr int kMaxWidth = 1 << 20;

[[noreturn]] void bad(const std::string& key, const std::string& why) {
  throw ConfigError(fmt::format("model.{}: {}", key, why));
}

std::vector<int> widths(const Config& s, const std::string& key, const std::vector<int>& fallback) {
  std::vector<int64_t> dflt(fallback.begin(), fallback.end());
  std::vector<int64_t> v = s.get<std::vector<int64_t>>(key, dflt);
  std::vector<int> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] <= 0 || v[i] > kMaxWidth)
      bad(key,
          fmt::format("width {} at position {} must lie in [1, {}]; e.g. {}: [64, 32, 32]", v[i], i, kMaxWidth, key));
    out.push_back(static_cast<int>(v[i]));
  }
  return out;
}

// Weights and biases of dense layers in -> widths[0] -> widths[1] -> ...
int64_t dense_params(int64_t in, const std::vector<int>& widths) {
  int64_t n = 0;
  for (int w : widths) n += (in + 1) * w, in = w;
  return n;
}
}  // namespace

const std::vector<std::string>& UpliftNetConfig::preset_names() {
  static const std::vector<std::string> names{"criteo", "dfcl_official"};
  return names;
}

UpliftNetConfig UpliftNetConfig::preset(const std::string& name, int features, int arms) {
  UpliftNetConfig c;
  c.features = features;
  c.arms = arms;
  c.preset_name = name;
  if (name == "criteo") {
    // Bi-DFCL Table (spec methods-bidfcl.md §4.1): F -> 64-32-32 -> 2M, ReLU; the last layer is one linear
    // output per head. The paper's Criteo labels are binary; the outputs are left to `auto`, which picks the sigmoid
    // there and a head that can reach the labels elsewhere.
    c.trunk = {64, 32, 32};
    c.head = {};
  } else if (name == "dfcl_official") {
    // DFCL reference model (spec methods-dfcl-dhcl.md §3.1): h = ReLU(Linear(F, 127)(x)); per head
    // Sigmoid(Linear(64, 1)(ReLU(Linear(128, 64)(concat(h, T_k))))). As for criteo, the outputs are left to `auto`
    // (the sigmoid on binary labels).
    c.trunk = {127};
    c.head = {64};
    c.arm_column = true;
  } else {
    throw ConfigError(
        fmt::format("model.preset: unknown preset '{}'; use one of: {} (or leave it out and set "
                    "model.trunk / model.head)",
                    name, fmt::join(preset_names(), ", ")));
  }
  c.validate();
  return c;
}

UpliftNetConfig UpliftNetConfig::from(const Config& s, int features, int arms) {
  UpliftNetConfig c;
  c.features = features;
  c.arms = arms;
  const std::string name = s.get<std::string>("preset", "");
  if (!name.empty()) c = preset(name, features, arms);
  c.trunk = widths(s, "trunk", c.trunk);
  c.head = widths(s, "head", c.head);
  c.activation = s.get<std::string>("activation", c.activation);
  c.shared_trunk = s.get<bool>("shared_trunk", c.shared_trunk);
  c.arm_column = s.get<bool>("arm_column", c.arm_column);
  c.revenue_output = s.get<std::string>("revenue_output", "auto");
  c.cost_output = s.get<std::string>("cost_output", "auto");
  c.validate();
  return c;
}

void UpliftNetConfig::validate() const {
  if (features < 1) bad("features", fmt::format("the data has {} features; need at least 1", features));
  if (arms < 2) bad("arms", fmt::format("the data has {} arms; need control plus at least one treatment", arms));
  for (const auto* list : {&trunk, &head}) {
    const char* key = list == &trunk ? "trunk" : "head";
    for (size_t i = 0; i < list->size(); ++i)
      if ((*list)[i] <= 0 || (*list)[i] > kMaxWidth)
        bad(key, fmt::format("width {} at position {} must lie in [1, {}]; e.g. {}: [64, 32, 32]", (*list)[i], i,
                             kMaxWidth, key));
  }
  parse_activation(activation, "model.activation");
  if (revenue_output != "auto") parse_output_transform(revenue_output, "model.revenue_output");
  if (cost_output != "auto") parse_output_transform(cost_output, "model.cost_output");
}

namespace {
// The labels an output transform can reach: sigmoid (0, 1), softplus (0, inf), identity everything. Labels at the
// open ends (a 0/1 conversion, a zero cost) are limits the head approaches, so they count as reachable.
bool reaches(OutputTransform o, const LabelRange& y) {
  switch (o) {
    case OutputTransform::kSigmoid: return y.min >= 0 && y.max <= 1;
    case OutputTransform::kSoftplus: return y.min >= 0;
    case OutputTransform::kIdentity: return true;
  }
  return true;
}

std::string range_text(const LabelRange& y) {
  return y.rows > 0 ? fmt::format("[{:.6g}, {:.6g}] over {} rows", y.min, y.max, y.rows) : "unknown (no rows)";
}

// One outcome: resolve `auto` or check an explicit head. Returns the log line.
std::string resolve_one(std::string& value, const char* key, const char* label, const LabelRange& y,
                        bool factor_model, const std::string& where) {
  const std::string full = fmt::format("model.{}", key);
  if (factor_model) {
    if (value == "auto" || value == "identity") {
      const bool was_auto = value == "auto";
      value = "identity";
      return fmt::format("{} head identity ({}the loss learns decision factors: r_hat holds raw scores)", label,
                         was_auto ? "auto: " : "");
    }
    throw ConfigError(fmt::format("{} = {}: the loss learns decision factors, so the net's outputs are raw scores, "
                                  "not {}; a {} would bound them. Use {}=auto or identity",
                                  full, value, label, value, full));
  }
  if (value == "auto") {
    if (y.rows == 0) {
      value = "identity";
      return fmt::format("{} head identity (auto: no training labels were seen)", label);
    }
    value = y.min >= 0 && y.max <= 1 ? "sigmoid" : y.min >= 0 ? "softplus" : "identity";
    return fmt::format("{} head {} (auto: {} labels in {})", label, value, label, range_text(y));
  }
  const OutputTransform o = parse_output_transform(value, full);
  if (!reaches(o, y)) {
    const char* bound = o == OutputTransform::kSigmoid ? "(0, 1)" : "(0, inf)";
    std::string fix = "auto";
    resolve_one(fix, key, label, y, false, where);
    throw ConfigError(fmt::format(
        "{} = {} limits the predicted {} to {}, but the {} labels of the training rows of {} lie in {}: the model "
        "cannot fit them. Use {}=auto (it picks {} for these labels) or identity",
        full, value, label, bound, label, where, range_text(y), full, fix));
  }
  return fmt::format("{} head {} (as configured; {} labels in {})", label, value, label, range_text(y));
}
}  // namespace

std::vector<std::string> UpliftNetConfig::resolve_outputs(const LabelRange& revenue, const LabelRange& cost,
                                                          bool factor_model, const std::string& where) {
  return {resolve_one(revenue_output, "revenue_output", "revenue", revenue, factor_model, where),
          resolve_one(cost_output, "cost_output", "cost", cost, factor_model, where)};
}

int64_t UpliftNetConfig::num_parameters() const {
  const int64_t trunk_params = dense_params(features, trunk);
  std::vector<int> head_widths = head;
  head_widths.push_back(1);
  const int64_t head_in = (trunk.empty() ? features : trunk.back()) + (arm_column ? 1 : 0);
  const int64_t head_params = dense_params(head_in, head_widths);
  return shared_trunk ? trunk_params + heads() * head_params : heads() * (trunk_params + head_params);
}

}  // namespace dfcl::model
