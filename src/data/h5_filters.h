// \brief HDF5's shuffle + deflate + Fletcher32 filter pipeline, applied by dfcl itself so that chunks
// can be compressed on many threads and written with H5Dwrite_chunk. The bytes are exactly what
// HDF5's own pipeline produces, so any HDF5 reader (h5py included) decodes and verifies them.
#pragma once
#include <cstddef>  // for size_t
#include <cstdint>  // for uint32_t, uint8_t
#include <vector>   // for std::vector

namespace dfcl::data {

/// HDF5's Fletcher32 checksum (H5_checksum_fletcher32): 16-bit big-endian words, 360-word blocks.
uint32_t hdf5_fletcher32(const uint8_t* data, size_t len);

/// Encodes one chunk: byte shuffle (element size `elem`), zlib deflate at `level` (0 = no deflate),
/// then appends the little-endian Fletcher32 of the result.
void encode_chunk(const void* raw, size_t nbytes, size_t elem, int level, std::vector<uint8_t>& out);

}  // namespace dfcl::data
