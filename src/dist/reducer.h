// \brief Reducer: data-parallel gradient all-reduce in size-capped buckets that start while backward still runs
// (the design of PyTorch DDP's reducer and Horovod's tensor fusion, over dfcl's flat parameter vector).
//
//  - Buckets: parameters in reverse registration order (the order backward produces them), packed greedily until a
//    bucket reaches its cap (the first bucket has a small cap, default 1 MiB, so the first all-reduce starts early;
//    the others 25 MiB). A parameter larger than the cap gets a bucket of its own. Because the parameters live in one
//    contiguous vector, a bucket is a contiguous slice of the flat gradient: no copy in or out.
//  - Readiness: backward calls mark_ready(p) as each parameter's gradient becomes final (the hand-written backward's
//    per-parameter hook; the autograd path marks all at the end). A bucket whose parameters are all ready is launched
//    (an asynchronous all-reduce) as soon as every bucket before it has been, so every rank launches buckets in the
//    same order, bucket 0 first, whatever order its hooks fire in.
//  - finish() launches what is left, waits for every bucket, and applies the reduce op (kSum: the losses already
//    divide by the global batch weight, so the sum of the per-rank gradients is the global batch's gradient; kMean
//    averages per-rank gradients of per-rank means).
//  - Static graph by default: a parameter never marked ready by finish() is an error naming it. With find_unused the
//    check runs instead: such parameters get a zero gradient (so every rank still reduces the same buckets) and are
//    named once in the log.
//  - no_sync: inside a NoSync scope prepare/mark_ready/finish do no communication (gradient accumulation; the
//    caller accumulates into the buffer it passes to the synchronising pass).
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <cstdint>  // for int64_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "dist/communicator.h"  // for Communicator, ReduceOp, Work

namespace dfcl {
class Config;
}

namespace dfcl::dist {

/// One parameter's place in the flat vector (registration order = increasing offset, no gaps).
struct ParamSpan {
  std::string name;
  int64_t offset = 0, numel = 0;
};

struct Bucket {
  int64_t offset = 0, numel = 0;  // the bucket's slice of the flat gradient
  std::vector<int> params;        // parameter indices, in reverse registration order
};

struct ReducerOptions {
  int64_t bucket_cap_bytes = int64_t(25) << 20;
  int64_t first_bucket_cap_bytes = int64_t(1) << 20;
  ReduceOp op = ReduceOp::kSum;
  bool find_unused = false;
  /// dist.bucket_mb, dist.first_bucket_mb, dist.find_unused. Throws ConfigError naming the key.
  static ReducerOptions from(const Config& cfg);
};

/// The bucket plan: reverse registration order, greedy up to the caps (in bytes of `element_size`-byte elements).
/// Throws DataError when the spans are not contiguous from offset 0.
std::vector<Bucket> assign_buckets(const std::vector<ParamSpan>& params, int64_t element_size,
                                   int64_t first_cap_bytes, int64_t cap_bytes);

class Reducer {
 public:
  Reducer(Communicator& comm, std::vector<ParamSpan> params, int64_t element_size, const ReducerOptions& opts);
  ~Reducer();
  const std::vector<Bucket>& buckets() const { return buckets_; }
  const std::vector<ParamSpan>& params() const { return params_; }

  /// Starts a backward pass whose gradient lands in `grad` (1-D, the flat layout); `grad` must stay alive and
  /// in place until finish().
  void prepare(at::Tensor& grad);
  /// Parameter `p`'s gradient is final. Launches every bucket that became complete, in bucket order.
  void mark_ready(int p);
  void mark_all_ready();
  /// Launches the rest, waits for every bucket, applies the op. Throws DistError for an unused parameter
  /// (static graph), naming it.
  void finish();

  /// Buckets launched in the last synchronising pass, in launch order (tests; always 0, 1, 2, ...).
  const std::vector<int>& launch_order() const { return launch_order_; }
  /// Parameters found unused by the last finish() with find_unused (names).
  const std::vector<std::string>& unused() const { return unused_names_; }
  bool syncing() const { return sync_; }

  /// Gradient accumulation: no communication while alive.
  class NoSync {
   public:
    explicit NoSync(Reducer& r) : r_(r), was_(r.sync_) { r_.sync_ = false; }
    ~NoSync() { r_.sync_ = was_; }
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    Reducer& r_;
    bool was_;
  };

 private:
  void launch_ready();
  void launch(int b);

  Communicator& comm_;
  std::vector<ParamSpan> params_;
  ReducerOptions opts_;
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_;     // per parameter
  std::vector<int> pending_;       // per bucket: parameters not ready yet
  std::vector<uint8_t> ready_;     // per parameter
  std::vector<at::Tensor> views_;  // per bucket: its slice of grad
  std::vector<std::unique_ptr<Work>> work_;
  std::vector<int> launch_order_;
  std::vector<std::string> unused_names_;
  int next_launch_ = 0;
  bool active_ = false, sync_ = true, warned_unused_ = false;
  at::Tensor grad_;
};

}  // namespace dfcl::dist
