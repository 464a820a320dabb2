// \brief Shared pieces of the libFuzzer targets (docs/reliability.md): the oracle and a per-process scratch file.
//
// Every target feeds its input to one of dfcl's readers. The contract under test is the project's: bad input is a
// dfcl::Error (DataError, ConfigError, IoError) with a message, never a crash, a hang, a leak, or another exception.
// A std::exception that is not a dfcl::Error (the json type_error of issue 14, item 4) aborts, so libFuzzer saves
// the input as a finding.
#pragma once
#include <unistd.h>  // for getpid

#include <cstdint>   // for uint8_t
#include <cstdio>    // for std::fprintf
#include <cstdlib>   // for std::abort
#include <exception>  // for std::exception
#include <fstream>   // for std::ofstream
#include <string>    // for std::string
#include <vector>    // for std::vector

#include "core/error.h"  // for dfcl::Error

namespace dfcl::fuzz {

/// Runs `f`; a dfcl::Error is the expected outcome for bad input, anything else is a finding.
template <class F>
void expect_clean(F&& f) {
  try {
    f();
  } catch (const dfcl::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "finding: an exception that is not a dfcl::Error: %s\n", e.what());
    std::abort();
  }
}

/// The scratch files of this process; they are removed at exit.
inline std::vector<std::string>& scratch_paths() {
  static std::vector<std::string>* paths = [] {
    auto* p = new std::vector<std::string>;  // never destroyed: the exit handler below still needs it
    std::atexit([] {
      for (const auto& f : scratch_paths()) std::remove(f.c_str()), std::remove((f + ".partial").c_str());
    });
    return p;
  }();
  return *paths;
}

/// A scratch path for this process (libFuzzer's -jobs run several processes side by side), removed at exit.
inline std::string scratch(const std::string& name) {
  const char* dir = std::getenv("TMPDIR");
  scratch_paths().push_back(std::string(dir && *dir ? dir : "/tmp") + "/dfcl_fuzz_" + std::to_string(getpid()) + "_" +
                            name);
  return scratch_paths().back();
}

inline void write_file(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), std::streamsize(size));
}

/// Reads the fuzz input as a stream of small integers (0 when it runs out), so a structure-aware target decodes
/// "which dataset, which type, which shape" from it and every input means something.
class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool empty() const { return p_ >= end_; }
  uint8_t u8() { return p_ < end_ ? *p_++ : 0; }
  uint32_t u32() { return uint32_t(u8()) | uint32_t(u8()) << 8 | uint32_t(u8()) << 16 | uint32_t(u8()) << 24; }
  uint64_t u64() { return uint64_t(u32()) | uint64_t(u32()) << 32; }
  /// A value in [0, n).
  uint32_t below(uint32_t n) { return n ? u8() % n : 0; }
  /// Copies up to n raw bytes (the rest zero).
  void fill(void* dst, size_t n) {
    auto* d = static_cast<uint8_t*>(dst);
    for (size_t i = 0; i < n; ++i) d[i] = u8();
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

}  // namespace dfcl::fuzz
