// \brief DFCL_HD: marks a per-row function that both the CPU path (g++) and a CUDA kernel (nvcc) call unchanged, and
// the few math calls such functions need (the right overload on each side).
#pragma once
#include <cmath>  // for std::exp, std::log

#ifdef __CUDACC__
#define DFCL_HD __host__ __device__
#else
#define DFCL_HD
#endif

namespace dfcl::hd {

template <class T>
DFCL_HD inline T exp(T x) {
#ifdef __CUDA_ARCH__
  return ::exp(x);  // CUDA's float and double overloads
#else
  return std::exp(x);
#endif
}

template <class T>
DFCL_HD inline T log(T x) {
#ifdef __CUDA_ARCH__
  return ::log(x);
#else
  return std::log(x);
#endif
}

}  // namespace dfcl::hd
