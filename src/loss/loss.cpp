// \brief The loss registry and make_loss.
#include "loss/loss.h"

#include <fmt/format.h>  // for fmt::format
#include <fmt/ranges.h>  // for fmt::join (its home since fmt 11)

#include <algorithm>  // for std::sort

#include "core/config.h"    // for Config
#include "core/error.h"     // for ConfigError
#include "core/registry.h"  // for core::Registry

namespace dfcl::loss {
#define DFCL_DECLARE_REGISTRAR(Class) void register_##Class();
DFCL_BUILTIN_LOSSES(DFCL_DECLARE_REGISTRAR)
#undef DFCL_DECLARE_REGISTRAR

namespace {
// The built-ins are registered on first use (core/registry.h says why from an explicit list).
void register_builtins() {
#define DFCL_CALL_REGISTRAR(Class) register_##Class();
  DFCL_BUILTIN_LOSSES(DFCL_CALL_REGISTRAR)
#undef DFCL_CALL_REGISTRAR
}
core::Registry<LossFactory>& registry() {
  static core::Registry<LossFactory> r("loss", register_builtins);
  return r;
}
}  // namespace

void detail::add_loss(const std::string& name, LossFactory factory) { registry().add(name, std::move(factory)); }

void register_loss(const std::string& name, LossFactory factory) { registry().add_user(name, std::move(factory)); }

std::vector<std::string> loss_names() {
  std::vector<std::string> names = registry().names();
  std::sort(names.begin(), names.end());
  return names;
}

std::unique_ptr<Loss> make_loss(const Config& section) {
  const std::string name = section.get<std::string>("name", "tsm_sl");
  const LossFactory factory = registry().find(name);
  if (!factory)
    throw ConfigError(fmt::format("loss.name: unknown loss '{}' ({}); known losses: {}", name, section.origin("name"),
                                  fmt::join(loss_names(), ", ")));
  return factory(section);
}

}  // namespace dfcl::loss
