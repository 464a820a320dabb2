// \brief Bootstrap confidence intervals for EOM and AUCC: resampling as per-row counts, never copies of the data.
//
// Replicate b draws n rows with replacement (multinomial counts, from dfcl::Rng(seed, stream, b), so any thread
// count gives the same replicates) and re-evaluates the statistic with row i counted counts[i] times. The interval is
// the percentile interval of the finite replicate values at the requested level; se is their standard deviation.
// Memory: one n-vector of counts per worker thread.
#pragma once
#include <cstdint>     // for int64_t, uint32_t, uint64_t
#include <functional>  // for std::function
#include <vector>      // for std::vector

#include "metrics/aucc.h"      // for Aucc
#include "metrics/eom.h"       // for EomOptions, EomPoint
#include "metrics/ipw_path.h"  // for IpwPath

namespace dfcl::metrics {

struct BootstrapOptions {
  int replicates = 200;
  uint64_t seed = 0;
  double level = 0.95;  // two-sided coverage
  int threads = 0;      // 0 = all cores
};

struct Interval {
  double estimate = 0;  // the statistic on the original sample
  double lo = 0, hi = 0;
  double se = 0;
  int replicates = 0;  // finite replicate values used
};

/// Counts of replicate `replicate`: n draws with replacement from n rows (sum = n).
void resample_counts(int64_t n, uint64_t seed, int replicate, std::vector<uint32_t>& counts);

/// stat(counts, out) writes one value per entry of `estimate` (NaN for a replicate where it is undefined); it runs
/// concurrently on several threads, so it must only read shared state. Throws ConfigError for bad options.
using Statistic = std::function<void(const uint32_t* counts, std::vector<double>& out)>;
std::vector<Interval> bootstrap(int64_t n, const std::vector<double>& estimate, const BootstrapOptions& opt,
                                const Statistic& stat);

/// CIs of the EOM revenue at each point's budget (the points from eom_curve on the same path).
std::vector<Interval> bootstrap_eom(const IpwPath& path, const std::vector<EomPoint>& points, const EomOptions& eom,
                                    const BootstrapOptions& opt);
/// CIs of the IPW revenue of the dual policy at fixed lambdas (decisions that do not depend on the sample, e.g. lambda
/// calibrated elsewhere or from the predicted costs): the replicates re-weight the rows, lambda stays.
std::vector<Interval> bootstrap_at(const IpwPath& path, const std::vector<double>& lambdas, const BootstrapOptions& opt);
/// CI of AUCC.
Interval bootstrap_aucc(const Aucc& aucc, double estimate, const BootstrapOptions& opt);

}  // namespace dfcl::metrics
