// \brief The loss registry and make_loss.
#include "loss/loss.h"

#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join (its home since fmt 11)

#include <map>    // for std::map
#include <mutex>  // for std::mutex, std::call_once

#include "core/config.h"  // for Config
#include "core/error.h"   // for ConfigError

namespace dfcl::loss {
#define DFCL_DECLARE_REGISTRAR(Class) void register_##Class();
DFCL_BUILTIN_LOSSES(DFCL_DECLARE_REGISTRAR)
#undef DFCL_DECLARE_REGISTRAR

namespace {
struct Registry {
  std::mutex mu;
  std::map<std::string, LossFactory> factories;
};
Registry& registry() {
  static Registry r;
  return r;
}
// Registers the built-ins exactly once, before any lookup or user registration.
void ensure_builtins() {
  static std::once_flag once;
  std::call_once(once, [] {
#define DFCL_CALL_REGISTRAR(Class) register_##Class();
    DFCL_BUILTIN_LOSSES(DFCL_CALL_REGISTRAR)
#undef DFCL_CALL_REGISTRAR
  });
}
}  // namespace

void detail::add_loss(const std::string& name, LossFactory factory) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (!r.factories.emplace(name, std::move(factory)).second)
    throw ConfigError(fmt::format("loss '{}' is registered twice; give the new loss another name", name));
}

void register_loss(const std::string& name, LossFactory factory) {
  ensure_builtins();
  detail::add_loss(name, std::move(factory));
}

std::vector<std::string> loss_names() {
  ensure_builtins();
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  std::vector<std::string> names;
  for (const auto& kv : r.factories) names.push_back(kv.first);
  return names;
}

std::unique_ptr<Loss> make_loss(const Config& section) {
  ensure_builtins();
  const std::string name = section.get<std::string>("name", "tsm_sl");
  LossFactory factory;
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = r.factories.find(name);
    if (it != r.factories.end()) factory = it->second;
  }
  if (!factory)
    throw ConfigError(fmt::format("loss.name: unknown loss '{}' ({}); known losses: {}", name, section.origin("name"),
                                  fmt::join(loss_names(), ", ")));
  return factory(section);
}

}  // namespace dfcl::loss
