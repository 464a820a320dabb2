// \brief How datasets are written: chunk height, compression, threads (the `io` config section).
#pragma once
#include <cstdint>  // for int64_t

namespace dfcl {
class Config;
}

namespace dfcl::data {

struct WriteOptions {
  int64_t chunk_rows = 65536;  // rows per HDF5 chunk (and per loader read)
  int deflate_level = 1;       // 0 = shuffle + checksum only; 1..9 zlib level
  int threads = 0;             // compression threads (0 = all cores)
};

/// Reads io.chunk_rows and io.deflate_level from `io_section`; `threads` comes from runtime.threads.
WriteOptions write_options_from(const Config& io_section, int threads);

}  // namespace dfcl::data
