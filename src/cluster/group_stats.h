// \brief Per (cluster, arm) trial statistics of revenue and cost, reduced across ranks, and the group-level scores the
// programme and the policy use: the cell means, with a documented fallback for cells without trial rows and an
// optional robust shift (revenue at mean - z se, cost at mean + z se).
#pragma once
#include <cstdint>  // for int64_t
#include <string>   // for std::string
#include <vector>   // for std::vector

namespace dfcl::dist {
class Communicator;
}

namespace dfcl::cluster {

/// Additive sums per cell (k, j), row-major k x m.
struct GroupStats {
  int k = 0, m = 0;
  std::vector<double> n, sum_r, sum_r2, sum_c, sum_c2;
  size_t cell(int g, int j) const { return size_t(g) * size_t(m) + size_t(j); }
  double mean_r(int g, int j) const { return sum_r[cell(g, j)] / n[cell(g, j)]; }
  double mean_c(int g, int j) const { return sum_c[cell(g, j)] / n[cell(g, j)]; }
  /// Unbiased sample variances (0 with fewer than 2 rows).
  double var_r(int g, int j) const;
  double var_c(int g, int j) const;
  /// Rows of cluster g over all arms.
  double rows(int g) const;
};

/// Sums over this rank's trial rows (cluster label, arm, revenue, cost), reduced over the ranks.
GroupStats group_stats(const std::vector<int32_t>& label, const std::vector<int32_t>& arm, const float* revenue,
                       const float* cost, int k, int m, dist::Communicator& comm);

/// What a cell without enough trial rows (fewer than min_rows) takes.
enum class EmptyCell {
  kGlobalMean,  // the arm's mean over every trial row (all clusters)
  kNearest,     // the cell of the same arm in the nearest cluster (centroid distance) that has enough rows
};
EmptyCell parse_empty_cell(const std::string& name, const std::string& key);

struct GroupScoreOptions {
  EmptyCell empty_cell = EmptyCell::kGlobalMean;
  int64_t min_rows = 10;  // cells with fewer trial rows count as empty (a mean of a handful of rows is noise)
  double robust_z = 0;   // revenue at mean - z se, cost at mean + z se (se = sd / sqrt(n) of the cell)
};

/// Group-level per-user scores (k x m, row-major): what every user of cluster g is predicted to bring and cost on arm j.
struct GroupScores {
  int k = 0, m = 0;
  std::vector<double> revenue, cost;
  int64_t filled_cells = 0;  // cells that took the fallback
  std::string fallback_note;  // one line naming them (empty when none)
};

/// `centroid_dist2` (k x k squared distances between centroids) is read only for EmptyCell::kNearest.
GroupScores group_scores(const GroupStats& s, const GroupScoreOptions& opt,
                         const std::vector<double>& centroid_dist2 = {});

}  // namespace dfcl::cluster
