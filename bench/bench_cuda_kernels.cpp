// \brief GPU kernel benchmarks (docs/benchmarks.md, issue 16), run by launch/gpu_check.sh on a lent GPU:
//   - the fused loss kernels' achieved memory bandwidth at N rows x 5 arms (float32), against the card's peak;
//   - λ* (K-section, K = 32) on 10M x 5 on the GPU against the same search on one CPU core (K = 1, bisection, the CPU
//     default, and K = 32), through the same row function.
// Prints one JSON object. Without a GPU it says why and exits 0 (a compile-and-link check in CI).
// Usage: dfcl_bench_cuda_kernels [--rows N] [--peak-gbs P] (P: the card's peak in GB/s; default 4800, an H200)
#include <cuda_runtime.h>  // for cudaEvent_t

#include <algorithm>  // for std::sort, std::max
#include <chrono>   // for steady_clock
#include <cstdio>   // for std::printf
#include <cstdlib>  // for std::atof, std::atoll
#include <cstring>  // for std::strcmp
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "core/rng.h"             // for Rng
#include "cuda/device.h"          // for devices
#include "cuda/lambda_kernels.h"  // for primal_lambda
#include "cuda/loss_kernels.h"    // for softmax_policy_term, factual_term
#include "solver/ksection.h"      // for ksection_row, ksection_search

using namespace dfcl;

namespace {

template <class T>
T* upload(const std::vector<T>& h) {
  T* p = nullptr;
  cudaMalloc(&p, sizeof(T) * h.size());
  cudaMemcpy(p, h.data(), sizeof(T) * h.size(), cudaMemcpyHostToDevice);
  return p;
}

// Median milliseconds of `reps` launches of f (after 3 warm-ups), by CUDA events.
template <class F>
double time_ms(F f, int reps = 20) {
  for (int i = 0; i < 3; ++i) f();
  std::vector<float> ms;
  cudaEvent_t a, b;
  cudaEventCreate(&a), cudaEventCreate(&b);
  for (int i = 0; i < reps; ++i) {
    cudaEventRecord(a);
    f();
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float x = 0;
    cudaEventElapsedTime(&x, a, b);
    ms.push_back(x);
  }
  cudaEventDestroy(a), cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n = 4 << 20;
  double peak = 4800;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rows")) n = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--peak-gbs")) peak = std::atof(argv[i + 1]);
  }
  std::string why;
  const auto devs = cuda::devices(&why);
  if (devs.empty()) {
    std::printf("{\"skipped\": \"no GPU: %s\"}\n", why.c_str());
    return 0;
  }
  const int m = 5;
  const size_t rows = static_cast<size_t>(n);
  std::vector<float> out(rows * 2 * m), gain(rows), yr(rows), yc(rows), w(rows, 1.0f), u(rows, float(m)),
      scale(m, 1.0f / float(n));
  std::vector<int64_t> t(rows);
  for (int64_t i = 0; i < n; ++i) {
    Rng g(7, 1, uint64_t(i));
    for (int j = 0; j < m; ++j) out[size_t(i) * 2 * m + j] = float(g.normal()), out[size_t(i) * 2 * m + m + j] = float(j * g.uniform());
    t[size_t(i)] = int64_t(g.uniform() * m) % m;
    gain[size_t(i)] = float(g.normal() / double(n));
    yr[size_t(i)] = float(g.uniform()), yc[size_t(i)] = t[size_t(i)] ? float(g.uniform()) : 0.0f;
  }
  float *d_out = upload(out), *d_gain = upload(gain), *d_yr = upload(yr), *d_yc = upload(yc), *d_w = upload(w),
        *d_u = upload(u), *d_scale = upload(scale);
  int64_t* d_t = upload(t);
  float *d_r = nullptr, *d_c = nullptr;
  cudaMalloc(&d_r, sizeof(float) * n * m), cudaMalloc(&d_c, sizeof(float) * n * m);
  cudaMemset(d_r, 0, sizeof(float) * n * m), cudaMemset(d_c, 0, sizeof(float) * n * m);
  double* d_val = nullptr;
  int* d_bad = nullptr;
  cudaMalloc(&d_val, 2 * sizeof(double)), cudaMalloc(&d_bad, sizeof(int));
  const cuda::DeviceScores<float> s{d_out, d_out + m, 2 * m, 2 * m, n, m};

  // Bytes each kernel must move: the scores it reads, its per-row inputs, and the gradient it adds (read + write).
  const double softmax_bytes = double(n) * (2.0 * m * 4 + 8 + 4 + 2.0 * 2 * m * 4);
  const double factual_bytes = double(n) * (2.0 * 4 + 8 + 3 * 4 + 2.0 * 2 * 4);  // the received arm's cells only
  const double sm_ms = time_ms([&] {
    cuda::softmax_policy_term<float>(s, d_t, d_gain, 0.4, 0.5, d_r, d_c, d_val, nullptr, &why);
  });
  const double f_ms = time_ms([&] {
    cuda::factual_term<float>({}, s, d_t, d_yr, d_yc, d_w, d_scale, d_r, d_c, d_val + 1, d_bad, nullptr, &why);
  });

  // λ*: 10M x 5 (or --rows) contiguous scores.
  std::vector<float> r(size_t(n) * m), c(size_t(n) * m);
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < m; ++j) r[size_t(i) * m + j] = out[size_t(i) * 2 * m + j], c[size_t(i) * m + j] = out[size_t(i) * 2 * m + m + j];
  float *d_rc = upload(r), *d_cc = upload(c);
  double full = 0;
  for (int64_t i = 0; i < n; ++i) full += t[size_t(i)] ? double(u[size_t(i)]) * yc[size_t(i)] : 0.0;
  const double budget = 0.4 * full / double(n);
  solver::KSectionResult gpu_res;
  const auto g0 = std::chrono::steady_clock::now();
  cuda::primal_lambda<float>(d_rc, d_cc, n, m, d_t, d_u, d_yr, d_yc, double(n), budget, 32, 50, 1e-4, {}, {}, &gpu_res,
                             nullptr, &why);
  const double gpu_lambda_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - g0).count();
  auto cpu_search = [&](int k, solver::KSectionResult* res) {
    double hi = 0;
    for (size_t q = 0; q < r.size(); ++q)
      if (c[q] > 0) hi = std::max(hi, double(r[q]) / c[q]);
    auto eval = [&](const std::vector<double>& lam, std::vector<double>& rev, std::vector<double>& cost) {
      const int K = int(lam.size());
      std::vector<double> sums(2 * size_t(K), 0.0);
      for (int64_t i = 0; i < n; ++i)
        solver::ksection_row(&r[size_t(i) * m], &c[size_t(i) * m], m, int(t[size_t(i)]), double(u[size_t(i)]),
                             double(yr[size_t(i)]), double(yc[size_t(i)]), lam.data(), K, sums.data(), sums.data() + K);
      for (int q = 0; q < K; ++q) rev[size_t(q)] = sums[size_t(q)] / double(n), cost[size_t(q)] = sums[size_t(K + q)] / double(n);
    };
    const auto c0 = std::chrono::steady_clock::now();
    *res = solver::ksection_search(eval, hi, budget, k, solver::ksection_passes(k, 50), 1e-4);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - c0).count();
  };
  solver::KSectionResult cpu1, cpu32;
  const double cpu1_ms = cpu_search(1, &cpu1), cpu32_ms = cpu_search(32, &cpu32);

  std::printf(
      "{\"device\": \"%s\", \"rows\": %lld, \"arms\": %d,\n"
      " \"softmax_policy_ms\": %.4f, \"softmax_policy_gbs\": %.1f, \"softmax_policy_peak_fraction\": %.3f,\n"
      " \"factual_ms\": %.4f, \"factual_gbs\": %.1f, \"factual_peak_fraction\": %.3f,\n"
      " \"lambda_gpu_k32_ms\": %.2f, \"lambda_gpu_passes\": %d, \"lambda_gpu\": %.9g,\n"
      " \"lambda_cpu_bisection_ms\": %.1f, \"lambda_cpu_bisection_passes\": %d, \"lambda_cpu_bisection\": %.9g,\n"
      " \"lambda_cpu_k32_ms\": %.1f, \"lambda_cpu_k32\": %.9g, \"error\": \"%s\"}\n",
      devs[0].name.c_str(), (long long)n, m, sm_ms, softmax_bytes / sm_ms / 1e6, softmax_bytes / sm_ms / 1e6 / peak,
      f_ms, factual_bytes / f_ms / 1e6, factual_bytes / f_ms / 1e6 / peak, gpu_lambda_ms, gpu_res.passes,
      gpu_res.lambda, cpu1_ms, cpu1.passes, cpu1.lambda, cpu32_ms, cpu32.lambda, why.c_str());
  return 0;
}
