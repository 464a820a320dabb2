// \brief Serving a cluster policy (issue 17): the distilled K-way classifier against its peer, the full teacher path
// (representation net's two hidden layers, standardisation, nearest of K centroids), per user (batch 1: latency) and
// per batch of 65,536 users (throughput). Features 32, 5 arms, the criteo trunk 64-32-32 ([h1; h2] = 96 dims),
// student [64, 64]. Timing only: the nets are at their initial parameters, the centroids random rows. Results:
// docs/benchmarks.md, "Cluster policy serving".
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <map>     // for std::map
#include <memory>  // for std::make_shared

#include "cluster/policy.h"           // for ClusterPolicy
#include "data/generator.h"           // for Generator
#include "dist/communicator.h"        // for make_local_communicator
#include "model/uplift_net_config.h"  // for UpliftNetConfig

using namespace dfcl;

namespace {

constexpr int kF = 32, kM = 5;

struct Fixture {
  data::Meta meta;
  data::Table rows;
  cluster::ClusterPolicy policy;
};

const Fixture& fixture(int k) {
  static std::map<int, std::unique_ptr<Fixture>> cache;
  auto& f = cache[k];
  if (f) return *f;
  f = std::make_unique<Fixture>();
  data::GeneratorConfig g;
  g.features = kF, g.arms = kM, g.rct_rows = 65536, g.observational_rows = 0;
  data::Generator gen(g);
  gen.fill(0, 65536, f->rows, 1);
  f->meta = gen.meta();
  auto tm = std::make_shared<train::TrainedModel>();
  tm->net = std::make_unique<model::UpliftNet>(model::UpliftNetConfig::preset("criteo", kF, kM), 1);
  cluster::ClusterPolicy& p = f->policy;
  p.teacher = tm;
  const at::Tensor h = cluster::hidden_representation(*tm->net, tm->scaler, f->rows, cluster::RepLayers::kConcat);
  auto comm = dist::make_local_communicator();
  p.rep_scaler = cluster::RepScaler::fit(h, *comm);
  p.centroids = p.rep_scaler.apply(h).narrow(0, 0, k).to(at::kDouble);
  p.scores.k = k, p.scores.m = kM;
  p.scores.revenue.assign(size_t(k * kM), 1.0), p.scores.cost = p.scores.revenue;
  p.student = cluster::Student(kF, k, {64, 64}, 1);
  return *f;
}

void BM_Serve(benchmark::State& st) {
  const bool student = st.range(0) == 1;
  const int64_t batch = st.range(1);
  const int k = int(st.range(2));
  Fixture& f = const_cast<Fixture&>(fixture(k));
  f.policy.serve = student ? cluster::Serve::kStudent : cluster::Serve::kTeacher;
  data::Table part;
  part.reset(f.meta, batch);
  part.copy_rows(0, f.rows, 0, batch);
  for (auto _ : st) benchmark::DoNotOptimize(f.policy.assign(part));
  st.SetItemsProcessed(st.iterations() * batch);
  st.SetLabel(student ? "distilled classifier" : "teacher: representation + nearest centroid");
}

}  // namespace

BENCHMARK(BM_Serve)
    ->ArgNames({"student", "batch", "k"})
    ->ArgsProduct({{1, 0}, {1, 65536}, {100, 500}})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
