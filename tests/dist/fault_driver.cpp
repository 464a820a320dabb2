// \brief Fault injection for the communicator (tests/dist/fault_run.sh): a 2-rank job of all-reduces in which rank 1
// misbehaves at step 5, as the ctest entries dist_fault_* describe. MODE:
//   kill      rank 1 SIGKILLs itself: the launcher must end the job, naming rank 1;
//   stall     rank 1 sleeps instead of issuing collective #5: the watchdog (dist.timeout_s = 5) must end the job,
//             naming collective #5 and rank 1;
//   stall0    rank 0 sleeps instead: rank 0's watchdog has nothing to report, so rank 1's ends the job after the
//             grace period (5 + 10 s), saying that rank 0 may be the rank that never arrived;
//   mismatch  rank 1 issues a barrier where rank 0 all-reduces (dist.debug = true): both ranks must throw a DistError
//             naming both collectives, then end the job as `dfcl` does (log the error, dist::abort_job).
// Prints nothing naming a rank by itself, so the checks see only what the communicator and the launcher report.
#include <ATen/ATen.h>  // for at::ones
#include <unistd.h>     // for sleep

#include <chrono>   // for std::chrono::milliseconds
#include <csignal>  // for std::raise, SIGKILL
#include <cstdio>   // for std::printf
#include <cstring>  // for std::strcmp
#include <thread>   // for std::this_thread::sleep_for

#include "core/error.h"         // for Error
#include "core/log.h"           // for log::error
#include "dist/communicator.h"  // for make_communicator, abort_job

int main(int argc, char** argv) {
  using namespace dfcl;
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode != "kill" && mode != "stall" && mode != "stall0" && mode != "mismatch") {
    std::fprintf(stderr, "usage: dfcl_fault_driver kill|stall|stall0|mismatch (under mpiexec -n 2)\n");
    return 2;
  }
  try {
    dist::CommOptions o;
    o.backend = "mpi";
    o.timeout_s = mode == "stall" || mode == "stall0" ? 5 : 30;
    o.debug = mode == "mismatch";
    auto comm = dist::make_communicator(o);
    at::Tensor t = at::ones({1024}, at::kFloat);
    for (int step = 1; step <= 20; ++step) {
      if (step == 5 && comm->rank() == 0 && mode == "stall0") sleep(120);
      if (step == 5 && comm->rank() == 1) {
        if (mode == "kill") std::raise(SIGKILL);
        if (mode == "stall") sleep(120);
        if (mode == "mismatch") {
          comm->barrier();
          continue;
        }
      }
      t.fill_(1);
      comm->allreduce(t);
      if (t[0].item<float>() != float(comm->size())) {
        log::error("fault driver: wrong all-reduce result {}", t[0].item<float>());
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::printf("fault driver (%s): all 20 steps completed\n", mode.c_str());
    return 0;
  } catch (const Error& e) {
    log::error("fault driver: {}: {}", e.kind(), e.what());
    dist::abort_job(1);
    return 1;
  }
}
