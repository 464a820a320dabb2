// \brief Fused dense-chain CPU kernels (dense_cpu.h): AVX2 + FMA micro-kernels with fused epilogues, the forward
// and backward of one row tile through a chain, and the tiles' dynamic schedule on ATen's intra-op threads.
//
// This file is compiled with the compiler's OpenMP flag (src/CMakeLists.txt): with OpenMP ATen, at::parallel_for's
// parallel region lives in its header (ATen/ParallelOpenMP.h, LibTorch 1.13 and 2.x alike) and is compiled into the
// caller, so without the flag it would run the tiles on one thread.
#include "model/dense_cpu.h"

#include <ATen/Parallel.h>  // for at::parallel_for, at::get_num_threads, AT_PARALLEL_OPENMP

#include <algorithm>  // for std::min, std::max, std::fill_n
#include <atomic>     // for std::atomic
#include <vector>     // for std::vector

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>  // for the AVX2 intrinsics
#define DFCL_DENSE_AVX2 1
#endif

#if AT_PARALLEL_OPENMP && !defined(_OPENMP)
#include "core/parallel.h"  // for parallel_for (the fallback when this file was built without OpenMP)
#endif

namespace dfcl::model::dense {

bool supported() {
#ifdef DFCL_DENSE_AVX2
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
#else
  return false;
#endif
}

namespace {
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

// Forward of one tile: every layer's product with bias and activation, then the output transforms.
void forward_tile(const Chain& c, int64_t tile, float* scores) {
  const int64_t r0 = tile * kTile, rows = std::min(kTile, c.rows - r0);
  EpArgs e;
  e.slope = c.slope;
  for (size_t l = 0; l < c.n; ++l) {
    const Layer& s = c.layers[l];
    EpArgs el = e;
    el.bias = s.bias, el.act = s.act;
    gemm<Ep::kBiasAct>(rows, s.out, s.in, s.input + r0 * s.in, s.in, 1, s.wt, s.out, s.output + r0 * s.out, s.out, el);
  }
  const Layer& last = c.layers[c.n - 1];
  if (scores) output_transform(rows, last.out, c.sigmoid_columns, last.output + r0 * last.out, scores + r0 * last.out);
}

// What backward's tiles share: the incoming gradient, each layer's offset in the flat gradient, the buffers.
struct Backward {
  const float *d_r = nullptr, *d_c = nullptr, *scores = nullptr, *dlogits = nullptr;
  std::vector<int64_t> offset;     // per layer: dL/dW at offset[l], dL/db at offset[l] + out * in
  int64_t total = 0, scratch = 0;  // floats per worker: flat gradient, scratch
  float *acc = nullptr, *scratch_p = nullptr;
};

// Backward of one tile, summing into worker `slot`'s gradient: dL/dlogits, then per layer from the last the weight
// gradient (dz^T a), the bias gradient (column sums of dz) and dz of the layer below (dz W masked by the
// activation's derivative, read from that layer's output).
void backward_tile(const Chain& c, const Backward& b, int64_t tile, int64_t slot) {
  const int64_t r0 = tile * kTile, rows = std::min(kTile, c.rows - r0);
  const int64_t K = c.layers[c.n - 1].out, M = K / 2;
  float* g = b.acc + slot * b.total;
  float* buf[2] = {b.scratch_p + slot * b.scratch, b.scratch_p + slot * b.scratch + b.scratch / 2};
  const float* dz;  // dL/d(pre-activation output) of the layer, rows of this tile
  if (b.d_r) {
    output_transform_backward(rows, M, c.sigmoid_columns, b.d_r + r0 * M, b.d_c + r0 * M, b.scores + r0 * K, buf[1]);
    dz = buf[1];
  } else {
    dz = b.dlogits + r0 * K;
  }
  EpArgs mask;
  mask.slope = c.slope;
  int64_t ld = K;
  for (size_t l = c.n; l-- > 0;) {
    const Layer& s = c.layers[l];
    const int64_t w_off = b.offset[l], b_off = w_off + s.out * s.in;
    gemm<Ep::kAccumulate>(s.out, s.in, rows, dz, 1, ld, s.input + r0 * s.in, s.in, g + w_off, s.in, mask);
    column_sums(rows, s.out, dz, ld, g + b_off);
    if (l == 0) break;
    EpArgs m = mask;
    m.saved = s.input + r0 * s.in, m.lds = s.in;  // layer l's input is layer l - 1's output
    float* next = dz == buf[0] ? buf[1] : buf[0];
    gemm<Ep::kMask>(rows, s.in, s.out, dz, ld, 1, s.w, s.in, next, s.in, m);
    dz = next, ld = s.in;
  }
}

// Runs body(tile, slot) for every tile of `rows` on up to `workers` threads (slot < workers), dynamically
// scheduled: each worker takes the next tile from a shared counter. body must not throw.
template <class Fn>
void for_tiles(int64_t rows, int workers, const Fn& body) {
  const int64_t tiles = (rows + kTile - 1) / kTile;
  const int t = int(std::min<int64_t>(std::max(workers, 1), tiles));
  if (t <= 1) {
    for (int64_t tile = 0; tile < tiles; ++tile) body(tile, 0);
    return;
  }
  std::atomic<int64_t> next{0};
  auto work = [&](int64_t slot) {
    for (int64_t tile; (tile = next.fetch_add(1, std::memory_order_relaxed)) < tiles;) body(tile, slot);
  };
#if AT_PARALLEL_OPENMP && !defined(_OPENMP)
  parallel_for(t, t, work);  // our own threads: at::parallel_for would be serial in this build
#else
  // One index per worker (grain 1): each call gets a distinct `begin` < t, its slot. Nested in another parallel
  // region, at::parallel_for calls once with [0, t): slot 0 then takes every tile.
  at::parallel_for(0, t, 1, [&](int64_t begin, int64_t) { work(begin); });
#endif
}
}  // namespace

int threads(int64_t rows) {
  const int64_t tiles = (rows + kTile - 1) / kTile;
  return int(std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), tiles)));
}

void forward(const Chain& chain, float* scores) {
  for_tiles(chain.rows, at::get_num_threads(), [&](int64_t tile, int64_t) { forward_tile(chain, tile, scores); });
}

int64_t grad_size(const Chain& chain) {
  int64_t total = 0;
  for (size_t l = 0; l < chain.n; ++l) total += chain.layers[l].out * chain.layers[l].in + chain.layers[l].out;
  return total;
}

int64_t scratch_size(const Chain& chain) {
  int64_t widest = chain.layers[chain.n - 1].out;
  for (size_t l = 0; l < chain.n; ++l) widest = std::max(widest, chain.layers[l].in);
  return 2 * kTile * widest;
}

void backward(const Chain& chain, const float* d_r, const float* d_c, const float* scores, const float* dlogits,
              int workers, float* grad_acc, float* scratch) {
  Backward b;
  b.d_r = d_r, b.d_c = d_c, b.scores = scores, b.dlogits = dlogits;
  b.total = grad_size(chain), b.scratch = scratch_size(chain), b.acc = grad_acc, b.scratch_p = scratch;
  b.offset.resize(chain.n);
  for (size_t l = 0, off = 0; l < chain.n; ++l) {
    b.offset[l] = int64_t(off);
    off += size_t(chain.layers[l].out * chain.layers[l].in + chain.layers[l].out);
  }
  std::fill_n(grad_acc, size_t(workers) * size_t(b.total), 0.f);
  for_tiles(chain.rows, workers, [&](int64_t tile, int64_t slot) { backward_tile(chain, b, tile, slot); });
}

}  // namespace dfcl::model::dense
