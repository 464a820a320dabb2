// \brief Grid-stride kernels around the solver's __host__ __device__ row functions (see solver_kernels.h).
#include <cuda_runtime.h>  // for cudaMalloc, cudaMemcpy

#include "cuda/reduce.cuh"  // for DFCL_CUDA_TRY
#include "cuda/solver_kernels.h"
#include "solver/hull.h"  // for row_hull, row_policy (the same code the CPU path runs)

namespace dfcl::cuda {
namespace {

__global__ void hull_kernel(const float* r, const float* c, int64_t n, int m, uint8_t* hull, uint8_t* size) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    size[i] = static_cast<uint8_t>(solver::row_hull(r + i * m, c + i * m, m, hull + i * m));
}

__global__ void policy_kernel(const float* r, const float* c, int64_t n, int m, double lambda, uint8_t* arm) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    arm[i] = static_cast<uint8_t>(solver::row_policy(r + i * m, c + i * m, m, lambda));
}

// Device buffers freed on scope exit; every CUDA error becomes `why` and a false return.
struct Buffers {
  void* p[4] = {nullptr, nullptr, nullptr, nullptr};
  ~Buffers() {
    for (void* q : p)
      if (q) cudaFree(q);
  }
};

int grid_for(int64_t n) {
  int64_t blocks = (n + 255) / 256;
  return static_cast<int>(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

template <class Launch>
bool timed(Launch launch, float* ms, std::string* why) {
  cudaEvent_t a, b;
  DFCL_CUDA_TRY(cudaEventCreate(&a));
  DFCL_CUDA_TRY(cudaEventCreate(&b));
  cudaEventRecord(a);
  launch();
  cudaEventRecord(b);
  DFCL_CUDA_TRY(cudaGetLastError());
  DFCL_CUDA_TRY(cudaEventSynchronize(b));
  if (ms) cudaEventElapsedTime(ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return true;
}

// Checks the shape and copies the scores into d.p[0] (r) and d.p[1] (c).
bool upload_scores(const float* r, const float* c, int64_t n, int m, Buffers& d, std::string* why) {
  if (m < 1 || m > solver::kMaxArms) {
    if (why) *why = "arms out of range";
    return false;
  }
  const size_t fbytes = size_t(n) * m * sizeof(float);
  DFCL_CUDA_TRY(cudaMalloc(&d.p[0], fbytes));
  DFCL_CUDA_TRY(cudaMalloc(&d.p[1], fbytes));
  DFCL_CUDA_TRY(cudaMemcpy(d.p[0], r, fbytes, cudaMemcpyHostToDevice));
  DFCL_CUDA_TRY(cudaMemcpy(d.p[1], c, fbytes, cudaMemcpyHostToDevice));
  return true;
}

}  // namespace

bool row_hulls(const float* r, const float* c, int64_t n, int m, uint8_t* hull, uint8_t* hull_size,
               std::string* why, float* kernel_ms) {
  const size_t hbytes = size_t(n) * m;
  Buffers d;
  if (!upload_scores(r, c, n, m, d, why)) return false;
  DFCL_CUDA_TRY(cudaMalloc(&d.p[2], hbytes));
  DFCL_CUDA_TRY(cudaMalloc(&d.p[3], size_t(n)));
  auto launch = [&] {
    hull_kernel<<<grid_for(n), 256>>>(static_cast<const float*>(d.p[0]), static_cast<const float*>(d.p[1]), n, m,
                                      static_cast<uint8_t*>(d.p[2]), static_cast<uint8_t*>(d.p[3]));
  };
  if (!timed(launch, kernel_ms, why)) return false;
  DFCL_CUDA_TRY(cudaMemcpy(hull, d.p[2], hbytes, cudaMemcpyDeviceToHost));
  DFCL_CUDA_TRY(cudaMemcpy(hull_size, d.p[3], size_t(n), cudaMemcpyDeviceToHost));
  return true;
}

bool dual_policy(const float* r, const float* c, int64_t n, int m, double lambda, uint8_t* arm, std::string* why,
                 float* kernel_ms) {
  Buffers d;
  if (!upload_scores(r, c, n, m, d, why)) return false;
  DFCL_CUDA_TRY(cudaMalloc(&d.p[2], size_t(n)));
  auto launch = [&] {
    policy_kernel<<<grid_for(n), 256>>>(static_cast<const float*>(d.p[0]), static_cast<const float*>(d.p[1]), n, m,
                                        lambda, static_cast<uint8_t*>(d.p[2]));
  };
  if (!timed(launch, kernel_ms, why)) return false;
  DFCL_CUDA_TRY(cudaMemcpy(arm, d.p[2], size_t(n), cudaMemcpyDeviceToHost));
  return true;
}

}  // namespace dfcl::cuda
