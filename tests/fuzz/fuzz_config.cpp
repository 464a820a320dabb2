// \brief Fuzz target: the YAML config layer with --set overrides, and every section parser a run reads.
//
// Input: YAML text; the lines after a line "--set" are overrides (`a.b=value`), applied in order. Then the parsers of
// train, model, loss, optimizer, schedule, validation, generate, dist and abtest read the result, and the config is
// dumped (as given, and with its defaults) and checked for unknown keys. Seeds: tests/fuzz/corpus/config (the
// shipped configs, and the YAML that broke it: a self-referring alias).
#include <string>  // for std::string

#include "abtest/abtest.h"             // for abtest::Options
#include "core/config.h"               // for Config
#include "data/generator.h"            // for GeneratorConfig
#include "dist/communicator.h"         // for CommOptions
#include "dist/reducer.h"              // for ReducerOptions
#include "fuzz.h"                      // for expect_clean
#include "loss/loss.h"                 // for make_loss
#include "model/uplift_net_config.h"   // for UpliftNetConfig
#include "train/lr_schedule.h"         // for LrSchedule
#include "train/optimizer.h"           // for OptimizerConfig
#include "train/train_config.h"        // for TrainConfig

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t cut = text.find("\n--set\n");
  const std::string yaml = text.substr(0, cut);
  dfcl::fuzz::expect_clean([&] {
    dfcl::Config cfg = dfcl::Config::from_string(yaml, "fuzz.yaml");
    if (cut != std::string::npos) {
      size_t at = cut + 7;
      while (at < text.size()) {
        size_t end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        if (end > at) cfg.set(text.substr(at, end - at));
        at = end + 1;
      }
    }
    (void)cfg.dump();
    // Each parser on its own: one that refuses its section must not keep the others from being exercised.
    dfcl::fuzz::expect_clean([&] { dfcl::train::TrainConfig::from(cfg); });
    dfcl::fuzz::expect_clean([&] { dfcl::model::UpliftNetConfig::from(cfg.sub("model"), 4, 3); });
    dfcl::fuzz::expect_clean([&] { dfcl::loss::make_loss(cfg.sub("loss")); });
    dfcl::fuzz::expect_clean([&] { dfcl::train::OptimizerConfig::from(cfg.sub("optimizer")); });
    dfcl::fuzz::expect_clean([&] { dfcl::train::LrSchedule::from(cfg.sub("schedule")); });
    dfcl::fuzz::expect_clean([&] { dfcl::data::GeneratorConfig::from(cfg.sub("generate")); });
    dfcl::fuzz::expect_clean([&] { dfcl::dist::CommOptions::from(cfg); });
    dfcl::fuzz::expect_clean([&] { dfcl::dist::ReducerOptions::from(cfg); });
    dfcl::fuzz::expect_clean([&] { dfcl::abtest::Options::from(cfg); });
    (void)cfg.dump_effective();
    cfg.mark_used("import");
    cfg.mark_used("allocate");
    cfg.mark_used("evaluate");
    cfg.check_all_used();
  });
  return 0;
}
