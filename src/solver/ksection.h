// \brief The primal λ* search of a per-capita budget (methods-bidfcl.md §8.2) as a K-section: each pass evaluates the
// dual policy's IPW spend at K candidates inside the bracket (one pass over the rows, one reduction of a 2K-vector
// across ranks) and keeps the sub-interval where the spend crosses the budget. K = 1 is bisection, the CPU default
// (fewest row operations); a GPU takes K = 32, so a search is ~10 passes (launches and all-reduces) instead of 50.
//
// ksection_row is the per-row part (the CPU loop in loss/decision.cpp and the CUDA kernel in cuda/loss_kernels.cu
// both call it); ksection_search drives the passes and is independent of where the rows live.
#pragma once
#include <cmath>    // for std::abs, std::ceil, std::log
#include <vector>   // for std::vector

#include "core/host_device.h"  // for DFCL_HD
#include "solver/hull.h"       // for row_policy

namespace dfcl::solver {

/// One row's share of a pass: for each candidate λ_k, when the dual policy at λ_k (row_policy: ties to the cheaper
/// arm, then the lower index) picks the arm the row received, adds u y^r to rev[k] and u y^c to cost[k]. Rows with
/// u <= 0 (padding) never count.
template <class T>
DFCL_HD inline void ksection_row(const T* r, const T* c, int m, int t, double u, double y_r, double y_c,
                                 const double* lambdas, int k_count, double* rev, double* cost) {
  if (!(u > 0)) return;
  for (int k = 0; k < k_count; ++k)
    if (row_policy(r, c, m, lambdas[k]) == t) rev[k] += u * y_r, cost[k] += u * y_c;
}

struct KSectionResult {
  double lambda = 0, cost = 0, revenue = 0;  // the reported λ and its per-capita IPW spend and revenue
  int passes = 0;                            // passes over the rows (the λ = 0 probe included)
  bool matched = false;                      // |budget − cost| < eps_rel · budget at λ
};

/// Passes of a K-section that shrink the bracket as much as `halvings` bisection steps do.
inline int ksection_passes(int k, int halvings) {
  return k <= 1 ? halvings : int(std::ceil(halvings * std::log(2.0) / std::log(double(k + 1))));
}

/// λ* in [0, hi] for `budget`. eval(lambdas, rev, cost) fills the per-capita IPW revenue and spend at each candidate
/// (already summed over every row and rank, divided by the global weight). The λ = 0 policy is probed first: if it
/// fits, the budget does not bind (λ = 0, matched false). Each pass takes candidates λ_k = ((K+1−k) lo + k hi)/(K+1),
/// k = 1..K (for K = 1 exactly bisection's midpoint); the first candidate within eps_rel of the budget ends the search
/// (matched); otherwise the bracket becomes [λ_{k−1}, λ_k] around the first candidate under budget (the spend falls as
/// λ grows), and the reported λ is that candidate (or the last one when all are over budget). Stops after max_passes
/// or when the candidates no longer lie strictly inside the bracket.
template <class Eval>
KSectionResult ksection_search(Eval&& eval, double hi, double budget, int k_count, int max_passes, double eps_rel) {
  KSectionResult out;
  std::vector<double> lam(1, 0.0), rev(1), cost(1);
  eval(lam, rev, cost);
  out.passes = 1, out.revenue = rev[0], out.cost = cost[0];
  if (cost[0] <= budget) return out;
  double lo = 0;
  const int K = k_count < 1 ? 1 : k_count;
  lam.assign(K, 0), rev.assign(K, 0), cost.assign(K, 0);
  for (int pass = 0; pass < max_passes; ++pass) {
    for (int k = 1; k <= K; ++k) lam[k - 1] = (double(K + 1 - k) * lo + double(k) * hi) / double(K + 1);
    if (!(lam[0] > lo && lam[K - 1] < hi)) break;
    std::fill(rev.begin(), rev.end(), 0.0), std::fill(cost.begin(), cost.end(), 0.0);
    eval(lam, rev, cost);
    ++out.passes;
    int under = K;  // the first candidate under budget
    for (int k = 0; k < K; ++k) {
      if (std::abs(budget - cost[k]) < eps_rel * budget) {
        out.lambda = lam[k], out.revenue = rev[k], out.cost = cost[k], out.matched = true;
        return out;
      }
      if (under == K && budget - cost[k] > 0) under = k;
    }
    const int rep = under < K ? under : K - 1;
    out.lambda = lam[rep], out.revenue = rev[rep], out.cost = cost[rep];
    if (under < K) {
      hi = lam[under];
      if (under > 0) lo = lam[under - 1];
    } else {
      lo = lam[K - 1];
    }
  }
  return out;
}

}  // namespace dfcl::solver
