// \brief HDF5 helpers (see h5_util.h).
#include "data/h5_util.h"

#include <fmt/format.h>  // for fmt::format

#include <algorithm>  // for std::min

#include "core/error.h"  // for IoError

namespace dfcl::data::h5 {
namespace {
herr_t collect(unsigned n, const H5E_error2_t* e, void* data) {
  auto* out = static_cast<std::vector<std::string>*>(data);
  if (n < 3 && e->desc) out->push_back(e->desc);
  return 0;
}
}  // namespace

void quiet() {
  static const bool once = [] {
    // No library shutdown at exit: after a write that failed (disk full), HDF5 keeps the half-closed file in its
    // tables and its atexit shutdown crashes closing it again (a segfault after the clear error). dfcl closes every
    // file it writes explicitly before renaming it from .partial, so nothing is left for the shutdown to flush.
    H5dont_atexit();
    return true;
  }();
  (void)once;
  // Debian's HDF5 is thread-safe, and a thread-safe HDF5 keeps the error stack, and its printing, per thread: turned
  // off in the main thread only, a corrupt chunk read by the loader's prefetch thread printed an 18-line HDF5-DIAG
  // stack even under -q. So every thread that calls HDF5 turns it off for itself (every entry point calls quiet()).
  thread_local const bool here = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)here;
}

std::string error_text() {
  std::vector<std::string> msgs;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect, &msgs);
  H5Eclear2(H5E_DEFAULT);
  std::string s;
  for (const auto& m : msgs) s += (s.empty() ? "" : "; ") + m;
  return s.empty() ? "no detail" : s;
}

void write_array(hid_t file, const std::string& name, hid_t type, const std::vector<hsize_t>& dims, const void* data,
                 const std::string& path) {
  const int rank = static_cast<int>(dims.size());
  Hid space(H5Screate_simple(rank, dims.data(), nullptr), H5Sclose);
  Hid dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  bool empty = false;
  for (auto d : dims) empty = empty || d == 0;
  if (!empty) {
    std::vector<hsize_t> chunk(dims);
    chunk[0] = std::min<hsize_t>(dims[0], 65536);
    H5Pset_chunk(dcpl, rank, chunk.data());
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, 1);
    H5Pset_fletcher32(dcpl);
  }
  Hid d(H5Dcreate2(file, name.c_str(), type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), H5Dclose);
  if (d < 0 || (!empty && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0))
    throw IoError(fmt::format("{}: cannot write dataset '{}': {} (disk full or not writable?)", path, name, error_text()));
}

}  // namespace dfcl::data::h5
