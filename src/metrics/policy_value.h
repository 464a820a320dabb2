// \brief Horvitz-Thompson per-capita revenue and cost of any policy (one arm per row) on RCT rows.
//
//   rbar(pi) = (1/N) sum_i r_i / p_{t_i} * 1[t_i == pi_i],   cbar(pi) likewise with c_i
//
// Unbiased for the per-capita outcome had everyone followed pi, because arms were assigned at random with
// probabilities p_j. With p_j = N_j / N, "everyone gets arm j" gives exactly the arm-j mean among the RCT rows.
#pragma once
#include <cstdint>  // for uint8_t, uint32_t
#include <vector>   // for std::vector

#include "metrics/rct_sample.h"  // for RctSample

namespace dfcl::metrics {

/// Per-capita values of a policy (divided by the number of rows, or by the total weight of a bootstrap replicate).
struct PolicyValue {
  double revenue = 0;
  double cost = 0;
};

/// IPW value of `policy` (one arm per sample row). `counts` (optional) weights row i by counts[i] (bootstrap
/// resampling); the per-capita divisor is then sum_i counts[i]. The sample's propensities are used as they are.
PolicyValue policy_value(const RctSample& s, const uint8_t* policy, const uint32_t* counts = nullptr);
/// Same, checking that the policy has one arm per row and every arm is in range (DataError otherwise).
PolicyValue policy_value(const RctSample& s, const std::vector<uint8_t>& policy);
/// "Everyone gets arm j".
PolicyValue uniform_policy_value(const RctSample& s, int arm, const uint32_t* counts = nullptr);

}  // namespace dfcl::metrics
