// \brief MemorySource, row checks, and the source factory.
#include "data/source.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::min
#include <cstring>    // for std::memcpy

#include "core/error.h"           // for ConfigError, DataError, IoError
#include "data/concat_source.h"  // for ConcatSource
#ifdef DFCL_HAVE_HDF5
#include "data/h5_dataset.h"  // for H5Reader
#endif

namespace dfcl::data {

void check_rows(const Table& t, const Meta& meta, const std::string& where, int64_t first_row) {
  RowProblem p = find_bad_row(t, meta.feature_names);
  if (p.row < 0) return;
  throw DataError(fmt::format("{}: field {}, row {}: {}; {}", where, p.field, first_row + p.row, p.what, p.fix));
}

MemorySource::MemorySource(Meta meta, Table table, int64_t chunk_rows)
    : meta_(std::move(meta)), table_(std::move(table)), chunk_rows_(chunk_rows) {
  meta_.num_rows = table_.rows;
  meta_.validate(name());
  if (table_.row_id.size() != static_cast<size_t>(table_.rows)) table_.row_id.resize(table_.rows);
  for (int64_t i = 0; i < table_.rows; ++i) table_.row_id[i] = i;
}

void MemorySource::read(int64_t begin, int64_t count, Table& out) {
  if (begin < 0 || count < 0 || begin + count > table_.rows)
    throw DataError(fmt::format("<memory>: rows [{}, {}) are outside the {} rows held", begin, begin + count, table_.rows));
  out.reset(meta_, count);
  const int F = meta_.num_features, M = meta_.num_arms;
  auto cp = [&](auto& dst, const auto& src, int width) {
    if (!src.empty()) std::memcpy(dst.data(), src.data() + begin * width, sizeof(dst[0]) * count * width);
  };
  cp(out.features, table_.features, F);
  cp(out.treatment, table_.treatment, 1);
  cp(out.revenue, table_.revenue, 1);
  cp(out.cost, table_.cost, 1);
  cp(out.source, table_.source, 1);
  if (out.with_propensity) cp(out.propensity, table_.propensity, 1);
  if (out.with_truth) cp(out.true_revenue, table_.true_revenue, M), cp(out.true_cost, table_.true_cost, M);
  for (int64_t i = 0; i < count; ++i) out.row_id[i] = begin + i;
}

void MemorySource::read_source(int64_t begin, int64_t count, std::vector<uint8_t>& out) {
  out.assign(table_.source.begin() + begin, table_.source.begin() + begin + count);
}

std::unique_ptr<RowSource> open_source(const std::string& path) {
#ifdef DFCL_HAVE_HDF5
  return std::make_unique<H5Reader>(path);
#else
  throw IoError(fmt::format("cannot open '{}': this dfcl was built without HDF5 (DFCL_HDF5=OFF or libhdf5-dev missing); "
                            "install libhdf5-dev and rebuild, or use in-memory synthetic data (--set data.in_memory=true)", path));
#endif
}

Table read_rct_rows(RowSource& src, const SplitSpec& split, Split which, int64_t max_rows, const std::string& purpose) {
  const Meta& meta = src.meta();
  Table rows;
  rows.reset(meta, 0);
  const int64_t N = meta.num_rows, chunk = src.chunk_rows();
  auto eligible = [&](int64_t id, uint8_t s) {
    return s == uint8_t(Source::kRct) && split.contains(which, src.split_key(id));
  };
  Table t;
  std::vector<uint8_t> source;
  int64_t kept = 0;
  for (int64_t a = 0; a < N && kept < max_rows; a += chunk) {
    const int64_t n = std::min(chunk, N - a);
    src.read_source(a, n, source);
    int64_t any = 0;
    for (int64_t i = 0; i < n; ++i) any += eligible(a + i, source[i]);
    if (!any) continue;
    src.read(a, n, t);
    rows.resize(kept + std::min(any, max_rows - kept));
    for (int64_t i = 0; i < n && kept < max_rows; ++i)
      if (eligible(t.row_id[i], t.source[i])) rows.copy_row(kept++, t, i);
  }
  if (kept == 0)
    throw DataError(fmt::format(
        "{}: no RCT rows fall in the {} split, which {} needs (randomised-trial rows, source = 0): choose another "
        "split (or other split fractions) or a dataset with a trial",
        src.name(), to_string(which), purpose));
  return rows;
}

bool has_rct_rows(RowSource& src) {
  const int64_t N = src.meta().num_rows, chunk = src.chunk_rows();
  std::vector<uint8_t> source;
  for (int64_t a = 0; a < N; a += chunk) {
    src.read_source(a, std::min(chunk, N - a), source);
    for (uint8_t s : source)
      if (s == uint8_t(Source::kRct)) return true;
  }
  return false;
}

std::unique_ptr<RowSource> open_sources(const std::vector<std::string>& paths, const std::string& key) {
  if (paths.empty()) throw ConfigError(fmt::format("{} is empty; give a dataset file or a list of them", key));
  if (paths.size() == 1) return open_source(paths[0]);
  std::vector<std::unique_ptr<RowSource>> parts;
  for (const auto& p : paths) parts.push_back(open_source(p));
  return std::make_unique<ConcatSource>(std::move(parts), key);
}

}  // namespace dfcl::data

