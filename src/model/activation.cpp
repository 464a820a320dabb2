// \brief Activations and output transforms: names, parsing, and the tensor ops behind them.
#include "model/activation.h"

#include <fmt/format.h>   // for fmt::format
#include <fmt/ranges.h>   // for fmt::join (its home since fmt 11)
#include <torch/torch.h>  // for at::relu, at::gelu, at::softplus

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

}  // namespace dfcl::model
