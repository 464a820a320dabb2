// \brief K-means on the rows of all ranks: k-means++ seeding, Lloyd or mini-batch (Sculley 2010) updates, fit on a
// sample and assign everyone. Every cross-rank quantity (the seeding pool, centroid sums and counts, the farthest point
// an empty cluster is reseeded with) goes through the Communicator, so W ranks give 1 rank's centroids to rounding
// (sums are added in another order) and, away from exact ties, the same assignment.
//
// Determinism: which rows are sampled, pooled for seeding and drawn into a mini-batch depends only on (seed, the
// row's global id), never on the number of ranks or threads.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <cstdint>  // for int64_t, uint64_t
#include <vector>   // for std::vector

namespace dfcl::dist {
class Communicator;
}

namespace dfcl::cluster {

struct KMeansOptions {
  int k = 50;
  int max_iter = 100;          // Lloyd iterations (or mini-batch iterations)
  double tol = 1e-6;           // stop when no centroid's squared move exceeds tol * (the rows' mean squared norm)
  int64_t sample = 1000000;    // rows (over all ranks, in expectation) the centroids are fitted on; 0 = all rows
  int64_t seed_pool = 0;       // rows pooled on every rank for k-means++ seeding; 0 = max(10000, 20 k)
  bool minibatch = false;      // Sculley's mini-batch updates instead of Lloyd's full passes
  int64_t batch = 65536;       // mini-batch rows (over all ranks, in expectation)
  uint64_t seed = 1;
  /// Warm start: these k x d centroids instead of k-means++ (the same on every rank); undefined = k-means++.
  at::Tensor init;
  /// Throws ConfigError naming `cluster.kmeans.<key>` for a bad value.
  void validate() const;
};

struct KMeansResult {
  at::Tensor centroids;       // k x d, float64
  std::vector<int32_t> label;  // per local row: the nearest centroid (ties: the lower index)
  double inertia = 0;          // sum over all ranks' rows of the squared distance to their centroid
  int iterations = 0;
  bool converged = false;
  int reseeded = 0;            // empty clusters reseeded with the farthest sample point
  int64_t fitted_rows = 0;     // rows of the sample (all ranks)
};

/// Fits k centroids to the rows `x` (n_local x d, any float dtype, CPU) of this rank, whose global ids are `gid` (unique
/// over the ranks), then assigns every local row. Every rank must call it with the same options and d. Throws
/// DataError when the ranks hold fewer than k rows in all, naming the counts.
KMeansResult kmeans(const at::Tensor& x, const std::vector<int64_t>& gid, const KMeansOptions& opt,
                    dist::Communicator& comm);

/// The nearest centroid of each row of x (ties: the lower index), in blocks; `dist2`, when given, receives the squared
/// distances. Row results do not depend on the block.
std::vector<int32_t> nearest(const at::Tensor& x, const at::Tensor& centroids, std::vector<double>* dist2 = nullptr);

/// Adjusted Rand index (Hubert and Arabie 1985) of two labelings of the same rows: 1 for identical partitions (up to
/// renaming), ~0 for independent ones.
double adjusted_rand_index(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

}  // namespace dfcl::cluster
