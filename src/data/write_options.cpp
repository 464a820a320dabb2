// \brief The `io` config section: chunk height and compression of written datasets.
#include "data/write_options.h"

#include <fmt/format.h>  // for fmt::format

#include "core/config.h"  // for Config
#include "core/error.h"   // for ConfigError

namespace dfcl::data {

WriteOptions write_options_from(const Config& io, int threads) {
  WriteOptions w;
  w.chunk_rows = io.get<int64_t>("chunk_rows", w.chunk_rows);
  w.deflate_level = io.get<int>("deflate_level", w.deflate_level);
  w.threads = threads;
  if (w.chunk_rows < 1 || w.chunk_rows > (int64_t(1) << 24))
    throw ConfigError(fmt::format("io.chunk_rows = {}: must lie in [1, 16777216]", w.chunk_rows));
  if (w.deflate_level < 0 || w.deflate_level > 9)
    throw ConfigError(fmt::format("io.deflate_level = {}: must lie in 0..9 (0 = no compression)", w.deflate_level));
  return w;
}

}  // namespace dfcl::data
