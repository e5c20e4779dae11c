// `mnemo generate`, driven as a user would, prints exactly the greedy
// completion transformers produces on the same model (text and chat prompts,
// stopping at eos); and rejects bad options with a clear message.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "support/command.h"
#include "support/reference.h"

namespace mnemo {
namespace {

using testing::run_command;

class GenerateCli : public ::testing::TestWithParam<const char*> {};

TEST_P(GenerateCli, GreedyCompletionEqualsTransformers) {
  auto dir = testing::reference_dir() / "models" / GetParam();
  std::ifstream in(dir / "expected_completions.json");
  ASSERT_TRUE(in) << "no expected completions in " << dir;
  nlohmann::json cases = nlohmann::json::parse(in);
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) {
    std::string command = testing::mnemo_binary() + " generate --model " + testing::shell_quote(dir.string()) +
                          " --prompt " + testing::shell_quote(c["prompt"].get<std::string>()) + " --max-tokens 16" +
                          (c["chat"].get<bool>() ? " --chat" : "");
    testing::CommandResult result = run_command(command);
    ASSERT_EQ(result.exit_code, 0) << command;
    // The CLI ends the completion with one newline.
    EXPECT_EQ(result.output, c["completion"].get<std::string>() + "\n")
        << GetParam() << (c["chat"].get<bool>() ? " chat" : " text") << " prompt: " << c["prompt"];
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GenerateCli, ::testing::Values("llama", "mistral", "qwen2", "qwen3"));

TEST(GenerateCliErrors, MissingModelDirectoryIsNamed) {
  testing::CommandResult result =
      run_command(testing::mnemo_binary() + " generate --model /no/such/model --prompt hi 2>&1");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("/no/such/model"), std::string::npos) << result.output;
}

TEST(GenerateCliErrors, BadSamplingParametersAreRejected) {
  auto dir = testing::reference_dir() / "models" / "llama";
  testing::CommandResult result = run_command(testing::mnemo_binary() + " generate --model " +
                                              testing::shell_quote(dir.string()) + " --prompt hi --top-p 0 2>&1");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("top_p"), std::string::npos) << result.output;
}

TEST(GenerateCliErrors, HelpExplainsTheCommand) {
  testing::CommandResult result = run_command(testing::mnemo_binary() + " generate --help");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_NE(result.output.find("--chat"), std::string::npos);
  EXPECT_NE(result.output.find("--temperature"), std::string::npos);
}

}  // namespace
}  // namespace mnemo
