// \brief Cluster policies: assignment, scoring, the compatibility check and the file (policy.h).
#include "cluster/policy.h"

#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join
#include <torch/torch.h>

#include "cluster/kmeans.h"     // for nearest
#include "core/error.h"         // for ConfigError, DataError
#include "data/schema.h"        // for Meta, Table
#include "model/batch.h"        // for to_batch
#include "train/checkpoint.h"   // for read_checkpoint, write_checkpoint

namespace dfcl::cluster {
namespace {

at::Tensor tensor_of(const std::vector<double>& v) {
  return torch::tensor(v, torch::kDouble);
}
const at::Tensor& find(const model::NamedTensors& t, const std::string& name, const std::string& path) {
  for (const auto& kv : t)
    if (kv.first == name) return kv.second;
  throw DataError(fmt::format("{}: the cluster policy's tensor '{}' is missing (the file is damaged); rerun dfcl cluster",
                              path, name));
}
std::vector<double> to_vector(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

}  // namespace

Serve parse_serve(const std::string& name, const std::string& key) {
  if (name == "student") return Serve::kStudent;
  if (name == "teacher") return Serve::kTeacher;
  throw ConfigError(fmt::format("{}: is '{}'; use student (the distilled classifier) or teacher (representation net and "
                                "nearest centroid)",
                                key, name));
}

bool is_policy_file(const std::string& p) { return p.size() > 7 && p.compare(p.size() - 7, 7, ".policy") == 0; }

std::vector<int32_t> ClusterPolicy::assign_teacher(const data::Table& rows) const {
  const at::Tensor h = hidden_representation(*teacher->net, teacher->scaler, rows, layers);
  return nearest(rep_scaler.apply(h), centroids);
}

std::vector<int32_t> ClusterPolicy::assign(const data::Table& rows) const {
  if (serve == Serve::kTeacher || student.empty()) return assign_teacher(rows);
  model::Batch b = model::to_batch(rows, at::kFloat);
  teacher->scaler.apply_(b.x);
  return student.predict(b.x);
}

metrics::ScoreTable cluster_scores(const std::vector<int32_t>& label, const GroupScores& g) {
  metrics::ScoreTable t;
  t.n = int64_t(label.size()), t.m = g.m;
  t.r.resize(size_t(t.n) * size_t(t.m)), t.c.resize(t.r.size());
  for (size_t i = 0; i < label.size(); ++i)
    for (int j = 0; j < g.m; ++j) {
      const size_t from = size_t(label[i]) * size_t(g.m) + size_t(j), to = i * size_t(g.m) + size_t(j);
      t.r[to] = float(g.revenue[from]), t.c[to] = float(g.cost[from]);
    }
  return t;
}

metrics::ScoreTable ClusterPolicy::score(const data::Table& rows) const { return cluster_scores(assign(rows), scores); }

void ClusterPolicy::check_compatible(const data::Meta& meta, const std::string& where) const {
  teacher->check_compatible(meta, where);  // features and arms, names of the features
  if (!teacher->arm_names.empty() && meta.arm_names != teacher->arm_names)
    throw DataError(fmt::format("{}: its arms are [{}], but the cluster policy {} was fitted on arms [{}]; a policy "
                                "scores only data of the dataset it was fitted on (same features, same arms)",
                                where, fmt::join(meta.arm_names, ", "), origin, fmt::join(teacher->arm_names, ", ")));
}

void ClusterPolicy::save(const std::string& path, const std::string& rep_checkpoint) const {
  const train::Checkpoint rep = train::read_checkpoint(rep_checkpoint);
  train::Checkpoint ck;
  ck.schema_version = rep.schema_version;
  ck.config = rep.config;
  ck.state = rep.state;
  for (const auto& kv : rep.tensors)
    if (kv.first.rfind("model.", 0) == 0 || kv.first.rfind("input.", 0) == 0) ck.tensors.push_back(kv);
  nlohmann::json c;
  c["kind"] = "cluster_policy";
  c["k"] = k();
  c["arms"] = arms();
  c["layers"] = to_string(layers);
  c["serve"] = serve == Serve::kStudent ? "student" : "teacher";
  c["student_hidden"] = student.hidden();
  c["distilled"] = !student.empty();
  c["representation"] = rep_checkpoint;
  c["filled_cells"] = scores.filled_cells;
  c["table"] = table;
  ck.state["cluster"] = c;
  ck.tensors.emplace_back("cluster.centroids", centroids.to(at::kDouble).contiguous());
  ck.tensors.emplace_back("cluster.rep_mean", tensor_of(rep_scaler.mean));
  ck.tensors.emplace_back("cluster.rep_sd", tensor_of(rep_scaler.sd));
  ck.tensors.emplace_back("cluster.revenue", tensor_of(scores.revenue).view({k(), arms()}));
  ck.tensors.emplace_back("cluster.cost", tensor_of(scores.cost).view({k(), arms()}));
  ck.tensors.emplace_back("cluster.trial_rows", tensor_of(trial_rows).view({k(), arms()}));
  if (!student.empty())
    for (auto& kv : student.to_tensors()) ck.tensors.push_back(kv);
  train::write_checkpoint(path, ck);
}

ClusterPolicy ClusterPolicy::load(const std::string& path) {
  const train::Checkpoint ck = train::read_checkpoint(path);
  if (!ck.state.contains("cluster") || ck.state["cluster"].value("kind", "") != "cluster_policy")
    throw DataError(fmt::format("{}: not a cluster policy (no cluster section); a .policy file is what `dfcl cluster` "
                                "writes, and a training checkpoint is named .ckpt",
                                path));
  const nlohmann::json& c = ck.state["cluster"];
  ClusterPolicy p;
  p.teacher = std::make_shared<const train::TrainedModel>(train::load_trained_model(path));
  p.origin = path;
  const int k = c["k"].get<int>(), m = c["arms"].get<int>();
  if (m != p.teacher->net->config().arms)
    throw DataError(fmt::format("{}: the policy has {} arms but its representation net {} (the file is damaged)", path,
                                m, p.teacher->net->config().arms));
  p.layers = parse_rep_layers(c["layers"].get<std::string>(), path + ": layers");
  p.serve = parse_serve(c["serve"].get<std::string>(), path + ": serve");
  p.table = c.value("table", nlohmann::json::object());
  p.centroids = find(ck.tensors, "cluster.centroids", path).to(at::kDouble);
  p.rep_scaler.mean = to_vector(find(ck.tensors, "cluster.rep_mean", path));
  p.rep_scaler.sd = to_vector(find(ck.tensors, "cluster.rep_sd", path));
  p.scores.k = k, p.scores.m = m;
  p.scores.revenue = to_vector(find(ck.tensors, "cluster.revenue", path));
  p.scores.cost = to_vector(find(ck.tensors, "cluster.cost", path));
  p.scores.filled_cells = c.value("filled_cells", int64_t(0));
  p.trial_rows = to_vector(find(ck.tensors, "cluster.trial_rows", path));
  const int64_t d = int64_t(p.rep_scaler.mean.size());
  if (p.centroids.dim() != 2 || p.centroids.size(0) != k || p.centroids.size(1) != d ||
      p.scores.revenue.size() != size_t(k) * size_t(m) || p.scores.cost.size() != p.scores.revenue.size())
    throw DataError(fmt::format("{}: the cluster tensors' shapes do not match k = {}, {} arms (the file is damaged)",
                                path, k, m));
  if (c.value("distilled", false))
    p.student = Student::from_tensors(ck.tensors, p.teacher->net->config().features, k,
                                      c["student_hidden"].get<std::vector<int>>(), path);
  return p;
}

}  // namespace dfcl::cluster
