// \brief RctSample: the randomised-trial rows a metric reads (arm, observed revenue and cost) and the arm propensities.
//
// Metrics never copy rows: a sample is a set of views plus the per-arm propensities p_j. IPW estimators weight a
// row of arm j by 1/p_j, which is unbiased only because the trial assigned arms at random with known p_j.
#pragma once
#include <cstdint>  // for int64_t, int32_t, uint32_t
#include <string>   // for std::string
#include <vector>   // for std::vector

namespace dfcl::metrics {

struct RctSample {
  int64_t n = 0;                   // rows
  int m = 0;                       // arms, control (0) included
  const int32_t* arm = nullptr;    // t_i in [0, m)
  const float* revenue = nullptr;  // observed revenue of the assigned arm
  const float* cost = nullptr;     // observed cost of the assigned arm
  std::vector<double> propensity;  // p_j, size m, each in (0, 1], summing to 1
  /// True when `propensity` holds this sample's own arm shares N_j / N (the papers' choice): a bootstrap
  /// replicate then recomputes them from its resampled counts; false = fixed design probabilities.
  bool empirical = false;
};

/// Arm shares N_j / N of `arm` (counts[i] copies of row i when counts is given). Throws DataError when the
/// sample is empty or an arm id is out of range.
std::vector<double> empirical_propensity(const int32_t* arm, int64_t n, int m, const uint32_t* counts = nullptr);

/// A sample over vectors, checking that their lengths agree (DataError naming the column otherwise).
/// `propensity` empty = use the empirical arm shares.
RctSample make_sample(const std::vector<int32_t>& arm, const std::vector<float>& revenue,
                      const std::vector<float>& cost, int m, std::vector<double> propensity = {});

/// Checks a sample end to end (O(n)): rows present, arrays set, propensities present and valid, arm ids in range,
/// outcomes finite. `where` prefixes messages. Throws DataError naming the field, the row and the fix.
void validate(const RctSample& s, const std::string& where = "RCT sample");

}  // namespace dfcl::metrics
