// \brief The watchdog thread: arrival reports to rank 0, stuck-collective detection, MPI_Abort with a diagnosis.
#include "dist/watchdog.h"

#include <fmt/format.h>  // for fmt::format

#include <unistd.h>   // for getpid
#include <algorithm>  // for std::max, std::find_if
#include <cstdio>     // for std::fputs, std::fflush
#include <cstdlib>    // for std::_Exit

namespace dfcl::dist {
namespace {

constexpr int kArrivalTag = 7301;
using Clock = std::chrono::steady_clock;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

Watchdog::Watchdog(MPI_Comm comm, Options opts) : comm_(comm), opts_(opts) {
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  // A token that tags this watchdog's reports: a report still in flight from an earlier watchdog whose freed
  // communicator's id was reused must not count as an arrival here.
  static int64_t created = 0;
  token_ = (int64_t(getpid()) << 20) ^ ++created;
  MPI_Bcast(&token_, 1, MPI_INT64_T, 0, comm_);
  pending_.reserve(64);
  if (size_ > 1 && rank_ == 0) {
    recv_buf_.assign(size_t(2 * size_), 0);
    recv_req_.assign(size_t(size_ - 1), MPI_REQUEST_NULL);
    for (int r = 1; r < size_; ++r)
      MPI_Irecv(&recv_buf_[size_t(2 * r)], 2, MPI_INT64_T, r, kArrivalTag, comm_, &recv_req_[size_t(r - 1)]);
  }
  last_arrival_.assign(size_t(size_), 0);
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // The last report is 16 bytes (eager: it completes locally); never block here if it somehow does not.
  if (send_req_ != MPI_REQUEST_NULL) {
    int done = 0;
    for (int i = 0; i < 1000 && !done; ++i) {
      MPI_Test(&send_req_, &done, MPI_STATUS_IGNORE);
      if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!done) MPI_Request_free(&send_req_);
  }
  for (MPI_Request& r : recv_req_) {
    if (r == MPI_REQUEST_NULL) continue;
    MPI_Cancel(&r);
    MPI_Wait(&r, MPI_STATUS_IGNORE);
  }
}

void Watchdog::begin(const CollectiveDesc& desc) {
  const auto now = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back({desc, now});
  }
  arrived_.store(desc.seq, std::memory_order_relaxed);
}

void Watchdog::end(int64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find_if(pending_.begin(), pending_.end(), [seq](const Pending& p) { return p.desc.seq == seq; });
  if (it != pending_.end()) pending_.erase(it);
}

void Watchdog::set_hooks(std::function<std::string()> poll, std::function<void()> before_abort) {
  std::lock_guard<std::mutex> lock(hook_mu_);
  poll_ = std::move(poll);
  before_abort_ = std::move(before_abort);
}

void Watchdog::run() {
  std::unique_lock<std::mutex> lock(mu_);
  const auto tick = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(opts_.tick_s));
  while (!stop_) {
    cv_.wait_for(lock, tick, [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    exchange_arrivals();
    std::string failure;
    {
      std::lock_guard<std::mutex> hooks(hook_mu_);
      if (poll_) failure = poll_();
    }
    if (!failure.empty()) abort_job(failure);
    check(Clock::now());
    lock.lock();
  }
}

void Watchdog::exchange_arrivals() {
  const int64_t arrived = arrived_.load(std::memory_order_relaxed);
  if (size_ == 1) return;
  if (rank_ != 0) {
    if (arrived == reported_) return;
    if (send_req_ != MPI_REQUEST_NULL) {
      int done = 0;
      MPI_Test(&send_req_, &done, MPI_STATUS_IGNORE);
      if (!done) return;  // the previous report is still going out; send the newest one next tick
    }
    send_buf_[0] = token_, send_buf_[1] = arrived;
    MPI_Isend(send_buf_, 2, MPI_INT64_T, 0, kArrivalTag, comm_, &send_req_);
    reported_ = arrived;
    return;
  }
  last_arrival_[0] = arrived;
  // Drain: each receive takes one report; repost and test again until nothing more has come in.
  std::vector<int> idx(recv_req_.size());
  for (;;) {
    int n = 0;
    MPI_Testsome(int(recv_req_.size()), recv_req_.data(), &n, idx.data(), MPI_STATUSES_IGNORE);
    if (n == MPI_UNDEFINED || n == 0) break;
    for (int k = 0; k < n; ++k) {
      const int r = idx[size_t(k)] + 1;
      const int64_t* msg = &recv_buf_[size_t(2 * r)];
      if (msg[0] == token_) last_arrival_[size_t(r)] = std::max(last_arrival_[size_t(r)], msg[1]);
      MPI_Irecv(&recv_buf_[size_t(2 * r)], 2, MPI_INT64_T, r, kArrivalTag, comm_, &recv_req_[size_t(r - 1)]);
    }
  }
}

std::string Watchdog::missing_ranks_report(const CollectiveDesc& stuck) const {
  std::vector<int> missing, ahead;
  for (int r = 0; r < size_; ++r) {
    if (last_arrival_[size_t(r)] < stuck.seq) missing.push_back(r);
    if (last_arrival_[size_t(r)] > stuck.seq) ahead.push_back(r);
  }
  auto list = [this](const std::vector<int>& ranks) {
    std::string s;
    for (size_t i = 0; i < ranks.size() && i < 16; ++i) {
      const int64_t last = last_arrival_[size_t(ranks[i])];
      s += fmt::format("{}{} (last arrived at #{})", i ? ", " : "", ranks[i], last);
    }
    if (ranks.size() > 16) s += fmt::format(" and {} more", ranks.size() - 16);
    return s;
  };
  if (missing.size() == 1)
    return fmt::format(
        "rank {} never arrived at it (its last collective was #{}). Check rank {}'s log for an error or a hang (a "
        "code path that skipped a collective, a stalled file system, a long computation outside collectives)",
        missing[0], last_arrival_[size_t(missing[0])], missing[0]);
  if (!missing.empty())
    return fmt::format(
        "ranks {} never arrived at it. Check those ranks' logs for an error or a hang (a code path that skipped a "
        "collective, a stalled file system, a long computation outside collectives)",
        list(missing));
  if (!ahead.empty())
    return fmt::format(
        "every rank arrived at it, but {} already issued later collectives: {}. The ranks do not issue the same "
        "collectives in the same order (a rank skipped or added one); rerun with dist.debug=true to find the first "
        "collective that differs",
        ahead.size() == 1 ? fmt::format("rank {}", ahead[0]) : "ranks", list(ahead));
  return "every rank arrived at it, yet it made no progress: the interconnect is stalled or lost a peer (check the "
         "network between the hosts, and the MPI/NCCL transport settings in docs/distributed.md)";
}

void Watchdog::check(Clock::time_point now) {
  Pending oldest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.empty()) return;
    oldest = *std::min_element(pending_.begin(), pending_.end(),
                               [](const Pending& a, const Pending& b) { return a.start < b.start; });
  }
  const double age = seconds(now - oldest.start);
  const CollectiveDesc& d = oldest.desc;
  if (rank_ == 0 && age > opts_.timeout_s) {
    const std::string msg = fmt::format(
        "watchdog: collective #{} ({}) made no progress for {:.1f} s (dist.timeout_s = {:g}); {}. If a step "
        "legitimately takes longer than that, raise dist.timeout_s. Ending the job.",
        d.seq, d.name(), age, opts_.timeout_s, missing_ranks_report(d));
    abort_job(msg);
  }
  if (rank_ != 0 && age > opts_.timeout_s + opts_.grace_s)
    abort_job(fmt::format(
        "watchdog: collective #{} ({}) made no progress for {:.1f} s (dist.timeout_s = {:g}, plus {:g} s for rank 0 "
        "to report first). Rank 0's watchdog, which names the ranks that never arrived, did not end the job, so rank "
        "0 itself may be the rank that never arrived at it: check rank 0's log for an error or a hang. If a step "
        "legitimately takes longer than that, raise dist.timeout_s. Ending the job.",
        d.seq, d.name(), age, opts_.timeout_s, opts_.grace_s));
}

void Watchdog::abort_job(const std::string& msg, int code) {
  const std::string line = fmt::format("[rank {}] distributed error: {}\n", rank_, msg);
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
  std::fflush(stdout);
  {
    std::lock_guard<std::mutex> hooks(hook_mu_);
    if (before_abort_) before_abort_();
  }
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; if an MPI does, end this rank anyway
}

}  // namespace dfcl::dist
