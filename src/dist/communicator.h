// \brief Communicator: every cross-process quantity (gradients, metric sums, counts) goes through this interface.
//
// The trainer and the metrics never ask "am I distributed?": they reduce through a Communicator, and the local
// implementation (one process) makes each collective the identity. MPI and NCCL implementations plug in here
// (docs/architecture.md). Rules every implementation keeps, and every caller relies on:
//  - collectives are issued in the same order with the same shapes on every rank (the loader gives every rank the
//    same number of batches, so a training loop never skips one);
//  - the result of an all-reduce is bitwise identical on every rank (a fixed reduction order), so every rank takes
//    the same decisions (early stopping, best checkpoint) from it.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <memory>  // for std::unique_ptr
#include <string>  // for std::string
#include <vector>  // for std::vector

namespace dfcl::dist {

enum class ReduceOp { kSum, kMean, kMax };

/// A collective in flight; wait() returns once its result is in place (and rethrows its error).
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// "local", "mpi", "nccl".
  virtual std::string name() const = 0;

  /// In-place all-reduce of a contiguous float32/float64/int64 tensor (blocking).
  virtual void allreduce(at::Tensor& t, ReduceOp op = ReduceOp::kSum) = 0;
  /// Starts an all-reduce; `t` must stay alive and untouched until wait().
  virtual std::unique_ptr<Work> allreduce_async(at::Tensor& t, ReduceOp op = ReduceOp::kSum) = 0;
  /// Copies root's `t` into every rank's `t` (same shape and dtype everywhere).
  virtual void broadcast(at::Tensor& t, int root = 0) = 0;
  virtual void barrier() = 0;
  /// Every rank's `local` values, rank by rank (small payloads: counts, checksums, metric sums).
  virtual std::vector<std::vector<double>> allgather(const std::vector<double>& local) = 0;

  /// All-reduce of a few doubles (metric sums, counts): in place, through allreduce().
  void allreduce_values(std::vector<double>& values, ReduceOp op = ReduceOp::kSum);
  double allreduce_value(double value, ReduceOp op = ReduceOp::kSum);
};

/// One process: rank 0 of 1; every collective leaves its input as it is (kMean divides by 1).
std::unique_ptr<Communicator> make_local_communicator();

}  // namespace dfcl::dist
