// \brief Runs the trials of a search as child processes of the `dfcl` binary, a few at a time.
//
// Each trial is `dfcl train ...` with its own arguments, its output (stdout and stderr) in `<dir>/log.txt`. The
// children never see the launcher's rank variables (OMPI_*, PMI*, PMIX_*, SLURM_*), so each is a one-process run even
// when the search itself was started by mpirun or srun, and each gets `threads` OpenMP threads.
#pragma once
#include <cstdint>     // for int64_t
#include <functional>  // for std::function
#include <string>      // for std::string
#include <vector>      // for std::vector

namespace dfcl::tune {

struct TrialProcess {
  int64_t index = 0;
  std::vector<std::string> args;  // after the executable
  std::string dir;                // the trial's directory (created): log.txt goes there
  int exit_code = -1;             // 0 = success; 128 + n when killed by signal n
  double seconds = 0;
};

/// Runs every process of `trials` with at most `parallel` at once, calling `done` (on this thread) as each ends.
/// Throws IoError when a process cannot be started or its directory created.
void run_processes(const std::string& executable, std::vector<TrialProcess>& trials, int parallel, int threads,
                   const std::function<void(const TrialProcess&)>& done);

/// The last non-empty line of a text file (a failed trial's error), "" when it has none.
std::string last_line(const std::string& path);

}  // namespace dfcl::tune
