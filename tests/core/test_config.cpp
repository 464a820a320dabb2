// \brief Config: layering, typed reads, unknown keys, error messages.
#include <gtest/gtest.h>  // for TEST

#include <fstream>  // for std::ofstream

#include "core/config.h"  // for Config
#include "core/error.h"   // for ConfigError

using dfcl::Config;
using dfcl::ConfigError;

namespace {
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Config, TypedReadsDefaultsAndOverrides) {
  Config c = Config::from_string("train:\n  lr: 0.01\n  epochs: 3\n  names: [a, b]\n  on: true\n", "t.yaml");
  c.set("train.epochs=7");
  c.set("data.rows=1000000");
  c.set("train.tags=[x, y, z]");
  EXPECT_DOUBLE_EQ(c.get<double>("train.lr", 0), 0.01);
  EXPECT_EQ(c.get<int>("train.epochs", 0), 7);
  EXPECT_EQ(c.get<int64_t>("data.rows", 0), 1000000);
  EXPECT_EQ(c.get<int>("train.missing", 42), 42);
  EXPECT_TRUE(c.get<bool>("train.on", false));
  EXPECT_EQ(c.get<std::vector<std::string>>("train.names", {}), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.get<std::vector<std::string>>("train.tags", {}).size(), 3u);
  EXPECT_EQ(c.origin("train.epochs"), "--set");
  EXPECT_EQ(c.origin("train.lr"), "t.yaml:2");
  EXPECT_NO_THROW(c.check_all_used());
}

// --dump-config printed {} without -c (issue 14, item 11): the effective configuration is the given keys over the
// default of every key read while absent; the given value wins, numbers keep their shortest form, and in dump mode a
// required key shows as <required> instead of stopping the read.
TEST(Config, DumpEffectiveHasTheDefaultsOfEveryKeyRead) {
  Config c = Config::from_string("train:\n  epochs: 3\n", "t.yaml");
  EXPECT_EQ(c.get<int>("train.epochs", 10), 3);
  EXPECT_EQ(c.get<int64_t>("train.batch_size", 4096), 4096);
  EXPECT_DOUBLE_EQ(c.sub("optimizer").get<double>("lr", 0.1), 0.1);
  EXPECT_EQ(c.get<std::vector<double>>("train.split_fractions", {0.8, 0.1}).size(), 2u);
  EXPECT_THROW(c.require<std::string>("allocate.scores"), ConfigError);
  const std::string d = c.dump_effective();
  for (const char* want : {"epochs: 3", "batch_size: 4096", "optimizer:\n  lr: 0.1", "split_fractions: [0.8, 0.1]"})
    EXPECT_NE(d.find(want), std::string::npos) << want << " in\n" << d;
  EXPECT_EQ(d.find("epochs: 10"), std::string::npos) << d;
  EXPECT_EQ(d.find("allocate"), std::string::npos) << d;
  EXPECT_EQ(c.dump().find("batch_size"), std::string::npos);  // what a checkpoint stores: the given keys only
  c.set_dump_mode();
  EXPECT_EQ(c.require<std::string>("allocate.scores"), "");
  EXPECT_NE(c.dump_effective().find("allocate:\n  scores: <required>"), std::string::npos) << c.dump_effective();
}

TEST(Config, SubConfigReadsCountForParent) {
  Config c = Config::from_string("gen:\n  a: 1\n  b: 2\n");
  Config s = c.sub("gen");
  EXPECT_EQ(s.get<int>("a", 0), 1);
  EXPECT_THROW(c.check_all_used(), ConfigError);  // gen.b not read yet
  EXPECT_EQ(s.get<int>("b", 0), 2);
  EXPECT_NO_THROW(c.check_all_used());
}

TEST(Config, UnknownKeyNamesOriginAndSuggestion) {
  Config c = Config::from_string("train:\n  lr: 0.01\n  epohcs: 3\n", "run.yaml");
  c.get<double>("train.lr", 0);
  c.get<int>("train.epochs", 1);
  std::string m = message_of([&] { c.check_all_used(); });
  EXPECT_NE(m.find("unknown config key 'train.epohcs' (run.yaml:3)"), std::string::npos) << m;
  EXPECT_NE(m.find("did you mean 'train.epochs'"), std::string::npos) << m;
}

TEST(Config, BadValueTypeNamesKeyOriginAndType) {
  Config c = Config::from_string("train:\n  epochs: three\n  lr: [1, 2]\n", "run.yaml");
  std::string m = message_of([&] { c.get<int>("train.epochs", 1); });
  EXPECT_NE(m.find("'train.epochs' (run.yaml:2) = three is not an integer"), std::string::npos) << m;
  m = message_of([&] { c.get<double>("train.lr", 1); });
  EXPECT_NE(m.find("is not a number"), std::string::npos) << m;
  m = message_of([&] { c.get<std::vector<double>>("train.epochs", {}); });
  EXPECT_NE(m.find("is not a list of numbers"), std::string::npos) << m;
}

TEST(Config, RepeatedKeyIsAnErrorNamingBothLines) {
  const std::string m =
      message_of([] { Config::from_string("train:\n  epochs: 3\n  seed: 1\n  epochs: 8\n", "run.yaml"); });
  EXPECT_NE(m.find("config key 'train.epochs' appears twice (run.yaml:2 and run.yaml:4)"), std::string::npos) << m;
  // The same key in different sections is fine.
  EXPECT_NO_THROW(Config::from_string("a:\n  x: 1\nb:\n  x: 2\n", "ok.yaml"));
}

TEST(Config, RequireAndMalformedInput) {
  Config c;
  EXPECT_NE(message_of([&] { c.require<std::string>("import.input"); }).find("'import.input' is required"), std::string::npos);
  EXPECT_NE(message_of([&] { c.set("novalue"); }).find("expected key=value"), std::string::npos);
  EXPECT_NE(message_of([&] { Config::from_string("a: [1, 2", "bad.yaml"); }).find("bad.yaml:"), std::string::npos);
  EXPECT_NE(message_of([&] { Config::load("/nonexistent/x.yaml"); }).find("cannot read config file '/nonexistent/x.yaml'"),
            std::string::npos);
  EXPECT_NE(message_of([&] { Config::from_string("- 1\n- 2\n", "list.yaml"); }).find("top level must be a map"), std::string::npos);
}

TEST(Config, FileThenOverridesLayerInOrder) {
  std::string path = ::testing::TempDir() + "/layer.yaml";
  std::ofstream(path) << "a:\n  b: 1\n  c: 2\n";
  Config c = Config::load(path, {"a.b=10", "a.b=20"});
  EXPECT_EQ(c.get<int>("a.b", 0), 20);
  EXPECT_EQ(c.get<int>("a.c", 0), 2);
  EXPECT_EQ(c.origin("a.c"), path + ":3");
  EXPECT_THROW(c.set("a.b.c=1"), ConfigError);  // a.b is a value, not a section
}

// A YAML alias that refers to a node containing it makes the document a cycle: a ConfigError naming the key and line,
// not a stack overflow (issue 14, item 2). An alias to another section is fine.
TEST(Config, SelfReferentialAliasIsRefusedWithTheKey) {
  try {
    Config::from_string("train: &t {epochs: 1, extra: *t}\n", "self.yaml");
    FAIL() << "a cyclic config was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("self.yaml:1: config key 'train.extra'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Config::from_string("a: &x [1, *x]\n", "list.yaml"), ConfigError);
  const std::string path = ::testing::TempDir() + "dfcl_self.yaml";
  { std::ofstream(path) << "model:\n  trunk: [8]\n  deep: &d {x: {y: *d}}\n"; }
  EXPECT_THROW(Config::load(path), ConfigError);
  const Config ok = Config::from_string("base: &b {lr: 0.5}\noptimizer: *b\n", "ok.yaml");
  EXPECT_EQ(ok.get<double>("optimizer.lr", 0), 0.5);
}
