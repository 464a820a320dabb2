// \brief Progress: redraws in place on a terminal, prints every 10% to a log file or pipe.
#include "core/progress.h"

#include <fmt/format.h>  // for fmt::format
#include <unistd.h>      // for isatty

#include <cstdio>     // for std::fputs
#include <exception>  // for std::uncaught_exceptions

#include "core/log.h"  // for log::rank, log::level

namespace dfcl {
namespace {
bool g_enabled = true;

std::string human(double v) {
  if (v >= 1e9) return fmt::format("{:.2f}G", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (v >= 1e3) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.0f}", v);
}
std::string clock(double s) {
  if (!(s >= 0) || s > 359999) return "--:--";
  int t = static_cast<int>(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60) : fmt::format("{:02}:{:02}", t / 60, t % 60);
}
}  // namespace

void Progress::set_enabled(bool on) { g_enabled = on; }
bool Progress::enabled() { return g_enabled && log::rank() == 0 && log::level() >= log::Level::kInfo; }

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total),
      start_(std::chrono::steady_clock::now()), last_draw_(start_), tty_(isatty(2) != 0) {}

Progress::~Progress() {
  // Unwinding from an error: the error message is the last word, not a "done" line.
  if (!finished_ && std::uncaught_exceptions() == 0) finish();
}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(int64_t n) {
  done_ += n;
  if (!enabled()) return;
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    draw(false);
  } else {
    // Logs and pipes: one line per new tenth, at most every 2 s, so short jobs print only the final line.
    int decile = total_ > 0 ? static_cast<int>(10 * done_ / total_) : 0;
    if (decile == last_decile_ || decile >= 10 || now - last_draw_ < std::chrono::seconds(2)) return;
    last_decile_ = decile;
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled()) draw(true);
}

void Progress::draw(bool final_line) {
  double el = elapsed_s();
  double rate = el > 0 ? done_ / el : 0;
  std::string line;
  if (final_line) {
    line = fmt::format("{}: {} {} in {:.2f}s ({} {}/s)", label_, human(double(done_)), unit_, el, human(rate), unit_);
  } else {
    double frac = total_ > 0 ? std::min(1.0, double(done_) / double(total_)) : 0.0;
    int width = 30, fill = static_cast<int>(frac * width);
    double eta = rate > 0 ? (total_ - done_) / rate : -1;
    line = fmt::format("{} [{}{}] {:3.0f}% {}/{} {} | {} {}/s | ETA {}", label_, std::string(fill, '#'),
                       std::string(width - fill, '.'), 100 * frac, human(double(done_)), human(double(total_)), unit_,
                       human(rate), unit_, clock(eta));
  }
  if (!status_.empty()) line += " | " + status_;
  if (tty_) line = "\r\033[K" + line + (final_line ? "\n" : "");
  else line += "\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace dfcl
