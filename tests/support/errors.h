// The message of the mnemo::Error an action throws, for tests of bad input
// that check what the error names (file, field, offset, …).
#pragma once

#include "model/error.h"

#include <functional>
#include <string>

namespace mnemo::testing {

inline constexpr const char* kNoError = "(no error)";

// e.what() of the mnemo::Error that `action` throws, or kNoError when it
// returns normally. Any other exception propagates (and fails the test).
inline std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return kNoError;
}

}  // namespace mnemo::testing
