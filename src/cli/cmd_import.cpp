// \brief `dfcl import`: CSV -> schema-v1 HDF5 through a YAML column mapping (presets: hillstrom, criteo).
#include <fmt/format.h>  // for fmt::format

#include "cli/command.h"        // for Registrar, CommonOptions
#include "core/error.h"         // for IoError
#include "core/log.h"           // for log::info
#include "core/progress.h"      // for Progress::enabled
#include "data/write_options.h"  // for write_options_from
#ifdef DFCL_HAVE_HDF5
#include "data/import.h"  // for import_csv
#endif

namespace dfcl::cli {
namespace {

int run_import(const CommonOptions& o) {
  Config cfg = load_config(o);
  const int threads = apply_runtime(cfg);
  data::WriteOptions wo = data::write_options_from(cfg.sub("io"), threads);
#ifdef DFCL_HAVE_HDF5
  if (o.dump_config) {
    try {  // records the import section's defaults; a key a run needs shows as <required>
      data::check_import_config(cfg.sub("import"));
    } catch (const ConfigError&) {  // a preset-dependent key: the run reports it
    }
  }
#endif
  if (dumped(cfg, o)) return 0;
#ifdef DFCL_HAVE_HDF5
  data::ImportSummary s = data::import_csv(cfg.sub("import"), wo, Progress::enabled());
  cfg.check_all_used();
  std::string table = fmt::format("{}: {} rows read, {} written, {} skipped -> {} ({:.2f}s)\n", s.input, s.rows_read,
                                  s.rows_written, s.rows_skipped, s.output, s.seconds);
  table += fmt::format("  {:<16} {:>10} {:>12} {:>10}\n", "arm", "rows", "mean_rev", "mean_cost");
  for (size_t a = 0; a < s.arm_names.size(); ++a)
    table += fmt::format("  {:<16} {:>10} {:>12.4f} {:>10.4f}\n", s.arm_names[a], s.arm_rows[a], s.arm_mean_revenue[a],
                         s.arm_mean_cost[a]);
  log::info("{}", table);
  if (s.rows_skipped > 0) {
    log::warn("{} bad rows were skipped (import.on_bad_row: skip); the first {}:", s.rows_skipped, s.skip_reasons.size());
    for (const auto& r : s.skip_reasons) log::warn("  {}", r);
  }
  emit_json(data::to_json(s), o);
  return 0;
#else
  (void)wo;
  throw IoError("this dfcl was built without HDF5, so it cannot write datasets; install libhdf5-dev and rebuild");
#endif
}

Registrar reg{{"import", "convert a CSV (Hillstrom, Criteo, or your own mapping) into a dfcl HDF5 dataset",
               [](CLI::App* cmd) {
                 auto o = std::make_shared<CommonOptions>();
                 add_common_options(cmd, *o);
                 cmd->footer("Config sections: import (mapping; see configs/import_*.yaml), io, runtime.\n"
                             "Example: dfcl import -c configs/import_hillstrom.yaml --set import.output=h.h5");
                 return [o] { return run_import(*o); };
               }}};

}  // namespace
}  // namespace dfcl::cli
