// \brief UpliftNet: layout construction, deterministic init, the functional forward, the autograd-free training
// path (forward_train / backward, with CPU kernels for dense float32 chains), save/load by name.
#include "model/uplift_net.h"

#include <fmt/format.h>   // for fmt::format
#include <fmt/ranges.h>   // for fmt::join (its home since fmt 11)
#include <torch/torch.h>  // for at::addmm, at::baddbmm, torch::NoGradGuard

#include <atomic>       // for std::atomic
#include <cmath>        // for std::sqrt
#include <type_traits>  // for std::remove_reference_t

#if defined(__unix__)
#include <dlfcn.h>  // for dlsym (the OpenMP runtime's GOMP_parallel)
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>  // for the AVX2 kernels of the CPU training path
#define DFCL_DENSE_AVX2 1
#endif

#include "core/error.h"     // for DataError
#include "core/parallel.h"  // for parallel_for
#include "core/rng.h"       // for Rng

namespace dfcl::model {
namespace {
constexpr uint64_t kInitStream = 0x1417;  // Rng stream of parameter init; the entry index is the counter

std::string shape_str(at::IntArrayRef s) { return fmt::format("({})", fmt::join(s.vec(), ", ")); }

void check_inputs(int64_t params, int64_t features, const at::Tensor& flat, const at::Tensor& x) {
  if (flat.dim() != 1 || flat.size(0) != params)
    throw DataError(fmt::format("uplift net: parameter vector has shape {}, expected ({}) for this architecture",
                                shape_str(flat.sizes()), params));
  if (x.dim() != 2 || x.size(1) != features)
    throw DataError(
        fmt::format("uplift net: features have shape {}, expected (B, {}); the model was built for {} "
                    "features",
                    shape_str(x.sizes()), features, features));
}

// A buffer of the training path, reused from step to step: reallocated only when its shape, dtype or device change.
at::Tensor& ensure(at::Tensor& buf, at::IntArrayRef sizes, const at::TensorOptions& o) {
  if (!buf.defined() || buf.sizes() != sizes || buf.dtype() != o.dtype() || buf.device() != o.device())
    buf = at::empty(sizes, o);
  return buf;
}

// ---------------------------------------------------------------------------------------------------------------
// CPU kernels of the training path for float32 chains of dense layers (shared trunk, no head hidden layers, relu or
// leaky_relu: the `criteo` preset and its kin). OpenBLAS runs these skinny products (B x 12..64 by 12..64 x 10..64)
// at 20-35 GFLOP/s on one core and its threads neither scale nor share the cores well with ATen's; these kernels
// reach 45-80 GFLOP/s, fuse bias, activation and its derivative into the products, and run a step's row tiles on
// at::get_num_threads() threads with dynamic scheduling, two joins per step (forward, backward).
namespace dense {
constexpr int64_t kTile = 128;  // rows per tile: a tile's activations stay in L2

// Epilogues: forward (acc starts at the bias, then the activation), weight gradient (C += acc), input gradient
// (C = acc * act'(saved output)).
enum class Ep { kBiasAct, kAccumulate, kMask };
struct EpArgs {
  const float* bias = nullptr;   // kBiasAct: n values
  bool act = false;              // kBiasAct: apply the activation
  float slope = 0;               // relu: 0; leaky_relu: its negative slope
  const float* saved = nullptr;  // kMask: the activation's output, same shape as C
  int64_t lds = 0;
};

bool supported() {
#ifdef DFCL_DENSE_AVX2
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}

#ifdef DFCL_DENSE_AVX2
#define DFCL_AVX2 __attribute__((target("avx2,fma")))
// Eight floats at q; only the first lanes of `mask` when `masked` (then the rest are 0 and never read).
DFCL_AVX2 inline __m256 load8(const float* q, bool masked, __m256i mask) {
  return masked ? _mm256_maskload_ps(q, mask) : _mm256_loadu_ps(q);
}

// C[i, j] = epilogue(sum_p P[i*pi + p*pp] Q[p*ldq + j]) for i < MR, j < 8 NV; with TAIL the last 8 columns are
// masked (loads and stores). Accumulators stay in registers: MR x NV <= 12 ymm.
template <int MR, int NV, bool TAIL, Ep E>
DFCL_AVX2 inline void micro(int64_t K, const float* P, int64_t pi, int64_t pp, const float* Q, int64_t ldq, float* C,
                            int64_t ldc, __m256i mask, const EpArgs& e, int64_t i0, int64_t j0) {
  __m256 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      acc[i][v] = E == Ep::kBiasAct ? load8(e.bias + j0 + 8 * v, TAIL && v == NV - 1, mask) : _mm256_setzero_ps();
  for (int64_t p = 0; p < K; ++p) {
    __m256 q[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) q[v] = load8(Q + p * ldq + 8 * v, TAIL && v == NV - 1, mask);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 a = _mm256_broadcast_ss(P + i * pi + p * pp);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(a, q[v], acc[i][v]);
    }
  }
  const __m256 zero = _mm256_setzero_ps(), slope = _mm256_set1_ps(e.slope);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      float* c = C + i * ldc + 8 * v;
      __m256 r = acc[i][v];
      if (E == Ep::kBiasAct) {
        if (e.act) r = e.slope == 0 ? _mm256_max_ps(r, zero) : _mm256_max_ps(r, _mm256_mul_ps(r, slope));
      } else if (E == Ep::kAccumulate) {
        r = _mm256_add_ps(r, load8(c, TAIL && v == NV - 1, mask));
      } else {  // the activation's derivative from its output: 1 where it is > 0, else the slope
        const __m256 pos =
            _mm256_cmp_ps(load8(e.saved + (i0 + i) * e.lds + j0 + 8 * v, TAIL && v == NV - 1, mask), zero, _CMP_GT_OQ);
        r = _mm256_blendv_ps(_mm256_mul_ps(r, slope), r, pos);
      }
      if (TAIL && v == NV - 1)
        _mm256_maskstore_ps(c, mask, r);
      else
        _mm256_storeu_ps(c, r);
    }
}

template <int MR, Ep E>
DFCL_AVX2 void row_block(int64_t n, int64_t K, const float* P, int64_t pi, int64_t pp, const float* Q, int64_t ldq,
                         float* C, int64_t ldc, const EpArgs& e, int64_t i0) {
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    const int64_t r = n - j0;
    const int lanes = int(r >= 16 ? 8 : (r > 8 ? r - 8 : r));
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    if (r >= 16)
      micro<MR, 2, false, E>(K, P, pi, pp, Q + j0, ldq, C + j0, ldc, mask, e, i0, j0);
    else if (r > 8)
      micro<MR, 2, true, E>(K, P, pi, pp, Q + j0, ldq, C + j0, ldc, mask, e, i0, j0);
    else if (r == 8)
      micro<MR, 1, false, E>(K, P, pi, pp, Q + j0, ldq, C + j0, ldc, mask, e, i0, j0);
    else
      micro<MR, 1, true, E>(K, P, pi, pp, Q + j0, ldq, C + j0, ldc, mask, e, i0, j0);
  }
}

// C (m x n, row stride ldc) = epilogue(P Q): P is m x K with strides (pi, pp), Q is K x n with row stride ldq.
template <Ep E>
DFCL_AVX2 void gemm(int64_t m, int64_t n, int64_t K, const float* P, int64_t pi, int64_t pp, const float* Q,
                    int64_t ldq, float* C, int64_t ldc, const EpArgs& e) {
  int64_t i = 0;
  for (; i + 6 <= m; i += 6) row_block<6, E>(n, K, P + i * pi, pi, pp, Q, ldq, C + i * ldc, ldc, e, i);
  const float* Pi = P + i * pi;
  float* Ci = C + i * ldc;
  switch (m - i) {
    case 5:
      row_block<5, E>(n, K, Pi, pi, pp, Q, ldq, Ci, ldc, e, i);
      break;
    case 4:
      row_block<4, E>(n, K, Pi, pi, pp, Q, ldq, Ci, ldc, e, i);
      break;
    case 3:
      row_block<3, E>(n, K, Pi, pi, pp, Q, ldq, Ci, ldc, e, i);
      break;
    case 2:
      row_block<2, E>(n, K, Pi, pi, pp, Q, ldq, Ci, ldc, e, i);
      break;
    case 1:
      row_block<1, E>(n, K, Pi, pi, pp, Q, ldq, Ci, ldc, e, i);
      break;
    default:
      break;
  }
}

// acc[o] += sum_r dz[r*ld + o]: the bias gradient of a tile
DFCL_AVX2 void column_sums(int64_t rows, int64_t n, const float* dz, int64_t ld, float* acc) {
  for (int64_t j0 = 0; j0 < n; j0 += 8) {
    const bool masked = n - j0 < 8;
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n - j0)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t r = 0;
    for (; r + 2 <= rows; r += 2) {
      s0 = _mm256_add_ps(s0, load8(dz + r * ld + j0, masked, mask));
      s1 = _mm256_add_ps(s1, load8(dz + (r + 1) * ld + j0, masked, mask));
    }
    if (r < rows) s0 = _mm256_add_ps(s0, load8(dz + r * ld + j0, masked, mask));
    const __m256 sum = _mm256_add_ps(load8(acc + j0, masked, mask), _mm256_add_ps(s0, s1));
    if (masked)
      _mm256_maskstore_ps(acc + j0, mask, sum);
    else
      _mm256_storeu_ps(acc + j0, sum);
  }
}
// exp(x) in float32 (Cephes' expf: range reduction by ln 2 and a degree-5 polynomial, ~1 ulp; x clamped to
// [-88.38, 88.38]).
DFCL_AVX2 inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-88.3762626647949f)), _mm256_set1_ps(88.3762626647949f));
  const __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// Output transforms of a tile (rows x K, row stride K): s = sigmoid(z) in the columns flagged in `sig` (one flag
// per column, as 0 / -1 lanes), s = z elsewhere.
DFCL_AVX2 void output_transform(int64_t rows, int64_t K, const int32_t* sig, const float* z, float* s) {
  const __m256 one = _mm256_set1_ps(1.f);
  for (int64_t j0 = 0; j0 < K; j0 += 8) {
    const bool masked = K - j0 < 8;
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(K - j0)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256 use = _mm256_castsi256_ps(_mm256_maskload_epi32(sig + j0, mask));
    for (int64_t r = 0; r < rows; ++r) {
      const __m256 v = load8(z + r * K + j0, masked, mask);
      const __m256 sg = _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), v))));
      const __m256 out = _mm256_blendv_ps(v, sg, use);
      if (masked)
        _mm256_maskstore_ps(s + r * K + j0, mask, out);
      else
        _mm256_storeu_ps(s + r * K + j0, out);
    }
  }
}

// dL/dz of a tile from dL/ds (d_r: columns 0..M-1, d_c: M..K-1, row strides M) and s: d s (1 - s) in the sigmoid
// columns, d elsewhere; written to g (rows x K).
DFCL_AVX2 void output_transform_backward(int64_t rows, int64_t M, const int32_t* sig, const float* d_r,
                                         const float* d_c, const float* s, float* g) {
  const int64_t K = 2 * M;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < K; ++k) {
      const float d = k < M ? d_r[r * M + k] : d_c[r * M + k - M];
      const float v = s[r * K + k];
      g[r * K + k] = sig[k] ? d * ((1 - v) * v) : d;
    }
}
#undef DFCL_AVX2
#else
template <Ep E>
void gemm(int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*, int64_t, float*, int64_t,
          const EpArgs&) {}
void column_sums(int64_t, int64_t, const float*, int64_t, float*) {}
void output_transform(int64_t, int64_t, const int32_t*, const float*, float*) {}
void output_transform_backward(int64_t, int64_t, const int32_t*, const float*, const float*, const float*, float*) {}
#endif

// libgomp's entry point for `#pragma omp parallel` (this file is not compiled with -fopenmp), looked up at run time
// in the OpenMP runtime that LibTorch loaded; null without one. Running the tiles on ATen's own OpenMP team matters:
// after any ATen op that went parallel (a batch copy, an optimiser's sqrt) its idle workers spin for a while, and
// threads of our own would then fight them for the cores (measured: a step at batch 4096 took 2x longer).
using GompParallel = void (*)(void (*)(void*), void*, unsigned, unsigned);
GompParallel gomp_parallel() {
#if defined(__unix__)
  static const auto fn = reinterpret_cast<GompParallel>(dlsym(RTLD_DEFAULT, "GOMP_parallel"));
  return fn;
#else
  return nullptr;
#endif
}

// Runs body(tile, slot) for every tile of rows on up to `threads` threads (slot < threads), dynamically scheduled.
// body must not throw.
template <class Fn>
void for_tiles(int64_t rows, int threads, Fn&& body) {
  const int64_t tiles = (rows + kTile - 1) / kTile;
  const int t = int(std::min<int64_t>(std::max(threads, 1), tiles));
  if (t <= 1) {
    for (int64_t tile = 0; tile < tiles; ++tile) body(tile, 0);
    return;
  }
  struct Shared {
    std::remove_reference_t<Fn>* body;
    int64_t tiles;
    std::atomic<int64_t> next{0}, slots{0};
  } shared{&body, tiles};
  auto run = [](void* p) {
    auto& s = *static_cast<Shared*>(p);
    const int64_t slot = s.slots.fetch_add(1);
    for (int64_t tile; (tile = s.next.fetch_add(1)) < s.tiles;) (*s.body)(tile, slot);
  };
  if (GompParallel gomp = gomp_parallel())
    gomp(run, &shared, unsigned(t), 0);
  else
    parallel_for(t, t, [&](int64_t) { run(&shared); });
}
}  // namespace dense
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
  dense_chain_ = (act_ == Activation::kRelu || act_ == Activation::kLeakyRelu) && cfg_.head.empty() &&
                 (cfg_.shared_trunk || cfg_.trunk.empty());
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
  check_inputs(layout_.size(), cfg_.features, flat, x_in);
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

// The training path keeps each layer's output in one buffer ("base") per layer:
//   shared layer (stacks 1):                  (B, out)
//   stacked layer on a 2-D input ("wide"):    (B, K*out), one addmm for all K heads; the next layer reads it as
//                                             the strided view (K, B, out) (`stacked_view`), as logits() does
//   stacked layer on a (K, B, in) input:      (K, B, out), one baddbmm
// Gradient buffers have the same shapes, so an activation's derivative is one elementwise op over matching views.
// Layer l's input is 2-D exactly when l == 0 or layer l - 1 is shared.
Scores UpliftNet::forward_train(const at::Tensor& flat, const at::Tensor& x, ForwardCache& c) const {
  check_inputs(layout_.size(), cfg_.features, flat, x);
  torch::NoGradGuard no_grad;
  const int64_t B = x.size(0), K = cfg_.heads(), M = cfg_.arms;
  const size_t n = layers_.size();
  const at::TensorOptions o = flat.options();
  c.x = x.to(flat.scalar_type());
  c.z.resize(n), c.acts.resize(n), c.grads.resize(n), c.w_eff.resize(n);
  if (cfg_.arm_column) {
    at::Tensor& arm = ensure(c.arm, {K, 1}, o);
    arm.copy_(at::arange(K, o).remainder(M).unsqueeze(1));
  }
  c.dense = dense_chain_ && flat.scalar_type() == at::kFloat && flat.device().is_cpu() && flat.is_contiguous() &&
            dense::supported();
  c.dense_out = false;
  if (c.dense) {
    forward_dense(flat, c);
  } else {
    at::Tensor a = c.x;  // the layer's input: (B, in), or (K, B, in) one per head
    for (size_t l = 0; l < n; ++l) {
      const Layer& L = layers_[l];
      const bool keep_z = L.hidden && backward_needs_input(act_);
      at::Tensor W = layout_.view(flat, L.weight), b = layout_.view(flat, L.bias);
      if (L.arm_column) {
        // concat(a, j_k) W_k^T + b_k  ==  a W_k[:, :in]^T + (b_k + j_k W_k[:, in]); the narrowed weight is copied
        // once here and reused by backward.
        b = b + W.select(2, L.in) * c.arm;
        W = ensure(c.w_eff[l], {K, L.out, L.in}, o).copy_(W.narrow(2, 0, L.in));
      }
      at::Tensor y;  // pre-activation output, base layout
      if (L.stacks == 1) {
        y = ensure(keep_z ? c.z[l] : c.acts[l], {B, L.out}, o);
        at::addmm_out(y, b, a, W.t());
      } else if (a.dim() == 2) {
        y = ensure(keep_z ? c.z[l] : c.acts[l], {B, K * L.out}, o);
        at::addmm_out(y, b.reshape({K * L.out}), a, W.reshape({K * L.out, L.in}).t());
      } else {
        y = ensure(keep_z ? c.z[l] : c.acts[l], {K, B, L.out}, o);
        at::baddbmm_out(y, b.unsqueeze(1), a, W.transpose(1, 2));
      }
      if (L.hidden) {
        if (keep_z)
          apply_out(act_, ensure(c.acts[l], y.sizes(), o), y);
        else
          apply_out(act_, y, y);
      }
      a = layer_view(l, c.acts[l], B);
    }
    c.logits = a.dim() == 3 ? a.squeeze(2).t() : a;  // (B, K)
  }
  const at::Tensor zr = c.logits.narrow(1, 0, M), zc = c.logits.narrow(1, M, M);
  const bool id_r = revenue_out_ == OutputTransform::kIdentity, id_c = cost_out_ == OutputTransform::kIdentity;
  if (id_r && id_c) return {zr, zc};
  if (c.dense_out) return {id_r ? zr : c.scores.narrow(1, 0, M), id_c ? zc : c.scores.narrow(1, M, M)};
  at::Tensor& s = ensure(c.scores, {B, K}, o);
  if (revenue_out_ == cost_out_) {
    apply_out(revenue_out_, s, c.logits);
    return {s.narrow(1, 0, M), s.narrow(1, M, M)};
  }
  at::Tensor sr = s.narrow(1, 0, M), sc = s.narrow(1, M, M);
  if (!id_r) apply_out(revenue_out_, sr, zr);
  if (!id_c) apply_out(cost_out_, sc, zc);
  return {id_r ? zr : sr, id_c ? zc : sc};
}

// The dense chain on the CPU kernels: every layer is x W^T + b on a (B, in) input (the last one's K heads of width
// 1 are one layer of width K), so each tile of rows runs through all layers while it is in cache.
void UpliftNet::forward_dense(const at::Tensor& flat, ForwardCache& c) const {
  const int64_t B = c.x.size(0), K = cfg_.heads();
  const size_t n = layers_.size();
  const at::TensorOptions o = flat.options();
  c.x = c.x.contiguous();
  c.packed.resize(n), c.bias.resize(n);
  struct Step {
    int64_t in, out;
    const float *wt, *b, *a_in;
    float* a_out;
    bool act;
  };
  std::vector<Step> steps(n);
  for (size_t l = 0; l < n; ++l) {
    const Layer& L = layers_[l];
    const int64_t out = L.stacks == 1 ? L.out : K;
    at::Tensor W = layout_.view(flat, L.weight), b = layout_.view(flat, L.bias);
    if (L.arm_column) {
      b = b + W.select(2, L.in) * c.arm;
      W = ensure(c.w_eff[l], {K, L.out, L.in}, o).copy_(W.narrow(2, 0, L.in));
    }
    c.bias[l] = b.reshape({out}).contiguous();
    at::Tensor& wt = ensure(c.packed[l], {L.in, out}, o);
    wt.copy_(W.reshape({out, L.in}).t());
    ensure(c.acts[l], {B, out}, o);
    steps[l] = {L.in,
                out,
                wt.data_ptr<float>(),
                c.bias[l].data_ptr<float>(),
                (l == 0 ? c.x : c.acts[l - 1]).data_ptr<float>(),
                c.acts[l].data_ptr<float>(),
                L.hidden};
  }
  // Identity and sigmoid outputs are computed in the tiles too (softplus: by ATen in forward_train).
  const bool sig_r = revenue_out_ == OutputTransform::kSigmoid, sig_c = cost_out_ == OutputTransform::kSigmoid;
  c.dense_out = revenue_out_ != OutputTransform::kSoftplus && cost_out_ != OutputTransform::kSoftplus;
  c.sigmoid_columns.assign(size_t(K), 0);
  for (int64_t k = 0; k < K; ++k) c.sigmoid_columns[size_t(k)] = (k < K / 2 ? sig_r : sig_c) ? -1 : 0;
  float* scores = nullptr;
  if (c.dense_out && (sig_r || sig_c)) scores = ensure(c.scores, {B, K}, o).data_ptr<float>();
  dense::EpArgs e;
  e.slope = act_ == Activation::kLeakyRelu ? 0.01f : 0.f;
  dense::for_tiles(B, at::get_num_threads(), [&](int64_t tile, int64_t) {
    const int64_t r0 = tile * dense::kTile, rows = std::min(dense::kTile, B - r0);
    for (const Step& s : steps) {
      dense::EpArgs el = e;
      el.bias = s.b, el.act = s.act;
      dense::gemm<dense::Ep::kBiasAct>(rows, s.out, s.in, s.a_in + r0 * s.in, s.in, 1, s.wt, s.out,
                                       s.a_out + r0 * s.out, s.out, el);
    }
    if (scores)
      dense::output_transform(rows, K, c.sigmoid_columns.data(), steps.back().a_out + r0 * K, scores + r0 * K);
  });
  c.logits = c.acts.back();  // (B, K)
}

void UpliftNet::backward_dense(const at::Tensor& flat, ForwardCache& c, const at::Tensor& d_r, const at::Tensor& d_c,
                               at::Tensor& grad) const {
  const int64_t B = c.x.size(0), K = cfg_.heads();
  const size_t n = layers_.size();
  const at::TensorOptions o = flat.options();
  struct Step {
    int64_t in, out, w_off, b_off;
    const float *w, *a_in, *saved;  // saved: the previous layer's output (its activation's derivative)
  };
  std::vector<Step> steps(n);
  int64_t total = 0, widest = 0;
  for (size_t l = 0; l < n; ++l) {
    const Layer& L = layers_[l];
    const int64_t out = L.stacks == 1 ? L.out : K;
    const at::Tensor W = L.arm_column ? c.w_eff[l] : layout_.view(flat, L.weight);  // (out, in) in memory
    steps[l] = {L.in,
                out,
                total,
                total + out * L.in,
                W.data_ptr<float>(),
                (l == 0 ? c.x : c.acts[l - 1]).data_ptr<float>(),
                l == 0 ? nullptr : c.acts[l - 1].data_ptr<float>()};
    total += out * L.in + out;
    widest = std::max(widest, std::max(L.in, K));
  }
  // dL/dlogits: from d_r, d_c and the scores tile by tile (dense_out), or computed by ATen in backward().
  const bool transforms = c.dense_out;
  const at::Tensor dr = transforms ? d_r.to(at::kFloat).contiguous() : at::Tensor();
  const at::Tensor dc = transforms ? d_c.to(at::kFloat).contiguous() : at::Tensor();
  const float* scores =
      transforms && c.scores.defined() && c.scores.size(0) == B ? c.scores.data_ptr<float>() : nullptr;
  if (transforms && !scores) scores = c.logits.data_ptr<float>();  // identity outputs: no flag is set, s unused
  const int64_t M = cfg_.arms;
  const int64_t tiles = (B + dense::kTile - 1) / dense::kTile;
  const int threads = int(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), tiles)));
  at::Tensor& acc = ensure(c.grad_acc, {threads, total}, o);  // per-thread sums of dL/dW, dL/db
  acc.zero_();
  at::Tensor& scratch = ensure(c.scratch, {threads, 2, dense::kTile * widest}, o);
  float* acc_p = acc.data_ptr<float>();
  float* scratch_p = scratch.data_ptr<float>();
  const float* dlogits = transforms ? nullptr : c.grad_logits.data_ptr<float>();
  dense::EpArgs mask;
  mask.slope = act_ == Activation::kLeakyRelu ? 0.01f : 0.f;
  dense::for_tiles(B, threads, [&](int64_t tile, int64_t slot) {
    const int64_t r0 = tile * dense::kTile, rows = std::min(dense::kTile, B - r0);
    float* g = acc_p + slot * total;
    float* buf[2] = {scratch_p + slot * 2 * dense::kTile * widest, scratch_p + (slot * 2 + 1) * dense::kTile * widest};
    const float* dz;  // dL/d(pre-activation output) of the layer, rows of this tile
    if (transforms) {
      dense::output_transform_backward(rows, M, c.sigmoid_columns.data(), dr.data_ptr<float>() + r0 * M,
                                       dc.data_ptr<float>() + r0 * M, scores + r0 * K, buf[1]);
      dz = buf[1];
    } else {
      dz = dlogits + r0 * K;
    }
    int64_t ld = K;
    for (size_t l = n; l-- > 0;) {
      const Step& s = steps[l];
      dense::gemm<dense::Ep::kAccumulate>(s.out, s.in, rows, dz, 1, ld, s.a_in + r0 * s.in, s.in, g + s.w_off, s.in,
                                          mask);
      dense::column_sums(rows, s.out, dz, ld, g + s.b_off);
      if (l == 0) break;
      dense::EpArgs m = mask;
      m.saved = s.saved + r0 * s.in, m.lds = s.in;
      float* next = dz == buf[0] ? buf[1] : buf[0];
      dense::gemm<dense::Ep::kMask>(rows, s.in, s.out, dz, ld, 1, s.w, s.in, next, s.in, m);
      dz = next, ld = s.in;
    }
  });
  const at::Tensor sum = threads > 1 ? acc.sum(0) : acc[0];
  for (size_t l = 0; l < n; ++l) {
    const Layer& L = layers_[l];
    const Step& s = steps[l];
    at::Tensor gW = layout_.view(grad, L.weight), gb = layout_.view(grad, L.bias);
    const at::Tensor sw = sum.narrow(0, s.w_off, s.out * s.in), sb = sum.narrow(0, s.b_off, s.out);
    gb.copy_(sb.view(gb.sizes()));
    if (L.arm_column) {
      gW.narrow(2, 0, L.in).copy_(sw.view({K, 1, L.in}));
      at::Tensor col = gW.select(2, L.in);  // d/dW[:, :, in] = j_k dL/db_k
      at::mul_out(col, gb, c.arm);
    } else {
      gW.copy_(sw.view(gW.sizes()));
    }
  }
}

at::Tensor UpliftNet::layer_view(size_t l, const at::Tensor& base, int64_t B) const {
  const Layer& L = layers_[l];
  const bool wide = L.stacks > 1 && (l == 0 || layers_[l - 1].stacks == 1);
  if (!wide || l + 1 == layers_.size()) return base;
  return base.view({B, cfg_.heads(), L.out}).transpose(0, 1);  // (K, B, out), strided
}

void UpliftNet::backward(const at::Tensor& flat, ForwardCache& c, const at::Tensor& d_r, const at::Tensor& d_c,
                         at::Tensor& grad) const {
  const size_t n = layers_.size();
  if (!c.x.defined() || c.acts.size() != n || !c.logits.defined())
    throw DataError("uplift net: backward needs the cache of a forward_train call on this model");
  const int64_t B = c.x.size(0), K = cfg_.heads(), M = cfg_.arms;
  for (const at::Tensor* d : {&d_r, &d_c})
    if (!d->defined() || d->dim() != 2 || d->size(0) != B || d->size(1) != M)
      throw DataError(fmt::format("uplift net: backward needs d_r and d_c of shape ({}, {}), got {}", B, M,
                                  d->defined() ? shape_str(d->sizes()) : "none"));
  check_inputs(layout_.size(), cfg_.features, flat, c.x);
  torch::NoGradGuard no_grad;
  const at::TensorOptions o = flat.options();
  if (!grad.defined() || grad.sizes() != flat.sizes() || grad.dtype() != flat.dtype() || grad.device() != flat.device())
    grad = at::empty(flat.sizes(), o);

  if (c.dense && c.dense_out) {  // the kernels apply the output transforms' derivatives tile by tile
    backward_dense(flat, c, d_r, d_c, grad);
    return;
  }
  // Output transforms: dL/dlogits into the last layer's gradient buffer.
  at::Tensor& g_last = ensure(c.grads[n - 1], c.acts[n - 1].sizes(), o);
  c.grad_logits = g_last.dim() == 3 ? g_last.squeeze(2).t() : g_last;
  {
    at::Tensor gr = c.grad_logits.narrow(1, 0, M), gc = c.grad_logits.narrow(1, M, M);
    const bool has_s = c.scores.defined() && c.scores.size(0) == B;
    const at::Tensor zr = c.logits.narrow(1, 0, M), zc = c.logits.narrow(1, M, M);
    apply_backward_out(revenue_out_, gr, d_r, zr, has_s ? c.scores.narrow(1, 0, M) : zr);
    apply_backward_out(cost_out_, gc, d_c, zc, has_s ? c.scores.narrow(1, M, M) : zc);
  }

  if (c.dense) {
    backward_dense(flat, c, d_r, d_c, grad);
    return;
  }
  static const std::vector<int64_t> kRows{0}, kStackRows{1};  // the batch dimension: (B, out), (K, B, out)
  for (size_t l = n; l-- > 0;) {
    const Layer& L = layers_[l];
    const at::Tensor& dz = c.grads[l];  // dL/d(pre-activation output), base layout
    const at::Tensor a = l == 0 ? c.x : layer_view(l - 1, c.acts[l - 1], B);
    at::Tensor gW = layout_.view(grad, L.weight), gb = layout_.view(grad, L.bias);
    const at::Tensor W = L.arm_column ? c.w_eff[l] : layout_.view(flat, L.weight);  // without the arm column
    at::Tensor da;  // dL/d(previous layer's output), written straight into its gradient buffer
    if (l > 0) da = layer_view(l - 1, ensure(c.grads[l - 1], c.acts[l - 1].sizes(), o), B);
    if (L.stacks == 1) {
      at::mm_out(gW, dz.t(), a);
      at::sum_out(gb, dz, kRows);
      if (l > 0) at::mm_out(da, dz, W);
    } else if (a.dim() == 2) {
      at::Tensor gW2 = gW.view({K * L.out, L.in + (L.arm_column ? 1 : 0)}).narrow(1, 0, L.in);
      at::Tensor gb2 = gb.view({K * L.out});
      at::mm_out(gW2, dz.t(), a);
      at::sum_out(gb2, dz, kRows);
      if (l > 0) at::mm_out(da, dz, W.reshape({K * L.out, L.in}));
    } else {
      at::Tensor gW3 = gW.narrow(2, 0, L.in);
      at::bmm_out(gW3, dz.transpose(1, 2), a);
      at::sum_out(gb, dz, kStackRows);
      if (l > 0) at::bmm_out(da, dz, W);
    }
    if (L.arm_column) {
      at::Tensor col = gW.select(2, L.in);  // d/dW[:, :, in] = j_k dL/db_k
      at::mul_out(col, gb, c.arm);
    }
    if (l > 0) {
      const bool keep_z = backward_needs_input(act_);  // layer l - 1 is hidden
      apply_backward_(act_, da, layer_view(l - 1, keep_z ? c.z[l - 1] : c.acts[l - 1], B));
    }
  }
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
