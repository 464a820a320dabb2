// \brief `dfcl info FILE`: validate a dataset end to end and print its schema and summary.
#include <fmt/format.h>  // for fmt::format

#include "cli/command.h"   // for Registrar
#include "core/log.h"      // for log::info
#include "data/source.h"   // for open_source
#include "data/summary.h"  // for summarize

namespace dfcl::cli {
namespace {

int run_info(const std::string& path, const CommonOptions& o) {
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

Registrar reg{{"info", "check a dataset file end to end (schema, checksums, values) and print its summary",
               [](CLI::App* cmd) {
                 auto o = std::make_shared<CommonOptions>();
                 auto path = std::make_shared<std::string>();
                 cmd->add_option("file", *path, "dataset (.h5)")->required();
                 cmd->add_option("--json", o->json_out, "write the JSON result to FILE instead of stdout");
                 return [o, path] { return run_info(*path, *o); };
               }}};

}  // namespace
}  // namespace dfcl::cli
