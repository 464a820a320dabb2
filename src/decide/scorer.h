// \brief Scorers: what turns users into per-arm revenue and cost predictions (r_hat, c_hat, N x M) for the decision
// layer. A registry maps a scorer's name in a config to its factory:
//   oracle, random, true_roi                 the reference scorers (docs/metrics.md §6)
//   *.ckpt                                   a model checkpoint from dfcl train
//   *.policy                                 a cluster policy from dfcl cluster
//   anything else                            a scores file (HDF5 with r_hat and c_hat in the dataset's row order)
// Adding a scorer is one file (decide/scorer_<name>.cpp with its registrar) and one line in DFCL_BUILTIN_SCORERS.
#pragma once
#include <cstdint>     // for int64_t, uint64_t
#include <functional>  // for std::function
#include <memory>      // for std::unique_ptr
#include <string>      // for std::string
#include <vector>      // for std::vector

#include "core/registry.h"        // for Registry
#include "data/schema.h"          // for Meta, Table
#include "decide/heldout.h"       // for TrainedOn
#include "metrics/score_table.h"  // for ScoreTable

namespace dfcl::data {
class RowSource;
}

namespace dfcl::decide {

/// What every scorer may use: the seed of the random scorer, threads.
struct ScorerContext {
  uint64_t seed = 0;
  int threads = 0;
  std::string key = "scores";  // the config key that named the scorer (messages)
};

class Scorer {
 public:
  virtual ~Scorer() = default;
  /// As given in the config.
  const std::string& name() const { return name_; }
  /// For tables and plots.
  virtual std::string label() const { return name_; }
  /// A fitted scorer's training data (checkpoints, cluster policies): decides held-out rows. nullptr otherwise.
  virtual const TrainedOn* trained_on() const { return nullptr; }
  /// A model, a policy or a scores file: prediction metrics apply.
  virtual bool from_file() const { return false; }
  /// True when it scores rows from their features or true tables (any dataset of the right shape); false for a scores
  /// file, which holds the scores of one dataset's rows.
  virtual bool scores_any_rows() const { return true; }
  /// DataError (naming `where` and the fix) unless the scorer can score data described by `meta`.
  virtual void check(const data::Meta& meta, const std::string& where) const = 0;
  /// The scores of `rows` (N x M, in their order) of a dataset described by `meta`.
  virtual metrics::ScoreTable score(const data::Table& rows, const data::Meta& meta, const std::string& where) const = 0;
  /// Every row of `src`, block by block with a progress bar; `src` may be null for a scores file alone.
  virtual metrics::ScoreTable score_all(data::RowSource* src) const;

 protected:
  explicit Scorer(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

using ScorerFactory = std::function<std::unique_ptr<Scorer>(const std::string& spec, const ScorerContext& ctx)>;

/// The scorer registry: built-in names and file suffixes (".ckpt", ".policy"); `scores_file` is the fallback.
core::Registry<ScorerFactory>& scorer_registry();

/// The scorer a config names: an exact registry name, else a registered file suffix, else a scores file.
std::unique_ptr<Scorer> make_scorer(const std::string& spec, const ScorerContext& ctx);

/// The TrainedOn of every fitted scorer among `scorers`.
std::vector<TrainedOn> trained_on(const std::vector<const Scorer*>& scorers);

}  // namespace dfcl::decide
