// \brief Internal: the watchdog that ends the whole job when a collective makes no progress (docs/distributed.md).
//
// Every collective registers (begin) and deregisters (end) here; the caller's cost is one mutex and a vector push.
// A background thread wakes every `tick_s` on a condition variable (no busy loop) and:
//  - reports this rank's arrivals to rank 0: when the newest collective this rank has begun changed since the last
//    report, it sends its sequence number to rank 0 (one tiny eager message on the watchdog's own communicator, sent
//    by this thread, never by the caller);
//  - on rank 0, drains those reports into the last arrival of every rank;
//  - when the oldest collective in flight has been pending longer than `timeout_s`, prints its sequence number and
//    name and, on rank 0, the ranks whose last arrival is below it (the ranks that never arrived), then MPI_Aborts
//    the job. Other ranks wait `grace_s` longer, so that rank 0's fuller report comes first; when they fire, rank 0
//    itself may be the missing rank, and their message says so.
// Needs MPI_THREAD_MULTIPLE (the thread calls MPI while the caller is inside a collective).
#pragma once
#include <mpi.h>  // for MPI_Comm, MPI_Request

#include <atomic>              // for std::atomic
#include <chrono>              // for std::chrono::steady_clock
#include <condition_variable>  // for std::condition_variable
#include <cstdint>             // for int64_t
#include <functional>          // for std::function
#include <mutex>               // for std::mutex
#include <string>              // for std::string
#include <thread>              // for std::thread
#include <vector>              // for std::vector

#include "dist/collective.h"  // for CollectiveDesc

namespace dfcl::dist {

/// Exit code of a job the watchdog ended (mpirun returns it).
constexpr int kWatchdogExitCode = 124;

class Watchdog {
 public:
  struct Options {
    double timeout_s = 300;  // a collective pending this long ends the job
    double grace_s = 10;     // ranks other than 0 wait this much longer (rank 0 names the missing ranks)
    double tick_s = 0.5;     // the thread's period
  };
  /// `comm` is used only by the watchdog (a dup of the world communicator); the caller frees it after this object.
  /// Collective: every rank constructs its watchdog at the same point (rank 0 broadcasts a token that tags reports).
  Watchdog(MPI_Comm comm, Options opts);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  /// Registers a collective (its seq must exceed every earlier one's) and records this rank's arrival at it.
  void begin(const CollectiveDesc& desc);
  /// The collective `seq` completed (or failed) on this rank.
  void end(int64_t seq);

  /// Hooks for a backend with its own failure signals (NCCL): `poll` runs on every tick and returns a non-empty
  /// message to end the job with; `before_abort` runs before MPI_Abort (ncclCommAbort). Either may be empty. Returns
  /// once no hook is running, so set_hooks({}, {}) makes it safe to destroy what the old hooks used.
  void set_hooks(std::function<std::string()> poll, std::function<void()> before_abort);

  /// Prints `msg` to stderr, runs the before-abort hook and MPI_Aborts the job with `code`; never returns.
  [[noreturn]] void abort_job(const std::string& msg, int code = kWatchdogExitCode);

 private:
  struct Pending {
    CollectiveDesc desc;
    std::chrono::steady_clock::time_point start;
  };
  void run();
  void exchange_arrivals();
  void check(std::chrono::steady_clock::time_point now);
  std::string missing_ranks_report(const CollectiveDesc& stuck) const;

  MPI_Comm comm_;
  Options opts_;
  int rank_ = 0, size_ = 1;
  int64_t token_ = 0;  // tags this watchdog's reports (a freed communicator's id can be reused)

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::vector<Pending> pending_;  // in begin order; a handful at most (async all-reduces in flight)
  std::mutex hook_mu_;            // held while a hook runs, so set_hooks() returns only once none is running
  std::function<std::string()> poll_;
  std::function<void()> before_abort_;
  std::atomic<int64_t> arrived_{0};  // newest collective this rank has begun

  // Watchdog thread only:
  int64_t reported_ = 0;                     // rank > 0: last arrival sent to rank 0
  int64_t send_buf_[2] = {0, 0};             // token, seq
  MPI_Request send_req_ = MPI_REQUEST_NULL;  // rank > 0: the report in flight
  std::vector<int64_t> recv_buf_;            // rank 0: 2 words per rank
  std::vector<MPI_Request> recv_req_;        // rank 0: one receive posted per other rank
  std::vector<int64_t> last_arrival_;        // rank 0: newest collective each rank reported

  std::thread thread_;
};

}  // namespace dfcl::dist
