// \brief Oracle metrics (see oracle.h).
#include "metrics/oracle.h"

#include <fmt/format.h>  // for fmt::format

#include "core/error.h"            // for DataError, ConfigError
#include "core/parallel.h"         // for parallel_for
#include "core/threads.h"          // for resolve_threads
#include "metrics/eom.h"           // for check_budget
#include "metrics/lambda_bound.h"  // for lambda_bound
#include "metrics/score_table.h"   // for check_scores, check_same_shape
#include "metrics/scorers.h"       // for random_scores
#include "solver/hull.h"           // for row_policy
#include "solver/mckp.h"           // for DualPath

namespace dfcl::metrics {
namespace {

constexpr int64_t kRows = 1 << 14;

// True per-capita value of a policy given per row by `fill(first_row, count, buffer)`, summed per block in a fixed
// order (so the same arms always give bit-identical values, whatever the thread count).
template <class Fill>
PolicyValue sum_true(const solver::Scores& t, int threads, Fill fill) {
  const int64_t blocks = (t.n + kRows - 1) / kRows;
  std::vector<double> br(blocks), bc(blocks);
  parallel_for(blocks, resolve_threads(threads), [&](int64_t b) {
    thread_local std::vector<uint8_t> arm;
    const int64_t a = b * kRows, n = std::min(t.n, a + kRows) - a;
    const uint8_t* p = fill(a, n, arm);
    double r = 0, c = 0;
    for (int64_t i = 0; i < n; ++i) r += t.r[(a + i) * t.m + p[i]], c += t.c[(a + i) * t.m + p[i]];
    br[b] = r, bc[b] = c;
  });
  double r = 0, c = 0;
  for (int64_t b = 0; b < blocks; ++b) r += br[b], c += bc[b];
  return {r / double(t.n), c / double(t.n)};
}

}  // namespace

uint8_t dual_arm_of(const solver::Scores& s, int64_t row, double lambda) {
  return static_cast<uint8_t>(solver::row_policy(s.r + row * s.m, s.c + row * s.m, s.m, lambda));
}

PolicyValue true_value(const solver::Scores& truth, const uint8_t* arm, int threads) {
  if (truth.n <= 0) throw DataError("true value: the true tables have no rows");
  return sum_true(truth, threads, [arm](int64_t a, int64_t, std::vector<uint8_t>&) { return arm + a; });
}

PolicyValue true_value(const solver::Scores& truth, const std::vector<uint8_t>& arm, int threads) {
  if (static_cast<int64_t>(arm.size()) != truth.n)
    throw DataError(
        fmt::format("length mismatch: the policy has {} rows but the true tables have {}; give one arm per "
                    "row",
                    arm.size(), truth.n));
  for (size_t i = 0; i < arm.size(); ++i)
    if (arm[i] >= truth.m)
      throw DataError(fmt::format("policy, row {}: arm {} is outside [0, {}); fix the allocation", i, arm[i], truth.m));
  return true_value(truth, arm.data(), threads);
}

TrueBudgetPolicy true_budget_policy(const solver::Scores& scores, const solver::Scores& truth, double budget,
                                    int threads, int max_iter) {
  check_budget(budget);
  check_scores(scores, "scores");
  check_same_shape(scores, truth.n, truth.m, "scores");
  if (truth.n <= 0) throw DataError("true budget policy: no rows");
  if (truth.n >= (int64_t(1) << 32)) throw DataError("true budget policy: 2^32 rows or more; evaluate shards");
  threads = resolve_threads(threads);
  const int64_t N = truth.n;
  const int M = truth.m;
  TrueBudgetPolicy p;
  p.budget = budget;
  double lo = 0, hi = lambda_bound(scores, threads).hi;
  // Each row's arm only moves up its hull as lambda falls, so a row whose arm is the same at lo and at hi keeps it on
  // all of [lo, hi]: only the other ("active") rows are re-evaluated, and their number halves about every step.
  std::vector<uint8_t> arm_lo(N), arm_hi(N);
  const int64_t blocks = (N + kRows - 1) / kRows;
  std::vector<double> part(blocks);
  parallel_for(blocks, threads, [&](int64_t b) {
    double c_hi = 0;
    for (int64_t i = b * kRows, e = std::min(N, (b + 1) * kRows); i < e; ++i) {
      arm_hi[i] = static_cast<uint8_t>(solver::row_policy(scores.r + i * M, scores.c + i * M, M, hi));
      arm_lo[i] = static_cast<uint8_t>(solver::row_policy(scores.r + i * M, scores.c + i * M, M, 0.0));
      c_hi += truth.c[i * M + arm_hi[i]];
    }
    part[b] = c_hi;
  });
  double cost_hi = 0;
  for (double v : part) cost_hi += v;
  cost_hi /= double(N);
  std::vector<uint32_t> active;
  double fixed = 0;  // total true cost of the rows that are no longer active
  if (cost_hi > budget) {
    p.feasible = false;  // even the scorer's cheapest arms overspend: report that policy
  } else {
    double cost_lo = 0;
    for (int64_t i = 0; i < N; ++i) {
      cost_lo += truth.c[i * M + arm_lo[i]];
      if (arm_lo[i] != arm_hi[i])
        active.push_back(static_cast<uint32_t>(i));
      else
        fixed += truth.c[i * M + arm_hi[i]];
    }
    if (cost_lo / double(N) <= budget) {
      p.saturated = true;
      hi = 0;
      arm_hi.swap(arm_lo);
      active.clear();
    }
  }
  std::vector<uint8_t> arm_mid;
  while (!active.empty() && p.iterations < max_iter) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;  // [lo, hi] cannot shrink further in double precision
    ++p.iterations;
    const int64_t A = static_cast<int64_t>(active.size()), ab = (A + kRows - 1) / kRows;
    arm_mid.resize(A);
    part.assign(ab, 0.0);
    parallel_for(ab, threads, [&](int64_t b) {
      double c = 0;
      for (int64_t k = b * kRows, e = std::min(A, (b + 1) * kRows); k < e; ++k) {
        const int64_t i = active[k];
        arm_mid[k] = static_cast<uint8_t>(solver::row_policy(scores.r + i * M, scores.c + i * M, M, mid));
        c += truth.c[i * M + arm_mid[k]];
      }
      part[b] = c;
    });
    double cost = fixed;
    for (double v : part) cost += v;
    const bool over = cost / double(N) > budget;
    (over ? lo : hi) = mid;
    std::vector<uint8_t>& side = over ? arm_lo : arm_hi;
    int64_t kept = 0;
    for (int64_t k = 0; k < A; ++k) {
      const uint32_t i = active[k];
      side[i] = arm_mid[k];
      if (arm_lo[i] == arm_hi[i])
        fixed += truth.c[i * M + arm_hi[i]];
      else
        active[kept++] = i;
    }
    active.resize(kept);
  }
  p.lambda = hi;
  p.arm = std::move(arm_hi);  // rows that left the active set hold the same arm on both sides
  p.value = true_value(truth, p.arm.data(), threads);
  return p;
}

Oracle::Oracle(const solver::Scores& truth, int threads) : truth_(truth), threads_(resolve_threads(threads)) {
  check_scores(truth, "true tables (true_revenue, true_cost)");
  if (truth.n <= 0) throw DataError("oracle: the true tables have no rows");
  path_ = std::make_unique<solver::DualPath>(truth, threads_);
  std::vector<uint8_t> zero(truth.n, 0);
  control_ = true_value(truth_, zero.data(), threads_);
}

Oracle::~Oracle() = default;

TrueBudgetPolicy Oracle::at(double budget) const {
  check_budget(budget);
  const solver::Allocation a = path_->solve(budget * double(truth_.n));
  TrueBudgetPolicy p;
  p.budget = budget;
  p.lambda = a.lambda;
  p.saturated = a.saturated;
  p.arm = a.arm;
  p.value = true_value(truth_, p.arm.data(), threads_);
  p.feasible = !a.clamped;
  return p;
}

Regret Oracle::regret(const solver::Scores& scores, double budget) const {
  check_budget(budget);
  const solver::Allocation a = path_->solve(budget * double(truth_.n));
  const TrueBudgetPolicy pol = true_budget_policy(scores, truth_, budget, threads_);
  Regret g;
  g.budget = budget;
  g.control = control_;
  g.oracle = true_value(truth_, a.arm.data(), threads_);
  g.oracle_lambda = a.lambda;
  g.oracle_lp_bound = a.lp_bound / double(truth_.n);
  g.policy = pol.value;
  g.policy_lambda = pol.lambda;
  g.policy_feasible = pol.feasible;
  const double lift = g.oracle.revenue - control_.revenue;
  // A scorer whose cheapest decisions already cost more than the budget in truth cannot be held to it by any lambda:
  // its decisions are not an allocation at this budget, and their revenue (bought with more than b) must not count as
  // a low or negative regret. It is charged the whole lift, as if it had treated nobody.
  g.regret = pol.feasible ? g.oracle.revenue - g.policy.revenue : lift;
  g.relative_regret = lift != 0 ? g.regret / lift : 0.0;
  return g;
}

Regret Oracle::random_regret(double budget, uint64_t seed) const {
  const ScoreTable rnd = random_scores(truth_.n, truth_.m, seed, threads_);
  return regret(rnd.view(), budget);
}

}  // namespace dfcl::metrics
