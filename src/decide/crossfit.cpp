// \brief Fold assignment, the cross-fitting loop and the per-arm ridge learner (see crossfit.h).
#include "decide/crossfit.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::sort, std::max
#include <cmath>      // for std::sqrt

#include "core/error.h"  // for DataError, ConfigError
#include "core/rng.h"    // for Rng

namespace dfcl::decide {

// A stream of its own (core/rng.h): independent of the generator's and the splits' draws for the same row.
constexpr uint64_t kFoldStream = 0xC505F01D5ull;

int fold_of(int64_t row_id, int folds, uint64_t seed) {
  Rng rng(seed, kFoldStream, uint64_t(row_id));
  return int((static_cast<unsigned __int128>(rng.next()) * uint64_t(folds)) >> 64);
}

std::vector<std::vector<int64_t>> fold_rows(const data::Table& rows, int folds, uint64_t seed) {
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(folds));
  for (int64_t i = 0; i < rows.rows; ++i) {
    const int64_t id = rows.row_id.empty() ? i : rows.row_id[size_t(i)];
    out[size_t(fold_of(id, folds, seed))].push_back(i);
  }
  return out;
}

void check_folds(const data::Table& rows, const std::vector<std::vector<int64_t>>& folds,
                 const std::vector<std::string>& arm_names, const std::string& key) {
  const int m = rows.num_arms;
  std::vector<std::vector<int64_t>> count(folds.size(), std::vector<int64_t>(size_t(m), 0));
  std::vector<int64_t> total(size_t(m), 0);
  for (size_t f = 0; f < folds.size(); ++f)
    for (int64_t i : folds[f]) ++count[f][size_t(rows.treatment[size_t(i)])], ++total[size_t(rows.treatment[size_t(i)])];
  for (size_t f = 0; f < folds.size(); ++f)
    for (int j = 0; j < m; ++j)
      if (total[size_t(j)] - count[f][size_t(j)] == 0) {
        const std::string arm = size_t(j) < arm_names.size() ? fmt::format("{} ('{}')", j, arm_names[size_t(j)])
                                                              : std::to_string(j);
        throw DataError(fmt::format(
            "{}: the model of fold {} of {} is fitted on the other folds' {} trial rows, which have no row of arm {} "
            "({} of the {} rows got it, all in fold {}); lower {}, judge on more trial rows, or use the ipw estimator",
            key, f, folds.size(), rows.rows - int64_t(folds[f].size()), arm, total[size_t(j)], rows.rows, f, key));
      }
}

metrics::ScoreTable crossfit(const data::Table& rows, int m, int folds, uint64_t seed,
                             const std::vector<std::string>& arm_names, const std::string& key,
                             const FoldLearner& learner) {
  if (folds < 2) throw ConfigError(fmt::format("{} is {}; cross-fitting needs at least 2 folds", key, folds));
  const auto parts = fold_rows(rows, folds, seed);
  check_folds(rows, parts, arm_names, key);
  metrics::ScoreTable out;
  out.n = rows.rows, out.m = m;
  out.r.assign(size_t(out.n) * size_t(m), 0.0f), out.c.assign(size_t(out.n) * size_t(m), 0.0f);
  for (int f = 0; f < folds; ++f) {
    if (parts[size_t(f)].empty()) continue;
    std::vector<int64_t> train;
    train.reserve(size_t(rows.rows));
    for (int g = 0; g < folds; ++g)
      if (g != f) train.insert(train.end(), parts[size_t(g)].begin(), parts[size_t(g)].end());
    std::sort(train.begin(), train.end());
    const metrics::ScoreTable p = learner(rows, train, parts[size_t(f)], f);
    if (p.n != int64_t(parts[size_t(f)].size()) || p.m != m)
      throw DataError(fmt::format("{}: fold {}'s model predicted {} x {} values for {} rows x {} arms", key, f, p.n,
                                  p.m, parts[size_t(f)].size(), m));
    for (size_t q = 0; q < parts[size_t(f)].size(); ++q) {
      const int64_t i = parts[size_t(f)][q];
      for (int j = 0; j < m; ++j)
        out.r[size_t(i * m + j)] = p.r[q * size_t(m) + size_t(j)], out.c[size_t(i * m + j)] = p.c[q * size_t(m) + size_t(j)];
    }
  }
  return out;
}

namespace {

// Solves the symmetric positive definite system A x = b (d x d, row-major) by Cholesky; A is overwritten.
bool cholesky_solve(std::vector<double>& A, std::vector<double>& b, int d) {
  for (int j = 0; j < d; ++j) {
    double s = A[size_t(j * d + j)];
    for (int k = 0; k < j; ++k) s -= A[size_t(j * d + k)] * A[size_t(j * d + k)];
    if (!(s > 0)) return false;
    const double l = std::sqrt(s);
    A[size_t(j * d + j)] = l;
    for (int i = j + 1; i < d; ++i) {
      double t = A[size_t(i * d + j)];
      for (int k = 0; k < j; ++k) t -= A[size_t(i * d + k)] * A[size_t(j * d + k)];
      A[size_t(i * d + j)] = t / l;
    }
  }
  for (int i = 0; i < d; ++i) {  // L y = b
    double t = b[size_t(i)];
    for (int k = 0; k < i; ++k) t -= A[size_t(i * d + k)] * b[size_t(k)];
    b[size_t(i)] = t / A[size_t(i * d + i)];
  }
  for (int i = d - 1; i >= 0; --i) {  // L^T x = y
    double t = b[size_t(i)];
    for (int k = i + 1; k < d; ++k) t -= A[size_t(k * d + i)] * b[size_t(k)];
    b[size_t(i)] = t / A[size_t(i * d + i)];
  }
  return true;
}

}  // namespace

metrics::ScoreTable ridge_fit_predict(const data::Table& rows, int m, const std::vector<int64_t>& train,
                                      const std::vector<int64_t>& predict, double penalty) {
  const int F = rows.num_features;
  const float* x = rows.features.data();
  // Standardisation from the training rows.
  std::vector<double> mu(size_t(F), 0), sd(size_t(F), 0);
  for (int64_t i : train)
    for (int f = 0; f < F; ++f) mu[size_t(f)] += x[i * F + f];
  for (int f = 0; f < F; ++f) mu[size_t(f)] /= double(std::max<size_t>(1, train.size()));
  for (int64_t i : train)
    for (int f = 0; f < F; ++f) sd[size_t(f)] += (x[i * F + f] - mu[size_t(f)]) * (x[i * F + f] - mu[size_t(f)]);
  for (int f = 0; f < F; ++f) {
    sd[size_t(f)] = std::sqrt(sd[size_t(f)] / double(std::max<size_t>(1, train.size())));
    if (!(sd[size_t(f)] > 0)) sd[size_t(f)] = 1;  // a constant feature: its coefficient stays 0 under the penalty
  }
  metrics::ScoreTable out;
  out.n = int64_t(predict.size()), out.m = m;
  out.r.assign(predict.size() * size_t(m), 0.0f), out.c.assign(predict.size() * size_t(m), 0.0f);
  std::vector<double> z(static_cast<size_t>(F));
  for (int j = 0; j < m; ++j) {
    // Centred normal equations of arm j's rows: (Z'Z + penalty I) beta = Z'(y - ybar).
    std::vector<double> A(size_t(F) * size_t(F), 0.0), br(size_t(F), 0.0), bc(size_t(F), 0.0), zbar(size_t(F), 0.0);
    double n = 0, yr = 0, yc = 0;
    for (int64_t i : train) {
      if (rows.treatment[size_t(i)] != j) continue;
      n += 1, yr += rows.revenue[size_t(i)], yc += rows.cost[size_t(i)];
      for (int f = 0; f < F; ++f) zbar[size_t(f)] += (x[i * F + f] - mu[size_t(f)]) / sd[size_t(f)];
    }
    if (n == 0) throw DataError(fmt::format("ridge outcome model: no training row of arm {}", j));
    yr /= n, yc /= n;
    for (int f = 0; f < F; ++f) zbar[size_t(f)] /= n;
    for (int64_t i : train) {
      if (rows.treatment[size_t(i)] != j) continue;
      for (int f = 0; f < F; ++f) z[size_t(f)] = (x[i * F + f] - mu[size_t(f)]) / sd[size_t(f)] - zbar[size_t(f)];
      const double dr = rows.revenue[size_t(i)] - yr, dc = rows.cost[size_t(i)] - yc;
      for (int f = 0; f < F; ++f) {
        br[size_t(f)] += z[size_t(f)] * dr, bc[size_t(f)] += z[size_t(f)] * dc;
        for (int g = 0; g <= f; ++g) A[size_t(f * F + g)] += z[size_t(f)] * z[size_t(g)];
      }
    }
    for (int f = 0; f < F; ++f) {
      for (int g = 0; g < f; ++g) A[size_t(g * F + f)] = A[size_t(f * F + g)];
      A[size_t(f * F + f)] += std::max(penalty, 1e-9 * n);
    }
    std::vector<double> A2 = A;
    if (F > 0 && (!cholesky_solve(A, br, F) || !cholesky_solve(A2, bc, F)))
      throw DataError(fmt::format("ridge outcome model: the normal equations of arm {} are singular; raise the penalty "
                                  "(estimator.ridge)",
                                  j));
    for (size_t q = 0; q < predict.size(); ++q) {
      const int64_t i = predict[q];
      double pr = yr, pc = yc;
      for (int f = 0; f < F; ++f) {
        const double zf = (x[i * F + f] - mu[size_t(f)]) / sd[size_t(f)] - zbar[size_t(f)];
        pr += zf * br[size_t(f)], pc += zf * bc[size_t(f)];
      }
      out.r[q * size_t(m) + size_t(j)] = float(pr), out.c[q * size_t(m) + size_t(j)] = float(pc);
    }
  }
  return out;
}

}  // namespace dfcl::decide
