// \brief EOM bisection, curve and normalisation (see eom.h).
#include "metrics/eom.h"

#include <fmt/format.h>  // for fmt::format

#include <cmath>  // for std::abs, std::isfinite

#include "core/error.h"  // for ConfigError, DataError

namespace dfcl::metrics {

void check_budget(double budget, const char* field) {
  if (!(std::isfinite(budget) && budget > 0))
    throw ConfigError(
        fmt::format("{}: per-capita budget {} must be a positive number; give budgets per user, "
                    "e.g. [0.5, 1.0]",
                    field, budget));
}

EomPoint eom_bisect(double budget, double hi, const EomOptions& opt, const std::function<PolicyValue(double)>& at) {
  check_budget(budget);
  if (opt.max_iter < 1) throw ConfigError(fmt::format("EOM max_iter is {}; it must be >= 1", opt.max_iter));
  if (!(opt.eps_rel > 0)) throw ConfigError(fmt::format("EOM eps_rel is {}; it must be > 0", opt.eps_rel));
  EomPoint p;
  p.budget = budget;
  double lo = 0;
  const double hi0 = hi;
  const double tol = opt.eps_rel * budget;
  if (hi <= 0) {  // no arm costs anything: the policy does not depend on lambda
    PolicyValue v = at(0);
    p.revenue = v.revenue, p.cost = v.cost, p.matched = std::abs(budget - v.cost) < tol;
    return p;
  }
  while (p.iterations < opt.max_iter) {
    const double lam = 0.5 * (lo + hi);
    if (lam <= lo || lam >= hi) break;  // [lo, hi] cannot shrink further in double precision
    const PolicyValue v = at(lam);
    ++p.iterations;
    p.lambda = lam, p.revenue = v.revenue, p.cost = v.cost;
    if (std::abs(budget - v.cost) < tol) {
      p.matched = true;
      break;
    }
    if (budget - v.cost > 0)
      hi = lam;  // under-spending: lower the price
    else
      lo = lam;
  }
  // [lo, hi] collapsed onto a jump of cbar over b: cbar(lo) > b > cbar(hi). Take the side that does not overspend.
  if (!p.matched && lo > 0 && hi < hi0) {
    const PolicyValue over = at(lo), under = at(hi);
    if (over.cost > budget && under.cost <= budget) {
      p.lambda = hi, p.revenue = under.revenue, p.cost = under.cost;
      p.stepped = true, p.step_over = over.cost, p.lambda_over = lo;
    }
  }
  return p;
}

EomPoint eom_at(const IpwPath& path, const IpwPath::Weights& w, double budget, const EomOptions& opt) {
  return eom_bisect(budget, path.bound().hi, opt, [&](double lam) { return path.at(lam, w); });
}

EomPoint eom_at(const IpwPath& path, double budget, const EomOptions& opt) {
  return eom_at(path, path.weigh(nullptr), budget, opt);
}

std::vector<EomPoint> eom_curve(const IpwPath& path, const std::vector<double>& budgets, const EomOptions& opt) {
  const IpwPath::Weights w = path.weigh(nullptr);
  std::vector<EomPoint> out;
  out.reserve(budgets.size());
  for (double b : budgets) out.push_back(eom_at(path, w, b, opt));
  return out;
}

NormalisedEom normalise_eom(const std::vector<EomPoint>& curve, const std::vector<EomPoint>& reference) {
  if (curve.size() != reference.size() || curve.empty())
    throw DataError(
        fmt::format("normalised EOM: the curve has {} budgets and the reference {}; evaluate both on the "
                    "same non-empty budget grid",
                    curve.size(), reference.size()));
  NormalisedEom n;
  double sum = 0, ref = 0;
  for (size_t k = 0; k < curve.size(); ++k) {
    if (curve[k].budget != reference[k].budget)
      throw DataError(
          fmt::format("normalised EOM: budget {} of the curve is {} but the reference has {}; use the same "
                      "grid",
                      k, curve[k].budget, reference[k].budget));
    if (reference[k].revenue == 0)
      throw DataError(
          fmt::format("normalised EOM: the reference EOM at budget {} is 0; pick a reference policy with "
                      "non-zero revenue",
                      reference[k].budget));
    n.ratio.push_back(curve[k].revenue / reference[k].revenue);
    n.mean_ratio += n.ratio.back();
    sum += curve[k].revenue;
    ref += reference[k].revenue;
  }
  n.mean_ratio /= double(curve.size());
  n.overall = sum / ref;
  return n;
}

}  // namespace dfcl::metrics
