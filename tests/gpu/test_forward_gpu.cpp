// The forward pass on a CUDA device equals the CPU result (the reference,
// itself proven equal to transformers), on a random model of the default
// model's layer shape (hidden 576, 9 query / 3 KV heads) made in the test, so
// nothing needs carrying to the GPU machine: fp32 and bf16 logits of a batch
// of prompts of different lengths, and greedy decoding.
// Skips (with a message) where no GPU is present.
#include "model/config.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "support/gpu.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <memory>

namespace mnemo {
namespace {

ModelConfig config() {
  ModelConfig c;
  c.vocab_size = 4096;
  c.hidden_size = 576;
  c.intermediate_size = 1536;
  c.num_layers = 4;
  c.num_attention_heads = 9;
  c.num_key_value_heads = 3;
  c.head_dim = 64;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 100000;
  c.tie_word_embeddings = true;
  c.source = "random model";
  return c;
}

// Large-ish weights so that logits spread out and greedy choices are not ties.
std::map<std::string, at::Tensor> random_weights(const ModelConfig& c) {
  at::manual_seed(0);
  auto r = [](std::vector<int64_t> shape, double std) { return at::randn(shape) * std; };
  std::map<std::string, at::Tensor> w = {{"model.embed_tokens.weight", r({c.vocab_size, c.hidden_size}, 1.0)},
                                         {"model.norm.weight", 1 + r({c.hidden_size}, 0.1)}};
  const double s = 1.0 / std::sqrt(double(c.hidden_size));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    std::string p = fmt::format("model.layers.{}.", i);
    w[p + "input_layernorm.weight"] = 1 + r({c.hidden_size}, 0.1);
    w[p + "post_attention_layernorm.weight"] = 1 + r({c.hidden_size}, 0.1);
    w[p + "self_attn.q_proj.weight"] = r({576, 576}, 2 * s);
    w[p + "self_attn.k_proj.weight"] = r({192, 576}, 2 * s);
    w[p + "self_attn.v_proj.weight"] = r({192, 576}, s);
    w[p + "self_attn.o_proj.weight"] = r({576, 576}, s);
    w[p + "mlp.gate_proj.weight"] = r({c.intermediate_size, 576}, s);
    w[p + "mlp.up_proj.weight"] = r({c.intermediate_size, 576}, s);
    w[p + "mlp.down_proj.weight"] = r({576, c.intermediate_size}, 1.0 / std::sqrt(double(c.intermediate_size)));
  }
  return w;
}

std::unique_ptr<Transformer> make_model(at::ScalarType dtype, at::Device device) {
  ModelConfig c = config();
  return std::make_unique<Transformer>(
      c, load_weights(c, random_weights(c), TensorStorage::Owned, dtype, device, c.source));
}

std::vector<std::vector<int32_t>> prompts() {
  std::vector<std::vector<int32_t>> p;
  for (int length : {7, 61, 1, 24}) {
    std::vector<int32_t> ids;
    for (int i = 0; i < length; ++i) ids.push_back((i * 7919 + length * 131) % 4096);
    p.push_back(ids);
  }
  return p;
}

at::Tensor logits_of(const Transformer& model, const std::vector<std::vector<int32_t>>& tokens) {
  ForwardBatch batch{.tokens = tokens, .all_logits = true};
  std::vector<std::unique_ptr<SequenceCache>> caches;
  for (size_t i = 0; i < tokens.size(); ++i) {
    caches.push_back(std::make_unique<SequenceCache>(model.config(), 64, model.dtype(), model.device()));
    batch.caches.push_back(caches.back().get());
  }
  return model.forward(batch).cpu();
}

class ForwardGpu : public ::testing::Test {
 protected:
  void SetUp() override {
    MNEMO_SKIP_UNLESS_GPU(at::hasCUDA(), "no CUDA device: the forward pass on GPU is not checked on this machine");
  }
};

TEST_F(ForwardGpu, Float32LogitsEqualTheCpu) {
  auto cpu = make_model(at::kFloat, at::kCPU);
  auto gpu = make_model(at::kFloat, at::kCUDA);
  at::Tensor want = logits_of(*cpu, prompts());
  double diff = (want - logits_of(*gpu, prompts())).abs().max().item<double>();
  std::printf("fp32 CUDA vs CPU: max |logit diff| = %.3g (logit range %.3g)\n", diff,
              (want.max() - want.min()).item<double>());
  EXPECT_LT(diff, 1e-3);  // LibTorch keeps TF32 off for matmuls by default: fp32 against fp32
}

TEST_F(ForwardGpu, BFloat16LogitsAreCloseToTheCpuFloat32) {
  auto cpu = make_model(at::kFloat, at::kCPU);
  auto gpu = make_model(at::kBFloat16, at::kCUDA);
  at::Tensor want = logits_of(*cpu, prompts()), got = logits_of(*gpu, prompts());
  double diff = (want - got).abs().max().item<double>();
  double range = (want.max() - want.min()).item<double>();
  std::printf("bf16 CUDA vs fp32 CPU: max |logit diff| = %.3g (range %.3g)\n", diff, range);
  EXPECT_LT(diff, 0.05 * range);
  double agree = (want.argmax(-1) == got.argmax(-1)).to(at::kFloat).mean().item<double>();
  std::printf("bf16 CUDA vs fp32 CPU: argmax agrees at %.1f%% of positions\n", 100 * agree);
  EXPECT_GT(agree, 0.9);
}

TEST_F(ForwardGpu, BatchedGreedyDecodeMatchesTheCpuInFloat32) {
  auto cpu = make_model(at::kFloat, at::kCPU);
  auto gpu = make_model(at::kFloat, at::kCUDA);
  auto decode = [](const Transformer& model) {
    ForwardBatch step{.tokens = prompts()};
    std::vector<std::unique_ptr<SequenceCache>> caches;
    for (size_t i = 0; i < step.tokens.size(); ++i) {
      caches.push_back(std::make_unique<SequenceCache>(model.config(), 16, model.dtype(), model.device()));
      step.caches.push_back(caches.back().get());
    }
    std::vector<std::vector<int64_t>> out(step.tokens.size());
    for (int t = 0; t < 24; ++t) {
      at::Tensor next = model.forward(step).argmax(-1).cpu();
      for (size_t i = 0; i < out.size(); ++i) {
        out[i].push_back(next[i].item<int64_t>());
        step.tokens[i] = {static_cast<int32_t>(out[i].back())};
      }
    }
    return out;
  };
  EXPECT_EQ(decode(*cpu), decode(*gpu));
}

}  // namespace
}  // namespace mnemo
