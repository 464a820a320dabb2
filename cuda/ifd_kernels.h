// \brief The IFD estimator on the device (loss/ifd_estimator.h): three grid-stride passes around loss/ifd_rows.h's row
// functions (the ones the CPU path runs), with the batch's global quantities reduced between them through the caller's
// reducers (the Communicator across ranks): the matched rows' sums (self-normalisation), then each perturbation
// matrix's max |δ| (clip max). Pointers are device pointers; scores are n x m contiguous; outputs are n x m float64
// tables (zeroed here) plus matched (n bytes) and ΔQ (n doubles). Synchronises the stream between passes.
#pragma once
#include <cstdint>     // for int64_t, uint8_t
#include <functional>  // for std::function
#include <string>      // for std::string
#include <vector>      // for std::vector

#include "loss/ifd_rows.h"  // for rows::IfdRowSettings

namespace dfcl::cuda {

struct IfdOutputs {
  uint8_t* matched = nullptr;
  double* dq = nullptr;
  double *delta_1 = nullptr, *g_1 = nullptr;  // score: δ^s, G^s; revenue_cost: δ^r, G^r
  double *delta_2 = nullptr, *g_2 = nullptr;  // revenue_cost: δ^c, G^c (unused for score)
};

/// `settings`: λ, κ, perturbation, normalisation, clip, h, eps0, strict flips, and (ht) n, the global batch weight;
/// W, rbar, cbar are found here. Empty reducers: one process.
template <class T>
bool ifd_estimate(const T* r, const T* c, int64_t n, int m, const int64_t* t, const double* u, const double* y_r,
                  const double* y_c, loss::rows::IfdRowSettings settings,
                  const std::function<void(std::vector<double>&)>& reduce_sum,
                  const std::function<void(std::vector<double>&)>& reduce_max, const IfdOutputs& out, void* stream,
                  std::string* why);

}  // namespace dfcl::cuda
