// `mnemo generate`, driven as a user would, prints exactly the greedy
// completion transformers produces on the same model (text and chat prompts,
// stopping at eos); and rejects bad options with a clear message.
#include "support/reference.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <fstream>

namespace mnemo {
namespace {

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

// Runs a shell command, capturing stdout (stderr goes to the test log).
CommandResult run(const std::string& command) {
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

std::string quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

class GenerateCli : public ::testing::TestWithParam<const char*> {};

TEST_P(GenerateCli, GreedyCompletionEqualsTransformers) {
  auto dir = testing::reference_dir() / "models" / GetParam();
  std::ifstream in(dir / "expected_completions.json");
  ASSERT_TRUE(in) << "no expected completions in " << dir;
  nlohmann::json cases = nlohmann::json::parse(in);
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) {
    std::string command = testing::mnemo_binary() + " generate --model " + quote(dir.string()) + " --prompt " +
                          quote(c["prompt"].get<std::string>()) + " --max-tokens 16" +
                          (c["chat"].get<bool>() ? " --chat" : "");
    CommandResult result = run(command);
    ASSERT_EQ(result.exit_code, 0) << command;
    // The CLI ends the completion with one newline.
    EXPECT_EQ(result.output, c["completion"].get<std::string>() + "\n")
        << GetParam() << (c["chat"].get<bool>() ? " chat" : " text") << " prompt: " << c["prompt"];
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GenerateCli, ::testing::Values("llama", "mistral", "qwen2", "qwen3"));

TEST(GenerateCliErrors, MissingModelDirectoryIsNamed) {
  CommandResult result = run(testing::mnemo_binary() + " generate --model /no/such/model --prompt hi 2>&1");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("/no/such/model"), std::string::npos) << result.output;
}

TEST(GenerateCliErrors, BadSamplingParametersAreRejected) {
  auto dir = testing::reference_dir() / "models" / "llama";
  CommandResult result =
      run(testing::mnemo_binary() + " generate --model " + quote(dir.string()) + " --prompt hi --top-p 0 2>&1");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("top_p"), std::string::npos) << result.output;
}

TEST(GenerateCliErrors, HelpExplainsTheCommand) {
  CommandResult result = run(testing::mnemo_binary() + " generate --help");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_NE(result.output.find("--chat"), std::string::npos);
  EXPECT_NE(result.output.find("--temperature"), std::string::npos);
}

}  // namespace
}  // namespace mnemo
