// \brief The search space of `dfcl tune`: every grid combination exactly once, random draws reproducible and within
// their ranges (log-uniform by its quantiles), and the config errors.
#include <gtest/gtest.h>

#include <cmath>  // for std::log
#include <set>    // for std::set

#include "core/config.h"        // for Config
#include "core/error.h"         // for ConfigError
#include "tune/search_space.h"  // for SearchSpace

namespace dfcl::tune {
namespace {

SearchSpace space(const std::string& yaml) { return SearchSpace::from(Config::from_string(yaml, "t.yaml").sub("tune")); }

TEST(SearchSpace, TheGridTriesEveryCombinationOnceLastKeyFastest) {
  const SearchSpace s = space(
      "tune:\n  space:\n    - {key: optimizer.lr, values: [0.001, 0.01]}\n"
      "    - {key: loss.lambdas, values: [[0.1, 0.5], [0.2]]}\n    - {key: train.epochs, values: [5, 10, 20]}\n");
  ASSERT_EQ(s.trials, 12);
  EXPECT_EQ(s.trial(0), (std::vector<std::string>{"optimizer.lr=0.001", "loss.lambdas=[0.1, 0.5]", "train.epochs=5"}));
  EXPECT_EQ(s.trial(1), (std::vector<std::string>{"optimizer.lr=0.001", "loss.lambdas=[0.1, 0.5]", "train.epochs=10"}));
  EXPECT_EQ(s.trial(11), (std::vector<std::string>{"optimizer.lr=0.01", "loss.lambdas=[0.2]", "train.epochs=20"}));
  std::set<std::vector<std::string>> seen;
  for (int64_t k = 0; k < s.trials; ++k) EXPECT_TRUE(seen.insert(s.trial(k)).second) << k;
  // A trial's values are valid overrides: they apply to a config and read back.
  Config c = Config::from_string("{}", "c");
  for (const auto& o : s.trial(3)) c.set(o);
  EXPECT_EQ(c.get<std::vector<double>>("loss.lambdas", {}), (std::vector<double>{0.2}));
}

TEST(SearchSpace, RandomDrawsAreReproducibleAndLogUniformInTheirRange) {
  const std::string y = "tune:\n  mode: random\n  trials: 4000\n  seed: 9\n  space:\n"
                        "    - {key: optimizer.lr, min: 0.0001, max: 0.01, log: true}\n"
                        "    - {key: train.epochs, min: 2, max: 6, integer: true}\n"
                        "    - {key: loss.tau, values: [0.1, 0.3]}\n";
  const SearchSpace s = space(y), again = space(y);
  int below = 0, tau_small = 0;
  std::set<int> epochs;
  for (int64_t k = 0; k < s.trials; ++k) {
    const auto t = s.trial(k);
    EXPECT_EQ(t, again.trial(k));
    const double lr = std::stod(t[0].substr(t[0].find('=') + 1));
    ASSERT_GE(lr, 0.0001 * (1 - 1e-3));
    ASSERT_LE(lr, 0.01 * (1 + 1e-3));
    below += lr < 0.001;  // the geometric midpoint: half of a log-uniform draw lies below it
    epochs.insert(std::stoi(t[1].substr(t[1].find('=') + 1)));
    tau_small += t[2] == "loss.tau=0.1";
  }
  EXPECT_NEAR(below / 4000.0, 0.5, 4 * 0.5 / std::sqrt(4000.0));
  EXPECT_NEAR(tau_small / 4000.0, 0.5, 4 * 0.5 / std::sqrt(4000.0));
  EXPECT_EQ(epochs, (std::set<int>{2, 3, 4, 5, 6}));
  EXPECT_NE(space(y).trial(0), space("tune:\n  mode: random\n  trials: 1\n  seed: 10\n  space:\n"
                                     "    - {key: optimizer.lr, min: 0.0001, max: 0.01, log: true}\n"
                                     "    - {key: train.epochs, min: 2, max: 6, integer: true}\n"
                                     "    - {key: loss.tau, values: [0.1, 0.3]}\n")
                                   .trial(0));
}

TEST(SearchSpace, ConfigErrorsNameTheEntryAndTheFix) {
  auto error = [](const std::string& y) {
    try {
      space(y);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error("tune:\n  mode: random\n").find("tune.space is empty"), std::string::npos);
  EXPECT_NE(error("tune:\n  mode: bayes\n  space: [{key: a.b, values: [1]}]\n").find("tune.mode is 'bayes'"),
            std::string::npos);
  EXPECT_NE(error("tune:\n  space: [{key: a.b, min: 1, max: 2}]\n").find("a range has no grid"), std::string::npos);
  EXPECT_NE(error("tune:\n  mode: random\n  trials: 3\n  space: [{key: a.b, min: 2, max: 1}]\n").find("must be below"),
            std::string::npos);
  EXPECT_NE(error("tune:\n  mode: random\n  trials: 3\n  space: [{key: a.b, min: 0, max: 1, log: true}]\n")
                .find("log needs min > 0"),
            std::string::npos);
  EXPECT_NE(error("tune:\n  space: [{key: a.b, values: [1]}, {key: a.b, values: [2]}]\n").find("listed twice"),
            std::string::npos);
  EXPECT_NE(error("tune:\n  space: [{key: validation.metric, values: [eom, loss]}]\n").find("one validation.metric"),
            std::string::npos);
  EXPECT_NE(error("tune:\n  mode: random\n  space: [{key: a.b, values: [1]}]\n").find("tune.trials must be >= 1"),
            std::string::npos);
  EXPECT_NE(error("tune:\n  trials: 5\n  space: [{key: a.b, values: [1, 2]}]\n").find("all tried"), std::string::npos);
}

}  // namespace
}  // namespace dfcl::tune
