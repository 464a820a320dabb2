// \brief λ* on the device (methods-bidfcl.md §8.2): the K-section search of solver/ksection.h with each pass one
// kernel over the rows (the ksection_row the CPU search calls) and one reduction of a 2K-vector across ranks.
// Serves the primal losses (ppl, pifd) and the budget metrics. Pointers are device pointers unless named *_host;
// `stream` is a cudaStream_t (nullptr: the legacy default stream). Each call synchronises the stream (the sums
// come back to the host for the cross-rank reduction and the bracket update: 2K doubles per pass).
#pragma once
#include <cstdint>     // for int64_t
#include <functional>  // for std::function
#include <string>      // for std::string
#include <vector>      // for std::vector

#include "solver/ksection.h"  // for KSectionResult

namespace dfcl::cuda {

inline constexpr int kMaxCandidates = 64;

/// One pass: sums_host[k] = Σ_i u_i y^r_i and sums_host[K + k] = Σ_i u_i y^c_i over the rows whose dual policy at
/// lambdas_host[k] picks the arm they received (K = k_count <= kMaxCandidates). Scores: n x m contiguous.
template <class T>
bool ksection_pass(const T* r, const T* c, int64_t n, int m, const int64_t* t, const T* u, const T* y_r, const T* y_c,
                   const double* lambdas_host, int k_count, double* sums_host, void* stream, std::string* why);

/// The bracket's upper end: max r_ij / c_ij over rows with u_i > 0 and arms with c_ij > 0 (0 when there is none).
template <class T>
bool ratio_max(const T* r, const T* c, int64_t n, int m, const T* u, double* max_host, void* stream, std::string* why);

using Reduce = std::function<void(std::vector<double>&)>;

/// λ* of a per-capita budget: the bracket [0, ratio_max] (reduced with reduce_max), then K-section passes (each pass's
/// 2K sums reduced with reduce_sum, divided by total_weight, the global batch weight). Same result as
/// loss::primal_lambda with the same K on the CPU, up to the order of the sums. Empty reducers: one process.
template <class T>
bool primal_lambda(const T* r, const T* c, int64_t n, int m, const int64_t* t, const T* u, const T* y_r,
                   const T* y_c, double total_weight, double budget, int k_count, int halvings, double eps_rel,
                   const Reduce& reduce_sum, const Reduce& reduce_max, solver::KSectionResult* out, void* stream,
                   std::string* why);

}  // namespace dfcl::cuda
