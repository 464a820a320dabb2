// \brief The reference scorers: oracle (the true tables), random targeting, the true-ROI ranking (docs/metrics.md §6).
#include <fmt/format.h>  // for fmt::format

#include "core/error.h"       // for DataError
#include "decide/scorer.h"    // for Scorer, ScorerFactory
#include "metrics/scorers.h"  // for random_scores, true_roi_scores

namespace dfcl::decide {
namespace {

void need_truth(const data::Meta& meta, const std::string& name, const std::string& where, const std::string& key) {
  if (!meta.has_truth)
    throw DataError(fmt::format("{} = {} needs the true tables (true_revenue, true_cost), which only synthetic data "
                                "(dfcl generate) has; {} has none: give a model checkpoint or a scores file instead",
                                key, name, where));
}

solver::Scores truth_of(const data::Table& rows) {
  return {rows.rows, rows.num_arms, rows.true_revenue.data(), rows.true_cost.data()};
}

class Oracle final : public Scorer {
 public:
  explicit Oracle(const ScorerContext& c) : Scorer("oracle"), key_(c.key) {}
  std::string label() const override { return "oracle (true tables)"; }
  void check(const data::Meta& meta, const std::string& where) const override { need_truth(meta, name_, where, key_); }
  metrics::ScoreTable score(const data::Table& rows, const data::Meta& meta, const std::string& where) const override {
    check(meta, where);
    metrics::ScoreTable t;
    t.n = rows.rows, t.m = rows.num_arms, t.r = rows.true_revenue, t.c = rows.true_cost;
    return t;
  }

 private:
  std::string key_;
};

class Random final : public Scorer {
 public:
  explicit Random(const ScorerContext& c) : Scorer("random"), c_(c) {}
  std::string label() const override { return fmt::format("random (seed {})", c_.seed); }
  void check(const data::Meta&, const std::string&) const override {}
  // Row i's draws depend on (seed, its position in `rows`).
  metrics::ScoreTable score(const data::Table& rows, const data::Meta&, const std::string&) const override {
    return metrics::random_scores(rows.rows, rows.num_arms, c_.seed, c_.threads);
  }

 private:
  ScorerContext c_;
};

class TrueRoi final : public Scorer {
 public:
  explicit TrueRoi(const ScorerContext& c) : Scorer("true_roi"), c_(c) {}
  std::string label() const override { return "true ROI ranking"; }
  void check(const data::Meta& meta, const std::string& where) const override { need_truth(meta, name_, where, c_.key); }
  metrics::ScoreTable score(const data::Table& rows, const data::Meta& meta, const std::string& where) const override {
    check(meta, where);
    return metrics::true_roi_scores(truth_of(rows), c_.threads);
  }

 private:
  ScorerContext c_;
};

}  // namespace

void register_scorer_reference(core::Registry<ScorerFactory>& r) {
  r.add("oracle", [](const std::string&, const ScorerContext& c) { return std::make_unique<Oracle>(c); });
  r.add("random", [](const std::string&, const ScorerContext& c) { return std::make_unique<Random>(c); });
  r.add("true_roi", [](const std::string&, const ScorerContext& c) { return std::make_unique<TrueRoi>(c); });
}

}  // namespace dfcl::decide
