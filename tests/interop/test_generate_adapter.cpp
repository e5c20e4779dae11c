// `mnemo generate --adapter DIR`, driven as a user would: with a peft adapter
// it prints exactly peft's greedy completion (which differs from the base
// model's), and an adapter that does not fit the model fails with a message
// that says why.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/command.h"
#include "support/reference.h"

namespace mnemo {
namespace {

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
      std::string command = testing::mnemo_binary() + " generate --model " + testing::shell_quote(model_dir.string()) +
                            " --adapter " + testing::shell_quote((peft_dir / adapter).string()) + " --prompt " +
                            testing::shell_quote(prompt) + " --max-tokens 16";
      testing::CommandResult result = testing::run_command(command);
      ASSERT_EQ(result.exit_code, 0) << command;
      EXPECT_EQ(result.output, c["completion"].get<std::string>() + "\n")
          << GetParam() << "/" << adapter << ": " << prompt;
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
  testing::CommandResult result =
      testing::run_command(testing::mnemo_binary() + " generate --model " + testing::shell_quote(llama.string()) +
                           " --adapter " + testing::shell_quote(qwen3_adapter.string()) + " --prompt hi 2>&1");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("does not fit"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("lora_"), std::string::npos) << result.output;
}

TEST(GenerateAdapterErrors, AMissingAdapterDirectoryIsNamed) {
  auto llama = testing::reference_dir() / "models" / "llama";
  testing::CommandResult result =
      testing::run_command(testing::mnemo_binary() + " generate --model " + testing::shell_quote(llama.string()) +
                           " --adapter /no/such/adapter --prompt hi 2>&1");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("/no/such/adapter"), std::string::npos) << result.output;
}

// The adapter is read and checked against the model's config before the
// model's weights load: with weights that cannot load (a corrupt
// safetensors file beside a good config), the error is still the adapter's.
// Before, every bad adapter cost a whole model load (a 1 GB peak with the
// default model in float32).
TEST(GenerateAdapterErrors, ABadAdapterFailsBeforeTheModelsWeightsLoad) {
  namespace fs = std::filesystem;
  const fs::path llama = testing::reference_dir() / "models" / "llama";
  const fs::path model = testing::scratch_dir("generate_adapter/unloadable_model");
  for (const char* file : {"config.json", "tokenizer.json", "tokenizer_config.json"})
    if (fs::exists(llama / file)) fs::copy_file(llama / file, model / file, fs::copy_options::overwrite_existing);
  std::ofstream(model / "model.safetensors") << "not a safetensors file";
  auto qwen3_adapter = testing::reference_dir() / "peft" / "qwen3" / "r8_all";
  testing::CommandResult result =
      testing::run_command(testing::mnemo_binary() + " generate --model " + testing::shell_quote(model.string()) +
                           " --adapter " + testing::shell_quote(qwen3_adapter.string()) + " --prompt hi 2>&1");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("does not fit"), std::string::npos) << result.output;
  EXPECT_EQ(result.output.find("safetensors"), std::string::npos) << "the weights were read first: " << result.output;
  // The same model with a good adapter does reach the weights, and fails there.
  auto llama_adapter = testing::reference_dir() / "peft" / "llama" / "r8_all";
  result = testing::run_command(testing::mnemo_binary() + " generate --model " + testing::shell_quote(model.string()) +
                                " --adapter " + testing::shell_quote(llama_adapter.string()) + " --prompt hi 2>&1");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("model.safetensors"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace mnemo
