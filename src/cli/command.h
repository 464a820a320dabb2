// \brief Subcommand plumbing shared by every `dfcl` command: config loading, --set, JSON output.
#pragma once
#include <CLI/CLI.hpp>        // for CLI::App
#include <nlohmann/json.hpp>  // for nlohmann::json

#include <functional>  // for std::function
#include <memory>      // for std::unique_ptr
#include <string>      // for std::string
#include <vector>      // for std::vector

#include "core/config.h"  // for Config

namespace dfcl::data {
class RowSource;
}

namespace dfcl::cli {

/// Options every config-driven command takes.
struct CommonOptions {
  std::vector<std::string> configs;  // -c/--config FILE (YAML), repeatable: later files win key by key
  std::vector<std::string> sets;   // --set a.b=value (repeatable)
  std::string json_out;            // --json FILE: write results there instead of stdout
  bool dump_config = false;        // --dump-config: print the effective config and exit
};

void add_common_options(CLI::App* cmd, CommonOptions& o);
/// Loads the YAML file and applies the --set overrides.
Config load_config(const CommonOptions& o);
/// With --dump-config, prints the effective configuration and returns true (the command then stops).
bool dumped(const Config& cfg, const CommonOptions& o);
/// The configuration load_config() loaded with --dump-config (null otherwise): when a key a run needs is missing, the
/// command stops with its ConfigError before dumped(), and main() then prints what was read so far.
std::unique_ptr<Config>& dumping();
/// Reads the `runtime` section (threads) and applies it; returns the thread count.
int apply_runtime(const Config& cfg);
/// The population of the `generate` section, built in memory (what a GPU host without HDF5 trains on).
std::unique_ptr<data::RowSource> generated_source(const Config& cfg, int threads);
/// With --dump-config: reads the sections a training run reads once it knows the data (model, loss, optimizer,
/// schedule, dist, and generate when `generate`), so their defaults are dumped too.
void read_training_sections(const Config& cfg, bool generate);
/// Writes the result JSON to --json FILE, or to stdout.
void emit_json(const nlohmann::json& result, const CommonOptions& o);

/// A subcommand: `setup` declares its options on `cmd`; the returned callable runs it.
struct Command {
  const char* name;
  const char* help;
  std::function<std::function<int()>(CLI::App* cmd)> setup;
};
std::vector<Command>& registry();
/// Registration helper: `static Registrar r{{"generate", "...", setup}};` in the command's file.
struct Registrar {
  explicit Registrar(Command c) { registry().push_back(std::move(c)); }
};

}  // namespace dfcl::cli
