// \brief The chunk filter pipeline (see h5_filters.h). Order matches H5Pset_shuffle, H5Pset_deflate, H5Pset_fletcher32.
#include "data/h5_filters.h"

#ifdef DFCL_HAVE_LIBDEFLATE
#include <libdeflate.h>  // for libdeflate_zlib_compress (2-3x faster than zlib, same stream format)
#else
#include <zlib.h>  // for compress2, compressBound
#endif

#include <stdexcept>  // for std::runtime_error

namespace dfcl::data {

uint32_t hdf5_fletcher32(const uint8_t* data, size_t nbytes) {
  size_t len = nbytes / 2;
  uint32_t sum1 = 0, sum2 = 0;
  while (len) {
    size_t tlen = len > 360 ? 360 : len;
    len -= tlen;
    do {
      sum1 += (uint32_t(data[0]) << 8) | uint32_t(data[1]);
      data += 2;
      sum2 += sum1;
    } while (--tlen);
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  }
  if (nbytes % 2) {
    sum1 += uint32_t(*data) << 8;
    sum2 += sum1;
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  }
  sum1 = (sum1 & 0xffff) + (sum1 >> 16);
  sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  return (sum2 << 16) | sum1;
}

void encode_chunk(const void* raw, size_t nbytes, size_t elem, int level, std::vector<uint8_t>& out) {
  // 1. Shuffle: byte b of element i goes to b * n + i (H5Z shuffle; a trailing partial element is copied as is).
  std::vector<uint8_t> shuffled(nbytes);
  const auto* src = static_cast<const uint8_t*>(raw);
  const size_t n = nbytes / elem;
  if (elem > 1 && n > 1) {
    for (size_t b = 0; b < elem; ++b) {
      uint8_t* dst = shuffled.data() + b * n;
      for (size_t i = 0; i < n; ++i) dst[i] = src[i * elem + b];
    }
    for (size_t k = n * elem; k < nbytes; ++k) shuffled[k] = src[k];
  } else {
    std::copy(src, src + nbytes, shuffled.begin());
  }
  // 2. Deflate: a zlib stream, which is what H5Z_filter_deflate writes and inflates.
  if (level > 0) {
#ifdef DFCL_HAVE_LIBDEFLATE
    struct Compressor {  // one per thread and level: allocation costs more than a small chunk
      int level = -1;
      libdeflate_compressor* c = nullptr;
      ~Compressor() { libdeflate_free_compressor(c); }
    };
    thread_local Compressor comp;
    if (comp.level != level) {
      libdeflate_free_compressor(comp.c);
      comp.c = libdeflate_alloc_compressor(level);
      comp.level = level;
      if (!comp.c) throw std::runtime_error("libdeflate_alloc_compressor failed");
    }
    size_t bound = libdeflate_zlib_compress_bound(comp.c, nbytes);
    out.resize(bound + 4);
    size_t n = libdeflate_zlib_compress(comp.c, shuffled.data(), nbytes, out.data(), bound);
    if (n == 0) throw std::runtime_error("libdeflate_zlib_compress failed");
    out.resize(n + 4);
#else
    uLongf dst_len = compressBound(static_cast<uLong>(nbytes));
    out.resize(dst_len + 4);
    if (compress2(out.data(), &dst_len, shuffled.data(), static_cast<uLong>(nbytes), level) != Z_OK)
      throw std::runtime_error("zlib compress2 failed");
    out.resize(dst_len + 4);
#endif
  } else {
    out.resize(nbytes + 4);
    std::copy(shuffled.begin(), shuffled.end(), out.begin());
  }
  // 3. Fletcher32 over the filtered bytes, appended little-endian (UINT32ENCODE).
  const size_t body = out.size() - 4;
  uint32_t sum = hdf5_fletcher32(out.data(), body);
  for (int k = 0; k < 4; ++k) out[body + k] = static_cast<uint8_t>(sum >> (8 * k));
}

}  // namespace dfcl::data
