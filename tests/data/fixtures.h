// \brief Small datasets for data-layer tests: a generator-backed MemorySource and temp paths.
#pragma once
#include <gtest/gtest.h>  // for TempDir

#include <string>  // for std::string

#include "data/generator.h"  // for Generator
#include "data/source.h"     // for MemorySource

namespace dfcl::test {

inline data::GeneratorConfig small_config(int64_t rct, int64_t obs, int features = 6, int arms = 3, uint64_t seed = 5) {
  data::GeneratorConfig c;
  c.rct_rows = rct;
  c.observational_rows = obs;
  c.features = features;
  c.arms = arms;
  c.seed = seed;
  return c;
}

inline data::MemorySource memory_source(const data::GeneratorConfig& c, int64_t chunk_rows) {
  data::Generator g(c);
  data::Table t;
  g.fill(0, g.rows(), t, 2);
  return data::MemorySource(g.meta(), std::move(t), chunk_rows);
}

inline std::string temp_path(const std::string& name) { return ::testing::TempDir() + "/dfcl_" + name; }

}  // namespace dfcl::test
