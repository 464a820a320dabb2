// \brief Logging sink (stderr), rank discovery from the launcher environment.
#include "core/log.h"

#include <cstdio>   // for std::fputs
#include <cstdlib>  // for std::getenv
#include <mutex>    // for std::mutex

namespace dfcl::log {
namespace {

int env_int(std::initializer_list<const char*> names, int fallback) {
  for (const char* n : names)
    if (const char* v = std::getenv(n)) return std::atoi(v);
  return fallback;
}

struct State {
  int rank = env_int({"OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID", "RANK"}, 0);
  int world = env_int({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS", "WORLD_SIZE"}, 1);
  Level level = Level::kInfo;
  std::mutex mu;
};
State& state() {
  static State s;
  return s;
}

}  // namespace

void set_rank(int r, int w) { state().rank = r, state().world = w; }
int rank() { return state().rank; }
int world() { return state().world; }
void set_level(Level l) { state().level = l; }
Level level() { return state().level; }

void write(Level l, const std::string& msg) {
  std::lock_guard<std::mutex> lock(state().mu);
  std::string line;
  if (l == Level::kError) line = state().world > 1 ? fmt::format("[rank {}] error: ", state().rank) : "error: ";
  if (l == Level::kWarn) line = "warning: ";
  line += msg;
  line += '\n';
  std::fputs(line.c_str(), stderr);
}

}  // namespace dfcl::log
