// \brief Fuzz target: `dfcl import` of a CSV file (reader, arm labels, numbers, categoricals, UTF-8, the HDF5 write).
//
// Input: the CSV file's bytes. The import config is fixed: arms a/b/c in column `arm`, revenue `r`, cost `c`, a
// numeric feature `x` and a categorical feature `seg`; the first input byte picks on_bad_row (error or skip) and the
// delimiter (',', ';' or tab). Seeds: tests/fuzz/corpus/csv_import (small valid files, quoting, a Latin-1 byte).
#include <string>  // for std::string

#include "core/config.h"          // for Config
#include "data/import.h"          // for import_csv
#include "data/write_options.h"   // for WriteOptions
#include "fuzz.h"                 // for expect_clean, scratch, write_file

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const std::string in = dfcl::fuzz::scratch("import.csv"), out = dfcl::fuzz::scratch("import.h5");
  const uint8_t mode = data[0];
  dfcl::fuzz::write_file(in, data + 1, size - 1);
  const char* delims[] = {",", ";", "\\t"};  // YAML double-quoted: "\t" is a tab
  const std::string yaml = "import:\n  input: " + in + "\n  output: " + out + "\n  delimiter: \"" +
                           delims[(mode >> 1) % 3] + "\"\n  on_bad_row: " + ((mode & 1) ? "skip" : "error") +
                           "\n  treatment: {column: arm, arms: [a, b, c]}\n  revenue: {column: r}\n  cost: {column: c}"
                           "\n  features: [{column: x}, {column: seg, type: categorical}]\n  source: rct\n";
  dfcl::fuzz::expect_clean([&] {
    const dfcl::Config cfg = dfcl::Config::from_string(yaml, "fuzz_import.yaml");
    dfcl::data::WriteOptions wo;
    wo.threads = 1;
    wo.chunk_rows = 64;  // several chunks from a small file
    dfcl::data::import_csv(cfg.sub("import"), wo, false);
  });
  return 0;
}
