// \brief MpiCommunicator: Open MPI collectives on CPU tensors, under the watchdog, with the optional debug check.
//
// Bitwise-identical all-reduce results on every rank, in a fixed reduction order (communicator.h promises them):
//  - int64 sums (two's complement, wrapping) and max are exact in any order, so they run as MPI_Allreduce;
//  - float32/float64 sums are not associative, and MPI promises no order (Open MPI's blocking and non-blocking
//    reduce-scatters, for one, combine the ranks differently). So kSum and kMean on floats never let MPI add: the
//    tensor is split into one segment per rank; MPI_Alltoallv gives each rank every rank's copy of its segment; the
//    rank adds them in rank order, ((x_0 + x_1) + x_2) + ..., in the tensor's own type; MPI_Allgatherv hands every
//    rank those bytes. The result is identical on every rank, for the blocking and the async call, for any MPI
//    algorithm, and equals a one-process float sum in rank order. The traffic is a ring all-reduce's (each rank sends
//    and receives (W-1)/W of the tensor twice); the extra memory is one tensor-sized receive buffer.
//  - kMean then divides by the world size on every rank: the same operation on the same bits. On int64 it truncates
//    toward zero (C++ integer division).
// The async all-reduce is the same stages, non-blocking (MPI_Ialltoallv; the sum and MPI_Iallgatherv start in
// test()/wait() once it completes), or one MPI_Iallreduce for the exact cases.
#include "dist/mpi_communicator.h"

#include <fmt/format.h>  // for fmt::format
#include <unistd.h>      // for gethostname

#include <algorithm>  // for std::find_if, std::max, std::min
#include <chrono>     // for std::chrono::steady_clock
#include <climits>    // for INT_MAX
#include <cstdio>     // for std::fflush
#include <cstdlib>    // for std::atexit
#include <mutex>      // for std::mutex
#include <thread>     // for std::this_thread::sleep_for

#include "core/error.h"  // for DistError
#include "core/log.h"    // for log::set_rank

namespace dfcl::dist {
namespace {

using Clock = std::chrono::steady_clock;

// ---- MPI start-up and shutdown ----

std::mutex g_mu;
bool g_we_initialised = false;  // MPI_Finalize at exit only if dfcl called MPI_Init
int g_live = 0;                 // communicators alive (finalising under one would pull MPI from under its watchdog)

void finalize_at_exit() {
  std::lock_guard<std::mutex> lock(g_mu);
  int fin = 0;
  MPI_Finalized(&fin);
  if (g_we_initialised && !fin && g_live == 0) MPI_Finalize();
}

void mpi_abort_handler(int exit_code) {
  if (!mpi_active()) return;
  std::fflush(stdout);
  std::fflush(stderr);
  // When every rank fails at once (a config error, a debug-check mismatch), let rank 0's abort go first: Open MPI 4
  // garbles its report of simultaneous aborts ("ORTE_ERROR_LOG: Data unpack would read past end of buffer").
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  MPI_Abort(MPI_COMM_WORLD, exit_code);
}

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

void init_mpi() {
  std::lock_guard<std::mutex> lock(g_mu);
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (fin)
    throw DistError(
        "MPI was already finalised in this process; create every communicator before MPI_Finalize (dfcl "
        "finalises MPI itself at exit, after the last communicator is gone)");
  int provided = 0;
  if (!init) {
    if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
      throw DistError(
          "MPI_Init_thread failed; run under the MPI launcher this dfcl was built with (mpirun -n W, or "
          "srun --mpi=pmix) and see docs/distributed.md");
    g_we_initialised = true;
    std::atexit(finalize_at_exit);
  } else {
    MPI_Query_thread(&provided);
  }
  if (provided < MPI_THREAD_MULTIPLE)
    throw DistError(fmt::format(
        "rank {}: MPI provides thread level {}, but dfcl's watchdog calls MPI from its own thread and needs "
        "MPI_THREAD_MULTIPLE (level {}): {}",
        world_rank(), provided, int(MPI_THREAD_MULTIPLE),
        init ? "MPI was initialised before dfcl; initialise it with MPI_Init_thread(..., MPI_THREAD_MULTIPLE, ...)"
             : "use an MPI library built with thread support (Debian's openmpi-bin has it)"));
}

std::string hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

/// One tiny non-blocking all-reduce of (rank + 1) over MPI_COMM_WORLD, polled against a deadline: the first time
/// ranks talk to each other (TCP connections open lazily), so a blocked network shows up here, never as a hang.
void self_test(double timeout_s, int rank, int size) {
  // On the heap, and leaked on a timeout: a collective cannot be cancelled, so MPI may still write it after we throw.
  auto* value = new int64_t(rank + 1);
  MPI_Request req = MPI_REQUEST_NULL;
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
  MPI_Iallreduce(MPI_IN_PLACE, value, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD, &req);
  for (int spins = 0;; ++spins) {
    int done = 0;
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
    if (done) break;
    if (Clock::now() > deadline)
      throw DistError(fmt::format(
          "rank {} of {} (host {}): the start-up self-test (one 8-byte all-reduce over all ranks) did not finish "
          "within dist.startup_timeout_s = {:g} s: the ranks cannot reach each other, or one of them never started "
          "(check every rank's log). {}",
          rank, size, hostname(), timeout_s, mpi_network_hints()));
    std::this_thread::sleep_for(spins < 100 ? std::chrono::microseconds(50) : std::chrono::microseconds(1000));
  }
  const int64_t got = *value, want = int64_t(size) * (size + 1) / 2;
  delete value;
  if (got != want)
    throw DistError(fmt::format(
        "rank {} of {} (host {}): the start-up self-test all-reduced the ranks' (rank + 1) to {}, not {} = W(W+1)/2: "
        "MPI is not delivering correct data between the ranks. {}",
        rank, size, hostname(), got, want, mpi_network_hints()));
  log::debug("mpi: {} ranks, start-up self-test passed in {:.3f} s", size,
             std::chrono::duration<double>(Clock::now() - t0).count());
}

// ---- tensors ----

MPI_Datatype mpi_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    default:
      return MPI_INT64_T;
  }
}

bool is_float(at::ScalarType t) { return t == at::kFloat || t == at::kDouble; }

/// In place: x / W on every element (the same operation on the same bits on every rank); int64 truncates.
void divide(at::Tensor& t, int world) {
  const int64_t n = t.numel();
  if (t.scalar_type() == at::kFloat) {
    float* p = t.data_ptr<float>();
    const float w = float(world);
    for (int64_t i = 0; i < n; ++i) p[i] = p[i] / w;
  } else if (t.scalar_type() == at::kDouble) {
    double* p = t.data_ptr<double>();
    const double w = double(world);
    for (int64_t i = 0; i < n; ++i) p[i] = p[i] / w;
  } else {
    int64_t* p = t.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = p[i] / world;
  }
}

/// The float all-reduce's exchange for n elements over W ranks: rank r owns [displs[r], displs[r] + counts[r]);
/// this rank receives every rank's copy of its own segment, rank s's at recv_displs[s] = s * mine.
struct Plan {
  std::vector<int> counts, displs, recv_counts, recv_displs;
  int mine = 0;
  Plan(int n, int world, int rank)
      : counts(static_cast<size_t>(world)),
        displs(static_cast<size_t>(world)),
        recv_counts(static_cast<size_t>(world)),
        recv_displs(static_cast<size_t>(world)) {
    for (int r = 0, off = 0; r < world; ++r) {
      counts[size_t(r)] = n / world + (r < n % world ? 1 : 0);
      displs[size_t(r)] = off;
      off += counts[size_t(r)];
    }
    mine = counts[size_t(rank)];
    for (int r = 0; r < world; ++r) recv_counts[size_t(r)] = mine, recv_displs[size_t(r)] = r * mine;
  }
  /// Bytes of the receive buffer (at least one element, so its pointer is never null).
  size_t recv_bytes(int world, size_t element) const { return size_t(std::max(1, mine)) * size_t(world) * element; }
};

/// out[i] = ((recv[0][i] + recv[1][i]) + recv[2][i]) + ... in T: the fixed order every rank and both paths share.
template <class T>
void sum_in_rank_order(const void* recv, int world, int mine, void* out) {
  const T* in = static_cast<const T*>(recv);
  T* o = static_cast<T*>(out);
  for (int i = 0; i < mine; ++i) o[i] = in[i];
  for (int r = 1; r < world; ++r) {
    const T* x = in + size_t(r) * size_t(mine);
    for (int i = 0; i < mine; ++i) o[i] += x[i];
  }
}

void sum_segment(const at::Tensor& t, const Plan& plan, int world, int rank, const void* recv) {
  char* out = static_cast<char*>(t.data_ptr()) + size_t(plan.displs[size_t(rank)]) * t.element_size();
  if (t.scalar_type() == at::kFloat)
    sum_in_rank_order<float>(recv, world, plan.mine, out);
  else
    sum_in_rank_order<double>(recv, world, plan.mine, out);
}

}  // namespace

/// A float all-reduce in stages (exchange; rank-order sum, all-gather), or one MPI_Iallreduce; test()/wait() drive it.
/// The second stage starts in launch order across works (MpiCommunicator::staged_front).
class MpiStagedWork : public Work {
 public:
  MpiStagedWork(MpiCommunicator& comm, const at::Tensor& t, ReduceOp op, const CollectiveDesc& desc)
      : comm_(comm), t_(t), op_(op), desc_(desc), type_(mpi_type(t.scalar_type())) {
    const int n = int(t_.numel());
    two_stage_ = is_float(t_.scalar_type()) && op_ != ReduceOp::kMax && comm_.size() > 1;
    if (two_stage_) {
      plan_ = Plan(n, comm_.size(), comm_.rank());
      recv_.resize(plan_.recv_bytes(comm_.size(), t_.element_size()));
      start(MPI_Ialltoallv(t_.data_ptr(), plan_.counts.data(), plan_.displs.data(), type_, recv_.data(),
                           plan_.recv_counts.data(), plan_.recv_displs.data(), type_, comm_.comm(), &req_),
            "MPI_Ialltoallv");
      comm_.push_staged(this);
    } else {
      start(MPI_Iallreduce(MPI_IN_PLACE, t_.data_ptr(), n, type_, op_ == ReduceOp::kMax ? MPI_MAX : MPI_SUM,
                           comm_.comm(), &req_),
            "MPI_Iallreduce");
    }
  }
  ~MpiStagedWork() override {
    // A collective cannot be cancelled and its buffers must outlive it: finish it (the watchdog bounds the wait).
    if (!done_) try {
        wait();
      } catch (...) {
      }
  }

  bool test() override {
    while (!done_) {
      // A first stage that is done waits for the works launched before it to start their second stages.
      if (in_first_stage() && comm_.staged_front() != this) return false;
      int flag = 0;
      progress(MPI_Test(&req_, &flag, MPI_STATUS_IGNORE), "MPI_Test");
      if (!flag) return false;
      advance();
    }
    rethrow();
    return true;
  }

  void wait() override {
    while (!done_) {
      if (in_first_stage()) {
        while (comm_.staged_front() != this) comm_.staged_front()->finish_first_stage();
      }
      progress(MPI_Wait(&req_, MPI_STATUS_IGNORE), "MPI_Wait");
      advance();
    }
    rethrow();
  }

  /// Waits for the first stage and starts the second (only the front of the launch order calls it).
  void finish_first_stage() {
    if (!in_first_stage()) return;
    progress(MPI_Wait(&req_, MPI_STATUS_IGNORE), "MPI_Wait");
    advance();
  }

 private:
  bool in_first_stage() const { return two_stage_ && stage_ == 0 && !done_; }

  void start(int rc, const char* what) { progress(rc, what); }

  /// The current stage completed: after the exchange, sum this rank's segment and start the all-gather; else finish.
  void advance() {
    if (two_stage_ && stage_ == 0) {
      stage_ = 1;
      comm_.pop_staged(this);
      sum_segment(t_, plan_, comm_.size(), comm_.rank(), recv_.data());
      start(MPI_Iallgatherv(MPI_IN_PLACE, 0, type_, t_.data_ptr(), plan_.counts.data(), plan_.displs.data(), type_,
                            comm_.comm(), &req_),
            "MPI_Iallgatherv");
      return;
    }
    if (op_ == ReduceOp::kMean) divide(t_, comm_.size());
    finish();
  }

  void progress(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    try {
      comm_.check(rc, what, desc_);
    } catch (const DistError& e) {
      error_ = e.what();
      finish();
      throw;
    }
  }

  void finish() {
    if (two_stage_ && stage_ == 0) comm_.pop_staged(this);  // failed in its first stage
    done_ = true;
    comm_.end(desc_.seq);
  }
  void rethrow() const {
    if (!error_.empty()) throw DistError(error_);
  }

  MpiCommunicator& comm_;
  at::Tensor t_;  // keeps the storage alive while MPI writes into it
  ReduceOp op_;
  CollectiveDesc desc_;
  MPI_Datatype type_;
  bool two_stage_ = false;
  int stage_ = 0;
  bool done_ = false;
  std::string error_;
  Plan plan_{0, 1, 0};
  std::vector<char> recv_;
  MPI_Request req_ = MPI_REQUEST_NULL;
};

namespace {

/// Deregisters a blocking collective from the watchdog however it ends.
struct EndGuard {
  MpiCommunicator& comm;
  int64_t seq;
  ~EndGuard() { comm.end(seq); }
};

std::string shape_of(const at::Tensor& t) {
  std::string s;
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return "[" + s + "]";
}

}  // namespace

std::string mpi_network_hints() {
  return "To diagnose: run with --mca btl_base_verbose 100 (or OMPI_MCA_btl_base_verbose=100); check that every host "
         "resolves the others' hostnames and that no firewall blocks the TCP ports MPI opens between hosts; pick the "
         "network interface with --mca btl_tcp_if_include eth0 (or OMPI_MCA_btl_tcp_if_include=10.0.0.0/24); on one "
         "host try --mca btl self,vader,tcp; under Slurm launch with srun --mpi=pmix. If start-up is legitimately "
         "slow (many ranks, slow file system before the communicator is made), raise dist.startup_timeout_s.";
}

bool mpi_active() {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

MpiCommunicator::MpiCommunicator(const CommOptions& opts) : opts_(opts) {
  init_mpi();
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  log::set_rank(rank_, size_);
  if (size_ > 1) set_abort_handler(&mpi_abort_handler);  // before the self-test: its failure must end the job
  self_test(opts_.startup_timeout_s, rank_, size_);
  MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
  MPI_Comm_dup(MPI_COMM_WORLD, &wd_comm_);
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);  // errors become DistErrors that name the rank and collective
  MPI_Comm_set_errhandler(wd_comm_, MPI_ERRORS_RETURN);
  Watchdog::Options wo;
  wo.timeout_s = opts_.timeout_s;
  watchdog_ = std::make_unique<Watchdog>(wd_comm_, wo);
  std::lock_guard<std::mutex> lock(g_mu);
  ++g_live;
}

MpiCommunicator::~MpiCommunicator() {
  watchdog_.reset();
  if (mpi_active()) {
    MPI_Comm_free(&comm_);
    MPI_Comm_free(&wd_comm_);
  }
  std::lock_guard<std::mutex> lock(g_mu);
  --g_live;
}

void MpiCommunicator::check(int rc, const char* what, const CollectiveDesc& desc) const {
  if (rc == MPI_SUCCESS) return;
  char buf[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(rc, buf, &len);
  throw DistError(fmt::format(
      "rank {}: {} failed in collective #{} ({}): {}. Another rank has probably died or the network between the "
      "ranks failed: check the other ranks' logs; this job cannot continue (restart it, with --resume)",
      rank_, what, desc.seq, desc.name(), std::string(buf, size_t(len))));
}

void MpiCommunicator::pop_staged(MpiStagedWork* w) {
  const auto it = std::find(staged_.begin(), staged_.end(), w);
  if (it != staged_.end()) staged_.erase(it);
}

void MpiCommunicator::flush_staged() {
  while (!staged_.empty()) staged_.front()->finish_first_stage();
}

int64_t MpiCommunicator::begin(CollectiveDesc desc) {
  flush_staged();  // every collective starts after the second stages of the works in flight (push_staged)
  desc.seq = ++seq_;
  watchdog_->begin(desc);
  if (opts_.debug) {
    try {
      debug_check(desc);
    } catch (...) {
      watchdog_->end(desc.seq);
      throw;
    }
  }
  return desc.seq;
}

void MpiCommunicator::debug_check(const CollectiveDesc& desc) {
  constexpr int kW = CollectiveDesc::kWords;
  int64_t mine[kW];
  desc.pack(mine);
  std::vector<int64_t> all(size_t(size_) * kW);
  check(MPI_Allgather(mine, kW, MPI_INT64_T, all.data(), kW, MPI_INT64_T, comm_), "MPI_Allgather (debug check)", desc);
  std::vector<std::pair<CollectiveDesc, std::vector<int>>> groups;  // distinct descriptors, in rank order
  for (int r = 0; r < size_; ++r) {
    const CollectiveDesc d = CollectiveDesc::unpack(&all[size_t(r) * kW]);
    auto it = std::find_if(groups.begin(), groups.end(), [&d](const auto& g) { return g.first == d; });
    if (it == groups.end())
      groups.push_back({d, {r}});
    else
      it->second.push_back(r);
  }
  if (groups.size() == 1) return;
  std::string issued;
  for (const auto& [d, ranks] : groups) {
    std::string who = ranks.size() == 1 ? "rank " : "ranks ";
    for (size_t i = 0; i < ranks.size() && i < 16; ++i) who += (i ? ", " : "") + std::to_string(ranks[i]);
    if (ranks.size() > 16) who += fmt::format(" and {} more", ranks.size() - 16);
    issued += fmt::format("{}{} issued {}{}", issued.empty() ? "" : "; ", who, d.name(),
                          d.seq != desc.seq ? fmt::format(" as its collective #{}", d.seq) : "");
  }
  throw DistError(fmt::format(
      "rank {}: debug check (dist.debug): collective #{} differs between ranks: {}. Every rank must issue the same "
      "collectives in the same order with the same dtype and shape; the rank that differs took another code path "
      "(a skipped or extra collective, a different tensor). The collective was not run on any rank.",
      rank_, desc.seq, issued));
}

namespace {

void check_tensor(const at::Tensor& t, const CollectiveDesc& d, int rank, int64_t next_seq, bool any_dtype) {
  auto fail = [&](const std::string& why) {
    return DistError(fmt::format("rank {}: collective #{} ({}): {}", rank, next_seq, d.name(), why));
  };
  if (!t.defined()) throw fail("the tensor is undefined; pass an allocated tensor");
  if (!t.device().is_cpu())
    throw fail(
        fmt::format("the tensor is on {}; the mpi backend moves CPU tensors: move it to the CPU, or use "
                    "dist.backend=nccl (or auto) for CUDA training",
                    t.device().str()));
  if (!t.is_contiguous())
    throw fail(fmt::format("the tensor (shape {}) is not contiguous; reduce t.contiguous() and copy the result back",
                           shape_of(t)));
  if (any_dtype) return;
  const auto st = t.scalar_type();
  if (st != at::kFloat && st != at::kDouble && st != at::kLong)
    throw fail("all-reduce supports float32, float64 and int64; convert the tensor first (t.to(at::kDouble))");
  if (t.numel() > INT_MAX) throw fail("more than 2^31 - 1 elements; all-reduce it in chunks");
}

}  // namespace

void MpiCommunicator::allreduce(at::Tensor& t, ReduceOp op) {
  const CollectiveDesc d0 = CollectiveDesc::allreduce(t, op);
  check_tensor(t, d0, rank_, seq_ + 1, false);
  CollectiveDesc d = d0;
  d.seq = begin(d0);
  EndGuard guard{*this, d.seq};
  const int n = int(t.numel());
  const MPI_Datatype type = mpi_type(t.scalar_type());
  void* data = t.data_ptr();
  if (is_float(t.scalar_type()) && op != ReduceOp::kMax && size_ > 1) {
    const Plan plan(n, size_, rank_);
    scratch_.resize(plan.recv_bytes(size_, t.element_size()));
    check(MPI_Alltoallv(data, plan.counts.data(), plan.displs.data(), type, scratch_.data(), plan.recv_counts.data(),
                        plan.recv_displs.data(), type, comm_),
          "MPI_Alltoallv", d);
    sum_segment(t, plan, size_, rank_, scratch_.data());
    check(MPI_Allgatherv(MPI_IN_PLACE, 0, type, data, plan.counts.data(), plan.displs.data(), type, comm_),
          "MPI_Allgatherv", d);
  } else {
    check(MPI_Allreduce(MPI_IN_PLACE, data, n, type, op == ReduceOp::kMax ? MPI_MAX : MPI_SUM, comm_), "MPI_Allreduce",
          d);
  }
  if (op == ReduceOp::kMean) divide(t, size_);
}

std::unique_ptr<Work> MpiCommunicator::allreduce_async(at::Tensor& t, ReduceOp op) {
  const CollectiveDesc d0 = CollectiveDesc::allreduce(t, op);
  check_tensor(t, d0, rank_, seq_ + 1, false);
  CollectiveDesc d = d0;
  d.seq = begin(d0);
  try {
    return std::make_unique<MpiStagedWork>(*this, t, op, d);
  } catch (...) {
    end(d.seq);  // MpiStagedWork deregisters itself when it fails after construction; here it failed to start
    throw;
  }
}

void MpiCommunicator::broadcast(at::Tensor& t, int root) {
  const CollectiveDesc d0 = CollectiveDesc::broadcast(t, root);
  check_tensor(t, d0, rank_, seq_ + 1, true);
  if (root < 0 || root >= size_)
    throw DistError(fmt::format("rank {}: collective #{} ({}): root {} is not a rank; give 0..{} (world size {})",
                                rank_, seq_ + 1, d0.name(), root, size_ - 1, size_));
  CollectiveDesc d = d0;
  d.seq = begin(d0);
  EndGuard guard{*this, d.seq};
  char* p = static_cast<char*>(t.data_ptr());
  const int64_t nbytes = int64_t(t.nbytes());
  constexpr int64_t kChunk = int64_t(1) << 30;
  for (int64_t off = 0; off < nbytes; off += kChunk)
    check(MPI_Bcast(p + off, int(std::min(kChunk, nbytes - off)), MPI_BYTE, root, comm_), "MPI_Bcast", d);
}

void MpiCommunicator::barrier() {
  CollectiveDesc d = CollectiveDesc::barrier();
  d.seq = begin(d);
  EndGuard guard{*this, d.seq};
  check(MPI_Barrier(comm_), "MPI_Barrier", d);
}

std::vector<std::vector<double>> MpiCommunicator::allgather(const std::vector<double>& local) {
  CollectiveDesc d = CollectiveDesc::allgather();
  if (local.size() > size_t(INT_MAX))
    throw DistError(fmt::format("rank {}: collective #{} ({}): {} values are more than 2^31 - 1; gather fewer", rank_,
                                seq_ + 1, d.name(), local.size()));
  d.seq = begin(d);
  EndGuard guard{*this, d.seq};
  const int n = int(local.size());
  std::vector<int> counts(static_cast<size_t>(size_)), displs(static_cast<size_t>(size_));
  check(MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, comm_), "MPI_Allgather (lengths)", d);
  int64_t total = 0;
  for (int r = 0; r < size_; ++r) {
    if (total > INT_MAX)
      throw DistError(
          fmt::format("rank {}: collective #{} ({}): the ranks' values total more than 2^31 - 1; gather "
                      "fewer",
                      rank_, d.seq, d.name()));
    displs[size_t(r)] = int(total);
    total += counts[size_t(r)];
  }
  std::vector<double> all(size_t(std::max<int64_t>(total, 1)));
  const double dummy = 0;
  check(MPI_Allgatherv(n ? local.data() : &dummy, n, MPI_DOUBLE, all.data(), counts.data(), displs.data(), MPI_DOUBLE,
                       comm_),
        "MPI_Allgatherv", d);
  std::vector<std::vector<double>> out(static_cast<size_t>(size_));
  for (int r = 0; r < size_; ++r)
    out[size_t(r)].assign(all.begin() + displs[size_t(r)], all.begin() + displs[size_t(r)] + counts[size_t(r)]);
  return out;
}

}  // namespace dfcl::dist
