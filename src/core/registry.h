// \brief A name -> factory table for the plug-in points (losses, A/B estimators): built-ins registered once, lazily,
// from an explicit list, then user registrations; thread-safe; names in registration order.
//
// Why an explicit list rather than static registrar objects: dfcl's concepts are static libraries, and a linker drops
// an object file that nothing references, its static registrar with it. So each concept lists its built-ins in one
// macro (DFCL_BUILTIN_LOSSES, DFCL_BUILTIN_ESTIMATORS) whose registrar functions the `register_builtins` function
// calls, and every lookup first makes sure that has run.
#pragma once
#include <fmt/format.h>  // for fmt::format

#include <mutex>    // for std::mutex, std::once_flag, std::call_once
#include <string>   // for std::string
#include <utility>  // for std::pair, std::move
#include <vector>   // for std::vector

#include "core/error.h"  // for ConfigError

namespace dfcl::core {

template <class Factory>
class Registry {
 public:
  /// `kind` names an entry in messages ("loss", "A/B estimator"); `register_builtins` adds the built-ins through add()
  /// and runs once, before the first lookup or user registration.
  Registry(std::string kind, void (*register_builtins)()) : kind_(std::move(kind)), builtins_(register_builtins) {}
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  /// Adds an entry (the built-in registrars call this). A name registered twice is a ConfigError.
  void add(const std::string& name, Factory factory) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : entries_)
      if (e.first == name)
        throw ConfigError(fmt::format("{} '{}' is registered twice; give the new one another name", kind_, name));
    entries_.emplace_back(name, std::move(factory));
  }
  /// A user registration: the built-ins first, so a clash with one of them is reported.
  void add_user(const std::string& name, Factory factory) {
    ensure_builtins();
    add(name, std::move(factory));
  }
  /// The names, in registration order (the built-ins in their list's order).
  std::vector<std::string> names() {
    ensure_builtins();
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    out.reserve(entries_.size());
    for (const auto& e : entries_) out.push_back(e.first);
    return out;
  }
  /// The factory registered under `name`, or a value-initialised Factory (false / null) when there is none.
  Factory find(const std::string& name) {
    ensure_builtins();
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : entries_)
      if (e.first == name) return e.second;
    return Factory{};
  }

 private:
  void ensure_builtins() { std::call_once(once_, builtins_); }

  std::string kind_;
  void (*builtins_)();
  std::once_flag once_;
  std::mutex mu_;
  std::vector<std::pair<std::string, Factory>> entries_;
};

}  // namespace dfcl::core
