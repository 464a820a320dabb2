// \brief Grid-stride kernels around loss/rows.h's row functions (see loss_kernels.h).
#include "cuda/loss_kernels.h"
#include "cuda/reduce.cuh"  // for block_sum, reduced_launch
#include "solver/hull.h"    // for kMaxArms

namespace dfcl::cuda {
namespace {

template <class T>
__global__ void softmax_policy_kernel(DeviceScores<T> s, const int64_t* t, const T* gain, T lambda, T tau, T* d_r,
                                      T* d_c, double* partial) {
  __shared__ double shared[detail::kThreads];
  double v = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < s.n; i += int64_t(gridDim.x) * blockDim.x) {
    if (gain[i] == T(0)) continue;
    v += loss::rows::softmax_policy_row<T>(s.r + i * s.r_stride, s.c + i * s.c_stride, 1, s.m, int(t[i]), lambda, tau,
                                           gain[i], d_r + i * s.m, d_c ? d_c + i * s.m : nullptr);
  }
  v = detail::block_sum(v, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = v;
}

template <class T>
__global__ void factual_kernel(loss::rows::FactualRow f, DeviceScores<T> s, const int64_t* t, const T* y_r,
                               const T* y_c, const T* w, const T* arm_scale, T* d_r, T* d_c, double* partial,
                               int* bad) {
  __shared__ double shared[detail::kThreads];
  double v = 0;
  int b = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < s.n; i += int64_t(gridDim.x) * blockDim.x) {
    const int j = int(t[i]);
    v += loss::rows::factual_row<T>(f, s.r + i * s.r_stride, s.c + i * s.c_stride, 1, j, y_r[i], y_c[i],
                                    w[i] * arm_scale[j], d_r + i * s.m, d_c + i * s.m, b);
  }
  if (b) atomicOr(bad, b);
  v = detail::block_sum(v, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = v;
}

template <class T>
__global__ void dhcl_kernel(bool sigmoid, DeviceScores<T> s, const int64_t* t, const T* y_r, const T* y_c, const T* ca,
                            const T* cb, double bound, T* d_r, double* partial) {
  __shared__ double shared[detail::kThreads];
  double v = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < s.n; i += int64_t(gridDim.x) * blockDim.x)
    v += loss::rows::dhcl_row<T>(sigmoid, s.r + i * s.r_stride, 1, s.m, int(t[i]), y_r[i], y_c[i], ca[i], cb[i], bound,
                                 d_r + i * s.m);
  v = detail::block_sum(v, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = v;
}

template <class T>
bool check(const DeviceScores<T>& s, std::string* why) {
  if (s.m < 1 || s.m > solver::kMaxArms || s.n < 0) {
    if (why) *why = "scores: arms must lie in [1, 64] and rows >= 0";
    return false;
  }
  return true;
}

}  // namespace

template <class T>
bool softmax_policy_term(const DeviceScores<T>& s, const int64_t* t, const T* gain, double lambda, double tau, T* d_r,
                         T* d_c, double* value, void* stream, std::string* why) {
  if (!check(s, why)) return false;
  if (s.n == 0) return true;
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  return detail::reduced_launch(s.n, 1, false, st, nullptr, value, why, [&](int blocks, double* p) {
    softmax_policy_kernel<T><<<blocks, detail::kThreads, 0, st>>>(s, t, gain, T(lambda), T(tau), d_r, d_c, p);
  });
}

template <class T>
bool factual_term(const loss::rows::FactualRow& f, const DeviceScores<T>& s, const int64_t* t, const T* y_r,
                  const T* y_c, const T* w, const T* arm_scale, T* d_r, T* d_c, double* value, int* bad, void* stream,
                  std::string* why) {
  if (!check(s, why)) return false;
  if (s.n == 0) return true;
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  return detail::reduced_launch(s.n, 1, false, st, nullptr, value, why, [&](int blocks, double* p) {
    factual_kernel<T><<<blocks, detail::kThreads, 0, st>>>(f, s, t, y_r, y_c, w, arm_scale, d_r, d_c, p, bad);
  });
}

template <class T>
bool dhcl_term(bool sigmoid, const DeviceScores<T>& s, const int64_t* t, const T* y_r, const T* y_c, const T* ca,
               const T* cb, double bound, T* d_r, double* value, void* stream, std::string* why) {
  if (!check(s, why)) return false;
  if (s.n == 0) return true;
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  return detail::reduced_launch(s.n, 1, false, st, nullptr, value, why, [&](int blocks, double* p) {
    dhcl_kernel<T><<<blocks, detail::kThreads, 0, st>>>(sigmoid, s, t, y_r, y_c, ca, cb, bound, d_r, p);
  });
}

#define DFCL_LOSS_KERNELS(T)                                                                                      \
  template bool softmax_policy_term<T>(const DeviceScores<T>&, const int64_t*, const T*, double, double, T*, T*, \
                                       double*, void*, std::string*);                                            \
  template bool factual_term<T>(const loss::rows::FactualRow&, const DeviceScores<T>&, const int64_t*, const T*, \
                                const T*, const T*, const T*, T*, T*, double*, int*, void*, std::string*); \
  template bool dhcl_term<T>(bool, const DeviceScores<T>&, const int64_t*, const T*, const T*, const T*, const T*, \
                             double, T*, double*, void*, std::string*);
DFCL_LOSS_KERNELS(float)
DFCL_LOSS_KERNELS(double)

}  // namespace dfcl::cuda
