// \brief Fused batched loss kernels: the value and the closed-form score gradient of the softmax-policy losses (pll,
// merl, ppl) and of the factual term L_PL (tsm_sl, α·L_PL), over device arrays, behind a plain C++ interface.
// Each kernel is a grid-stride loop over rows calling the row function the CPU fused path calls (loss/rows.h), so the
// CPU tests cover the arithmetic; the row values go through a deterministic two-stage block sum.
//
// Conventions (all pointers are device pointers unless named *_host): scores r̂, ĉ are n rows of m contiguous
// columns at a row stride (elements; a view of the net's n x 2M output needs no copy); t holds the received arm per
// row (int64); d_r, d_c are contiguous n x m and are ADDED to (zero them first); `value` is one device double that
// the row sum is added to. `stream` is a cudaStream_t (nullptr: the legacy default stream). Each returns false with
// `why` set on a CUDA error or bad shape, and launches asynchronously (nothing is synchronised).
#pragma once
#include <cstdint>  // for int64_t
#include <string>   // for std::string

#include "loss/rows.h"  // for rows::FactualRow

namespace dfcl::cuda {

/// The score table of a batch on the device.
template <class T>
struct DeviceScores {
  const T* r = nullptr;
  const T* c = nullptr;
  int64_t r_stride = 0, c_stride = 0;  // elements between rows
  int64_t n = 0;
  int m = 0;
};

/// One term of a softmax-policy loss at λ and temperature τ: value += Σ_i −g_i p_t, d_r/d_c += its gradient
/// (loss::rows::softmax_policy_row). gain: n values g_i = u_i v_i / N (0 skips the row). d_c null: no cost gradient.
template <class T>
bool softmax_policy_term(const DeviceScores<T>& s, const int64_t* t, const T* gain, double lambda, double tau, T* d_r,
                         T* d_c, double* value, void* stream, std::string* why);

/// The factual term Σ_i coef_i (a_r l_r + a_c l_c)(t_i), coef_i = w_i arm_scale[t_i] (arm_scale: m device values):
/// value += the sum, d_r/d_c += the gradient at (i, t_i); bad |= 1 (revenue) / 2 (cost) for a bce label outside
/// [0, 1] (one device int).
template <class T>
bool factual_term(const loss::rows::FactualRow& f, const DeviceScores<T>& s, const int64_t* t, const T* y_r,
                  const T* y_c, const T* w, const T* arm_scale, T* d_r, T* d_c, double* value, int* bad, void* stream,
                  std::string* why);

/// DHCL (loss::rows::dhcl_row; only s.r is read): value += Σ_i ca_i l(s_a) + cb_i l(s_b), d_r += the gradient.
/// y_r (divided by K), y_c, ca, cb: n values each; bound: the clamp on the raw score (infinity: none).
template <class T>
bool dhcl_term(bool sigmoid, const DeviceScores<T>& s, const int64_t* t, const T* y_r, const T* y_c, const T* ca,
               const T* cb, double bound, T* d_r, double* value, void* stream, std::string* why);

}  // namespace dfcl::cuda
