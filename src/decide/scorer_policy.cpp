// \brief A cluster policy from dfcl cluster as a scorer: each user gets their cluster's trial means (cluster/policy.h).
#include "cluster/policy.h"  // for ClusterPolicy
#include "decide/scorer.h"   // for Scorer, ScorerFactory

namespace dfcl::decide {
namespace {

class Policy final : public Scorer {
 public:
  explicit Policy(const std::string& path)
      : Scorer(path), policy_(std::make_shared<const cluster::ClusterPolicy>(cluster::ClusterPolicy::load(path))) {
    // The representation net decides the held-out rows, as a checkpoint's model does.
    trained_ = {policy_->teacher->origin, policy_->teacher->train_files, policy_->teacher->split};
  }
  const TrainedOn* trained_on() const override { return &trained_; }
  bool from_file() const override { return true; }
  void check(const data::Meta& meta, const std::string& where) const override { policy_->check_compatible(meta, where); }
  metrics::ScoreTable score(const data::Table& rows, const data::Meta& meta, const std::string& where) const override {
    check(meta, where);
    return policy_->score(rows);
  }

 private:
  std::shared_ptr<const cluster::ClusterPolicy> policy_;
  TrainedOn trained_;
};

}  // namespace

void register_scorer_policy(core::Registry<ScorerFactory>& r) {
  r.add(".policy", [](const std::string& path, const ScorerContext&) { return std::make_unique<Policy>(path); });
}

}  // namespace dfcl::decide
