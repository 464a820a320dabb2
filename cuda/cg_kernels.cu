// \brief Conjugate-gradient vector kernels (see cg_kernels.h).
#include "bilevel/cg_rows.h"  // for rows::cg_update, rows::cg_direction (the CPU recurrence's row functions)
#include "cuda/cg_kernels.h"
#include "cuda/reduce.cuh"    // for block_sum, reduced_launch, DFCL_CUDA_TRY

namespace dfcl::cuda {
namespace {

template <class T>
__global__ void update_kernel(T alpha, const T* p, const T* ap, T* x, T* r, int64_t n, double* partial) {
  __shared__ double shared[detail::kThreads];
  double v = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    v += bilevel::rows::cg_update<T>(alpha, p[i], ap[i], x[i], r[i]);
  v = detail::block_sum(v, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = v;
}

template <class T>
__global__ void direction_kernel(T beta, const T* r, T* p, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    bilevel::rows::cg_direction<T>(beta, r[i], p[i]);
}

}  // namespace

template <class T>
bool cg_update(double alpha, const T* p, const T* ap, T* x, T* r, int64_t n, double* rr_host, void* stream,
               std::string* why) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  return detail::reduced_launch(n, 1, false, st, rr_host, nullptr, why, [&](int blocks, double* q) {
    update_kernel<T><<<blocks, detail::kThreads, 0, st>>>(T(alpha), p, ap, x, r, n, q);
  });
}

template <class T>
bool cg_direction(double beta, const T* r, T* p, int64_t n, void* stream, std::string* why) {
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  direction_kernel<T><<<detail::blocks_for(n), detail::kThreads, 0, st>>>(T(beta), r, p, n);
  DFCL_CUDA_TRY(cudaGetLastError());
  return true;
}

template bool cg_update<float>(double, const float*, const float*, float*, float*, int64_t, double*, void*,
                               std::string*);
template bool cg_update<double>(double, const double*, const double*, double*, double*, int64_t, double*, void*,
                                std::string*);
template bool cg_direction<float>(double, const float*, float*, int64_t, void*, std::string*);
template bool cg_direction<double>(double, const double*, double*, int64_t, void*, std::string*);

}  // namespace dfcl::cuda
