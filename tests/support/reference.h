// Where the tests find their inputs: the reference data made by
// scripts/make_reference_models.py (a ctest fixture), the mnemo binary, a
// scratch directory. Paths come from environment variables that
// tests/CMakeLists.txt sets.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace mnemo::testing {

inline std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// The reference data directory; fails the test (not skips) when missing,
// since the fixture that makes it is part of every run.
inline std::filesystem::path reference_dir() {
  std::string dir = env_or_empty("MNEMO_REFERENCE_DIR");
  if (dir.empty()) ADD_FAILURE() << "MNEMO_REFERENCE_DIR is not set: run through ctest";
  return dir;
}

// A fresh, empty scratch directory for one test: under MNEMO_TEST_TMP (the
// build's own, set by ctest), else under the system temp directory with the
// process id, so that two runs there never share (and wipe) one directory.
inline std::filesystem::path scratch_dir(const std::string& name) {
  std::string root = env_or_empty("MNEMO_TEST_TMP");
  std::filesystem::path dir =
      root.empty() ? std::filesystem::temp_directory_path() / ("mnemo_test_" + std::to_string(::getpid())) / name
                   : std::filesystem::path(root) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline std::string mnemo_binary() { return env_or_empty("MNEMO_BINARY"); }

}  // namespace mnemo::testing
