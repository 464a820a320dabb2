// \brief Typed errors. Every message names what is wrong (file, field, row, rank) and how to fix it.
#pragma once
#include <stdexcept>  // for std::runtime_error
#include <string>     // for std::string

namespace dfcl {

/// Base of every error dfcl raises on purpose. `what()` is the full, user-facing message.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
  /// Short category shown before the message ("data error", "config error", ...).
  virtual const char* kind() const noexcept { return "error"; }
};

/// Bad or inconsistent input data: a value, a shape, a missing column, a corrupt file.
class DataError : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override { return "data error"; }
};

/// A configuration problem: unknown key, wrong type, value out of range.
class ConfigError : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override { return "config error"; }
};

/// File-system or library I/O failure that is not the data's fault.
class IoError : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override { return "I/O error"; }
};

/// A multi-process failure: a dead, slow or diverging rank.
class DistError : public Error {
 public:
  using Error::Error;
  const char* kind() const noexcept override { return "distributed error"; }
};

}  // namespace dfcl
