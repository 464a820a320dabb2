// \brief Config: YAML tree + overrides + read tracking (see config.h).
#include "core/config.h"

#include <filesystem>  // for std::filesystem::is_directory
#include <fmt/format.h>        // for fmt::format
#include <yaml-cpp/yaml.h>     // for YAML::Node

#include <algorithm>           // for std::min
#include <map>                 // for std::map
#include <set>                 // for std::set
#include <type_traits>         // for std::is_same_v
#include <vector>              // for std::vector
#include <fstream>             // for std::ifstream

#include "core/error.h"        // for ConfigError

namespace dfcl {

struct Config::State {
  YAML::Node root{YAML::NodeType::Map};
  std::map<std::string, std::string> origins;  // full key -> "file:line" or "--set"
  mutable std::set<std::string> used;          // keys read (present or not)
  mutable YAML::Node defaults{YAML::NodeType::Map};  // the fallback of every key read while absent (dump_effective)
  bool dump_mode = false;  // require() of an absent key records "<required>" instead of throwing
};

namespace {

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  std::string cur;
  for (char ch : key) {
    if (ch == '.') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  parts.push_back(cur);
  for (const auto& p : parts)
    if (p.empty()) throw ConfigError(fmt::format("config key '{}' has an empty component; write keys as 'section.name'", key));
  return parts;
}

// Returns the node at `key` or an undefined node. Never creates entries.
YAML::Node find(const YAML::Node& root, const std::string& key) {
  YAML::Node cur = root;  // YAML::Node copies are handles
  for (const auto& part : split_key(key)) {
    if (cur.IsSequence() && part.find_first_not_of("0123456789") == std::string::npos) {  // list element "key.3"
      size_t i = std::stoul(part);
      if (i >= cur.size()) return YAML::Node(YAML::NodeType::Undefined);
      cur.reset(cur[i]);
      continue;
    }
    if (!cur.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    YAML::Node next = cur[part];
    if (!next.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
    cur.reset(next);
  }
  return cur;
}

// A YAML alias may refer to a node that contains it (`train: &t {extra: *t}`): the document is then a cycle, and
// every walk over it would recurse until the stack overflows. Refused with the key and line, before anything walks it;
// nesting deeper than any config needs is refused too.
void check_acyclic(const YAML::Node& node, const std::string& prefix, const std::string& file,
                   std::vector<YAML::Node>& ancestors) {
  if (!node.IsMap() && !node.IsSequence()) return;
  if (ancestors.size() > 64)
    throw ConfigError(fmt::format("{}: config key '{}' is nested more than 64 levels deep; configs are sections of "
                                  "keys (section: {{key: value}})",
                                  file, prefix));
  for (const YAML::Node& a : ancestors)
    if (a.is(node))
      throw ConfigError(fmt::format("{}:{}: config key '{}' refers (through a YAML alias) to a node that contains it, "
                                    "so the config never ends; write the values out instead of the alias",
                                    file, node.Mark().line + 1, prefix));
  ancestors.push_back(node);
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      // A key that is a list or a map (YAML's `? [a, b]: 1`, or a `{...}` key) names no config key; every walk below
      // reads keys as strings, so it is refused here (found by fuzzing: yaml-cpp's "bad conversion" escaped).
      if (!it->first.IsScalar())
        throw ConfigError(fmt::format("{}:{}: a key under '{}' is a {} rather than a name; config keys are plain "
                                      "names (section: {{key: value}})",
                                      file, it->first.Mark().line + 1, prefix.empty() ? "the top level" : prefix,
                                      it->first.IsMap() ? "map" : it->first.IsSequence() ? "list" : "null"));
      check_acyclic(it->second, prefix.empty() ? it->first.Scalar() : prefix + "." + it->first.Scalar(), file, ancestors);
    }
  } else {
    for (size_t i = 0; i < node.size(); ++i) check_acyclic(node[i], fmt::format("{}.{}", prefix, i), file, ancestors);
  }
  ancestors.pop_back();
}

void check_acyclic(const YAML::Node& root, const std::string& file) {
  std::vector<YAML::Node> ancestors;
  check_acyclic(root, "", file, ancestors);
}

void record_origins(const YAML::Node& node, const std::string& prefix, const std::string& file,
                    std::map<std::string, std::string>& out) {
  if (!node.IsMap()) return;
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::string key = prefix + it->first.as<std::string>();
    const std::string here = fmt::format("{}:{}", file, it->first.Mark().line + 1);
    // YAML parsers keep one of two equal keys silently; a repeated key is almost always an edit gone wrong.
    if (auto seen = out.find(key); seen != out.end())
      throw ConfigError(fmt::format("config key '{}' appears twice ({} and {}); keep one of them", key, seen->second,
                                    here));
    out[key] = here;
    record_origins(it->second, key + ".", file, out);
    if (it->second.IsSequence())  // lists of maps: "key.0.name"
      for (size_t i = 0; i < it->second.size(); ++i) record_origins(it->second[i], fmt::format("{}.{}.", key, i), file, out);
  }
}

bool is_list_of_maps(const YAML::Node& n) {
  if (!n.IsSequence() || n.size() == 0) return false;
  for (const auto& e : n)
    if (!e.IsMap()) return false;
  return true;
}

void merge_into(YAML::Node dst, const YAML::Node& src) {
  for (auto it = src.begin(); it != src.end(); ++it) {
    const std::string k = it->first.as<std::string>();
    if (it->second.IsMap() && dst[k].IsMap()) {
      merge_into(dst[k], it->second);
    } else {
      dst[k] = YAML::Clone(it->second);
    }
  }
}

void leaves(const YAML::Node& node, const std::string& prefix, std::vector<std::string>& out) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::string key = prefix + it->first.as<std::string>();
    if (it->second.IsMap() && it->second.size() > 0) {
      leaves(it->second, key + ".", out);
    } else if (is_list_of_maps(it->second)) {  // each element's keys are checked like a section's
      for (size_t i = 0; i < it->second.size(); ++i) leaves(it->second[i], fmt::format("{}.{}.", key, i), out);
    } else {
      out.push_back(key);
    }
  }
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

template <class T>
const char* type_name();
template <> const char* type_name<bool>() { return "a boolean (true/false)"; }
template <> const char* type_name<int>() { return "an integer"; }
template <> const char* type_name<int64_t>() { return "an integer"; }
template <> const char* type_name<double>() { return "a number"; }
template <> const char* type_name<float>() { return "a number"; }
template <> const char* type_name<std::string>() { return "a string"; }
template <> const char* type_name<std::vector<std::string>>() { return "a list of strings"; }
template <> const char* type_name<std::vector<double>>() { return "a list of numbers"; }
template <> const char* type_name<std::vector<int64_t>>() { return "a list of integers"; }

std::string show(const YAML::Node& n) {
  YAML::Emitter e;
  e << YAML::Flow << n;
  return e.c_str();
}

}  // namespace

Config::Config() : state_(std::make_shared<State>()) {}

Config Config::from_string(const std::string& yaml, const std::string& origin) {
  Config c;
  try {
    YAML::Node n = YAML::Load(yaml);
    if (n.IsNull()) return c;
    if (!n.IsMap())
      throw ConfigError(fmt::format("{}: the top level must be a map of keys (section: {{key: value}}), not {}", origin, show(n)));
    check_acyclic(n, origin);
    c.state_->root = n;
    record_origins(n, "", origin, c.state_->origins);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(fmt::format("{}:{}:{}: YAML syntax error: {}", origin, e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  return c;
}

Config Config::load(const std::string& path, const std::vector<std::string>& overrides) {
  Config c;
  if (!path.empty()) {
    std::ifstream probe;
    YAML::Node n;
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
      throw ConfigError(fmt::format("config file '{}' is a directory; give a YAML file in it, e.g. -c {}/NAME.yaml", path,
                                    path));
    try {
      n = YAML::LoadFile(path);
    } catch (const YAML::BadFile&) {
      throw ConfigError(fmt::format("cannot read config file '{}': check the path (configs/ holds the shipped ones)", path));
    } catch (const YAML::ParserException& e) {
      throw ConfigError(fmt::format("{}:{}:{}: YAML syntax error: {}", path, e.mark.line + 1, e.mark.column + 1, e.msg));
    }
    if (!n.IsNull()) {
      if (!n.IsMap())
        throw ConfigError(fmt::format("{}: the top level must be a map of keys (section: {{key: value}})", path));
      check_acyclic(n, path);
      c.state_->root = n;
      record_origins(n, "", path, c.state_->origins);
    }
  }
  for (const auto& o : overrides) c.set(o);
  return c;
}

void Config::set(const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(fmt::format("--set '{}': expected key=value, e.g. --set data.rows=1000000", assignment));
  std::string key = prefix_ + assignment.substr(0, eq);
  std::string text = assignment.substr(eq + 1);
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(fmt::format("--set {}: value '{}' is not valid YAML: {}", key, text, e.msg));
  }
  if (!value.IsDefined() || value.IsNull()) value = YAML::Node(text);
  check_acyclic(value, "--set " + key);  // `--set a='&x [*x]'` is a cycle too, and keys must be names
  auto parts = split_key(key);
  YAML::Node cur = state_->root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node next = cur[parts[i]];
    if (!next.IsMap()) {
      if (next.IsDefined() && !next.IsNull())
        throw ConfigError(fmt::format("--set {}: '{}' is a value, not a section", key, parts[i]));
      cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
      next.reset(cur[parts[i]]);
    }
    cur.reset(next);
  }
  cur[parts.back()] = value;
  state_->origins[key] = "--set";
}

void Config::merge(const Config& other) {
  merge_into(state_->root, other.state_->root);
  for (const auto& kv : other.state_->origins) state_->origins[kv.first] = kv.second;
}

bool Config::has(const std::string& key) const {
  return find(state_->root, prefix_ + key).IsDefined();
}

std::string Config::origin(const std::string& key) const {
  const std::string full = prefix_ + key;
  auto it = state_->origins.find(full);
  return it == state_->origins.end() ? std::string("default") : it->second;
}

namespace {
// A default as a YAML value: numbers in their shortest exact form (0.1, not 0.10000000000000001).
template <class T>
YAML::Node yaml_value(const T& v) {
  YAML::Node n;
  if constexpr (std::is_same_v<T, double> || std::is_same_v<T, float>) {
    n = fmt::format("{}", v);
  } else if constexpr (std::is_same_v<T, std::vector<double>> || std::is_same_v<T, std::vector<int64_t>> ||
                       std::is_same_v<T, std::vector<std::string>>) {
    n = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& x : v) n.push_back(fmt::format("{}", x));
    n.SetStyle(YAML::EmitterStyle::Flow);
  } else {
    n = v;
  }
  return n;
}

// Records `value` at `key` in `tree`, creating maps on the way; a key under a list or a scalar is skipped.
void record_default(YAML::Node tree, const std::string& key, const YAML::Node& value) {
  const std::vector<std::string> parts = split_key(key);
  YAML::Node cur = tree;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (!cur.IsMap()) return;
    YAML::Node next = cur[parts[i]];
    if (!next.IsDefined() || next.IsNull()) next = YAML::Node(YAML::NodeType::Map);
    if (!next.IsMap()) return;
    cur.reset(next);
  }
  if (cur.IsMap() && !cur[parts.back()].IsDefined()) cur[parts.back()] = value;
}
}  // namespace

template <class T>
T Config::get(const std::string& key, const T& fallback) const {
  const std::string full = prefix_ + key;
  state_->used.insert(full);
  YAML::Node n = find(state_->root, full);
  if (!n.IsDefined() || n.IsNull()) {
    record_default(state_->defaults, full, yaml_value(fallback));
    return fallback;
  }
  try {
    if constexpr (std::is_same_v<T, std::vector<std::string>> || std::is_same_v<T, std::vector<double>> ||
                  std::is_same_v<T, std::vector<int64_t>>) {
      if (!n.IsSequence()) throw YAML::BadConversion(n.Mark());
    } else {
      if (!n.IsScalar()) throw YAML::BadConversion(n.Mark());
    }
    return n.as<T>();
  } catch (const YAML::BadConversion&) {
    throw ConfigError(fmt::format("config key '{}' ({}) = {} is not {}; fix the value in the config or with --set {}=...",
                                  full, origin(key), show(n), type_name<T>(), full));
  }
}

std::vector<std::string> Config::get_strings(const std::string& key, const std::vector<std::string>& fallback) const {
  YAML::Node n = find(state_->root, prefix_ + key);
  if (n.IsDefined() && n.IsScalar()) return {get<std::string>(key, "")};
  return get<std::vector<std::string>>(key, fallback);
}

template <class T>
T Config::require(const std::string& key) const {
  if (!has(key) && state_->dump_mode) {
    state_->used.insert(prefix_ + key);
    record_default(state_->defaults, prefix_ + key, YAML::Node("<required>"));
    return T{};
  }
  if (!has(key)) {
    state_->used.insert(prefix_ + key);
    throw ConfigError(fmt::format("config key '{}' is required ({}); add it to the config or pass --set {}=...",
                                  prefix_ + key, type_name<T>(), prefix_ + key));
  }
  return get<T>(key, T{});
}

#define DFCL_CONFIG_INSTANTIATE(T)                                  \
  template T Config::get<T>(const std::string&, const T&) const; \
  template T Config::require<T>(const std::string&) const;
DFCL_CONFIG_INSTANTIATE(bool)
DFCL_CONFIG_INSTANTIATE(int)
DFCL_CONFIG_INSTANTIATE(int64_t)
DFCL_CONFIG_INSTANTIATE(double)
DFCL_CONFIG_INSTANTIATE(float)
DFCL_CONFIG_INSTANTIATE(std::string)
DFCL_CONFIG_INSTANTIATE(std::vector<std::string>)
DFCL_CONFIG_INSTANTIATE(std::vector<double>)
DFCL_CONFIG_INSTANTIATE(std::vector<int64_t>)
#undef DFCL_CONFIG_INSTANTIATE

std::vector<std::string> Config::keys(const std::string& key) const {
  const std::string full = prefix_ + key;
  state_->used.insert(full + ".*");
  YAML::Node n = find(state_->root, full);
  std::vector<std::string> out;
  if (!n.IsDefined() || n.IsNull()) return out;
  if (!n.IsMap())
    throw ConfigError(fmt::format("config key '{}' ({}) must be a section of named entries", full, origin(key)));
  for (auto it = n.begin(); it != n.end(); ++it) out.push_back(it->first.as<std::string>());
  return out;
}

Config Config::sub(const std::string& key) const {
  Config c = *this;
  c.prefix_ = prefix_ + key + ".";
  return c;
}

std::vector<Config> Config::items(const std::string& key) const {
  const std::string full = prefix_ + key;
  state_->used.insert(full);
  YAML::Node n = find(state_->root, full);
  std::vector<Config> out;
  if (!n.IsDefined() || n.IsNull()) return out;
  if (!n.IsSequence())
    throw ConfigError(fmt::format("config key '{}' ({}) = {} must be a list of maps, e.g. [{{column: a}}, {{column: b}}]",
                                  full, origin(key), show(n)));
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsMap())
      throw ConfigError(fmt::format("config key '{}.{}' ({}) = {} must be a map of keys, e.g. {{column: a}}", full, i,
                                    origin(key), show(n[i])));
    out.push_back(sub(fmt::format("{}.{}", key, i)));
  }
  return out;
}

std::vector<std::string> Config::item_texts(const std::string& key) const {
  const std::string full = prefix_ + key;
  state_->used.insert(full);
  YAML::Node n = find(state_->root, full);
  std::vector<std::string> out;
  if (!n.IsDefined() || n.IsNull()) return out;
  if (!n.IsSequence())
    throw ConfigError(fmt::format("config key '{}' ({}) = {} must be a list of values, e.g. [0.001, 0.003, 0.01]",
                                  full, origin(key), show(n)));
  for (size_t i = 0; i < n.size(); ++i) out.push_back(show(n[i]));
  return out;
}

void Config::mark_used(const std::string& key) const { state_->used.insert(prefix_ + key + ".*"); }

void Config::check_all_used() const {
  std::vector<std::string> all;
  YAML::Node base = prefix_.empty() ? state_->root : find(state_->root, prefix_.substr(0, prefix_.size() - 1));
  if (!base.IsDefined() || !base.IsMap()) return;
  leaves(base, prefix_, all);
  for (const auto& key : all) {
    bool ok = state_->used.count(key) > 0;
    // A key is covered when a parent section was read whole (mark_used / keys()).
    for (size_t dot = key.find('.'); !ok && dot != std::string::npos; dot = key.find('.', dot + 1))
      ok = state_->used.count(key.substr(0, dot) + ".*") > 0;
    ok = ok || state_->used.count(key + ".*") > 0;
    if (ok) continue;
    std::string best;
    size_t best_d = 4;  // suggest only close matches
    for (const auto& known : state_->used) {
      if (known.size() > 2 && known.compare(known.size() - 2, 2, ".*") == 0) continue;
      size_t d = edit_distance(key, known);
      if (d < best_d) best_d = d, best = known;
    }
    auto it = state_->origins.find(key);
    std::string where = it == state_->origins.end() ? "" : " (" + it->second + ")";
    std::string hint = best.empty() ? "remove it, or see docs/cli.md for the keys this command reads"
                                    : fmt::format("did you mean '{}'?", best);
    throw ConfigError(fmt::format("unknown config key '{}'{}: {}", key, where, hint));
  }
}

std::string Config::dump() const {
  YAML::Emitter e;
  e << state_->root;
  return e.c_str();
}

void Config::set_dump_mode() { state_->dump_mode = true; }
bool Config::dump_mode() const { return state_->dump_mode; }

std::string Config::dump_effective() const {
  YAML::Node all = YAML::Clone(state_->defaults);
  merge_into(all, state_->root);
  YAML::Emitter e;
  e << all;
  return e.c_str();
}

}  // namespace dfcl
