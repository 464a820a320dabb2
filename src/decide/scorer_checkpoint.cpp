// \brief A model checkpoint from dfcl train as a scorer: its predictions, in blocks.
#include "decide/scorer.h"        // for Scorer, ScorerFactory
#include "train/trained_model.h"  // for load_trained_model, predict

namespace dfcl::decide {
namespace {

class Checkpoint final : public Scorer {
 public:
  explicit Checkpoint(const std::string& path)
      : Scorer(path), model_(std::make_shared<const train::TrainedModel>(train::load_trained_model(path))) {
    trained_ = {model_->origin, model_->train_files, model_->split};
  }
  const TrainedOn* trained_on() const override { return &trained_; }
  bool from_file() const override { return true; }
  void check(const data::Meta& meta, const std::string& where) const override { model_->check_compatible(meta, where); }
  metrics::ScoreTable score(const data::Table& rows, const data::Meta& meta, const std::string& where) const override {
    check(meta, where);
    return train::predict(*model_, rows);
  }

 private:
  std::shared_ptr<const train::TrainedModel> model_;
  TrainedOn trained_;
};

}  // namespace

void register_scorer_checkpoint(core::Registry<ScorerFactory>& r) {
  r.add(".ckpt", [](const std::string& path, const ScorerContext&) { return std::make_unique<Checkpoint>(path); });
}

}  // namespace dfcl::decide
