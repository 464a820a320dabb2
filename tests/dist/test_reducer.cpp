// \brief The gradient reducer: bucket plan, launch order, overlap with backward, static-graph and unused-parameter
// handling, no_sync, and the network's per-parameter hooks. A recording communicator stands in for the other rank:
// its all-reduce adds a known "other rank" gradient, so the reduced values are checked exactly.
#include <ATen/ATen.h>    // for at::arange
#include <gtest/gtest.h>  // for TEST

#include <memory>  // for std::unique_ptr
#include <string>  // for std::string
#include <vector>  // for std::vector

#include "core/config.h"       // for Config
#include "core/error.h"        // for DataError, DistError
#include "dist/reducer.h"      // for Reducer, assign_buckets
#include "model/uplift_net.h"  // for UpliftNet

using namespace dfcl;
using dist::Bucket;
using dist::ParamSpan;
using dist::Reducer;
using dist::ReducerOptions;

namespace {

// A 2-rank world seen from rank 0: every all-reduce adds `other` (the other rank's full gradient) on wait().
class RecordingComm : public dist::Communicator {
 public:
  struct Call {
    int64_t offset, numel;
    int ready_at_launch;  // parameters marked ready when it was launched (overlap check)
  };
  explicit RecordingComm(at::Tensor other) : other_(std::move(other)) {}
  int rank() const override { return 0; }
  int size() const override { return 2; }
  std::string name() const override { return "recording"; }
  void allreduce(at::Tensor& t, dist::ReduceOp op) override { allreduce_async(t, op)->wait(); }
  std::unique_ptr<dist::Work> allreduce_async(at::Tensor& t, dist::ReduceOp op) override {
    const int64_t off = (static_cast<const char*>(t.data_ptr()) - static_cast<const char*>(base.data_ptr())) /
                        int64_t(t.element_size());
    calls.push_back({off, t.numel(), ready_now ? *ready_now : -1});
    struct W : dist::Work {
      at::Tensor t, add;
      dist::ReduceOp op;
      bool done = false;
      void wait() override {
        if (done) return;
        done = true;
        t.add_(add);
        if (op == dist::ReduceOp::kMean) t.div_(2);
      }
    };
    auto w = std::make_unique<W>();
    w->t = t, w->add = other_.narrow(0, off, t.numel()), w->op = op;
    return w;
  }
  void broadcast(at::Tensor&, int) override {}
  void barrier() override {}
  std::vector<std::vector<double>> allgather(const std::vector<double>& v) override { return {v, v}; }

  at::Tensor base;  // the gradient buffer (offsets are measured from it)
  const int* ready_now = nullptr;
  std::vector<Call> calls;

 private:
  at::Tensor other_;
};

std::vector<ParamSpan> spans(const std::vector<int64_t>& sizes) {
  std::vector<ParamSpan> out;
  int64_t off = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    out.push_back({"p" + std::to_string(i), off, sizes[i]});
    off += sizes[i];
  }
  return out;
}

}  // namespace

TEST(BucketPlan, ReverseOrderGreedyCapsAndFirstBucketSmaller) {
  // float32 params of 100, 300, 50, 400, 200 elements; first cap 1000 B (250 elems), then 2000 B (500 elems).
  const auto p = spans({100, 300, 50, 400, 200});
  const std::vector<Bucket> b = dist::assign_buckets(p, 4, 1000, 2000);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].params, (std::vector<int>{4}));     // 200 elems = 800 B; + 400 would pass 1000 B
  EXPECT_EQ(b[1].params, (std::vector<int>{3, 2}));  // 400 + 50 = 450 elems = 1800 B; + 300 would pass 2000 B
  EXPECT_EQ(b[2].params, (std::vector<int>{1, 0}));  // 300 + 100
  // Each bucket is the contiguous slice of its parameters.
  EXPECT_EQ(b[0].offset, 850);
  EXPECT_EQ(b[0].numel, 200);
  EXPECT_EQ(b[1].offset, 400);
  EXPECT_EQ(b[1].numel, 450);
  EXPECT_EQ(b[2].offset, 0);
  EXPECT_EQ(b[2].numel, 400);
  // Every parameter is in exactly one bucket, and the buckets tile the vector.
  int64_t covered = 0;
  for (const auto& k : b) covered += k.numel;
  EXPECT_EQ(covered, 1050);
}

TEST(BucketPlan, OversizedParameterGetsItsOwnBucketAndDefaultsGiveOneBucketForSmallNets) {
  const std::vector<Bucket> b = dist::assign_buckets(spans({10, 5000, 10}), 4, 100, 1000);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].params, (std::vector<int>{2}));
  EXPECT_EQ(b[1].params, (std::vector<int>{1}));  // 20000 B > cap: alone
  EXPECT_EQ(b[2].params, (std::vector<int>{0}));
  const ReducerOptions d;
  EXPECT_EQ(d.bucket_cap_bytes, 25 << 20);
  EXPECT_EQ(d.first_bucket_cap_bytes, 1 << 20);
  EXPECT_EQ(dist::assign_buckets(spans({1000, 1000}), 4, d.first_bucket_cap_bytes, d.bucket_cap_bytes).size(), 1u);
}

TEST(BucketPlan, ConfigKeysAndBadSpans) {
  const ReducerOptions o = ReducerOptions::from(Config::from_string("dist:\n  bucket_mb: 2\n  first_bucket_mb: 0.5\n"));
  EXPECT_EQ(o.bucket_cap_bytes, 2 << 20);
  EXPECT_EQ(o.first_bucket_cap_bytes, 512 << 10);
  EXPECT_THROW(ReducerOptions::from(Config::from_string("dist:\n  bucket_mb: 0\n")), ConfigError);
  std::vector<ParamSpan> gap = spans({4, 4});
  gap[1].offset = 5;
  try {
    dist::assign_buckets(gap, 4, 100, 100);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("'p1' sits at offset 5"), std::string::npos) << e.what();
  }
}

TEST(Reducer, LaunchesInBucketOrderWhateverTheHookOrderAndReducesExactly) {
  const auto p = spans({3, 5, 2, 4});  // first cap 8 B = 2 floats... caps in bytes below
  const at::Tensor other = at::arange(14, at::kFloat) * 10;
  RecordingComm comm(other);
  ReducerOptions o;
  o.first_bucket_cap_bytes = 16, o.bucket_cap_bytes = 28;  // buckets: {3}, {2, 1}, {0}
  Reducer r(comm, p, 4, o);
  ASSERT_EQ(r.buckets().size(), 3u);
  EXPECT_EQ(r.buckets()[1].params, (std::vector<int>{2, 1}));
  at::Tensor g = at::arange(14, at::kFloat);
  comm.base = g;
  r.prepare(g);
  // Hooks in a scrambled order: 1, 0, 3, 2. Bucket 2 ({0}) is complete first but must wait for buckets 0 and 1.
  r.mark_ready(1);
  r.mark_ready(0);
  EXPECT_TRUE(comm.calls.empty());
  r.mark_ready(3);  // bucket 0 complete: launches now
  ASSERT_EQ(comm.calls.size(), 1u);
  EXPECT_EQ(comm.calls[0].offset, 10);
  EXPECT_EQ(comm.calls[0].numel, 4);
  r.mark_ready(2);  // bucket 1 complete: launches, then bucket 2 (already complete) follows in order
  ASSERT_EQ(comm.calls.size(), 3u);
  EXPECT_EQ(comm.calls[1].offset, 3);
  EXPECT_EQ(comm.calls[1].numel, 7);
  EXPECT_EQ(comm.calls[2].offset, 0);
  EXPECT_EQ(comm.calls[2].numel, 3);
  r.finish();
  EXPECT_EQ(r.launch_order(), (std::vector<int>{0, 1, 2}));
  EXPECT_TRUE(at::equal(g, at::arange(14, at::kFloat) * 11));  // own + other, every element exactly once
}

TEST(Reducer, MeanOpAveragesAndNoSyncCommunicatesNothing) {
  const auto p = spans({4, 4});
  RecordingComm comm(at::full({8}, 3.0f));
  ReducerOptions o;
  o.op = dist::ReduceOp::kMean;
  Reducer r(comm, p, 4, o);
  at::Tensor g = at::ones({8});
  comm.base = g;
  {
    Reducer::NoSync scope(r);
    r.prepare(g);
    r.mark_all_ready();
    r.finish();
    EXPECT_FALSE(r.syncing());
  }
  EXPECT_TRUE(r.syncing());
  EXPECT_TRUE(comm.calls.empty());
  EXPECT_TRUE(at::equal(g, at::ones({8})));
  r.prepare(g);
  r.mark_all_ready();
  r.finish();
  EXPECT_TRUE(at::allclose(g, at::full({8}, 2.0f)));  // (1 + 3) / 2
}

TEST(Reducer, StaticGraphNamesTheMissingParameterAndFindUnusedZeroFillsIt) {
  const auto p = spans({2, 2, 2});
  {
    RecordingComm comm(at::zeros({6}));
    Reducer r(comm, p, 4, ReducerOptions{});
    at::Tensor g = at::ones({6});
    comm.base = g;
    r.prepare(g);
    r.mark_ready(2);
    r.mark_ready(0);
    try {
      r.finish();
      FAIL();
    } catch (const DistError& e) {
      EXPECT_NE(std::string(e.what()).find("'p1' received no gradient"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("dist.find_unused=true"), std::string::npos);
    }
  }
  RecordingComm comm(at::full({6}, 5.0f));
  ReducerOptions o;
  o.find_unused = true;
  Reducer r(comm, p, 4, o);
  at::Tensor g = at::ones({6});
  comm.base = g;
  r.prepare(g);
  r.mark_ready(2);
  r.mark_ready(0);
  r.finish();
  EXPECT_EQ(r.unused(), (std::vector<std::string>{"p1"}));
  // p1: local zero + other 5; the others: 1 + 5. Every bucket was still reduced (same collectives on every rank).
  EXPECT_TRUE(at::equal(g, at::tensor({6.f, 6.f, 5.f, 5.f, 6.f, 6.f})));
  r.prepare(g);
  r.mark_ready(0);
  EXPECT_THROW(r.mark_ready(0), DistError) << "ready twice in one pass";
  EXPECT_THROW(r.prepare(g), DistError) << "a new pass before finish()";
}

TEST(Reducer, NetworkHooksFireOncePerParameterInReverseOrderAndTheFirstBucketOverlapsBackward) {
  for (const at::ScalarType dt : {at::kFloat, at::kDouble}) {  // float32 takes the fused CPU kernels' path
    model::UpliftNet net(model::UpliftNetConfig::preset("criteo", 12, 3), 1, dt);
    const auto& entries = net.layout().entries();
    std::vector<ParamSpan> p;
    for (const auto& e : entries) p.push_back({e.name, e.offset, e.numel});
    at::Tensor other = at::zeros({net.num_parameters()}, dt);
    RecordingComm comm(other);
    ReducerOptions o;
    o.first_bucket_cap_bytes = 64 * 4, o.bucket_cap_bytes = 4096 * 4;
    Reducer r(comm, p, int64_t(net.flat().element_size()), o);
    ASSERT_GE(r.buckets().size(), 3u);
    at::Tensor x = at::randn({64, 12}, at::TensorOptions().dtype(dt));
    model::ForwardCache cache;
    const model::Scores s = net.forward_train(net.flat(), x, cache);
    at::Tensor grad = at::zeros_like(net.flat()).detach(), grad_ref;
    const at::Tensor d_r = at::ones_like(s.r_hat), d_c = at::ones_like(s.c_hat) * 0.5;
    net.backward(net.flat(), cache, d_r, d_c, grad_ref);
    comm.base = grad;
    int ready = 0;
    comm.ready_now = &ready;
    std::vector<size_t> order;
    r.prepare(grad);
    net.backward(net.flat(), cache, d_r, d_c, grad, [&](size_t e) {
      order.push_back(e);
      ++ready;
      r.mark_ready(int(e));
    });
    r.finish();
    ASSERT_EQ(order.size(), entries.size());
    for (size_t i = 0; i < order.size(); ++i) EXPECT_EQ(order[i], entries.size() - 1 - i);
    EXPECT_EQ(r.launch_order().size(), r.buckets().size());
    EXPECT_LT(comm.calls.front().ready_at_launch, int(entries.size())) << "the first bucket starts before backward ends";
    EXPECT_TRUE(at::equal(grad, grad_ref)) << "hooks and buckets leave the gradient as backward computed it";
  }
}
