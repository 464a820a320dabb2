// \brief Replica checks (see consistency.h).
#include "dist/consistency.h"

#include <fmt/format.h>  // for fmt::format

#include <ATen/ATen.h>  // for at::Tensor::contiguous, to

#include <cstring>  // for std::memcpy
#include <vector>   // for std::vector

#include "core/error.h"  // for DistError

namespace dfcl::dist {

uint64_t bit_checksum(const at::Tensor& t) {
  const at::Tensor c = t.detach().to(at::kCPU).contiguous();
  const auto* p = static_cast<const unsigned char*>(c.data_ptr());
  const size_t n = size_t(c.numel()) * c.element_size();
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

void check_replicas(Communicator& comm, const at::Tensor& t, const std::string& what) {
  if (comm.size() == 1) return;
  const uint64_t h = bit_checksum(t);
  // Two 32-bit halves travel exactly as doubles.
  const std::vector<std::vector<double>> all = comm.allgather({double(h >> 32), double(h & 0xffffffffull)});
  std::string differ;
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0]) differ += (differ.empty() ? "" : ", ") + std::to_string(r);
  if (!differ.empty())
    throw DistError(fmt::format("{} differ between rank 0 and rank(s) {} (bitwise checksums); the ranks diverged: "
                                "check that every rank runs the same binary, config and data, and that the all-reduce "
                                "is deterministic (dist.debug found this)",
                                what, differ));
}

}  // namespace dfcl::dist
