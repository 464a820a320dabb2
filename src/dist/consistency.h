// \brief Replica checks: every rank must hold bit-identical parameters after each data-parallel step.
#pragma once
#include <ATen/core/Tensor.h>  // for at::Tensor

#include <cstdint>  // for int64_t, uint64_t
#include <string>   // for std::string

#include "dist/communicator.h"  // for Communicator

namespace dfcl::dist {

/// FNV-1a over the tensor's bytes (copied to the CPU when it lives elsewhere).
uint64_t bit_checksum(const at::Tensor& t);

/// Compares the checksum of `t` across ranks (one small allgather). Throws DistError on every rank when they
/// differ, naming the ranks that disagree with rank 0 and `what` (e.g. "parameters after step 12").
void check_replicas(Communicator& comm, const at::Tensor& t, const std::string& what);

}  // namespace dfcl::dist
