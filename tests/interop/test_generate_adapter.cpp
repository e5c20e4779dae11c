// `mnemo generate --adapter DIR`, driven as a user would: with a peft adapter
// it prints exactly peft's greedy completion (which differs from the base
// model's), and an adapter that does not fit the model fails with a message
// that says why.
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

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << "missing " << path;
  return nlohmann::json::parse(in);
}

class GenerateAdapter : public ::testing::TestWithParam<const char*> {};

TEST_P(GenerateAdapter, GreedyCompletionEqualsPeftAndDiffersFromTheBase) {
  auto model_dir = testing::reference_dir() / "models" / GetParam();
  auto peft_dir = testing::reference_dir() / "peft" / GetParam();
  nlohmann::json base_cases = read_json(model_dir / "expected_completions.json");
  for (const char* adapter : {"r8_all", "r16_qv_rslora"}) {
    nlohmann::json cases = read_json(peft_dir / (std::string(adapter) + ".completions.json"));
    ASSERT_FALSE(cases.empty());
    for (const auto& c : cases) {
      std::string prompt = c["prompt"].get<std::string>();
      std::string command = testing::mnemo_binary() + " generate --model " + quote(model_dir.string()) +
                            " --adapter " + quote((peft_dir / adapter).string()) + " --prompt " + quote(prompt) +
                            " --max-tokens 16";
      CommandResult result = run(command);
      ASSERT_EQ(result.exit_code, 0) << command;
      EXPECT_EQ(result.output, c["completion"].get<std::string>() + "\n") << GetParam() << "/" << adapter << ": "
                                                                          << prompt;
      for (const auto& base : base_cases)
        if (!base["chat"].get<bool>() && base["prompt"] == prompt)
          EXPECT_NE(result.output, base["completion"].get<std::string>() + "\n") << "the adapter changed nothing";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, GenerateAdapter, ::testing::Values("llama", "qwen3", "qwen2", "mistral"));

TEST(GenerateAdapterErrors, AnAdapterForAnotherModelIsRefusedWithTheReason) {
  auto llama = testing::reference_dir() / "models" / "llama";
  auto qwen3_adapter = testing::reference_dir() / "peft" / "qwen3" / "r8_all";  // head_dim 32 vs llama's 16
  CommandResult result = run(testing::mnemo_binary() + " generate --model " + quote(llama.string()) +
                             " --adapter " + quote(qwen3_adapter.string()) + " --prompt hi 2>&1");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("does not fit"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("lora_"), std::string::npos) << result.output;
}

TEST(GenerateAdapterErrors, AMissingAdapterDirectoryIsNamed) {
  auto llama = testing::reference_dir() / "models" / "llama";
  CommandResult result = run(testing::mnemo_binary() + " generate --model " + quote(llama.string()) +
                             " --adapter /no/such/adapter --prompt hi 2>&1");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("/no/such/adapter"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace mnemo
