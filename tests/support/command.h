// Running a command as a user would (tests that drive the mnemo binary or a
// Python reference script): its exit code and what it printed on stdout.
#pragma once

#include "support/reference.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace mnemo::testing {

struct CommandResult {
  int exit_code = -1;  // -1 when the command could not run or was killed
  std::string output;  // stdout; redirect stderr in the command to capture it
};

inline CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Quotes `text` as one word for /bin/sh.
inline std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// The mnemo binary as the first word of a command line; fails the test (not
// skips) when ctest did not say where it is.
inline std::string mnemo_command() {
  std::string binary = mnemo_binary();
  if (binary.empty()) ADD_FAILURE() << "MNEMO_BINARY is not set: run through ctest";
  return shell_quote(binary);
}

}  // namespace mnemo::testing
