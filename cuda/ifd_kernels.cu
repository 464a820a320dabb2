// \brief The IFD estimator's kernels (see ifd_kernels.h).
#include "cuda/ifd_kernels.h"
#include "cuda/reduce.cuh"  // for block_sum, block_max, reduced_launch, Scratch, DFCL_CUDA_TRY

namespace dfcl::cuda {
namespace {

using loss::rows::IfdRowSettings;
using loss::rows::IfdRowState;

// Pass 1: matched, and per block the matched rows' Σu, Σu y^r, Σu y^c.
template <class T>
__global__ void matched_kernel(const T* r, const T* c, int64_t n, int m, const int64_t* t, const double* u,
                               const double* y_r, const double* y_c, double lambda, uint8_t* matched,
                               double* partial) {
  __shared__ double shared[detail::kThreads];
  double s0 = 0, s1 = 0, s2 = 0;
  IfdRowState s;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    loss::rows::ifd_row_state(r + i * m, c + i * m, 1, m, int(t[i]), lambda, s);
    matched[i] = s.matched;
    if (s.matched) s0 += u[i], s1 += u[i] * y_r[i], s2 += u[i] * y_c[i];
  }
  s0 = detail::block_sum(s0, shared), s1 = detail::block_sum(s1, shared), s2 = detail::block_sum(s2, shared);
  if (threadIdx.x == 0) partial[blockIdx.x * 3] = s0, partial[blockIdx.x * 3 + 1] = s1, partial[blockIdx.x * 3 + 2] = s2;
}

// Pass 2: ΔQ, the raw perturbations (n x width) and their other arm, and per block each matrix's max |δ|.
template <class T>
__global__ void deltas_kernel(const T* r, const T* c, int64_t n, int m, const int64_t* t, const double* u,
                              const double* y_r, const double* y_c, IfdRowSettings o, double* dq, double* raw,
                              int* other, double* partial) {
  __shared__ double shared[detail::kThreads];
  const int width = o.score ? m : 4;
  double mx[2] = {0, 0};
  IfdRowState s;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    loss::rows::ifd_row_state(r + i * m, c + i * m, 1, m, int(t[i]), o.lambda, s);
    dq[i] = loss::rows::ifd_row_dq(s, u[i], y_r[i], y_c[i], o);
    double* d = raw + i * width;
    loss::rows::ifd_row_deltas(s, m, int(t[i]), u[i], o, d, other + i);
    for (int j = 0; j < width; ++j) {
      const double a = d[j] < 0 ? -d[j] : d[j];
      double& x = mx[o.score ? 0 : j / 2];
      x = a > x ? a : x;
    }
  }
  mx[0] = detail::block_max(mx[0], shared), mx[1] = detail::block_max(mx[1], shared);
  if (threadIdx.x == 0) partial[blockIdx.x * 2] = mx[0], partial[blockIdx.x * 2 + 1] = mx[1];
}

// Pass 3: the clip and G = ΔQ/δ into the n x m tables (zeroed beforehand).
__global__ void clip_kernel(int64_t n, int m, const int64_t* t, IfdRowSettings o, const double* dq, const double* raw,
                            const int* other, double max_1, double max_2, IfdOutputs out) {
  const int width = o.score ? m : 4;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const double* d = raw + i * width;
    if (o.score) {
      for (int j = 0; j < m; ++j)
        loss::rows::ifd_clip(d[j], dq[i], o, max_1, out.delta_1[i * m + j], out.g_1[i * m + j]);
      continue;
    }
    const int cols[2] = {int(t[i]), other[i]};
    for (int q = 0; q < 2; ++q) {
      loss::rows::ifd_clip(d[q], dq[i], o, max_1, out.delta_1[i * m + cols[q]], out.g_1[i * m + cols[q]]);
      loss::rows::ifd_clip(d[2 + q], dq[i], o, max_2, out.delta_2[i * m + cols[q]], out.g_2[i * m + cols[q]]);
    }
  }
}

}  // namespace

template <class T>
bool ifd_estimate(const T* r, const T* c, int64_t n, int m, const int64_t* t, const double* u, const double* y_r,
                  const double* y_c, IfdRowSettings o, const std::function<void(std::vector<double>&)>& reduce_sum,
                  const std::function<void(std::vector<double>&)>& reduce_max, const IfdOutputs& out, void* stream,
                  std::string* why) {
  if (m < 2 || m > 64 || n < 0) {
    if (why) *why = "IFD: arms must lie in [2, 64]";
    return false;
  }
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const int blocks = detail::blocks_for(n), width = o.score ? m : 4;
  cudaError_t err;
  detail::Scratch scratch(sizeof(double) * size_t(n) * width + sizeof(int) * size_t(n) + 8, st, &err);
  DFCL_CUDA_TRY(err);
  double* raw = static_cast<double*>(scratch.p);
  int* other = reinterpret_cast<int*>(raw + size_t(n) * width);
  // Pass 1 (its sums always reach the host, so every rank makes the same reduction calls as the CPU path).
  std::vector<double> sums(3, 0.0);
  if (!detail::reduced_launch(n, 3, false, st, sums.data(), nullptr, why, [&](int b, double* p) {
        matched_kernel<T><<<b, detail::kThreads, 0, st>>>(r, c, n, m, t, u, y_r, y_c, o.lambda, out.matched, p);
      }))
    return false;
  if (o.self) {
    if (reduce_sum) reduce_sum(sums);
    o.w = sums[0], o.rbar = sums[0] > 0 ? sums[1] / sums[0] : 0.0, o.cbar = sums[0] > 0 ? sums[2] / sums[0] : 0.0;
  }
  // Pass 2.
  double mx[2] = {0, 0};
  if (!detail::reduced_launch(n, 2, true, st, mx, nullptr, why, [&](int b, double* p) {
        deltas_kernel<T><<<b, detail::kThreads, 0, st>>>(r, c, n, m, t, u, y_r, y_c, o, out.dq, raw, other, p);
      }))
    return false;
  std::vector<double> maxima(mx, mx + (o.score ? 1 : 2));
  if (o.clip == 3 && reduce_max) reduce_max(maxima);
  // Pass 3.
  const size_t table = sizeof(double) * size_t(n) * m;
  for (double* p : {out.delta_1, out.g_1, o.score ? nullptr : out.delta_2, o.score ? nullptr : out.g_2})
    if (p) DFCL_CUDA_TRY(cudaMemsetAsync(p, 0, table, st));
  if (n > 0) {
    clip_kernel<<<blocks, detail::kThreads, 0, st>>>(n, m, t, o, out.dq, raw, other, maxima[0],
                                                     maxima.size() > 1 ? maxima[1] : 0.0, out);
    DFCL_CUDA_TRY(cudaGetLastError());
  }
  DFCL_CUDA_TRY(cudaStreamSynchronize(st));  // the scratch is freed on return
  return true;
}

template bool ifd_estimate<float>(const float*, const float*, int64_t, int, const int64_t*, const double*,
                                  const double*, const double*, IfdRowSettings,
                                  const std::function<void(std::vector<double>&)>&,
                                  const std::function<void(std::vector<double>&)>&, const IfdOutputs&, void*,
                                  std::string*);
template bool ifd_estimate<double>(const double*, const double*, int64_t, int, const int64_t*, const double*,
                                   const double*, const double*, IfdRowSettings,
                                   const std::function<void(std::vector<double>&)>&,
                                   const std::function<void(std::vector<double>&)>&, const IfdOutputs&, void*,
                                   std::string*);

}  // namespace dfcl::cuda
