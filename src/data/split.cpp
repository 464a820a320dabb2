// \brief Splits: parsing, the row hash, and the default split of a held-out read.
#include "data/split.h"

#include <fmt/format.h>  // for fmt::format

#include <climits>  // for PATH_MAX
#include <cstdlib>  // for realpath

#include "core/error.h"  // for ConfigError
#include "core/rng.h"    // for mix64

namespace dfcl::data {

Split parse_split(const std::string& s) {
  if (s == "all") return Split::kAll;
  if (s == "train") return Split::kTrain;
  if (s == "validation" || s == "val") return Split::kValidation;
  if (s == "test") return Split::kTest;
  if (s == "held_out") return Split::kHeldOut;
  throw ConfigError(fmt::format("split '{}' is not one of all, train, validation, test, held_out", s));
}

std::string to_string(Split s) {
  switch (s) {
    case Split::kAll:
      return "all";
    case Split::kTrain:
      return "train";
    case Split::kValidation:
      return "validation";
    case Split::kTest:
      return "test";
    case Split::kHeldOut:
      return "held_out";
  }
  return "all";
}

Split SplitSpec::of(int64_t key) const {
  double u = double(mix64(uint64_t(key) ^ mix64(seed ^ 0x5B117ull)) >> 11) * 0x1.0p-53;
  if (u < train) return Split::kTrain;
  if (u < train + validation) return Split::kValidation;
  return Split::kTest;
}

double SplitSpec::fraction(Split s) const {
  switch (s) {
    case Split::kAll:
      return 1;
    case Split::kTrain:
      return train;
    case Split::kValidation:
      return validation;
    case Split::kTest:
      return 1 - train - validation;
    case Split::kHeldOut:
      return 1 - train;
  }
  return 1;
}

bool SplitSpec::contains(Split which, int64_t key) const {
  if (which == Split::kAll) return true;
  const Split s = of(key);
  return which == Split::kHeldOut ? s != Split::kTrain : s == which;
}

bool same_file(const std::string& a, const std::string& b) {
  // realpath(3) rather than std::filesystem: a file that does not exist (yet) compares by its spelling.
  char ra[PATH_MAX], rb[PATH_MAX];
  if (::realpath(a.c_str(), ra) && ::realpath(b.c_str(), rb)) return std::string(ra) == std::string(rb);
  return a == b;
}

bool shares_file(const std::vector<std::string>& files, const std::vector<std::string>& trained_on) {
  for (const auto& f : files)
    for (const auto& t : trained_on)
      if (same_file(f, t)) return true;
  return false;
}

Split default_split(const std::vector<std::string>& files, const std::vector<std::string>& trained_on, Split held_out) {
  return shares_file(files, trained_on) ? held_out : Split::kAll;
}

}  // namespace dfcl::data
