// Replays every kept fuzz input through its target in the default test run:
// tests/fuzz/regressions/<target>/ holds each input a fuzzer ever crashed or
// hung on (fixed since) and a few small hand-made seeds. A target that breaks
// its contract aborts, which fails this test.
#include "fuzz/fuzz_target.h"
#include "support/reference.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace mnemo {
namespace {

namespace fs = std::filesystem;

TEST(FuzzRegressions, EveryKeptInputKeepsItsTargetsContract) {
  spdlog::set_level(spdlog::level::off);
  const fs::path root = fs::path(testing::env_or_empty("MNEMO_SOURCE_DIR")) / "tests" / "fuzz" / "regressions";
  ASSERT_TRUE(fs::is_directory(root)) << root;
  std::map<std::string, int> replayed;
  for (const auto& [name, target] : fuzz::targets()) replayed[name] = 0;
  for (const auto& target_dir : fs::directory_iterator(root)) {
    const std::string name = target_dir.path().filename().string();
    ASSERT_TRUE(fuzz::targets().count(name)) << "inputs kept for an unknown target: " << name;
    for (const auto& file : fs::directory_iterator(target_dir.path())) {
      std::ifstream in(file.path(), std::ios::binary);
      std::stringstream bytes;
      bytes << in.rdbuf();
      SCOPED_TRACE(file.path().string());
      fuzz::targets().at(name)(bytes.str());
      ++replayed[name];
    }
  }
  for (const auto& [name, count] : replayed) EXPECT_GT(count, 0) << "no input kept for target " << name;
}

}  // namespace
}  // namespace mnemo
