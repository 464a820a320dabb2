// \brief core::Registry: built-ins registered once and first, names in registration order, duplicates refused, an
// unknown name found as an empty factory, and concurrent first use from several threads.
#include <gtest/gtest.h>

#include <atomic>      // for std::atomic
#include <functional>  // for std::function
#include <string>      // for std::string
#include <thread>      // for std::thread
#include <vector>      // for std::vector

#include "core/error.h"     // for ConfigError
#include "core/registry.h"  // for core::Registry

namespace dfcl {
namespace {

using Factory = std::function<int()>;
std::atomic<int> builtin_calls{0};
core::Registry<Factory>& test_registry();
void register_test_builtins() {
  ++builtin_calls;
  test_registry().add("beta", [] { return 2; });
  test_registry().add("alpha", [] { return 1; });
}
core::Registry<Factory>& test_registry() {
  static core::Registry<Factory> r("widget", register_test_builtins);
  return r;
}

TEST(CoreRegistry, BuiltinsOnceAndFirstThenUsersInOrder) {
  std::vector<std::thread> threads;  // concurrent first use: the built-ins still run exactly once
  for (int t = 0; t < 4; ++t) threads.emplace_back([] { (void)test_registry().names(); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(builtin_calls.load(), 1);
  test_registry().add_user("gamma", [] { return 3; });
  EXPECT_EQ(test_registry().names(), (std::vector<std::string>{"beta", "alpha", "gamma"}));
  EXPECT_EQ(test_registry().find("alpha")(), 1);
  EXPECT_EQ(test_registry().find("gamma")(), 3);
  EXPECT_FALSE(test_registry().find("delta"));
  EXPECT_EQ(builtin_calls.load(), 1);
  try {
    test_registry().add_user("alpha", [] { return 9; });
    FAIL() << "a user entry named like a built-in must be refused";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "widget 'alpha' is registered twice; give the new one another name");
  }
  EXPECT_EQ(test_registry().find("alpha")(), 1) << "the built-in stays";
}

// A registry of plain function pointers (the A/B estimators') reports an unknown name as null.
int seven() { return 7; }
void no_builtins() {}
TEST(CoreRegistry, FunctionPointerFactories) {
  core::Registry<int (*)()> r("thing", no_builtins);
  EXPECT_EQ(r.find("seven"), nullptr);
  r.add_user("seven", seven);
  EXPECT_EQ(r.find("seven")(), 7);
  EXPECT_THROW(r.add("seven", seven), ConfigError);
}

}  // namespace
}  // namespace dfcl
