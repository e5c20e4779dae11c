// The forward pass equals transformers on tiny random checkpoints of every
// supported architecture: logits of a batch of prompts of different lengths
// (run together in one batch), chunked prefill through the KV cache, 32 greedy
// tokens, and bf16 within a stated tolerance.
#include "model/kv_cache.h"
#include "model/model_loader.h"
#include "model/safetensors.h"
#include "model/transformer.h"
#include "support/reference.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <memory>

namespace mnemo {
namespace {

const char* kModels[] = {"llama", "llama_tied_sharded", "llama3_rope", "mistral", "qwen2", "qwen3"};

struct Reference {
  std::shared_ptr<SafetensorsFile> expected;
  int prompts = 4;
  std::vector<int32_t> prompt(int i) const {
    at::Tensor ids = expected->tensor("prompt_" + std::to_string(i)).to(at::kInt);
    return std::vector<int32_t>(ids.data_ptr<int32_t>(), ids.data_ptr<int32_t>() + ids.numel());
  }
  at::Tensor tensor(const std::string& name, int i) const { return expected->tensor(name + "_" + std::to_string(i)); }
};

Reference open_reference(const std::filesystem::path& dir) {
  Reference r;
  r.expected = SafetensorsFile::open((dir / "expected.safetensors").string());
  return r;
}

// Every reference prompt in one batch, each with its own cache.
ForwardBatch all_prompts(const Transformer& model, const Reference& ref,
                         std::vector<std::unique_ptr<SequenceCache>>& caches) {
  ForwardBatch batch;
  for (int i = 0; i < ref.prompts; ++i) {
    batch.tokens.push_back(ref.prompt(i));
    caches.push_back(std::make_unique<SequenceCache>(model.config(), 64, at::kFloat, at::kCPU));
    batch.caches.push_back(caches.back().get());
  }
  return batch;
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

class ForwardParity : public ::testing::TestWithParam<const char*> {
 protected:
  std::filesystem::path dir() const { return testing::reference_dir() / "models" / GetParam(); }
};

TEST_P(ForwardParity, BatchedLogitsEqualTransformersInFloat32) {
  auto model = load_transformer(dir().string(), {.dtype = "float32"});
  Reference ref = open_reference(dir());
  std::vector<std::unique_ptr<SequenceCache>> caches;
  ForwardBatch batch = all_prompts(*model, ref, caches);
  batch.all_logits = true;
  at::Tensor logits = model->forward(batch);
  int64_t offset = 0;
  for (int i = 0; i < ref.prompts; ++i) {
    at::Tensor expected = ref.tensor("logits", i);
    at::Tensor ours = logits.narrow(0, offset, expected.size(0));
    offset += expected.size(0);
    double diff = max_abs_diff(ours, expected);
    std::printf("%s prompt %d (%ld tokens): fp32 max |logit diff| = %.3g\n", GetParam(), i, expected.size(0), diff);
    EXPECT_LT(diff, 1e-4) << GetParam() << " prompt " << i;
  }
  EXPECT_EQ(offset, logits.size(0));
}

TEST_P(ForwardParity, ChunkedPrefillThroughTheCacheGivesTheSameLogits) {
  auto model = load_transformer(dir().string(), {.dtype = "float32"});
  Reference ref = open_reference(dir());
  std::vector<int32_t> prompt = ref.prompt(1);  // the longest
  SequenceCache cache(model->config(), 4, at::kFloat, at::kCPU);  // small: forces growth
  std::vector<at::Tensor> pieces;
  size_t start = 0;
  for (size_t chunk : {5u, 1u, 6u, 100u}) {
    size_t end = std::min(prompt.size(), start + chunk);
    if (start >= end) break;
    ForwardBatch batch{.tokens = {std::vector<int32_t>(prompt.begin() + start, prompt.begin() + end)},
                       .caches = {&cache},
                       .all_logits = true};
    pieces.push_back(model->forward(batch));
    start = end;
  }
  EXPECT_LT(max_abs_diff(at::cat(pieces), ref.tensor("logits", 1)), 1e-4);
}

TEST_P(ForwardParity, GreedyDecodeGives32IdenticalTokens) {
  auto model = load_transformer(dir().string(), {.dtype = "float32"});
  Reference ref = open_reference(dir());
  // All prompts decode together in one batch, each with its own cache.
  std::vector<std::unique_ptr<SequenceCache>> caches;
  ForwardBatch batch = all_prompts(*model, ref, caches);
  std::vector<std::vector<int64_t>> generated(ref.prompts);
  for (int step = 0; step < 32; ++step) {
    at::Tensor next = model->forward(batch).argmax(-1);
    for (int i = 0; i < ref.prompts; ++i) {
      generated[i].push_back(next[i].item<int64_t>());
      batch.tokens[i] = {static_cast<int32_t>(generated[i].back())};
    }
  }
  for (int i = 0; i < ref.prompts; ++i) {
    at::Tensor expected = ref.tensor("greedy", i).to(at::kLong);
    std::vector<int64_t> want(expected.data_ptr<int64_t>(), expected.data_ptr<int64_t>() + expected.numel());
    EXPECT_EQ(generated[i], want) << GetParam() << " prompt " << i;
  }
}

// bf16 rounds every matmul input to 8 bits of mantissa, and the two libraries
// do not round at exactly the same points; the stated tolerance is 2% of the
// logits' range plus a small absolute floor.
TEST_P(ForwardParity, BFloat16LogitsAreCloseToTransformersBFloat16) {
  auto model = load_transformer(dir().string(), {.dtype = "bfloat16"});
  Reference ref = open_reference(dir());
  for (int i = 0; i < ref.prompts; ++i) {
    SequenceCache cache(model->config(), 64, at::kBFloat16, at::kCPU);
    ForwardBatch batch{.tokens = {ref.prompt(i)}, .caches = {&cache}, .all_logits = true};
    at::Tensor ours = model->forward(batch);
    at::Tensor expected = ref.tensor("logits_bf16", i);
    double range = (expected.max() - expected.min()).item<double>();
    std::printf("%s prompt %d: bf16 max |logit diff| = %.3g (logit range %.3g)\n", GetParam(), i,
                max_abs_diff(ours, expected), range);
    EXPECT_LT(max_abs_diff(ours, expected), 0.02 * range + 1e-2) << GetParam() << " prompt " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(AllArchitectures, ForwardParity, ::testing::ValuesIn(kModels));

}  // namespace
}  // namespace mnemo
