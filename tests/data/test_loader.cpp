// \brief Loader: shard coverage, equal batch counts, determinism, splits, filters, bounded buffers.
#include <gtest/gtest.h>  // for TEST

#include <map>  // for std::map

#include "core/error.h"    // for ConfigError, DataError
#include "data/loader.h"   // for Loader
#include "fixtures.h"

using namespace dfcl;
using data::Loader;
using data::LoaderOptions;
using data::Remainder;

namespace {
// Row ids with weight 1 seen by one shard in one epoch; also counts batches.
std::vector<int64_t> epoch_rows(data::RowSource& src, LoaderOptions o, int64_t epoch, int64_t* batches = nullptr) {
  Loader l(src, o);
  l.start_epoch(epoch);
  data::Table b;
  std::vector<int64_t> rows;
  int64_t n = 0;
  while (l.next(b)) {
    ++n;
    EXPECT_EQ(b.rows, o.batch_size);
    for (int64_t i = 0; i < b.rows; ++i)
      if (b.weight[i] == 1.f) rows.push_back(b.row_id[i]);
  }
  EXPECT_EQ(n, l.batches_per_epoch());
  if (batches) *batches = n;
  return rows;
}
}  // namespace

TEST(Loader, EveryRowExactlyOnceAcrossShards) {
  auto src = test::memory_source(test::small_config(3001, 4002), /*chunk_rows=*/333);
  for (int world : {1, 2, 3, 4, 7}) {
    for (bool shuffle : {false, true}) {
      std::vector<int> seen(src.meta().num_rows, 0);
      std::vector<int64_t> counts;
      for (int r = 0; r < world; ++r) {
        LoaderOptions o;
        o.batch_size = 64, o.rank = r, o.world = world, o.shuffle = shuffle, o.shuffle_buffer = 500, o.seed = 9;
        o.remainder = Remainder::kPad;
        int64_t nb = 0;
        for (int64_t id : epoch_rows(src, o, 3, &nb)) seen[id] += 1;
        counts.push_back(nb);
      }
      for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], 1) << "row " << i << " world " << world;
      for (auto c : counts) EXPECT_EQ(c, counts[0]) << "world " << world;
    }
  }
}

TEST(Loader, EqualBatchCountsUnderFiltersAndDropLast) {
  auto src = test::memory_source(test::small_config(2000, 6000), 256);
  for (auto rem : {Remainder::kDropLast, Remainder::kPad}) {
    for (auto filter : {data::SourceFilter::kAll, data::SourceFilter::kRct, data::SourceFilter::kObservational}) {
      std::vector<int64_t> counts;
      const int world = 3;
      for (int r = 0; r < world; ++r) {
        LoaderOptions o;
        o.batch_size = 50, o.rank = r, o.world = world, o.split = data::Split::kTrain, o.source = filter, o.remainder = rem;
        int64_t nb = 0;
        auto rows = epoch_rows(src, o, 0, &nb);
        counts.push_back(nb);
        for (int64_t id : rows) {
          ASSERT_EQ(o.split_spec.of(id), data::Split::kTrain);
          if (filter == data::SourceFilter::kRct) {
            ASSERT_LT(id, 2000);
          }
          if (filter == data::SourceFilter::kObservational) {
            ASSERT_GE(id, 2000);
          }
        }
        Loader l(src, o);
        // Under drop_last the rows left out are reported, never silently lost.
        EXPECT_EQ(int64_t(rows.size()) + l.rows_left_out_per_epoch(), l.shard_rows()[r]);
      }
      for (auto c : counts) EXPECT_EQ(c, counts[0]);
      EXPECT_GT(counts[0], 0);
    }
  }
}

TEST(Loader, DeterministicForSeedAndEpoch) {
  auto src = test::memory_source(test::small_config(1000, 3000), 128);
  LoaderOptions o;
  o.batch_size = 32, o.rank = 1, o.world = 2, o.seed = 11, o.shuffle_buffer = 256;
  auto a = epoch_rows(src, o, 0), b = epoch_rows(src, o, 0), c = epoch_rows(src, o, 1);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  o.seed = 12;
  EXPECT_NE(a, epoch_rows(src, o, 0));
  // Shuffled order, same rows: an epoch is a permutation of the shard's kept rows.
  o.shuffle = false;
  auto plain = epoch_rows(src, o, 0);
  for (size_t i = 1; i < plain.size(); ++i) ASSERT_EQ(plain[i], plain[i - 1] + 1);
}

TEST(Loader, SplitIsStableAndHasTheConfiguredFractions) {
  data::SplitSpec s;
  s.train = 0.7, s.validation = 0.2, s.seed = 3;
  std::map<data::Split, int64_t> n;
  const int64_t N = 200000;
  for (int64_t i = 0; i < N; ++i) n[s.of(i)]++;
  EXPECT_NEAR(double(n[data::Split::kTrain]) / N, 0.7, 0.005);
  EXPECT_NEAR(double(n[data::Split::kValidation]) / N, 0.2, 0.005);
  EXPECT_NEAR(double(n[data::Split::kTest]) / N, 0.1, 0.005);
  data::SplitSpec s2 = s;
  EXPECT_EQ(s.of(12345), s2.of(12345));
}

TEST(Loader, ClearErrorsForImpossiblePlans) {
  auto src = test::memory_source(test::small_config(50, 50), 32);
  LoaderOptions o;
  o.batch_size = 80, o.world = 2;
  try {
    Loader l(src, o);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("fewer than a batch (80 rows per rank)"), std::string::npos) << e.what();
  }
  o.batch_size = 0;
  EXPECT_THROW(Loader(src, o), ConfigError);
  o.batch_size = 8, o.rank = 2;
  EXPECT_THROW(Loader(src, o), ConfigError);
}

TEST(Loader, BufferBytesDoNotGrowWithRows) {
  // The same options over 4x more rows hold the same buffers.
  auto small = test::memory_source(test::small_config(0, 20000), 1000);
  auto large = test::memory_source(test::small_config(0, 80000), 1000);
  LoaderOptions o;
  o.batch_size = 100, o.shuffle_buffer = 2000;
  Loader a(small, o), b(large, o);
  data::Table t;
  while (a.next(t)) {
  }
  while (b.next(t)) {
  }
  EXPECT_EQ(a.peak_buffer_bytes(), b.peak_buffer_bytes());
  EXPECT_LT(a.peak_buffer_bytes(), 4000 * 100);  // (buffer + chunk + batch) rows x ~80 bytes
}

namespace {
// A source that fails on the read covering `bad_row`, like a corrupt chunk would.
class FailingSource final : public data::RowSource {
 public:
  FailingSource(data::MemorySource& inner, int64_t bad_row) : inner_(inner), bad_row_(bad_row) {}
  const data::Meta& meta() const override { return inner_.meta(); }
  int64_t chunk_rows() const override { return inner_.chunk_rows(); }
  void read(int64_t begin, int64_t count, data::Table& out) override {
    if (begin <= bad_row_ && bad_row_ < begin + count) throw DataError("failing.h5: field cost, row " + std::to_string(bad_row_));
    inner_.read(begin, count, out);
  }
  void read_source(int64_t begin, int64_t count, std::vector<uint8_t>& out) override { inner_.read_source(begin, count, out); }
  std::string name() const override { return "failing.h5"; }

 private:
  data::MemorySource& inner_;
  int64_t bad_row_;
};
}  // namespace

TEST(Loader, PrefetchGivesTheSameBatchesAsSynchronousReads) {
  auto src = test::memory_source(test::small_config(3000, 9000), 500);
  for (bool shuffle : {false, true}) {
    LoaderOptions o;
    o.batch_size = 128, o.rank = 1, o.world = 3, o.seed = 4, o.shuffle = shuffle, o.shuffle_buffer = 700;
    o.split = data::Split::kTrain;
    o.prefetch = true;
    auto a = epoch_rows(src, o, 2);
    o.prefetch = false;
    auto b = epoch_rows(src, o, 2);
    EXPECT_EQ(a, b);
    EXPECT_FALSE(a.empty());
  }
}

TEST(Loader, PrefetchErrorsReachTheConsumerAndStoppingMidEpochDoesNotHang) {
  auto mem = test::memory_source(test::small_config(0, 5000), 250);
  FailingSource bad(mem, 3210);
  LoaderOptions o;
  o.batch_size = 100, o.shuffle = false, o.prefetch = true;
  Loader l(bad, o);
  data::Table b;
  try {
    while (l.next(b)) {
    }
    FAIL() << "expected the worker's DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("failing.h5: field cost, row 3210"), std::string::npos) << e.what();
  }
  // A loader abandoned after one batch (its worker blocked on a full slot) shuts down cleanly.
  for (int k = 0; k < 20; ++k) {
    Loader early(mem, o);
    ASSERT_TRUE(early.next(b));
  }
}
