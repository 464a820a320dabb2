// \brief Internal: the MPI communicator (Open MPI, CPU tensors), also the CPU half and the control plane of NCCL's.
//
// Built only with DFCL_HAVE_MPI. Callers outside src/dist use make_communicator() (communicator.h); this header is for
// the NCCL communicator (sequence numbers, debug check and watchdog shared with MPI) and the tests.
#pragma once
#include <mpi.h>  // for MPI_Comm

#include <cstdint>  // for int64_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "dist/collective.h"    // for CollectiveDesc
#include "dist/communicator.h"  // for Communicator, CommOptions
#include "dist/watchdog.h"      // for Watchdog

namespace dfcl::dist {

class MpiCommunicator : public Communicator {
 public:
  /// Initialises MPI (MPI_THREAD_MULTIPLE) unless it is already, runs the start-up self-test on MPI_COMM_WORLD,
  /// then dups it twice (collectives; watchdog reports) and starts the watchdog. Collective over MPI_COMM_WORLD.
  /// Throws DistError when MPI lacks thread support or the self-test fails or times out.
  explicit MpiCommunicator(const CommOptions& opts);
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }
  void allreduce(at::Tensor& t, ReduceOp op = ReduceOp::kSum) override;
  std::unique_ptr<Work> allreduce_async(at::Tensor& t, ReduceOp op = ReduceOp::kSum) override;
  void broadcast(at::Tensor& t, int root = 0) override;
  void barrier() override;
  std::vector<std::vector<double>> allgather(const std::vector<double>& local) override;
  int64_t sequence() const override { return seq_; }

  // ---- internal (NCCL communicator, tests) ----
  MPI_Comm comm() const { return comm_; }
  const CommOptions& options() const { return opts_; }
  Watchdog& watchdog() { return *watchdog_; }
  /// Numbers `desc` (the next sequence number), registers it with the watchdog and, in debug mode, checks it against
  /// every rank's (throws DistError on a mismatch, after deregistering it). Returns its sequence number; the caller
  /// calls end() once the collective completed or failed.
  int64_t begin(CollectiveDesc desc);
  void end(int64_t seq) { watchdog_->end(seq); }
  /// Throws DistError "rank R: <what> failed in collective #S (<name>): <MPI's message>" unless rc is MPI_SUCCESS.
  void check(int rc, const char* what, const CollectiveDesc& desc) const;

 private:
  void debug_check(const CollectiveDesc& desc);

  CommOptions opts_;
  int rank_ = 0, size_ = 1;
  MPI_Comm comm_ = MPI_COMM_NULL;     // collectives
  MPI_Comm wd_comm_ = MPI_COMM_NULL;  // the watchdog's arrival reports
  int64_t seq_ = 0;
  std::unique_ptr<Watchdog> watchdog_;
  std::vector<char> scratch_;  // blocking float all-reduce: every rank's copy of this rank's segment (reused)
};

/// True when MPI_Init has run and MPI_Finalize has not (some other code may have initialised MPI).
bool mpi_active();
/// What to check when ranks cannot reach each other over MPI (start-up self-test messages).
std::string mpi_network_hints();

}  // namespace dfcl::dist
