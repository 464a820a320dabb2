// \brief Test helpers for the CUDA kernel tests: a device copy of a host vector, and whether a GPU is usable.
#pragma once
#include <cuda_runtime.h>  // for cudaMalloc, cudaMemcpy

#include <string>  // for std::string
#include <vector>  // for std::vector

#include "cuda/device.h"  // for devices

namespace dfcl::cuda_test {

// Device copy of a host vector, freed on scope exit.
template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(const std::vector<T>& h) : n(h.size()) {
    cudaMalloc(&p, sizeof(T) * (n ? n : 1));
    if (n) cudaMemcpy(p, h.data(), sizeof(T) * n, cudaMemcpyHostToDevice);
  }
  std::vector<T> get() const {
    std::vector<T> h(n);
    cudaDeviceSynchronize();
    if (n) cudaMemcpy(h.data(), p, sizeof(T) * n, cudaMemcpyDeviceToHost);
    return h;
  }
  ~Dev() { cudaFree(p); }
};

/// True when a GPU is usable; otherwise `why` says why (the tests skip with it).
inline bool gpu(std::string* why) { return !cuda::devices(why).empty(); }

}  // namespace dfcl::cuda_test
