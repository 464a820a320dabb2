// \brief Schema-v1 datasets in HDF5: a chunked, compressed, checksummed writer and a validating reader.
//
// Layout (docs/data.md): /features (N x F f32), /treatment (N i32), /revenue, /cost (N f32),
// /source (N u8), optional /propensity (N f32), /true_revenue, /true_cost (N x M f32); attributes on
// the root group. Every dataset is chunked along rows with the same chunk height, filtered with
// shuffle + deflate + Fletcher32.
#pragma once
#include <cstdint>  // for int64_t
#include <memory>   // for std::unique_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

#include "data/schema.h"  // for Meta, Table
#include "data/source.h"  // for RowSource
#include "data/write_options.h"  // for WriteOptions

namespace dfcl::data {

/// Writes a dataset to `path` through `path.partial`, renamed on close(): a crash never leaves a
/// file that looks complete. Rows are appended in blocks of any size; full chunks are compressed in
/// parallel and written with H5Dwrite_chunk. RCT arm counts are accumulated and checked on close().
class H5Writer {
 public:
  H5Writer(const std::string& path, const Meta& meta, const WriteOptions& options = {});
  ~H5Writer();
  H5Writer(const H5Writer&) = delete;
  H5Writer& operator=(const H5Writer&) = delete;

  /// Appends rows. Throws DataError (naming `path`, the field and the row) on an invalid value.
  void append(const Table& block);
  /// Flushes, writes the attributes, validates the whole (RCT arms with rows), renames into place.
  Meta close();
  int64_t rows_written() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Reads a schema-v1 dataset; checks version, shapes and attributes at open, values on every read.
class H5Reader final : public RowSource {
 public:
  explicit H5Reader(const std::string& path);
  ~H5Reader() override;
  const Meta& meta() const override;
  int64_t chunk_rows() const override;
  void read(int64_t begin, int64_t count, Table& out) override;
  void read_source(int64_t begin, int64_t count, std::vector<uint8_t>& out) override;
  std::string name() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfcl::data
