// \brief CUDA device discovery through the runtime API; plain C++ interface (no CUDA headers).
#pragma once
#include <cstddef>  // for size_t
#include <string>   // for std::string
#include <vector>   // for std::vector

namespace dfcl::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  size_t memory_bytes = 0;
  int major = 0, minor = 0;  // compute capability
  int multiprocessors = 0;
};

/// Visible devices. On a machine without a driver or GPU, returns none and sets `why`
/// (e.g. "CUDA driver version is insufficient for CUDA runtime version").
std::vector<DeviceInfo> devices(std::string* why);
/// CUDA runtime version the code was built against, as "13.0".
std::string runtime_version();

}  // namespace dfcl::cuda
