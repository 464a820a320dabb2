// \brief NcclCommunicator: NCCL all-reduce/broadcast of CUDA tensors; CPU tensors and the control plane over MPI.
//
// Built with DFCL_CUDA, MPI and libnccl (DFCL_HAVE_NCCL). Uses the CUDA runtime API only (no -lcuda: a binary linked
// to the driver stub would not start on a host without a driver) and no LibTorch CUDA header: tensors give their
// device and data pointer through the CPU-side at::Tensor API.
//
// Streams. The collectives run on one stream made with cudaStreamCreate, a *blocking* stream: CUDA orders it with the
// legacy default stream (stream 0), on which LibTorch launches its kernels unless the caller made another stream
// current. So the all-reduce starts after the kernels that produced its input, and kernels launched on stream 0 after
// it see its result, with no event passed between LibTorch and this file. The price of that implicit ordering: a
// kernel launched on stream 0 while an async all-reduce is in flight waits for it (no compute/communication overlap
// on the GPU). A caller that runs LibTorch on another current stream (c10 streams are non-blocking) must synchronise it
// before a collective.
//
// Everything the MPI communicator provides is shared: the sequence numbers, the debug check (over MPI) and the
// watchdog (each NCCL collective registers with it; its thread also polls ncclCommGetAsyncError and calls
// ncclCommAbort before MPI_Abort). Waiting never blocks inside CUDA: wait() polls the collective's event and NCCL's
// asynchronous error, so a failed peer surfaces as a DistError or, when nothing fails but nothing moves, as the
// watchdog's report. The communicator is non-blocking (config.blocking = 0): its initialisation is polled against
// dist.startup_timeout_s and aborted (ncclCommAbort) on timeout, never a silent hang.
//
// Bitwise-identical results: NCCL reduces each element once and distributes it (ring: reduce-scatter + all-gather;
// tree: reduce + broadcast), so every rank receives the same bits. kMean is ncclAvg (int64: truncating division).
#include <cuda_runtime.h>  // for cudaSetDevice, cudaStreamCreate, cudaEventQuery
#include <fmt/format.h>    // for fmt::format
#include <nccl.h>          // for ncclCommInitRankConfig, ncclAllReduce, ncclCommGetAsyncError

#include <atomic>   // for std::atomic
#include <chrono>   // for std::chrono::steady_clock
#include <cstdlib>  // for std::getenv, std::atoi
#include <cstring>  // for std::memcpy
#include <thread>   // for std::this_thread::sleep_for

#include "core/error.h"             // for DistError
#include "core/log.h"               // for log::info
#include "dist/mpi_communicator.h"  // for MpiCommunicator

namespace dfcl::dist {
namespace {

using Clock = std::chrono::steady_clock;

Clock::time_point after(double seconds) {
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

void pause(int spins) {
  if (spins < 200)
    std::this_thread::yield();
  else
    std::this_thread::sleep_for(std::chrono::microseconds(spins < 2000 ? 20 : 200));
}

std::string nccl_hints() {
  return "To diagnose: rerun with NCCL_DEBUG=INFO (and NCCL_DEBUG_SUBSYS=INIT,NET) and read every rank's log; pick "
         "the network interface with NCCL_SOCKET_IFNAME=eth0 (or exclude some: NCCL_SOCKET_IFNAME=^lo,docker); set "
         "NCCL_IB_DISABLE=1 when InfiniBand is absent or misconfigured; check that no firewall blocks the TCP ports "
         "between the hosts and that every host resolves the others' hostnames. If start-up is legitimately slow, "
         "raise dist.startup_timeout_s.";
}

ncclDataType_t nccl_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return ncclFloat32;
    case at::kDouble:
      return ncclFloat64;
    default:
      return ncclInt64;
  }
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kMean:
      return ncclAvg;
    case ReduceOp::kMax:
      return ncclMax;
  }
  return ncclSum;
}

int env_int(std::initializer_list<const char*> names, int fallback) {
  for (const char* n : names)
    if (const char* v = std::getenv(n); v && *v) return std::atoi(v);
  return fallback;
}

class NcclCommunicator;

/// One NCCL collective in flight: done when its event has completed on the communicator's stream.
class NcclWork : public Work {
 public:
  NcclWork(NcclCommunicator& comm, const at::Tensor& t, const CollectiveDesc& desc, cudaEvent_t ev)
      : comm_(comm), t_(t), desc_(desc), ev_(ev) {}
  ~NcclWork() override;
  bool test() override;
  void wait() override {
    for (int spins = 0; !test(); ++spins) pause(spins);
  }

 private:
  void finish();
  NcclCommunicator& comm_;
  at::Tensor t_;  // keeps the device memory alive while NCCL uses it
  CollectiveDesc desc_;
  cudaEvent_t ev_;
  bool done_ = false;
  std::string error_;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(const CommOptions& opts, const std::string& device);
  ~NcclCommunicator() override;

  int rank() const override { return mpi_->rank(); }
  int size() const override { return mpi_->size(); }
  std::string name() const override { return "nccl"; }
  int64_t sequence() const override { return mpi_->sequence(); }

  void allreduce(at::Tensor& t, ReduceOp op) override {
    if (!t.defined() || !t.device().is_cuda()) return mpi_->allreduce(t, op);
    allreduce_async(t, op)->wait();
  }
  std::unique_ptr<Work> allreduce_async(at::Tensor& t, ReduceOp op) override {
    if (!t.defined() || !t.device().is_cuda()) return mpi_->allreduce_async(t, op);
    const CollectiveDesc d0 = CollectiveDesc::allreduce(t, op);
    const auto st = t.scalar_type();
    if (st != at::kFloat && st != at::kDouble && st != at::kLong)
      throw fail(d0, "all-reduce supports float32, float64 and int64; convert the tensor first (t.to(at::kFloat))");
    check_cuda_tensor(t, d0);
    return issue(d0, t, [&](const CollectiveDesc&) {
      return ncclAllReduce(t.data_ptr(), t.data_ptr(), size_t(t.numel()), nccl_type(st), nccl_op(op), comm_, stream_);
    });
  }
  void broadcast(at::Tensor& t, int root) override {
    if (!t.defined() || !t.device().is_cuda()) return mpi_->broadcast(t, root);
    const CollectiveDesc d0 = CollectiveDesc::broadcast(t, root);
    check_cuda_tensor(t, d0);
    if (root < 0 || root >= size())
      throw fail(d0, fmt::format("root {} is not a rank; give 0..{} (world size {})", root, size() - 1, size()));
    issue(d0, t, [&](const CollectiveDesc&) {
      return ncclBroadcast(t.data_ptr(), t.data_ptr(), t.nbytes(), ncclUint8, root, comm_, stream_);
    })->wait();
  }
  void barrier() override { mpi_->barrier(); }
  std::vector<std::vector<double>> allgather(const std::vector<double>& local) override {
    return mpi_->allgather(local);
  }

  /// Throws DistError when NCCL reported an asynchronous error (after aborting the communicator).
  void check_async(const CollectiveDesc& d) {
    ncclResult_t r = ncclSuccess;
    ncclCommGetAsyncError(comm_, &r);
    if (r != ncclSuccess && r != ncclInProgress) {
      abort_comm();
      throw fail(d, fmt::format("NCCL failed: {} ({}). A peer has probably died or the network failed: check the "
                                "other ranks' logs. {}",
                                ncclGetErrorString(r), ncclGetLastError(nullptr), nccl_hints()));
    }
  }
  DistError fail(const CollectiveDesc& d, const std::string& why) const {
    return DistError(fmt::format("rank {} (cuda:{}): collective #{} ({}): {}", rank(), device_,
                                 d.seq ? d.seq : sequence() + 1, d.name(), why));
  }
  void end(int64_t seq) { mpi_->end(seq); }

 private:
  template <class Enqueue>
  std::unique_ptr<Work> issue(const CollectiveDesc& d0, const at::Tensor& t, Enqueue enqueue) {
    CollectiveDesc d = d0;
    d.seq = mpi_->begin(d0);
    cudaEvent_t ev = nullptr;
    try {
      cuda_check(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "cudaEventCreateWithFlags", d);
      nccl_check(enqueue(d), "enqueueing the collective", d);
      cuda_check(cudaEventRecord(ev, stream_), "cudaEventRecord", d);
    } catch (...) {
      if (ev) cudaEventDestroy(ev);
      mpi_->end(d.seq);
      throw;
    }
    return std::make_unique<NcclWork>(*this, t, d, ev);
  }

  void check_cuda_tensor(const at::Tensor& t, const CollectiveDesc& d) const {
    if (t.device().index() >= 0 && t.device().index() != device_)
      throw fail(d, fmt::format("the tensor is on {}, but this rank's NCCL communicator uses cuda:{}; keep every "
                                "tensor of this rank on its device",
                                t.device().str(), device_));
    if (!t.is_contiguous())
      throw fail(d, "the tensor is not contiguous; reduce t.contiguous() and copy the result back");
  }

  void cuda_check(cudaError_t e, const char* what, const CollectiveDesc& d) const {
    if (e != cudaSuccess)
      throw fail(d, fmt::format("{} failed: {} ({})", what, cudaGetErrorString(e), cudaGetErrorName(e)));
  }

  /// Completes a non-blocking NCCL call (ncclInProgress: poll the communicator's state) or throws.
  void nccl_check(ncclResult_t r, const char* what, const CollectiveDesc& d) {
    const auto deadline = after(mpi_->options().timeout_s);
    for (int spins = 0; r == ncclInProgress; ++spins) {
      if (Clock::now() > deadline) {
        abort_comm();
        throw fail(d, fmt::format("{} stayed in progress for dist.timeout_s = {:g} s; the NCCL communicator was "
                                  "aborted. {}",
                                  what, mpi_->options().timeout_s, nccl_hints()));
      }
      pause(spins);
      ncclCommGetAsyncError(comm_, &r);
    }
    if (r != ncclSuccess) {
      abort_comm();
      throw fail(d, fmt::format("{} failed: {} ({}). {}", what, ncclGetErrorString(r), ncclGetLastError(nullptr),
                                nccl_hints()));
    }
  }

  void abort_comm() {
    if (comm_ && !aborted_.exchange(true)) ncclCommAbort(comm_);
  }

  void init(const std::string& device);
  void self_test();

  std::unique_ptr<MpiCommunicator> mpi_;  // first member: destroyed last
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  int device_ = 0;
  std::atomic<bool> aborted_{false};  // the watchdog thread may abort too
};

NcclWork::~NcclWork() {
  if (!done_) try {
      wait();
    } catch (...) {
    }
  cudaEventDestroy(ev_);
}

bool NcclWork::test() {
  if (!done_) {
    const cudaError_t e = cudaEventQuery(ev_);
    if (e == cudaSuccess) {
      finish();
    } else {
      try {
        if (e != cudaErrorNotReady)
          throw comm_.fail(
              desc_, fmt::format("waiting for the collective: {} ({})", cudaGetErrorString(e), cudaGetErrorName(e)));
        comm_.check_async(desc_);
        return false;
      } catch (const DistError& err) {
        error_ = err.what();
        finish();
      }
    }
  }
  if (!error_.empty()) throw DistError(error_);
  return true;
}

void NcclWork::finish() {
  done_ = true;
  comm_.end(desc_.seq);
}

NcclCommunicator::NcclCommunicator(const CommOptions& opts, const std::string& device)
    : mpi_(std::make_unique<MpiCommunicator>(opts)) {
  init(device);
  self_test();
  mpi_->watchdog().set_hooks(
      [this]() -> std::string {
        ncclResult_t r = ncclSuccess;
        ncclCommGetAsyncError(comm_, &r);
        if (r == ncclSuccess || r == ncclInProgress) return "";
        return fmt::format(
            "NCCL reported an asynchronous error on cuda:{}: {} ({}). A peer has probably died or the "
            "network failed: check the other ranks' logs. {}",
            device_, ncclGetErrorString(r), ncclGetLastError(nullptr), nccl_hints());
      },
      [this] { abort_comm(); });
}

void NcclCommunicator::init(const std::string& device) {
  const int rank = mpi_->rank(), world = mpi_->size();
  auto startup_fail = [&](const std::string& why) {
    return DistError(fmt::format("rank {}: NCCL start-up: {}", rank, why));
  };
  // Local rank: the launcher's variable, else the rank among the processes sharing this host.
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(mpi_->comm(), MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  int node_rank = 0, node_size = 1;
  MPI_Comm_rank(node, &node_rank);
  MPI_Comm_size(node, &node_size);
  MPI_Comm_free(&node);
  const int local_rank = env_int({"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"}, node_rank);

  int count = 0;
  if (const cudaError_t e = cudaGetDeviceCount(&count); e != cudaSuccess || count == 0)
    throw startup_fail(
        fmt::format("no usable GPU ({}): dist.backend=nccl needs one GPU per rank; on a host without "
                    "GPUs use train.device=cpu (dist.backend=mpi)",
                    e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount found none"));
  const auto colon = device.find(':');
  if (colon != std::string::npos) {
    device_ = std::atoi(device.c_str() + colon + 1);  // explicit: the user placed this rank
  } else {
    if (node_size > count)
      throw startup_fail(
          fmt::format("{} ranks run on this host but it has {} GPU(s); NCCL needs one GPU per rank: "
                      "launch at most {} ranks per host",
                      node_size, count, count));
    device_ = local_rank % count;
  }
  if (device_ < 0 || device_ >= count)
    throw startup_fail(
        fmt::format("{} is not a GPU of this host (it has {}); use cuda (one GPU per local rank) or "
                    "cuda:0..{}",
                    device, count, count - 1));
  if (const cudaError_t e = cudaSetDevice(device_); e != cudaSuccess)
    throw startup_fail(fmt::format("cudaSetDevice({}) failed: {}", device_, cudaGetErrorString(e)));
  if (const cudaError_t e = cudaStreamCreate(&stream_); e != cudaSuccess)
    throw startup_fail(fmt::format("cudaStreamCreate failed: {}", cudaGetErrorString(e)));

  // Unique id from rank 0, with a flag: if rank 0 cannot make one, every rank learns it (no one waits for an id).
  struct {
    int ok;
    ncclUniqueId id;
  } msg{};
  if (rank == 0) msg.ok = ncclGetUniqueId(&msg.id) == ncclSuccess;
  MPI_Bcast(&msg, int(sizeof msg), MPI_BYTE, 0, mpi_->comm());
  if (!msg.ok)
    throw startup_fail(fmt::format("rank 0 could not create the NCCL unique id (ncclGetUniqueId: {}). {}",
                                   ncclGetLastError(nullptr), nccl_hints()));

  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // returns at once; the state is polled below against the deadline
  ncclResult_t r = ncclCommInitRankConfig(&comm_, world, msg.id, rank, &config);
  const double timeout = mpi_->options().startup_timeout_s;
  const auto deadline = after(timeout);
  for (int spins = 0; r == ncclInProgress && Clock::now() < deadline; ++spins) {
    pause(spins);
    ncclCommGetAsyncError(comm_, &r);
  }
  std::string why;
  if (r == ncclInProgress)
    why =
        fmt::format("ncclCommInitRankConfig did not finish within dist.startup_timeout_s = {:g} s (aborted)", timeout);
  else if (r != ncclSuccess)
    why = fmt::format("ncclCommInitRankConfig failed: {} ({})", ncclGetErrorString(r), ncclGetLastError(nullptr));
  if (!why.empty()) abort_comm();
  // Agree over MPI (which works: its self-test passed), so every rank fails together instead of waiting for the rest.
  int ok = why.empty(), all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, mpi_->comm());
  if (!all_ok)
    throw startup_fail(
        fmt::format("{} on {} ranks' NCCL communicator (cuda:{}). {}",
                    why.empty() ? "this rank's side succeeded, but initialisation failed on another rank" : why, world,
                    device_, nccl_hints()));
}

void NcclCommunicator::self_test() {
  const int rank = mpi_->rank(), world = mpi_->size();
  const double timeout = mpi_->options().startup_timeout_s;
  std::string why;
  int64_t* buf = nullptr;
  const int64_t mine = rank + 1, want = int64_t(world) * (world + 1) / 2;
  int64_t got = 0;
  cudaEvent_t ev = nullptr;
  if (cudaMalloc(reinterpret_cast<void**>(&buf), sizeof(int64_t)) != cudaSuccess ||
      cudaMemcpy(buf, &mine, sizeof mine, cudaMemcpyHostToDevice) != cudaSuccess ||
      cudaEventCreateWithFlags(&ev, cudaEventDisableTiming) != cudaSuccess) {
    why = fmt::format("CUDA failed to set up the test buffer: {}", cudaGetErrorString(cudaGetLastError()));
  } else {
    ncclResult_t r = ncclAllReduce(buf, buf, 1, ncclInt64, ncclSum, comm_, stream_);
    const auto deadline = after(timeout);
    for (int spins = 0; r == ncclInProgress && Clock::now() < deadline; ++spins) {
      pause(spins);
      ncclCommGetAsyncError(comm_, &r);
    }
    if (r == ncclSuccess) cudaEventRecord(ev, stream_);
    cudaError_t e = cudaErrorNotReady;
    for (int spins = 0; r == ncclSuccess && (e = cudaEventQuery(ev)) == cudaErrorNotReady; ++spins) {
      if (Clock::now() > deadline) break;
      ncclCommGetAsyncError(comm_, &r);
      pause(spins);
    }
    if (r != ncclSuccess && r != ncclInProgress)
      why = fmt::format("NCCL failed: {} ({})", ncclGetErrorString(r), ncclGetLastError(nullptr));
    else if (r == ncclInProgress || e == cudaErrorNotReady)
      why = fmt::format("it did not finish within dist.startup_timeout_s = {:g} s", timeout);
    else if (e != cudaSuccess)
      why = fmt::format("CUDA failed: {}", cudaGetErrorString(e));
    else if (cudaMemcpy(&got, buf, sizeof got, cudaMemcpyDeviceToHost) != cudaSuccess)
      why = "copying the result back failed";
    else if (got != want)
      why = fmt::format("it gave {}, not {} = W(W+1)/2: NCCL is not delivering correct data between the ranks", got,
                        want);
  }
  if (!why.empty()) abort_comm();  // nothing may still be running on the buffer when it is freed
  if (ev) cudaEventDestroy(ev);
  if (buf && why.empty()) cudaFree(buf);  // on failure it is leaked: an aborted kernel may still hold it
  int ok = why.empty(), all_ok = 0;
  MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, mpi_->comm());
  if (!all_ok)
    throw DistError(fmt::format(
        "rank {} (cuda:{}): the NCCL start-up self-test (one all-reduce of (rank + 1) over {} ranks) failed: {}. {}",
        rank, device_, world, why.empty() ? "this rank's side succeeded, but another rank's failed" : why,
        nccl_hints()));
  log::debug("nccl: {} ranks, start-up self-test passed on cuda:{}", world, device_);
}

NcclCommunicator::~NcclCommunicator() {
  mpi_->watchdog().set_hooks({}, {});  // returns once a hook in progress has finished: nothing uses comm_ after it
  if (comm_ && !aborted_) {
    ncclResult_t r = ncclSuccess;
    ncclCommGetAsyncError(comm_, &r);
    if (r == ncclSuccess) r = ncclCommFinalize(comm_);  // flushes what was issued; non-blocking: poll it
    const auto deadline = after(10);
    for (int spins = 0; r == ncclInProgress && Clock::now() < deadline; ++spins) {
      pause(spins);
      ncclCommGetAsyncError(comm_, &r);
    }
    if (r == ncclSuccess)
      ncclCommDestroy(comm_);
    else
      abort_comm();
  }
  if (stream_) cudaStreamDestroy(stream_);
}

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(const CommOptions& opts, const std::string& device) {
  return std::make_unique<NcclCommunicator>(opts, device);
}

}  // namespace dfcl::dist
