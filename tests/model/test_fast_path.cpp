// \brief The autograd-free training path: UpliftNet::forward_train / backward and Loss::value_and_grad against
// forward(), compute() and autograd, in float64, for every layout, activation, output transform and loss option.
#include <ATen/CPUGeneratorImpl.h>  // for at::CPUGeneratorImpl
#include <gtest/gtest.h>            // for TEST
#include <torch/torch.h>            // for torch::autograd::grad

#include <algorithm>  // for std::max
#include <memory>     // for std::unique_ptr
#include <string>     // for std::string
#include <vector>     // for std::vector

#include "core/config.h"       // for Config
#include "core/error.h"        // for DataError
#include "loss/loss.h"         // for make_loss, LossContext
#include "model/batch.h"       // for Batch
#include "model/uplift_net.h"  // for UpliftNet, ForwardCache

using namespace dfcl;
using loss::LossContext;
using model::Batch;
using model::ForwardCache;
using model::Scores;
using model::UpliftNet;
using model::UpliftNetConfig;

namespace {
std::unique_ptr<loss::Loss> make(const std::string& body) {
  return loss::make_loss(Config::from_string("loss:\n" + body).sub("loss"));
}

at::TensorOptions f64() { return at::TensorOptions().dtype(at::kDouble); }

// B rows over M arms with a few padding rows (weight 0); arm `absent` (if >= 0) never occurs; binary outcomes
// when `binary`.
Batch random_batch(int64_t B, int64_t F, int64_t M, uint64_t seed, bool binary = false, int64_t absent = -1) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Batch b;
  b.x = at::randn({B, F}, gen, f64());
  b.t = at::randint(M, {B}, gen, at::TensorOptions().dtype(at::kLong));
  if (absent >= 0) b.t.masked_fill_(b.t.eq(absent), (absent + 1) % M);
  if (binary) {
    b.y_r = at::randint(2, {B}, gen, f64());
    b.y_c = at::randint(2, {B}, gen, f64());
  } else {
    b.y_r = at::rand({B}, gen, f64()) * 3;
    b.y_c = at::rand({B}, gen, f64());
  }
  b.weight = at::ones({B}, f64());
  b.weight.narrow(0, B - 2, 2).zero_();  // two padding rows at the end
  return b;
}

double max_abs(const at::Tensor& t) { return t.numel() ? t.abs().max().item<double>() : 0.0; }
double rel_diff(const at::Tensor& a, const at::Tensor& ref) {
  return max_abs(a - ref) / std::max(1e-300, max_abs(ref));
}

// Checks the fast path of `net` against forward/compute/autograd on batch `b` (one step; `cache` may be reused).
void check_step(const UpliftNet& net, const loss::Loss& loss, const Batch& b, const LossContext& ctx,
                ForwardCache& cache) {
  // Reference: autograd through forward() and compute(), on the scores and on flat.
  at::Tensor flat = net.flat();
  Scores ref = net.forward(flat, b.x);
  at::Tensor r_leaf = ref.r_hat.detach().requires_grad_(true), c_leaf = ref.c_hat.detach().requires_grad_(true);
  at::Tensor ref_value = loss.compute(b, Scores{r_leaf, c_leaf}, ctx);
  auto d_ref = torch::autograd::grad({ref_value}, {r_leaf, c_leaf}, /*grad_outputs=*/{}, /*retain_graph=*/{},
                                     /*create_graph=*/false, /*allow_unused=*/true);
  for (at::Tensor& d : d_ref)
    if (!d.defined()) d = at::zeros_like(ref.r_hat.detach());  // an outcome with weight 0
  at::Tensor g_ref = torch::autograd::grad({loss.compute(b, ref, ctx)}, {flat})[0];

  Scores s = net.forward_train(flat, b.x, cache);
  EXPECT_FALSE(s.r_hat.requires_grad());
  EXPECT_LE(max_abs(s.r_hat - ref.r_hat.detach()), 1e-12);
  EXPECT_LE(max_abs(s.c_hat - ref.c_hat.detach()), 1e-12);
  at::Tensor value, d_r, d_c, grad;
  ASSERT_TRUE(loss.value_and_grad(b, s, ctx, value, d_r, d_c));
  EXPECT_EQ(value.dim(), 0);
  EXPECT_FALSE(value.requires_grad());
  EXPECT_NEAR(value.item<double>(), ref_value.item<double>(),
              1e-12 * std::max(1.0, std::abs(ref_value.item<double>())));
  EXPECT_LE(rel_diff(d_r, d_ref[0]), 1e-10);
  EXPECT_LE(rel_diff(d_c, d_ref[1]), 1e-10);
  net.backward(flat, cache, d_r, d_c, grad);
  ASSERT_EQ(grad.sizes(), flat.sizes());
  EXPECT_FALSE(grad.requires_grad());
  EXPECT_LE(rel_diff(grad, g_ref), 1e-10) << "max |grad| " << max_abs(g_ref);
}

// The float64 checks run many tiny ops; ATen's bmm opens an OpenMP region per call even for 6 small matrices, which
// costs milliseconds each on a loaded 2-core machine. One thread for them (restored after); the float32 kernel test
// keeps the default, so that it covers the kernels' threads.
struct OneThread {
  int saved = at::get_num_threads();
  OneThread() { at::set_num_threads(1); }
  ~OneThread() { at::set_num_threads(saved); }
};

UpliftNetConfig small(std::vector<int> trunk, std::vector<int> head, bool shared, bool arm_column,
                      const std::string& act, const std::string& rev, const std::string& cost) {
  UpliftNetConfig c;
  c.features = 6, c.arms = 3, c.trunk = std::move(trunk), c.head = std::move(head);
  c.shared_trunk = shared, c.arm_column = arm_column, c.activation = act;
  c.revenue_output = rev, c.cost_output = cost;
  return c;
}
}  // namespace

TEST(FastPath, EveryLayoutActivationAndTransformMatchesAutograd) {
  OneThread one_thread;
  const std::vector<std::string> outs{"identity", "softplus", "sigmoid"};
  auto loss = make("  name: tsm_sl\n  revenue_weight: 0.7\n");
  const Batch b = random_batch(13, 6, 3, 5);
  for (bool shared : {true, false})
    for (bool arm_column : {false, true})
      for (const std::string act : {"relu", "leaky_relu", "elu", "gelu", "tanh"})
        for (auto widths : std::vector<std::pair<std::vector<int>, std::vector<int>>>{
                 {{5, 4}, {3}}, {{}, {}}, {{4}, {}}, {{}, {3, 2}}})
          for (size_t o = 0; o < outs.size(); ++o) {
            const std::string rev = outs[o], cost = outs[(o + 1) % outs.size()];
            SCOPED_TRACE(::testing::Message() << "shared=" << shared << " arm_column=" << arm_column << " act=" << act
                                              << " trunk=" << widths.first.size() << " head=" << widths.second.size()
                                              << " out=" << rev << "/" << cost);
            UpliftNet net(small(widths.first, widths.second, shared, arm_column, act, rev, cost), 17, at::kDouble);
            ForwardCache cache;
            check_step(net, *loss, b, {}, cache);
          }
}

TEST(FastPath, EveryPairOfOutputTransforms) {
  OneThread one_thread;
  const std::vector<std::string> outs{"identity", "softplus", "sigmoid"};
  auto loss = make("  name: tsm_sl\n");
  const Batch b = random_batch(10, 6, 3, 6);
  for (const auto& rev : outs)
    for (const auto& cost : outs) {
      SCOPED_TRACE(rev + "/" + cost);
      UpliftNet net(small({5}, {}, true, false, "relu", rev, cost), 3, at::kDouble);
      ForwardCache cache;
      check_step(net, *loss, b, {}, cache);
    }
}

TEST(FastPath, PresetsWithBceAndContexts) {
  OneThread one_thread;
  for (const std::string preset : {"criteo", "dfcl_official"})
    for (bool shared : {true, false})
      for (const std::string loss_name : {"tsm_sl", "factual"})
        for (const std::string kind : {"mse", "bce"}) {
          SCOPED_TRACE(preset + (shared ? " shared " : " separate ") + loss_name + " " + kind);
          UpliftNetConfig c = UpliftNetConfig::preset(preset, 12, 4);
          c.shared_trunk = shared;
          UpliftNet net(c, 7, at::kDouble);
          auto loss = make("  name: " + loss_name + "\n  revenue_loss: " + kind + "\n  cost_loss: " + kind +
                           "\n  cost_weight: 0.5\n");
          const bool binary = kind == "bce";
          ForwardCache cache;
          check_step(net, *loss, random_batch(40, 12, 4, 8, binary), {}, cache);
          check_step(net, *loss, random_batch(40, 12, 4, 9, binary, /*absent=*/2), {}, cache);  // arm 2 absent
          LossContext prop;
          prop.arm_propensity = {0.4, 0.3, 0.2, 0.1};
          check_step(net, *loss, random_batch(40, 12, 4, 10, binary), prop, cache);
          prop.total_weight = 55;
          check_step(net, *loss, random_batch(40, 12, 4, 11, binary), prop, cache);
          LossContext rows;
          rows.arm_rows = {10, 0, 12, 30};
          rows.total_weight = 70;
          check_step(net, *loss, random_batch(40, 12, 4, 12, binary, 1), rows, cache);
        }
}

TEST(FastPath, OneOutcomeWeightZeroAndFractionalBceLabels) {
  OneThread one_thread;
  UpliftNet net(UpliftNetConfig::preset("criteo", 12, 3), 2, at::kDouble);
  for (const std::string body : {"  revenue_weight: 0\n", "  cost_weight: 0\n  revenue_loss: bce\n"}) {
    SCOPED_TRACE(body);
    auto loss = make("  name: tsm_sl\n" + body);
    Batch b = random_batch(30, 12, 3, 4);
    b.y_r = b.y_r / 3;  // in [0, 1]
    ForwardCache cache;
    check_step(net, *loss, b, {}, cache);
  }
}

TEST(FastPath, AtenLossPathMatchesToo) {
  OneThread one_thread;
  // value_and_grad runs one pass over the rows on the CPU when every column has the scores' dtype; otherwise (and
  // on CUDA) it runs ATen ops. Float32 labels and weights under float64 scores take that path here.
  UpliftNet net(UpliftNetConfig::preset("criteo", 12, 4), 5, at::kDouble);
  for (const std::string loss_name : {"tsm_sl", "factual"})
    for (const std::string kind : {"mse", "bce"}) {
      SCOPED_TRACE(loss_name + " " + kind);
      auto loss = make("  name: " + loss_name + "\n  revenue_loss: " + kind + "\n  cost_loss: " + kind + "\n");
      Batch b = random_batch(40, 12, 4, 21, kind == "bce", 3);
      b.y_r = b.y_r.to(at::kFloat), b.y_c = b.y_c.to(at::kFloat), b.weight = b.weight.to(at::kFloat);
      ForwardCache cache;
      check_step(net, *loss, b, {}, cache);
      LossContext prop;
      prop.arm_propensity = {0.4, 0.3, 0.2, 0.1};
      check_step(net, *loss, b, prop, cache);
      at::Tensor value, d_r, d_c;
      b.y_r[0] = 2.0;  // a bce label outside [0, 1]
      Scores s = net.forward_train(net.flat(), b.x, cache);
      if (kind == "bce") {
        EXPECT_THROW(loss->value_and_grad(b, s, {}, value, d_r, d_c), DataError);
      }
    }
}

TEST(FastPath, BceLabelsOutsideZeroOneAreRejected) {
  UpliftNet net(UpliftNetConfig::preset("criteo", 12, 3), 5, at::kDouble);
  auto loss = make("  name: tsm_sl\n  revenue_loss: bce\n  cost_loss: bce\n");
  Batch b = random_batch(10, 12, 3, 22, true);
  b.y_c[4] = -0.5;
  ForwardCache cache;
  Scores s = net.forward_train(net.flat(), b.x, cache);
  at::Tensor value, d_r, d_c;
  EXPECT_THROW(loss->value_and_grad(b, s, {}, value, d_r, d_c), DataError);
  EXPECT_THROW(loss->compute(b, s, {}), DataError);
}

TEST(FastPath, SaturatedSigmoidGetsTheClampedGradient) {
  // Scores at exactly 0 and 1 (the clamps are active): compute()'s autograd gradient is 0 there, and finite.
  auto loss = make("  name: factual\n  revenue_loss: bce\n  cost_loss: bce\n");
  Batch b = random_batch(6, 2, 2, 3, true);
  Scores s{torch::tensor({0., 1., 0.5, 1e-40, 0.3, 1.}, f64()).reshape({6, 1}).repeat({1, 2}),
           torch::tensor({1., 0., 0.25, 0.9, 1. - 1e-17, 0.}, f64()).reshape({6, 1}).repeat({1, 2})};
  at::Tensor r = s.r_hat.clone().requires_grad_(true), c = s.c_hat.clone().requires_grad_(true);
  at::Tensor ref = loss->compute(b, Scores{r, c}, {});
  auto d_ref = torch::autograd::grad({ref}, {r, c});
  at::Tensor value, d_r, d_c;
  ASSERT_TRUE(loss->value_and_grad(b, s, {}, value, d_r, d_c));
  EXPECT_NEAR(value.item<double>(), ref.item<double>(), 1e-12 * std::abs(ref.item<double>()));
  EXPECT_TRUE(torch::isfinite(d_r).all().item<bool>());
  EXPECT_TRUE(torch::allclose(d_r, d_ref[0], 1e-12, 0));
  EXPECT_TRUE(torch::allclose(d_c, d_ref[1], 1e-12, 0));
}

TEST(FastPath, CacheFollowsTheBatchSizeAndIsReused) {
  OneThread one_thread;
  UpliftNetConfig c = UpliftNetConfig::preset("dfcl_official", 12, 3);
  c.shared_trunk = false;
  for (bool shared : {true, false}) {
    c.shared_trunk = shared;
    UpliftNet net(c, 1, at::kDouble);
    auto loss = make("  name: tsm_sl\n  revenue_loss: bce\n  cost_loss: bce\n");
    ForwardCache cache;
    check_step(net, *loss, random_batch(20, 12, 3, 1, true), {}, cache);
    check_step(net, *loss, random_batch(7, 12, 3, 2, true), {}, cache);  // smaller: buffers reallocated
    // Same size again: the buffers are reused, not reallocated.
    std::vector<const void*> before;
    for (const auto& t : cache.acts) before.push_back(t.data_ptr());
    check_step(net, *loss, random_batch(7, 12, 3, 3, true), {}, cache);
    for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(before[i], cache.acts[i].data_ptr()) << "layer " << i;
    check_step(net, *loss, random_batch(33, 12, 3, 4, true), {}, cache);  // larger
  }
}

TEST(FastPath, GradientBufferIsOverwrittenAndFloatWorks) {
  UpliftNet net(UpliftNetConfig::preset("criteo", 12, 5), 4);  // float32
  auto loss = make("  name: tsm_sl\n  revenue_loss: bce\n  cost_loss: bce\n");
  Batch b = random_batch(64, 12, 5, 9, true);
  b.x = b.x.to(at::kFloat), b.y_r = b.y_r.to(at::kFloat), b.y_c = b.y_c.to(at::kFloat);
  b.weight = b.weight.to(at::kFloat);
  ForwardCache cache;
  Scores s = net.forward_train(net.flat(), b.x, cache);
  at::Tensor value, d_r, d_c;
  ASSERT_TRUE(loss->value_and_grad(b, s, {}, value, d_r, d_c));
  at::Tensor grad = at::full({net.num_parameters()}, 1e30, at::TensorOptions().dtype(at::kFloat));  // stale
  net.backward(net.flat(), cache, d_r, d_c, grad);
  at::Tensor g_ref = torch::autograd::grad({loss->compute(b, net.forward(b.x), {})}, {net.flat()})[0];
  EXPECT_LE(rel_diff(grad, g_ref), 1e-4);
  EXPECT_NEAR(value.item<double>(), loss->compute(b, s, {}).item<double>(), 1e-5);
}

namespace {
bool cpu_has_avx2_fma() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}
}  // namespace

TEST(FastPath, Float32DenseKernelsMatchFloat64) {
  // float32 shared-trunk chains with relu / leaky_relu and no head hidden layers run on the CPU kernels (AVX2):
  // compare with the float64 ATen path on the same parameters. Widths, features and batch sizes hit every tail of
  // the kernels' 6 x 16 blocks and 128-row tiles.
  struct Case {
    std::vector<int> trunk;
    int features, arms;
    bool arm_column, shared;
    std::string act;
  };
  const std::vector<Case> cases{{{64, 32, 32}, 12, 5, false, true, "relu"},
                                {{64, 32, 32}, 32, 5, true, true, "relu"},
                                {{17, 9}, 13, 3, false, true, "leaky_relu"},
                                {{5}, 3, 2, true, true, "leaky_relu"},
                                {{}, 12, 4, false, true, "relu"},
                                {{}, 7, 2, true, false, "relu"},
                                {{24, 40}, 33, 8, false, true, "relu"}};
  const std::vector<std::pair<std::string, std::string>> outs{
      {"sigmoid", "identity"}, {"sigmoid", "sigmoid"}, {"identity", "identity"}, {"softplus", "sigmoid"}};
  size_t o = 0;
  for (const Case& k : cases)
    for (int64_t B : {1, 7, 128, 129, 1000}) {
      const auto& [rev, cost] = outs[o++ % outs.size()];
      SCOPED_TRACE(::testing::Message() << "trunk=" << k.trunk.size() << " F=" << k.features << " M=" << k.arms
                                        << " arm_column=" << k.arm_column << " " << k.act << " B=" << B
                                        << " out=" << rev << "/" << cost);
      UpliftNetConfig c = small(k.trunk, {}, k.shared, k.arm_column, k.act, rev, cost);
      c.features = k.features, c.arms = k.arms;
      UpliftNet net(c, 11);               // float32
      UpliftNet ref(c, 11, at::kDouble);  // same parameters in float64
      auto loss = make("  name: tsm_sl\n  revenue_loss: " + std::string(rev == "sigmoid" ? "bce" : "mse") + "\n");
      Batch b = random_batch(B + 2, k.features, k.arms, 31 + B, true);
      b.y_c = b.y_c * 0.5;
      Batch bf{b.x.to(at::kFloat), b.t, b.y_r.to(at::kFloat), b.y_c.to(at::kFloat), b.weight.to(at::kFloat)};
      ForwardCache cache;
      Scores s = net.forward_train(net.flat(), bf.x, cache);
      EXPECT_EQ(cache.dense, cpu_has_avx2_fma());
      Scores sr = ref.forward(b.x);
      EXPECT_LE(rel_diff(s.r_hat.to(at::kDouble), sr.r_hat.detach()), 2e-6);
      EXPECT_LE(rel_diff(s.c_hat.to(at::kDouble), sr.c_hat.detach()), 2e-6);
      at::Tensor value, d_r, d_c, grad;
      ASSERT_TRUE(loss->value_and_grad(bf, s, {}, value, d_r, d_c));
      net.backward(net.flat(), cache, d_r, d_c, grad);
      at::Tensor g_ref = torch::autograd::grad({loss->compute(b, sr, {})}, {ref.flat()})[0];
      EXPECT_LE(rel_diff(grad.to(at::kDouble), g_ref), 2e-5);
      // The next step reuses the buffers, with another batch size.
      s = net.forward_train(net.flat(), bf.x.narrow(0, 0, 1), cache);
      EXPECT_LE(rel_diff(s.r_hat.to(at::kDouble), sr.r_hat.detach().narrow(0, 0, 1)), 2e-6);
    }
}

TEST(FastPath, Float32OtherLayoutsTakeTheAtenPath) {
  for (const std::string act : {"gelu", "tanh"}) {
    UpliftNet net(small({8}, {}, true, false, act, "sigmoid", "sigmoid"), 2);
    UpliftNet head(small({8}, {4}, true, false, "relu", "sigmoid", "sigmoid"), 2);
    for (const UpliftNet* p : {&net, &head}) {
      ForwardCache cache;
      Batch b = random_batch(20, 6, 3, 3, true);
      Scores s = p->forward_train(p->flat(), b.x.to(at::kFloat), cache);
      EXPECT_FALSE(cache.dense);
      EXPECT_LE(rel_diff(s.r_hat, p->forward(b.x.to(at::kFloat)).r_hat.detach()), 1e-6);
    }
  }
}

TEST(FastPath, CudaMatchesAutograd) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const at::Device cuda(at::kCUDA);
  for (const std::string preset : {"criteo", "dfcl_official"})
    for (bool shared : {true, false})
      for (const std::string act : {"relu", "gelu"}) {
        SCOPED_TRACE(preset + (shared ? " shared " : " separate ") + act);
        UpliftNetConfig c = UpliftNetConfig::preset(preset, 12, 3);
        c.shared_trunk = shared, c.activation = act;
        UpliftNet net(c, 7, at::kDouble, cuda);
        auto loss = make("  name: tsm_sl\n  revenue_loss: bce\n  cost_loss: bce\n");
        Batch b = random_batch(300, 12, 3, 5, true, 1);
        b = Batch{b.x.to(cuda), b.t.to(cuda), b.y_r.to(cuda), b.y_c.to(cuda), b.weight.to(cuda)};
        ForwardCache cache;
        check_step(net, *loss, b, {}, cache);
        LossContext prop;
        prop.arm_propensity = {0.5, 0.3, 0.2};
        check_step(net, *make("  name: factual\n"), b, prop, cache);
        // float32 on the device: the ATen path (the CPU kernels are for the host only).
        UpliftNet f32(c, 7, at::kFloat, cuda);
        Batch bf{b.x.to(at::kFloat), b.t, b.y_r.to(at::kFloat), b.y_c.to(at::kFloat), b.weight.to(at::kFloat)};
        ForwardCache cf;
        Scores s = f32.forward_train(f32.flat(), bf.x, cf);
        EXPECT_FALSE(cf.dense);
        at::Tensor value, d_r, d_c, grad;
        ASSERT_TRUE(loss->value_and_grad(bf, s, {}, value, d_r, d_c));
        f32.backward(f32.flat(), cf, d_r, d_c, grad);
        EXPECT_TRUE(grad.is_cuda());
        at::Tensor g_ref = torch::autograd::grad({loss->compute(bf, f32.forward(bf.x), {})}, {f32.flat()})[0];
        EXPECT_LE(rel_diff(grad, g_ref), 1e-4);
      }
}

TEST(FastPath, BackwardRejectsMismatchedGradients) {
  UpliftNet net(UpliftNetConfig::preset("criteo", 12, 2), 4, at::kDouble);
  ForwardCache cache;
  at::Tensor grad;
  EXPECT_THROW(net.backward(net.flat(), cache, at::zeros({3, 2}, f64()), at::zeros({3, 2}, f64()), grad), DataError);
  net.forward_train(net.flat(), at::zeros({3, 12}, f64()), cache);
  EXPECT_THROW(net.backward(net.flat(), cache, at::zeros({4, 2}, f64()), at::zeros({3, 2}, f64()), grad), DataError);
  EXPECT_THROW(net.forward_train(net.flat(), at::zeros({3, 11}, f64()), cache), DataError);
}
