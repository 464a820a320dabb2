// \brief The K-section λ* search on the device (see lambda_kernels.h).
#include "cuda/lambda_kernels.h"
#include "cuda/reduce.cuh"  // for block_sum, block_max, reduced_launch
#include "solver/hull.h"    // for kMaxArms

namespace dfcl::cuda {
namespace {

struct Candidates {
  double lambda[kMaxCandidates];
  int k;
};

// Partials: blocks x 2K, each block's sums of rev (k) and cost (K + k).
template <class T>
__global__ void ksection_kernel(const T* r, const T* c, int64_t n, int m, const int64_t* t, const T* u, const T* y_r,
                                const T* y_c, Candidates cand, double* partial) {
  __shared__ double shared[detail::kThreads];
  double rev[kMaxCandidates], cost[kMaxCandidates];
  for (int k = 0; k < cand.k; ++k) rev[k] = 0, cost[k] = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    solver::ksection_row(r + i * m, c + i * m, m, int(t[i]), double(u[i]), double(y_r[i]), double(y_c[i]),
                         cand.lambda, cand.k, rev, cost);
  const int values = 2 * cand.k;
  for (int k = 0; k < cand.k; ++k) {
    const double a = detail::block_sum(rev[k], shared);
    const double b = detail::block_sum(cost[k], shared);
    if (threadIdx.x == 0) partial[int64_t(blockIdx.x) * values + k] = a, partial[int64_t(blockIdx.x) * values + cand.k + k] = b;
  }
}

template <class T>
__global__ void ratio_max_kernel(const T* r, const T* c, int64_t n, int m, const T* u, double* partial) {
  __shared__ double shared[detail::kThreads];
  double v = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    if (!(u[i] > T(0))) continue;
    for (int j = 0; j < m; ++j) {
      const double cj = double(c[i * m + j]);
      if (cj > 0) {
        const double q = double(r[i * m + j]) / cj;
        v = q > v ? q : v;
      }
    }
  }
  v = detail::block_max(v, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = v;
}

bool check(int64_t n, int m, int k, std::string* why) {
  if (m < 1 || m > solver::kMaxArms || n < 0 || k < 1 || k > kMaxCandidates) {
    if (why) *why = "lambda search: arms must lie in [1, 64], candidates in [1, 64], rows >= 0";
    return false;
  }
  return true;
}

}  // namespace

template <class T>
bool ksection_pass(const T* r, const T* c, int64_t n, int m, const int64_t* t, const T* u, const T* y_r, const T* y_c,
                   const double* lambdas_host, int k_count, double* sums_host, void* stream, std::string* why) {
  if (!check(n, m, k_count, why)) return false;
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  Candidates cand{};
  cand.k = k_count;
  for (int k = 0; k < k_count; ++k) cand.lambda[k] = lambdas_host[k];
  return detail::reduced_launch(n, 2 * k_count, false, st, sums_host, nullptr, why, [&](int blocks, double* p) {
    ksection_kernel<T><<<blocks, detail::kThreads, 0, st>>>(r, c, n, m, t, u, y_r, y_c, cand, p);
  });
}

template <class T>
bool ratio_max(const T* r, const T* c, int64_t n, int m, const T* u, double* max_host, void* stream, std::string* why) {
  if (!check(n, m, 1, why)) return false;
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  return detail::reduced_launch(n, 1, true, st, max_host, nullptr, why, [&](int blocks, double* p) {
    ratio_max_kernel<T><<<blocks, detail::kThreads, 0, st>>>(r, c, n, m, u, p);
  });
}

template <class T>
bool primal_lambda(const T* r, const T* c, int64_t n, int m, const int64_t* t, const T* u, const T* y_r,
                   const T* y_c, double total_weight, double budget, int k_count, int halvings, double eps_rel,
                   const Reduce& reduce_sum, const Reduce& reduce_max, solver::KSectionResult* out, void* stream,
                   std::string* why) {
  std::vector<double> hi(1, 0.0);
  if (!ratio_max(r, c, n, m, u, hi.data(), stream, why)) return false;
  if (reduce_max) reduce_max(hi);
  bool ok = true;
  auto eval = [&](const std::vector<double>& lam, std::vector<double>& rev, std::vector<double>& cost) {
    const int K = int(lam.size());
    std::vector<double> sums(2 * K, 0.0);
    if (ok) ok = ksection_pass(r, c, n, m, t, u, y_r, y_c, lam.data(), K, sums.data(), stream, why);
    if (reduce_sum) reduce_sum(sums);  // every rank makes the same calls, even after a local failure
    for (int k = 0; k < K; ++k)
      rev[k] = total_weight > 0 ? sums[k] / total_weight : 0.0, cost[k] = total_weight > 0 ? sums[K + k] / total_weight : 0.0;
  };
  const int k = k_count < 1 ? 1 : (k_count > kMaxCandidates ? kMaxCandidates : k_count);
  *out = solver::ksection_search(eval, hi[0], budget, k, solver::ksection_passes(k, halvings), eps_rel);
  return ok;
}

#define DFCL_LAMBDA_KERNELS(T)                                                                                      \
  template bool ksection_pass<T>(const T*, const T*, int64_t, int, const int64_t*, const T*, const T*, const T*,   \
                                 const double*, int, double*, void*, std::string*);                                \
  template bool ratio_max<T>(const T*, const T*, int64_t, int, const T*, double*, void*, std::string*);            \
  template bool primal_lambda<T>(const T*, const T*, int64_t, int, const int64_t*, const T*, const T*, const T*,   \
                                 double, double, int, int, double, const Reduce&, const Reduce&,                   \
                                 solver::KSectionResult*, void*, std::string*);
DFCL_LAMBDA_KERNELS(float)
DFCL_LAMBDA_KERNELS(double)

}  // namespace dfcl::cuda
