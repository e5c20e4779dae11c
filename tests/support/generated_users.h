// Users of the generated benchmark for the trainer's tests: `mnemo eval
// generate` run once per test binary and scratch directory.
#pragma once

#include "support/command.h"
#include "support/reference.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

namespace mnemo::testing {

// `users` users of the test split (seed 1) under scratch_dir(name): logs/ and questions.jsonl.
inline std::filesystem::path generated_users(const std::string& name, int users = 2) {
  static std::map<std::string, std::filesystem::path> made;
  if (auto found = made.find(name); found != made.end()) return found->second;
  const std::filesystem::path dir = scratch_dir(name);
  auto r = run_command(mnemo_command() + " eval generate --users " + std::to_string(users) + " --seed 1 --out " +
                       shell_quote(dir.string()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return made[name] = dir;
}

}  // namespace mnemo::testing
