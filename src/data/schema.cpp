// \brief Meta validation and Table shape helpers.
#include "data/schema.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::fill
#include <cmath>      // for std::abs, std::isfinite
#include <cstring>    // for std::memcpy

#include "core/error.h"  // for DataError

namespace dfcl::data {

void Meta::validate(const std::string& where) const {
  if (num_arms < 2)
    throw DataError(fmt::format("{}: num_arms = {}; a dataset needs a control arm and at least one treatment", where, num_arms));
  if (num_features < 1) throw DataError(fmt::format("{}: num_features = {}; a dataset needs at least one feature", where, num_features));
  if (static_cast<int>(arm_names.size()) != num_arms)
    throw DataError(fmt::format("{}: attribute 'arm_names' has {} names but the data has {} arms; give one name per arm",
                                where, arm_names.size(), num_arms));
  if (static_cast<int>(feature_names.size()) != num_features)
    throw DataError(fmt::format("{}: attribute 'feature_names' has {} names but 'features' has {} columns",
                                where, feature_names.size(), num_features));
  if (rct_rows > 0 || !rct_propensity.empty()) {
    if (static_cast<int>(rct_propensity.size()) != num_arms)
      throw DataError(fmt::format("{}: attribute 'rct_propensity' has {} values but the data has {} arms; give one propensity per arm",
                                  where, rct_propensity.size(), num_arms));
    double sum = 0;
    for (int j = 0; j < num_arms; ++j) {
      double p = rct_propensity[j];
      if (!(p > 0 && p <= 1))
        throw DataError(fmt::format("{}: attribute 'rct_propensity' of arm {} ('{}') is {}; an RCT propensity must lie in (0, 1]",
                                    where, j, arm_names[j], p));
      sum += p;
    }
    if (std::abs(sum - 1) > 1e-6)
      throw DataError(fmt::format("{}: attribute 'rct_propensity' sums to {:.8f}; the arm propensities of an RCT must sum to 1", where, sum));
  }
  if (!rct_arm_rows.empty()) {
    for (int j = 0; j < num_arms && j < static_cast<int>(rct_arm_rows.size()); ++j)
      if (rct_arm_rows[j] == 0 && rct_rows > 0)
        throw DataError(fmt::format("{}: RCT arm {} ('{}') has no rows; every arm of a randomised trial needs rows "
                                    "(check the treatment mapping, or drop the arm)", where, j, arm_names[j]));
  }
}

void Table::reset(const Meta& meta, int64_t n) {
  num_features = meta.num_features;
  num_arms = meta.num_arms;
  with_propensity = meta.has_propensity;
  with_truth = meta.has_truth;
  resize(n);
}

void Table::resize(int64_t n) {
  rows = n;
  features.resize(n * num_features);
  treatment.resize(n);
  revenue.resize(n);
  cost.resize(n);
  source.resize(n);
  row_id.resize(n);
  propensity.resize(with_propensity ? n : 0);
  true_revenue.resize(with_truth ? n * num_arms : 0);
  true_cost.resize(with_truth ? n * num_arms : 0);
  weight.resize(with_weight ? n : 0);
}

void Table::copy_rows(int64_t j, const Table& src, int64_t i, int64_t n) {
  auto cp = [&](auto& dst, const auto& from, int64_t width) {
    if (n > 0) std::memcpy(dst.data() + j * width, from.data() + i * width, sizeof(dst[0]) * size_t(n * width));
  };
  cp(features, src.features, num_features);
  cp(treatment, src.treatment, 1);
  cp(revenue, src.revenue, 1);
  cp(cost, src.cost, 1);
  cp(source, src.source, 1);
  cp(row_id, src.row_id, 1);
  if (with_propensity) cp(propensity, src.propensity, 1);
  if (with_truth) cp(true_revenue, src.true_revenue, num_arms), cp(true_cost, src.true_cost, num_arms);
  if (with_weight) {
    if (src.with_weight) cp(weight, src.weight, 1);
    else std::fill(weight.begin() + j, weight.begin() + j + n, 1.f);
  }
}

void Table::copy_row(int64_t j, const Table& src, int64_t i) {
  std::memcpy(&features[j * num_features], &src.features[i * num_features], sizeof(float) * num_features);
  treatment[j] = src.treatment[i];
  revenue[j] = src.revenue[i];
  cost[j] = src.cost[i];
  source[j] = src.source[i];
  row_id[j] = src.row_id[i];
  if (with_propensity) propensity[j] = src.propensity[i];
  if (with_truth) {
    std::memcpy(&true_revenue[j * num_arms], &src.true_revenue[i * num_arms], sizeof(float) * num_arms);
    std::memcpy(&true_cost[j * num_arms], &src.true_cost[i * num_arms], sizeof(float) * num_arms);
  }
  if (with_weight) weight[j] = src.with_weight ? src.weight[i] : 1.f;
}

int64_t Table::bytes() const {
  return int64_t(features.size() + revenue.size() + cost.size() + propensity.size() + true_revenue.size() +
                 true_cost.size() + weight.size()) * 4 +
         int64_t(treatment.size()) * 4 + int64_t(source.size()) + int64_t(row_id.size()) * 8;
}

}  // namespace dfcl::data

namespace dfcl::data {

RowProblem find_bad_row(const Table& t, const std::vector<std::string>& feature_names) {
  const int F = t.num_features, M = t.num_arms;
  for (int64_t i = 0; i < t.rows; ++i) {
    for (int k = 0; k < F; ++k) {
      float v = t.features[i * F + k];
      if (!std::isfinite(v)) {
        std::string name = k < static_cast<int>(feature_names.size()) ? feature_names[k] : fmt::format("#{}", k);
        return {i, fmt::format("features[{}] '{}'", k, name), fmt::format("value is {}", v),
                "replace missing values upstream (impute, or add an indicator feature)"};
      }
    }
    if (t.treatment[i] < 0 || t.treatment[i] >= M)
      return {i, "treatment", fmt::format("arm id {} is outside [0, {})", t.treatment[i], M),
              fmt::format("arm ids must be 0..{} (arm 0 = control); fix the treatment mapping", M - 1)};
    if (!std::isfinite(t.revenue[i]))
      return {i, "revenue", fmt::format("value is {}", t.revenue[i]), "revenue must be a finite number"};
    if (!std::isfinite(t.cost[i]))
      return {i, "cost", fmt::format("value is {}", t.cost[i]), "cost must be a finite number"};
    if (t.cost[i] < 0)
      return {i, "cost", fmt::format("value is {} (negative)", t.cost[i]), "costs must be >= 0; check the sign convention of the cost column"};
    if (t.source[i] > 1)
      return {i, "source", fmt::format("value is {}", int(t.source[i])), "source must be 0 (RCT) or 1 (observational)"};
    if (t.with_propensity && !(t.propensity[i] > 0 && t.propensity[i] <= 1))
      return {i, "propensity", fmt::format("value is {}", t.propensity[i]),
              "a propensity must lie in (0, 1]; clip or re-estimate the logging policy"};
    if (t.with_truth) {
      for (int j = 0; j < M; ++j) {
        float r = t.true_revenue[i * M + j], c = t.true_cost[i * M + j];
        if (!std::isfinite(r)) return {i, fmt::format("true_revenue[{}]", j), fmt::format("value is {}", r), "must be finite"};
        if (!std::isfinite(c) || c < 0)
          return {i, fmt::format("true_cost[{}]", j), fmt::format("value is {}", c), "must be finite and >= 0"};
      }
    }
  }
  return {};
}

}  // namespace dfcl::data
