// \brief Training checkpoints: one self-describing file, written atomically, verified by checksum on load.
//
// Layout, all integers little-endian:
//   "DFCLCKPT"           8 bytes of magic
//   uint32               format version (kCheckpointVersion)
//   uint64               header length H
//   H bytes              JSON header: schema_version, config, epoch, batch, step, state, and tensors, a list of
//                        {name, dtype ("float32" | "float64" | "int64" | "int32" | "uint8"), shape, offset, nbytes}
//                        with offset counted from the first byte after the header
//   tensor data          each tensor's raw CPU, contiguous, little-endian bytes, in list order
//   uint32               CRC-32 (zlib's crc32) of every byte before it
// Tensors are saved from CPU copies and restored to the CPU, so a checkpoint does not depend on the device or the
// number of ranks that wrote it.
#pragma once
#include <nlohmann/json.hpp>  // for nlohmann::json

#include <cstdint>  // for int64_t
#include <string>   // for std::string

#include <c10/core/Device.h>  // for at::Device

#include "model/param_file.h"  // for NamedTensors

namespace dfcl::model {
class UpliftNet;
}

namespace dfcl::train {

class Optimizer;

inline constexpr int kCheckpointVersion = 1;

struct Checkpoint {
  int schema_version = 0;       // the dataset schema the run trained on (data/schema.h kSchemaVersion)
  std::string config;           // the run's effective configuration (YAML text)
  int64_t epoch = 0;            // epoch in progress (or the next one when batch == 0)
  int64_t batch = 0;            // batches of `epoch` already consumed: the sampler cursor
  int64_t step = 0;             // global optimiser steps so far
  nlohmann::json state;         // everything else a trainer resumes from (RNG states, best metric, history, ...)
  model::NamedTensors tensors;  // "model.<param>", "optim.<buffer>", ...: CPU, contiguous after load
};

/// Writes `path` atomically: to `path.partial`, fsync, rename over `path`, fsync of the directory. A crash leaves
/// either the old file or the new one, never a torn file; a failed write removes `path.partial`. Tensors may live on
/// any device. Throws DataError, before any file is created, for duplicate tensor names, an undefined or non-dense
/// tensor, a dtype other than the five above, or a config/state that is not valid UTF-8; IoError naming the path,
/// the OS error and the fix when the file cannot be created, written, flushed or renamed (the directory must exist).
void write_checkpoint(const std::string& path, const Checkpoint& checkpoint);
/// Reads and verifies a checkpoint; its tensors are CPU, contiguous and own their memory. IoError when the file cannot
/// be read; DataError naming the path when the magic is wrong ("not a dfcl checkpoint"), the format is newer ("written
/// by a newer dfcl (format N); this build reads format 1"), the checksum fails ("checksum mismatch ...: the file is
/// truncated or corrupt; resume from another checkpoint"), or the header or a tensor entry is malformed.
Checkpoint read_checkpoint(const std::string& path);

// What a trainer puts into its checkpoints and takes back (checkpoint_state.cpp): a net's parameters as
// "<prefix><name>" (copies), an optimiser's state as "<prefix><buffer>".
void add_parameters(Checkpoint& ck, const std::string& prefix, const model::UpliftNet& net);
void add_optimizer_state(Checkpoint& ck, const std::string& prefix, const Optimizer& opt);
/// Copies "<prefix><name>" into each of the net's parameters (its flat()); DataError naming `path`, `what` ("parameter",
/// "bridge parameter") and the name when one is missing or of another shape.
void restore_parameters(const Checkpoint& ck, const std::string& prefix, model::UpliftNet& net, const std::string& path,
                        const std::string& what);
/// Restores an optimiser from the tensors "<prefix><buffer>" (moved to `device`; Optimizer::load_state checks them).
void restore_optimizer_state(const Checkpoint& ck, const std::string& prefix, Optimizer& opt, const at::Device& device);

}  // namespace dfcl::train
