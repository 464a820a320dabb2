// \brief Hyperparameter search: the space of config values `dfcl tune` tries (docs/cli.md, "dfcl tune").
//
//   tune:
//     mode: random            # grid: every combination of the listed values; random: `trials` draws
//     trials: 12
//     seed: 0
//     space:
//       - {key: optimizer.lr, min: 0.0003, max: 0.01, log: true}    # a range (random mode)
//       - {key: train.epochs, values: [5, 10, 20]}                   # a list: any YAML values, lists included
//       - {key: loss.lambdas, values: [[0.05, 0.1, 0.3], [0.1]]}
// A trial is a list of `key=value` overrides, a pure function of (seed, trial index): the same trials on any machine,
// whatever runs them in parallel.
#pragma once
#include <cstdint>  // for int64_t, uint64_t
#include <string>   // for std::string
#include <vector>   // for std::vector

namespace dfcl {
class Config;
}

namespace dfcl::tune {

/// One axis of the search: a config key and the values it may take.
struct Dimension {
  std::string key;
  std::vector<std::string> values;  // YAML texts, tried as they are; empty for a range
  double min = 0, max = 0;          // a range (random mode): uniform, or log-uniform with `log`
  bool log = false, integer = false;
  bool is_range() const { return values.empty(); }
};

struct SearchSpace {
  std::string mode = "grid";  // grid | random
  int64_t trials = 0;         // random: the number of draws; grid: the number of combinations
  uint64_t seed = 0;
  std::vector<Dimension> dims;

  /// Reads the `tune` section (mode, trials, seed, space). ConfigError naming the key: an empty space, a key listed
  /// twice, a range in grid mode, min >= max, log with min <= 0, a grid beyond 100,000 combinations.
  static SearchSpace from(const Config& tune);
  /// Trial k's overrides, "key=value" in the order of `dims`. Grid: the k-th combination, the last key varying
  /// fastest; random: each key drawn from its values (uniformly) or its range, from dfcl::Rng(seed, 0x7u, k).
  std::vector<std::string> trial(int64_t k) const;
};

}  // namespace dfcl::tune
