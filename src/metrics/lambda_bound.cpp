// \brief lambda_bound over all rows (see lambda_bound.h).
#include "metrics/lambda_bound.h"

#include <vector>  // for std::vector

#include "core/parallel.h"  // for parallel_for
#include "core/threads.h"   // for resolve_threads
#include "solver/hull.h"    // for row_hull, kMaxArms

namespace dfcl::metrics {

LambdaBound lambda_bound(const solver::Scores& s, int threads) {
  constexpr int64_t kRows = 1 << 14;
  const int64_t blocks = (s.n + kRows - 1) / kRows;
  std::vector<LambdaBound> part(blocks);
  parallel_for(blocks, resolve_threads(threads), [&](int64_t b) {
    uint8_t hull[solver::kMaxArms];
    for (int64_t i = b * kRows, e = std::min(s.n, (b + 1) * kRows); i < e; ++i) {
      const float* r = s.r + i * s.m;
      const float* c = s.c + i * s.m;
      add_row_bound(r, c, s.m, hull, solver::row_hull(r, c, s.m, hull), part[b]);
    }
  });
  LambdaBound out;
  for (const auto& p : part) merge_bound(p, out);
  finish_bound(out);
  return out;
}

}  // namespace dfcl::metrics
