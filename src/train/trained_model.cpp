// \brief TrainedModel: loading from a checkpoint, compatibility checks, block-wise scoring.
#include "train/trained_model.h"

#include <fmt/format.h>   // for fmt::format
#include <fmt/ranges.h>   // for fmt::join
#include <torch/torch.h>  // for torch::NoGradGuard, at::from_blob

#include <algorithm>  // for std::min
#include <cstring>    // for std::memcpy

#include "core/config.h"      // for Config
#include "core/error.h"       // for DataError
#include "data/schema.h"      // for Meta, Table
#include "loss/loss.h"            // for Loss, make_loss
#include "metrics/factor_scores.h"  // for factor_scores
#include "model/batch.h"      // for to_batch
#include "train/checkpoint.h" // for read_checkpoint

namespace dfcl::train {

TrainedModel::TrainedModel() = default;
TrainedModel::TrainedModel(TrainedModel&&) noexcept = default;
TrainedModel::~TrainedModel() = default;

void TrainedModel::check_compatible(const data::Meta& meta, const std::string& where) const {
  if (meta.num_features != net->config().features || meta.num_arms != net->config().arms)
    throw DataError(fmt::format(
        "{}: has {} features and {} arms, but the model {} was trained on {} features and {} arms; score data "
        "with the training data's schema",
        where, meta.num_features, meta.num_arms, origin, net->config().features, net->config().arms));
  if (!feature_names.empty() && meta.feature_names != feature_names) {
    size_t k = 0;
    while (k < feature_names.size() && k < meta.feature_names.size() && feature_names[k] == meta.feature_names[k]) ++k;
    throw DataError(fmt::format(
        "{}: feature {} is '{}', but the model {} was trained with '{}' there; the columns must match the "
        "training data by name and order",
        where, k, k < meta.feature_names.size() ? meta.feature_names[k] : "?", origin,
        k < feature_names.size() ? feature_names[k] : "?"));
  }
}

TrainedModel load_trained_model(const std::string& path, const std::string& device) {
  Checkpoint ck = read_checkpoint(path);
  const nlohmann::json& st = ck.state;
  if (!st.contains("features") || !st.contains("arms"))
    throw DataError(fmt::format("{}: checkpoint has no model description (features, arms); was it written by "
                                "`dfcl train`?",
                                path));
  const int features = st["features"].get<int>(), arms = st["arms"].get<int>();
  Config cfg = Config::from_string(ck.config, path);
  model::UpliftNetConfig mc = model::UpliftNetConfig::from(cfg.sub("model"), features, arms);
  // dfcl train writes the resolved output heads into the checkpoint's config. A checkpoint from before `auto` heads
  // existed left them out; they were then the preset's sigmoid, or identity without a preset.
  const std::string before_auto = mc.preset_name.empty() ? "identity" : "sigmoid";
  if (mc.revenue_output == "auto") mc.revenue_output = before_auto;
  if (mc.cost_output == "auto") mc.cost_output = before_auto;
  const at::ScalarType dtype = st.value("dtype", std::string("float32")) == "float64" ? at::kDouble : at::kFloat;
  TrainedModel m;
  m.net = std::make_unique<model::UpliftNet>(mc, 0, dtype, at::Device(device));
  model::NamedTensors params;
  for (const auto& kv : ck.tensors)
    if (kv.first.rfind("model.", 0) == 0) params.emplace_back(kv.first.substr(6), kv.second);
  {
    torch::NoGradGuard no_grad;
    for (const auto& e : m.net->layout().entries()) {
      const at::Tensor* src = nullptr;
      for (const auto& kv : params)
        if (kv.first == e.name) src = &kv.second;
      if (!src || src->sizes() != at::IntArrayRef(e.shape))
        throw DataError(fmt::format("{}: parameter '{}' is {} in the checkpoint; its model section does not match "
                                    "its tensors (the file is damaged)",
                                    path, e.name, src ? "of another shape" : "missing"));
      m.net->parameter(m.net->flat(), e.name).copy_(*src);
    }
  }
  m.net->flat().requires_grad_(false);
  m.scaler = model::InputScaler::from_tensors(ck.tensors, features, path);
  m.loss = loss::make_loss(cfg.sub("loss"));
  if (st.contains("step_costs")) m.step_costs = st["step_costs"].get<std::vector<double>>();
  if (st.contains("feature_names")) m.feature_names = st["feature_names"].get<std::vector<std::string>>();
  if (st.contains("arm_names")) m.arm_names = st["arm_names"].get<std::vector<std::string>>();
  m.origin = path;
  m.train_files = cfg.get_strings("train.data");
  const auto fr = cfg.get<std::vector<double>>("train.split_fractions", {0.8, 0.1});
  if (fr.size() == 2) m.split.train = fr[0], m.split.validation = fr[1];
  m.split.seed = static_cast<uint64_t>(cfg.get<int64_t>("train.split_seed", 0));
  return m;
}

metrics::ScoreTable predict(const TrainedModel& m, const data::Table& rows) {
  const ScoreMap map{m.loss.get(), m.step_costs};
  return predict(*m.net, m.scaler, rows, {}, &map);
}

metrics::ScoreTable predict(const model::UpliftNet& net, const model::InputScaler& scaler, const data::Table& rows,
                            const at::Tensor& flat_in, const ScoreMap* map, int64_t block) {
  torch::NoGradGuard no_grad;
  const at::Tensor& flat = flat_in.defined() ? flat_in : net.flat();
  const int64_t n = rows.rows;
  const int f = rows.num_features, m = net.config().arms;
  if (f != net.config().features)
    throw DataError(fmt::format("predict: rows have {} features, the model {}", f, net.config().features));
  metrics::ScoreTable out;
  out.n = n, out.m = m;
  out.r.resize(size_t(n * m));
  out.c.resize(size_t(n * m));
  const auto o = at::TensorOptions().dtype(at::kFloat);
  for (int64_t a = 0; a < n; a += block) {
    const int64_t b = std::min(block, n - a);
    at::Tensor x = at::from_blob(const_cast<float*>(rows.features.data()) + a * f, {b, f}, o)
                       .to(flat.device(), flat.scalar_type(), false, /*copy=*/true);
    scaler.apply_(x);
    const model::Scores s = net.forward(flat, x);
    const at::Tensor theta = map && map->loss ? map->loss->decision_factors(s.r_hat) : at::Tensor();
    if (theta.defined()) {  // a factor model: tables from θ and the step costs
      const at::Tensor t = theta.to(at::kCPU, at::kFloat).contiguous();
      if (map->step_costs.size() != size_t(m - 1))
        throw DataError(fmt::format("predict: the factor model needs {} step costs, the checkpoint holds {}; it was "
                                    "written by an older dfcl: retrain",
                                    m - 1, map->step_costs.size()));
      const metrics::ScoreTable f = metrics::factor_scores(t.data_ptr<float>(), b, m - 1, map->step_costs);
      std::memcpy(out.r.data() + a * m, f.r.data(), sizeof(float) * size_t(b * m));
      std::memcpy(out.c.data() + a * m, f.c.data(), sizeof(float) * size_t(b * m));
      continue;
    }
    at::Tensor r = s.r_hat.to(at::kCPU, at::kFloat).contiguous(), c = s.c_hat.to(at::kCPU, at::kFloat).contiguous();
    std::memcpy(out.r.data() + a * m, r.data_ptr<float>(), sizeof(float) * size_t(b * m));
    std::memcpy(out.c.data() + a * m, c.data_ptr<float>(), sizeof(float) * size_t(b * m));
  }
  return out;
}

}  // namespace dfcl::train
