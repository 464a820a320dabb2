// \brief Shared command plumbing (see command.h).
#include "cli/command.h"
#include "core/atomic_file.h"  // for AtomicFile

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::max
#include <fstream>   // for std::ofstream
#include <thread>   // for std::thread::hardware_concurrency
#include <iostream>  // for std::cout

#include "core/error.h"    // for IoError
#include "core/progress.h"  // for Progress
#include "data/generator.h"  // for Generator
#include "data/source.h"     // for MemorySource
#include "dist/communicator.h"        // for CommOptions
#include "dist/reducer.h"             // for ReducerOptions
#include "loss/loss.h"                // for make_loss
#include "model/uplift_net_config.h"  // for UpliftNetConfig
#include "train/lr_schedule.h"        // for LrSchedule
#include "train/optimizer.h"          // for OptimizerConfig
#include "core/log.h"      // for log::info
#include "core/threads.h"  // for configure_torch_threads

namespace dfcl::cli {

std::unique_ptr<data::RowSource> generated_source(const Config& cfg, int threads) {
  data::Generator gen(data::GeneratorConfig::from(cfg.sub("generate")));
  data::Table t;
  Progress bar("generate", gen.rows());
  gen.fill(0, gen.rows(), t, threads);
  bar.advance(gen.rows());
  bar.finish();
  return std::make_unique<data::MemorySource>(gen.meta(), std::move(t));
}

void read_training_sections(const Config& cfg, bool generate) {
  model::UpliftNetConfig::from(cfg.sub("model"), 1, 2);
  loss::make_loss(cfg.sub("loss"));
  train::OptimizerConfig::from(cfg.sub("optimizer"));
  train::LrSchedule::from(cfg.sub("schedule"));
  dist::CommOptions::from(cfg);
  dist::ReducerOptions::from(cfg);
  if (generate) data::GeneratorConfig::from(cfg.sub("generate"));
}

std::vector<Command>& registry() {
  static std::vector<Command> r;
  return r;
}

void add_common_options(CLI::App* cmd, CommonOptions& o) {
  cmd->add_option("-c,--config", o.configs,
                  "YAML config file (see configs/ and docs/cli.md); repeat to layer files, later ones win key by key")
      ->type_name("FILE");
  cmd->add_option("--set", o.sets, "override a config key: --set section.key=value (repeatable)")->type_name("KEY=VALUE");
  cmd->add_option("--json", o.json_out, "write the JSON result to FILE instead of stdout")->type_name("FILE");
  cmd->add_flag("--dump-config", o.dump_config, "print the effective configuration and exit");
}

Config load_config(const CommonOptions& o) {
  Config cfg = Config::load(o.configs.empty() ? std::string() : o.configs.front());
  for (size_t i = 1; i < o.configs.size(); ++i) cfg.merge(Config::load(o.configs[i]));
  for (const auto& s : o.sets) cfg.set(s);
  if (o.dump_config) {
    cfg.set_dump_mode();
    dumping() = std::make_unique<Config>(cfg);  // shares the state: later reads record their defaults there
  }
  return cfg;
}

std::unique_ptr<Config>& dumping() {
  static std::unique_ptr<Config> c;
  return c;
}

bool dumped(const Config& cfg, const CommonOptions& o) {
  if (o.dump_config)
    std::cout << "# the effective configuration: the keys given (config files, --set) over the defaults of every key "
                 "this command reads\n"
              << cfg.dump_effective() << std::endl;
  return o.dump_config;
}

int apply_runtime(const Config& cfg) {
  const int requested = cfg.get<int>("runtime.threads", 0);
  // 0 = every core (or OMP_NUM_THREADS); more than 4x the cores only slows every pool down (and 100000 threads take
  // minutes to start), so that and negatives are refused.
  const int cores = std::max(1, int(std::thread::hardware_concurrency()));
  const int ceiling = std::max(256, 4 * cores);
  if (requested < 0 || requested > ceiling)
    throw ConfigError(fmt::format("config key 'runtime.threads' ({}) = {} must lie in [0, {}]: 0 uses every core ({} "
                                  "here, or OMP_NUM_THREADS), n uses n threads",
                                  cfg.origin("runtime.threads"), requested, ceiling, cores));
  int n = configure_torch_threads(requested);
  log::debug("threads: {}", n);
  return n;
}

void emit_json(const nlohmann::json& result, const CommonOptions& o) {
  if (log::rank() != 0) return;
  // A string that is not UTF-8 (a name read from someone else's file) is written with U+FFFD in place of its bad
  // bytes rather than failing the whole result.
  const std::string text = result.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  if (o.json_out.empty()) {
    std::cout << text << std::endl;
    return;
  }
  AtomicFile f(o.json_out, "--json");
  f.stream() << text << '\n';
  f.commit();
  log::info("results written to {}", o.json_out);
}

}  // namespace dfcl::cli
