// The forward pass on a CUDA device equals the CPU result (the reference,
// itself proven equal to transformers): the default model in fp32 and bf16,
// a batch of prompts of different lengths, and greedy decoding.
// Skips (with a message) where no GPU is present.
#include "model/base_model.h"
#include "model/default_model.h"
#include "model/kv_cache.h"
#include "model/tokenizer.h"
#include "model/transformer.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <gtest/gtest.h>

namespace mnemo {
namespace {

std::vector<std::vector<int32_t>> prompts(const BaseModel& model) {
  return {model.tokenizer->encode("The capital of France is"),
          model.tokenizer->encode("Once upon a time, in a small village by the sea, there lived an old fisherman who"),
          model.tokenizer->encode("1 2 3")};
}

at::Tensor logits_on(const BaseModel& model, const std::vector<std::vector<int32_t>>& tokens) {
  ForwardBatch batch{.tokens = tokens, .all_logits = true};
  std::vector<std::unique_ptr<SequenceCache>> caches;
  for (size_t i = 0; i < tokens.size(); ++i) {
    caches.push_back(std::make_unique<SequenceCache>(model.transformer->config(), 32, model.transformer->dtype(),
                                                     model.transformer->device()));
    batch.caches.push_back(caches.back().get());
  }
  return model.transformer->forward(batch).cpu();
}

class ForwardGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device: the forward pass on GPU is not checked on this machine";
  }
};

TEST_F(ForwardGpu, Float32LogitsEqualTheCpu) {
  BaseModel cpu = open_base_model(default_model_path(), {.dtype = "float32", .device = "cpu"});
  BaseModel gpu = open_base_model(default_model_path(), {.dtype = "float32", .device = "cuda"});
  auto tokens = prompts(cpu);
  double diff = (logits_on(cpu, tokens) - logits_on(gpu, tokens)).abs().max().item<double>();
  std::printf("fp32 CUDA vs CPU: max |logit diff| = %.3g\n", diff);
  // TF32 is off by default for matmuls in LibTorch, so this is fp32 vs fp32.
  EXPECT_LT(diff, 2e-3);
}

TEST_F(ForwardGpu, BFloat16LogitsAreCloseToTheCpuFloat32) {
  BaseModel cpu = open_base_model(default_model_path(), {.dtype = "float32", .device = "cpu"});
  BaseModel gpu = open_base_model(default_model_path(), {.dtype = "bfloat16", .device = "cuda"});
  auto tokens = prompts(cpu);
  at::Tensor want = logits_on(cpu, tokens), got = logits_on(gpu, tokens);
  double diff = (want - got).abs().max().item<double>();
  double range = (want.max() - want.min()).item<double>();
  std::printf("bf16 CUDA vs fp32 CPU: max |logit diff| = %.3g (range %.3g)\n", diff, range);
  EXPECT_LT(diff, 0.05 * range);
  // The most likely next token agrees at almost every position.
  double agree = (want.argmax(-1) == got.argmax(-1)).to(at::kFloat).mean().item<double>();
  EXPECT_GT(agree, 0.9);
}

TEST_F(ForwardGpu, GreedyDecodeMatchesTheCpuInFloat32) {
  BaseModel cpu = open_base_model(default_model_path(), {.dtype = "float32", .device = "cpu"});
  BaseModel gpu = open_base_model(default_model_path(), {.dtype = "float32", .device = "cuda"});
  auto decode = [](const BaseModel& model, std::vector<int32_t> prompt) {
    SequenceCache cache(model.transformer->config(), 64, model.transformer->dtype(), model.transformer->device());
    ForwardBatch step{.tokens = {prompt}, .caches = {&cache}};
    std::vector<int32_t> out;
    for (int i = 0; i < 24; ++i) {
      out.push_back(static_cast<int32_t>(model.transformer->forward(step).argmax(-1).item<int64_t>()));
      step.tokens[0] = {out.back()};
    }
    return out;
  };
  for (const auto& prompt : prompts(cpu)) EXPECT_EQ(decode(cpu, prompt), decode(gpu, prompt));
}

}  // namespace
}  // namespace mnemo
