// \brief `dfcl generate`: write a synthetic marketing population (docs/data.md) and print its summary.
#include <fmt/format.h>  // for fmt::format

#include "cli/command.h"      // for Registrar, CommonOptions
#include "core/error.h"       // for IoError
#include "core/log.h"         // for log::info
#include "core/progress.h"    // for Progress
#include "core/threads.h"     // for resolve_threads
#include "data/generator.h"   // for Generator
#include "data/summary.h"     // for SummaryBuilder
#include "data/write_options.h"  // for write_options_from
#ifdef DFCL_HAVE_HDF5
#include "data/h5_dataset.h"  // for H5Writer
#endif

namespace dfcl::cli {
namespace {

int run_generate(const CommonOptions& o) {
  Config cfg = load_config(o);
  const int threads = apply_runtime(cfg);
  data::GeneratorConfig gc = data::GeneratorConfig::from(cfg.sub("generate"));
  const std::string output = cfg.get<std::string>("generate.output", "synthetic.h5");
  const bool in_memory = cfg.get<bool>("generate.in_memory", false);
  data::WriteOptions wo = data::write_options_from(cfg.sub("io"), threads);
  // A run's config file may carry the generate section of its data (configs/experiments/regimes/): its training
  // sections are for dfcl train and tune.
  if (dumped(cfg, o)) return 0;
  for (const char* s : {"train", "validation", "model", "loss", "optimizer", "schedule", "dist", "tune"}) cfg.mark_used(s);
  cfg.check_all_used();

  data::Generator gen(gc);
  const data::Meta meta = gen.meta();
  const int64_t N = gen.rows();
  log::info("generating {} rows ({} RCT, {} observational), {} features, {} arms -> {}", N, gc.rct_rows,
            gc.observational_rows, gc.features, gc.arms, in_memory ? "memory (summary only)" : output);
  data::SummaryBuilder summary(meta);
#ifdef DFCL_HAVE_HDF5
  std::unique_ptr<data::H5Writer> writer;
  if (!in_memory) writer = std::make_unique<data::H5Writer>(output, meta, wo);
#else
  if (!in_memory)
    throw IoError(fmt::format("this dfcl was built without HDF5, so it cannot write '{}'; pass --set generate.in_memory=true "
                              "or rebuild with libhdf5-dev", output));
#endif
  // Blocks of one chunk per thread: generation and compression both use every thread, memory stays bounded.
  const int64_t block = wo.chunk_rows * std::max(1, threads);
  data::Table t;
  Progress bar("generate", N);
  for (int64_t a = 0; a < N; a += block) {
    int64_t n = std::min(block, N - a);
    gen.fill(a, n, t, threads);
    summary.add(t);
#ifdef DFCL_HAVE_HDF5
    if (writer) writer->append(t);
#endif
    bar.advance(n);
  }
#ifdef DFCL_HAVE_HDF5
  if (writer) writer->close();
#endif
  bar.finish();
  nlohmann::json result = summary.finish();
  result["output"] = in_memory ? "" : output;
  result["seconds"] = bar.elapsed_s();
  result["rows_per_second"] = N / std::max(1e-9, bar.elapsed_s());
  log::info("{}", data::format_summary(result));
  emit_json(result, o);
  return 0;
}

Registrar reg{{"generate", "write a synthetic marketing population with known potential outcomes", [](CLI::App* cmd) {
                 auto o = std::make_shared<CommonOptions>();
                 add_common_options(cmd, *o);
                 cmd->footer("Config sections: generate (population), io (chunk_rows, deflate_level), runtime (threads).\n"
                             "Example: dfcl generate --set generate.rct_rows=1000000 --set generate.output=big.h5");
                 return [o] { return run_generate(*o); };
               }}};

}  // namespace
}  // namespace dfcl::cli
