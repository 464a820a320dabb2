// \brief The elementwise part of a conjugate-gradient iteration, torch-free: conjugate_gradient (cg.cpp) runs it over
// CPU vectors and the CUDA kernel (cuda/cg_kernels.cu) over device vectors, the same arithmetic on both.
#pragma once
#include "core/host_device.h"  // for DFCL_HD

namespace dfcl::bilevel::rows {

/// x += α p, r −= α Ap; returns the element's share of r·r afterwards (summed in double by the caller).
template <class T>
DFCL_HD inline double cg_update(T alpha, T p, T ap, T& x, T& r) {
  x += alpha * p;
  r -= alpha * ap;
  return double(r) * double(r);
}

/// p = r + β p, the direction update that closes the iteration.
template <class T>
DFCL_HD inline void cg_direction(T beta, T r, T& p) {
  p = r + beta * p;
}

}  // namespace dfcl::bilevel::rows
