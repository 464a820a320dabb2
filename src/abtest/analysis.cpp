// \brief Analysis: validation of one comparison's units on every rank, the ratio linearisation, the prediction cache.
//
// Validation is one allgather of a small header per rank (lengths, columns present, arm counts, and per column the
// first bad row and the number of bad values found locally), so every rank sees every rank's problems and throws the
// same DataError from the same global facts: no rank goes on into a collective that another rank has left.
#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::max, std::min
#include <cmath>      // for std::isfinite, std::isnan, std::fabs, std::sqrt, std::pow, std::log10

#include "abtest/abtest.h"
#include "abtest/internal.h"    // for cross_fitted_prediction, where_prefix, feature_name
#include "abtest/stats.h"       // for arm_moments
#include "core/error.h"         // for DataError
#include "dist/communicator.h"  // for Communicator

namespace dfcl::abtest {
namespace {

// One rank's header. Rows are global and 1-based (0: none found); a "bad" entry holds (first row, its value, count).
enum Field {
  kN,
  kLenT,
  kLenD,
  kLenPre,
  kLenX,
  kNumFeatures,
  kOffset,
  kLengthsOk,
  kBadY,  // 3 slots each: first row, the value there, count
  kBadD = kBadY + 3,
  kBadPre = kBadD + 3,
  kBadX = kBadPre + 3,
  kBadXFeature = kBadX + 3,
  kBadT,  // 3 slots: first row, value, count
  kNonPosD = kBadT + 3,
  kHugeY = kNonPosD + 3,  // 3 slots each: first row whose |value| > kMaxMagnitude, the value, count
  kHugeD = kHugeY + 3,
  kHugePre = kHugeD + 3,
  kHugeX = kHugePre + 3,
  kHugeXFeature = kHugeX + 3,
  kArm0,
  kArm1,
  kFields
};

const char* value_text(double v) { return std::isnan(v) ? "NaN" : (v > 0 ? "inf" : "-inf"); }

// The largest |value| an analysis accepts. The estimators sum squares (variances, normal equations) and MLRATE's
// sandwich sums fourth powers (residual^2 x covariate^2) over up to ~1e9 units; 1e9 (1e70)^4 stays below the largest
// double (1.8e308). Beyond it a variance overflows to inf and the SE, CI and p-value come out null and 1 (measured:
// metrics near 1e300; MLRATE already at 1e140). No real metric comes near 1e70.
constexpr double kMaxMagnitude = 1e70;

// Records into h[slot + i] the first (row, value) and the count of values for which bad(value) holds.
template <class Bad>
void note(std::vector<double>& h, int slot, int64_t row, double v, const Bad& bad) {
  if (!bad(v)) return;
  if (h[slot + 2] == 0) h[slot] = double(row), h[slot + 1] = v;
  h[slot + 2] += 1;
}
bool non_finite(double v) { return !std::isfinite(v); }
bool huge(double v) { return std::isfinite(v) && std::fabs(v) > kMaxMagnitude; }

// Records a column's (n values) first non-finite value and their count into h[slot..slot+2], and its first value
// beyond kMaxMagnitude and their count into h[huge_slot..huge_slot+2].
void scan_finite(const double* col, int64_t n, int64_t offset, std::vector<double>& h, int slot, int huge_slot) {
  for (int64_t i = 0; i < n; ++i) {
    note(h, slot, offset + i + 1, col[i], non_finite);
    note(h, huge_slot, offset + i + 1, col[i], huge);
  }
}

// The entry with the smallest first row over ranks (and the total count); rows 0 (none) are skipped.
struct Bad {
  double row = 0, value = 0, count = 0;
  int rank = -1;
};
Bad first_bad(const std::vector<std::vector<double>>& all, int slot) {
  Bad b;
  for (size_t r = 0; r < all.size(); ++r) {
    const double* h = all[r].data() + slot;
    if (h[2] == 0) continue;
    b.count += h[2];
    if (b.rank < 0 || h[0] < b.row) b.row = h[0], b.value = h[1], b.rank = int(r);
  }
  return b;
}

}  // namespace

struct Analysis::Impl {
  const Units* units = nullptr;
  Options options;
  dist::Communicator* comm = nullptr;
  int64_t n_arm[2] = {0, 0};
  bool ratio = false, has_pre = false;
  int num_features = 0;
  std::vector<double> w;  // the linearised outcome (ratio metric)
  Linearisation lin;      // its R_g and Dbar_g
  bool has_prediction = false;
  std::vector<double> prediction;
};

Analysis::~Analysis() = default;

Analysis::Analysis(const Units& units, const Options& options, dist::Communicator& comm) : impl_(new Impl) {
  check_options(options);
  impl_->units = &units;
  impl_->options = options;
  impl_->comm = &comm;
  const std::string where = where_prefix(units);
  const int64_t n = units.size();

  // This rank's header.
  std::vector<double> h(kFields, 0.0);
  h[kN] = double(n), h[kLenT] = double(units.t.size()), h[kLenD] = double(units.d.size());
  h[kLenPre] = double(units.pre.size()), h[kLenX] = double(units.x.size());
  h[kNumFeatures] = units.num_features, h[kOffset] = double(units.offset);
  const bool lengths_ok = units.t.size() == size_t(n) && (units.d.empty() || units.d.size() == size_t(n)) &&
                          (units.pre.empty() || units.pre.size() == size_t(n)) && units.num_features >= 0 &&
                          units.x.size() == size_t(n) * size_t(std::max(units.num_features, 0)) && units.offset >= 0;
  h[kLengthsOk] = lengths_ok ? 1 : 0;
  if (lengths_ok) {
    scan_finite(units.y.data(), n, units.offset, h, kBadY, kHugeY);
    if (!units.d.empty()) scan_finite(units.d.data(), n, units.offset, h, kBadD, kHugeD);
    if (!units.pre.empty()) scan_finite(units.pre.data(), n, units.offset, h, kBadPre, kHugePre);
    const int F = units.num_features;
    for (int64_t i = 0; i < n; ++i)
      for (int j = 0; j < F; ++j) {
        const double v = units.x[size_t(i) * F + j];
        if (non_finite(v) && h[kBadX + 2] == 0) h[kBadXFeature] = j;
        if (huge(v) && h[kHugeX + 2] == 0) h[kHugeXFeature] = j;
        note(h, kBadX, units.offset + i + 1, v, non_finite);
        note(h, kHugeX, units.offset + i + 1, v, huge);
      }
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t t = units.t[i];
      if (t > 1) {
        if (h[kBadT + 2] == 0) h[kBadT] = double(units.offset + i + 1), h[kBadT + 1] = t;
        h[kBadT + 2] += 1;
      } else {
        h[t ? kArm1 : kArm0] += 1;
      }
      if (!units.d.empty() && std::isfinite(units.d[i]) && units.d[i] <= 0) {
        if (h[kNonPosD + 2] == 0) h[kNonPosD] = double(units.offset + i + 1), h[kNonPosD + 1] = units.d[i];
        h[kNonPosD + 2] += 1;
      }
    }
  }
  const std::vector<std::vector<double>> all = comm.allgather(h);
  const int P = int(all.size());
  auto rank_text = [&](int r) { return P > 1 ? fmt::format("rank {}: ", r) : std::string(); };

  // Lengths, rank by rank.
  for (int r = 0; r < P; ++r) {
    const auto& a = all[r];
    if (a[kLengthsOk] == 1) continue;
    const int64_t rn = int64_t(a[kN]);
    std::string what;
    if (a[kNumFeatures] < 0) {
      what = fmt::format("num_features is {}; give 0 (no features) or more", a[kNumFeatures]);
    } else if (a[kOffset] < 0) {
      what = fmt::format("offset is {}; give the global index (0-based) of this rank's first unit", a[kOffset]);
    } else {
      auto col = [&](const std::string& name, double len, double want) {
        if (len != want && what.empty())
          what = fmt::format("column '{}' has {} values but '{}' has {}", name, int64_t(len), units.y_name, rn);
      };
      col(units.t_name, a[kLenT], double(rn));
      if (a[kLenD] != 0) col(units.d_name, a[kLenD], double(rn));
      if (a[kLenPre] != 0) col(units.pre_name, a[kLenPre], double(rn));
      if (what.empty())
        what = fmt::format("the features x have {} values but {} units x {} features need {}", int64_t(a[kLenX]), rn,
                           int64_t(a[kNumFeatures]), rn * int64_t(a[kNumFeatures]));
    }
    throw DataError(
        fmt::format("{}{}column lengths differ: {}; give every column one value per unit (x: "
                    "num_features values per unit, unit by unit)",
                    where, rank_text(r), what));
  }
  // The same columns on every rank that has units.
  int first = -1;
  for (int r = 0; r < P; ++r) {
    if (all[r][kN] == 0) continue;
    if (first < 0) {
      first = r;
      continue;
    }
    const auto &a = all[first], &b = all[r];
    auto differ = [&](const std::string& what, bool x, bool y) {
      if (x != y)
        throw DataError(fmt::format("{}rank {} {} and rank {} {}; every rank must pass the same columns", where, first,
                                    x ? "has " + what : "lacks " + what, r, y ? "has it" : "does not"));
    };
    differ(fmt::format("the denominator column '{}'", units.d_name), a[kLenD] > 0, b[kLenD] > 0);
    differ(fmt::format("the pre-period column '{}'", units.pre_name), a[kLenPre] > 0, b[kLenPre] > 0);
    if (a[kNumFeatures] != b[kNumFeatures])
      throw DataError(fmt::format("{}rank {} has {} features and rank {} has {}; every rank must pass the same columns",
                                  where, first, int64_t(a[kNumFeatures]), r, int64_t(b[kNumFeatures])));
  }
  if (first >= 0) {
    impl_->ratio = all[first][kLenD] > 0;
    impl_->has_pre = all[first][kLenPre] > 0;
    impl_->num_features = int(all[first][kNumFeatures]);
  }

  // Values: non-finite, the arm column, the denominator.
  auto check_finite = [&](int slot, const std::string& column) {
    const Bad b = first_bad(all, slot);
    if (b.rank < 0) return;
    throw DataError(fmt::format("{}column '{}' has {} at row {}{}; drop or impute those units before the analysis",
                                where, column, value_text(b.value), int64_t(b.row),
                                b.count > 1 ? fmt::format(" ({} non-finite values in all)", int64_t(b.count)) : ""));
  };
  check_finite(kBadY, units.y_name);
  check_finite(kBadD, units.d_name);
  check_finite(kBadPre, units.pre_name);
  {
    const Bad b = first_bad(all, kBadX);
    if (b.rank >= 0)
      throw DataError(
          fmt::format("{}feature column '{}' has {} at row {}{}; drop or impute those units before the analysis", where,
                      feature_name(units, int(all[b.rank][kBadXFeature])), value_text(b.value), int64_t(b.row),
                      b.count > 1 ? fmt::format(" ({} non-finite values in all)", int64_t(b.count)) : ""));
  }
  // Values too large to square (kMaxMagnitude).
  auto check_magnitude = [&](int slot, const std::string& column) {
    const Bad b = first_bad(all, slot);
    if (b.rank < 0) return;
    throw DataError(fmt::format(
        "{}{} has {:g} at row {} ({} values beyond +-{:g}): squares of values this large overflow double "
        "precision, so no variance, standard error or p-value could be computed; rescale the column before the "
        "analysis (e.g. divide it by {:g}: effects and CIs then come out in those units)",
        where, column, b.value, int64_t(b.row), int64_t(b.count), kMaxMagnitude,
        std::pow(10.0, std::floor(std::log10(std::fabs(b.value))))));
  };
  check_magnitude(kHugeY, fmt::format("column '{}'", units.y_name));
  check_magnitude(kHugeD, fmt::format("column '{}'", units.d_name));
  check_magnitude(kHugePre, fmt::format("column '{}'", units.pre_name));
  if (const Bad b = first_bad(all, kHugeX); b.rank >= 0)
    check_magnitude(kHugeX, fmt::format("feature column '{}'", feature_name(units, int(all[b.rank][kHugeXFeature]))));
  {
    const Bad b = first_bad(all, kBadT);
    if (b.rank >= 0)
      throw DataError(
          fmt::format("{}column '{}' is {} at row {} ({} such values); the arm column holds 1 "
                      "(treatment) or 0 (control)",
                      where, units.t_name, int64_t(b.value), int64_t(b.row), int64_t(b.count)));
  }
  {
    const Bad b = first_bad(all, kNonPosD);
    if (b.rank >= 0)
      throw DataError(fmt::format(
          "{}column '{}' (the ratio metric's denominator) is {} at row {} ({} units have a denominator <= 0); a ratio "
          "metric needs a positive denominator for every unit: drop the units without orders (denominator 0) before "
          "the analysis, or analyse the numerator '{}' as a count metric (per-unit value) instead",
          where, units.d_name, b.value, int64_t(b.row), int64_t(b.count), units.y_name));
  }

  // Arms.
  for (int r = 0; r < P; ++r) impl_->n_arm[0] += int64_t(all[r][kArm0]), impl_->n_arm[1] += int64_t(all[r][kArm1]);
  const int64_t n0 = impl_->n_arm[0], n1 = impl_->n_arm[1];
  if (n0 + n1 == 0)
    throw DataError(fmt::format("{}no units: the comparison is empty; check the filter that selected it", where));
  for (int g = 1; g >= 0; --g) {
    const char* arm = g ? "treatment" : "control";
    const int64_t mine = impl_->n_arm[g], other = impl_->n_arm[1 - g];
    if (mine == 0)
      throw DataError(fmt::format(
          "{}arm {} ({} = {}) has no units: all {} units are in arm {} ({} = {}); a comparison "
          "needs units in both arms: check the arm column '{}' and the filter that selected "
          "the comparison",
          where, arm, units.t_name, g, other, g ? "control" : "treatment", units.t_name, 1 - g, units.t_name));
    if (mine == 1)
      throw DataError(fmt::format("{}arm {} ({} = {}) has only 1 unit; a variance needs at least 2 units per arm",
                                  where, arm, units.t_name, g));
  }

  // The pre-period covariate must vary (CUPED's theta divides by its variance).
  if (impl_->has_pre) {
    const ArmMoments m = arm_moments(units.pre.data(), nullptr, units.t.data(), n, comm);
    const double sd = std::sqrt(m.pooled.suu / m.pooled.n);
    if (!(sd > 1e-12 * std::fabs(m.pooled.mean_u)) || sd == 0)
      throw DataError(
          fmt::format("{}the pre-period covariate '{}' has zero variance (all {} units have {} = {}): it "
                      "carries no information about the outcome, so CUPED cannot use it; drop the "
                      "covariate (CUPED then equals DIM) or give another pre-period column",
                      where, units.pre_name, n0 + n1, units.pre_name, m.pooled.mean_u));
  }

  // Ratio metric: the group-specific linearisation (abtest.h).
  if (impl_->ratio) {
    std::vector<double> s(4, 0.0);  // sum y, sum d per arm
    for (int64_t i = 0; i < n; ++i) {
      const int g = units.t[i] ? 1 : 0;
      s[2 * g] += units.y[i], s[2 * g + 1] += units.d[i];
    }
    comm.allreduce_values(s);
    double* r = impl_->lin.r;
    double* dbar = impl_->lin.dbar;
    for (int g = 0; g < 2; ++g) r[g] = s[2 * g] / s[2 * g + 1], dbar[g] = s[2 * g + 1] / double(impl_->n_arm[g]);
    impl_->w.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      const int g = units.t[i] ? 1 : 0;
      impl_->w[i] = r[g] + (units.y[i] - r[g] * units.d[i]) / dbar[g];
    }
  }
}

const std::vector<double>& Analysis::outcome() const { return impl_->ratio ? impl_->w : impl_->units->y; }

const std::vector<double>& Analysis::prediction() {
  if (!impl_->has_prediction) {
    if (impl_->num_features == 0)
      throw DataError(
          fmt::format("{}the ML covariate (CUPAC, MLRATE, STATE) needs features, and the units have none; "
                      "give feature columns, or run dim and cuped only",
                      where_prefix(*impl_->units)));
    impl_->prediction =
        cross_fitted_prediction(*impl_->units, impl_->num_features, outcome(), impl_->options, *impl_->comm);
    impl_->has_prediction = true;
  }
  return impl_->prediction;
}

const Units& Analysis::units() const { return *impl_->units; }
const Options& Analysis::options() const { return impl_->options; }
dist::Communicator& Analysis::comm() const { return *impl_->comm; }
int64_t Analysis::global_n(int arm) const { return impl_->n_arm[arm ? 1 : 0]; }
bool Analysis::ratio() const { return impl_->ratio; }
const Linearisation& Analysis::linearisation() const { return impl_->lin; }
bool Analysis::has_pre() const { return impl_->has_pre; }
int Analysis::num_features() const { return impl_->num_features; }

std::string where_prefix(const Units& u) { return (u.where.empty() ? std::string("the A/B data") : u.where) + ": "; }

std::string feature_name(const Units& u, int j) {
  return j >= 0 && size_t(j) < u.feature_names.size() ? u.feature_names[size_t(j)] : fmt::format("x{}", j + 1);
}

}  // namespace dfcl::abtest
