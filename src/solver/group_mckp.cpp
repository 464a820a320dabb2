// \brief The group programme (group_mckp.h): per-group hulls, the LP by one walk over the segments in decreasing
// slope, and depth-first branch and bound on the LP's fractional group.
#include "solver/group_mckp.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::sort, std::max
#include <cmath>      // for std::isfinite, std::abs
#include <numeric>    // for std::iota

#include "core/error.h"  // for ConfigError, DataError

namespace dfcl::solver {
namespace {

// The groups' upper-left hulls of (cost, value) and their segments in decreasing slope. A group's LP choice moves
// along its hull, from its cheapest arm, one segment at a time; segments of a group have strictly decreasing slopes,
// so taking segments in the global order keeps each group's in order.
struct Hulls {
  int k = 0, m = 0;
  std::vector<std::vector<int>> hull;  // per group: arms in increasing cost, strictly increasing value
  struct Segment {
    int g, t;  // group, from hull[g][t] to hull[g][t + 1]
    double dc, dv, slope;
  };
  std::vector<Segment> seg;  // decreasing slope; ties: lower group, then earlier segment

  explicit Hulls(const GroupProblem& p) : k(p.k), m(p.m), hull(size_t(p.k)) {
    for (int g = 0; g < k; ++g) {
      const double* c = &p.cost[size_t(g) * size_t(m)];
      const double* v = &p.value[size_t(g) * size_t(m)];
      std::vector<int> order(static_cast<size_t>(m));
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(), [&](int a, int b) {
        return c[a] != c[b] ? c[a] < c[b] : v[a] != v[b] ? v[a] > v[b] : a < b;
      });
      std::vector<int>& h = hull[size_t(g)];
      for (int j : order) {
        if (!h.empty() && (c[j] == c[h.back()] || v[j] <= v[h.back()])) continue;  // dominated
        while (h.size() >= 2) {  // drop a point on or under the chord to j
          const int a = h[h.size() - 2], b = h.back();
          if ((v[b] - v[a]) * (c[j] - c[b]) <= (v[j] - v[b]) * (c[b] - c[a])) h.pop_back();
          else break;
        }
        h.push_back(j);
      }
      for (size_t t = 0; t + 1 < h.size(); ++t) {
        const double dc = c[h[t + 1]] - c[h[t]], dv = v[h[t + 1]] - v[h[t]];
        seg.push_back({g, int(t), dc, dv, dv / dc});
      }
    }
    std::sort(seg.begin(), seg.end(), [](const Segment& a, const Segment& b) {
      return a.slope != b.slope ? a.slope > b.slope : a.g != b.g ? a.g < b.g : a.t < b.t;
    });
  }
};

// The LP over the free groups (fixed[g] < 0) with `budget` left for them.
struct Lp {
  bool feasible = false;
  double value = 0;         // LP optimum over the free groups
  double int_value = 0;     // the same without the fractional part (a feasible integer choice)
  double int_cost = 0;
  int frac_group = -1;      // the group whose next segment was cut
  double frac_share = 0;
  std::vector<int> pos;     // per group: hull position reached (free groups)
};

// Spend comparisons allow `slack` (relative rounding of sums of K costs): a plan that meets the budget exactly
// in real arithmetic is not lost to the order its costs were added in.
Lp solve_lp(const GroupProblem& p, const Hulls& h, const std::vector<int>& fixed, double budget, double slack) {
  Lp lp;
  lp.pos.assign(size_t(p.k), 0);
  double base_c = 0, base_v = 0;
  for (int g = 0; g < p.k; ++g)
    if (fixed[size_t(g)] < 0) {
      const int a = h.hull[size_t(g)][0];
      base_c += p.cost[size_t(g) * size_t(p.m) + size_t(a)], base_v += p.value[size_t(g) * size_t(p.m) + size_t(a)];
    }
  if (base_c > budget + slack) return lp;
  lp.feasible = true;
  double rem = budget - base_c, v = base_v, c = base_c;
  for (const auto& s : h.seg) {
    if (fixed[size_t(s.g)] >= 0) continue;
    if (s.dc <= rem + slack) {
      rem -= s.dc, v += s.dv, c += s.dc;
      ++lp.pos[size_t(s.g)];
    } else {
      lp.frac_group = s.g;
      lp.frac_share = rem / s.dc;
      lp.int_value = v, lp.int_cost = c;
      lp.value = v + lp.frac_share * s.dv;
      return lp;
    }
  }
  lp.int_value = lp.value = v, lp.int_cost = c;
  return lp;
}

double slack_of(const GroupProblem& p, double budget) {
  double scale = std::abs(budget);
  for (double c : p.cost) scale = std::max(scale, std::abs(c));
  return 1e-12 * double(p.k) * std::max(1.0, scale);
}

void check_budget(const GroupProblem& p, double budget) {
  p.validate();
  const double lo = p.min_cost();
  if (!(budget >= lo - 1e-12 * std::max(1.0, std::abs(lo))))
    throw ConfigError(fmt::format("budget {:.6g} is below the cheapest group policy's spend {:.6g} (every group on its "
                                  "cheapest arm), so no plan fits; raise the budget to at least that",
                                  budget, lo));
}

struct Search {
  const GroupProblem& p;
  const Hulls& h;
  double budget;
  double slack;
  int64_t limit;
  std::vector<int> fixed;
  double fixed_c = 0, fixed_v = 0;
  GroupPlan best;
  double open_bound = -1e300;  // the best bound among nodes the limit cut off
  bool have = false;

  double cost(int g, int j) const { return p.cost[size_t(g) * size_t(p.m) + size_t(j)]; }
  double value(int g, int j) const { return p.value[size_t(g) * size_t(p.m) + size_t(j)]; }

  void take(const Lp& lp) {  // the LP's integer part (plus the best arm of the fractional group that still fits)
    double v = fixed_v + lp.int_value, c = fixed_c + lp.int_cost;
    int frac_arm = -1;
    if (lp.frac_group >= 0) {
      const int g = lp.frac_group, cur = h.hull[size_t(g)][size_t(lp.pos[size_t(g)])];
      double bv = value(g, cur);
      for (int j = 0; j < p.m; ++j)
        if (c - cost(g, cur) + cost(g, j) <= budget + slack && value(g, j) > bv) bv = value(g, j), frac_arm = j;
      if (frac_arm >= 0) v += value(g, frac_arm) - value(g, cur), c += cost(g, frac_arm) - cost(g, cur);
    }
    if (have && v <= best.value) return;
    have = true;
    best.value = v, best.cost = c;
    best.arm.assign(size_t(p.k), 0);
    for (int g = 0; g < p.k; ++g)
      best.arm[size_t(g)] = fixed[size_t(g)] >= 0 ? fixed[size_t(g)] : h.hull[size_t(g)][size_t(lp.pos[size_t(g)])];
    if (frac_arm >= 0) best.arm[size_t(lp.frac_group)] = frac_arm;
  }

  void node() {
    const Lp lp = solve_lp(p, h, fixed, budget - fixed_c, slack);
    if (!lp.feasible) return;
    const double bound = fixed_v + lp.value;
    if (have && bound <= best.value + 1e-12 * std::max(1.0, std::abs(best.value))) return;
    if (++best.nodes > limit) {
      open_bound = std::max(open_bound, bound);
      return;
    }
    take(lp);
    if (lp.frac_group < 0) return;  // the LP is integral: nothing better below
    // Branch on the fractional group: each of its arms; the LP's two hull arms first.
    const int g = lp.frac_group;
    const auto& hg = h.hull[size_t(g)];
    const int lo = hg[size_t(lp.pos[size_t(g)])], hi = hg[size_t(lp.pos[size_t(g)]) + 1];
    std::vector<int> order{hi, lo};
    for (int j = 0; j < p.m; ++j)
      if (j != lo && j != hi) order.push_back(j);
    std::sort(order.begin() + 2, order.end(), [&](int a, int b) { return value(g, a) > value(g, b); });
    for (int j : order) {
      if (fixed_c + cost(g, j) > budget + slack) continue;
      fixed[size_t(g)] = j, fixed_c += cost(g, j), fixed_v += value(g, j);
      node();
      fixed[size_t(g)] = -1, fixed_c -= cost(g, j), fixed_v -= value(g, j);
    }
  }
};

}  // namespace

double GroupProblem::min_cost() const {
  double t = 0;
  for (int g = 0; g < k; ++g) {
    int a = 0;
    for (int j = 1; j < m; ++j) {
      const double cj = cost[size_t(g) * size_t(m) + size_t(j)], ca = cost[size_t(g) * size_t(m) + size_t(a)];
      if (cj < ca || (cj == ca && value[size_t(g) * size_t(m) + size_t(j)] > value[size_t(g) * size_t(m) + size_t(a)]))
        a = j;
    }
    t += cost[size_t(g) * size_t(m) + size_t(a)];
  }
  return t;
}

double GroupProblem::max_useful_cost() const {
  double t = 0;
  for (int g = 0; g < k; ++g) {
    int a = 0;
    for (int j = 1; j < m; ++j) {
      const double vj = value[size_t(g) * size_t(m) + size_t(j)], va = value[size_t(g) * size_t(m) + size_t(a)];
      if (vj > va || (vj == va && cost[size_t(g) * size_t(m) + size_t(j)] < cost[size_t(g) * size_t(m) + size_t(a)]))
        a = j;
    }
    t += cost[size_t(g) * size_t(m) + size_t(a)];
  }
  return t;
}

void GroupProblem::validate() const {
  if (k < 1 || m < 1 || value.size() != size_t(k) * size_t(m) || cost.size() != value.size())
    throw DataError(fmt::format("group programme: {} values and {} costs for {} groups x {} arms", value.size(),
                                cost.size(), k, m));
  for (int g = 0; g < k; ++g)
    for (int j = 0; j < m; ++j)
      if (!std::isfinite(value[size_t(g) * size_t(m) + size_t(j)]) || !std::isfinite(cost[size_t(g) * size_t(m) + size_t(j)]))
        throw DataError(fmt::format("group programme: group {} arm {} has a non-finite value or cost", g, j));
}

GroupPlan solve_groups_exact(const GroupProblem& p, double budget, int64_t node_limit) {
  check_budget(p, budget);
  const Hulls h(p);
  Search s{p, h, budget, slack_of(p, budget), node_limit, std::vector<int>(size_t(p.k), -1), 0, 0, {}};
  s.node();
  GroupPlan plan = s.best;
  plan.budget = budget;
  plan.optimal = s.best.nodes <= node_limit;
  plan.bound = plan.optimal ? plan.value : std::max(plan.value, s.open_bound);
  plan.gap = plan.bound - plan.value;
  return plan;
}

GroupSplit solve_groups_lp(const GroupProblem& p, double budget) {
  check_budget(p, budget);
  const Hulls h(p);
  const Lp lp = solve_lp(p, h, std::vector<int>(size_t(p.k), -1), budget, slack_of(p, budget));
  GroupSplit s;
  s.budget = budget;
  s.arm.resize(size_t(p.k));
  for (int g = 0; g < p.k; ++g) s.arm[size_t(g)] = h.hull[size_t(g)][size_t(lp.pos[size_t(g)])];
  s.value = lp.value;
  s.cost = lp.int_cost;
  if (lp.frac_group >= 0 && lp.frac_share > 0) {
    const int g = lp.frac_group;
    s.split_group = g;
    s.split_arm = h.hull[size_t(g)][size_t(lp.pos[size_t(g)]) + 1];
    s.split_share = lp.frac_share;
    s.cost = budget;  // the split spends exactly what is left
  }
  return s;
}

}  // namespace dfcl::solver
