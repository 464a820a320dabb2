// \brief Training throughput of TSM-SL (samples/s): the fused path (forward_train, value_and_grad, backward, Adam)
// against the autograd path (forward, compute, autograd, Adam), criteo preset at 12 and 32 features, 5 arms.
//
// The peer is bench/peer_train.py (PyTorch, same model, loss, data, optimiser and threads); bench/run_train_bench.sh
// runs both and prints the table in docs/benchmarks.md. Threads: DFCL_BENCH_THREADS (default 2). Device:
// DFCL_BENCH_DEVICE (cpu, the default, or cuda: data, net and optimiser on the GPU; each step ends with a host read of
// the loss, as the peer's --device cuda ends each step with torch.cuda.synchronize()).
#include <benchmark/benchmark.h>  // for BENCHMARK
#include <torch/torch.h>          // for at::set_num_threads, torch::autograd::grad

#include <cstdlib>  // for std::getenv, std::atoi
#include <map>      // for std::map
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string

#include "core/config.h"       // for Config
#include "loss/loss.h"         // for make_loss
#include "model/uplift_net.h"  // for UpliftNet, ForwardCache
#include "train/optimizer.h"   // for make_optimizer (Adam, lr 1e-3: torch.optim.Adam's update)

using namespace dfcl;

namespace {
constexpr int kArms = 5;
constexpr int64_t kPoolRows = 1 << 18;  // in-memory data the steps cycle through (a loader's batches, no I/O)

at::Device bench_device() {
  const char* env = std::getenv("DFCL_BENCH_DEVICE");
  return at::Device(env && std::string(env) == "cuda" ? at::kCUDA : at::kCPU);
}

// Random data like a binary-outcome RCT (Criteo's labels are 0/1), as the peer draws it.
struct Pool {
  at::Tensor x, t, y_r, y_c, weight;
  Pool(int64_t features, uint64_t seed) {
    at::manual_seed(seed);
    x = at::randn({kPoolRows, features});
    t = at::randint(kArms, {kPoolRows}, at::TensorOptions().dtype(at::kLong));
    y_r = at::randint(2, {kPoolRows}).to(at::kFloat);
    y_c = at::randint(2, {kPoolRows}).to(at::kFloat);
    weight = at::ones({kPoolRows});
    const at::Device d = bench_device();
    x = x.to(d), t = t.to(d), y_r = y_r.to(d), y_c = y_c.to(d), weight = weight.to(d);
  }
  model::Batch batch(int64_t step, int64_t B) const {  // contiguous slices, no copy
    const int64_t begin = (step * B) % kPoolRows;
    return {x.narrow(0, begin, B), t.narrow(0, begin, B), y_r.narrow(0, begin, B), y_c.narrow(0, begin, B),
            weight.narrow(0, begin, B)};
  }
};
const Pool& pool(int64_t features) {
  static std::map<int64_t, std::unique_ptr<Pool>> pools;
  auto& p = pools[features];
  if (!p) p = std::make_unique<Pool>(features, 42);
  return *p;
}

struct Setup {
  model::UpliftNet net;
  std::unique_ptr<loss::Loss> loss;
  std::unique_ptr<train::Optimizer> adam;
  explicit Setup(int64_t features)
      : net(model::UpliftNetConfig::preset("criteo", int(features), kArms), 1, at::kFloat, bench_device()),
        loss(loss::make_loss(Config::from_string("loss:\n  name: tsm_sl\n").sub("loss"))),
        adam(train::make_optimizer(train::OptimizerConfig{}, net.flat())) {}
  void update(const at::Tensor& grad) { adam->step(net.flat(), grad, 1e-3); }
};

void fused(benchmark::State& st) {
  const int64_t F = st.range(0), B = st.range(1);
  const Pool& data = pool(F);
  Setup s(F);
  model::ForwardCache cache;
  at::Tensor value, d_r, d_c, grad;
  int64_t step = 0;
  auto one = [&] {
    const model::Batch b = data.batch(step++, B);
    model::Scores sc = s.net.forward_train(s.net.flat(), b.x, cache);
    s.loss->value_and_grad(b, sc, {}, value, d_r, d_c);
    s.net.backward(s.net.flat(), cache, d_r, d_c, grad);
    s.update(grad);
    if (value.is_cuda()) (void)value.item<double>();  // the step's end, as the peer's synchronize
  };
  for (int i = 0; i < 3; ++i) one();  // warm-up: the buffers settle
  for (auto _ : st) one();
  st.counters["loss"] = value.item<double>();
  st.SetItemsProcessed(st.iterations() * B);
}

void autograd(benchmark::State& st) {
  const int64_t F = st.range(0), B = st.range(1);
  const Pool& data = pool(F);
  Setup s(F);
  at::Tensor value;
  int64_t step = 0;
  auto one = [&] {
    const model::Batch b = data.batch(step++, B);
    value = s.loss->compute(b, s.net.forward(b.x), {});
    s.update(torch::autograd::grad({value}, {s.net.flat()})[0]);
    if (value.is_cuda()) (void)value.item<double>();
  };
  for (int i = 0; i < 3; ++i) one();
  for (auto _ : st) one();
  st.counters["loss"] = value.item<double>();
  st.SetItemsProcessed(st.iterations() * B);
}

void cases(benchmark::internal::Benchmark* b) {
  b->ArgNames({"features", "batch"});
  for (int64_t f : {12, 32})
    for (int64_t batch : {4096, 65536}) b->Args({f, batch});
  b->UseRealTime()->MinTime(2.0)->Unit(benchmark::kMillisecond);
}
}  // namespace

static void BM_TrainFused(benchmark::State& st) { fused(st); }
BENCHMARK(BM_TrainFused)->Apply(cases);
static void BM_TrainAutograd(benchmark::State& st) { autograd(st); }
BENCHMARK(BM_TrainAutograd)->Apply(cases);

int main(int argc, char** argv) {
  const char* env = std::getenv("DFCL_BENCH_THREADS");
  const int threads = env ? std::atoi(env) : 2;
  at::set_num_threads(threads);
  benchmark::AddCustomContext("threads", std::to_string(threads));
  benchmark::AddCustomContext("libtorch", TORCH_VERSION);
  benchmark::AddCustomContext("device", bench_device().str());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
