// \brief Fuzz target: the checkpoint reader, and building a model from what it read (load_trained_model).
//
// Input: the bytes of a checkpoint file. The format ends in a CRC-32 of everything before it, so a mutated input
// would almost always stop at the checksum; the target rewrites the last 4 bytes with the right CRC, so the fuzzer
// reaches the header JSON, the tensor table and the model config behind it. Seeds: tests/fuzz/corpus/checkpoint
// (checkpoints of a tiny model written by dfcl train).
#include <zlib.h>  // for crc32

#include <cstring>  // for std::memcpy
#include <vector>   // for std::vector

#include "fuzz.h"                   // for expect_clean, scratch, write_file
#include "train/checkpoint.h"       // for read_checkpoint
#include "train/trained_model.h"    // for load_trained_model

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  if (bytes.size() >= 4) {
    const uint32_t crc = uint32_t(crc32(0L, bytes.data(), uInt(bytes.size() - 4)));
    for (int k = 0; k < 4; ++k) bytes[bytes.size() - 4 + k] = uint8_t(crc >> (8 * k));  // little-endian
  }
  static const std::string path = dfcl::fuzz::scratch("checkpoint.ckpt");
  dfcl::fuzz::write_file(path, bytes.data(), bytes.size());
  dfcl::fuzz::expect_clean([&] { dfcl::train::read_checkpoint(path); });
  dfcl::fuzz::expect_clean([&] { dfcl::train::load_trained_model(path); });
  return 0;
}
