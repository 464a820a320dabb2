// \brief Scores: a read-only view of per-user, per-arm predictions (revenue, cost), N x M row-major.
#pragma once
#include <cstdint>  // for int64_t

namespace dfcl::solver {

/// r[i * m + j], c[i * m + j]: predicted (or true) revenue and cost of arm j for user i. Arm 0 is control.
/// The solver never copies them; they must outlive every object built from them.
struct Scores {
  int64_t n = 0;
  int m = 0;
  const float* r = nullptr;
  const float* c = nullptr;
};

}  // namespace dfcl::solver
