// \brief Bi-DFCL's lower level on the device (bilevel/lower_level.h): the masked MSE's value and score gradient, and
// the mixed term's gate cotangent, one thread per cell around bilevel/lower_rows.h's cell functions (the ones the CPU
// path runs). Cells: n rows of 2m contiguous values (revenue of arms 0..m-1, then cost). Pointers are device pointers;
// `stream` is a cudaStream_t (nullptr: the legacy default stream); asynchronous.
#pragma once
#include <cstdint>  // for int64_t
#include <string>   // for std::string

namespace dfcl::cuda {

/// value += κ Σ ω (ŷ − y)² (one device double); d_r, d_c (n x m each, contiguous) = 2κ ω (ŷ − y), split by half.
template <class T>
bool lower_value_and_grad(const T* yhat, const T* y, const T* omega, int64_t n, int m, double kappa, T* d_r, T* d_c,
                          double* value, void* stream, std::string* why);

/// q (n x 2m) = the bridge-output cotangent of the mixed term (rows::gate_cotangent_cell); factual: 1 on factual
/// cells; weight: n row weights; teacher, snapshot: read only when counterfactual.
template <class T>
bool gate_cotangent(bool counterfactual, const T* yhat, const T* y, const T* omega, const T* factual, const T* weight,
                    const T* u, const T* teacher, const T* snapshot, int64_t n, int m, double kappa, T* q,
                    void* stream, std::string* why);

}  // namespace dfcl::cuda
