// \brief Reference scorers (see scorers.h).
#include "metrics/scorers.h"

#include <cmath>  // for std::abs

#include "core/parallel.h"  // for parallel_for
#include "core/rng.h"       // for Rng
#include "core/threads.h"   // for resolve_threads

namespace dfcl::metrics {
namespace {

constexpr int64_t kRows = 1 << 14;
constexpr uint64_t kRandomStream = 0x5C0E5ull;  // the random scorer's RNG stream

ScoreTable shaped(int64_t n, int m) {
  ScoreTable t;
  t.n = n, t.m = m;
  t.r.assign(size_t(n) * m, 0.0f);
  t.c.assign(size_t(n) * m, 0.0f);
  return t;
}

}  // namespace

ScoreTable random_scores(int64_t n, int m, uint64_t seed, int threads) {
  ScoreTable t = shaped(n, m);
  parallel_for((n + kRows - 1) / kRows, resolve_threads(threads), [&](int64_t b) {
    for (int64_t i = b * kRows, e = std::min(n, (b + 1) * kRows); i < e; ++i) {
      Rng rng(seed, kRandomStream, uint64_t(i));
      for (int j = 1; j < m; ++j) {
        t.r[i * m + j] = static_cast<float>(rng.uniform());
        t.c[i * m + j] = 1.0f;
      }
    }
  });
  return t;
}

ScoreTable true_roi_scores(const solver::Scores& truth, int threads) {
  const int m = truth.m;
  ScoreTable t = shaped(truth.n, m);
  parallel_for((truth.n + kRows - 1) / kRows, resolve_threads(threads), [&](int64_t b) {
    for (int64_t i = b * kRows, e = std::min(truth.n, (b + 1) * kRows); i < e; ++i) {
      const float* r = truth.r + i * m;
      const float* c = truth.c + i * m;
      for (int j = 1; j < m; ++j) {
        double d = double(c[j]) - c[0];
        if (std::abs(d) < 1e-6) d = 1e-6;
        t.r[i * m + j] = static_cast<float>((double(r[j]) - r[0]) / d);
        t.c[i * m + j] = 1.0f;
      }
    }
  });
  return t;
}

}  // namespace dfcl::metrics
