// \brief UpliftNet: layout construction, deterministic init, the functional forward, save/load by name.
#include "model/uplift_net.h"

#include <fmt/format.h>   // for fmt::format
#include <fmt/ranges.h>   // for fmt::join (its home since fmt 11)
#include <torch/torch.h>  // for at::addmm, at::baddbmm, torch::NoGradGuard

#include <cmath>  // for std::sqrt

#include "core/error.h"  // for DataError
#include "core/rng.h"    // for Rng

namespace dfcl::model {
namespace {
constexpr uint64_t kInitStream = 0x1417;  // Rng stream of parameter init; the entry index is the counter

std::string shape_str(at::IntArrayRef s) { return fmt::format("({})", fmt::join(s.vec(), ", ")); }
}  // namespace

UpliftNet::UpliftNet(const UpliftNetConfig& config, uint64_t seed, at::ScalarType dtype, at::Device device)
    : cfg_(config) {
  cfg_.validate();
  act_ = parse_activation(cfg_.activation, "model.activation");
  revenue_out_ = parse_output_transform(cfg_.revenue_output, "model.revenue_output");
  cost_out_ = parse_output_transform(cfg_.cost_output, "model.cost_output");
  const int64_t k = cfg_.heads();
  const int64_t trunk_stacks = cfg_.shared_trunk ? 1 : k;
  int64_t in = cfg_.features;
  for (size_t l = 0; l < cfg_.trunk.size(); ++l) {
    add_layer(fmt::format("trunk.{}", l), trunk_stacks, in, cfg_.trunk[l], false, true);
    in = cfg_.trunk[l];
  }
  std::vector<int> head = cfg_.head;
  head.push_back(1);
  for (size_t l = 0; l < head.size(); ++l) {
    add_layer(fmt::format("heads.{}", l), k, in, head[l], cfg_.arm_column && l == 0, l + 1 < head.size());
    in = head[l];
  }
  flat_ = init_parameters(seed).to(device, dtype).requires_grad_(true);
}

void UpliftNet::add_layer(const std::string& name, int64_t stacks, int64_t in, int64_t out, bool arm_column,
                          bool hidden) {
  const int64_t in_total = in + (arm_column ? 1 : 0);
  Layer L;
  L.stacks = stacks, L.in = in, L.out = out, L.arm_column = arm_column, L.hidden = hidden;
  if (stacks == 1) {
    L.weight = layout_.add(name + ".weight", {out, in_total});
    L.bias = layout_.add(name + ".bias", {out});
  } else {
    L.weight = layout_.add(name + ".weight", {stacks, out, in_total});
    L.bias = layout_.add(name + ".bias", {stacks, out});
  }
  layers_.push_back(L);
}

at::Tensor UpliftNet::init_parameters(uint64_t seed) const {
  std::vector<double> v(static_cast<size_t>(layout_.size()));
  for (const Layer& L : layers_) {
    const double bound = 1.0 / std::sqrt(double(L.in + (L.arm_column ? 1 : 0)));
    for (size_t e : {L.weight, L.bias}) {
      const ParamEntry& p = layout_.entries()[e];
      Rng r(seed, kInitStream, e);
      for (int64_t i = 0; i < p.numel; ++i) v[size_t(p.offset + i)] = bound * (2 * r.uniform() - 1);
    }
  }
  return at::from_blob(v.data(), {layout_.size()}, at::TensorOptions().dtype(at::kDouble)).clone();
}

void UpliftNet::reset_parameters(uint64_t seed) {
  torch::NoGradGuard no_grad;
  flat_.copy_(init_parameters(seed));
}

NamedTensors UpliftNet::named_parameters() const {
  NamedTensors out;
  for (size_t i = 0; i < layout_.entries().size(); ++i)
    out.emplace_back(layout_.entries()[i].name, layout_.view(flat_, i));
  return out;
}

at::Tensor UpliftNet::parameter(const at::Tensor& flat, const std::string& name) const {
  const int64_t i = layout_.find(name);
  if (i < 0) {
    std::vector<std::string> names;
    for (const auto& e : layout_.entries()) names.push_back(e.name);
    throw DataError(fmt::format("uplift net: no parameter '{}'; it has {}", name, fmt::join(names, ", ")));
  }
  return layout_.view(flat, size_t(i));
}

at::Tensor UpliftNet::logits(const at::Tensor& flat, const at::Tensor& x_in) const {
  if (flat.dim() != 1 || flat.size(0) != layout_.size())
    throw DataError(fmt::format("uplift net: parameter vector has shape {}, expected ({}) for this architecture",
                                shape_str(flat.sizes()), layout_.size()));
  if (x_in.dim() != 2 || x_in.size(1) != cfg_.features)
    throw DataError(
        fmt::format("uplift net: features have shape {}, expected (B, {}); the model was built for {} "
                    "features",
                    shape_str(x_in.sizes()), cfg_.features, cfg_.features));
  const int64_t B = x_in.size(0), K = cfg_.heads(), M = cfg_.arms;
  at::Tensor a = x_in.to(flat.scalar_type());  // (B, in) shared by all stacks, or (K, B, in) one per stack
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    const bool last = l + 1 == layers_.size();
    at::Tensor W = layout_.view(flat, L.weight), b = layout_.view(flat, L.bias);
    if (L.stacks == 1) {
      a = at::addmm(b, a, W.t());
    } else {
      if (L.arm_column) {
        // concat(a, j_k) W_k^T + b_k  ==  a W_k[:, :in]^T + (b_k + j_k W_k[:, in])
        at::Tensor arm = at::arange(K, flat.options()).remainder(M).unsqueeze(1);  // (K, 1): j_k
        b = b + W.select(2, L.in) * arm;
        W = W.narrow(2, 0, L.in);
      }
      if (a.dim() == 2) {
        // One matmul for all K stacks: (B, in) x (in, K*out).
        at::Tensor y = at::addmm(b.reshape({K * L.out}), a, W.reshape({K * L.out, L.in}).t());
        a = last ? y : y.view({B, K, L.out}).transpose(0, 1);  // last layer: out = 1, so y is (B, K)
      } else {
        a = at::baddbmm(b.unsqueeze(1), a, W.transpose(1, 2));  // (K, B, out)
      }
    }
    if (L.hidden) a = apply(act_, a);
  }
  return a.dim() == 3 ? a.squeeze(2).t() : a;  // (B, K)
}

Scores UpliftNet::forward(const at::Tensor& flat, const at::Tensor& x) const {
  at::Tensor z = logits(flat, x);
  const int64_t M = cfg_.arms;
  return {apply(revenue_out_, z.narrow(1, 0, M)), apply(cost_out_, z.narrow(1, M, M))};
}

void UpliftNet::save(const std::string& path) const { write_param_file(path, named_parameters()); }

void UpliftNet::load(const std::string& path) {
  NamedTensors file = read_param_file(path);
  std::vector<std::string> extra;
  for (const auto& kv : file)
    if (layout_.find(kv.first) < 0) extra.push_back(kv.first);
  if (!extra.empty())
    throw DataError(
        fmt::format("{}: parameter(s) {} are not in this model; the file was saved from another "
                    "architecture (check model.* against the run that wrote it)",
                    path, fmt::join(extra, ", ")));
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < layout_.entries().size(); ++i) {
    const ParamEntry& e = layout_.entries()[i];
    const at::Tensor* src = nullptr;
    for (const auto& kv : file)
      if (kv.first == e.name) src = &kv.second;
    if (!src)
      throw DataError(
          fmt::format("{}: parameter '{}' is missing; the file was saved from another architecture "
                      "(check model.* against the run that wrote it)",
                      path, e.name));
    if (src->sizes() != at::IntArrayRef(e.shape))
      throw DataError(
          fmt::format("{}: parameter '{}' has shape {}, this model needs {}; the file was saved from "
                      "another architecture",
                      path, e.name, shape_str(src->sizes()), shape_str(e.shape)));
  }
  for (size_t i = 0; i < layout_.entries().size(); ++i)
    for (const auto& kv : file)
      if (kv.first == layout_.entries()[i].name) layout_.view(flat_, i).copy_(kv.second);
}

}  // namespace dfcl::model
