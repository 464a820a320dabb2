// \brief Tests of the CSV reader and `dfcl import`: Hillstrom end to end, every bad-input message, one-hot, skip, presets.
#include <gtest/gtest.h>  // for TEST, EXPECT_*

#include <cmath>       // for std::abs, std::isnan
#include <fstream>     // for std::ofstream
#include <functional>  // for std::function
#include <string>      // for std::string
#include <sys/stat.h>  // for stat, mkdir
#include <vector>      // for std::vector

#include "core/config.h"      // for Config
#include "core/error.h"       // for DataError, ConfigError
#include "data/csv.h"         // for CsvReader, trim_field, show_field, parse_field
#include "data/h5_dataset.h"  // for H5Reader, WriteOptions
#include "data/import.h"      // for import_csv

#ifndef DFCL_SHARED_DIR
#define DFCL_SHARED_DIR "../shared"
#endif

namespace dfcl::data {
namespace {

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// A fresh directory per test, under gtest's temp dir.
std::string test_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = ::testing::TempDir() + "dfcl_import_" + info->test_suite_name() + "_" + info->name();
  ::mkdir(dir.c_str(), 0755);
  return dir;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

WriteOptions small_chunks(int64_t rows = 3) {
  WriteOptions o;
  o.chunk_rows = rows;
  o.threads = 1;
  return o;
}

// `body` is the rest of the import section (indented by two spaces); input/output point into `dir`.
Config import_config(const std::string& dir, const std::string& body, const std::string& csv = "t.csv") {
  std::string yaml = "import:\n  input: " + dir + "/" + csv + "\n  output: " + dir + "/t.h5\n" + body;
  return Config::from_string(yaml, "test.yaml").sub("import");
}

const char* kTinyBody =
    "  treatment: {column: arm, arms: [ctrl, email]}\n"
    "  revenue: {column: rev}\n"
    "  cost: {column: cost}\n"
    "  features:\n"
    "    - {column: x}\n"
    "    - {column: region, type: categorical}\n";

const char* kTinyHeader = "x,region,arm,rev,cost\n";

// Runs `fn`, expects E, and checks that its message holds every piece of `parts`.
template <class E>
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected an error containing '" << parts.front() << "'";
  } catch (const E& e) {
    std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "message lacks '" << p << "':\n  " << msg;
  }
}

Table read_all(const std::string& path, Meta& meta) {
  H5Reader reader(path);
  meta = reader.meta();
  Table t;
  reader.read(0, meta.num_rows, t);
  return t;
}

// ---- CsvReader ------------------------------------------------------------------------------

TEST(CsvReader, QuotesLineNumbersAndCrlf) {
  const std::string dir = test_dir();
  write_file(dir + "/q.csv", "\xEF\xBB\xBF" "a,b,c\r\n1,\"x, y\",\"say \"\"hi\"\"\"\r\n\r\n2,\"two\nlines\",z\r\n3,,\r\n");
  CsvReader csv(dir + "/q.csv");
  ASSERT_EQ(csv.header(), (std::vector<std::string>{"a", "b", "c"}));
  CsvRecord r;
  ASSERT_TRUE(csv.next(r));
  EXPECT_EQ(r.line, 2);
  EXPECT_EQ(r.row, 1);
  EXPECT_EQ(r.fields, (std::vector<std::string>{"1", "x, y", "say \"hi\""}));
  ASSERT_TRUE(csv.next(r));  // the empty line 3 is skipped
  EXPECT_EQ(r.line, 4);
  EXPECT_EQ(r.row, 2);
  EXPECT_EQ(r.fields, (std::vector<std::string>{"2", "two\nlines", "z"}));
  ASSERT_TRUE(csv.next(r));
  EXPECT_EQ(r.line, 6);
  EXPECT_EQ(r.fields, (std::vector<std::string>{"3", "", ""}));
  EXPECT_FALSE(csv.next(r));
  EXPECT_EQ(csv.bytes_read(), csv.file_bytes());
}

TEST(CsvReader, WrongFieldCountNamesFileLineAndCounts) {
  const std::string dir = test_dir();
  write_file(dir + "/w.csv", "a,b,c\n1,2,3\n4,5\n");
  CsvReader csv(dir + "/w.csv");
  CsvRecord r;
  ASSERT_TRUE(csv.next(r));
  expect_error<DataError>([&] { csv.next(r); }, {"w.csv:3", "row 2", "2 fields", "header has 3"});
}

TEST(CsvReader, UnterminatedQuoteAndTabDelimiter) {
  const std::string dir = test_dir();
  write_file(dir + "/u.csv", "a,b\n1,\"open\n2,3\n");
  CsvReader csv(dir + "/u.csv");
  CsvRecord r;
  expect_error<DataError>([&] { csv.next(r); }, {"u.csv:2", "never closed"});

  write_file(dir + "/t.tsv", "a\tb\n1,5\t\"x\ty\"\n");
  CsvOptions o;
  o.delimiter = '\t';
  CsvReader tsv(dir + "/t.tsv", o);
  ASSERT_TRUE(tsv.next(r));
  EXPECT_EQ(r.fields, (std::vector<std::string>{"1,5", "x\ty"}));
  EXPECT_EQ(tsv.column("b"), 1);
  expect_error<DataError>([&] { tsv.require_column("c", "import.revenue.column"); },
                          {"t.tsv", "import.revenue.column", "'c'", "'a', 'b'"});
}

// ---- Hillstrom end to end -------------------------------------------------------------------

// The field helpers that dfcl import and dfcl abtest share.
TEST(CsvFields, TrimShowAndParse) {
  EXPECT_EQ(data::trim_field(" \t 1.5 \t"), "1.5");
  EXPECT_EQ(data::trim_field("   "), "");
  EXPECT_EQ(data::show_field("abc"), "'abc'");
  EXPECT_EQ(data::show_field(std::string(70, 'x')), "'" + std::string(57, 'x') + "...'");
  double v = 0;
  EXPECT_EQ(data::parse_field("+2.5e3", v), std::errc());
  EXPECT_EQ(v, 2500.0);
  EXPECT_EQ(data::parse_field("-0.25", v), std::errc());
  EXPECT_EQ(v, -0.25);
  EXPECT_EQ(data::parse_field("nan", v), std::errc());
  EXPECT_TRUE(std::isnan(v));
  EXPECT_EQ(data::parse_field("1e999", v), std::errc::result_out_of_range);
  EXPECT_EQ(data::parse_field("12abc", v), std::errc::invalid_argument);
  EXPECT_EQ(data::parse_field("+-1", v), std::errc::invalid_argument);
  EXPECT_EQ(data::parse_field("", v), std::errc::invalid_argument);
}

TEST(Import, Hillstrom) {
  const std::string input = std::string(DFCL_SHARED_DIR) + "/data/hillstrom.csv";
  if (!exists(input)) GTEST_SKIP() << input << " is absent (the shared data folder holds it); skipping the Hillstrom import";
  const std::string dir = test_dir();
  const std::string output = dir + "/hillstrom.h5";
  Config cfg = Config::from_string("import:\n  input: " + input + "\n  output: " + output + "\n  preset: hillstrom\n",
                                   "test.yaml").sub("import");
  WriteOptions o;
  o.chunk_rows = 4096;  // 64,000 rows = 15 full chunks + a tail
  o.threads = 2;
  ImportSummary s = import_csv(cfg, o, false);
  EXPECT_EQ(s.rows_read, 64000);
  EXPECT_EQ(s.rows_written, 64000);
  EXPECT_EQ(s.rows_skipped, 0);
  EXPECT_EQ(s.arm_rows, (std::vector<int64_t>{21306, 21307, 21387}));

  Meta meta;
  Table t = read_all(output, meta);
  ASSERT_EQ(meta.num_rows, 64000);
  ASSERT_EQ(meta.arm_names, (std::vector<std::string>{"No E-Mail", "Mens E-Mail", "Womens E-Mail"}));
  // 5 numeric + history_segment (7) + zip_code (3) + channel (3).
  ASSERT_EQ(meta.num_features, 18);
  EXPECT_EQ(meta.feature_names[0], "recency");
  EXPECT_EQ(meta.feature_names[5], "history_segment=1) $0 - $100");
  EXPECT_EQ(meta.feature_names[11], "history_segment=7) $1,000 +");
  EXPECT_EQ(meta.feature_names[12], "zip_code=Rural");
  EXPECT_EQ(meta.feature_names[17], "channel=Web");
  EXPECT_FALSE(meta.has_propensity);
  EXPECT_EQ(meta.origin, "import hillstrom.csv preset=hillstrom");

  std::vector<int64_t> n(3, 0);
  std::vector<double> spend(3, 0.0), cost(3, 0.0);
  for (int64_t i = 0; i < t.rows; ++i) {
    int a = t.treatment[i];
    ++n[a];
    spend[a] += t.revenue[i];
    cost[a] += t.cost[i];
    EXPECT_EQ(t.source[i], 0);
    // Every categorical group is one-hot.
    const float* x = &t.features[i * 18];
    for (auto [b, e] : {std::pair{5, 12}, std::pair{12, 15}, std::pair{15, 18}}) {
      float sum = 0;
      for (int k = b; k < e; ++k) sum += x[k];
      ASSERT_EQ(sum, 1.f) << "row " << i;
    }
  }
  EXPECT_EQ(n, (std::vector<int64_t>{21306, 21307, 21387}));
  const double want[3] = {0.6528, 1.4226, 1.0772}, want_cost[3] = {0.0, 0.1, 0.1};
  for (int a = 0; a < 3; ++a) {
    EXPECT_NEAR(spend[a] / n[a], want[a], 1e-4) << meta.arm_names[a];
    EXPECT_NEAR(cost[a] / n[a], want_cost[a], 1e-6) << meta.arm_names[a];
    EXPECT_NEAR(s.arm_mean_revenue[a], spend[a] / n[a], 1e-9);
    EXPECT_NEAR(meta.rct_propensity[a], n[a] / 64000.0, 1e-12);
  }
  // First data line: 10,2) $100 - $200,142.44,1,0,Surburban,0,Phone,Womens E-Mail,0,0,0
  EXPECT_EQ(t.treatment[0], 2);
  EXPECT_FLOAT_EQ(t.features[0], 10.f);
  EXPECT_FLOAT_EQ(t.features[1], 142.44f);
  EXPECT_EQ(t.features[6], 1.f);   // history_segment=2) $100 - $200
  EXPECT_EQ(t.features[13], 1.f);  // zip_code=Surburban
  EXPECT_EQ(t.features[16], 1.f);  // channel=Phone

  auto j = to_json(s);
  EXPECT_EQ(j["rows_written"], 64000);
  EXPECT_EQ(j["arms"][1]["rows"], 21307);
}

TEST(Import, HillstromConversionRevenue) {
  const std::string input = std::string(DFCL_SHARED_DIR) + "/data/hillstrom.csv";
  if (!exists(input)) GTEST_SKIP() << input << " is absent (the shared data folder holds it)";
  const std::string dir = test_dir();
  Config cfg = Config::from_string("import:\n  input: " + input + "\n  output: " + dir +
                                       "/h.h5\n  preset: hillstrom\n  revenue: {column: conversion}\n"
                                       "  cost: {per_arm: [0, 0.2, 0.3]}\n",
                                   "test.yaml").sub("import");
  ImportSummary s = import_csv(cfg, WriteOptions{}, false);
  EXPECT_EQ(s.rows_written, 64000);
  for (int a = 0; a < 3; ++a) {  // conversion rates of 0.6% to 1.3%
    EXPECT_GT(s.arm_mean_revenue[a], 0.0);
    EXPECT_LT(s.arm_mean_revenue[a], 0.02);
  }
  EXPECT_NEAR(s.arm_mean_cost[2], 0.3, 1e-6);
}

// ---- bad input: every message names the file, the line and the column ---------------------------

class ImportBad : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test_dir(); }
  void run(const std::string& csv_text, const std::vector<std::string>& parts, const std::string& body = kTinyBody) {
    write_file(dir_ + "/t.csv", csv_text);
    Config cfg = import_config(dir_, body);
    expect_error<DataError>([&] { import_csv(cfg, small_chunks(), false); }, parts);
    EXPECT_FALSE(exists(dir_ + "/t.h5")) << "a failed import must not leave an output file";
    EXPECT_FALSE(exists(dir_ + "/t.h5.partial")) << "a failed import must not leave a partial file";
  }
  std::string dir_;
};

TEST_F(ImportBad, WrongFieldCount) {
  run(std::string(kTinyHeader) + "1,north,ctrl,0,0\n2,south,email,1,0.1,extra\n",
      {"t.csv:3", "row 2", "6 fields", "header has 5", "on_bad_row: skip"});
}

// A Latin-1 byte in a categorical value (it would become a feature name) or in an arm label: the row and column, the
// byte, and the fix; no output file (issue 14, item 4).
TEST_F(ImportBad, Latin1CategoryIsNotUtf8) {
  run(std::string(kTinyHeader) + "1,north,ctrl,0,0\n2,s\xE9" "d,email,1,0.1\n",
      {"t.csv:3", "row 2", "column 'region'", "'s\\xE9d'", "byte 0xE9 at position 1", "not UTF-8", "iconv"});
}

TEST_F(ImportBad, Latin1ArmLabelIsNotUtf8) {
  run(std::string(kTinyHeader) + "1,north,ctrl,0,0\n2,south,em\xE4il,1,0.1\n",
      {"t.csv:3", "column 'arm'", "byte 0xE4", "not UTF-8"});
}

TEST(Csv, Utf8CheckAndQuotedFields) {
  EXPECT_EQ(data::invalid_utf8_at("plain"), std::string_view::npos);
  EXPECT_EQ(data::invalid_utf8_at("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), std::string_view::npos);  // é € 😀
  EXPECT_EQ(data::invalid_utf8_at("ab\xE9"), 2u);              // Latin-1 é
  EXPECT_EQ(data::invalid_utf8_at("\xC0\xAF"), 0u);           // overlong '/'
  EXPECT_EQ(data::invalid_utf8_at("x\xED\xA0\x80"), 1u);      // a surrogate
  EXPECT_EQ(data::invalid_utf8_at("\xF4\x90\x80\x80"), 0u);  // beyond U+10FFFF
  EXPECT_EQ(data::invalid_utf8_at("\xE2\x82"), 0u);           // cut short
  EXPECT_EQ(data::show_field(std::string_view("a\0b\xE9", 4)), "'a\\x00b\\xE9'");
  EXPECT_EQ(data::show_field("caf\xC3\xA9"), "'caf\xC3\xA9'");
}

// A runaway header line (10 MB without a line break) is not echoed whole into the error (issue 14, item 11).
TEST_F(ImportBad, HugeHeaderIsCutInTheMessage) {
  const std::string csv = std::string(2000000, 'h') + ",region\n1,north\n";
  write_file(dir_ + "/t.csv", csv);
  Config cfg = import_config(dir_, kTinyBody);
  try {
    import_csv(cfg, small_chunks(), false);
    FAIL() << "imported a file without the configured columns";
  } catch (const DataError& e) {
    const std::string m = e.what();
    EXPECT_LT(m.size(), 1000u);
    EXPECT_NE(m.find("but the header has no such column (it has 'hhhh"), std::string::npos) << m.substr(0, 300);
    EXPECT_NE(m.find("...', 'region')"), std::string::npos) << m.substr(0, 300);
  }
}

TEST_F(ImportBad, NotANumber) {
  run(std::string(kTinyHeader) + "1,north,ctrl,0,0\n2,south,email,1,0.1\n3,north,email,abc,0.1\n",
      {"t.csv:4", "row 3", "column 'rev'", "'abc' is not a number", "on_bad_row: skip"});
}

TEST_F(ImportBad, NanFeature) {
  run(std::string(kTinyHeader) + "1,north,ctrl,0,0\nnan,south,email,1,0.1\n",
      {"t.csv:3", "column 'x'", "'nan'", "not a finite number"});
}

TEST_F(ImportBad, InfRevenue) {
  run(std::string(kTinyHeader) + "1,north,ctrl,0,0\n2,south,email,inf,0.1\n",
      {"t.csv:3", "column 'rev'", "'inf'", "not a finite number"});
}

TEST_F(ImportBad, EmptyValue) {
  run(std::string(kTinyHeader) + "1,north,ctrl,0,0\n,south,email,1,0.1\n", {"t.csv:3", "column 'x'", "empty"});
}

TEST_F(ImportBad, NegativeCost) {
  run(std::string(kTinyHeader) + "1,north,ctrl,0,0\n2,south,email,1,-0.5\n",
      {"t.csv:3", "column 'cost'", "'-0.5'", "negative cost", ">= 0"});
}

TEST_F(ImportBad, UnknownTreatmentLabel) {
  run(std::string(kTinyHeader) + "1,north,ctrl,0,0\n2,south,sms,1,0.1\n",
      {"t.csv:3", "column 'arm'", "'sms'", "'ctrl', 'email'", "import.treatment.arms"});
}

TEST_F(ImportBad, RctArmWithNoRows) {
  run(std::string(kTinyHeader) + "1,north,ctrl,0,0\n2,south,ctrl,1,0\n",
      {"t.csv", "column 'arm'", "arm 1 ('email') has no rows", "lines 2..3"});
}

TEST_F(ImportBad, UnknownExplicitCategory) {
  run(std::string(kTinyHeader) + "1,north,ctrl,0,0\n2,west,email,1,0.1\n",
      {"t.csv:3", "column 'region'", "'west'", "import.features.1.categories"},
      "  treatment: {column: arm, arms: [ctrl, email]}\n  revenue: {column: rev}\n  cost: {column: cost}\n"
      "  features:\n    - {column: x}\n    - {column: region, type: categorical, categories: [south, north]}\n");
}

TEST_F(ImportBad, MissingColumn) {
  run(std::string(kTinyHeader) + "1,north,ctrl,0,0\n",
      {"t.csv", "import.revenue.column", "'spend'", "'x', 'region', 'arm', 'rev', 'cost'"},
      "  treatment: {column: arm, arms: [ctrl, email]}\n  revenue: {column: spend}\n  cost: {column: cost}\n"
      "  features: [{column: x}]\n");
}

TEST(ImportConfig, UnknownKeys) {
  const std::string dir = test_dir();
  write_file(dir + "/t.csv", std::string(kTinyHeader) + "1,north,ctrl,0,0\n2,south,email,1,0.1\n");
  expect_error<ConfigError>(
      [&] { import_csv(import_config(dir, std::string(kTinyBody) + "  revenu: {column: rev}\n"), small_chunks(), false); },
      {"unknown config key 'import.revenu.column'", "test.yaml:"});
  expect_error<ConfigError>(
      [&] {
        import_csv(import_config(dir, "  treatment: {column: arm, arms: [ctrl, email]}\n  revenue: {column: rev}\n"
                                      "  cost: {column: cost}\n  features:\n    - {column: x, typ: numeric}\n"),
                   small_chunks(), false);
      },
      {"unknown config key 'import.features.0.typ'", "did you mean 'import.features.0.type'"});
  expect_error<ConfigError>(
      [&] { import_csv(import_config(dir, std::string(kTinyBody) + "  preset: movielens\n"), small_chunks(), false); },
      {"import.preset", "movielens", "hillstrom or criteo"});
  expect_error<ConfigError>(
      [&] { import_csv(import_config(dir, std::string(kTinyBody) + "  on_bad_row: ignore\n"), small_chunks(), false); },
      {"import.on_bad_row", "'ignore'"});
  expect_error<ConfigError>(
      [&] {
        import_csv(import_config(dir, "  treatment: {column: arm, arms: [ctrl, email]}\n  revenue: {column: rev}\n"
                                      "  cost: {column: cost}\n  features: [{column: rev}]\n"),
                   small_chunks(), false);
      },
      {"'rev'", "import.revenue.column", "import.features.0"});
  EXPECT_FALSE(exists(dir + "/t.h5"));
}

// ---- behaviour ------------------------------------------------------------------------------

TEST(Import, SkipBadRowsCountsAndWritesTheRest) {
  const std::string dir = test_dir();
  write_file(dir + "/t.csv", std::string(kTinyHeader) +
                                 "1,north,ctrl,0,0\n"
                                 "2,south,email,abc,0.1\n"   // line 3: not a number
                                 "3,north,email,2,0.1\n"
                                 "4,north,sms,1,0.1\n"       // line 5: unknown label
                                 "5,south,ctrl,1\n"          // line 6: 4 fields
                                 "6,east,email,4,0.1\n"
                                 "7,south,ctrl,0.5,0\n");
  ImportSummary s = import_csv(import_config(dir, std::string(kTinyBody) + "  on_bad_row: skip\n"), small_chunks(2), false);
  EXPECT_EQ(s.rows_read, 7);
  EXPECT_EQ(s.rows_skipped, 3);
  EXPECT_EQ(s.rows_written, 4);
  ASSERT_EQ(s.skip_reasons.size(), 3u);
  EXPECT_NE(s.skip_reasons[0].find("t.csv:3 (row 2), column 'rev'"), std::string::npos) << s.skip_reasons[0];
  EXPECT_NE(s.skip_reasons[1].find("t.csv:5 (row 4), column 'arm'"), std::string::npos) << s.skip_reasons[1];
  EXPECT_NE(s.skip_reasons[2].find("t.csv:6 (row 5)"), std::string::npos) << s.skip_reasons[2];
  EXPECT_EQ(s.arm_rows, (std::vector<int64_t>{2, 2}));
  EXPECT_NEAR(s.arm_mean_revenue[1], 3.0, 1e-9);
  EXPECT_NEAR(s.rct_propensity[0], 0.5, 1e-12);
  EXPECT_EQ(to_json(s)["rows_skipped"], 3);

  Meta meta;
  Table t = read_all(dir + "/t.h5", meta);
  ASSERT_EQ(t.rows, 4);
  const float xs[4] = {1, 3, 6, 7};
  for (int i = 0; i < 4; ++i) EXPECT_EQ(t.features[i * meta.num_features], xs[i]);
  EXPECT_EQ(t.treatment, (std::vector<int32_t>{0, 1, 1, 0}));
  EXPECT_EQ(t.revenue, (std::vector<float>{0, 2, 4, 0.5f}));
}

TEST(Import, CategoricalOneHot) {
  const std::string dir = test_dir();
  write_file(dir + "/t.csv", std::string(kTinyHeader) +
                                 "1,north,ctrl,0,0\n2,south,email,1,0.1\n3,east,email,2,0.2\n4,north,ctrl,0,0\n5, south ,ctrl,0,0\n");
  ImportSummary s = import_csv(import_config(dir, kTinyBody), small_chunks(2), false);
  EXPECT_EQ(s.feature_names, (std::vector<std::string>{"x", "region=east", "region=north", "region=south"}));
  Meta meta;
  Table t = read_all(dir + "/t.h5", meta);
  EXPECT_EQ(meta.feature_names, s.feature_names);
  ASSERT_EQ(meta.num_features, 4);
  EXPECT_EQ(t.features, (std::vector<float>{1, 0, 1, 0,  //
                                            2, 0, 0, 1,  //
                                            3, 1, 0, 0,  //
                                            4, 0, 1, 0,  //
                                            5, 0, 0, 1}));
  EXPECT_EQ(t.cost, (std::vector<float>{0, 0.1f, 0.2f, 0, 0}));

  // Listed categories keep the listed order.
  write_file(dir + "/t.csv", std::string(kTinyHeader) + "1,north,ctrl,0,0\n2,south,email,1,0.1\n");
  s = import_csv(import_config(dir, "  treatment: {column: arm, arms: [ctrl, email]}\n  revenue: {column: rev}\n"
                                    "  cost: {column: cost}\n  features:\n    - {column: x}\n"
                                    "    - {column: region, type: categorical, categories: [south, west, north]}\n"),
                 small_chunks(), false);
  EXPECT_EQ(s.feature_names, (std::vector<std::string>{"x", "region=south", "region=west", "region=north"}));
  t = read_all(dir + "/t.h5", meta);
  EXPECT_EQ(t.features, (std::vector<float>{1, 0, 0, 1, 2, 1, 0, 0}));
}

TEST(Import, PerArmCost) {
  const std::string dir = test_dir();
  write_file(dir + "/t.csv", "x,arm,rev\n1,a,0\n2,b,1\n3,c,2\n4,b,3\n");
  const std::string body = "  treatment: {column: arm, arms: [a, b, c]}\n  revenue: {column: rev}\n"
                           "  cost: {per_arm: [0, 0.5, 2]}\n  features: [{column: x}]\n";
  ImportSummary s = import_csv(import_config(dir, body), small_chunks(), false);
  Meta meta;
  Table t = read_all(dir + "/t.h5", meta);
  EXPECT_EQ(t.cost, (std::vector<float>{0, 0.5f, 2, 0.5f}));
  EXPECT_EQ(s.arm_mean_cost, (std::vector<double>{0, 0.5, 2}));
  EXPECT_EQ(meta.arm_names, (std::vector<std::string>{"a", "b", "c"}));

  expect_error<ConfigError>(
      [&] {
        import_csv(import_config(dir, "  treatment: {column: arm, arms: [a, b, c]}\n  revenue: {column: rev}\n"
                                      "  cost: {per_arm: [0, -1, 2]}\n  features: [{column: x}]\n"),
                   small_chunks(), false);
      },
      {"import.cost.per_arm", "arm 1 ('b')", ">= 0"});
  expect_error<ConfigError>(
      [&] {
        import_csv(import_config(dir, "  treatment: {column: arm, arms: [a, b, c]}\n  revenue: {column: rev}\n"
                                      "  cost: {per_arm: [0, 1]}\n  features: [{column: x}]\n"),
                   small_chunks(), false);
      },
      {"import.cost.per_arm", "2 values", "3 arms"});
}

TEST(Import, QuotedFieldsWithEmbeddedDelimiter) {
  const std::string dir = test_dir();
  write_file(dir + "/t.csv",
             "x;region;arm;rev;cost\r\n"
             "\"1.5\";\"north; upper\";\"ctrl\";0;0\r\n"
             "2;\"say \"\"south\"\"\";email;\"3.25\";0.1\r\n"
             "3;\"north; upper\";email;1;0.1\r\n");
  ImportSummary s = import_csv(import_config(dir, std::string(kTinyBody) + "  delimiter: \";\"\n"), small_chunks(), false);
  EXPECT_EQ(s.rows_written, 3);
  EXPECT_EQ(s.feature_names, (std::vector<std::string>{"x", "region=north; upper", "region=say \"south\""}));
  Meta meta;
  Table t = read_all(dir + "/t.h5", meta);
  EXPECT_EQ(t.features, (std::vector<float>{1.5f, 1, 0, 2, 0, 1, 3, 1, 0}));
  EXPECT_EQ(t.revenue, (std::vector<float>{0, 3.25f, 1}));
}

TEST(Import, ObservationalWithPropensityColumn) {
  const std::string dir = test_dir();
  write_file(dir + "/t.csv", "x,arm,rev,p\n1,0,0,0.5\n2,1,1,0.25\n3,1,1,0.75\n");
  const std::string body = "  treatment: {column: arm, arms: [\"0\", \"1\"]}\n  revenue: {column: rev}\n"
                           "  cost: {per_arm: [0, 1]}\n  features: [{column: x}]\n  source: observational\n"
                           "  propensity_column: p\n";
  ImportSummary s = import_csv(import_config(dir, body), small_chunks(), false);
  EXPECT_TRUE(s.rct_propensity.empty());
  Meta meta;
  Table t = read_all(dir + "/t.h5", meta);
  EXPECT_TRUE(meta.has_propensity);
  EXPECT_EQ(meta.observational_rows, 3);
  EXPECT_EQ(t.source, (std::vector<uint8_t>{1, 1, 1}));
  EXPECT_EQ(t.propensity, (std::vector<float>{0.5f, 0.25f, 0.75f}));

  write_file(dir + "/t.csv", "x,arm,rev,p\n1,0,0,0.5\n2,1,1,1.5\n");
  expect_error<DataError>([&] { import_csv(import_config(dir, body), small_chunks(), false); },
                          {"t.csv:3", "column 'p'", "'1.5'", "(0, 1]"});
}

TEST(Import, ExplicitRctPropensity) {
  const std::string dir = test_dir();
  write_file(dir + "/t.csv", "x,arm,rev\n1,0,0\n2,1,1\n3,1,1\n");
  const std::string base = "  treatment: {column: arm, arms: [\"0\", \"1\"]}\n  revenue: {column: rev}\n"
                           "  cost: {per_arm: [0, 1]}\n  features: [{column: x}]\n";
  ImportSummary s = import_csv(import_config(dir, base + "  rct_propensity: [0.5, 0.5]\n"), small_chunks(), false);
  Meta meta;
  read_all(dir + "/t.h5", meta);
  EXPECT_EQ(meta.rct_propensity, (std::vector<double>{0.5, 0.5}));
  s = import_csv(import_config(dir, base), small_chunks(), false);
  EXPECT_NEAR(s.rct_propensity[1], 2.0 / 3.0, 1e-12);
  expect_error<ConfigError>(
      [&] { import_csv(import_config(dir, base + "  rct_propensity: [0.5, 0.6]\n"), small_chunks(), false); },
      {"import.rct_propensity", "sum to 1"});
  expect_error<ConfigError>(
      [&] { import_csv(import_config(dir, base + "  rct_propensity: uniform\n"), small_chunks(), false); },
      {"import.rct_propensity", "'uniform'", "empirical"});
}

TEST(Import, CriteoPreset) {
  const std::string dir = test_dir();
  std::string csv = "f0,f1,f2,f3,f4,f5,f6,f7,f8,f9,f10,f11,treatment,conversion,visit,exposure\n";
  for (int i = 0; i < 6; ++i) {
    for (int k = 0; k < 12; ++k) csv += std::to_string(i + k * 0.5) + ",";
    csv += std::to_string(i % 2) + "," + std::to_string(i == 3) + "," + std::to_string(i >= 2) + ",0\n";
  }
  write_file(dir + "/t.csv", csv);
  ImportSummary s = import_csv(import_config(dir, "  preset: criteo\n"), small_chunks(4), false);
  EXPECT_EQ(s.rows_written, 6);
  EXPECT_EQ(s.feature_names.size(), 12u);
  EXPECT_EQ(s.feature_names[11], "f11");
  EXPECT_EQ(s.arm_rows, (std::vector<int64_t>{3, 3}));
  Meta meta;
  Table t = read_all(dir + "/t.h5", meta);
  EXPECT_EQ(t.revenue, (std::vector<float>{0, 0, 0, 1, 0, 0}));
  EXPECT_EQ(t.cost, (std::vector<float>{0, 0, 1, 1, 1, 1}));
  EXPECT_FLOAT_EQ(t.features[4 * 12 + 2], 5.0f);
  EXPECT_EQ(meta.origin, "import t.csv preset=criteo");
}

}  // namespace
}  // namespace dfcl::data
