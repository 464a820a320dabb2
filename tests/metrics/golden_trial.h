// \brief The six-row, three-arm hand-worked trial shared by the EOM and cost-curve golden tests.
#pragma once
#include <cstdint>  // for int32_t
#include <vector>   // for std::vector

#include "metrics/rct_sample.h"  // for RctSample, make_sample
#include "solver/scores.h"       // for Scores

namespace dfcl::metrics {

// Six trial rows, three arms (p_j = 1/3 each, so every matched row counts 3/6 = 0.5 per capita).
// Per-row hulls (arms by cost) and the lambda range where the policy picks the row's factual arm t:
//   row 0: hull 0,1,2 (breakpoints 2, 1);   t = 0: matched for lambda >= 2
//   row 1: hull 0,2 (arm 1 under the hull); t = 1: never matched
//   row 2: hull 0,1,2 (breakpoints 3, 0.5); t = 2: lambda < 0.5
//   row 3: hull 0,1,2 (breakpoints 0.5, 0.3); t = 0: lambda >= 0.5
//   row 4: hull 0,1 (arm 2 dominated, bp 4); t = 1: lambda < 4
//   row 5: hull 0,2 (bp 2.5);               t = 2: lambda < 2.5
// So cbar = 0.5 [1(l<4) + 2(l<2.5) + 2(l<0.5)] and rbar = 0.5 [1(l>=2) + 4(l<0.5) + 2(l>=0.5) + 3(l<4) + 5(l<2.5)].
// The spec's hi = max r_hat / c_hat = 4 (row 4, arm 1).
struct Golden {
  std::vector<int32_t> t = {0, 1, 2, 0, 1, 2};
  std::vector<float> y_r = {1, 2, 4, 2, 3, 5}, y_c = {0, 1, 2, 0, 1, 2};
  std::vector<float> r_hat = {0, 2, 3, 0, 1, 3, 0, 3, 3.5f, 1, 1.5f, 1.8f, 0, 4, 4, 0, 0.5f, 2.5f};
  std::vector<float> c_hat = {0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 0.5f, 1};
  RctSample sample() const { return make_sample(t, y_r, y_c, 3); }
  solver::Scores scores() const { return {6, 3, r_hat.data(), c_hat.data()}; }
};

}  // namespace dfcl::metrics
