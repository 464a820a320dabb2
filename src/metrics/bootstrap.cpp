// \brief Bootstrap (see bootstrap.h).
#include "metrics/bootstrap.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::sort
#include <cmath>      // for std::isfinite, std::sqrt, std::floor
#include <limits>     // for std::numeric_limits

#include "core/error.h"     // for ConfigError
#include "core/parallel.h"  // for parallel_for
#include "core/rng.h"       // for Rng
#include "core/threads.h"   // for resolve_threads

namespace dfcl::metrics {
namespace {

constexpr uint64_t kBootstrapStream = 0xB0075ull;

// Linear interpolation between order statistics (numpy's default percentile).
double quantile(const std::vector<double>& sorted, double q) {
  const double h = (sorted.size() - 1) * q;
  const size_t a = static_cast<size_t>(std::floor(h));
  const size_t b = std::min(a + 1, sorted.size() - 1);
  return sorted[a] + (h - a) * (sorted[b] - sorted[a]);
}

}  // namespace

void resample_counts(int64_t n, uint64_t seed, int replicate, std::vector<uint32_t>& counts) {
  counts.assign(n, 0);
  Rng rng(seed, kBootstrapStream, uint64_t(replicate));
  const unsigned __int128 range = static_cast<uint64_t>(n);
  for (int64_t k = 0; k < n; ++k) ++counts[static_cast<uint64_t>((rng.next() * range) >> 64)];
}

std::vector<Interval> bootstrap(int64_t n, const std::vector<double>& estimate, const BootstrapOptions& opt,
                                const Statistic& stat) {
  if (opt.replicates < 2)
    throw ConfigError(
        fmt::format("bootstrap replicates is {}; use at least 2 (100 or more for a 95% interval)", opt.replicates));
  if (!(opt.level > 0 && opt.level < 1))
    throw ConfigError(fmt::format("bootstrap level is {}; it must lie in (0, 1), e.g. 0.95", opt.level));
  const size_t V = estimate.size();
  const int R = opt.replicates;
  std::vector<double> values(size_t(R) * V);
  const int workers = std::min(resolve_threads(opt.threads), R);
  parallel_for(workers, workers, [&](int64_t w) {
    std::vector<uint32_t> counts;
    std::vector<double> out(V);
    for (int b = static_cast<int>(w); b < R; b += workers) {
      resample_counts(n, opt.seed, b, counts);
      stat(counts.data(), out);
      std::copy(out.begin(), out.end(), values.begin() + size_t(b) * V);
    }
  });
  std::vector<Interval> res(V);
  for (size_t v = 0; v < V; ++v) {
    std::vector<double> col;
    for (int b = 0; b < R; ++b)
      if (std::isfinite(values[size_t(b) * V + v])) col.push_back(values[size_t(b) * V + v]);
    Interval& it = res[v];
    it.estimate = estimate[v];
    it.replicates = static_cast<int>(col.size());
    if (col.size() < 2) {
      it.lo = it.hi = it.se = std::numeric_limits<double>::quiet_NaN();
      continue;
    }
    std::sort(col.begin(), col.end());
    it.lo = quantile(col, (1 - opt.level) / 2);
    it.hi = quantile(col, 1 - (1 - opt.level) / 2);
    double mean = 0, ss = 0;
    for (double x : col) mean += x;
    mean /= double(col.size());
    for (double x : col) ss += (x - mean) * (x - mean);
    it.se = std::sqrt(ss / double(col.size() - 1));
  }
  return res;
}

std::vector<Interval> bootstrap_eom(const IpwPath& path, const std::vector<EomPoint>& points, const EomOptions& eom,
                                    const BootstrapOptions& opt) {
  std::vector<double> est;
  for (const auto& p : points) est.push_back(p.revenue);
  return bootstrap(path.sample().n, est, opt, [&](const uint32_t* counts, std::vector<double>& out) {
    const IpwPath::Weights w = path.weigh(counts);
    for (size_t k = 0; k < points.size(); ++k) out[k] = eom_at(path, w, points[k].budget, eom).revenue;
  });
}

std::vector<Interval> bootstrap_at(const IpwPath& path, const std::vector<double>& lambdas, const BootstrapOptions& opt) {
  std::vector<double> est;
  for (double l : lambdas) est.push_back(path.at(l).revenue);
  return bootstrap(path.sample().n, est, opt, [&](const uint32_t* counts, std::vector<double>& out) {
    const IpwPath::Weights w = path.weigh(counts);
    for (size_t k = 0; k < lambdas.size(); ++k) out[k] = path.at(lambdas[k], w).revenue;
  });
}

Interval bootstrap_aucc(const Aucc& aucc, double estimate, const BootstrapOptions& opt) {
  return bootstrap(aucc.input_rows(), {estimate}, opt,
                   [&](const uint32_t* counts, std::vector<double>& out) { out[0] = aucc.value(counts); })[0];
}

}  // namespace dfcl::metrics
