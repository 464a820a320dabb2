// \brief Architecture of an uplift net: trunk and head widths, activation, sharing, output transforms, presets.
#pragma once
#include <cstdint>  // for int64_t
#include <limits>   // for std::numeric_limits
#include <string>   // for std::string
#include <vector>   // for std::vector

namespace dfcl {
class Config;
}

namespace dfcl::model {

/// The range of one label (revenue or cost) over the rows a model trains on: what its output head must reach.
struct LabelRange {
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  int64_t rows = 0;
  void add(double v) {
    min = v < min ? v : min, max = v > max ? v : max;
    ++rows;
  }
  void merge(const LabelRange& o) {
    min = o.min < min ? o.min : min, max = o.max > max ? o.max : max;
    rows += o.rows;
  }
};

/// An uplift net maps x (F features) to 2M outputs: r_hat for arms 0..M-1, then c_hat for arms 0..M-1.
/// Each (outcome, arm) pair has its own head ("head k": k = j for revenue of arm j, k = M + j for cost).
///  - shared_trunk = true:  x -> trunk (one MLP) -> 2M heads, each `head` widths then 1 output;
///  - shared_trunk = false: 2M fully separate MLPs x -> trunk widths -> head widths -> 1.
/// Hidden layers use `activation`; the output layer has none, then the per-outcome output transform.
struct UpliftNetConfig {
  int features = 0;
  int arms = 0;
  std::vector<int> trunk{64, 32, 32};  // hidden widths of the trunk (may be empty)
  std::vector<int> head;               // hidden widths of each head (may be empty: a linear output)
  std::string activation = "relu";
  bool shared_trunk = true;
  /// Append a constant input column equal to the head's arm index j to the first head layer, as the DFCL
  /// reference model does (its `concat(h, T_k)`). Within a head it acts as an extra bias w_k * j, but it is a
  /// real weight column, so parameter counts and checkpoint shapes match the reference.
  bool arm_column = false;
  /// identity | softplus | sigmoid | auto. `auto` (the default of the `model` section; from() sets it when the key is
  /// absent) must be resolved against the training labels (resolve_outputs) before a net is built: sigmoid for labels
  /// in [0, 1], softplus for labels >= 0, identity otherwise. Presets leave the outputs alone.
  std::string revenue_output = "identity";
  std::string cost_output = "identity";
  std::string preset_name;  // the preset this came from ("" = none); informational

  int heads() const { return 2 * arms; }
  /// Reads the `model` section: `preset` (optional) gives the base, every other key overrides it.
  /// Keys: preset, trunk, head, activation, shared_trunk, arm_column, revenue_output, cost_output.
  static UpliftNetConfig from(const Config& section, int features, int arms);
  /// Named paper architectures (docs/methods.md): "criteo" (Bi-DFCL's F -> 64-32-32 -> 2M MLP) and
  /// "dfcl_official" (DFCL's reference model: trunk 127 + ReLU, 2M heads [x, j] -> 64 -> 1, sigmoid).
  static UpliftNetConfig preset(const std::string& name, int features, int arms);
  static const std::vector<std::string>& preset_names();

  /// Throws ConfigError naming the `model.<key>` at fault and the fix.
  void validate() const;
  /// True while revenue_output or cost_output is still `auto`.
  bool has_auto_outputs() const { return revenue_output == "auto" || cost_output == "auto"; }
  /// Resolves `auto` outputs against the training labels and checks explicit ones: a head whose range cannot reach
  /// the labels (sigmoid on labels outside [0, 1], softplus on negative labels) is a ConfigError naming the key, the
  /// label range, `where` (the data) and the fix. A factor model (DHCL, DRP: r_hat holds raw scores) resolves `auto`
  /// to identity and refuses the others. Returns one line per outcome saying what was chosen and why.
  std::vector<std::string> resolve_outputs(const LabelRange& revenue, const LabelRange& cost, bool factor_model,
                                           const std::string& where);
  /// Number of scalar parameters, in closed form.
  int64_t num_parameters() const;
};

}  // namespace dfcl::model
