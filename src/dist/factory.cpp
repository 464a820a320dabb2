// \brief The `dist` config section, launcher detection, and the choice of communicator (local, mpi, nccl).
//
// Compiles with and without MPI (DFCL_HAVE_MPI) and NCCL (DFCL_HAVE_NCCL): a backend that was not built is a
// ConfigError naming what builds it, and a process launched as one of several ranks without MPI is a DistError (it
// would otherwise train W independent copies of the model).
#include <fmt/format.h>  // for fmt::format

#include <cstdlib>  // for std::getenv, std::strtol
#include <string>   // for std::string

#include "core/config.h"        // for Config
#include "core/error.h"         // for ConfigError, DistError
#include "dist/communicator.h"  // for CommOptions, make_communicator
#if DFCL_HAVE_MPI
#include "dist/mpi_communicator.h"  // for MpiCommunicator, mpi_active
#endif

namespace dfcl::dist {

#if DFCL_HAVE_NCCL
/// nccl.cpp: the NCCL communicator for `device` (CPU tensors and the control plane go through MPI).
std::unique_ptr<Communicator> make_nccl_communicator(const CommOptions& opts, const std::string& device);
#endif

namespace {

/// An integer environment variable, or -1 when it is unset or not a number.
long env_long(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return -1;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  return end && *end == '\0' ? x : -1;
}

/// The world size a launcher announced, with the variable that says so; {1, ""} when none did.
std::pair<long, std::string> launcher_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const long n = env_long(name);
    if (n > 1) return {n, name};
  }
  // Slurm: SLURM_STEP_NUM_TASKS is set by srun for its step (a batch script itself has only SLURM_NTASKS, and is one
  // process); with a PMIx launch (srun --mpi=pmix) PMIX_RANK is set and SLURM_NTASKS counts the step's tasks.
  const long step = env_long("SLURM_STEP_NUM_TASKS");
  if (step > 1 && std::getenv("SLURM_PROCID")) return {step, "SLURM_STEP_NUM_TASKS"};
  if (std::getenv("PMIX_RANK")) {
    const long n = env_long("SLURM_NTASKS");
    if (n > 1) return {n, "SLURM_NTASKS"};
  }
  return {1, ""};
}

bool is_cuda(const std::string& device) { return device.rfind("cuda", 0) == 0; }

std::unique_ptr<Communicator> make_mpi([[maybe_unused]] const CommOptions& opts) {
#if DFCL_HAVE_MPI
  auto comm = std::make_unique<MpiCommunicator>(opts);
  const auto [launched, var] = launcher_world_size();
  if (launched > 1 && comm->size() != launched)
    throw DistError(fmt::format(
        "rank {}: the launcher started {} processes ({}={}), but MPI sees a world of {}: the launcher and the MPI "
        "library dfcl was built with do not match (e.g. srun without --mpi=pmix, or another MPI's mpirun). Launch "
        "with this Open MPI's mpirun -n W, or srun --mpi=pmix",
        comm->rank(), launched, var, launched, comm->size()));
  return comm;
#else
  throw ConfigError(
      "dist.backend=mpi, but this dfcl was built without MPI: install it (apt-get install libopenmpi-dev openmpi-bin) "
      "and reconfigure with -DDFCL_MPI=ON, or use dist.backend=local for one process");
#endif
}

}  // namespace

CommOptions CommOptions::from(const Config& cfg) {
  CommOptions o;
  o.backend = cfg.get<std::string>("dist.backend", o.backend);
  if (o.backend != "auto" && o.backend != "local" && o.backend != "mpi" && o.backend != "nccl")
    throw ConfigError(fmt::format(
        "dist.backend is '{}'; use auto (mpi when launched as several ranks, nccl for CUDA), local, mpi or nccl",
        o.backend));
  o.timeout_s = cfg.get<double>("dist.timeout_s", o.timeout_s);
  if (!(o.timeout_s >= 1 && o.timeout_s <= 1e6))
    throw ConfigError(fmt::format(
        "dist.timeout_s is {}; give 1..1e6 seconds (a collective without progress this long ends the job; make it "
        "longer than the slowest legitimate step, e.g. a validation pass or a checkpoint write)",
        o.timeout_s));
  o.startup_timeout_s = cfg.get<double>("dist.startup_timeout_s", o.startup_timeout_s);
  if (!(o.startup_timeout_s >= 1 && o.startup_timeout_s <= 1e6))
    throw ConfigError(
        fmt::format("dist.startup_timeout_s is {}; give 1..1e6 seconds (the start-up self-test must finish within it)",
                    o.startup_timeout_s));
  o.debug = cfg.get<bool>("dist.debug", o.debug);
  return o;
}

bool launched_multi_process() { return launcher_world_size().first > 1; }

std::unique_ptr<Communicator> make_communicator(const CommOptions& opts, const std::string& device) {
  const auto [launched, var] = launcher_world_size();
#if DFCL_HAVE_MPI
  const bool multi = launched > 1 || mpi_active();
#else
  const bool multi = launched > 1;
#endif
  std::string backend = opts.backend;
  if (backend == "auto" && !multi) backend = "local";
  if (backend == "auto") {
#if DFCL_HAVE_NCCL
    if (is_cuda(device)) backend = "nccl";
#endif
#if DFCL_HAVE_MPI
    if (backend == "auto") backend = "mpi";
#else
    throw DistError(fmt::format(
        "this process is one of {} ranks ({}={}), but this dfcl was built without MPI, so each rank would train its "
        "own copy of the model. Install MPI (apt-get install libopenmpi-dev openmpi-bin) and reconfigure with "
        "-DDFCL_MPI=ON, or run one process without mpirun/srun",
        launched, var, launched));
#endif
  }
  if (backend == "local") {
    if (launched > 1)
      throw DistError(fmt::format(
          "this process is one of {} ranks ({}={}), but dist.backend=local: each rank would train its own copy of the "
          "model. Use dist.backend=auto or mpi, or run one process without mpirun/srun",
          launched, var, launched));
    return make_local_communicator();
  }
  if (backend == "mpi") {
    if (is_cuda(device))
      throw ConfigError(fmt::format(
          "dist.backend=mpi moves CPU tensors, but the training device is {}; use dist.backend=nccl (or auto){}",
          device,
#if DFCL_HAVE_NCCL
          ""
#else
          " with a dfcl built with -DDFCL_CUDA=ON, MPI and NCCL (libnccl in /usr/local/cuda)"
#endif
          ));
    return make_mpi(opts);
  }
  // nccl
#if DFCL_HAVE_NCCL
  if (!is_cuda(device))
    throw ConfigError(fmt::format(
        "dist.backend=nccl reduces CUDA tensors, but the training device is {}; set train.device=cuda or use "
        "dist.backend=mpi (or auto)",
        device));
  return make_nccl_communicator(opts, device);
#else
  throw ConfigError(
      "dist.backend=nccl, but this dfcl was built without NCCL: reconfigure with -DDFCL_CUDA=ON and -DDFCL_MPI=ON "
      "(apt-get install libopenmpi-dev openmpi-bin) on a host with the CUDA toolkit and NCCL (libnccl in "
      "/usr/local/cuda), or use dist.backend=mpi");
#endif
}

}  // namespace dfcl::dist
