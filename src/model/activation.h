// \brief Hidden-layer activations and output transforms of the uplift nets, by name.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <string>  // for std::string
#include <vector>  // for std::vector

namespace dfcl::model {

/// Hidden-layer non-linearity. All have double backward in LibTorch 1.13 and 2.x (Hessian-vector products).
enum class Activation { kRelu, kLeakyRelu, kElu, kGelu, kTanh };
/// Transform of a head's raw output: identity (any real), softplus (> 0) or sigmoid (in (0, 1)).
enum class OutputTransform { kIdentity, kSoftplus, kSigmoid };

/// Names accepted in configs, in the order listed in error messages.
const std::vector<std::string>& activation_names();        // relu, leaky_relu, elu, gelu, tanh
const std::vector<std::string>& output_transform_names();  // identity, softplus, sigmoid

/// Parse a name; throw ConfigError naming `key` and the accepted names when unknown.
Activation parse_activation(const std::string& name, const std::string& key);
OutputTransform parse_output_transform(const std::string& name, const std::string& key);
std::string to_string(Activation a);
std::string to_string(OutputTransform o);

at::Tensor apply(Activation a, const at::Tensor& x);
at::Tensor apply(OutputTransform o, const at::Tensor& x);

}  // namespace dfcl::model
