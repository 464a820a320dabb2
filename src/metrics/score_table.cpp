// \brief Checks on score views (see score_table.h).
#include "metrics/score_table.h"

#include <fmt/format.h>  // for fmt::format

#include <cmath>  // for std::isfinite

#include "core/error.h"   // for DataError
#include "solver/hull.h"  // for kMaxArms

namespace dfcl::metrics {

void check_scores(const solver::Scores& s, const std::string& what) {
  if (s.m < 1 || s.m > solver::kMaxArms)
    throw DataError(
        fmt::format("{}: {} arms; scores need 1 to {} arms (arm 0 = control)", what, s.m, solver::kMaxArms));
  if (s.n < 0) throw DataError(fmt::format("{}: negative row count {}", what, s.n));
  if (s.n > 0 && (s.r == nullptr || s.c == nullptr))
    throw DataError(fmt::format("{}: r_hat or c_hat is missing (null); pass both N x M arrays", what));
  const int64_t total = s.n * s.m;
  for (int64_t k = 0; k < total; ++k)
    if (!std::isfinite(s.r[k]) || !std::isfinite(s.c[k]))
      throw DataError(
          fmt::format("{}: row {}, arm {}: r_hat = {}, c_hat = {} is not finite; fix the model output "
                      "(every prediction must be a finite number)",
                      what, k / s.m, k % s.m, s.r[k], s.c[k]));
}

void check_same_shape(const solver::Scores& s, int64_t n, int m, const std::string& what) {
  if (s.n != n)
    throw DataError(
        fmt::format("{}: length mismatch: the scores have {} rows but the evaluation sample has {}; "
                    "scores must hold one row per sample row, in the same order",
                    what, s.n, n));
  if (s.m != m)
    throw DataError(fmt::format("{}: the scores have {} arms but the data has {}; predict every arm, control included",
                                what, s.m, m));
}

}  // namespace dfcl::metrics
