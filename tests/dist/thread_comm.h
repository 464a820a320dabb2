// \brief ThreadComm: an in-process W-rank dist::Communicator over std::thread, for testing collective code without MPI.
//
// run_ranks(W, fn) runs fn(comm) on W threads, rank r on thread r, and returns when all are done. Every collective is
// two barrier phases over one shared slot table: each rank posts its buffer and waits until all have; each rank then
// reads all posted buffers in rank order (a sum is ((x_0 + x_1) + x_2) + ..., so the result is bitwise identical on
// every rank, as the Communicator contract requires) into its own result, and waits again before it writes that
// result into its buffer, so no rank overwrites a buffer another is still reading. Every collective checks that all
// ranks issued the same kind, dtype, length (not for allgather), op and root, and throws DistError on every rank if
// not (as CommOptions::debug does). A rank that throws or returns while others wait in a collective ends the group:
// every rank waiting in (or later entering) a collective gets DistError, so a failing test ends instead of hanging.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <fmt/format.h>  // for fmt::format

#include <algorithm>           // for std::max, std::copy
#include <condition_variable>  // for std::condition_variable
#include <cstdint>             // for int64_t, uint64_t
#include <cstring>             // for std::memcpy
#include <exception>           // for std::exception_ptr, std::current_exception
#include <functional>          // for std::function
#include <memory>              // for std::unique_ptr, std::make_unique
#include <mutex>               // for std::mutex, std::unique_lock
#include <string>              // for std::string
#include <thread>              // for std::thread
#include <vector>              // for std::vector

#include "core/error.h"         // for DistError
#include "dist/communicator.h"  // for Communicator, ReduceOp, Work

namespace dfcl::test {

/// The state the W ranks of one run_ranks() share: a generation barrier and one posted slot per rank.
class ThreadGroup {
 public:
  enum Kind { kAllreduce = 1, kBroadcast, kBarrier, kAllgather };
  struct Slot {
    int kind = 0;
    int dtype = -1;  // at::ScalarType, or -1
    int64_t len = 0;
    int op = -1, root = -1;
    const void* data = nullptr;
    const std::vector<double>* vec = nullptr;  // allgather
  };

  explicit ThreadGroup(int world) : world_(world), slots_(world) {}
  int world() const { return world_; }
  std::vector<Slot>& slots() { return slots_; }

  /// Blocks until all ranks arrive. Throws DistError when a rank has thrown or returned, since then this collective
  /// can never complete.
  void arrive_and_wait(int rank) {
    std::unique_lock<std::mutex> lk(mu_);
    check_alive(rank);
    const uint64_t gen = gen_;
    if (++count_ == world_) {
      count_ = 0;
      ++gen_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lk, [&] { return gen_ != gen || !reason_.empty(); });
    if (gen_ == gen) check_alive(rank);
  }
  /// Marks the group broken (a rank threw, or returned while others may still wait).
  void leave(int rank, bool threw) {
    std::lock_guard<std::mutex> lk(mu_);
    if (reason_.empty()) reason_ = fmt::format("rank {} {}", rank, threw ? "failed" : "returned");
    cv_.notify_all();
  }

 private:
  void check_alive(int rank) {
    if (!reason_.empty())
      throw DistError(
          fmt::format("thread communicator, rank {}: {} while this rank waits in a collective; the "
                      "collective cannot complete",
                      rank, reason_));
  }
  int world_;
  std::vector<Slot> slots_;
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
  uint64_t gen_ = 0;
  std::string reason_;
};

class ThreadCommunicator : public dist::Communicator {
 public:
  ThreadCommunicator(ThreadGroup& g, int rank) : g_(g), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return g_.world(); }
  std::string name() const override { return "thread"; }
  int64_t sequence() const override { return seq_; }

  void allreduce(at::Tensor& t, dist::ReduceOp op = dist::ReduceOp::kSum) override {
    check_tensor(t, "allreduce");
    const int64_t n = t.numel();
    switch (t.scalar_type()) {
      case at::kDouble:
        reduce<double>(t, n, op);
        break;
      case at::kFloat:
        reduce<float>(t, n, op);
        break;
      case at::kLong:
        reduce<int64_t>(t, n, op);
        break;
      default:
        throw DistError(fmt::format("thread communicator: allreduce of dtype {}; use float32, float64 or int64",
                                    std::string(c10::toString(t.scalar_type()))));
    }
  }
  std::unique_ptr<dist::Work> allreduce_async(at::Tensor& t, dist::ReduceOp op = dist::ReduceOp::kSum) override {
    allreduce(t, op);  // synchronous: the result is in place when this returns
    return std::make_unique<Done>();
  }
  void broadcast(at::Tensor& t, int root = 0) override {
    check_tensor(t, "broadcast");
    const int64_t bytes = t.numel() * int64_t(t.element_size());
    post({ThreadGroup::kBroadcast, int(t.scalar_type()), t.numel(), -1, root, t.data_ptr(), nullptr});
    if (rank_ != root) std::memcpy(t.data_ptr(), g_.slots()[root].data, size_t(bytes));
    g_.arrive_and_wait(rank_);  // the root's buffer is free again
  }
  void barrier() override {
    post({ThreadGroup::kBarrier, -1, 0, -1, -1, nullptr, nullptr});
    g_.arrive_and_wait(rank_);
  }
  std::vector<std::vector<double>> allgather(const std::vector<double>& local) override {
    post({ThreadGroup::kAllgather, -1, 0, -1, -1, nullptr, &local});
    std::vector<std::vector<double>> out;
    for (const auto& s : g_.slots()) out.push_back(*s.vec);
    g_.arrive_and_wait(rank_);
    return out;
  }

 private:
  struct Done : dist::Work {
    void wait() override {}
    bool test() override { return true; }
  };
  static void check_tensor(const at::Tensor& t, const char* what) {
    if (!t.defined() || !t.is_contiguous() || !t.device().is_cpu())
      throw DistError(fmt::format("thread communicator: {} needs a defined, contiguous CPU tensor", what));
  }
  // Posts this rank's slot, waits for every rank's, and checks that they describe the same collective.
  void post(const ThreadGroup::Slot& mine) {
    ++seq_;
    g_.slots()[rank_] = mine;
    g_.arrive_and_wait(rank_);
    const auto& s = g_.slots();
    for (int r = 0; r < size(); ++r)
      if (s[r].kind != s[0].kind || s[r].dtype != s[0].dtype || s[r].len != s[0].len || s[r].op != s[0].op ||
          s[r].root != s[0].root)
        throw DistError(
            fmt::format("thread communicator: collective {} differs between rank 0 (kind {}, dtype {}, "
                        "length {}, op {}, root {}) and rank {} (kind {}, dtype {}, length {}, op {}, "
                        "root {})",
                        seq_, s[0].kind, s[0].dtype, s[0].len, s[0].op, s[0].root, r, s[r].kind, s[r].dtype, s[r].len,
                        s[r].op, s[r].root));
  }
  template <class T>
  void reduce(at::Tensor& t, int64_t n, dist::ReduceOp op) {
    T* mine = static_cast<T*>(t.data_ptr());
    post({ThreadGroup::kAllreduce, int(t.scalar_type()), n, int(op), -1, mine, nullptr});
    const auto& s = g_.slots();
    std::vector<T> acc(static_cast<const T*>(s[0].data), static_cast<const T*>(s[0].data) + n);
    for (int r = 1; r < size(); ++r) {  // rank order: bitwise the same result on every rank
      const T* x = static_cast<const T*>(s[r].data);
      for (int64_t k = 0; k < n; ++k) acc[k] = op == dist::ReduceOp::kMax ? std::max(acc[k], x[k]) : acc[k] + x[k];
    }
    if (op == dist::ReduceOp::kMean)
      for (auto& v : acc) v = static_cast<T>(v / static_cast<T>(size()));
    g_.arrive_and_wait(rank_);  // every rank has read every buffer
    std::copy(acc.begin(), acc.end(), mine);
  }

  ThreadGroup& g_;
  int rank_;
  int64_t seq_ = 0;
};

/// Runs fn(comm) on `world` threads (rank r on thread r) and waits for all. Returns each rank's exception, null where
/// the rank returned normally. A rank that throws or returns ends every collective still waiting (DistError there).
inline std::vector<std::exception_ptr> run_ranks(int world, const std::function<void(dist::Communicator&)>& fn) {
  ThreadGroup group(world);
  std::vector<std::exception_ptr> err(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      ThreadCommunicator comm(group, r);
      bool threw = false;
      try {
        fn(comm);
      } catch (...) {
        err[r] = std::current_exception();
        threw = true;
      }
      group.leave(r, threw);
    });
  for (auto& t : threads) t.join();
  return err;
}

/// The message of a rank's exception ("" when it returned normally).
inline std::string error_text(const std::exception_ptr& e) {
  if (!e) return "";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown exception";
  }
}

}  // namespace dfcl::test
