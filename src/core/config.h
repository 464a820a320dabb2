// \brief Layered configuration: YAML file + `--set a.b=value` overrides, typed reads, unknown-key checks.
//
// A command reads every key it understands with get()/require(); afterwards check_all_used() reports
// any key nobody read (a typo) with where it came from (file:line or --set) and the closest known key.
#pragma once
#include <cstdint>  // for int64_t
#include <memory>   // for std::shared_ptr
#include <string>   // for std::string
#include <vector>   // for std::vector

namespace YAML {
class Node;
}

namespace dfcl {

class Config {
 public:
  Config();
  /// Loads `path` (may be empty: start from nothing), then applies `a.b.c=value` overrides in order.
  /// Override values are parsed as YAML ("3", "true", "[a, b]").
  static Config load(const std::string& path, const std::vector<std::string>& overrides = {});
  /// Parses YAML text directly (tests, embedded defaults). `origin` names it in messages.
  static Config from_string(const std::string& yaml, const std::string& origin = "<string>");

  /// Applies one `a.b.c=value` override.
  void set(const std::string& assignment);
  /// Merges another config on top of this one (its keys win).
  void merge(const Config& other);

  bool has(const std::string& key) const;
  /// Typed read with a default. Throws ConfigError naming the key, its origin and the expected type.
  template <class T>
  T get(const std::string& key, const T& fallback) const;
  /// A list of strings that may also be written as one string (`data: a.h5` or `data: [a.h5, b.h5]`).
  std::vector<std::string> get_strings(const std::string& key, const std::vector<std::string>& fallback = {}) const;
  /// Typed read of a key that must be present.
  template <class T>
  T require(const std::string& key) const;
  /// Names of the children of a map key (for per-column or per-arm sections).
  std::vector<std::string> keys(const std::string& key) const;
  /// Sub-config rooted at `key`; reads through it count as reads of the parent.
  Config sub(const std::string& key) const;
  /// Sub-configs of the elements of a list of maps (`features: [{column: a}, ...]`), rooted at
  /// "key.0", "key.1", ...; empty when the key is absent. Throws ConfigError unless every element is a map.
  std::vector<Config> items(const std::string& key) const;

  /// The elements of a list as YAML text, one each (`[0.1, [1, 2], abc]` -> "0.1", "[1, 2]", "abc"): values to pass
  /// on as `--set key=TEXT`. Empty when the key is absent; ConfigError when it is not a list.
  std::vector<std::string> item_texts(const std::string& key) const;
  /// Marks a whole subtree as read (sections interpreted elsewhere).
  void mark_used(const std::string& key) const;
  /// Throws ConfigError if any key was never read: "unknown config key 'train.lr' (file.yaml:3); did you mean 'train.lr0'?".
  void check_all_used() const;
  /// Where a key came from: "path.yaml:12", "--set", or "default".
  std::string origin(const std::string& key) const;
  /// The configuration as given (files and --set) as YAML text: what a checkpoint stores, so a resumed run takes
  /// the defaults of the code it resumes under.
  std::string dump() const;
  /// For `--dump-config`: require() of an absent key records "<required>" and returns T{} instead of throwing, so a
  /// command can read its whole configuration (and record every default) without the keys a run would need.
  void set_dump_mode();
  bool dump_mode() const;
  /// `--dump-config`: the given keys over the default of every key read while absent, as YAML text.
  std::string dump_effective() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::string prefix_;  // for sub(): "a.b." or ""
};

}  // namespace dfcl
