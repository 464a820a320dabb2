// \brief Metrics across ranks: EOM, the multi-arm cost curve and AUCC of RCT rows sharded over the ranks of a
// dist::Communicator, equal to the one-process metrics on the concatenation of every rank's rows (rank 0's first).
//
// Every function here is a collective: every rank calls it, with the same options and budgets, on its own rows (zero
// rows is fine: the rank contributes nothing and still joins every collective). Each call first gathers a small header
// per rank (row count, arm count, arm counts, propensities, the first bad value found locally), so every rank sees
// every rank's problems and throws the same DataError (naming the rank, its local row and the global row) before any
// rank diverges: no rank is left waiting in a collective. docs/metrics.md, "Metrics across ranks".
//
// EOM (DistributedIpwPath, distributed_eom_at/_curve). Each rank builds an IpwPath over its own rows (the per-row
// hull events of ipw_path.h, sorted locally; no row data moves), with the global propensities: the design ones, or
// the global arm shares N_j / N from all-reduced arm counts (bitwise the one-process shares). The bisection bracket
// is the all-reduced max (ReduceOp::kMax) of the local bounds, which is exactly the one-process bound. Then
//     cbar(lambda), rbar(lambda) = (sum over ranks of the local raw IPW sums) / N
// cost per bisection step: one local IpwPath query (a binary search plus <= 256 events) and one all-reduce of two
// doubles; a 60-step curve point is 60 such all-reduces, whatever N. Exactness: the local sums are the one-process
// terms added in another grouping (per rank, then over ranks in rank order), so cbar and rbar agree with the
// one-process values to rounding (1e-12 relative in the tests), not bitwise. The bracket and every midpoint are
// computed the same way, so lambda, the iteration count and `matched` are identical unless a cbar lands within
// rounding of a bisection threshold (b, b (1 +- eps_rel)) — a measure-zero event the tests never meet.
//
// Cost curve (distributed_cost_curve). The control and reference-arm points are sums: each rank's IPW values of
// "everyone on arm j", all-reduced. The curve itself has one point per distinct breakpoint over all rows, in
// decreasing lambda, so its walk needs every rank's breakpoints: each rank sends its cumulative step function
// (lambda, raw cbar, raw rbar per distinct local breakpoint, 24 bytes each, <= 2 per row) by allgather and every rank
// merges them (O(E P) for E breakpoints over P ranks). Same exactness as EOM: the points' lambdas and count are
// exact, their values agree to rounding.
//
// AUCC (distributed_aucc). AUCC walks all rows in one global order of the score, so it cannot be reduced from sums:
// every rank packs its eligible rows (control and the treated arm) as four doubles (score, treated?, revenue, cost;
// the floats convert exactly) and the ranks allgather them in rank order. With contiguous shards that is the
// original row order, so the one-process Aucc (ties: lower row first) sees the same sequence and gives bitwise the
// one-process result on every rank. Memory on EVERY rank: 32 bytes per eligible row of the whole sample received
// (the communicator may briefly hold a second copy), then 20 bytes per row of columns and Aucc's ranking (16 bytes
// per row while sorting, 4 after): at 100M rows about 5-7 GB per rank, and every rank sorts all rows. The
// alternative for larger samples is a distributed sample sort: pick P - 1 splitters of the score from a gathered
// sample, exchange rows so that rank k holds the k-th score range (ties broken by global row index), sort locally,
// exclusive-scan the per-rank (count, CT, CC, RT, RC) so every rank knows its starting sums, and walk the ranks in
// turn passing on the next AUCC bin (the "first x >= step * jbin" rule is sequential): O(N / P) memory per rank, but
// it needs an all-to-all exchange the Communicator does not have yet.
#pragma once
#include <cstdint>  // for int64_t
#include <memory>   // for std::unique_ptr
#include <vector>   // for std::vector

#include "dist/communicator.h"     // for Communicator
#include "metrics/aucc.h"          // for AuccInput, AuccResult
#include "metrics/cost_curve.h"    // for CostCurve, CostCurveOptions
#include "metrics/eom.h"           // for EomOptions, EomPoint
#include "metrics/ipw_path.h"      // for IpwPath
#include "metrics/lambda_bound.h"  // for LambdaBound
#include "metrics/policy_value.h"  // for PolicyValue
#include "metrics/rct_sample.h"    // for RctSample
#include "solver/scores.h"         // for Scores

namespace dfcl::metrics {

/// IpwPath over the rows of every rank. The local sample's `empirical` flag must agree on every rank; with
/// empirical = true its `propensity` is ignored (the global arm shares replace it), otherwise it must be the same
/// design propensities on every rank. A rank with no rows passes n = 0 (null arrays are fine) and the arm count.
class DistributedIpwPath {
 public:
  /// Collective: one allgather of a header per rank, one all-reduce (kMax) of the bound. Throws DataError (on every
  /// rank alike) for mismatched arm counts or propensities, non-finite scores or outcomes, arm ids out of range,
  /// scores of another shape than the sample, or no rows on any rank. The sample's arrays must outlive the path.
  DistributedIpwPath(dist::Communicator& comm, const solver::Scores& scores, const RctSample& sample, int threads = 0);
  ~DistributedIpwPath();

  /// Collective: the one-process IpwPath::at over all ranks' rows; one all-reduce of two doubles.
  PolicyValue at(double lambda) const;
  /// The global bound (exactly the one-process bound).
  const LambdaBound& bound() const { return bound_; }
  /// The propensities every rank uses (the global arm shares when empirical).
  const std::vector<double>& propensity() const { return p_; }
  int64_t total_rows() const { return total_; }
  int64_t row_offset() const { return offset_; }  // global index of this rank's first row
  int64_t local_rows() const { return sample_.n; }
  dist::Communicator& comm() const { return comm_; }
  /// The local path (null on a rank without rows) and the local sample with the global propensities.
  const IpwPath* local() const { return path_.get(); }
  const RctSample& local_sample() const { return sample_; }

 private:
  dist::Communicator& comm_;
  RctSample sample_;
  std::unique_ptr<IpwPath> path_;
  IpwPath::Weights raw_;  // unit weights with total 1: at() returns raw sums
  LambdaBound bound_;
  std::vector<double> p_;
  int64_t total_ = 0, offset_ = 0;
};

/// Collective: eom_at (eom.h) over all ranks' rows. Every rank must pass the same budget and options (checked:
/// ConfigError on every rank otherwise).
EomPoint distributed_eom_at(const DistributedIpwPath& path, double budget, const EomOptions& opt = {});
/// Collective: eom_curve over all ranks' rows, one point per budget (the same budgets on every rank, checked).
std::vector<EomPoint> distributed_eom_curve(const DistributedIpwPath& path, const std::vector<double>& budgets,
                                            const EomOptions& opt = {});
/// Collective: the same from the rank-local scores and rows (builds the path).
std::vector<EomPoint> distributed_eom_curve(dist::Communicator& comm, const solver::Scores& scores,
                                            const RctSample& sample, const std::vector<double>& budgets,
                                            const EomOptions& opt = {}, int threads = 0);

/// Collective: cost_curve (cost_curve.h) over all ranks' rows; the same result on every rank.
CostCurve distributed_cost_curve(const DistributedIpwPath& path, const CostCurveOptions& opt = {});

/// Collective: Aucc(concatenation of every rank's rows, quantiles).result() on every rank (see the header comment for
/// the gather and its memory). `local` holds this rank's rows (n = 0 is fine); treated_arm and quantiles must agree on
/// every rank. Throws DataError on every rank alike, naming the rank and row of a non-finite score or outcome.
AuccResult distributed_aucc(dist::Communicator& comm, const AuccInput& local, int quantiles = 200);

}  // namespace dfcl::metrics
