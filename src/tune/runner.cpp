// \brief run_processes: posix_spawn with a clean environment, waitpid for whichever ends first.
#include "tune/runner.h"

#include <fcntl.h>     // for O_WRONLY, O_CREAT, O_TRUNC
#include <spawn.h>     // for posix_spawn
#include <sys/stat.h>  // for mkdir
#include <sys/wait.h>  // for waitpid

#include <fmt/format.h>  // for fmt::format

#include <cerrno>   // for errno
#include <chrono>   // for std::chrono
#include <cstring>  // for std::strerror, std::strncmp
#include <fstream>  // for std::ifstream
#include <map>      // for std::map

#include "core/error.h"  // for IoError

extern char** environ;

namespace dfcl::tune {
namespace {

void make_dirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i)
    if (i == dir.size() || dir[i] == '/') {
      const std::string p = dir.substr(0, i);
      if (::mkdir(p.c_str(), 0755) != 0 && errno != EEXIST)
        throw IoError(
            fmt::format("cannot create directory '{}': {}; choose a writable tune.output", p, std::strerror(errno)));
    }
}

// The environment of a child: ours without the launcher's rank variables, with OMP_NUM_THREADS = threads.
std::vector<std::string> child_environment(int threads) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const char* v = *e;
    bool drop = false;
    for (const char* p : {"OMPI_", "PMIX_", "PMI_", "SLURM_", "OMP_NUM_THREADS="})
      drop = drop || std::strncmp(v, p, std::strlen(p)) == 0;
    if (!drop) env.emplace_back(v);
  }
  env.push_back(fmt::format("OMP_NUM_THREADS={}", threads));
  return env;
}

}  // namespace

void run_processes(const std::string& executable, std::vector<TrialProcess>& trials, int parallel, int threads,
                   const std::function<void(const TrialProcess&)>& done) {
  const std::vector<std::string> env = child_environment(threads);
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  using Clock = std::chrono::steady_clock;
  std::map<pid_t, std::pair<size_t, Clock::time_point>> running;
  size_t next = 0;
  while (next < trials.size() || !running.empty()) {
    while (next < trials.size() && int(running.size()) < std::max(1, parallel)) {
      TrialProcess& t = trials[next];
      make_dirs(t.dir);
      std::vector<std::string> argv_s{executable};
      argv_s.insert(argv_s.end(), t.args.begin(), t.args.end());
      std::vector<char*> argv;
      for (auto& a : argv_s) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      const std::string log = t.dir + "/log.txt";
      posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      posix_spawn_file_actions_adddup2(&fa, 1, 2);
      pid_t pid = 0;
      const int rc = posix_spawn(&pid, executable.c_str(), &fa, nullptr, argv.data(), envp.data());
      posix_spawn_file_actions_destroy(&fa);
      if (rc != 0)
        throw IoError(fmt::format("tune: cannot start trial {} ({}): {}", t.index, executable, std::strerror(rc)));
      running[pid] = {next, Clock::now()};
      ++next;
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      throw IoError(fmt::format("tune: waiting for the trials failed: {}", std::strerror(errno)));
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;  // not one of ours
    TrialProcess& t = trials[it->second.first];
    t.seconds = std::chrono::duration<double>(Clock::now() - it->second.second).count();
    t.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    running.erase(it);
    done(t);
  }
}

std::string last_line(const std::string& path) {
  std::ifstream f(path);
  std::string line, last;
  while (std::getline(f, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  return last;
}

}  // namespace dfcl::tune
