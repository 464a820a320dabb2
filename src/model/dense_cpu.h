// \brief Fused dense-chain CPU kernels: the float32 training step of a chain of dense layers on plain arrays.
//
// A chain is y_l = act(y_{l-1} W_l^T + b_l) with relu or leaky_relu between layers and no activation on the last,
// whose columns are the logits (sigmoid or identity outputs). This is what the `criteo` preset and any shared trunk
// without head hidden layers reduce to (uplift_net.cpp builds the chain; the K heads of width 1 are one layer of
// width K). Like tiny-cuda-nn's fully fused MLP, each tile of kTile = 128 rows runs through every layer while its
// activations stay in L2, forward and backward, with bias, activation, its derivative, the sigmoid outputs and the
// bias gradient fused into the products (6 x 16 register blocks: 45-80 GFLOP/s per core where OpenBLAS runs these
// skinny products at 20-35).
//
// Dispatch: on x86-64 (gcc or clang) the kernels are compiled for AVX2 + FMA by function attribute and used when
// __builtin_cpu_supports reports both at run time (supported()); elsewhere supported() is false and the caller takes
// its ATen path. Numerics: float32 throughout; sums over the inputs of a layer run in order with FMA; the sigmoid is
// 1 / (1 + exp(-z)) with a Cephes-style expf (~1 ulp, z clamped to +-88.38). Gradients are summed per thread and
// the caller adds the threads' rows, so with more than one thread their rounding depends on which thread ran which
// tile (one thread: bitwise reproducible).
//
// Threads: the tiles of one call are scheduled dynamically (an atomic counter) over threads(rows) workers on ATen's
// intra-op pool, at::parallel_for: with OpenMP ATen that is ATen's own OpenMP team, so no second set of threads
// fights its spinning workers for the cores. One parallel region per forward and one per backward. (That region is
// compiled into dense_cpu.cpp, which src/CMakeLists.txt therefore builds with the OpenMP flag; without one the tiles
// run on std::threads.)
#pragma once
#include <cstddef>  // for size_t
#include <cstdint>  // for int64_t, int32_t

namespace dfcl::model::dense {

constexpr int64_t kTile = 128;  // rows per tile: a tile's activations stay in L2

/// Whether the kernels run on this CPU (x86-64 with AVX2 and FMA, checked once). Call nothing below when false.
bool supported();

/// One dense layer of a chain; matrices are row-major with `rows` (the chain's) rows.
struct Layer {
  int64_t in = 0, out = 0;
  const float* w = nullptr;      // out x in: the weight (read by backward)
  const float* wt = nullptr;     // in x out: its transpose (read by forward)
  const float* bias = nullptr;   // out (read by forward)
  const float* input = nullptr;  // rows x in: the chain's input, or the previous layer's output
  float* output = nullptr;       // rows x out: after the activation; the last layer's are the logits
  bool act = false;              // the activation follows (all layers but the last)
};

struct Chain {
  const Layer* layers = nullptr;
  size_t n = 0;
  int64_t rows = 0;
  float slope = 0;  // the activation: relu 0, leaky_relu its negative slope
  // Per logit column (K = the last layer's `out`): -1 where the output is the sigmoid, 0 where it is the identity.
  const int32_t* sigmoid_columns = nullptr;
};

/// The workers a call over `rows` uses: min(at::get_num_threads(), tiles), at least 1.
int threads(int64_t rows);

/// Forward: writes every layer's output and, when `scores` is non-null, the output transforms of the logits
/// (rows x K) into it.
void forward(const Chain& chain, float* scores);

/// Length of a chain's flat gradient: per layer dL/dW (out x in, row-major), then dL/db (out), in layer order.
int64_t grad_size(const Chain& chain);
/// Floats of scratch per worker: backward's input gradients of a tile.
int64_t scratch_size(const Chain& chain);

/// Backward from dL/d(outputs): either d_r and d_c (rows x K/2 each: the first and second half of the logit
/// columns) with the forward's `scores` (read in the sigmoid columns only), or, when d_r is null, dL/dlogits
/// (rows x K). Overwrites `grad_acc` (workers x grad_size) with each worker's sums: the gradient is the sum of its
/// rows. workers = threads(rows) of this chain; scratch holds workers x scratch_size floats. The layers' inputs and
/// outputs must be as forward left them.
void backward(const Chain& chain, const float* d_r, const float* d_c, const float* scores, const float* dlogits,
              int workers, float* grad_acc, float* scratch);

}  // namespace dfcl::model::dense
