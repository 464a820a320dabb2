// \brief HDF5 writer and reader for schema v1 (C API; see h5_dataset.h).
#include "data/h5_dataset.h"

#include <type_traits>  // for std::is_integral_v
#include <fmt/format.h>  // for fmt::format
#include <hdf5.h>        // for the HDF5 C API
#include <sys/stat.h>    // for stat

#include <array>    // for std::array
#include <cstdio>   // for std::rename, std::remove
#include <cstring>  // for std::memcpy
#include <type_traits>  // for std::is_integral_v

#include "core/atomic_file.h"  // for AtomicFile::move_into_place
#include "core/error.h"     // for DataError, IoError
#include "core/parallel.h"  // for parallel_for
#include "core/threads.h"   // for resolve_threads
#include "data/h5_filters.h"  // for encode_chunk
#include "data/h5_util.h"     // for Hid, error_text

namespace dfcl::data {
namespace {

// ---- columns of schema v1 ------------------------------------------------------------------
enum class Width { kOne, kFeatures, kArms };
struct Column {
  const char* name;
  Width width;
  size_t elem;
  bool propensity_only, truth_only;
};
constexpr std::array<Column, 8> kColumns{{
    {"features", Width::kFeatures, 4, false, false},
    {"treatment", Width::kOne, 4, false, false},
    {"revenue", Width::kOne, 4, false, false},
    {"cost", Width::kOne, 4, false, false},
    {"source", Width::kOne, 1, false, false},
    {"propensity", Width::kOne, 4, true, false},
    {"true_revenue", Width::kArms, 4, false, true},
    {"true_cost", Width::kArms, 4, false, true},
}};

bool column_present(const Column& c, const Meta& m) {
  return (!c.propensity_only || m.has_propensity) && (!c.truth_only || m.has_truth);
}
hsize_t column_width(const Column& c, const Meta& m) {
  return c.width == Width::kFeatures ? hsize_t(m.num_features) : c.width == Width::kArms ? hsize_t(m.num_arms) : 1;
}
hid_t column_type(size_t c) {
  switch (c) {
    case 1: return H5T_NATIVE_INT32;
    case 4: return H5T_NATIVE_UINT8;
    default: return H5T_NATIVE_FLOAT;
  }
}
// Pointer to row 0 of column `c` inside a Table.
void* column_data(Table& t, size_t c) {
  switch (c) {
    case 0: return t.features.data();
    case 1: return t.treatment.data();
    case 2: return t.revenue.data();
    case 3: return t.cost.data();
    case 4: return t.source.data();
    case 5: return t.propensity.data();
    case 6: return t.true_revenue.data();
    default: return t.true_cost.data();
  }
}
const void* column_data(const Table& t, size_t c) { return column_data(const_cast<Table&>(t), c); }

using h5::Hid;

// ---- attributes ----------------------------------------------------------------------------
void put_attr(hid_t obj, const char* name, hid_t type, const void* data, hsize_t n, bool scalar = false) {
  Hid space(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr), H5Sclose);
  Hid attr(H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (attr < 0 || H5Awrite(attr, type, data) < 0) throw IoError(fmt::format("cannot write attribute '{}': {}", name, h5::error_text()));
}
Hid string_type() {
  Hid t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}
void put_strings(hid_t obj, const char* name, const std::vector<std::string>& v) {
  std::vector<const char*> ptrs;
  for (const auto& s : v) ptrs.push_back(s.c_str());
  Hid t = string_type();
  put_attr(obj, name, t, ptrs.data(), ptrs.size());
}
void put_string(hid_t obj, const char* name, const std::string& s) {
  const char* p = s.c_str();
  Hid t = string_type();
  put_attr(obj, name, t, &p, 1, true);
}

bool has_attr(hid_t obj, const char* name) { return H5Aexists(obj, name) > 0; }
hsize_t attr_len(hid_t attr) {
  Hid space(H5Aget_space(attr), H5Sclose);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  return n < 0 ? 0 : hsize_t(n);
}
template <class T>
std::vector<T> get_numbers(hid_t obj, const char* name, hid_t mem_type, const std::string& file) {
  Hid attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  if (attr < 0) throw DataError(fmt::format("{}: attribute '{}' is missing; rewrite the file with dfcl generate/import", file, name));
  // HDF5 converts on read: 3.5 would come back as 3 and a string fails deep in the library. Integers must be stored
  // as integers, numbers as numbers (found by fuzzing the reader).
  Hid ftype(H5Aget_type(attr), H5Tclose);
  const H5T_class_t cls = H5Tget_class(ftype);
  if (std::is_integral_v<T> ? cls != H5T_INTEGER : cls != H5T_INTEGER && cls != H5T_FLOAT)
    throw DataError(fmt::format("{}: attribute '{}' stores {}, not {}; rewrite the file with dfcl generate/import",
                                file, name, cls == H5T_STRING ? "strings" : cls == H5T_FLOAT ? "floating-point numbers" : "non-numbers",
                                std::is_integral_v<T> ? "integers" : "numbers"));
  std::vector<T> v(attr_len(attr));
  if (!v.empty() && H5Aread(attr, mem_type, v.data()) < 0)
    throw DataError(fmt::format("{}: attribute '{}' cannot be read as numbers: {}", file, name, h5::error_text()));
  return v;
}
// One number: an attribute that holds none or several is refused (an empty rct_rows escaped as std::out_of_range).
template <class T>
T get_scalar(hid_t obj, const char* name, hid_t mem_type, const std::string& file) {
  const std::vector<T> v = get_numbers<T>(obj, name, mem_type, file);
  if (v.size() != 1)
    throw DataError(fmt::format("{}: attribute '{}' holds {} values; it must hold one number; rewrite the file with "
                                "dfcl generate/import",
                                file, name, v.size()));
  return v[0];
}
std::vector<std::string> get_strings(hid_t obj, const char* name, const std::string& file) {
  Hid attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  if (attr < 0) throw DataError(fmt::format("{}: attribute '{}' is missing; rewrite the file with dfcl generate/import", file, name));
  Hid ftype(H5Aget_type(attr), H5Tclose);
  if (H5Tget_class(ftype) != H5T_STRING || !H5Tis_variable_str(ftype))
    throw DataError(fmt::format("{}: attribute '{}' must be variable-length strings", file, name));
  hsize_t n = attr_len(attr);
  std::vector<char*> ptrs(n, nullptr);
  Hid mt = string_type();
  if (n && H5Aread(attr, mt, ptrs.data()) < 0) throw DataError(fmt::format("{}: attribute '{}': {}", file, name, h5::error_text()));
  std::vector<std::string> out;
  for (char* p : ptrs) out.emplace_back(p ? p : "");
  if (n) {
    Hid space(H5Aget_space(attr), H5Sclose);
    H5Dvlen_reclaim(mt, space, H5P_DEFAULT, ptrs.data());
  }
  return out;
}

}  // namespace

// =============================================================================================
struct H5Writer::Impl {
  std::string path, partial;
  Meta meta;
  WriteOptions opt;
  Hid file;
  std::vector<std::pair<size_t, Hid>> dsets;  // (column index, dataset)
  int64_t written = 0;                        // rows on disk
  Table pending;                              // < chunk_rows rows waiting for a full chunk
  std::vector<int64_t> rct_rows;
  bool closed = false;

  void write_chunks(const Table& t, int64_t first, int64_t nchunks);
  void set_extent(int64_t rows);
};

H5Writer::H5Writer(const std::string& path, const Meta& meta, const WriteOptions& options) : impl_(new Impl) {
  h5::quiet();
  auto& I = *impl_;
  I.path = path;
  I.partial = path + ".partial";
  I.meta = meta;
  I.opt = options;
  if (I.opt.chunk_rows < 1) throw DataError(fmt::format("{}: chunk_rows must be >= 1", path));
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))  // said before any row is written, not at the rename
    throw IoError(fmt::format("'{}' is an existing directory; give the output a file name, e.g. {}/data.h5", path,
                              path));
  I.opt.threads = resolve_threads(I.opt.threads);
  I.rct_rows.assign(meta.num_arms, 0);
  I.pending.reset(meta, 0);
  I.file = Hid(H5Fcreate(I.partial.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (I.file < 0) throw IoError(fmt::format("cannot create '{}': {} (check the directory exists and is writable)", I.partial, h5::error_text()));
  for (size_t c = 0; c < kColumns.size(); ++c) {
    const Column& col = kColumns[c];
    if (!column_present(col, meta)) continue;
    hsize_t w = column_width(col, meta);
    int rank = col.width == Width::kOne ? 1 : 2;
    hsize_t dims[2] = {0, w}, maxdims[2] = {H5S_UNLIMITED, w}, chunk[2] = {hsize_t(I.opt.chunk_rows), w};
    Hid space(H5Screate_simple(rank, dims, maxdims), H5Sclose);
    Hid dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    H5Pset_chunk(dcpl, rank, chunk);
    // Order matters: it must match encode_chunk (shuffle, deflate, fletcher32).
    H5Pset_shuffle(dcpl);
    if (I.opt.deflate_level > 0) H5Pset_deflate(dcpl, unsigned(I.opt.deflate_level));
    H5Pset_fletcher32(dcpl);
    Hid d(H5Dcreate2(I.file, col.name, column_type(c), space, H5P_DEFAULT, dcpl, H5P_DEFAULT), H5Dclose);
    if (d < 0) throw IoError(fmt::format("cannot create dataset '{}' in '{}': {}", col.name, I.partial, h5::error_text()));
    I.dsets.emplace_back(c, std::move(d));
  }
}

H5Writer::~H5Writer() {
  if (!impl_->closed) {  // abandoned (an exception): never leave a partial file behind
    impl_->dsets.clear();
    impl_->file.reset();
    std::remove(impl_->partial.c_str());
  }
}

int64_t H5Writer::rows_written() const { return impl_->written + impl_->pending.rows; }

void H5Writer::Impl::set_extent(int64_t rows) {
  for (auto& [c, d] : dsets) {
    hsize_t dims[2] = {hsize_t(rows), column_width(kColumns[c], meta)};
    if (H5Dset_extent(d, dims) < 0) throw IoError(fmt::format("{}: cannot extend '{}': {}", partial, kColumns[c].name, h5::error_text()));
  }
}

void H5Writer::Impl::write_chunks(const Table& t, int64_t first, int64_t nchunks) {
  if (nchunks <= 0) return;
  h5::quiet();  // in case a writer thread appends
  const int64_t R = opt.chunk_rows;
  set_extent(written + nchunks * R);
  const int64_t ncols = static_cast<int64_t>(dsets.size());
  std::vector<std::vector<uint8_t>> enc(nchunks * ncols);
  parallel_for(nchunks * ncols, opt.threads, [&](int64_t job) {
    int64_t k = job / ncols;
    size_t c = dsets[job % ncols].first;
    size_t row_bytes = kColumns[c].elem * column_width(kColumns[c], meta);
    const auto* base = static_cast<const uint8_t*>(column_data(t, c)) + (first + k * R) * row_bytes;
    encode_chunk(base, R * row_bytes, kColumns[c].elem, opt.deflate_level, enc[job]);
  });
  for (int64_t job = 0; job < nchunks * ncols; ++job) {
    int64_t k = job / ncols;
    auto& [c, d] = dsets[job % ncols];
    hsize_t offset[2] = {hsize_t(written + k * R), 0};
    if (H5Dwrite_chunk(d, H5P_DEFAULT, 0, offset, enc[job].size(), enc[job].data()) < 0)
      throw IoError(fmt::format("{}: writing a chunk of '{}' failed: {} (disk full?)", partial, kColumns[c].name, h5::error_text()));
    std::vector<uint8_t>().swap(enc[job]);
  }
  written += nchunks * R;
}

void H5Writer::append(const Table& block) {
  auto& I = *impl_;
  if (I.closed) throw IoError(fmt::format("{}: append after close", I.path));
  if (block.num_features != I.meta.num_features || block.num_arms != I.meta.num_arms ||
      block.with_truth != I.meta.has_truth || block.with_propensity != I.meta.has_propensity)
    throw DataError(fmt::format("{}: appended block has {} features / {} arms but the dataset has {} / {}", I.path,
                                block.num_features, block.num_arms, I.meta.num_features, I.meta.num_arms));
  check_rows(block, I.meta, I.path, rows_written());
  for (int64_t i = 0; i < block.rows; ++i)
    if (block.source[i] == uint8_t(Source::kRct)) ++I.rct_rows[block.treatment[i]];

  const int64_t R = I.opt.chunk_rows;
  int64_t i = 0;
  if (I.pending.rows > 0) {  // top up the pending chunk first
    int64_t take = std::min(R - I.pending.rows, block.rows);
    int64_t at = I.pending.rows;
    I.pending.resize(at + take);
    for (int64_t k = 0; k < take; ++k) I.pending.copy_row(at + k, block, k);
    i = take;
    if (I.pending.rows == R) {
      I.write_chunks(I.pending, 0, 1);
      I.pending.resize(0);
    }
  }
  int64_t full = (block.rows - i) / R;  // whole chunks straight from the caller's memory
  I.write_chunks(block, i, full);
  i += full * R;
  int64_t rest = block.rows - i;
  if (rest > 0) {
    I.pending.resize(rest);
    for (int64_t k = 0; k < rest; ++k) I.pending.copy_row(k, block, i + k);
  }
}

Meta H5Writer::close() {
  auto& I = *impl_;
  if (I.pending.rows > 0) {  // the tail goes through HDF5's own filter pipeline
    int64_t n = I.pending.rows;
    I.set_extent(I.written + n);
    for (auto& [c, d] : I.dsets) {
      hsize_t w = column_width(kColumns[c], I.meta);
      int rank = kColumns[c].width == Width::kOne ? 1 : 2;
      hsize_t start[2] = {hsize_t(I.written), 0}, count[2] = {hsize_t(n), w};
      Hid fs(H5Dget_space(d), H5Sclose);
      H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, nullptr, count, nullptr);
      Hid ms(H5Screate_simple(rank, count, nullptr), H5Sclose);
      if (H5Dwrite(d, column_type(c), ms, fs, H5P_DEFAULT, column_data(I.pending, c)) < 0)
        throw IoError(fmt::format("{}: writing '{}' failed: {}", I.partial, kColumns[c].name, h5::error_text()));
    }
    I.written += n;
    I.pending.resize(0);
  }
  Meta& m = I.meta;
  m.num_rows = I.written;
  m.rct_arm_rows = I.rct_rows;
  m.rct_rows = 0;
  for (auto n : I.rct_rows) m.rct_rows += n;
  m.observational_rows = m.num_rows - m.rct_rows;
  if (m.rct_rows == 0) m.rct_arm_rows.clear();
  m.validate(I.path);

  int32_t version = kSchemaVersion, arms = m.num_arms;
  put_attr(I.file, "schema_version", H5T_NATIVE_INT32, &version, 1, true);
  put_attr(I.file, "num_arms", H5T_NATIVE_INT32, &arms, 1, true);
  put_strings(I.file, "arm_names", m.arm_names);
  put_strings(I.file, "feature_names", m.feature_names);
  if (!m.rct_propensity.empty())
    put_attr(I.file, "rct_propensity", H5T_NATIVE_DOUBLE, m.rct_propensity.data(), m.rct_propensity.size());
  if (!m.rct_arm_rows.empty())
    put_attr(I.file, "rct_arm_rows", H5T_NATIVE_INT64, m.rct_arm_rows.data(), m.rct_arm_rows.size());
  put_attr(I.file, "rct_rows", H5T_NATIVE_INT64, &m.rct_rows, 1, true);
  put_attr(I.file, "observational_rows", H5T_NATIVE_INT64, &m.observational_rows, 1, true);
  put_string(I.file, "origin", m.origin);

  I.dsets.clear();
  if (H5Fclose(I.file.id) < 0) throw IoError(fmt::format("{}: closing failed: {}", I.partial, h5::error_text()));
  I.file.id = -1;
  AtomicFile::move_into_place(I.partial, I.path, "dataset");
  I.closed = true;
  return m;
}

// =============================================================================================
struct H5Reader::Impl {
  std::string path;
  Meta meta;
  Hid file;
  std::array<Hid, kColumns.size()> dsets;
  int64_t chunk_rows = 0;

  [[noreturn]] void fail(const std::string& what) const { throw DataError(fmt::format("{}: {}", path, what)); }
  void read_column(size_t c, int64_t begin, int64_t count, void* dst);
};

H5Reader::H5Reader(const std::string& path) : impl_(new Impl) {
  h5::quiet();
  auto& I = *impl_;
  I.path = path;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw DataError(fmt::format("{}: no such file; create it with 'dfcl generate' or 'dfcl import', or fix the path", path));
  htri_t is = H5Fis_hdf5(path.c_str());
  if (is <= 0) {
    H5Eclear2(H5E_DEFAULT);
    I.fail("not a readable HDF5 file (truncated, corrupt, or another format); re-create or re-copy it");
  }
  Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  I.file = Hid(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl), H5Fclose);
  if (I.file < 0) I.fail(fmt::format("cannot open: the file is truncated or corrupt ({}); re-create or re-copy it", h5::error_text()));

  if (!has_attr(I.file, "schema_version"))
    I.fail("attribute 'schema_version' is missing: not a dfcl dataset; convert it with 'dfcl import'");
  auto ver = get_numbers<int32_t>(I.file, "schema_version", H5T_NATIVE_INT32, path);
  if (ver.size() != 1 || ver[0] != kSchemaVersion)
    I.fail(fmt::format("schema_version is {}, this dfcl reads version {}; re-create the file with this dfcl",
                       ver.empty() ? -1 : ver[0], kSchemaVersion));

  Meta& m = I.meta;
  m.arm_names = get_strings(I.file, "arm_names", path);
  m.feature_names = get_strings(I.file, "feature_names", path);
  m.num_arms = static_cast<int>(m.arm_names.size());
  if (has_attr(I.file, "num_arms")) {
    auto a = get_numbers<int32_t>(I.file, "num_arms", H5T_NATIVE_INT32, path);
    if (a.size() != 1 || a[0] != m.num_arms)
      I.fail(fmt::format("attribute 'num_arms' = {} but 'arm_names' lists {} arms; the two must agree", a.empty() ? -1 : a[0], m.num_arms));
  }
  if (has_attr(I.file, "rct_propensity")) m.rct_propensity = get_numbers<double>(I.file, "rct_propensity", H5T_NATIVE_DOUBLE, path);
  if (has_attr(I.file, "rct_arm_rows")) m.rct_arm_rows = get_numbers<int64_t>(I.file, "rct_arm_rows", H5T_NATIVE_INT64, path);
  if (has_attr(I.file, "rct_rows")) m.rct_rows = get_scalar<int64_t>(I.file, "rct_rows", H5T_NATIVE_INT64, path);
  if (has_attr(I.file, "observational_rows"))
    m.observational_rows = get_scalar<int64_t>(I.file, "observational_rows", H5T_NATIVE_INT64, path);
  if (has_attr(I.file, "origin")) {  // free text: read when it is one variable-length string, else left out
    Hid attr(H5Aopen(I.file, "origin", H5P_DEFAULT), H5Aclose);
    Hid ftype(H5Aget_type(attr), H5Tclose);
    if (H5Tget_class(ftype) == H5T_STRING && H5Tis_variable_str(ftype) > 0 && attr_len(attr) == 1) {
      Hid mt = string_type();
      char* p = nullptr;  // room for exactly one pointer: hence the checks above (a list of strings overran it)
      if (H5Aread(attr, mt, &p) >= 0 && p) m.origin = p, H5free_memory(p);
    }
  }
  m.has_propensity = H5Lexists(I.file, "propensity", H5P_DEFAULT) > 0;
  m.has_truth = H5Lexists(I.file, "true_revenue", H5P_DEFAULT) > 0 || H5Lexists(I.file, "true_cost", H5P_DEFAULT) > 0;

  // Datasets and shapes: every column has the row count of 'features'.
  int64_t rows = -1;
  for (size_t c = 0; c < kColumns.size(); ++c) {
    const Column& col = kColumns[c];
    if (!column_present(col, m)) continue;
    if (H5Lexists(I.file, col.name, H5P_DEFAULT) <= 0)
      I.fail(fmt::format("dataset '{}' is missing{}; schema v1 needs it (docs/data.md)", col.name,
                         col.truth_only ? " (true_revenue and true_cost come together)" : ""));
    Hid dapl(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose);
    Hid d(H5Dopen2(I.file, col.name, dapl), H5Dclose);
    if (d < 0) I.fail(fmt::format("dataset '{}' cannot be opened: {}", col.name, h5::error_text()));
    {  // the stored type: HDF5 converts on read, and would truncate 3.5 to arm 3 or fail on strings as "corrupt"
      Hid ft(H5Dget_type(d), H5Tclose);
      const H5T_class_t cls = H5Tget_class(ft);
      const bool ids = c == 1 || c == 4;  // treatment, source
      if (ids && cls != H5T_INTEGER)
        I.fail(fmt::format("dataset '{}' stores {}, not integers; {} must be integer ids (int32 arm ids for treatment, "
                           "uint8 0/1 for source): write them as integers, or re-create the file with dfcl import",
                           col.name, cls == H5T_FLOAT ? "floating-point numbers" : "non-numbers", col.name));
      if (!ids && cls != H5T_FLOAT && cls != H5T_INTEGER)
        I.fail(fmt::format("dataset '{}' stores {}, not numbers; schema v1 stores float32 there (docs/data.md): "
                           "convert the column to numbers, or re-create the file with dfcl import",
                           col.name, cls == H5T_STRING ? "strings" : "values of another type"));
    }
    Hid space(H5Dget_space(d), H5Sclose);
    int nd = H5Sget_simple_extent_ndims(space);
    hsize_t dims[2] = {0, 1};
    int want = col.width == Width::kOne ? 1 : 2;
    if (nd != want) I.fail(fmt::format("dataset '{}' has {} dimensions, expected {}", col.name, nd, want));
    H5Sget_simple_extent_dims(space, dims, nullptr);
    if (col.width == Width::kFeatures) {
      m.num_features = static_cast<int>(dims[1]);
      if (m.feature_names.size() != dims[1])
        I.fail(fmt::format("dataset 'features' has {} columns but attribute 'feature_names' lists {}", dims[1], m.feature_names.size()));
    }
    if (col.width == Width::kArms && dims[1] != hsize_t(m.num_arms))
      I.fail(fmt::format("dataset '{}' has {} columns but the file has {} arms (arm_names)", col.name, dims[1], m.num_arms));
    if (rows < 0) rows = int64_t(dims[0]);
    else if (int64_t(dims[0]) != rows)
      I.fail(fmt::format("shape mismatch: dataset '{}' has {} rows but 'features' has {}", col.name, dims[0], rows));
    Hid dcpl(H5Dget_create_plist(d), H5Pclose);
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
      hsize_t cd[2] = {0, 0};
      H5Pget_chunk(dcpl, 2, cd);
      if (c == 0) I.chunk_rows = int64_t(cd[0]);
    }
    I.dsets[c] = std::move(d);
  }
  m.num_rows = rows;
  if (I.chunk_rows <= 0) I.chunk_rows = 65536;
  m.validate(path);
}

H5Reader::~H5Reader() = default;
const Meta& H5Reader::meta() const { return impl_->meta; }
int64_t H5Reader::chunk_rows() const { return impl_->chunk_rows; }
std::string H5Reader::name() const { return impl_->path; }

void H5Reader::Impl::read_column(size_t c, int64_t begin, int64_t count, void* dst) {
  h5::quiet();  // this thread may be the loader's prefetch thread
  const Column& col = kColumns[c];
  hsize_t w = column_width(col, meta);
  int rank = col.width == Width::kOne ? 1 : 2;
  hsize_t start[2] = {hsize_t(begin), 0}, cnt[2] = {hsize_t(count), w};
  Hid fs(H5Dget_space(dsets[c]), H5Sclose);
  Hid ms(H5Screate_simple(rank, cnt, nullptr), H5Sclose);
  if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, nullptr, cnt, nullptr) < 0 ||
      H5Dread(dsets[c], column_type(c), ms, fs, H5P_DEFAULT, dst) < 0)
    fail(fmt::format("dataset '{}', rows [{}, {}): read failed ({}); the file is corrupt or truncated "
                     "(a checksum mismatch means damaged data): re-create or re-copy it",
                     col.name, begin, begin + count, h5::error_text()));
}

void H5Reader::read(int64_t begin, int64_t count, Table& out) {
  auto& I = *impl_;
  if (begin < 0 || count < 0 || begin + count > I.meta.num_rows)
    I.fail(fmt::format("rows [{}, {}) are outside the file's {} rows", begin, begin + count, I.meta.num_rows));
  out.reset(I.meta, count);
  if (count == 0) return;
  for (size_t c = 0; c < kColumns.size(); ++c)
    if (column_present(kColumns[c], I.meta)) I.read_column(c, begin, count, column_data(out, c));
  for (int64_t i = 0; i < count; ++i) out.row_id[i] = begin + i;
  check_rows(out, I.meta, I.path, begin);
}

void H5Reader::read_source(int64_t begin, int64_t count, std::vector<uint8_t>& out) {
  out.resize(count);
  if (count) impl_->read_column(4, begin, count, out.data());
}

}  // namespace dfcl::data
