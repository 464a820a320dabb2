// \brief Fitting a cluster policy (fit.h): representation -> K sweep -> group scores -> distillation -> programme.
#include "cluster/fit.h"

#include <fmt/format.h>  // for fmt::format
#include <torch/torch.h>

#include <algorithm>  // for std::max, std::sort
#include <chrono>     // for std::chrono
#include <cmath>      // for std::isfinite

#include "core/config.h"          // for Config
#include "core/error.h"           // for ConfigError, DataError
#include "core/log.h"             // for log::info, log::warn
#include "data/source.h"          // for RowSource, read_rct_rows, open_sources
#include "dist/communicator.h"    // for Communicator
#include "model/batch.h"          // for to_batch
#include "solver/group_mckp.h"    // for solve_groups_exact, solve_groups_lp
#include "train/train_config.h"   // for TrainConfig
#include "train/trained_model.h"  // for TrainedModel
#include "train/validation.h"     // for ValidationSet

namespace dfcl::cluster {
namespace {

using nlohmann::json;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Squared distances between centroids (k x k), for the nearest-cluster fallback.
std::vector<double> centroid_d2(const at::Tensor& c) {
  const at::Tensor d = torch::cdist(c, c).pow(2).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

}  // namespace

ClusterConfig ClusterConfig::from(const Config& c) {
  ClusterConfig o;
  o.representation = c.get<std::string>("representation", "");
  o.metric_name = c.get<std::string>("metric", "dr_eom");
  if (o.metric_name == "dr_eom") o.metric = train::SelectMetric::kDrEom;
  else if (o.metric_name == "eom") o.metric = train::SelectMetric::kEom;
  else if (o.metric_name == "regret") o.metric = train::SelectMetric::kRegret;
  else if (o.metric_name == "aucc") o.metric = train::SelectMetric::kAucc;
  else
    throw ConfigError(fmt::format("cluster.metric is '{}'; K is chosen on a decision metric of the validation rows: "
                                  "dr_eom (DR revenue at equal DR spend, the default), eom (IPW), regret (synthetic "
                                  "data) or aucc (two arms){}",
                                  o.metric_name,
                                  o.metric_name == "loss" ? "; a cluster policy has no training loss to judge it by" : ""));
  o.layers = parse_rep_layers(c.get<std::string>("layers", "concat"), "cluster.layers");
  std::vector<int64_t> ks;
  try {
    ks = c.get<std::vector<int64_t>>("k", {o.k.begin(), o.k.end()});
  } catch (const ConfigError&) {
    ks = {c.get<int64_t>("k", 50)};  // one K, written as a number
  }
  if (ks.empty()) throw ConfigError("cluster.k: is empty; give a K or a list of K to sweep, e.g. [10, 20, 50, 100]");
  o.k.clear();
  for (int64_t v : ks) {
    if (v < 1 || v > 1000000) throw ConfigError(fmt::format("cluster.k: {} must lie in [1, 1000000]", v));
    o.k.push_back(int(v));
  }
  const Config km = c.sub("kmeans");
  o.kmeans.max_iter = km.get<int>("max_iter", o.kmeans.max_iter);
  o.kmeans.tol = km.get<double>("tol", o.kmeans.tol);
  o.kmeans.sample = km.get<int64_t>("sample", o.kmeans.sample);
  o.kmeans.seed_pool = km.get<int64_t>("seed_pool", o.kmeans.seed_pool);
  o.kmeans.minibatch = km.get<bool>("minibatch", o.kmeans.minibatch);
  o.kmeans.batch = km.get<int64_t>("batch", o.kmeans.batch);
  o.kmeans.seed = static_cast<uint64_t>(km.get<int64_t>("seed", int64_t(o.kmeans.seed)));
  o.kmeans.validate();
  o.cells.empty_cell = parse_empty_cell(c.get<std::string>("empty_cell", "global_mean"), "cluster.empty_cell");
  o.cells.min_rows = c.get<int64_t>("min_cell_rows", o.cells.min_rows);
  o.cells.robust_z = c.get<double>("robust_z", o.cells.robust_z);
  if (o.cells.min_rows < 1) throw ConfigError(fmt::format("cluster.min_cell_rows: is {}; need >= 1", o.cells.min_rows));
  if (!(o.cells.robust_z >= 0)) throw ConfigError(fmt::format("cluster.robust_z: is {}; need >= 0", o.cells.robust_z));
  o.budgets = c.get<std::vector<double>>("budgets", {});
  for (double b : o.budgets)
    if (!std::isfinite(b)) throw ConfigError(fmt::format("cluster.budgets: {} is not a finite per-user budget", b));
  o.budget_points = c.get<int>("budget_points", o.budget_points);
  if (o.budget_points < 1) throw ConfigError(fmt::format("cluster.budget_points: is {}; need >= 1", o.budget_points));
  o.node_limit = c.get<int64_t>("node_limit", o.node_limit);
  if (o.node_limit < 1) throw ConfigError(fmt::format("cluster.node_limit: is {}; need >= 1", o.node_limit));
  o.student = DistillOptions::from(c.sub("distill"));
  o.serve = parse_serve(c.get<std::string>("serve", "student"), "cluster.serve");
  o.output = c.get<std::string>("output", o.output);
  if (!o.output.empty() && !is_policy_file(o.output))
    throw ConfigError(fmt::format("cluster.output: is '{}'; a policy file's name ends in .policy (dfcl evaluate and "
                                  "dfcl allocate know it by that), e.g. cluster.output=run/cluster.policy",
                                  o.output));
  o.max_rows = c.get<int64_t>("max_rows", o.max_rows);
  if (o.max_rows < 0) throw ConfigError(fmt::format("cluster.max_rows: is {}; need >= 0 (0 = all)", o.max_rows));
  return o;
}

json fit_policy(const ClusterConfig& cc, const train::TrainConfig& tc, std::shared_ptr<const train::TrainedModel> rep,
                data::RowSource& src, dist::Communicator& comm, int threads, ClusterPolicy& policy) {
  torch::NoGradGuard no_grad;
  const auto t0 = std::chrono::steady_clock::now();
  check_representation_net(*rep->net, rep->origin);
  rep->check_compatible(src.meta(), src.name());
  // The trial's training rows; each rank clusters a contiguous share of them (global id = position).
  const int m = src.meta().num_arms;
  const int64_t W = comm.size(), r = comm.rank();
  int64_t n = 0, lo = 0, hi = 0;
  data::Table rows;
  {  // every rank reads the split's trial rows and keeps its contiguous share
    const data::Table all = data::read_rct_rows(src, tc.split, data::Split::kTrain,
                                                cc.max_rows > 0 ? cc.max_rows : int64_t(1) << 62, "dfcl cluster");
    n = all.rows, lo = n * r / W, hi = n * (r + 1) / W;
    rows.reset(src.meta(), hi - lo);
    rows.copy_rows(0, all, lo, hi - lo);
  }
  std::vector<int64_t> gid(static_cast<size_t>(hi - lo));
  for (int64_t i = lo; i < hi; ++i) gid[size_t(i - lo)] = i;
  std::vector<int32_t> arm(rows.treatment.begin(), rows.treatment.end());
  for (int k : cc.k)
    if (k > n)
      throw DataError(fmt::format("cluster.k = {} is larger than the number of trial training rows ({}) in {}; lower "
                                  "cluster.k to at most {} (a cell needs trial rows of every arm, so K well below "
                                  "rows / arms)",
                                  k, n, src.name(), n));
  const at::Tensor h_raw = hidden_representation(*rep->net, rep->scaler, rows, cc.layers);
  const RepScaler rs = RepScaler::fit(h_raw, comm);
  const at::Tensor h = rs.apply(h_raw);

  // Validation rows (the same on every rank) for the K sweep.
  std::unique_ptr<data::RowSource> val_src;
  data::RowSource* vs = &src;
  if (!tc.validation.data.empty()) vs = (val_src = data::open_sources(tc.validation.data, "validation.data")).get();
  const train::ValidationSet val(*vs, tc.split, tc.validation.split, tc.validation, threads,
                                 tc.validation.data.empty() ? tc.data : tc.validation.data);
  const at::Tensor hv = rs.apply(hidden_representation(*rep->net, rep->scaler, val.rows(), cc.layers));

  json sweep = json::array();
  int best_k = -1;
  double best_value = 0;
  KMeansResult best_fit;
  GroupStats best_stats;
  GroupScores best_scores;
  for (int k : cc.k) {
    const auto tk = std::chrono::steady_clock::now();
    KMeansOptions ko = cc.kmeans;
    ko.k = k;
    KMeansResult fit = kmeans(h, gid, ko, comm);
    GroupStats st = group_stats(fit.label, arm, rows.revenue.data(), rows.cost.data(), k, m, comm);
    GroupScores gs = group_scores(st, cc.cells, centroid_d2(fit.centroids));
    const train::ValidationResult v = val.evaluate_scores(cluster_scores(nearest(hv, fit.centroids), gs));
    const double value = v.select(cc.metric);
    if (!std::isfinite(value))
      throw DataError(fmt::format("cluster: the K sweep's selection metric cluster.metric = {} is {} at K = {} on the {} "
                                  "validation rows of {}; {}",
                                  cc.metric_name, value, k, val.rows().rows, vs->name(),
                                  cc.metric == train::SelectMetric::kRegret ? "regret needs synthetic data's true tables"
                                  : cc.metric == train::SelectMetric::kAucc ? "AUCC needs two arms"
                                  : cc.metric == train::SelectMetric::kDrEom
                                      ? "the DR estimate needs validation.estimator.kind = dr and an outcome model"
                                      : "use cluster.metric=dr_eom or eom"));
    const bool better = best_k < 0 || (cc.metric == train::SelectMetric::kRegret ? value < best_value : value > best_value);
    json e = {{"k", k},
              {cc.metric_name, value},
              {"eom_mean", v.eom_mean},
              {"inertia", fit.inertia},
              {"iterations", fit.iterations},
              {"converged", fit.converged},
              {"reseeded", fit.reseeded},
              {"filled_cells", gs.filled_cells},
              {"seconds", seconds_since(tk)}};
    if (std::isfinite(v.regret_mean)) e["regret_mean"] = v.regret_mean;
    sweep.push_back(e);
    log::info("cluster: K = {}: validation {} {:.6g}{}, {} Lloyd{} iterations{}{}", k, cc.metric_name, value,
              std::isfinite(v.regret_mean) ? fmt::format(" (oracle regret {:.4g})", v.regret_mean) : "",
              fit.iterations, cc.kmeans.minibatch ? " (mini-batch)" : "", fit.converged ? "" : " (not converged)",
              gs.filled_cells ? fmt::format(", {} empty cells filled", gs.filled_cells) : "");
    if (better) {
      best_k = k, best_value = value;
      best_fit = std::move(fit), best_stats = std::move(st), best_scores = std::move(gs);
    }
  }
  if (!best_scores.fallback_note.empty()) log::warn("cluster: K = {}: {}", best_k, best_scores.fallback_note);

  policy = ClusterPolicy{};
  policy.teacher = rep;
  policy.layers = cc.layers;
  policy.rep_scaler = rs;
  policy.centroids = best_fit.centroids;
  policy.scores = best_scores;
  policy.trial_rows = best_stats.n;
  policy.serve = cc.serve;

  // Distillation: features -> cluster.
  json distilled = nullptr;
  if (cc.student.epochs > 0) {
    model::Batch b = model::to_batch(rows, at::kFloat);
    rep->scaler.apply_(b.x);
    policy.student = Student(src.meta().num_features, best_k, cc.student.hidden, cc.student.seed);
    const DistillResult d = distill(policy.student, b.x, best_fit.label, h, best_fit.centroids, gid, cc.student, comm);
    distilled = {{"agreement", d.agreement},
                 {"train_agreement", d.train_agreement},
                 {"holdout_rows", d.holdout_rows},
                 {"seconds", d.seconds}};
    log::info("cluster: distilled classifier agrees with the teacher on {:.2f}% of {} held-out rows ({:.2f}% on its "
              "training rows)",
              100 * d.agreement, d.holdout_rows, 100 * d.train_agreement);
  } else if (cc.serve == Serve::kStudent) {
    throw ConfigError("cluster.serve = student needs the distilled classifier, but cluster.distill.epochs = 0; train it "
                      "(cluster.distill.epochs > 0) or serve with cluster.serve=teacher");
  }

  // The group programme over the budget grid, on the trial's training population: N_k users in cluster k.
  solver::GroupProblem gp;
  gp.k = best_k, gp.m = m;
  gp.value.resize(size_t(best_k) * size_t(m)), gp.cost.resize(gp.value.size());
  std::vector<double> nk(size_t(best_k), 0.0);
  for (int32_t l : best_fit.label) nk[size_t(l)] += 1;
  comm.allreduce_values(nk);
  for (int g = 0; g < best_k; ++g)
    for (int j = 0; j < m; ++j) {
      const size_t at = size_t(g) * size_t(m) + size_t(j);
      gp.value[at] = nk[size_t(g)] * best_scores.revenue[at], gp.cost[at] = nk[size_t(g)] * best_scores.cost[at];
    }
  const double N = double(n);
  std::vector<double> grid = cc.budgets;
  const double lo_b = gp.min_cost() / N, hi_b = gp.max_useful_cost() / N;
  if (grid.empty())
    for (int t = 0; t < cc.budget_points; ++t)
      grid.push_back(cc.budget_points == 1 ? hi_b : lo_b + (hi_b - lo_b) * double(t) / double(cc.budget_points - 1));
  for (double b : grid)
    if (b < lo_b - 1e-12 * std::max(1.0, std::abs(lo_b)))
      throw ConfigError(fmt::format("cluster.budgets: {:.6g} per user is below the cheapest group policy's spend "
                                    "{:.6g} per user (every cluster on its cheapest arm, by the trial's mean costs); "
                                    "give budgets of at least that",
                                    b, lo_b));
  json table = json::array();
  for (double b : grid) {
    const solver::GroupPlan s2 = solver::solve_groups_exact(gp, b * N, cc.node_limit);
    const solver::GroupSplit s1 = solver::solve_groups_lp(gp, b * N);
    if (!s2.optimal)
      log::warn("cluster: budget {:.4g}: branch and bound stopped at cluster.node_limit = {}; the plan is within {:.3g} "
                "({:.2g}%) of the optimum",
                b, cc.node_limit, s2.gap, 100 * s2.gap / std::max(1e-300, std::abs(s2.bound)));
    table.push_back({{"budget", b},
                     {"s2", {{"arm", s2.arm},
                             {"revenue", s2.value / N},
                             {"spend", s2.cost / N},
                             {"optimal", s2.optimal},
                             {"gap", s2.gap / N},
                             {"nodes", s2.nodes}}},
                     {"s1", {{"arm", s1.arm},
                             {"split_cluster", s1.split_group},
                             {"split_arm", s1.split_arm},
                             {"split_share", s1.split_share},
                             {"revenue", s1.value / N},
                             {"spend", s1.cost / N}}}});
  }
  json report = {{"k", best_k},
                 {"selected_by", cc.metric_name},
                 {"sweep", sweep},
                 {"trial_rows", n},
                 {"validation_rows", val.rows().rows},
                 {"representation", {{"checkpoint", rep->origin}, {"layers", to_string(cc.layers)}, {"dim", h.size(1)}}},
                 {"cluster_sizes", nk},
                 {"filled_cells", best_scores.filled_cells},
                 {"robust_z", cc.cells.robust_z},
                 {"distilled", distilled},
                 {"serve", cc.serve == Serve::kStudent ? "student" : "teacher"},
                 {"budgets", table},
                 {"seconds", seconds_since(t0)}};
  policy.table = report;
  return report;
}

}  // namespace dfcl::cluster
