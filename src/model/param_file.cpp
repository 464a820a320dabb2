// \brief write_param_file / read_param_file over torch::pickle_save / pickle_load (LibTorch 1.13 and 2.x).
#include "model/param_file.h"

#include <fmt/format.h>   // for fmt::format
#include <torch/torch.h>  // for torch::pickle_save, torch::pickle_load, c10::Dict

#include <cerrno>    // for errno
#include <cstdio>    // for std::rename
#include <cstring>   // for std::strerror
#include <fstream>   // for std::ifstream, std::ofstream
#include <iterator>  // for std::istreambuf_iterator

#include "core/atomic_file.h"  // for AtomicFile
#include "core/error.h"  // for IoError, DataError

namespace dfcl::model {

void write_param_file(const std::string& path, const NamedTensors& tensors) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& kv : tensors) dict.insert(kv.first, kv.second.detach().to(at::kCPU).contiguous().clone());
  const std::vector<char> bytes = torch::pickle_save(dict);
  AtomicFile out(path, "model parameters", /*binary=*/true);
  out.stream().write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.commit();
}

NamedTensors read_param_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw IoError(fmt::format("{}: cannot open parameter file ({}); check the path", path, std::strerror(errno)));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue v;
  try {
    v = torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    throw DataError(
        fmt::format("{}: not a parameter file (torch could not unpickle it: {})", path, e.what_without_backtrace()));
  }
  if (!v.isGenericDict())
    throw DataError(
        fmt::format("{}: not a parameter file: holds a {}, expected a dict of name -> tensor", path, v.tagKind()));
  NamedTensors out;
  for (const auto& kv : v.toGenericDict()) {
    if (!kv.key().isString() || !kv.value().isTensor())
      throw DataError(fmt::format("{}: not a parameter file: an entry is {} -> {}, expected name -> tensor", path,
                                  kv.key().tagKind(), kv.value().tagKind()));
    out.emplace_back(kv.key().toStringRef(), kv.value().toTensor());
  }
  return out;
}

}  // namespace dfcl::model
