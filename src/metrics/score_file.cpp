// \brief Scores files in HDF5 (see score_file.h).
#include "metrics/score_file.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::min
#include <cstring>    // for std::memcpy

#include "core/error.h"  // for DataError, IoError
#ifdef DFCL_HAVE_HDF5
#include <hdf5.h>      // for the HDF5 C API
#include <sys/stat.h>  // for stat

#include "data/h5_util.h"  // for Hid, quiet, write_array
#endif

namespace dfcl::metrics {

#ifdef DFCL_HAVE_HDF5
namespace {

using Handle = data::h5::Hid;

constexpr int64_t kBlock = 65536;
constexpr const char* kNames[2] = {"r_hat", "c_hat"};

}  // namespace

ScoreTable read_score_file(const std::string& path, const std::vector<int64_t>& rows, int64_t expect_rows,
                           int expect_arms) {
  data::h5::quiet();
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw DataError(
        fmt::format("{}: no such scores file; a scorer is oracle, random, true_roi, a checkpoint from `dfcl train` "
                    "(.ckpt) or a scores file: HDF5 with r_hat and c_hat (N x M float32); fix the name or the path",
                    path));
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw DataError(fmt::format(
        "{}: not an HDF5 file: scores files must be HDF5, with datasets r_hat and c_hat (N x M float32, the dataset's "
        "row order); {}write them with h5py (f.create_dataset('r_hat', data=r.astype('float32')), likewise c_hat) "
        "or with metrics::write_score_file",
        path, path.size() > 4 && path.compare(path.size() - 4, 4, ".csv") == 0 ? "CSV is not read: " : ""));
  }
  Handle file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (file < 0) throw DataError(fmt::format("{}: the HDF5 file cannot be opened (truncated or corrupt); re-create it", path));
  int64_t n = -1;
  int m = -1;
  for (const char* name : kNames) {
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
      throw DataError(
          fmt::format("{}: dataset '{}' is missing; a scores file holds r_hat and c_hat (N x M float32, "
                      "the dataset's row order)",
                      path, name));
    Handle d(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
    Handle space(H5Dget_space(d), H5Sclose);
    hsize_t dims[2] = {0, 0};
    if (H5Sget_simple_extent_ndims(space) != 2)
      throw DataError(fmt::format("{}: dataset '{}' must be 2-D (rows x arms)", path, name));
    H5Sget_simple_extent_dims(space, dims, nullptr);
    if (n >= 0 && (int64_t(dims[0]) != n || int(dims[1]) != m))
      throw DataError(
          fmt::format("{}: shape mismatch: 'c_hat' is {} x {} but 'r_hat' is {} x {}", path, dims[0], dims[1], n, m));
    n = int64_t(dims[0]), m = int(dims[1]);
  }
  if (expect_rows >= 0 && n != expect_rows)
    throw DataError(
        fmt::format("{}: the scores have {} rows but the dataset has {}; the scores must follow the "
                    "dataset's row order, one row per dataset row",
                    path, n, expect_rows));
  if (expect_arms >= 0 && m != expect_arms)
    throw DataError(
        fmt::format("{}: the scores have {} arms but the dataset has {}; predict every arm, control included", path, m,
                    expect_arms));
  for (size_t k = 1; k < rows.size(); ++k)
    if (rows[k] <= rows[k - 1]) throw DataError(fmt::format("{}: row selection must be ascending", path));
  if (!rows.empty() && (rows.front() < 0 || rows.back() >= n))
    throw DataError(fmt::format("{}: row {} is outside the file's {} rows", path, rows.back(), n));
  ScoreTable t;
  t.n = rows.empty() ? n : int64_t(rows.size());
  t.m = m;
  t.r.resize(size_t(t.n) * m);
  t.c.resize(size_t(t.n) * m);
  std::vector<float> buf;
  for (int which = 0; which < 2; ++which) {
    Handle d(H5Dopen2(file, kNames[which], H5P_DEFAULT), H5Dclose);
    Handle fs(H5Dget_space(d), H5Sclose);
    float* out = which == 0 ? t.r.data() : t.c.data();
    size_t next = 0;  // next selected row
    for (int64_t a = 0; a < n; a += kBlock) {
      const int64_t cnt = std::min(kBlock, n - a);
      if (!rows.empty() && (next >= rows.size() || rows[next] >= a + cnt)) continue;  // nothing selected here
      buf.resize(size_t(cnt) * m);
      hsize_t start[2] = {hsize_t(a), 0}, count[2] = {hsize_t(cnt), hsize_t(m)};
      Handle ms(H5Screate_simple(2, count, nullptr), H5Sclose);
      if (H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, nullptr, count, nullptr) < 0 ||
          H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, buf.data()) < 0)
        throw DataError(fmt::format("{}: dataset '{}', rows [{}, {}): read failed; the file is corrupt or truncated",
                                    path, kNames[which], a, a + cnt));
      if (rows.empty()) {
        std::memcpy(out + size_t(a) * m, buf.data(), buf.size() * sizeof(float));
      } else {
        for (; next < rows.size() && rows[next] < a + cnt; ++next)
          std::memcpy(out + next * m, buf.data() + size_t(rows[next] - a) * m, m * sizeof(float));
      }
    }
  }
  return t;
}

void write_score_file(const std::string& path, const solver::Scores& s) {
  data::h5::quiet();
  Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
  if (file < 0)
    throw IoError(fmt::format("cannot create the scores file '{}': check the directory exists and is writable", path));
  const std::vector<hsize_t> dims{hsize_t(s.n), hsize_t(s.m)};
  data::h5::write_array(file, kNames[0], H5T_NATIVE_FLOAT, dims, s.r, path);
  data::h5::write_array(file, kNames[1], H5T_NATIVE_FLOAT, dims, s.c, path);
}

#else  // built without HDF5

ScoreTable read_score_file(const std::string& path, const std::vector<int64_t>&, int64_t, int) {
  throw IoError(
      fmt::format("this dfcl was built without HDF5, so it cannot read the scores file '{}'; rebuild with "
                  "libhdf5-dev",
                  path));
}
void write_score_file(const std::string& path, const solver::Scores&) {
  throw IoError(fmt::format("this dfcl was built without HDF5, so it cannot write '{}'", path));
}

#endif

}  // namespace dfcl::metrics
