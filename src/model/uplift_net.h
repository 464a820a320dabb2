// \brief UpliftNet: x -> (r_hat, c_hat) over a flat parameter vector, with a functional forward.
//
// Parameter layout (names, in flat order; K = 2M heads, head k = revenue of arm k for k < M, cost of arm k - M):
//   shared_trunk:   trunk.<l>.weight (out, in), trunk.<l>.bias (out)               l = 0 .. trunk.size()-1
//                   heads.<l>.weight (K, out, in), heads.<l>.bias (K, out)          l = 0 .. head.size()
//   separate MLPs:  trunk.<l>.weight (K, out, in), trunk.<l>.bias (K, out), then heads.<l> as above
// The last heads layer has out = 1. With arm_column the first heads layer has in + 1 inputs; its last input
// column multiplies the constant arm index of the head. Weights are (out, in) as in torch::nn::Linear.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <cstdint>     // for uint64_t
#include <functional>  // for std::function
#include <string>      // for std::string
#include <vector>   // for std::vector

#include "model/activation.h"         // for Activation, OutputTransform
#include "model/param_file.h"         // for NamedTensors
#include "model/param_layout.h"       // for ParamLayout
#include "model/scores.h"             // for Scores
#include "model/uplift_net_config.h"  // for UpliftNetConfig

namespace dfcl::model {

/// What forward_train keeps for backward: the input and each layer's activations, held across steps so that a
/// training loop reuses their storage (no allocation per step once shapes settle). Opaque to callers: a buffer is
/// reallocated only when the batch size, dtype or device changes.
struct ForwardCache {
  at::Tensor x;                   // the input, in the parameters' dtype (the caller's tensor when it already is)
  std::vector<at::Tensor> z;      // per layer: pre-activation output (only where the derivative needs it: gelu)
  std::vector<at::Tensor> acts;   // per layer: output after the activation; the last layer's is the raw logits
  std::vector<at::Tensor> grads;  // per layer: dL/d(pre-activation output), same shape as acts
  std::vector<at::Tensor> w_eff;  // per arm-column layer: the weight without its arm column (K*out x in, copied)
  at::Tensor arm;                 // K x 1: the arm index j_k of each head (arm-column layouts)
  at::Tensor logits;              // B x 2M raw head outputs (a view of acts.back())
  at::Tensor scores;              // B x 2M after the output transforms (unused when both are the identity)
  at::Tensor grad_logits;         // B x 2M: dL/dlogits (a view of grads.back())
  // The CPU kernels' path (float32 dense chains, dense_cpu.h): which path forward took, and its buffers.
  bool dense = false;
  bool dense_out = false;                // ... and applied the output transforms in its tiles
  std::vector<int32_t> sigmoid_columns;  // per logit column: -1 where the output transform is the sigmoid
  std::vector<at::Tensor> packed;        // per layer: W^T (in x out)
  std::vector<at::Tensor> bias;          // per layer: the bias (with the arm column folded in)
  at::Tensor grad_acc;                   // threads x parameters: per-thread gradient sums
  at::Tensor scratch;                    // threads x 2 x tile rows x widest input: input gradients of a tile
};

class UpliftNet {
 public:
  /// Builds the layout and draws the initial parameters from `seed` (see init_parameters).
  UpliftNet(const UpliftNetConfig& config, uint64_t seed, at::ScalarType dtype = at::kFloat,
            at::Device device = at::kCPU);

  const UpliftNetConfig& config() const { return cfg_; }
  const ParamLayout& layout() const { return layout_; }
  int64_t num_parameters() const { return layout_.size(); }

  /// The model's own parameters: one contiguous 1-D leaf tensor with requires_grad.
  const at::Tensor& flat() const { return flat_; }
  at::Tensor& flat() { return flat_; }
  /// (name, view into flat()) in layout order; writing through a view changes flat().
  NamedTensors named_parameters() const;
  /// View of one named parameter inside `flat` (any vector of this layout's length). Throws DataError if unknown.
  at::Tensor parameter(const at::Tensor& flat, const std::string& name) const;

  /// A fresh parameter vector (no grad) drawn deterministically from `seed`, independent of the torch version:
  /// every weight and bias is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), the default range of torch::nn::Linear.
  at::Tensor init_parameters(uint64_t seed) const;
  /// Overwrites flat() in place with init_parameters(seed).
  void reset_parameters(uint64_t seed);

  /// Raw head outputs before the output transforms: B x 2M (revenue arms 0..M-1, then cost arms).
  at::Tensor logits(const at::Tensor& flat, const at::Tensor& x) const;
  /// Functional forward: r_hat, c_hat (B x M) for features x (B x F) under parameters `flat`.
  /// Differentiable in `flat` (to any order) and in x.
  Scores forward(const at::Tensor& flat, const at::Tensor& x) const;
  Scores forward(const at::Tensor& x) const { return forward(flat_, x); }

  /// Forward-mode derivative along a parameter direction: the scores' tangents (B x M each), J v, at `flat` for
  /// features x. Hand-written (one pass over the layers, no autograd); the Hessian-vector and mixed-term products of
  /// Bi-DFCL (src/bilevel) use it. Tests compare it with autograd in float64 for every layout.
  Scores jvp(const at::Tensor& flat, const at::Tensor& x, const at::Tensor& v) const;

  /// The training fast path, without autograd (the tiny-cuda-nn way: one hand-written backward over buffers reused
  /// from step to step). forward_train returns the same scores as forward() and fills `cache`; backward then writes
  /// dL/dflat into `grad` (resized to flat's shape and overwritten) from dL/dr_hat and dL/dc_hat (B x M each).
  /// Equal to autograd's gradient of forward() to rounding; tests compare them in float64 for every layout.
  /// The returned scores are views into `cache` (valid until its next forward_train), and backward reads `x` and
  /// `flat` as they were in forward_train: neither may change in between. Runs without autograd on any device.
  Scores forward_train(const at::Tensor& flat, const at::Tensor& x, ForwardCache& cache) const;
  /// `on_ready(e)`, when given, is called once per layout entry e as soon as its slice of `grad` is final, in reverse
  /// registration order (the data-parallel reducer's hook: dist/reducer.h).
  void backward(const at::Tensor& flat, ForwardCache& cache, const at::Tensor& d_r, const at::Tensor& d_c,
                at::Tensor& grad, const std::function<void(size_t)>& on_ready = {}) const;

  /// Saves the parameters by name (param_file.h); load() fills this net's flat() from such a file and throws
  /// DataError naming the parameter when a name is missing, extra, or has another shape.
  void save(const std::string& path) const;
  void load(const std::string& path);

 private:
  struct Layer {
    size_t weight = 0, bias = 0;  // layout entries
    int64_t stacks = 1;           // 1 (shared trunk layer) or K (one per head)
    int64_t in = 0, out = 0;      // `in` excludes the arm column
    bool arm_column = false;
    bool hidden = true;  // activation after it (all but the output layer)
  };
  void add_layer(const std::string& name, int64_t stacks, int64_t in, int64_t out, bool arm_column, bool hidden);
  /// Layer l's output as the next layer reads it, from its buffer `base` (see forward_train in the .cpp).
  at::Tensor layer_view(size_t l, const at::Tensor& base, int64_t B) const;
  /// The training path on the CPU kernels (float32 dense chains; see the .cpp).
  void forward_dense(const at::Tensor& flat, ForwardCache& cache) const;
  void backward_dense(const at::Tensor& flat, ForwardCache& cache, const at::Tensor& d_r, const at::Tensor& d_c,
                      at::Tensor& grad, const std::function<void(size_t)>& on_ready) const;

  UpliftNetConfig cfg_;
  Activation act_;
  OutputTransform revenue_out_, cost_out_;
  ParamLayout layout_;
  std::vector<Layer> layers_;
  bool dense_chain_ = false;  // every layer dense on a (B, in) input, relu or leaky_relu: the CPU kernels apply
  at::Tensor flat_;
};

}  // namespace dfcl::model
