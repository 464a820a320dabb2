// \brief The cross-fitted ML covariate g: ridge regression on standardised features (ridge) or on the features plus
// their squares and pairwise products (ridge2), K folds by a hash of (seed, global unit index).
//
// Each unit's prediction comes from the model fitted on the units of the other folds (never its own fold), over
// every rank: the per-fold normal equations are additive sums, all-reduced once, so any split of the units over ranks
// gives the same predictions (to rounding). The treatment indicator is never a feature. Fitting: minimise
//   sum over the training units (y - b0 - phi' b)^2 + lambda |b|^2
// with phi the standardised terms (global means and SDs, over every unit: standardisation uses no outcome) and the
// intercept b0 unpenalised; a term that is constant over all units is left out (phi = 0).
#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::copy_n
#include <cmath>      // for std::sqrt, std::fabs

#include "abtest/internal.h"    // for cross_fitted_prediction, fold_of
#include "abtest/stats.h"       // for NormalEquations, cholesky
#include "core/error.h"         // for ConfigError, DataError
#include "core/rng.h"           // for mix64
#include "dist/communicator.h"  // for Communicator

namespace dfcl::abtest {
namespace {

constexpr int kMaxTerms = 200;  // ridge2's terms F + F (F + 1) / 2 (F = 18 gives 189)

// Standardisation of a set of terms: global mean and SD (population), zero scale for a constant term.
struct Scaler {
  std::vector<double> mean, inv_sd;
  void apply(double* v) const {
    for (size_t j = 0; j < mean.size(); ++j) v[j] = (v[j] - mean[j]) * inv_sd[j];
  }
};

// Two passes over every rank's units: the means, then the sums of squares about them.
template <class Fill>
Scaler fit_scaler(int p, int64_t n, const Fill& fill, dist::Communicator& comm) {
  std::vector<double> buf(static_cast<size_t>(p)), s(size_t(p) + 1, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    fill(i, buf.data());
    for (int j = 0; j < p; ++j) s[j] += buf[j];
  }
  s[p] = double(n);
  comm.allreduce_values(s);
  const double total = s[p];
  Scaler sc;
  sc.mean.resize(size_t(p));
  for (int j = 0; j < p; ++j) sc.mean[j] = s[j] / total;
  std::vector<double> q(size_t(p), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    fill(i, buf.data());
    for (int j = 0; j < p; ++j) q[j] += (buf[j] - sc.mean[j]) * (buf[j] - sc.mean[j]);
  }
  comm.allreduce_values(q);
  sc.inv_sd.resize(size_t(p));
  for (int j = 0; j < p; ++j) {
    const double sd = std::sqrt(q[j] / total);
    sc.inv_sd[j] = sd > 1e-12 * std::fabs(sc.mean[j]) && sd > 0 ? 1 / sd : 0;  // constant: left out
  }
  return sc;
}

}  // namespace

int fold_of(uint64_t seed, int64_t global, int folds) {
  return int(mix64(mix64(seed ^ 0xC7055F17ull) ^ uint64_t(global)) % uint64_t(folds));
}

std::vector<double> cross_fitted_prediction(const Units& units, int num_features, const std::vector<double>& outcome,
                                            const Options& options, dist::Communicator& comm) {
  const std::string where = where_prefix(units);
  const int F = num_features, K = options.folds;
  const int64_t n = units.size();
  const bool quadratic = options.predictor == "ridge2";
  if (!quadratic && options.predictor != "ridge")
    throw ConfigError(
        fmt::format("abtest.predictor is '{}'; use ridge (linear in the standardised features) or "
                    "ridge2 (plus their squares and pairwise products)",
                    options.predictor));
  const int p = quadratic ? F + F * (F + 1) / 2 : F;
  if (p > kMaxTerms)
    throw ConfigError(
        fmt::format("abtest.predictor: ridge2 expands {} features into {} terms (at most {}); use "
                    "abtest.predictor=ridge, or fewer features",
                    F, p, kMaxTerms));

  // Standardised features z, then (ridge2) the terms [z_j, z_j z_k (j <= k)] standardised again.
  const Scaler xs = fit_scaler(
      F, n, [&](int64_t i, double* v) { std::copy_n(units.x.data() + size_t(i) * F, F, v); }, comm);
  auto linear = [&](int64_t i, double* v) {
    std::copy_n(units.x.data() + size_t(i) * F, F, v);
    xs.apply(v);
  };
  auto expand = [&](int64_t i, double* v) {
    linear(i, v);
    int m = F;
    for (int j = 0; j < F; ++j)
      for (int k = j; k < F; ++k) v[m++] = v[j] * v[k];
  };
  Scaler ts;
  if (quadratic) ts = fit_scaler(p, n, expand, comm);
  auto terms = [&](int64_t i, double* v) {  // v[0] = 1, v[1..p] = phi
    if (quadratic) {
      expand(i, v + 1);
      ts.apply(v + 1);
    } else {
      linear(i, v + 1);
    }
    v[0] = 1;
  };

  // The outcome's global mean (the fits use y - ybar), then the per-fold normal equations.
  std::vector<double> ys{0.0, double(n)};
  for (int64_t i = 0; i < n; ++i) ys[0] += outcome[i];
  comm.allreduce_values(ys);
  const double ybar = ys[1] > 0 ? ys[0] / ys[1] : 0;
  std::vector<NormalEquations> fold_sums(size_t(K), NormalEquations(p + 1));
  std::vector<int> fold(static_cast<size_t>(n));
  std::vector<double> z(size_t(p) + 1);
  for (int64_t i = 0; i < n; ++i) {
    fold[i] = fold_of(options.seed, units.offset + i, K);
    terms(i, z.data());
    fold_sums[fold[i]].add(z.data(), 1.0, outcome[i] - ybar);
  }
  for (auto& s : fold_sums) s.reduce(comm);

  // One model per fold, fitted on the other folds.
  std::vector<std::vector<double>> coef(static_cast<size_t>(K));
  for (int f = 0; f < K; ++f) {
    NormalEquations train(p + 1);
    for (int o = 0; o < K; ++o)
      if (o != f) train.add_sums(fold_sums[o]);
    if (train.sum_w() < 2)
      throw DataError(
          fmt::format("{}cross-fitting fold {} of {} has only {} units outside it to train on; lower "
                      "abtest.folds or analyse more units",
                      where, f + 1, K, int64_t(train.sum_w())));
    std::vector<double> a = train.zwz();
    for (int j = 1; j <= p; ++j) a[size_t(j) * (p + 1) + j] += options.ridge_lambda;
    const int bad = cholesky(a, p + 1);
    if (bad >= 0)
      throw DataError(
          fmt::format("{}the {} predictor of fold {} cannot be fitted: its normal equations are singular "
                      "(term {} is a linear combination of the others); set abtest.ridge_lambda > 0, "
                      "or drop collinear features",
                      where, options.predictor, f + 1, bad));
    coef[f] = cholesky_solve(a, p + 1, train.zwy());
  }
  std::vector<double> g(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    terms(i, z.data());
    const std::vector<double>& b = coef[fold[i]];
    double s = ybar;
    for (int j = 0; j <= p; ++j) s += b[j] * z[j];
    g[i] = s;
  }
  return g;
}

}  // namespace dfcl::abtest
