// \brief SGD (momentum, Nesterov), Adam and AdamW over one flat parameter vector, and the `optimizer` section.
//
// Each update is torch.optim's (LibTorch 1.13 C++ and Python, same op order, so float64 results agree with
// torch::optim to rounding), written as a few in-place ATen ops over the whole buffer into scratch preallocated at
// construction: a step allocates nothing on the device. With g the gradient, p the parameters, t the step (from 1):
//
//   sgd:   g += wd p;  if momentum m > 0: b = g (t = 1) or b = m b + g;  g = nesterov ? g + m b : b;  p -= lr g
//   adam:  g += wd p;  m1 = b1 m1 + (1 - b1) g;  m2 = b2 m2 + (1 - b2) g^2;
//          p -= lr / (1 - b1^t) * m1 / (sqrt(m2) / sqrt(1 - b2^t) + eps)
//   adamw: p *= 1 - lr wd (decoupled decay, before the update);  then adam's update without the L2 term.
//
// State buffers: "momentum_buffer" (sgd, momentum > 0), "exp_avg" and "exp_avg_sq" (adam, adamw), and "step".
#include "train/optimizer.h"

#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for at::zeros, at::sqrt_out, torch::NoGradGuard

#include <cmath>  // for std::isfinite, std::pow, std::sqrt

#include "core/config.h"  // for Config
#include "core/error.h"   // for ConfigError, DataError

namespace dfcl::train {
namespace {

[[noreturn]] void bad(const std::string& key, const std::string& why) {
  throw ConfigError(fmt::format("optimizer.{} {}", key, why));
}

bool uses_momentum(const std::string& name) { return name == "sgd"; }
bool uses_betas(const std::string& name) { return name == "adam" || name == "adamw"; }

// One optimiser over a flat vector: the checks shared by every rule, and state()/load_state() over the named
// buffers the rule declares.
class FlatOptimizer : public Optimizer {
 public:
  FlatOptimizer(const OptimizerConfig& config, const at::Tensor& params) : c_(config) {
    if (!params.defined() || params.dim() != 1 ||
        (params.scalar_type() != at::kFloat && params.scalar_type() != at::kDouble))
      throw DataError(fmt::format("optimizer {}: parameters must be one 1-D float32 or float64 tensor, got {}",
                                  config.name, describe(params)));
    numel_ = params.numel();
    dtype_ = params.scalar_type();
    device_ = params.device();
  }

  std::string name() const override { return c_.name; }

  model::NamedTensors state() const override {
    model::NamedTensors out;
    for (const auto& [name, buf] : buffers_)
      out.emplace_back(name, buf.to(at::kCPU, /*non_blocking=*/false, /*copy=*/true));
    out.emplace_back("step", at::scalar_tensor(steps_, at::TensorOptions().dtype(at::kLong)));
    return out;
  }

  void load_state(const model::NamedTensors& state) override {
    const model::NamedTensors& bufs = buffers_;
    auto find = [&](const std::string& name) -> const at::Tensor* {
      for (const auto& kv : state)
        if (kv.first == name) return &kv.second;
      return nullptr;
    };
    std::string expected;
    for (const auto& kv : bufs) expected += kv.first + ", ";
    expected += "step";
    for (const auto& kv : state) {
      bool known = kv.first == "step";
      for (const auto& b : bufs) known = known || kv.first == b.first;
      if (!known)
        throw DataError(
            fmt::format("optimizer {} state: unexpected buffer '{}'; this optimiser keeps {} (was the "
                        "state saved with another optimizer.name or momentum?)",
                        c_.name, kv.first, expected));
    }
    // Check everything before changing anything.
    const at::Tensor* step = find("step");
    if (step == nullptr)
      throw DataError(fmt::format("optimizer {} state: buffer 'step' is missing; it holds {}", c_.name, expected));
    if (!step->defined() || step->numel() != 1 || step->scalar_type() != at::kLong)
      throw DataError(
          fmt::format("optimizer {} state: buffer 'step' must be one int64 (0-dim), got {}", c_.name, describe(*step)));
    const int64_t steps = step->item<int64_t>();
    if (steps < 0)
      throw DataError(fmt::format("optimizer {} state: buffer 'step' is {}; it must be >= 0", c_.name, steps));
    for (const auto& [name, buf] : bufs) {
      const at::Tensor* t = find(name);
      if (t == nullptr)
        throw DataError(
            fmt::format("optimizer {} state: buffer '{}' is missing; it holds {}", c_.name, name, expected));
      if (!t->defined() || t->dim() != 1 || t->numel() != numel_ || t->scalar_type() != dtype_)
        throw DataError(
            fmt::format("optimizer {} state: buffer '{}' is {}; expected a 1-D {} tensor of {} values "
                        "(the parameters' length and dtype)",
                        c_.name, name, describe(*t), c10::toString(dtype_), numel_));
    }
    torch::NoGradGuard no_grad;
    for (const auto& [name, buf] : bufs) buf.copy_(*find(name));  // a handle: writes the shared storage
    steps_ = steps;
  }

 protected:
  /// A zero vector like the parameters (never requiring grad).
  at::Tensor zeros() const { return at::zeros({numel_}, at::TensorOptions().dtype(dtype_).device(device_)); }
  /// A zero vector saved in state() as `name` (the returned handle and state() share its storage).
  at::Tensor state_buffer(const std::string& name) {
    buffers_.emplace_back(name, zeros());
    return buffers_.back().second;
  }

  void check(const at::Tensor& params, const at::Tensor& grad, double lr) const {
    if (!params.defined() || params.dim() != 1 || params.numel() != numel_ || params.scalar_type() != dtype_ ||
        params.device() != device_)
      throw DataError(
          fmt::format("optimizer {}: step() got parameters {}; it was made for a 1-D {} tensor of {} "
                      "values on {}",
                      c_.name, describe(params), c10::toString(dtype_), numel_, device_.str()));
    if (!grad.defined() || grad.sizes() != params.sizes() || grad.scalar_type() != dtype_ || grad.device() != device_)
      throw DataError(fmt::format("optimizer {}: the gradient is {}; it must match the parameters ({})", c_.name,
                                  describe(grad), describe(params)));
    if (!(lr >= 0) || !std::isfinite(lr))
      throw DataError(
          fmt::format("optimizer {}: step() got learning rate {}; it must be finite and >= 0", c_.name, lr));
  }

  static std::string describe(const at::Tensor& t) {
    if (!t.defined()) return "an undefined tensor";
    std::string shape;
    for (int64_t i = 0; i < t.dim(); ++i) shape += (i ? "x" : "") + std::to_string(t.size(i));
    return fmt::format("{} [{}] on {}", c10::toString(t.scalar_type()), t.dim() ? shape : "0-dim", t.device().str());
  }

  OptimizerConfig c_;
  model::NamedTensors buffers_;  // the rule's state by name, "step" aside
  int64_t numel_ = 0;
  at::ScalarType dtype_ = at::kFloat;
  at::Device device_ = at::kCPU;
};

// torch.optim.SGD with dampening 0. As in torch the momentum buffer starts as the first (decayed) gradient.
class Sgd final : public FlatOptimizer {
 public:
  Sgd(const OptimizerConfig& c, const at::Tensor& params) : FlatOptimizer(c, params) {
    torch::NoGradGuard no_grad;
    if (c.momentum != 0) momentum_buffer_ = state_buffer("momentum_buffer");
    if (c.weight_decay != 0 || c.nesterov) scratch_ = zeros();
  }

  void step(at::Tensor& params, const at::Tensor& grad, double lr) override {
    check(params, grad, lr);
    torch::NoGradGuard no_grad;
    at::Tensor d = grad;
    if (c_.weight_decay != 0) d = at::add_out(scratch_, grad, params, c_.weight_decay);  // grad + wd p
    if (c_.momentum != 0) {
      if (steps_ == 0)
        momentum_buffer_.copy_(d);
      else
        momentum_buffer_.mul_(c_.momentum).add_(d, 1.0);  // torch: add_(d, 1 - dampening)
      if (c_.nesterov)
        d = at::add_out(scratch_, d, momentum_buffer_, c_.momentum);  // (in place when d is scratch_)
      else
        d = momentum_buffer_;
    }
    params.add_(d, -1 * lr);
    ++steps_;
  }

 private:
  at::Tensor momentum_buffer_, scratch_;
};

// torch.optim.Adam (amsgrad off) and, with `decoupled`, torch.optim.AdamW.
class Adam final : public FlatOptimizer {
 public:
  Adam(const OptimizerConfig& c, const at::Tensor& params, bool decoupled)
      : FlatOptimizer(c, params), decoupled_(decoupled) {
    torch::NoGradGuard no_grad;
    exp_avg_ = state_buffer("exp_avg");
    exp_avg_sq_ = state_buffer("exp_avg_sq");
    denom_ = zeros();
    if (c.weight_decay != 0 && !decoupled) decayed_ = zeros();
  }

  void step(at::Tensor& params, const at::Tensor& grad, double lr) override {
    check(params, grad, lr);
    torch::NoGradGuard no_grad;
    ++steps_;
    const double bias_correction1 = 1 - std::pow(c_.beta1, steps_);
    const double bias_correction2 = 1 - std::pow(c_.beta2, steps_);
    at::Tensor g = grad;
    if (c_.weight_decay != 0) {
      if (decoupled_)
        params.mul_(1 - lr * c_.weight_decay);
      else
        g = at::add_out(decayed_, grad, params, c_.weight_decay);  // grad + wd p
    }
    exp_avg_.mul_(c_.beta1).add_(g, 1 - c_.beta1);
    exp_avg_sq_.mul_(c_.beta2).addcmul_(g, g, 1 - c_.beta2);
    at::sqrt_out(denom_, exp_avg_sq_).div_(std::sqrt(bias_correction2)).add_(c_.eps);
    params.addcdiv_(exp_avg_, denom_, -(lr / bias_correction1));
  }

 private:
  bool decoupled_;
  at::Tensor exp_avg_, exp_avg_sq_, denom_, decayed_;
};

}  // namespace

OptimizerConfig OptimizerConfig::from(const Config& s) {
  OptimizerConfig c;
  c.name = s.get<std::string>("name", c.name);
  c.lr = s.get<double>("lr", c.lr);
  c.weight_decay = s.get<double>("weight_decay", c.weight_decay);
  c.momentum = s.get<double>("momentum", c.momentum);
  c.nesterov = s.get<bool>("nesterov", c.nesterov);
  const std::vector<double> betas = s.get<std::vector<double>>("betas", {c.beta1, c.beta2});
  if (betas.size() != 2)
    bad("betas",
        fmt::format("has {} values; it must be a list of two, e.g. optimizer.betas: [0.9, 0.999]", betas.size()));
  c.beta1 = betas[0];
  c.beta2 = betas[1];
  c.eps = s.get<double>("eps", c.eps);
  c.validate();
  // Keys of another optimiser are an error rather than silently ignored (validate() catches momentum/nesterov).
  if (!uses_betas(c.name))
    for (const char* key : {"betas", "eps"})
      if (s.has(key))
        bad(key, fmt::format("applies to adam and adamw only, and optimizer.name is {}; remove it", c.name));
  if (!uses_momentum(c.name))
    for (const char* key : {"momentum", "nesterov"})
      if (s.has(key)) bad(key, fmt::format("applies to sgd only, and optimizer.name is {}; remove it", c.name));
  return c;
}

void OptimizerConfig::validate() const {
  if (name != "sgd" && name != "adam" && name != "adamw")
    throw ConfigError(fmt::format("optimizer.name is '{}'; use one of: sgd, adam, adamw", name));
  if (!(lr > 0) || !std::isfinite(lr)) bad("lr", fmt::format("is {}; it must be > 0 (e.g. optimizer.lr: 1e-3)", lr));
  // The optimiser's arithmetic runs in the parameters' type, float32 by default: a value beyond it overflows there.
  constexpr double kFloatMax = 3.4e38;
  if (lr > kFloatMax) bad("lr", fmt::format("is {}; it must be below 3.4e38, float32's range (e.g. optimizer.lr: 1e-3)", lr));
  if (!(weight_decay >= 0) || !std::isfinite(weight_decay))
    bad("weight_decay", fmt::format("is {}; it must be >= 0 (0 turns it off)", weight_decay));
  if (weight_decay > kFloatMax) bad("weight_decay", fmt::format("is {}; it must be below 3.4e38, float32's range", weight_decay));
  if (!(momentum >= 0 && momentum < 1))
    bad("momentum", fmt::format("is {}; it must lie in [0, 1) (e.g. optimizer.momentum: 0.9)", momentum));
  if (!uses_momentum(name) && momentum != 0)
    bad("momentum", fmt::format("applies to sgd only, and optimizer.name is {}; remove it", name));
  if (nesterov && !uses_momentum(name))
    bad("nesterov", fmt::format("applies to sgd only, and optimizer.name is {}; remove it", name));
  if (nesterov && momentum == 0)
    bad("nesterov", "is true but optimizer.momentum is 0; Nesterov needs a momentum, e.g. optimizer.momentum: 0.9");
  for (double b : {beta1, beta2})
    if (!(b >= 0 && b < 1))
      bad("betas",
          fmt::format("is [{}, {}]; both must lie in [0, 1) (e.g. optimizer.betas: [0.9, 0.999])", beta1, beta2));
  if (!(eps > 0) || !std::isfinite(eps))
    bad("eps", fmt::format("is {}; it must be > 0 (e.g. optimizer.eps: 1e-8)", eps));
}

std::unique_ptr<Optimizer> make_optimizer(const OptimizerConfig& config, const at::Tensor& params) {
  config.validate();
  if (config.name == "sgd") return std::make_unique<Sgd>(config, params);
  return std::make_unique<Adam>(config, params, /*decoupled=*/config.name == "adamw");
}

}  // namespace dfcl::train
