// \brief Bi-DFCL lower-level kernels (see lower_kernels.h).
#include "bilevel/lower_rows.h"  // for rows::lower_cell, rows::gate_cotangent_cell
#include "cuda/lower_kernels.h"
#include "cuda/reduce.cuh"       // for block_sum, reduced_launch, DFCL_CUDA_TRY

namespace dfcl::cuda {
namespace {

template <class T>
__global__ void lower_kernel(const T* yhat, const T* y, const T* omega, int64_t n, int m, T kappa, T* d_r, T* d_c,
                             double* partial) {
  __shared__ double shared[detail::kThreads];
  double v = 0;
  const int64_t cells = n * 2 * m;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < cells; c += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = c / (2 * m);
    const int j = int(c - i * 2 * m);
    T& d = j < m ? d_r[i * m + j] : d_c[i * m + j - m];
    v += bilevel::rows::lower_cell<T>(yhat[c], y[c], omega[c], kappa, d);
  }
  v = detail::block_sum(v, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = v;
}

template <class T>
__global__ void cotangent_kernel(bool cf, const T* yhat, const T* y, const T* omega, const T* factual, const T* weight,
                                 const T* u, const T* teacher, const T* snapshot, int64_t n, int m, T kappa, T* q) {
  const int64_t cells = n * 2 * m;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < cells; c += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = c / (2 * m);
    q[c] = bilevel::rows::gate_cotangent_cell<T>(cf, factual[c] != T(0), yhat[c], y[c], omega[c], weight[i], u[c],
                                                 cf ? teacher[c] : T(0), cf ? snapshot[c] : T(0), kappa);
  }
}

}  // namespace

template <class T>
bool lower_value_and_grad(const T* yhat, const T* y, const T* omega, int64_t n, int m, double kappa, T* d_r, T* d_c,
                          double* value, void* stream, std::string* why) {
  if (n <= 0 || m < 1) return n == 0;
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  return detail::reduced_launch(n * 2 * m, 1, false, st, nullptr, value, why, [&](int blocks, double* p) {
    lower_kernel<T><<<blocks, detail::kThreads, 0, st>>>(yhat, y, omega, n, m, T(kappa), d_r, d_c, p);
  });
}

template <class T>
bool gate_cotangent(bool counterfactual, const T* yhat, const T* y, const T* omega, const T* factual, const T* weight,
                    const T* u, const T* teacher, const T* snapshot, int64_t n, int m, double kappa, T* q,
                    void* stream, std::string* why) {
  if (n <= 0 || m < 1) return n == 0;
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  cotangent_kernel<T><<<detail::blocks_for(n * 2 * m), detail::kThreads, 0, st>>>(
      counterfactual, yhat, y, omega, factual, weight, u, teacher, snapshot, n, m, T(kappa), q);
  DFCL_CUDA_TRY(cudaGetLastError());
  return true;
}

#define DFCL_LOWER_KERNELS(T)                                                                                       \
  template bool lower_value_and_grad<T>(const T*, const T*, const T*, int64_t, int, double, T*, T*, double*, void*, \
                                        std::string*);                                                             \
  template bool gate_cotangent<T>(bool, const T*, const T*, const T*, const T*, const T*, const T*, const T*,       \
                                  const T*, int64_t, int, double, T*, void*, std::string*);
DFCL_LOWER_KERNELS(float)
DFCL_LOWER_KERNELS(double)

}  // namespace dfcl::cuda
