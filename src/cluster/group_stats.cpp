// \brief Trial statistics per (cluster, arm) and the group scores with their fallback and robust shift (group_stats.h).
#include "cluster/group_stats.h"

#include <ATen/core/Tensor.h>
#include <fmt/format.h>  // for fmt::format
#include <torch/torch.h>

#include <cmath>  // for std::sqrt

#include "core/error.h"         // for ConfigError, DataError
#include "dist/communicator.h"  // for Communicator

namespace dfcl::cluster {

double GroupStats::var_r(int g, int j) const {
  const double c = n[cell(g, j)];
  return c < 2 ? 0.0 : std::max(0.0, (sum_r2[cell(g, j)] - sum_r[cell(g, j)] * sum_r[cell(g, j)] / c) / (c - 1));
}
double GroupStats::var_c(int g, int j) const {
  const double c = n[cell(g, j)];
  return c < 2 ? 0.0 : std::max(0.0, (sum_c2[cell(g, j)] - sum_c[cell(g, j)] * sum_c[cell(g, j)] / c) / (c - 1));
}
double GroupStats::rows(int g) const {
  double t = 0;
  for (int j = 0; j < m; ++j) t += n[cell(g, j)];
  return t;
}

GroupStats group_stats(const std::vector<int32_t>& label, const std::vector<int32_t>& arm, const float* revenue,
                       const float* cost, int k, int m, dist::Communicator& comm) {
  if (label.size() != arm.size())
    throw DataError(fmt::format("group statistics: {} cluster labels for {} trial rows", label.size(), arm.size()));
  const size_t cells = size_t(k) * size_t(m);
  at::Tensor packed = torch::zeros({int64_t(5 * cells)}, torch::kDouble);
  double* p = packed.data_ptr<double>();
  for (size_t i = 0; i < label.size(); ++i) {
    if (label[i] < 0 || label[i] >= k || arm[i] < 0 || arm[i] >= m)
      throw DataError(fmt::format("group statistics: row {} has cluster {} and arm {}; need cluster < {} and arm < {}",
                                  i, label[i], arm[i], k, m));
    const size_t c = size_t(label[i]) * size_t(m) + size_t(arm[i]);
    const double r = revenue[i], q = cost[i];
    p[c] += 1, p[cells + c] += r, p[2 * cells + c] += r * r, p[3 * cells + c] += q, p[4 * cells + c] += q * q;
  }
  comm.allreduce(packed);
  GroupStats s;
  s.k = k, s.m = m;
  auto part = [&](size_t t) { return std::vector<double>(p + t * cells, p + (t + 1) * cells); };
  s.n = part(0), s.sum_r = part(1), s.sum_r2 = part(2), s.sum_c = part(3), s.sum_c2 = part(4);
  return s;
}

EmptyCell parse_empty_cell(const std::string& name, const std::string& key) {
  if (name == "global_mean") return EmptyCell::kGlobalMean;
  if (name == "nearest") return EmptyCell::kNearest;
  throw ConfigError(fmt::format("{}: is '{}'; use global_mean (the arm's mean over all trial rows) or nearest (the "
                                "nearest cluster's cell)",
                                key, name));
}

GroupScores group_scores(const GroupStats& s, const GroupScoreOptions& opt, const std::vector<double>& cd2) {
  if (opt.robust_z < 0) throw ConfigError(fmt::format("cluster.robust_z: is {}; need >= 0", opt.robust_z));
  if (opt.min_rows < 1) throw ConfigError(fmt::format("cluster.min_cell_rows: is {}; need >= 1", opt.min_rows));
  GroupScores g;
  g.k = s.k, g.m = s.m;
  g.revenue.assign(size_t(s.k) * size_t(s.m), 0.0);
  g.cost = g.revenue;
  auto ok = [&](int c, int j) { return s.n[s.cell(c, j)] >= double(opt.min_rows); };
  std::string cells;
  for (int j = 0; j < s.m; ++j) {
    double n = 0, r = 0, c = 0;  // the arm over all clusters
    for (int q = 0; q < s.k; ++q) n += s.n[s.cell(q, j)], r += s.sum_r[s.cell(q, j)], c += s.sum_c[s.cell(q, j)];
    if (n == 0)
      throw DataError(fmt::format("group statistics: arm {} has no trial row at all, so no cluster can be scored on "
                                  "it; check the trial's arms",
                                  j));
    for (int q = 0; q < s.k; ++q) {
      const size_t at = s.cell(q, j);
      int src = q;
      if (!ok(q, j)) {
        ++g.filled_cells;
        if (g.filled_cells <= 5) cells += fmt::format("{}({}, {})", g.filled_cells > 1 ? ", " : "", q, j);
        src = -1;
        if (opt.empty_cell == EmptyCell::kNearest) {
          double best = 0;
          for (int o = 0; o < s.k; ++o) {
            const double dd = cd2.empty() ? 0 : cd2[size_t(q) * size_t(s.k) + size_t(o)];
            if (o != q && ok(o, j) && (src < 0 || dd < best)) src = o, best = dd;
          }
        }
        if (src < 0) {  // global mean (or no other cluster has rows on this arm)
          g.revenue[at] = r / n, g.cost[at] = c / n;
          continue;
        }
      }
      const double cnt = s.n[s.cell(src, j)];
      const double se_r = std::sqrt(s.var_r(src, j) / cnt), se_c = std::sqrt(s.var_c(src, j) / cnt);
      g.revenue[at] = s.mean_r(src, j) - opt.robust_z * se_r;
      g.cost[at] = s.mean_c(src, j) + opt.robust_z * se_c;
    }
  }
  if (g.filled_cells > 0)
    g.fallback_note = fmt::format(
        "{} of {} (cluster, arm) cells have fewer than {} trial rows ({}{}); they take {}. Fewer clusters "
        "(cluster.k) or more trial rows fill them",
        g.filled_cells, s.k * s.m, opt.min_rows, cells, g.filled_cells > 5 ? ", ..." : "",
        opt.empty_cell == EmptyCell::kNearest ? "the nearest cluster's cell of the same arm"
                                               : "the arm's mean over all trial rows");
  return g;
}

}  // namespace dfcl::cluster
