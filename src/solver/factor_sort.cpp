// \brief FactorSort: effective monotone factors per user (pool adjacent violators or running minimum), one global
// sort of the positive blocks, and budgets as prefixes of that order.
#include "solver/factor_sort.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::sort, std::upper_bound, std::min
#include <cmath>      // for std::isfinite
#include <limits>     // for std::numeric_limits

#include "core/error.h"  // for ConfigError, DataError

namespace dfcl::solver {

FactorMonotone parse_factor_monotone(const std::string& name, const std::string& what) {
  if (name == "pool") return FactorMonotone::kPool;
  if (name == "running_min") return FactorMonotone::kRunningMin;
  throw ConfigError(fmt::format("{}: unknown monotone rule '{}'; use pool (pool adjacent violators, weighted by the "
                                "step costs) or running_min",
                                what, name));
}

FactorSort::FactorSort(const float* theta, int64_t n, int steps, const std::vector<double>& step_cost,
                       FactorMonotone monotone)
    : n_(n), steps_(steps), d_(step_cost) {
  if (steps < 1 || steps > 255)
    throw DataError(fmt::format("factor sort: {} steps per user; need 1 to 255 (M - 1 for M arms)", steps));
  if (n < 0) throw DataError(fmt::format("factor sort: negative user count {}", n));
  if (n > 0 && theta == nullptr) throw DataError("factor sort: the factor array is missing (null)");
  if (static_cast<int>(d_.size()) != steps)
    throw DataError(fmt::format("factor sort: {} step costs for {} steps; give one d_k per step", d_.size(), steps));
  for (int k = 0; k < steps; ++k)
    if (!(d_[k] > 0) || !std::isfinite(d_[k]))
      throw DataError(fmt::format("factor sort: step {} costs {}; every step cost d_k must be a finite number > 0 "
                                  "(arms ordered by cost; estimate d_k as the RCT mean incremental cost of the step)",
                                  k + 1, d_[k]));
  effective_.resize(size_t(n) * steps);
  struct Run {
    double sum, weight, mean;  // Σ θ d, Σ d, and the run's factor (θ itself for one step: no rounding)
    int first, last;
  };
  std::vector<Run> stack;
  stack.reserve(steps);
  for (int64_t i = 0; i < n; ++i) {
    const float* row = theta + i * steps;
    bool monotone_row = true;
    for (int k = 0; k < steps; ++k) {
      if (!std::isfinite(row[k]))
        throw DataError(fmt::format("factor sort: user {}, step {}: factor {} is not finite; fix the model output",
                                    i, k + 1, row[k]));
      if (k > 0 && row[k] > row[k - 1]) monotone_row = false;
    }
    if (!monotone_row) ++non_monotone_;
    float* eff = &effective_[size_t(i) * steps];
    stack.clear();
    if (monotone_row) {  // every step its own block, its factor as given
      for (int k = 0; k < steps; ++k) stack.push_back({double(row[k]) * d_[k], d_[k], double(row[k]), k, k});
    } else if (monotone == FactorMonotone::kPool) {
      // Weighted pool adjacent violators: a run whose factor is below the next run's merges with it, so the runs'
      // factors strictly decrease. Equal factors never merge.
      for (int k = 0; k < steps; ++k) {
        stack.push_back({double(row[k]) * d_[k], d_[k], double(row[k]), k, k});
        while (stack.size() > 1 && stack[stack.size() - 2].mean < stack.back().mean) {
          const Run& a = stack[stack.size() - 2];
          const Run& b = stack.back();
          Run m{a.sum + b.sum, a.weight + b.weight, 0.0, a.first, b.last};
          m.mean = m.sum / m.weight;
          stack.pop_back(), stack.back() = m;
        }
      }
    } else {  // running minimum, each step its own block
      float lo = row[0];
      for (int k = 0; k < steps; ++k) {
        lo = std::min(lo, row[k]);
        stack.push_back({double(lo) * d_[k], d_[k], double(lo), k, k});
      }
    }
    for (const Run& r : stack) {
      const float f = float(r.mean);  // exact for one step; a pooled mean is rounded once, for blocks and policy_at
      for (int k = r.first; k <= r.last; ++k) eff[k] = f;
      if (eff[r.first] > 0)
        blocks_.push_back({double(eff[r.first]), r.weight, i, uint8_t(r.first), uint8_t(r.last)});
    }
  }
  std::sort(blocks_.begin(), blocks_.end(), [](const Block& a, const Block& b) {
    if (a.theta != b.theta) return a.theta > b.theta;
    if (a.user != b.user) return a.user < b.user;
    return a.first < b.first;
  });
  prefix_spend_.resize(blocks_.size());
  prefix_value_.resize(blocks_.size());
  double sp = 0, val = 0;
  for (size_t q = 0; q < blocks_.size(); ++q) {
    sp += blocks_[q].cost, val += blocks_[q].theta * blocks_[q].cost;
    prefix_spend_[q] = sp, prefix_value_[q] = val;
  }
}

FactorAllocation FactorSort::solve(double budget) const {
  if (!(budget >= 0) || !std::isfinite(budget))
    throw ConfigError(fmt::format("factor sort: budget {} must be a finite number >= 0", budget));
  FactorAllocation a;
  a.budget = budget;
  a.arm.assign(size_t(n_), 0);
  // Spend is strictly increasing along the order (every block costs > 0): the prefix is a binary search.
  const size_t p = size_t(std::upper_bound(prefix_spend_.begin(), prefix_spend_.end(), budget) - prefix_spend_.begin());
  for (size_t q = 0; q < p; ++q) {
    const Block& b = blocks_[q];
    a.arm[size_t(b.user)] = uint8_t(b.last + 1);
    a.steps_taken += b.last - b.first + 1;
  }
  a.spend = p ? prefix_spend_[p - 1] : 0;
  a.value = p ? prefix_value_[p - 1] : 0;
  a.lambda = p ? blocks_[p - 1].theta : std::numeric_limits<double>::infinity();
  a.saturated = p == blocks_.size();
  a.next_lambda = a.saturated ? 0 : blocks_[p].theta;
  return a;
}

std::vector<uint8_t> FactorSort::policy_at(double lambda) const {
  std::vector<uint8_t> arm(size_t(n_), 0);
  for (int64_t i = 0; i < n_; ++i) {
    const float* eff = &effective_[size_t(i) * steps_];
    int k = 0;
    while (k < steps_ && eff[k] > 0 && double(eff[k]) >= lambda) ++k;
    arm[size_t(i)] = uint8_t(k);
  }
  return arm;
}

double FactorSort::effective_factor(int64_t user, int k) const {
  if (user < 0 || user >= n_ || k < 0 || k >= steps_)
    throw DataError(fmt::format("factor sort: no user {} step {} ({} users, {} steps)", user, k + 1, n_, steps_));
  return effective_[size_t(user) * steps_ + k];
}

FactorAllocation factor_allocate(const float* theta, int64_t n, int steps, const std::vector<double>& step_cost,
                                 double budget, FactorMonotone monotone) {
  return FactorSort(theta, n, steps, step_cost, monotone).solve(budget);
}

}  // namespace dfcl::solver
