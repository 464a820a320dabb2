// \brief Internal: what one collective is (kind, dtype, shape, root, op), as every rank must agree on it.
//
// The debug check (CommOptions::debug) all-gathers the packed form before each collective and compares; the
// watchdog keeps it for the collectives in flight and names them when one is stuck. Not part of the public API.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <array>    // for std::array
#include <cstdint>  // for int64_t
#include <string>   // for std::string

#include "dist/communicator.h"  // for ReduceOp

namespace dfcl::dist {

struct CollectiveDesc {
  enum Kind : int64_t { kNone = 0, kAllreduce = 1, kBroadcast = 2, kBarrier = 3, kAllgather = 4 };
  static constexpr int kMaxDims = 4;  // dims kept for messages; the hash covers every dim
  /// Words of the packed form: magic, seq, kind, dtype, numel, root, op, device, ndim, dims[4], shape_hash.
  static constexpr int kWords = 14;

  int64_t seq = 0;  // 1-based position in the communicator's stream of collectives
  int64_t kind = kNone;
  int64_t dtype = -1;  // at::ScalarType as an integer; -1: none (barrier) or doubles (allgather)
  int64_t numel = -1;  // -1: not compared (allgather: lengths differ between ranks by design)
  int64_t root = -1;   // broadcast only
  int64_t op = -1;     // allreduce only: int64_t(ReduceOp)
  int64_t device = 0;  // 0: CPU, 1: CUDA
  int64_t ndim = 0;
  std::array<int64_t, kMaxDims> dims{};
  int64_t shape_hash = 0;

  static CollectiveDesc allreduce(const at::Tensor& t, ReduceOp op);
  static CollectiveDesc broadcast(const at::Tensor& t, int root);
  static CollectiveDesc barrier();
  static CollectiveDesc allgather();

  void pack(int64_t* words) const;
  static CollectiveDesc unpack(const int64_t* words);
  bool operator==(const CollectiveDesc& o) const;
  bool operator!=(const CollectiveDesc& o) const { return !(*this == o); }
  /// "allreduce of 256 x float32 (sum)", "broadcast of 16 x int64 [4, 4] from rank 1", "barrier", ...
  std::string name() const;
};

/// "float32", "float64", "int64", else LibTorch's name of the type.
std::string dtype_name(int64_t scalar_type);
/// "sum", "mean", "max".
const char* op_name(ReduceOp op);

}  // namespace dfcl::dist
