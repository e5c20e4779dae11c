// Errors that cross a component boundary. Every message says what is wrong and
// where (file, line, field, tensor name, byte offset), so the one place that
// reports it (the CLI, the server's error handler) can print it as it is.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace mnemo {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws mnemo::Error with a formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// An invariant that cannot be turned off (unlike assert): a failure is a bug.
#define MNEMO_CHECK(condition, ...)                                                     \
  do {                                                                                  \
    if (!(condition)) ::mnemo::fail("internal error at {}:{}: {}", __FILE__, __LINE__, \
                                    fmt::format(__VA_ARGS__));                          \
  } while (0)

}  // namespace mnemo
