// \brief ConcatSource: checking that the files fit together, merging their descriptions, reading across them.
#include "data/concat_source.h"

#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join

#include <algorithm>  // for std::min, std::upper_bound
#include <cmath>      // for std::abs

#include "core/error.h"  // for DataError
#include "core/log.h"    // for log::info

namespace dfcl::data {
namespace {

// The first position where two name lists differ, as a message fragment; "" when they are equal.
std::string first_difference(const std::vector<std::string>& a, const std::vector<std::string>& b, const char* what) {
  if (a == b) return "";
  size_t k = 0;
  while (k < a.size() && k < b.size() && a[k] == b[k]) ++k;
  if (a.size() != b.size() && k == std::min(a.size(), b.size()))
    return fmt::format("one has {} {}s and the other {}", a.size(), what, b.size());
  return fmt::format("{} {} is '{}' in one and '{}' in the other", what, k, a[k], b[k]);
}

bool same_propensity(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return false;
  for (size_t j = 0; j < a.size(); ++j)
    if (std::abs(a[j] - b[j]) > 1e-9) return false;
  return true;
}

}  // namespace

ConcatSource::ConcatSource(std::vector<std::unique_ptr<RowSource>> parts, std::string key) : parts_(std::move(parts)) {
  if (parts_.empty()) throw DataError(fmt::format("{}: no dataset files given", key));
  const Meta& first = parts_[0]->meta();
  chunk_ = std::max<int64_t>(1, parts_[0]->chunk_rows());
  std::vector<std::string> names;
  meta_ = first;
  meta_.num_rows = meta_.rct_rows = meta_.observational_rows = 0;
  meta_.rct_arm_rows.assign(size_t(first.num_arms), 0);
  meta_.rct_propensity.clear();
  std::string trial_file;  // the first file with trial rows: the one whose rct_propensity the others must match
  bool all_propensity = true, all_truth = true, all_arm_rows = true;
  std::string no_propensity;  // a file with log rows but no propensity column
  for (const auto& p : parts_) {
    const Meta& m = p->meta();
    names.push_back(p->name());
    off_.push_back(meta_.num_rows);
    const std::string pair = fmt::format("{} ({}) and {}", key, parts_[0]->name(), p->name());
    if (std::string d = first_difference(first.feature_names, m.feature_names, "feature"); !d.empty())
      throw DataError(
          fmt::format("{}: the files must have the same features in the same order, but {}; import them "
                      "with one mapping (dfcl import) or generate them with the same settings",
                      pair, d));
    if (std::string d = first_difference(first.arm_names, m.arm_names, "arm"); !d.empty())
      throw DataError(
          fmt::format("{}: the files must have the same arms in the same order, but {}; map the treatment "
                      "column of each to the same arms (import.treatment.arms)",
                      pair, d));
    if (m.rct_rows > 0) {
      if (trial_file.empty()) {
        trial_file = p->name(), meta_.rct_propensity = m.rct_propensity;
      } else if (!same_propensity(meta_.rct_propensity, m.rct_propensity)) {
        throw DataError(fmt::format(
            "{}: the trial rows of {} were randomised with arm propensities [{}] and those of {} with [{}]; one "
            "dataset has one trial design, because IPW weights each arm by one propensity. Use the files in separate "
            "runs, or re-import one of them with the other's rct_propensity if that was the real design",
            key, trial_file, fmt::join(meta_.rct_propensity, ", "), p->name(), fmt::join(m.rct_propensity, ", ")));
      }
      if (int(m.rct_arm_rows.size()) == m.num_arms)
        for (int j = 0; j < m.num_arms; ++j) meta_.rct_arm_rows[size_t(j)] += m.rct_arm_rows[size_t(j)];
      else
        all_arm_rows = false;
    }
    const bool fill = !m.has_propensity && m.observational_rows == 0 && m.rct_rows > 0;
    fill_propensity_.push_back(fill);
    if (!m.has_propensity && !fill) all_propensity = false, no_propensity = p->name();
    all_truth = all_truth && m.has_truth;
    meta_.num_rows += m.num_rows;
    meta_.rct_rows += m.rct_rows;
    meta_.observational_rows += m.observational_rows;
  }
  off_.push_back(meta_.num_rows);
  if (meta_.rct_propensity.empty()) meta_.rct_propensity = first.rct_propensity;
  if (meta_.rct_rows == 0 || !all_arm_rows) meta_.rct_arm_rows.clear();
  bool any_propensity = false;
  for (const auto& p : parts_) any_propensity = any_propensity || p->meta().has_propensity;
  meta_.has_propensity = all_propensity && any_propensity;
  if (any_propensity && !all_propensity)
    log::info("{}: the per-row propensity column is left out of the combined data: {} has log rows without one", key,
              no_propensity);
  meta_.has_truth = all_truth;
  name_ = fmt::format("{}", fmt::join(names, " + "));
  std::vector<std::string> origins;
  for (const auto& p : parts_) origins.push_back(p->meta().origin);
  meta_.origin = fmt::format("concatenation of {}: {}", name_, fmt::join(origins, " | "));
  meta_.validate(name_);
}

size_t ConcatSource::part_of(int64_t row) const {
  return size_t(std::upper_bound(off_.begin(), off_.end() - 1, row) - off_.begin()) - 1;
}

int64_t ConcatSource::split_key(int64_t row) const { return row - off_[part_of(row)]; }

void ConcatSource::read(int64_t begin, int64_t count, Table& out) {
  if (begin < 0 || count < 0 || begin + count > meta_.num_rows)
    throw DataError(
        fmt::format("{}: rows [{}, {}) are outside its {} rows", name_, begin, begin + count, meta_.num_rows));
  out.with_weight = false;
  out.reset(meta_, count);
  Table piece;  // local: the loader's logical shards read from their own threads
  for (int64_t at = begin; at < begin + count;) {
    const size_t k = part_of(at);
    const int64_t local = at - off_[k], n = std::min(begin + count, off_[k + 1]) - at;
    parts_[k]->read(local, n, piece);
    for (int64_t i = 0; i < n; ++i) piece.row_id[size_t(i)] += off_[k];
    piece.with_propensity = piece.with_propensity && out.with_propensity;  // copy only what the combination keeps
    piece.with_truth = piece.with_truth && out.with_truth;
    const bool fill = out.with_propensity && fill_propensity_[k];
    if (fill) piece.with_propensity = true, piece.propensity.assign(size_t(n), 0.f);
    out.copy_rows(at - begin, piece, 0, n);
    if (fill) {
      const std::vector<double>& p = parts_[k]->meta().rct_propensity;
      for (int64_t i = 0; i < n; ++i)
        out.propensity[size_t(at - begin + i)] = float(p[size_t(out.treatment[size_t(at - begin + i)])]);
    }
    at += n;
  }
}

void ConcatSource::read_source(int64_t begin, int64_t count, std::vector<uint8_t>& out) {
  out.resize(size_t(count));
  std::vector<uint8_t> piece;
  for (int64_t at = begin; at < begin + count;) {
    const size_t k = part_of(at);
    const int64_t n = std::min(begin + count, off_[k + 1]) - at;
    parts_[k]->read_source(at - off_[k], n, piece);
    std::copy(piece.begin(), piece.end(), out.begin() + (at - begin));
    at += n;
  }
}

}  // namespace dfcl::data
