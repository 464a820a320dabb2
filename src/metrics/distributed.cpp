// \brief Metrics across ranks (see distributed.h): rank headers, distributed IPW path, EOM, cost curve, AUCC.
#include "metrics/distributed.h"

#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join

#include <algorithm>   // for std::max
#include <cmath>       // for std::abs, std::isfinite
#include <functional>  // for std::function
#include <limits>      // for std::numeric_limits
#include <string>      // for std::string

#include "core/error.h"   // for DataError, ConfigError
#include "solver/hull.h"  // for kMaxArms

namespace dfcl::metrics {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// What a rank found wrong with its own rows (the first problem, in row order). Every rank formats the message from
// the gathered headers, so every rank throws the same error.
enum Issue : int {
  kOk = 0,
  kArmsRange,   // m outside [1, kMaxArms]
  kShape,       // scores of another shape than the sample (row = scores rows, arm = scores arms)
  kNullColumn,  // a column is null although the rank has rows
  kTooManyRows,
  kArmId,    // arm id out of range (value = the id)
  kRevenue,  // non-finite observed revenue
  kCost,     // non-finite observed cost
  kRHat,     // non-finite r_hat (arm = the arm)
  kCHat,     // non-finite c_hat
  kScore,    // non-finite AUCC score
};

struct Found {
  int issue = kOk;
  int64_t row = -1;
  int arm = -1;
  double value = 0;
};

// One rank's header as gathered: [n, m, empirical, issue, row, arm, value, #counts, counts..., #p, p...].
struct RankHeader {
  int64_t n = 0;
  int m = 0;
  bool empirical = false;
  Found found;
  std::vector<double> counts, propensity;
};

std::vector<double> pack(const RankHeader& h) {
  std::vector<double> v = {double(h.n),           double(h.m),         h.empirical ? 1.0 : 0.0,
                           double(h.found.issue), double(h.found.row), double(h.found.arm),
                           h.found.value};
  v.push_back(double(h.counts.size()));
  v.insert(v.end(), h.counts.begin(), h.counts.end());
  v.push_back(double(h.propensity.size()));
  v.insert(v.end(), h.propensity.begin(), h.propensity.end());
  return v;
}

RankHeader unpack(const std::vector<double>& v, int rank) {
  auto bad = [rank] {
    return DataError(
        fmt::format("metrics across ranks: rank {} sent a malformed header; every rank must run the "
                    "same dfcl build and call the same metric",
                    rank));
  };
  if (v.size() < 9) throw bad();
  RankHeader h;
  h.n = int64_t(v[0]), h.m = int(v[1]), h.empirical = v[2] != 0;
  h.found = {int(v[3]), int64_t(v[4]), int(v[5]), v[6]};
  const size_t nc = size_t(v[7]);
  if (v.size() < 9 + nc) throw bad();
  h.counts.assign(v.begin() + 8, v.begin() + 8 + nc);
  const size_t np = size_t(v[8 + nc]);
  if (v.size() != 9 + nc + np) throw bad();
  h.propensity.assign(v.begin() + 9 + nc, v.end());
  return h;
}

// "rank 1 of 3, row 17 (global row 1017)".
std::string where(int rank, int world, int64_t row, int64_t offset) {
  return fmt::format("rank {} of {}, row {} (global row {})", rank, world, row, offset + row);
}

std::string issue_message(const char* what, const Found& f, const RankHeader& h, int rank, int world, int64_t offset) {
  const std::string at = where(rank, world, f.row, offset);
  switch (f.issue) {
    case kArmsRange:
      return fmt::format("{}: rank {} of {} passes {} arms; metrics need 1 to {} arms (arm 0 = control)", what, rank,
                         world, h.m, solver::kMaxArms);
    case kShape:
      return fmt::format(
          "{}: rank {} of {}: its scores have {} rows and {} arms but its sample has {} rows and {} "
          "arms; each rank's scores must hold one row per local sample row, every arm predicted",
          what, rank, world, f.row, f.arm, h.n, h.m);
    case kNullColumn:
      return fmt::format(
          "{}: rank {} of {} has {} rows but a column (arm, revenue, cost or scores) is missing "
          "(null); pass every column for the local rows",
          what, rank, world, h.n);
    case kTooManyRows:
      return fmt::format("{}: rank {} of {} holds {} rows; one rank evaluates < 2^31 rows, use more ranks", what, rank,
                         world, h.n);
    case kArmId:
      return fmt::format("{}: {}: arm id {} is outside [0, {}); fix the treatment column", what, at, f.value, h.m);
    case kRevenue:
      return fmt::format("{}: {}: observed revenue is {}; replace missing values upstream", what, at, f.value);
    case kCost:
      return fmt::format("{}: {}: observed cost is {}; replace missing values upstream", what, at, f.value);
    case kRHat:
    case kCHat:
      return fmt::format(
          "{}: {}, arm {}: {} is {}; fix the model output on that rank (every prediction must be a "
          "finite number)",
          what, at, f.arm, f.issue == kRHat ? "r_hat" : "c_hat", f.value);
    case kScore:
      return fmt::format("{}: {}: score is {}; scores must be finite", what, at, f.value);
    default:
      return fmt::format("{}: rank {} of {} reports problem {} at row {}", what, rank, world, f.issue, f.row);
  }
}

// The first problem of this rank's rows and scores (O(n m)), and the arm counts.
RankHeader local_header(const solver::Scores& sc, const RctSample& s) {
  RankHeader h;
  h.n = s.n, h.m = s.m, h.empirical = s.empirical;
  if (!s.empirical) h.propensity = s.propensity;
  Found& f = h.found;
  if (s.m < 1 || s.m > solver::kMaxArms) {
    f.issue = kArmsRange;
    return h;
  }
  h.counts.assign(s.m, 0.0);
  if (s.n < 0 || sc.n != s.n || sc.m != s.m) {
    f = {kShape, sc.n, sc.m, 0};
    return h;
  }
  if (s.n >= (int64_t(1) << 31)) {
    f.issue = kTooManyRows;
    return h;
  }
  if (s.n > 0 && (!s.arm || !s.revenue || !s.cost || !sc.r || !sc.c)) {
    f.issue = kNullColumn;
    return h;
  }
  const int m = s.m;
  for (int64_t i = 0; i < s.n; ++i) {
    const int t = s.arm[i];
    if (t < 0 || t >= m) {
      f = {kArmId, i, -1, double(t)};
      return h;
    }
    h.counts[t] += 1;
    if (!std::isfinite(s.revenue[i])) {
      f = {kRevenue, i, -1, s.revenue[i]};
      return h;
    }
    if (!std::isfinite(s.cost[i])) {
      f = {kCost, i, -1, s.cost[i]};
      return h;
    }
    for (int j = 0; j < m; ++j) {
      if (!std::isfinite(sc.r[i * m + j])) {
        f = {kRHat, i, j, sc.r[i * m + j]};
        return h;
      }
      if (!std::isfinite(sc.c[i * m + j])) {
        f = {kCHat, i, j, sc.c[i * m + j]};
        return h;
      }
    }
  }
  return h;
}

struct Global {
  std::vector<double> propensity;
  int64_t total = 0, offset = 0;
};

// Gathers every rank's header and checks them; every rank throws the same error or returns the same propensities.
Global agree(dist::Communicator& comm, const solver::Scores& sc, const RctSample& s) {
  const char* what = "metrics across ranks";
  const std::vector<std::vector<double>> all = comm.allgather(pack(local_header(sc, s)));
  const int world = int(all.size());
  std::vector<RankHeader> h;
  for (int r = 0; r < world; ++r) h.push_back(unpack(all[r], r));
  std::vector<int> arms;
  for (const auto& x : h) arms.push_back(x.m);
  for (int r = 1; r < world; ++r)
    if (h[r].m != h[0].m)
      throw DataError(
          fmt::format("{}: the ranks disagree on the number of arms (rank 0: {}, rank {}: {}; per rank: "
                      "[{}]); every rank must pass the same arms, control included",
                      what, h[0].m, r, h[r].m, fmt::join(arms, ", ")));
  Global g;
  std::vector<int64_t> offset(world, 0);
  for (int r = 0; r < world; ++r) {
    if (r > 0) offset[r] = offset[r - 1] + std::max<int64_t>(h[r - 1].n, 0);
    g.total += std::max<int64_t>(h[r].n, 0);
  }
  for (int r = 0; r < world; ++r)
    if (h[r].found.issue != kOk) throw DataError(issue_message(what, h[r].found, h[r], r, world, offset[r]));
  for (int r = 1; r < world; ++r)
    if (h[r].empirical != h[0].empirical)
      throw DataError(
          fmt::format("{}: rank 0 uses {} propensities but rank {} uses {}; set the sample's empirical "
                      "flag alike on every rank",
                      what, h[0].empirical ? "empirical" : "design", r, h[r].empirical ? "empirical" : "design"));
  const int m = h[0].m;
  if (g.total <= 0)
    throw DataError(
        fmt::format("{}: no RCT rows on any of the {} ranks; metrics need randomised-trial rows (check "
                    "the split and the sharding)",
                    what, world));
  if (h[0].empirical) {
    std::vector<double> count(m, 0.0);
    for (const auto& x : h)
      for (int j = 0; j < m; ++j) count[j] += x.counts[j];
    g.propensity.resize(m);
    for (int j = 0; j < m; ++j) {
      if (count[j] == 0)
        throw DataError(
            fmt::format("{}: arm {} has no rows on any rank, so its empirical propensity is 0; every arm "
                        "needs trial rows (evaluate a larger split)",
                        what, j));
      g.propensity[j] = count[j] / double(g.total);  // as empirical_propensity: integer counts, one division
    }
  } else {
    for (int r = 1; r < world; ++r)
      if (h[r].propensity != h[0].propensity)
        throw DataError(
            fmt::format("{}: rank {} passes design propensities [{}] but rank 0 passes [{}]; every rank "
                        "must pass the trial's propensities",
                        what, r, fmt::join(h[r].propensity, ", "), fmt::join(h[0].propensity, ", ")));
    g.propensity = h[0].propensity;
    if (int(g.propensity.size()) != m)
      throw DataError(fmt::format("{}: propensity has {} values but the data has {} arms; give one per arm", what,
                                  g.propensity.size(), m));
    double sum = 0;
    for (int j = 0; j < m; ++j) {
      if (!(g.propensity[j] > 0 && g.propensity[j] <= 1))
        throw DataError(fmt::format("{}: propensity of arm {} is {}; an RCT propensity must lie in (0, 1]", what, j,
                                    g.propensity[j]));
      sum += g.propensity[j];
    }
    if (std::abs(sum - 1) > 1e-6)
      throw DataError(
          fmt::format("{}: the propensities sum to {}, not 1; give the trial's arm probabilities", what, sum));
  }
  g.offset = offset[comm.rank()];
  return g;
}

// Every rank must pass the same options (and budgets): the collectives that follow depend on them.
void same_everywhere(dist::Communicator& comm, const std::vector<double>& mine, const char* what) {
  const std::vector<std::vector<double>> all = comm.allgather(mine);
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0])
      throw ConfigError(
          fmt::format("{}: rank {} passes [{}] but rank 0 passes [{}]; every rank must call it with the "
                      "same options and budgets",
                      what, r, fmt::join(all[r], ", "), fmt::join(all[0], ", ")));
}

// The bisection of eom.cpp with the collective path query (one all-reduce per iteration).
EomPoint bisect(const DistributedIpwPath& path, double budget, const EomOptions& opt) {
  return eom_bisect(budget, path.bound().hi, opt, [&](double lam) { return path.at(lam); });
}

std::vector<double> eom_key(const std::vector<double>& budgets, const EomOptions& opt) {
  std::vector<double> k = {opt.eps_rel, double(opt.max_iter)};
  k.insert(k.end(), budgets.begin(), budgets.end());
  return k;
}

// Walks the merged global step function: fn(lambda, value) for +inf and then every distinct breakpoint of any rank,
// in decreasing lambda, as IpwPath::sweep on all rows. `curves[r]` is rank r's (lambda, raw cost, raw revenue)
// triples from its own sweep; the value at a breakpoint is the sum over ranks, in rank order, of each rank's latest
// entry at or above it, divided by the global row count.
void merged_sweep(const std::vector<std::vector<double>>& curves, double total,
                  const std::function<void(double, const PolicyValue&)>& fn) {
  const size_t P = curves.size();
  std::vector<size_t> pos(P, 0);
  std::vector<double> cur_c(P, 0.0), cur_r(P, 0.0);
  auto emit = [&](double lam) {
    double r = 0, c = 0;
    for (size_t k = 0; k < P; ++k) r += cur_r[k], c += cur_c[k];
    fn(lam, {r / total, c / total});
  };
  for (size_t k = 0; k < P; ++k)
    if (!curves[k].empty()) cur_c[k] = curves[k][1], cur_r[k] = curves[k][2], pos[k] = 3;  // the +inf entry
  emit(kInf);
  while (true) {
    double g = -kInf;
    bool any = false;
    for (size_t k = 0; k < P; ++k)
      if (pos[k] < curves[k].size()) g = std::max(g, curves[k][pos[k]]), any = true;
    if (!any) break;
    for (size_t k = 0; k < P; ++k)
      if (pos[k] < curves[k].size() && curves[k][pos[k]] == g) {
        cur_c[k] = curves[k][pos[k] + 1], cur_r[k] = curves[k][pos[k] + 2];
        pos[k] += 3;
      }
    emit(g);
  }
}

}  // namespace

DistributedIpwPath::DistributedIpwPath(dist::Communicator& comm, const solver::Scores& scores, const RctSample& sample,
                                       int threads)
    : comm_(comm), sample_(sample) {
  const Global g = agree(comm, scores, sample);
  p_ = g.propensity, total_ = g.total, offset_ = g.offset;
  sample_.propensity = p_;
  std::vector<double> b = {0, 0};
  if (sample_.n > 0) {
    path_ = std::make_unique<IpwPath>(scores, sample_, threads);
    raw_ = path_->weigh(nullptr);
    raw_.total = 1;  // at() divides by the total: 1 leaves the raw sums
    b = {path_->bound().spec, path_->bound().hi};
  }
  comm.allreduce_values(b, dist::ReduceOp::kMax);  // max is exact: the one-process bound, bit for bit
  bound_.spec = b[0], bound_.hi = b[1];
}

DistributedIpwPath::~DistributedIpwPath() = default;

PolicyValue DistributedIpwPath::at(double lambda) const {
  std::vector<double> v = {0, 0};
  if (path_) {
    const PolicyValue raw = path_->at(lambda, raw_);
    v = {raw.revenue, raw.cost};
  }
  comm_.allreduce_values(v);
  return {v[0] / double(total_), v[1] / double(total_)};
}

EomPoint distributed_eom_at(const DistributedIpwPath& path, double budget, const EomOptions& opt) {
  same_everywhere(path.comm(), eom_key({budget}, opt), "distributed EOM");
  return bisect(path, budget, opt);
}

std::vector<EomPoint> distributed_eom_curve(const DistributedIpwPath& path, const std::vector<double>& budgets,
                                            const EomOptions& opt) {
  same_everywhere(path.comm(), eom_key(budgets, opt), "distributed EOM curve");
  std::vector<EomPoint> out;
  out.reserve(budgets.size());
  for (double b : budgets) out.push_back(bisect(path, b, opt));
  return out;
}

std::vector<EomPoint> distributed_eom_curve(dist::Communicator& comm, const solver::Scores& scores,
                                            const RctSample& sample, const std::vector<double>& budgets,
                                            const EomOptions& opt, int threads) {
  const DistributedIpwPath path(comm, scores, sample, threads);
  return distributed_eom_curve(path, budgets, opt);
}

CostCurve distributed_cost_curve(const DistributedIpwPath& path, const CostCurveOptions& opt) {
  dist::Communicator& comm = path.comm();
  same_everywhere(comm, {double(opt.quantiles), double(opt.max_points), double(opt.reference_arm)},
                  "distributed cost curve");
  const RctSample& s = path.local_sample();
  const int M = s.m;
  // "Everyone on arm j" for every arm: local IPW values scaled back to sums (as the sweep's below, so that the
  // +inf point and the control point stay bitwise consistent), all-reduced, divided by the global row count.
  const double n_local = double(s.n), total = double(path.total_rows());
  std::vector<double> uni(2 * M, 0.0);
  if (s.n > 0)
    for (int j = 0; j < M; ++j) {
      const PolicyValue v = uniform_policy_value(s, j);
      uni[2 * j] = v.revenue * n_local, uni[2 * j + 1] = v.cost * n_local;
    }
  comm.allreduce_values(uni);
  auto uniform = [&](int j) { return PolicyValue{uni[2 * j] / total, uni[2 * j + 1] / total}; };
  // Every rank's step function: (lambda, cost, revenue) per distinct local breakpoint, +inf first.
  std::vector<double> mine;
  if (path.local())
    path.local()->sweep([&](double lam, const PolicyValue& v) {
      mine.push_back(lam), mine.push_back(v.cost * n_local), mine.push_back(v.revenue * n_local);
    });
  const std::vector<std::vector<double>> curves = comm.allgather(mine);
  mine.clear();
  mine.shrink_to_fit();

  // The curve itself: cost_curve.cpp's code on the merged sweep.
  return cost_curve_from(
      M, uniform, [&](const std::function<void(double, const PolicyValue&)>& fn) { merged_sweep(curves, total, fn); },
      opt);
}

AuccResult distributed_aucc(dist::Communicator& comm, const AuccInput& local, int quantiles) {
  const char* what = "distributed AUCC";
  // Header [issue, row, value, n, treated_arm, quantiles, eligible rows], then 4 doubles per eligible row.
  constexpr size_t kHead = 7, kRow = 4;
  std::vector<double> mine(kHead, 0.0);
  Found f;
  int64_t eligible = 0;
  if (local.n > 0 && (!local.arm || !local.revenue || !local.cost || !local.score)) {
    f.issue = kNullColumn;
  } else {
    for (int64_t i = 0; i < local.n; ++i) {
      const int t = local.arm[i];
      if (t != 0 && t != local.treated_arm) continue;
      if (!std::isfinite(local.score[i])) {
        f = {kScore, i, -1, local.score[i]};
        break;
      }
      if (!std::isfinite(local.revenue[i]) || !std::isfinite(local.cost[i])) {
        f = std::isfinite(local.revenue[i]) ? Found{kCost, i, -1, local.cost[i]}
                                            : Found{kRevenue, i, -1, local.revenue[i]};
        break;
      }
      ++eligible;
    }
  }
  if (f.issue == kOk) {
    mine.reserve(kHead + kRow * eligible);
    for (int64_t i = 0; i < local.n; ++i) {
      const int t = local.arm[i];
      if (t != 0 && t != local.treated_arm) continue;
      mine.push_back(local.score[i]), mine.push_back(t != 0 ? 1.0 : 0.0);
      mine.push_back(local.revenue[i]), mine.push_back(local.cost[i]);  // float -> double: exact
    }
  } else {
    eligible = 0;
  }
  mine[0] = f.issue, mine[1] = double(f.row), mine[2] = f.value, mine[3] = double(std::max<int64_t>(local.n, 0));
  mine[4] = local.treated_arm, mine[5] = quantiles, mine[6] = double(eligible);
  std::vector<std::vector<double>> all = comm.allgather(mine);
  mine.clear();
  mine.shrink_to_fit();

  const int world = int(all.size());
  for (int r = 0; r < world; ++r)
    if (all[r].size() < kHead || all[r].size() != kHead + kRow * size_t(all[r][6]))
      throw DataError(
          fmt::format("{}: rank {} sent a malformed block; every rank must run the same dfcl build", what, r));
  for (int r = 1; r < world; ++r)
    if (all[r][4] != all[0][4] || all[r][5] != all[0][5])
      throw ConfigError(
          fmt::format("{}: rank {} passes treated arm {} and {} quantiles but rank 0 passes {} and {}; "
                      "every rank must call it with the same options",
                      what, r, all[r][4], all[r][5], all[0][4], all[0][5]));
  int64_t offset = 0, total = 0;
  for (int r = 0; r < world; ++r) {
    const Found fr{int(all[r][0]), int64_t(all[r][1]), -1, all[r][2]};
    if (fr.issue != kOk) {
      RankHeader h;
      h.n = int64_t(all[r][3]);
      throw DataError(issue_message(what, fr, h, r, world, offset));
    }
    offset += int64_t(all[r][3]);
    total += int64_t(all[r][6]);
  }
  // The gathered rows in rank order: the original row order when ranks hold consecutive row ranges.
  std::vector<int32_t> arm;
  std::vector<float> revenue, cost;
  std::vector<double> score;
  arm.reserve(total), revenue.reserve(total), cost.reserve(total), score.reserve(total);
  for (auto& block : all) {
    for (size_t k = kHead; k < block.size(); k += kRow) {
      score.push_back(block[k]);
      arm.push_back(block[k + 1] != 0 ? local.treated_arm : 0);
      revenue.push_back(static_cast<float>(block[k + 2]));
      cost.push_back(static_cast<float>(block[k + 3]));
    }
    std::vector<double>().swap(block);  // free each rank's block once unpacked
  }
  AuccInput in;
  in.n = total;
  in.arm = arm.data(), in.revenue = revenue.data(), in.cost = cost.data(), in.score = score.data();
  in.treated_arm = local.treated_arm;
  return Aucc(in, quantiles).result();
}

}  // namespace dfcl::metrics
