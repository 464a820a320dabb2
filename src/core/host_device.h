// \brief DFCL_HD: marks a per-row function that both the CPU path (g++) and a CUDA kernel (nvcc) call unchanged, and
// the few math calls such functions need (the right overload on each side).
#pragma once
#include <cmath>  // for std::exp, std::log, std::log1p

#ifdef __CUDACC__
#define DFCL_HD __host__ __device__
#else
#define DFCL_HD
#endif

namespace dfcl::hd {

// exp, log, log1p for float and double: CUDA's overloads in device code, <cmath>'s on the host.
#ifdef __CUDA_ARCH__
#define DFCL_HD_MATH(name) \
  template <class T>       \
  DFCL_HD inline T name(T x) { return ::name(x); }
#else
#define DFCL_HD_MATH(name) \
  template <class T>       \
  DFCL_HD inline T name(T x) { return std::name(x); }
#endif
DFCL_HD_MATH(exp)
DFCL_HD_MATH(log)
DFCL_HD_MATH(log1p)
#undef DFCL_HD_MATH

}  // namespace dfcl::hd
