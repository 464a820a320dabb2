// \brief EOM: the IPW per-capita revenue of a scorer's dual policy at a per-capita budget (spec §2.3 evaluation
// version = Bi-DFCL Algorithm 2/6), the EOM curve over a budget grid, and EOM normalised against a reference.
//
//   lo = 0; hi = max_{c_hat > 0} r_hat / c_hat     (raised to the largest hull breakpoint if that is larger)
//   repeat (at most max_iter times, and while the midpoint still lies strictly inside [lo, hi] in double):
//       lambda = (lo + hi) / 2;  cbar, rbar = IPW cost and revenue of pi(lambda) (ipw_path.h)
//       if |b - cbar| < eps_rel * b: stop (matched)
//       if b - cbar > 0: hi = lambda  else lo = lambda
//   EOM(b) = rbar at the last lambda; but where [lo, hi] collapses onto a jump of cbar over b (cbar(lo) > b > cbar(hi)),
//   rbar at hi, the side that does not overspend (stepped; the paper keeps the last midpoint, which may overspend)
// cbar(lambda) is an IPW step function and need not be monotone, so this finds a crossing, as in the paper.
#pragma once
#include <functional>  // for std::function
#include <vector>      // for std::vector

#include "metrics/ipw_path.h"  // for IpwPath

namespace dfcl::metrics {

struct EomOptions {
  double eps_rel = 1e-4;  // stop when |b - cbar| < eps_rel * b
  int max_iter = 60;      // halvings of [lo, hi]
};

struct EomPoint {
  double budget = 0;   // per-capita budget b
  double lambda = 0;   // lambda* (the last midpoint)
  double revenue = 0;  // rbar(lambda*): the EOM value
  double cost = 0;     // cbar(lambda*)
  int iterations = 0;
  bool matched = false;  // |b - cbar| < eps_rel * b was reached
  // cbar jumps over b at one lambda (rows whose breakpoints coincide switch together, or one row's switch is worth more
  // than eps_rel * b on a small trial): lambda, revenue and cost are then those of the side that does not overspend,
  // and step_over is the cost just below that lambda. Not matched, but the budget was reached as closely as the trial
  // allows; matched and stepped are both false only when no lambda spends as much as b (cbar(0+) < b) or every lambda
  // spends more.
  bool stepped = false;
  double step_over = 0;
  double lambda_over = 0;  // stepped: the lambda just below the jump, whose decisions spend step_over
  bool reached() const { return matched || stepped; }
};

/// The bisection itself over any cbar/rbar query `at(lambda)` with upper bracket `hi` (lo = 0): what eom_at runs on
/// one process and metrics/distributed.h runs with one all-reduce per query. Throws ConfigError for a bad budget or
/// options.
EomPoint eom_bisect(double budget, double hi, const EomOptions& opt, const std::function<PolicyValue(double)>& at);
/// One budget. Throws ConfigError when the budget is not a positive finite number.
EomPoint eom_at(const IpwPath& path, double budget, const EomOptions& opt = {});
/// Same under bootstrap weights (IpwPath::weigh).
EomPoint eom_at(const IpwPath& path, const IpwPath::Weights& w, double budget, const EomOptions& opt = {});
/// The EOM curve: one point per budget, in the given order.
std::vector<EomPoint> eom_curve(const IpwPath& path, const std::vector<double>& budgets, const EomOptions& opt = {});

/// EOM against a reference policy's curve over the same budgets (the papers report TSM-SL = 1).
struct NormalisedEom {
  std::vector<double> ratio;  // revenue / reference revenue, per budget
  double mean_ratio = 0;      // mean of the per-budget ratios
  double overall = 0;         // mean revenue over budgets / mean reference revenue over budgets
};
/// Throws DataError when the curves differ in length or budgets, or a reference value is 0.
NormalisedEom normalise_eom(const std::vector<EomPoint>& curve, const std::vector<EomPoint>& reference);

/// Checks a per-capita budget; `field` names it in the message (e.g. "evaluate.budgets").
void check_budget(double budget, const char* field = "budget");

}  // namespace dfcl::metrics
