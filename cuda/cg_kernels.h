// \brief The vector part of a conjugate-gradient iteration on the device (bilevel/cg.h): one fused kernel for
// x += α p, r −= α Ap and r·r, and one for p = r + β p, around bilevel/cg_rows.h's row functions (the ones the CPU
// recurrence runs). Pointers are device pointers; `stream` is a cudaStream_t (nullptr: the legacy default stream).
// The Hessian-vector product itself stays with LibTorch (cuBLAS); the hook for a device CG is MatVec in bilevel/cg.h.
#pragma once
#include <cstdint>  // for int64_t
#include <string>   // for std::string

namespace dfcl::cuda {

/// x += α p, r −= α Ap over n elements, and rr_host = r·r afterwards (a deterministic two-stage sum in double;
/// synchronises the stream to return it).
template <class T>
bool cg_update(double alpha, const T* p, const T* ap, T* x, T* r, int64_t n, double* rr_host, void* stream,
               std::string* why);

/// p = r + β p over n elements (asynchronous).
template <class T>
bool cg_direction(double beta, const T* r, T* p, int64_t n, void* stream, std::string* why);

}  // namespace dfcl::cuda
