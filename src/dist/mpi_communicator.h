// \brief Internal: the MPI communicator (Open MPI, CPU tensors), also the CPU half and the control plane of NCCL's.
//
// Built only with DFCL_HAVE_MPI. Callers outside src/dist use make_communicator() (communicator.h); this header is for
// the NCCL communicator (sequence numbers, debug check and watchdog shared with MPI) and the tests.
#pragma once
#include <deque>  // for std::deque
#include <mpi.h>  // for MPI_Comm

#include <cstdint>  // for int64_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "dist/collective.h"    // for CollectiveDesc
#include "dist/communicator.h"  // for Communicator, CommOptions
#include "dist/watchdog.h"      // for Watchdog

namespace dfcl::dist {

class MpiStagedWork;

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

  // ---- the order of staged all-reduces (mpi.cpp) ----
  // An async float all-reduce is two collectives, and its second starts when its first has completed, which each rank
  // sees at its own time. Collectives on one communicator must start in the same order on every rank, so the second
  // stages start in launch order, and before any later collective: a work whose first stage is done waits for those
  // launched before it (staged_front), and begin() first finishes the first stage of every work in flight
  // (flush_staged). Without this two buckets in flight can start their second stages in different orders on two
  // ranks: MPI_ERR_TRUNCATE, or a wrong sum.
  void push_staged(MpiStagedWork* w) { staged_.push_back(w); }
  MpiStagedWork* staged_front() const { return staged_.empty() ? nullptr : staged_.front(); }
  void pop_staged(MpiStagedWork* w);
  void flush_staged();

 private:
  void debug_check(const CollectiveDesc& desc);

  CommOptions opts_;
  int rank_ = 0, size_ = 1;
  MPI_Comm comm_ = MPI_COMM_NULL;     // collectives
  MPI_Comm wd_comm_ = MPI_COMM_NULL;  // the watchdog's arrival reports
  int64_t seq_ = 0;
  std::unique_ptr<Watchdog> watchdog_;
  std::vector<char> scratch_;  // blocking float all-reduce: every rank's copy of this rank's segment (reused)
  std::deque<MpiStagedWork*> staged_;  // async works still in their first stage, in launch order
};

/// True when MPI_Init has run and MPI_Finalize has not (some other code may have initialised MPI).
bool mpi_active();
/// What to check when ranks cannot reach each other over MPI (start-up self-test messages).
std::string mpi_network_hints();

}  // namespace dfcl::dist
