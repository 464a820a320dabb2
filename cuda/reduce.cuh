// \brief Deterministic two-stage sums for the kernels (nvcc only): each block reduces its threads' values in shared
// memory and writes one partial per value; one finishing block then adds the partials in block order. The order
// depends only on the grid, which depends only on n, so a sum is bitwise the same on every run.
#pragma once
#include <cuda_runtime.h>  // for cudaStream_t, cudaMallocAsync

#include <cstdint>  // for int64_t
#include <string>   // for std::string

namespace dfcl::cuda::detail {

inline constexpr int kThreads = 256;
inline constexpr int kMaxBlocks = 1024;

/// Blocks of kThreads for n rows (grid-stride loops cover the rest), at least 1.
inline int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return int(b < 1 ? 1 : (b > kMaxBlocks ? kMaxBlocks : b));
}

/// The block's sum of v (every thread passes its value; thread 0 gets the result). `shared`: kThreads doubles.
__device__ inline double block_sum(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (int(threadIdx.x) < s) shared[threadIdx.x] += shared[threadIdx.x + s];
    __syncthreads();
  }
  const double out = shared[0];
  __syncthreads();
  return out;
}

/// The block's max of v (thread 0 gets it).
__device__ inline double block_max(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (int(threadIdx.x) < s && shared[threadIdx.x + s] > shared[threadIdx.x]) shared[threadIdx.x] = shared[threadIdx.x + s];
    __syncthreads();
  }
  const double out = shared[0];
  __syncthreads();
  return out;
}

/// out[v] (+)= Σ_b partial[b * values + v] in block order (one block of kThreads; thread v handles value v, values
/// beyond kThreads in steps). accumulate: add to out, else overwrite. max: the maximum instead of the sum.
__global__ inline void finish_partials(const double* partial, int blocks, int values, double* out, bool accumulate,
                                       bool max) {
  for (int v = threadIdx.x; v < values; v += blockDim.x) {
    double s = partial[v];
    for (int b = 1; b < blocks; ++b) {
      const double x = partial[int64_t(b) * values + v];
      s = max ? (x > s ? x : s) : s + x;
    }
    out[v] = accumulate ? (max ? (s > out[v] ? s : out[v]) : out[v] + s) : s;
  }
}

/// Scratch device memory on a stream, freed on scope exit (stream-ordered).
struct Scratch {
  void* p = nullptr;
  cudaStream_t stream = nullptr;
  Scratch(size_t bytes, cudaStream_t s, cudaError_t* err) : stream(s) { *err = cudaMallocAsync(&p, bytes, s); }
  ~Scratch() {
    if (p) cudaFreeAsync(p, stream);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
};

/// A CUDA error as `why` and false (the sticky error cleared).
inline bool fail(cudaError_t e, std::string* why) {
  if (why) *why = cudaGetErrorString(e);
  cudaGetLastError();
  return false;
}

}  // namespace dfcl::cuda::detail

#define DFCL_CUDA_TRY(expr)                                               \
  do {                                                                    \
    cudaError_t e_ = (expr);                                              \
    if (e_ != cudaSuccess) return ::dfcl::cuda::detail::fail(e_, why);    \
  } while (0)

namespace dfcl::cuda::detail {

/// The launch pattern of a kernel over n items that leaves `values` partials per block (blocks x values doubles):
/// launch(blocks, partial) runs it on `stream`, then the partials are combined in block order (sums, or maxima when
/// `max`). to_host: the `values` results are copied to `host` and the stream synchronised; otherwise they are added to
/// the device array `device` (asynchronous).
template <class Launch>
bool reduced_launch(int64_t n, int values, bool max, cudaStream_t stream, double* host, double* device,
                    std::string* why, Launch&& launch) {
  const int blocks = blocks_for(n);
  cudaError_t err;
  Scratch partial(sizeof(double) * (size_t(blocks) + 1) * values, stream, &err);
  DFCL_CUDA_TRY(err);
  double* p = static_cast<double*>(partial.p);
  double* result = host ? p + size_t(blocks) * values : device;
  launch(blocks, p);
  finish_partials<<<1, kThreads, 0, stream>>>(p, blocks, values, result, host == nullptr, max);
  DFCL_CUDA_TRY(cudaGetLastError());
  if (host) {
    DFCL_CUDA_TRY(cudaMemcpyAsync(host, result, sizeof(double) * values, cudaMemcpyDeviceToHost, stream));
    DFCL_CUDA_TRY(cudaStreamSynchronize(stream));
  }
  return true;
}

}  // namespace dfcl::cuda::detail
