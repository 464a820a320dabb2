// \brief `dfcl info [FILE]`: without FILE, what this build has (torch, HDF5, MPI, CUDA devices, threads);
// with FILE, validate a dataset end to end and print its schema and summary.
#include <ATen/Parallel.h>  // for at::get_num_threads
#include <fmt/format.h>     // for fmt::format

#include "cli/command.h"   // for Registrar
#include "core/log.h"      // for log::info
#include "core/threads.h"  // for resolve_threads
#include "data/source.h"   // for open_source
#include "data/summary.h"  // for summarize
#ifdef DFCL_HAVE_CUDA
#include "cuda/device.h"  // for cuda::devices
#endif

namespace dfcl::cli {
namespace {

nlohmann::json build_info() {
  nlohmann::json j;
  j["version"] = "0.1.0";
  j["torch"] = DFCL_TORCH_VERSION;
#ifdef DFCL_HAVE_HDF5
  j["hdf5"] = true;
#else
  j["hdf5"] = false;
#endif
#ifdef DFCL_BUILT_WITH_MPI
  j["mpi"] = true;
#else
  j["mpi"] = false;
#endif
  j["threads"] = resolve_threads(0);
#ifdef DFCL_HAVE_CUDA
  std::string why;
  j["cuda"] = {{"runtime", cuda::runtime_version()}, {"devices", nlohmann::json::array()}};
  for (const auto& d : cuda::devices(&why))
    j["cuda"]["devices"].push_back({{"index", d.index}, {"name", d.name}, {"memory_gib", d.memory_bytes / 1073741824.0},
                                    {"compute_capability", fmt::format("{}.{}", d.major, d.minor)},
                                    {"multiprocessors", d.multiprocessors}});
  if (!why.empty()) j["cuda"]["note"] = why;
#else
  j["cuda"] = nullptr;
#endif
  return j;
}

int run_info(const std::string& path, const CommonOptions& o) {
  if (path.empty()) {
    nlohmann::json j = build_info();
    std::string cuda = "not built";
    if (!j["cuda"].is_null()) {
      cuda = fmt::format("runtime {}, {} device(s)", j["cuda"]["runtime"].get<std::string>(), j["cuda"]["devices"].size());
      if (j["cuda"].contains("note")) cuda += " (" + j["cuda"]["note"].get<std::string>() + ")";
    }
    log::info("dfcl {} | torch {} | HDF5 {} | MPI {} | CUDA {} | threads {}", j["version"].get<std::string>(),
              j["torch"].get<std::string>(), j["hdf5"].get<bool>() ? "yes" : "no", j["mpi"].get<bool>() ? "yes" : "no",
              cuda, j["threads"].get<int>());
    emit_json(j, o);
    return 0;
  }
  auto src = data::open_source(path);
  const data::Meta& m = src->meta();
  // summarize() reads every row, so every checksum and value is checked on the way.
  nlohmann::json s = data::summarize(*src);
  s["path"] = path;
  s["schema_version"] = data::kSchemaVersion;
  s["feature_names"] = m.feature_names;
  s["rct_propensity"] = m.rct_propensity;
  s["has_propensity"] = m.has_propensity;
  s["has_truth"] = m.has_truth;
  s["chunk_rows"] = src->chunk_rows();
  s["origin"] = m.origin;
  log::info("{}: schema v{}, chunk {} rows, origin: {}\n{}", path, data::kSchemaVersion, src->chunk_rows(), m.origin,
            data::format_summary(s));
  emit_json(s, o);
  return 0;
}

Registrar reg{{"info", "show what this build supports, or check a dataset file end to end and summarise it",
               [](CLI::App* cmd) {
                 auto o = std::make_shared<CommonOptions>();
                 auto path = std::make_shared<std::string>();
                 cmd->add_option("file", *path, "dataset (.h5); without it, print the build's capabilities");
                 cmd->add_option("--json", o->json_out, "write the JSON result to FILE instead of stdout");
                 return [o, path] { return run_info(*path, *o); };
               }}};

}  // namespace
}  // namespace dfcl::cli
