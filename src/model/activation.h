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

// The hand-written training path (UpliftNet::forward_train / backward): in-place and out= forms of the same ops,
// and their derivatives, so that no step allocates once its buffers exist.

/// True when the activation's derivative needs its input z (gelu); the others get it from their output a.
bool backward_needs_input(Activation a);
/// a = act(z) into `out`. When out is z itself the activation runs in place (not for gelu: keep z, see above).
void apply_out(Activation a, at::Tensor& out, const at::Tensor& z);
/// grad <- grad * act'(z), in place. `saved` is z for gelu (backward_needs_input), else the output a = act(z).
void apply_backward_(Activation a, at::Tensor& grad, const at::Tensor& saved);
/// out = o(z); `out` may be z only for the identity (then nothing runs).
void apply_out(OutputTransform o, at::Tensor& out, const at::Tensor& z);
/// grad_z = grad * o'(z), given z and the output out = o(z) (grad_z may alias grad).
void apply_backward_out(OutputTransform o, at::Tensor& grad_z, const at::Tensor& grad, const at::Tensor& z,
                        const at::Tensor& out);

}  // namespace dfcl::model
