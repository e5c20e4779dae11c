// `mnemo generate`, driven as a user would, prints exactly the greedy
// completion transformers produces on the same model (text and chat prompts,
// stopping at eos); and rejects bad options with a clear message.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>
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

// Each of these ran (NaN, -1 as 0, a wrapped seed, an empty stop string) or
// exited 1; a bad value is a usage error (2) naming the flag.
TEST(GenerateCliErrors, BadValuesAreUsageErrorsNamingTheFlag) {
  const std::string generate = testing::mnemo_binary() + " generate --model " +
                               testing::shell_quote((testing::reference_dir() / "models" / "llama").string());
  for (const auto& [args, flag] : std::vector<std::pair<std::string, std::string>>{
           {"--prompt hi --top-p 0", "--top-p"},
           {"--prompt hi --temperature nan", "--temperature"},
           {"--prompt hi --temperature -0.5", "--temperature"},
           {"--prompt hi --max-tokens -1", "--max-tokens"},
           {"--prompt hi --seed -1", "--seed"},
           {"--prompt hi --seed 18446744073709551616", "--seed"},
           {"--prompt hi --stop ''", "--stop"},
           {"--prompt hi --system be-brief", "--system"},
           {"--prompt ''", "--prompt"},
           {"--prompt $'ok\\xff'", "byte offset 2"},
           {"--prompt-file - < /dev/zero", "more than 64 MiB, the limit for a prompt"},
       }) {
    testing::CommandResult result = run_command("bash -c " + testing::shell_quote(generate + " " + args + " 2>&1"));
    EXPECT_EQ(result.exit_code, 2) << args << ": " << result.output;
    EXPECT_NE(result.output.find(flag), std::string::npos) << args << ": " << result.output;
    EXPECT_EQ(result.output.find("request 0"), std::string::npos) << args << ": " << result.output;
    EXPECT_EQ(result.output.find("tokenizer.json"), std::string::npos) << args << ": " << result.output;
  }
}

// A prompt over the shell's argument limit comes from a file or stdin.
TEST(GenerateCli, APromptFromAFileOrStdinGivesTheSameCompletion) {
  const std::string generate = testing::mnemo_binary() + " generate --max-tokens 8 --model " +
                               testing::shell_quote((testing::reference_dir() / "models" / "llama").string());
  const std::string prompt = "The quick brown fox";
  const auto file = testing::scratch_dir("generate_prompt_file") / "prompt.txt";
  std::ofstream(file) << prompt;
  testing::CommandResult direct = run_command(generate + " --prompt " + testing::shell_quote(prompt));
  testing::CommandResult from_file = run_command(generate + " --prompt-file " + testing::shell_quote(file.string()));
  testing::CommandResult from_stdin =
      run_command(generate + " --prompt-file - < " + testing::shell_quote(file.string()));
  ASSERT_EQ(direct.exit_code, 0) << direct.output;
  EXPECT_EQ(from_file.output, direct.output);
  EXPECT_EQ(from_stdin.output, direct.output);
}

TEST(GenerateCli, StatsReportPrefillAndDecodeRatesApart) {
  testing::CommandResult result = run_command(
      testing::mnemo_binary() + " generate --max-tokens 4 --stats --prompt hello --model " +
      testing::shell_quote((testing::reference_dir() / "models" / "llama").string()) + " 2>&1");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("prefill: "), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("decode: 3 more tokens"), std::string::npos) << result.output;
}

TEST(GenerateCliErrors, HelpExplainsTheCommand) {
  testing::CommandResult result = run_command(testing::mnemo_binary() + " generate --help");
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_NE(result.output.find("--chat"), std::string::npos);
  EXPECT_NE(result.output.find("--temperature"), std::string::npos);
}

}  // namespace
}  // namespace mnemo
