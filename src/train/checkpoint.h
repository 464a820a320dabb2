// \brief Training checkpoints: one self-describing file, written atomically, verified by checksum on load.
//
// Layout (docs/training.md): magic "DFCLCKPT", format version, the length and bytes of a JSON header (scalars,
// config text, tensor directory: name, dtype, shape, byte offset), the raw little-endian tensor bytes, then a
// CRC-32 of everything before it. Tensors are saved from CPU copies and restored to any device, so a checkpoint does
// not depend on the device or the number of ranks that wrote it.
#pragma once
#include <nlohmann/json.hpp>  // for nlohmann::json

#include <cstdint>  // for int64_t
#include <string>   // for std::string

#include "model/param_file.h"  // for NamedTensors

namespace dfcl::train {

inline constexpr int kCheckpointVersion = 1;

struct Checkpoint {
  int schema_version = 0;   // the dataset schema the run trained on (data/schema.h kSchemaVersion)
  std::string config;       // the run's effective configuration (YAML text)
  int64_t epoch = 0;        // epoch in progress (or the next one when batch == 0)
  int64_t batch = 0;        // batches of `epoch` already consumed: the sampler cursor
  int64_t step = 0;         // global optimiser steps so far
  nlohmann::json state;     // everything else a trainer resumes from (RNG states, best metric, history, ...)
  model::NamedTensors tensors;  // "model.<param>", "optim.<buffer>", ...: CPU, contiguous after load
};

/// Writes `path` atomically: to `path.partial`, fsync, rename over `path`, fsync of the directory. A crash leaves
/// either the old file or the new one, never a torn file. Throws IoError naming the path and the OS error.
void write_checkpoint(const std::string& path, const Checkpoint& checkpoint);
/// Reads and verifies a checkpoint: IoError when it cannot be read; DataError naming the path when the magic, the
/// version, the header, a tensor entry or the checksum is wrong ("truncated or corrupt; re-run or pick another").
Checkpoint read_checkpoint(const std::string& path);

}  // namespace dfcl::train
