// \brief Data-layer throughput: generator, HDF5 writer, chunk reader, shuffled loader (rows/s).
#include <benchmark/benchmark.h>  // for BENCHMARK

#include <cstdio>  // for std::remove
#include <string>  // for std::string

#include "data/generator.h"  // for Generator
#include "data/loader.h"     // for Loader
#ifdef DFCL_HAVE_HDF5
#include "data/h5_dataset.h"  // for H5Writer, H5Reader
#endif

using namespace dfcl::data;

namespace {
constexpr int64_t kRows = 1 << 20;  // 1,048,576 rows x 32 features x 5 arms (the generate defaults)
constexpr int64_t kChunk = 1 << 16;

GeneratorConfig bench_config() {
  GeneratorConfig c;
  c.rct_rows = kRows / 5;
  c.observational_rows = kRows - c.rct_rows;
  return c;
}
std::string bench_file() {
  const char* dir = std::getenv("DFCL_BENCH_DIR");
  return std::string(dir ? dir : "/tmp") + "/dfcl_bench.h5";
}
}  // namespace

static void BM_GenerateInMemory(benchmark::State& st) {
  Generator g(bench_config());
  Table t;
  const int threads = static_cast<int>(st.range(0));
  for (auto _ : st) {
    for (int64_t a = 0; a < kRows; a += kChunk * threads) {
      g.fill(a, std::min(kChunk * threads, kRows - a), t, threads);
      benchmark::DoNotOptimize(t.features.data());
    }
  }
  st.SetItemsProcessed(st.iterations() * kRows);
}
BENCHMARK(BM_GenerateInMemory)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

#ifdef DFCL_HAVE_HDF5
static void BM_GenerateToHdf5(benchmark::State& st) {
  Generator g(bench_config());
  WriteOptions w;
  w.chunk_rows = kChunk, w.deflate_level = static_cast<int>(st.range(0)), w.threads = 2;
  Table t;
  for (auto _ : st) {
    H5Writer out(bench_file(), g.meta(), w);
    for (int64_t a = 0; a < kRows; a += kChunk * 2) {
      g.fill(a, std::min(kChunk * 2, kRows - a), t, 2);
      out.append(t);
    }
    out.close();
  }
  st.SetItemsProcessed(st.iterations() * kRows);
}
BENCHMARK(BM_GenerateToHdf5)->ArgName("deflate")->Arg(0)->Arg(1)->Arg(4)->Unit(benchmark::kMillisecond)->UseRealTime();

static void BM_ReadChunks(benchmark::State& st) {
  H5Reader r(bench_file());  // written by BM_GenerateToHdf5 (last: deflate 4)
  Table t;
  for (auto _ : st)
    for (int64_t a = 0; a < r.meta().num_rows; a += r.chunk_rows()) {
      r.read(a, std::min(r.chunk_rows(), r.meta().num_rows - a), t);
      benchmark::DoNotOptimize(t.features.data());
    }
  st.SetItemsProcessed(st.iterations() * r.meta().num_rows);
}
BENCHMARK(BM_ReadChunks)->Unit(benchmark::kMillisecond)->UseRealTime();

static void BM_LoaderEpoch(benchmark::State& st) {
  H5Reader r(bench_file());
  LoaderOptions o;
  o.batch_size = 4096, o.shuffle_buffer = st.range(0);
  Loader l(r, o);
  Table b;
  int64_t rows = 0;
  for (auto _ : st) {
    l.start_epoch(0);
    while (l.next(b)) rows += b.rows;
  }
  st.SetItemsProcessed(rows);
}
BENCHMARK(BM_LoaderEpoch)->ArgName("shuffle_buffer")->Arg(0)->Arg(1 << 16)->Unit(benchmark::kMillisecond)->UseRealTime();
#endif

BENCHMARK_MAIN();
