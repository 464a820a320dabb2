// \brief SearchSpace: reading the space and drawing trials.
#include "tune/search_space.h"

#include <fmt/format.h>  // for fmt::format

#include <cmath>  // for std::exp, std::log, std::floor, std::isfinite

#include "core/config.h"  // for Config
#include "core/error.h"   // for ConfigError
#include "core/rng.h"     // for Rng

namespace dfcl::tune {

SearchSpace SearchSpace::from(const Config& t) {
  SearchSpace s;
  s.mode = t.get<std::string>("mode", "grid");
  if (s.mode != "grid" && s.mode != "random")
    throw ConfigError(
        fmt::format("tune.mode is '{}'; use grid (every combination of the listed values) or random "
                    "(tune.trials draws)",
                    s.mode));
  s.seed = static_cast<uint64_t>(t.get<int64_t>("seed", 0));
  const std::vector<Config> items = t.items("space");
  if (items.empty() && !t.dump_mode())
    throw ConfigError(
        "tune.space is empty; list the keys to search, e.g. space: [{key: optimizer.lr, values: "
        "[0.001, 0.003]}]");
  for (size_t i = 0; i < items.size(); ++i) {
    const Config& it = items[i];
    Dimension d;
    d.key = it.require<std::string>("key");
    const std::string where = fmt::format("tune.space.{} ({})", i, d.key);
    for (const auto& o : s.dims)
      if (o.key == d.key) throw ConfigError(fmt::format("{}: the key is listed twice; give it one entry", where));
    if (d.key.rfind("tune.", 0) == 0 || d.key == "train.output" || d.key.rfind("validation.metric", 0) == 0)
      throw ConfigError(
          fmt::format("{}: tune sets train.output per trial and selects on one validation.metric for "
                      "all trials; search other keys",
                      where));
    d.values = it.item_texts("values");
    const bool range = it.has("min") || it.has("max");
    if (range && !d.values.empty())
      throw ConfigError(fmt::format("{}: give values or a range (min, max), not both", where));
    if (!range && d.values.empty())
      throw ConfigError(fmt::format("{}: give values: [..] or a range with min and max", where));
    if (range) {
      d.min = it.require<double>("min"), d.max = it.require<double>("max");
      d.log = it.get<bool>("log", false), d.integer = it.get<bool>("integer", false);
      if (!(d.min < d.max) || !std::isfinite(d.min) || !std::isfinite(d.max))
        throw ConfigError(fmt::format("{}: min = {} must be below max = {}", where, d.min, d.max));
      if (d.log && !(d.min > 0)) throw ConfigError(fmt::format("{}: log needs min > 0", where));
      if (s.mode == "grid")
        throw ConfigError(fmt::format("{}: a range has no grid; list values, or set tune.mode=random", where));
    }
    s.dims.push_back(d);
  }
  if (s.mode == "grid") {
    s.trials = 1;
    for (const auto& d : s.dims) {
      s.trials *= int64_t(d.values.size());
      if (s.trials > 100000)
        throw ConfigError(
            "tune: the grid has more than 100,000 combinations; list fewer values or use tune.mode=random");
    }
    if (t.has("trials") && t.get<int64_t>("trials", 0) != s.trials)
      throw ConfigError(
          fmt::format("tune.trials = {} with mode grid, whose {} combinations are all tried; drop "
                      "tune.trials or use tune.mode=random",
                      t.get<int64_t>("trials", 0), s.trials));
  } else {
    s.trials = t.get<int64_t>("trials", 0);
    if (s.trials < 1) throw ConfigError("tune.trials must be >= 1 with tune.mode=random (the number of draws)");
  }
  return s;
}

std::vector<std::string> SearchSpace::trial(int64_t k) const {
  std::vector<std::string> out(dims.size());
  if (mode == "grid") {
    int64_t rest = k;
    for (size_t i = dims.size(); i-- > 0;) {
      const auto& v = dims[i].values;
      out[i] = dims[i].key + "=" + v[size_t(rest % int64_t(v.size()))];
      rest /= int64_t(v.size());
    }
    return out;
  }
  Rng r(seed, 0x7u, uint64_t(k));
  for (size_t i = 0; i < dims.size(); ++i) {
    const Dimension& d = dims[i];
    std::string v;
    if (!d.is_range()) {
      v = d.values[size_t(r.next() % d.values.size())];
    } else {
      const double u = r.uniform();
      double x =
          d.log ? std::exp(std::log(d.min) + u * (std::log(d.max) - std::log(d.min))) : d.min + u * (d.max - d.min);
      v = d.integer ? fmt::format("{}", int64_t(std::floor(x + 0.5))) : fmt::format("{:.4g}", x);
    }
    out[i] = d.key + "=" + v;
  }
  return out;
}

}  // namespace dfcl::tune
