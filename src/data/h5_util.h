// \brief Small HDF5 helpers shared by every file format dfcl writes: handle ownership, error text, whole-array datasets.
#pragma once
#include <hdf5.h>  // for hid_t, herr_t

#include <cstdint>  // for int64_t
#include <string>   // for std::string
#include <vector>   // for std::vector

namespace dfcl::data::h5 {

/// Owns one HDF5 identifier and closes it with the matching H5*close.
struct Hid {
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  Hid() = default;
  Hid(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  Hid(Hid&& o) noexcept : id(o.id), close(o.close) { o.id = -1; }
  Hid& operator=(Hid&& o) noexcept {
    reset();
    id = o.id, close = o.close, o.id = -1;
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  ~Hid() { reset(); }
  void reset() {
    if (id >= 0 && close) close(id);
    id = -1;
  }
  operator hid_t() const { return id; }
};

/// Turns off HDF5's own error printing (dfcl reports each error once, with context) in the calling thread: HDF5 keeps
/// it per thread, so every function that calls HDF5 and may run outside the main thread calls this first. Cheap after
/// the first call in a thread.
void quiet();
/// The innermost messages of HDF5's error stack ("checksum failed; ..."), and clears it.
std::string error_text();

/// Writes a whole array as a chunked, deflated, checksummed dataset (rank 1 or 2). `type` is a native HDF5 type.
void write_array(hid_t file, const std::string& name, hid_t type, const std::vector<hsize_t>& dims, const void* data,
                 const std::string& path_for_messages);

}  // namespace dfcl::data::h5
