// \brief mutate_h5 (h5_mutator.h): edits decoded from the fuzz input, applied through HDF5's C API.
#include "h5_mutator.h"

#include <hdf5.h>

#include <algorithm>  // for std::min
#include <cstring>    // for std::strlen

namespace dfcl::fuzz {
namespace {

// The element types an edit may write: what dfcl writes, and what other tools write instead.
hid_t element_type(uint32_t k) {
  switch (k % 8) {
    case 0: return H5T_NATIVE_INT8;
    case 1: return H5T_NATIVE_UINT8;
    case 2: return H5T_NATIVE_INT32;
    case 3: return H5T_NATIVE_INT64;
    case 4: return H5T_NATIVE_FLOAT;
    case 5: return H5T_NATIVE_DOUBLE;
    case 6: return H5T_NATIVE_UINT64;
    default: return H5T_NATIVE_INT16;
  }
}

// A fixed-length string type (strings where numbers belong).
hid_t string_type() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, 8);
  return t;
}

// Values for n elements of `type`: raw input bytes, or (every other byte pair) a special value.
std::vector<uint8_t> values(Bytes& in, hid_t type, size_t n) {
  const size_t w = H5Tget_size(type);
  std::vector<uint8_t> v(n * w);
  const uint8_t style = in.u8() % 4;
  for (size_t i = 0; i < n; ++i) {
    uint8_t* e = v.data() + i * w;
    if (style == 0 || H5Tget_class(type) != H5T_FLOAT) {
      in.fill(e, std::min<size_t>(w, 8));
    } else {
      static const double special[] = {0.0, -1.0, 1e30, -1e30, 1.0 / 0.0, -1.0 / 0.0, 0.0 / 0.0, 0.5, 3.5, 1e-40};
      const double d = special[in.below(10)];
      if (w == 4) {
        const float f = float(d);
        std::memcpy(e, &f, 4);
      } else {
        std::memcpy(e, &d, 8);
      }
    }
  }
  return v;
}

void replace_dataset(hid_t file, const std::string& name, Bytes& in) {
  if (H5Lexists(file, name.c_str(), H5P_DEFAULT) > 0) H5Ldelete(file, name.c_str(), H5P_DEFAULT);
  const int rank = 1 + int(in.below(3));  // 1..3
  hsize_t dims[3] = {in.below(40), 1 + hsize_t(in.below(6)), 1 + hsize_t(in.below(3))};
  const bool strings = in.below(8) == 0;
  const hid_t type = strings ? string_type() : element_type(in.u8());
  size_t n = 1;
  for (int k = 0; k < rank; ++k) n *= dims[k];
  hid_t space = H5Screate_simple(rank, dims, nullptr);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (in.below(2) && dims[0] > 0) {  // chunked (and maybe deflated), as dfcl writes; else contiguous
    hsize_t chunk[3] = {std::max<hsize_t>(1, dims[0] / 2), dims[1], dims[2]};
    H5Pset_chunk(dcpl, rank, chunk);
    if (in.below(2)) H5Pset_deflate(dcpl, 1);
  }
  hid_t d = H5Dcreate2(file, name.c_str(), type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  if (d >= 0) {
    const std::vector<uint8_t> v = values(in, type, n);
    if (n > 0) H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    H5Dclose(d);
  }
  H5Pclose(dcpl);
  H5Sclose(space);
  if (strings) H5Tclose(type);
}

// Overwrites one element of an existing dataset with a value from the input, in the dataset's own type.
void poke(hid_t file, const std::string& name, Bytes& in) {
  if (H5Lexists(file, name.c_str(), H5P_DEFAULT) <= 0) return;
  hid_t d = H5Dopen2(file, name.c_str(), H5P_DEFAULT);
  if (d < 0) return;
  hid_t space = H5Dget_space(d);
  const int rank = H5Sget_simple_extent_ndims(space);
  hsize_t dims[8] = {0}, at[8] = {0}, one[8];
  if (rank > 0 && rank <= 8 && H5Sget_simple_extent_dims(space, dims, nullptr) == rank) {
    bool empty = false;
    for (int k = 0; k < rank; ++k) {
      one[k] = 1;
      empty |= dims[k] == 0;
      at[k] = dims[k] ? in.u32() % dims[k] : 0;
    }
    hid_t type = H5Dget_type(d);
    hid_t native = H5Tget_native_type(type, H5T_DIR_DEFAULT);
    if (!empty && native >= 0 && H5Tget_class(native) != H5T_STRING) {
      const std::vector<uint8_t> v = values(in, native, 1);
      hid_t ms = H5Screate_simple(rank, one, nullptr);
      H5Sselect_hyperslab(space, H5S_SELECT_SET, at, nullptr, one, nullptr);
      H5Dwrite(d, native, ms, space, H5P_DEFAULT, v.data());
      H5Sclose(ms);
    }
    if (native >= 0) H5Tclose(native);
    H5Tclose(type);
  }
  H5Sclose(space);
  H5Dclose(d);
}

void replace_attribute(hid_t file, const std::string& name, Bytes& in) {
  if (H5Aexists(file, name.c_str()) > 0) H5Adelete(file, name.c_str());
  const uint32_t kind = in.below(4);  // numbers, a scalar number, variable-length strings, fixed strings
  const hsize_t n = in.below(7);
  if (kind == 2) {
    std::vector<std::string> s(n);
    std::vector<const char*> p(n);
    for (hsize_t i = 0; i < n; ++i) {
      s[i].resize(in.below(6));
      for (char& c : s[i]) c = char(in.u8() | (in.below(4) == 0 ? 0 : 0x20));  // mostly printable, sometimes not
      p[i] = s[i].c_str();
    }
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t space = H5Screate_simple(1, &n, nullptr);
    hid_t a = H5Acreate2(file, name.c_str(), t, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) H5Awrite(a, t, p.data()), H5Aclose(a);
    H5Sclose(space), H5Tclose(t);
    return;
  }
  const hid_t type = kind == 3 ? string_type() : element_type(in.u8());
  const bool scalar = kind == 1;
  hid_t space = scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr);
  hid_t a = H5Acreate2(file, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (a >= 0) {
    const std::vector<uint8_t> v = values(in, type, scalar ? 1 : size_t(n));
    if (!v.empty()) H5Awrite(a, type, v.data());
    H5Aclose(a);
  }
  H5Sclose(space);
  if (kind == 3) H5Tclose(type);
}

}  // namespace

void mutate_h5(const std::string& path, Bytes& in, const std::vector<std::string>& datasets,
               const std::vector<std::string>& attributes) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  if (file < 0) return;
  for (int edit = 0; edit < 16 && !in.empty(); ++edit) {
    const uint32_t op = in.below(5);
    const std::string& dset = datasets[in.below(uint32_t(datasets.size()))];
    const std::string& attr = attributes[in.below(uint32_t(attributes.size()))];
    switch (op) {
      case 0: replace_dataset(file, dset, in); break;
      case 1: if (H5Lexists(file, dset.c_str(), H5P_DEFAULT) > 0) H5Ldelete(file, dset.c_str(), H5P_DEFAULT); break;
      case 2: poke(file, dset, in); break;
      case 3: replace_attribute(file, attr, in); break;
      default: if (H5Aexists(file, attr.c_str()) > 0) H5Adelete(file, attr.c_str()); break;
    }
  }
  H5Fclose(file);
}

}  // namespace dfcl::fuzz
