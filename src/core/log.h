// \brief Rank-aware logging: info/warn print on rank 0 only, errors print on every rank with its number.
#pragma once
#include <fmt/format.h>  // for fmt::format

#include <string>  // for std::string

namespace dfcl::log {

enum class Level { kQuiet = 0, kError = 1, kWarn = 2, kInfo = 3, kDebug = 4 };

/// Rank of this process and world size; defaults come from the launcher's environment
/// (OMPI_COMM_WORLD_RANK, PMI_RANK, SLURM_PROCID, RANK). dist sets them for real.
void set_rank(int rank, int world);
int rank();
int world();
void set_level(Level level);
Level level();

void write(Level level, const std::string& msg);

template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::kInfo && rank() == 0) write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::kDebug && rank() == 0) write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::kWarn && rank() == 0) write(Level::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
/// Errors print on every rank, prefixed with the rank when world > 1.
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::kError) write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace dfcl::log
