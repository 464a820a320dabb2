// \brief Progress bar for long work: rows/s and ETA on stderr, rank 0 only, silent when quiet.
#pragma once
#include <chrono>   // for steady_clock
#include <cstdint>  // for int64_t
#include <string>   // for std::string

namespace dfcl {

class Progress {
 public:
  /// `total` units of work (rows); `unit` names them in the rate ("rows/s").
  Progress(std::string label, int64_t total, std::string unit = "rows");
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(int64_t n);
  /// Extra text shown after the rate, e.g. "loss 0.1234" (kept until changed).
  void set_status(std::string status) { status_ = std::move(status); }
  /// Prints the final line (total, elapsed, mean rate). Called by the destructor if needed.
  void finish();
  double elapsed_s() const;
  int64_t done() const { return done_; }

  /// Global switch: quiet mode (CLI --quiet) and non-zero ranks never draw.
  static void set_enabled(bool on);
  static bool enabled();

 private:
  void draw(bool final_line);
  std::string label_, unit_, status_;
  int64_t total_, done_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool tty_, finished_ = false;
  int last_decile_ = -1;
};

}  // namespace dfcl
