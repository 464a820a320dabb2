// \brief Communicator: every cross-process quantity (gradients, metric sums, counts) goes through this interface.
//
// The trainer and the metrics never ask "am I distributed?": they reduce through a Communicator, and the local
// implementation (one process) makes each collective the identity. Implementations: local (local.cpp), mpi
// (mpi.cpp, Open MPI, CPU tensors), nccl (nccl.cpp, GPU tensors; CPU tensors go through MPI). docs/distributed.md.
// Rules every implementation keeps, and every caller relies on:
//  - collectives are issued in the same order with the same shapes on every rank (the loader gives every rank the
//    same number of batches, so a training loop never skips one); with CommOptions::debug every collective is
//    checked against the other ranks' before it runs, and a mismatch throws DistError naming the ranks;
//  - the result of an all-reduce is bitwise identical on every rank (a fixed reduction order), so every rank takes
//    the same decisions (early stopping, best checkpoint) from it;
//  - no collective waits forever: a watchdog aborts the whole job when one makes no progress within
//    CommOptions::timeout_s, naming the collective (sequence number, name) and the ranks that never arrived.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <cstdint>  // for int64_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

namespace dfcl {
class Config;
}

namespace dfcl::dist {

enum class ReduceOp { kSum, kMean, kMax };

/// A collective in flight; wait() returns once its result is in place (and rethrows its error).
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
  /// Drives progress without blocking (MPI progresses non-blocking collectives only inside MPI calls); returns true
  /// once complete. The reducer calls it between gradient hooks so a bucket's all-reduce overlaps backward.
  virtual bool test() { return false; }
};

/// The `dist` config section (docs/distributed.md).
struct CommOptions {
  std::string backend = "auto";   // auto | local | mpi | nccl (auto: mpi when launched with >1 rank, else local)
  double timeout_s = 300;         // watchdog: a collective without progress this long aborts the job
  double startup_timeout_s = 60;  // the start-up self-test (one tiny all-reduce) must finish within this
  bool debug = false;             // check each collective's (sequence, op, dtype, shape) on every rank first
  /// Reads dist.backend, dist.timeout_s, dist.startup_timeout_s, dist.debug; marks them used. Throws ConfigError.
  static CommOptions from(const Config& cfg);
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
  /// Every rank's `local` values, rank by rank; lengths may differ between ranks (counts, checksums, metric rows).
  virtual std::vector<std::vector<double>> allgather(const std::vector<double>& local) = 0;
  /// Collectives this communicator has issued so far (the watchdog's and the debug check's sequence number).
  virtual int64_t sequence() const { return 0; }

  /// All-reduce of a few doubles (metric sums, counts): in place, through allreduce().
  void allreduce_values(std::vector<double>& values, ReduceOp op = ReduceOp::kSum);
  double allreduce_value(double value, ReduceOp op = ReduceOp::kSum);
};

/// One process: rank 0 of 1; every collective leaves its input as it is (kMean divides by 1).
std::unique_ptr<Communicator> make_local_communicator();

/// The communicator `opts.backend` names, after its start-up self-test (one tiny all-reduce under
/// opts.startup_timeout_s; on failure it prints the MPI/NCCL environment hints and throws DistError). `device` is
/// the training device ("cpu", "cuda", "cuda:1"): backend auto picks nccl for CUDA when built with it. Throws
/// ConfigError when the backend was not built (naming the CMake option that builds it).
std::unique_ptr<Communicator> make_communicator(const CommOptions& opts, const std::string& device = "cpu");

/// True when a launcher (mpirun, srun) started this process as one of several ranks (environment only).
bool launched_multi_process();

/// Ends every process of the job with `exit_code` (MPI_Abort) when this process is one rank of several; returns
/// otherwise. main() calls it after printing an error, so one rank's failure never leaves the others waiting.
void abort_job(int exit_code);
/// Installs what abort_job does (the MPI communicator sets MPI_Abort); internal.
void set_abort_handler(void (*handler)(int exit_code));

}  // namespace dfcl::dist
