// \brief ChunkPrefetcher (see prefetch.h).
#include "data/prefetch.h"

#include <algorithm>  // for std::max

namespace dfcl::data {

ChunkPrefetcher::ChunkPrefetcher(RowSource& source, std::vector<std::pair<int64_t, int64_t>> ranges,
                                 Prepare prepare, bool background)
    : src_(source), ranges_(std::move(ranges)), prepare_(std::move(prepare)), background_(background) {
  if (background_ && !ranges_.empty()) worker_ = std::thread([this] { run(); });
}

ChunkPrefetcher::~ChunkPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void ChunkPrefetcher::load(size_t k, Table& t) {
  src_.read(ranges_[k].first, ranges_[k].second - ranges_[k].first, t);
  if (prepare_) prepare_(t);
}

void ChunkPrefetcher::run() {
  try {
    for (size_t k = 0; k < ranges_.size(); ++k) {
      load(k, spare_);  // outside the lock: this is the work that overlaps with the consumer
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !full_ || stop_; });
      if (stop_) return;
      std::swap(slot_, spare_);  // spare_ gets the table the consumer handed back: its storage is reused
      peak_bytes_ = std::max(peak_bytes_.load(), slot_.bytes() + spare_.bytes());
      full_ = true;
      cv_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::current_exception();
  }
  std::lock_guard<std::mutex> lock(mu_);
  done_ = true;
  cv_.notify_all();
}

bool ChunkPrefetcher::next(Table& out) {
  if (!background_) {
    if (next_ >= ranges_.size()) return false;
    load(next_++, out);
    return true;
  }
  if (ranges_.empty()) return false;
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return full_ || done_; });
  if (full_) {
    std::swap(out, slot_);
    full_ = false;
    cv_.notify_all();
    return true;
  }
  if (error_) std::rethrow_exception(error_);
  return false;
}

}  // namespace dfcl::data
