// For tests labelled `gpu`: skip, with the reason, where there is no CUDA
// device (or no CUDA build) — except under MNEMO_REQUIRE_GPU=1, set by
// scripts/gpu_build.sh on the GPU machine, where a skip would hide that the
// check never ran, so it fails instead.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

namespace mnemo::testing {

inline bool gpu_required() {
  const char* value = std::getenv("MNEMO_REQUIRE_GPU");
  return value != nullptr && std::strcmp(value, "1") == 0;
}

}  // namespace mnemo::testing

// Use at the top of a test body or SetUp(): `available` false skips (or fails).
#define MNEMO_SKIP_UNLESS_GPU(available, reason)                                     \
  do {                                                                               \
    if (!(available)) {                                                              \
      if (::mnemo::testing::gpu_required()) FAIL() << "MNEMO_REQUIRE_GPU=1 but " << reason; \
      GTEST_SKIP() << reason;                                                        \
    }                                                                                \
  } while (0)
