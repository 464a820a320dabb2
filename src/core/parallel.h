// \brief parallel_for over an index range on a few std::threads (chunk-granular work only).
#pragma once
#include <algorithm>  // for std::min
#include <atomic>     // for std::atomic
#include <cstdint>    // for int64_t
#include <exception>  // for std::exception_ptr
#include <mutex>      // for std::mutex
#include <thread>     // for std::thread
#include <vector>     // for std::vector

namespace dfcl {

/// Runs fn(i) for i in [0, n) on up to `threads` threads, dynamically scheduled.
/// The first exception thrown by any fn is rethrown on the caller after all threads stop.
template <class Fn>
void parallel_for(int64_t n, int threads, Fn&& fn) {
  if (n <= 0) return;
  int t = static_cast<int>(std::min<int64_t>(std::max(threads, 1), n));
  if (t == 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex mu;
  auto work = [&] {
    for (int64_t i; !failed && (i = next.fetch_add(1)) < n;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int k = 1; k < t; ++k) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace dfcl
