// \brief Loader: shard plan, chunk-order shuffle plus a shuffle buffer, equal batch counts per shard.
#include "data/loader.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>   // for std::min, std::max
#include <functional>  // for std::function

#include "core/error.h"  // for ConfigError, DataError

namespace dfcl::data {

SourceFilter parse_source_filter(const std::string& s) {
  if (s == "all") return SourceFilter::kAll;
  if (s == "rct") return SourceFilter::kRct;
  if (s == "observational" || s == "obs") return SourceFilter::kObservational;
  throw ConfigError(fmt::format("source filter '{}' is not one of all, rct, observational", s));
}
Remainder parse_remainder(const std::string& s) {
  if (s == "drop_last") return Remainder::kDropLast;
  if (s == "pad") return Remainder::kPad;
  throw ConfigError(fmt::format("remainder '{}' is not one of drop_last, pad", s));
}

bool Loader::eligible(int64_t row_id, uint8_t src) const {
  if (!opt_.split_spec.contains(opt_.split, src_.split_key(row_id))) return false;
  if (opt_.source == SourceFilter::kRct && src != uint8_t(Source::kRct)) return false;
  if (opt_.source == SourceFilter::kObservational && src != uint8_t(Source::kObservational)) return false;
  return true;
}

Loader::Loader(RowSource& source, const LoaderOptions& options) : src_(source), opt_(options) {
  if (opt_.batch_size < 1) throw ConfigError(fmt::format("batch_size is {}; it must be >= 1", opt_.batch_size));
  if (opt_.world < 1 || opt_.rank < 0 || opt_.rank >= opt_.world)
    throw ConfigError(fmt::format("rank {} of world {} is invalid", opt_.rank, opt_.world));
  if (opt_.shuffle_buffer < 0) throw ConfigError("shuffle_buffer must be >= 0");
  if (!(opt_.split_spec.train >= 0 && opt_.split_spec.validation >= 0 && opt_.split_spec.train + opt_.split_spec.validation <= 1))
    throw ConfigError(fmt::format("split fractions train={} validation={} must be >= 0 and sum to <= 1",
                                  opt_.split_spec.train, opt_.split_spec.validation));
  plan_shards();
  const int64_t B = opt_.batch_size;
  auto [mn, mx] = std::minmax_element(shard_rows_.begin(), shard_rows_.end());
  if (opt_.remainder == Remainder::kDropLast) {
    batches_per_epoch_ = *mn / B;
    if (batches_per_epoch_ == 0 && *mx > 0)
      throw ConfigError(fmt::format("{}: shard {} holds {} eligible rows, fewer than a batch ({} rows per rank); lower train.batch_size, use fewer "
                                    "ranks, or set train.remainder=pad", src_.name(), int(mn - shard_rows_.begin()), *mn, B));
  } else {
    batches_per_epoch_ = (*mx + B - 1) / B;
    if (*mn == 0 && *mx > 0)
      throw ConfigError(fmt::format("{}: shard {} holds no eligible rows, so it cannot pad its batches; use fewer ranks",
                                    src_.name(), int(mn - shard_rows_.begin())));
  }
  start_epoch(0);
}

void Loader::plan_shards() {
  // Shard boundaries split the *eligible* rows evenly (to within one row), so that a filter such as
  // source=rct gives every rank work even when RCT rows sit together at the start of the file. Every
  // rank computes the same plan from the row ids and the source column alone.
  const int64_t N = src_.meta().num_rows, C = std::max<int64_t>(1, src_.chunk_rows());
  const int R = opt_.world;
  std::vector<int64_t> bounds(R + 1, N);
  bounds[0] = 0;
  const bool filtered = opt_.split != Split::kAll || opt_.source != SourceFilter::kAll;
  const bool need_source = opt_.source != SourceFilter::kAll;
  auto count_chunk = [&](int64_t a, int64_t n, const std::function<void(int64_t)>& on_eligible) {
    if (need_source) src_.read_source(a, n, src_col_);
    for (int64_t i = 0; i < n; ++i)
      if (eligible(a + i, need_source ? src_col_[i] : 0)) on_eligible(a + i);
  };
  if (!filtered) {
    for (int r = 0; r <= R; ++r) bounds[r] = N * r / R;
  } else {
    std::vector<int64_t> per_chunk;  // eligible rows per chunk (pass 1)
    for (int64_t a = 0; a < N; a += C) {
      int64_t n = 0;
      count_chunk(a, std::min(C, N - a), [&](int64_t) { ++n; });
      per_chunk.push_back(n);
    }
    int64_t E = 0;
    for (auto n : per_chunk) E += n;
    chunk_eligible_ = per_chunk;  // start_epoch skips chunks without an eligible row (no read, same batches)
    shard_rows_.assign(R, 0);
    for (int q = 0; q < R; ++q) shard_rows_[q] = E * (q + 1) / R - E * q / R;
    // Shard r starts at the eligible row number E*r/R (pass 2 rescans only the chunks holding a boundary).
    int64_t before = 0;
    int r = 1;
    for (size_t c = 0; c < per_chunk.size() && r < R; ++c) {
      while (r < R && E * r / R < before + per_chunk[c]) {
        int64_t target = E * r / R, seen = before, found = -1;
        count_chunk(int64_t(c) * C, std::min(C, N - int64_t(c) * C), [&](int64_t row) {
          if (found < 0 && seen++ == target) found = row;
        });
        bounds[r++] = found;
      }
      before += per_chunk[c];
    }
  }
  begin_ = bounds[opt_.rank];
  end_ = bounds[opt_.rank + 1];
  if (!filtered) {
    shard_rows_.assign(R, 0);
    for (int q = 0; q < R; ++q) shard_rows_[q] = bounds[q + 1] - bounds[q];
  }
  src_col_.clear();
  src_col_.shrink_to_fit();
}

int64_t Loader::rows_left_out_per_epoch() const {
  return opt_.remainder == Remainder::kDropLast ? shard_rows_[opt_.rank] - batches_per_epoch_ * opt_.batch_size : 0;
}

Loader::~Loader() = default;

void Loader::start_epoch(int64_t epoch) {
  reader_.reset();  // stop the previous epoch's worker before anything else touches the source
  const int64_t C = std::max<int64_t>(1, src_.chunk_rows());
  std::vector<int64_t> order;
  if (end_ > begin_)
    for (int64_t c = begin_ / C; c <= (end_ - 1) / C; ++c) order.push_back(c);
  rng_ = Rng(opt_.seed, uint64_t(epoch) + 1, uint64_t(opt_.rank) * 0x9E37ull + uint64_t(opt_.world));
  if (opt_.shuffle)
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng_.next() % i]);
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (int64_t c : order)
    if (chunk_eligible_.empty() || chunk_eligible_[size_t(c)] > 0)
      ranges.emplace_back(std::max(begin_, c * C), std::min(end_, (c + 1) * C));
  // Keep only eligible rows, compacting in place (runs on the prefetch thread).
  auto keep_eligible = [this](Table& t) {
    int64_t kept = 0;
    for (int64_t i = 0; i < t.rows; ++i)
      if (eligible(t.row_id[i], t.source[i])) {
        if (kept != i) t.copy_row(kept, t, i);
        ++kept;
      }
    t.resize(kept);
  };
  reader_ = std::make_unique<ChunkPrefetcher>(src_, std::move(ranges), keep_eligible, opt_.prefetch);
  chunk_.rows = 0;
  chunk_pos_ = 0;
  buffered_ = 0;
  emitted_batches_ = 0;
  have_last_ = false;
  const int64_t cap = opt_.shuffle ? opt_.shuffle_buffer : 0;
  buffer_.reset(src_.meta(), cap);
  last_.reset(src_.meta(), 1);
}

bool Loader::next_chunk() {
  while (reader_->next(chunk_)) {
    chunk_pos_ = 0;
    peak_bytes_ = std::max(peak_bytes_, chunk_.bytes() + buffer_.bytes() + last_.bytes() + reader_->peak_bytes());
    if (chunk_.rows > 0) return true;
  }
  return false;
}

bool Loader::pull(Table& dst, int64_t j) {
  const int64_t cap = buffer_.rows;
  if (cap == 0) {  // no shuffle buffer: rows in (possibly shuffled) chunk order
    if (chunk_pos_ >= chunk_.rows && !next_chunk()) return false;
    dst.copy_row(j, chunk_, chunk_pos_++);
    return true;
  }
  // Shuffle buffer: keep it full, emit a uniformly drawn element, fill the hole with the last one.
  while (buffered_ < cap) {
    if (chunk_pos_ >= chunk_.rows && !next_chunk()) break;
    buffer_.copy_row(buffered_++, chunk_, chunk_pos_++);
  }
  if (buffered_ == 0) return false;
  int64_t k = int64_t(rng_.next() % uint64_t(buffered_));
  dst.copy_row(j, buffer_, k);
  if (k != buffered_ - 1) buffer_.copy_row(k, buffer_, buffered_ - 1);
  --buffered_;
  return true;
}

bool Loader::next(Table& batch) {
  if (emitted_batches_ >= batches_per_epoch_) return false;
  const int64_t B = opt_.batch_size;
  batch.with_weight = true;
  batch.reset(src_.meta(), B);
  int64_t j = 0;
  for (; j < B && pull(batch, j); ++j) {
    batch.weight[j] = 1.f;
    last_.copy_row(0, batch, j);
    have_last_ = true;
  }
  if (j < B) {
    if (opt_.remainder == Remainder::kDropLast && j > 0)
      throw DataError(fmt::format("{}: internal: shard {} ran out of rows mid-batch", src_.name(), opt_.rank));
    if (!have_last_)
      throw DataError(fmt::format("{}: shard {} has no rows to pad from", src_.name(), opt_.rank));
    for (; j < B; ++j) {  // padding: a real row's values with weight 0, so shapes stay static
      batch.copy_row(j, last_, 0);
      batch.weight[j] = 0.f;
    }
  }
  ++emitted_batches_;
  peak_bytes_ = std::max(peak_bytes_, chunk_.bytes() + buffer_.bytes() + last_.bytes() + batch.bytes());
  return true;
}

}  // namespace dfcl::data
