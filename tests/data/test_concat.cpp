// \brief Several files as one dataset (ConcatSource): the merged description, reads across the file boundary equal the
// files' own reads, per-file splits, the loader over the combination, the checks that refuse files that do not fit
// together; and the default split of a held-out read.
#include <gtest/gtest.h>

#include <cstdio>      // for std::remove
#include <fstream>     // for std::ofstream
#include <memory>      // for std::unique_ptr
#include <set>         // for std::set
#include <string>      // for std::string
#include <unistd.h>    // for symlink

#include "core/error.h"          // for DataError
#include "data/concat_source.h"  // for ConcatSource
#include "data/fixtures.h"       // for small_config, memory_source, temp_path
#include "data/loader.h"         // for Loader
#include "data/split.h"          // for default_split, same_file

namespace dfcl::data {
namespace {

// A trial file and a log file of the same population (same seed: same features and arms), as a user would import them.
std::unique_ptr<RowSource> trial(int64_t rows = 3000, int chunk = 512) {
  return std::make_unique<MemorySource>(test::memory_source(test::small_config(rows, 0), chunk));
}
std::unique_ptr<RowSource> log_file(int64_t rows = 5000, int chunk = 700) {
  return std::make_unique<MemorySource>(test::memory_source(test::small_config(0, rows), chunk));
}
ConcatSource trial_and_log() {
  std::vector<std::unique_ptr<RowSource>> parts;
  parts.push_back(trial());
  parts.push_back(log_file());
  return ConcatSource(std::move(parts), "train.data");
}

TEST(ConcatSource, MetaAddsUpAndKeepsTheTrialDesign) {
  ConcatSource c = trial_and_log();
  const Meta& m = c.meta();
  EXPECT_EQ(m.num_rows, 8000);
  EXPECT_EQ(m.rct_rows, 3000);
  EXPECT_EQ(m.observational_rows, 5000);
  EXPECT_EQ(m.rct_propensity, trial()->meta().rct_propensity);
  EXPECT_EQ(m.feature_names, trial()->meta().feature_names);
  EXPECT_TRUE(m.has_propensity);
  EXPECT_TRUE(m.has_truth);
  EXPECT_TRUE(m.rct_arm_rows.empty()) << "in-memory parts carry no arm counts, so neither does their sum";
  EXPECT_EQ(c.name(), "<memory> + <memory>");
  EXPECT_EQ(c.offsets(), (std::vector<int64_t>{0, 3000, 8000}));
  EXPECT_EQ(c.part_of(2999), 0u);
  EXPECT_EQ(c.part_of(3000), 1u);
  EXPECT_EQ(c.split_key(2999), 2999);
  EXPECT_EQ(c.split_key(3007), 7) << "a row's split key is its position in its own file";
}

TEST(ConcatSource, ReadsAcrossTheBoundaryEqualTheFilesOwnReads) {
  ConcatSource c = trial_and_log();
  auto a = trial(), b = log_file();
  Table whole, pa, pb;
  c.read(2990, 25, whole);
  a->read(2990, 10, pa);
  b->read(0, 15, pb);
  ASSERT_EQ(whole.rows, 25);
  for (int64_t i = 0; i < 25; ++i) {
    const Table& p = i < 10 ? pa : pb;
    const int64_t k = i < 10 ? i : i - 10;
    EXPECT_EQ(whole.row_id[i], 2990 + i);
    EXPECT_EQ(whole.treatment[i], p.treatment[k]);
    EXPECT_EQ(whole.revenue[i], p.revenue[k]);
    EXPECT_EQ(whole.cost[i], p.cost[k]);
    EXPECT_EQ(whole.source[i], p.source[k]);
    EXPECT_EQ(whole.propensity[i], p.propensity[k]);
    for (int f = 0; f < whole.num_features; ++f)
      EXPECT_EQ(whole.features[i * whole.num_features + f], p.features[k * p.num_features + f]);
    for (int j = 0; j < whole.num_arms; ++j)
      EXPECT_EQ(whole.true_revenue[i * whole.num_arms + j], p.true_revenue[k * p.num_arms + j]);
  }
  EXPECT_EQ(whole.source[9], uint8_t(Source::kRct));
  EXPECT_EQ(whole.source[10], uint8_t(Source::kObservational));
  std::vector<uint8_t> src;
  c.read_source(2995, 10, src);
  EXPECT_EQ(src, (std::vector<uint8_t>{0, 0, 0, 0, 0, 1, 1, 1, 1, 1}));
}

TEST(ConcatSource, ATrialFileKeepsItsSplitInsideAList) {
  // The test rows of the trial file are the same whether it is read alone or as the first or the second file.
  const SplitSpec split{0.8, 0.1, 3};
  auto alone = trial();
  const Table t_alone = read_rct_rows(*alone, split, Split::kTest, 1 << 30, "test");
  for (bool trial_first : {true, false}) {
    std::vector<std::unique_ptr<RowSource>> parts;
    if (trial_first) parts.push_back(trial()), parts.push_back(log_file());
    else parts.push_back(log_file()), parts.push_back(trial());
    ConcatSource c(std::move(parts), "train.data");
    const Table t = read_rct_rows(c, split, Split::kTest, 1 << 30, "test");
    ASSERT_EQ(t.rows, t_alone.rows) << trial_first;
    for (int64_t i = 0; i < t.rows; ++i) {
      EXPECT_EQ(t.row_id[i] - (trial_first ? 0 : 5000), t_alone.row_id[i]);
      EXPECT_EQ(t.revenue[i], t_alone.revenue[i]);
    }
  }
}

TEST(ConcatSource, TheLoaderSeesEveryTrainingRowOfBothFilesOnce) {
  ConcatSource c = trial_and_log();
  LoaderOptions o;
  o.batch_size = 100;
  o.split = Split::kTrain;
  o.split_spec = SplitSpec{0.8, 0.1, 0};
  o.remainder = Remainder::kPad;
  Loader loader(c, o);
  std::set<int64_t> seen;
  Table b;
  while (loader.next(b))
    for (int64_t i = 0; i < b.rows; ++i)
      if (b.weight[i] > 0) {
        EXPECT_TRUE(seen.insert(b.row_id[i]).second) << "row " << b.row_id[i] << " twice";
      }
  int64_t expect = 0;
  for (int64_t r = 0; r < 8000; ++r) expect += o.split_spec.of(c.split_key(r)) == Split::kTrain;
  EXPECT_EQ(int64_t(seen.size()), expect);
  for (int64_t r : seen) EXPECT_EQ(o.split_spec.of(c.split_key(r)), Split::kTrain);
}

TEST(ConcatSource, ATrialFileWithoutAPropensityColumnGetsItsDesignProbabilities) {
  MemorySource t0 = test::memory_source(test::small_config(1000, 0), 256);
  Meta m = t0.meta();
  m.has_propensity = false;
  Table rows = t0.table();
  rows.with_propensity = false;
  rows.propensity.clear();
  std::vector<std::unique_ptr<RowSource>> parts;
  parts.push_back(std::make_unique<MemorySource>(m, rows, 256));
  parts.push_back(log_file(500));
  ConcatSource c(std::move(parts), "train.data");
  EXPECT_TRUE(c.meta().has_propensity);
  Table t;
  c.read(0, 1500, t);
  for (int64_t i = 0; i < 1000; ++i)
    EXPECT_EQ(t.propensity[i], float(m.rct_propensity[size_t(t.treatment[i])])) << i;
  Table log_rows;
  c.read(1000, 500, log_rows);
  Table own;
  log_file(500)->read(0, 500, own);
  EXPECT_EQ(log_rows.propensity, own.propensity);
}

std::string error_of(std::vector<std::unique_ptr<RowSource>> parts) {
  try {
    ConcatSource c(std::move(parts), "train.data");
  } catch (const DataError& e) {
    return e.what();
  }
  return "no error";
}

TEST(ConcatSource, FilesThatDoNotFitTogetherAreRefusedByName) {
  {  // other features
    std::vector<std::unique_ptr<RowSource>> p;
    p.push_back(trial());
    p.push_back(std::make_unique<MemorySource>(test::memory_source(test::small_config(0, 100, 7), 64)));
    EXPECT_NE(error_of(std::move(p)).find("the files must have the same features in the same order, but feature 4 is "
                                          "'b4' in one and 'x4' in the other"),
              std::string::npos);
  }
  {  // other arms
    std::vector<std::unique_ptr<RowSource>> p;
    p.push_back(trial());
    p.push_back(std::make_unique<MemorySource>(test::memory_source(test::small_config(0, 100, 6, 4), 64)));
    EXPECT_NE(error_of(std::move(p)).find("the same arms in the same order"), std::string::npos);
  }
  {  // two trials with different designs
    GeneratorConfig g = test::small_config(500, 0);
    g.rct_propensity = {0.5, 0.25, 0.25};
    std::vector<std::unique_ptr<RowSource>> p;
    p.push_back(trial());
    p.push_back(std::make_unique<MemorySource>(test::memory_source(g, 64)));
    const std::string e = error_of(std::move(p));
    EXPECT_NE(e.find("were randomised with arm propensities"), std::string::npos) << e;
    EXPECT_NE(e.find("[0.5, 0.25, 0.25]"), std::string::npos) << e;
  }
}

TEST(Split, HeldOutIsEveryRowOutsideTheTrainSplit) {
  data::SplitSpec spec;
  spec.train = 0.7, spec.validation = 0.2, spec.seed = 3;
  int64_t held = 0;
  for (int64_t key = 0; key < 20000; ++key) {
    const data::Split s = spec.of(key);
    EXPECT_EQ(spec.contains(data::Split::kHeldOut, key), s != data::Split::kTrain);
    EXPECT_TRUE(spec.contains(data::Split::kAll, key));
    EXPECT_EQ(spec.contains(data::Split::kTest, key), s == data::Split::kTest);
    held += spec.contains(data::Split::kHeldOut, key);
  }
  EXPECT_NEAR(double(held) / 20000, spec.fraction(data::Split::kHeldOut), 0.015);
  EXPECT_EQ(data::parse_split("held_out"), data::Split::kHeldOut);
  EXPECT_EQ(data::to_string(data::Split::kHeldOut), "held_out");
  EXPECT_THROW(data::parse_split("heldout"), ConfigError);
}

TEST(Split, AHeldOutFileIsReadWholeAndATrainingFileInItsHeldOutSplit) {
  const std::string a = test::temp_path("split_a.h5"), b = test::temp_path("split_b.h5"),
                    link = test::temp_path("split_link.h5");
  std::ofstream(a) << "x";
  std::ofstream(b) << "y";
  std::remove(link.c_str());
  ASSERT_EQ(::symlink(a.c_str(), link.c_str()), 0);
  EXPECT_TRUE(same_file(a, link)) << "a symbolic link names the same file";
  EXPECT_TRUE(same_file(a, ::testing::TempDir() + "/./dfcl_split_a.h5"));
  EXPECT_FALSE(same_file(a, b));
  EXPECT_FALSE(same_file("no_such_1.h5", "no_such_2.h5"));
  EXPECT_EQ(default_split({b}, {a}, Split::kTest), Split::kAll);
  EXPECT_EQ(default_split({link}, {a, b}, Split::kTest), Split::kTest);
  EXPECT_EQ(default_split({b}, {}, Split::kValidation), Split::kAll);
  EXPECT_DOUBLE_EQ((SplitSpec{0.7, 0.2, 0}).fraction(Split::kTest), 1 - 0.7 - 0.2);
  EXPECT_EQ(to_string(parse_split("val")), "validation");
}

}  // namespace
}  // namespace dfcl::data
