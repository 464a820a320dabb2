// \brief SummaryBuilder (see summary.h).
#include "data/summary.h"

#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join

#include <cmath>  // for std::sqrt

#include "core/error.h"  // for DataError

namespace dfcl::data {

SummaryBuilder::SummaryBuilder(const Meta& meta) : meta_(meta) {
  const int M = meta.num_arms;
  n_.assign(2, std::vector<int64_t>(M, 0));
  rev_.assign(2, std::vector<double>(M, 0));
  cost_.assign(2, std::vector<double>(M, 0));
  true_rev_.assign(M, 0);
  true_cost_.assign(M, 0);
  feat_sum_.assign(meta.num_features, 0);
  feat_sq_.assign(meta.num_features, 0);
}

void SummaryBuilder::add(const Table& t) {
  const int M = meta_.num_arms, F = meta_.num_features;
  for (int64_t i = 0; i < t.rows; ++i) {
    int s = t.source[i], a = t.treatment[i];
    ++n_[s][a];
    rev_[s][a] += t.revenue[i];
    cost_[s][a] += t.cost[i];
    for (int k = 0; k < F; ++k) {
      double v = t.features[i * F + k];
      feat_sum_[k] += v, feat_sq_[k] += v * v;
    }
    if (t.with_truth)
      for (int j = 0; j < M; ++j) true_rev_[j] += t.true_revenue[i * M + j], true_cost_[j] += t.true_cost[i * M + j];
  }
  rows_ += t.rows;
}

nlohmann::json SummaryBuilder::finish() const {
  using nlohmann::json;
  const int M = meta_.num_arms;
  json j;
  j["rows"] = rows_;
  j["features"] = meta_.num_features;
  j["arms"] = meta_.arm_names;
  const char* names[2] = {"rct", "observational"};
  for (int s = 0; s < 2; ++s) {
    json src;
    int64_t total = 0;
    for (int a = 0; a < M; ++a) total += n_[s][a];
    src["rows"] = total;
    if (total == 0) {
      j[names[s]] = src;
      continue;
    }
    for (int a = 0; a < M; ++a) {
      double n = double(std::max<int64_t>(n_[s][a], 1));
      src["per_arm"].push_back({{"arm", meta_.arm_names[a]}, {"rows", n_[s][a]}, {"share", double(n_[s][a]) / total},
                                {"mean_revenue", rev_[s][a] / n}, {"mean_cost", cost_[s][a] / n}});
    }
    j[names[s]] = src;
  }
  if (meta_.has_truth && rows_ > 0)
    for (int a = 0; a < M; ++a)
      j["truth"].push_back({{"arm", meta_.arm_names[a]}, {"mean_true_revenue", true_rev_[a] / rows_},
                            {"mean_true_cost", true_cost_[a] / rows_}});
  double mean_sd = 0;
  for (int k = 0; k < meta_.num_features && rows_ > 0; ++k) {
    double mu = feat_sum_[k] / rows_;
    mean_sd += std::sqrt(std::max(0.0, feat_sq_[k] / rows_ - mu * mu));
  }
  j["mean_feature_sd"] = meta_.num_features ? mean_sd / meta_.num_features : 0.0;
  return j;
}

nlohmann::json summarize(RowSource& source) {
  SummaryBuilder b(source.meta());
  Table t;
  const int64_t N = source.meta().num_rows, C = std::max<int64_t>(1, source.chunk_rows());
  for (int64_t a = 0; a < N; a += C) {
    source.read(a, std::min(C, N - a), t);
    b.add(t);
  }
  nlohmann::json s = b.finish();
  // The attributes that describe the rows must agree with the rows (training trusts them: shares, propensities).
  const Meta& m = source.meta();
  auto rows_of = [&](const char* src) { return s.contains(src) ? s[src]["rows"].get<int64_t>() : int64_t(0); };
  auto fix = "re-create the file with dfcl import or dfcl generate, or correct the attribute";
  if (rows_of("rct") != m.rct_rows || rows_of("observational") != m.observational_rows)
    throw DataError(fmt::format("{}: attributes 'rct_rows' = {} and 'observational_rows' = {}, but the 'source' column has "
                                "{} trial and {} observational rows; {}",
                                source.name(), m.rct_rows, m.observational_rows, rows_of("rct"), rows_of("observational"),
                                fix));
  if (!m.rct_arm_rows.empty() && s.contains("rct")) {
    std::vector<int64_t> seen(size_t(m.num_arms), 0);
    size_t j = 0;
    for (const auto& a : s["rct"]["per_arm"])
      if (j < seen.size()) seen[j++] = a["rows"].get<int64_t>();
    if (seen != m.rct_arm_rows)
      throw DataError(fmt::format("{}: attribute 'rct_arm_rows' = [{}], but the trial rows per arm are [{}]; {}",
                                  source.name(), fmt::join(m.rct_arm_rows, ", "), fmt::join(seen, ", "), fix));
  }
  return s;
}

std::string format_summary(const nlohmann::json& s) {
  std::string out = fmt::format("{} rows, {} features, {} arms\n", s["rows"].get<int64_t>(), s["features"].get<int>(),
                                s["arms"].size());
  for (const char* src : {"rct", "observational"}) {
    if (!s.contains(src) || s[src]["rows"].get<int64_t>() == 0) continue;
    out += fmt::format("  {} rows: {}\n", src, s[src]["rows"].get<int64_t>());
    out += fmt::format("    {:<16} {:>10} {:>7} {:>12} {:>10}\n", "arm", "rows", "share", "mean_rev", "mean_cost");
    for (const auto& a : s[src]["per_arm"])
      out += fmt::format("    {:<16} {:>10} {:>7.4f} {:>12.4f} {:>10.4f}\n", a["arm"].get<std::string>(), a["rows"].get<int64_t>(),
                         a["share"].get<double>(), a["mean_revenue"].get<double>(), a["mean_cost"].get<double>());
  }
  if (s.contains("truth")) {
    out += "  potential outcomes (mean over all rows):\n";
    for (const auto& a : s["truth"])
      out += fmt::format("    {:<16} true_revenue {:>9.4f}  true_cost {:>8.4f}\n", a["arm"].get<std::string>(),
                         a["mean_true_revenue"].get<double>(), a["mean_true_cost"].get<double>());
  }
  return out;
}

}  // namespace dfcl::data
