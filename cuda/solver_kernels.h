// \brief GPU versions of the solver's per-user row functions (solver/hull.h), behind a plain C++ interface.
#pragma once
#include <cstdint>  // for int64_t, uint8_t
#include <string>   // for std::string

namespace dfcl::cuda {

/// Per-user hulls of n x m scores (host arrays in, host arrays out), computed on the current GPU by the same
/// row_hull the CPU path uses. Returns false with `why` set when no GPU is usable; `kernel_ms` (if not null)
/// receives the kernel time alone, without the copies.
bool row_hulls(const float* r, const float* c, int64_t n, int m, uint8_t* hull, uint8_t* hull_size,
               std::string* why, float* kernel_ms = nullptr);

/// The dual policy at lambda for every user (row_policy), on the GPU. Same conventions as row_hulls.
bool dual_policy(const float* r, const float* c, int64_t n, int m, double lambda, uint8_t* arm, std::string* why,
                 float* kernel_ms = nullptr);

}  // namespace dfcl::cuda
