// \brief RowSource: anything the loader can read rows from (an HDF5 file, an in-memory table).
#pragma once
#include <cstdint>  // for int64_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "data/schema.h"  // for Meta, Table
#include "data/split.h"   // for Split, SplitSpec

namespace dfcl::data {

/// Thread safety: read() and read_source() may run on two threads at once (the loader's prefetch thread reads ahead
/// while the caller reads validation rows from the same source), so an implementation keeps no unguarded mutable
/// state. H5Reader (HDF5 is built thread-safe), MemorySource and ConcatSource hold none.
class RowSource {
 public:
  virtual ~RowSource() = default;
  virtual const Meta& meta() const = 0;
  /// The natural I/O unit in rows (the HDF5 chunk height); the loader reads whole units.
  virtual int64_t chunk_rows() const = 0;
  /// Reads rows [begin, begin + count) into `out` (reshaped), validating every value.
  /// Throws DataError naming the source, field and absolute row of the first bad value.
  virtual void read(int64_t begin, int64_t count, Table& out) = 0;
  /// Reads only the `source` column (cheap pre-scans for RCT/observational filters).
  virtual void read_source(int64_t begin, int64_t count, std::vector<uint8_t>& out) = 0;
  /// Name for messages (the file path, or "<memory>").
  virtual std::string name() const = 0;
  /// What decides the train / validation / test split of row `row` (SplitSpec::of): the row's position in the file
  /// it came from. For one file that is the row itself; a ConcatSource gives each row its position within its own
  /// file, so a file's split is the same whether it is read alone or in a list.
  virtual int64_t split_key(int64_t row) const { return row; }
};

/// A dataset held in memory: what `dfcl generate` builds when no HDF5 is available, and tests use.
class MemorySource final : public RowSource {
 public:
  MemorySource(Meta meta, Table table, int64_t chunk_rows = 65536);
  const Meta& meta() const override { return meta_; }
  int64_t chunk_rows() const override { return chunk_rows_; }
  void read(int64_t begin, int64_t count, Table& out) override;
  void read_source(int64_t begin, int64_t count, std::vector<uint8_t>& out) override;
  std::string name() const override { return "<memory>"; }
  const Table& table() const { return table_; }

 private:
  Meta meta_;
  Table table_;
  int64_t chunk_rows_;
};

/// Opens a dataset file by extension (.h5/.hdf5). Throws IoError when dfcl was built without HDF5.
std::unique_ptr<RowSource> open_source(const std::string& path);
/// Opens one file, or several as one dataset (ConcatSource, concat_source.h). `key` names the config key in messages.
std::unique_ptr<RowSource> open_sources(const std::vector<std::string>& paths, const std::string& key);

/// The first `max_rows` RCT rows (source = 0) of split `which` (kAll: every split) of `source`, in row order, read chunk
/// by chunk (chunks without one are skipped after reading their source column only). `purpose` names the reader in the
/// DataError thrown when there are none.
Table read_rct_rows(RowSource& source, const SplitSpec& split, Split which, int64_t max_rows, const std::string& purpose);

/// Whether `source` has a trial row (source = 0), from its rows' source column (not the file's rct_rows attribute,
/// which a hand-edited file may contradict): reads the source column up to the first trial row.
bool has_rct_rows(RowSource& source);

/// Throws DataError("<where>: field 'f', row r: what; fix") for the first bad row of `t`, if any.
void check_rows(const Table& t, const Meta& meta, const std::string& where, int64_t first_row);

}  // namespace dfcl::data
