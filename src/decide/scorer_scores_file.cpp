// \brief A scores file as a scorer: HDF5 with r_hat and c_hat (N x M float32, the dataset's row order;
// metrics/score_file.h), read for the rows being scored.
#include "data/source.h"         // for RowSource
#include "decide/scorer.h"       // for Scorer, ScorerFactory
#include "metrics/score_file.h"  // for read_score_file

namespace dfcl::decide {
namespace {

class ScoresFile final : public Scorer {
 public:
  explicit ScoresFile(const std::string& path) : Scorer(path) {}
  bool from_file() const override { return true; }
  bool scores_any_rows() const override { return false; }
  void check(const data::Meta&, const std::string&) const override {}  // the shape is checked when read
  metrics::ScoreTable score(const data::Table& rows, const data::Meta& meta, const std::string&) const override {
    return metrics::read_score_file(name_, rows.row_id, meta.num_rows, meta.num_arms);
  }
  metrics::ScoreTable score_all(data::RowSource* src) const override {
    return metrics::read_score_file(name_, {}, src ? src->meta().num_rows : -1, src ? src->meta().num_arms : -1);
  }
};

}  // namespace

void register_scorer_scores_file(core::Registry<ScorerFactory>& r) {
  r.add("scores_file", [](const std::string& path, const ScorerContext&) { return std::make_unique<ScoresFile>(path); });
}

}  // namespace dfcl::decide
