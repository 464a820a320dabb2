// \brief A net's parameters and an optimiser's state in and out of checkpoints (checkpoint.h).
#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for torch::NoGradGuard

#include <string>  // for std::string

#include "core/error.h"        // for DataError
#include "model/uplift_net.h"  // for UpliftNet
#include "train/checkpoint.h"
#include "train/optimizer.h"  // for Optimizer

namespace dfcl::train {

void add_parameters(Checkpoint& ck, const std::string& prefix, const model::UpliftNet& net) {
  for (const auto& kv : net.named_parameters()) ck.tensors.emplace_back(prefix + kv.first, kv.second.detach().clone());
}

void add_optimizer_state(Checkpoint& ck, const std::string& prefix, const Optimizer& opt) {
  for (const auto& kv : opt.state()) ck.tensors.emplace_back(prefix + kv.first, kv.second.clone());
}

void restore_parameters(const Checkpoint& ck, const std::string& prefix, model::UpliftNet& net, const std::string& path,
                        const std::string& what) {
  torch::NoGradGuard no_grad;
  for (const auto& e : net.layout().entries()) {
    const at::Tensor* t = nullptr;
    for (const auto& kv : ck.tensors)
      if (kv.first == prefix + e.name) t = &kv.second;
    if (!t || t->sizes() != at::IntArrayRef(e.shape))
      throw DataError(fmt::format("{}: {} '{}' is {}; the checkpoint was written for another model architecture "
                                  "(compare its model section with this run's)",
                                  path, what, e.name, t ? "of another shape" : "missing"));
    net.parameter(net.flat(), e.name).copy_(*t);
  }
}

void restore_optimizer_state(const Checkpoint& ck, const std::string& prefix, Optimizer& opt, const at::Device& device) {
  model::NamedTensors state;
  for (const auto& kv : ck.tensors)
    if (kv.first.rfind(prefix, 0) == 0) state.emplace_back(kv.first.substr(prefix.size()), kv.second.to(device));
  opt.load_state(state);
}

}  // namespace dfcl::train
