// \brief Fuzz target: the HDF5 dataset reader (open, every read, the source column, `dfcl info`'s summary).
//
// Input: a byte that sizes a small valid dataset (written by H5Writer from the generator), then edits of its datasets
// and attributes (h5_mutator.h). Seeds: tests/fuzz/corpus/h5_dataset (no edit; each file of issue 14's item 6: a float
// treatment, attributes that disagree with the rows, strings in revenue).
#include <filesystem>  // for std::filesystem::rename

#include "data/generator.h"    // for Generator
#include "data/h5_dataset.h"   // for H5Writer, H5Reader
#include "data/summary.h"      // for summarize
#include "fuzz.h"              // for expect_clean, scratch, Bytes
#include "h5_mutator.h"        // for mutate_h5

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dfcl::fuzz::Bytes in(data, size);
  static const std::string path = dfcl::fuzz::scratch("dataset.h5");
  const uint8_t shape = in.u8();
  dfcl::data::GeneratorConfig gc;
  gc.rct_rows = 20 + shape % 40;
  gc.observational_rows = (shape >> 6) * 10;
  gc.features = 1 + (shape >> 3) % 4;
  gc.arms = 2 + (shape >> 5) % 2;
  dfcl::data::WriteOptions wo;
  wo.chunk_rows = 16;
  wo.threads = 1;
  {
    dfcl::data::Generator gen(gc);
    dfcl::data::Table t;
    gen.fill(0, gen.rows(), t, 1);
    dfcl::data::H5Writer w(path, gen.meta(), wo);
    w.append(t);
    w.close();
  }
  dfcl::fuzz::mutate_h5(path, in,
                        {"features", "treatment", "revenue", "cost", "source", "propensity", "true_revenue",
                         "true_cost", "extra"},
                        {"schema_version", "num_arms", "arm_names", "feature_names", "rct_propensity", "rct_arm_rows",
                         "rct_rows", "observational_rows", "origin"});
  dfcl::fuzz::expect_clean([&] {
    dfcl::data::H5Reader r(path);
    dfcl::data::Table t;
    const int64_t n = r.meta().num_rows;
    for (int64_t a = 0; a < n; a += 7) r.read(a, std::min<int64_t>(7, n - a), t);
    std::vector<uint8_t> source;
    r.read_source(0, n, source);
  });
  dfcl::fuzz::expect_clean([&] {
    dfcl::data::H5Reader r(path);
    dfcl::data::summarize(r);
  });
  return 0;
}
