// \brief Activations and output transforms: names, parsing, and the tensor ops behind them.
#include "model/activation.h"

#include <fmt/format.h>   // for fmt::format
#include <fmt/ranges.h>   // for fmt::join (its home since fmt 11)
#include <torch/torch.h>  // for at::relu, at::gelu, at::softplus, at::threshold_backward_out

#include "core/error.h"  // for ConfigError

namespace dfcl::model {
namespace {
template <class E>
E parse(const std::vector<std::string>& names, const std::string& name, const std::string& key, const char* what) {
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<E>(i);
  throw ConfigError(fmt::format("{}: unknown {} '{}'; use one of: {}", key, what, name, fmt::join(names, ", ")));
}
}  // namespace

const std::vector<std::string>& activation_names() {
  static const std::vector<std::string> names{"relu", "leaky_relu", "elu", "gelu", "tanh"};
  return names;
}
const std::vector<std::string>& output_transform_names() {
  static const std::vector<std::string> names{"identity", "softplus", "sigmoid"};
  return names;
}

Activation parse_activation(const std::string& name, const std::string& key) {
  return parse<Activation>(activation_names(), name, key, "activation");
}
OutputTransform parse_output_transform(const std::string& name, const std::string& key) {
  return parse<OutputTransform>(output_transform_names(), name, key, "output transform");
}
std::string to_string(Activation a) { return activation_names().at(static_cast<size_t>(a)); }
std::string to_string(OutputTransform o) { return output_transform_names().at(static_cast<size_t>(o)); }

at::Tensor apply(Activation a, const at::Tensor& x) {
  switch (a) {
    case Activation::kRelu:
      return at::relu(x);
    case Activation::kLeakyRelu:
      return at::leaky_relu(x, 0.01);  // torch's default slope
    case Activation::kElu:
      return at::elu(x);
    case Activation::kGelu:
      return at::gelu(x);  // exact (erf) form, torch's default
    case Activation::kTanh:
      return at::tanh(x);
  }
  return x;
}

at::Tensor apply(OutputTransform o, const at::Tensor& x) {
  switch (o) {
    case OutputTransform::kIdentity:
      return x;
    case OutputTransform::kSoftplus:
      return at::softplus(x);  // beta 1, linear above 20 (torch's default)
    case OutputTransform::kSigmoid:
      return at::sigmoid(x);
  }
  return x;
}

bool backward_needs_input(Activation a) { return a == Activation::kGelu; }

void apply_out(Activation a, at::Tensor& out, const at::Tensor& z) {
  if (!out.is_same(z) && a != Activation::kGelu) out.copy_(z);  // then in place below
  switch (a) {
    case Activation::kRelu:
      at::relu_(out);
      return;
    case Activation::kLeakyRelu:
      at::leaky_relu_(out, 0.01);
      return;
    case Activation::kElu:
      at::elu_(out);
      return;
    case Activation::kGelu:
      at::gelu_out(out, z);
      return;
    case Activation::kTanh:
      at::tanh_(out);
      return;
  }
}

void apply_backward_(Activation a, at::Tensor& grad, const at::Tensor& saved) {
  // Each is autograd's own formula for the op; those of relu, leaky_relu, elu and tanh read the output (relu's
  // autograd formula does too), which is positive exactly where the input is.
  switch (a) {
    case Activation::kRelu:
      at::threshold_backward_out(grad, grad, saved, 0);
      return;
    case Activation::kLeakyRelu:
      at::leaky_relu_backward_out(grad, grad, saved, 0.01, /*self_is_result=*/true);
      return;
    case Activation::kElu:
      at::elu_backward_out(grad, grad, 1, 1, 1, /*is_result=*/true, saved);
      return;
    case Activation::kGelu:
      at::gelu_backward_out(grad, grad, saved);
      return;
    case Activation::kTanh:
      at::tanh_backward_out(grad, grad, saved);
      return;
  }
}

void apply_out(OutputTransform o, at::Tensor& out, const at::Tensor& z) {
  switch (o) {
    case OutputTransform::kIdentity:
      if (!out.is_same(z)) out.copy_(z);
      return;
    case OutputTransform::kSoftplus:
      at::softplus_out(out, z);  // beta 1, threshold 20 as apply()
      return;
    case OutputTransform::kSigmoid:
      at::sigmoid_out(out, z);
      return;
  }
}

void apply_backward_out(OutputTransform o, at::Tensor& grad_z, const at::Tensor& grad, const at::Tensor& z,
                        const at::Tensor& out) {
  switch (o) {
    case OutputTransform::kIdentity:
      if (!grad_z.is_same(grad)) grad_z.copy_(grad);
      return;
    case OutputTransform::kSoftplus:
      at::softplus_backward_out(grad_z, grad, z, 1, 20);
      return;
    case OutputTransform::kSigmoid:
      at::sigmoid_backward_out(grad_z, grad, out);
      return;
  }
}

}  // namespace dfcl::model
