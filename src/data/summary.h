// \brief Streaming dataset summary: per source and arm, row counts and mean outcomes (what `dfcl generate`,
// `dfcl import` and `dfcl info` print).
#pragma once
#include <nlohmann/json.hpp>  // for nlohmann::json

#include <cstdint>  // for int64_t
#include <vector>   // for std::vector

#include "data/schema.h"  // for Meta, Table
#include "data/source.h"  // for RowSource

namespace dfcl::data {

class SummaryBuilder {
 public:
  explicit SummaryBuilder(const Meta& meta);
  void add(const Table& block);
  /// JSON with rows, per-source per-arm counts, mean revenue/cost, and true means where known.
  nlohmann::json finish() const;

 private:
  Meta meta_;
  int64_t rows_ = 0;
  // [source][arm]
  std::vector<std::vector<int64_t>> n_;
  std::vector<std::vector<double>> rev_, cost_;
  std::vector<double> true_rev_, true_cost_;  // mean over all rows of true outcomes per arm
  std::vector<double> feat_sum_, feat_sq_;
};

/// Streams a whole source through a SummaryBuilder.
nlohmann::json summarize(RowSource& source);

/// Renders a summary JSON as a short human table.
std::string format_summary(const nlohmann::json& s);

}  // namespace dfcl::data
