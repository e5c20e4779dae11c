// LoRA adapters on int8/int4 base weights: the adapters stay float32 and
// still mix per sequence. On the reference Llama, a batch of three sequences
// (two adapters of different ranks and modules, and the base) through a
// prefill and decode steps gives the logits of the float32 model whose
// weights are the dequantized ones, with the same adapters.
#include "adapters/adapter_slots.h"
#include "adapters/lora_adapter.h"
#include "kernels/quantized_linear_cpu.h"
#include "model/kv_cache.h"
#include "model/model_loader.h"
#include "model/safetensors.h"
#include "model/transformer.h"
#include "model/weights.h"
#include "support/reference.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

namespace mnemo {
namespace {

namespace fs = std::filesystem;

// Prefill of three prompts, then three decode steps; every step's logits.
at::Tensor run(const Transformer& model, const AdapterSlots& slots) {
  c10::InferenceMode inference;
  std::vector<std::unique_ptr<SequenceCache>> caches;
  ForwardBatch batch;
  batch.tokens = {{1, 5, 9, 13, 2}, {7, 3, 3}, {11, 4, 8, 6}};
  batch.adapter_slots = {0, 1, -1};
  for (size_t s = 0; s < batch.tokens.size(); ++s) {
    caches.push_back(std::make_unique<SequenceCache>(model.config(), 16, at::kFloat, at::kCPU));
    batch.caches.push_back(caches.back().get());
  }
  std::vector<at::Tensor> logits{model.forward(batch, &slots)};
  for (int step = 0; step < 3; ++step) {
    at::Tensor next = logits.back().argmax(-1);
    for (size_t s = 0; s < batch.tokens.size(); ++s) batch.tokens[s] = {static_cast<int32_t>(next[s].item<int64_t>())};
    logits.push_back(model.forward(batch, &slots));
  }
  return at::cat(logits, 0);
}

TEST(QuantizedLora, AdaptersOnQuantizedWeightsMixPerSequenceAsOnTheirDequantizedWeights) {
  const fs::path llama = testing::reference_dir() / "models" / "llama";
  auto plain = load_transformer(llama.string(), {});
  LoraConfig all;
  all.rank = 8;
  all.alpha = 16;
  LoraConfig qv;
  qv.rank = 4;
  qv.alpha = 8;
  qv.target_modules = {LinearModule::Q, LinearModule::V};
  const LoraAdapter first = make_random_adapter(all, plain->config(), 21, /*std=*/0.2);
  const LoraAdapter second = make_random_adapter(qv, plain->config(), 22, /*std=*/0.2);
  auto slots_for = [&](const Transformer& model) {
    auto slots = std::make_unique<AdapterSlots>(model.config(), 2, at::kFloat, at::kCPU);
    slots->load(0, first);
    slots->load(1, second);
    return slots;
  };
  for (WeightQuant quant : {WeightQuant::kInt8, WeightQuant::kInt4}) {
    const std::string name = weight_quant_name(quant);
    auto quantized = load_transformer(llama.string(), {.quant = name});
    std::map<std::string, at::Tensor> tensors = named_weights(plain->config(), plain->weights());
    for (auto& [tensor_name, tensor] : tensors)
      if (const WeightQuant packing = weight_quant_for(tensor_name, quant); packing != WeightQuant::kNone)
        tensor = dequantize_weight(quantize_weight(tensor, packing), packing, tensor.size(1));
    const fs::path dir = testing::scratch_dir("quantized_lora/dequantized_" + name);
    fs::copy_file(llama / "config.json", dir / "config.json", fs::copy_options::overwrite_existing);
    write_safetensors((dir / "model.safetensors").string(), tensors);
    auto reference = load_transformer(dir.string(), {});

    at::Tensor got = run(*quantized, *slots_for(*quantized));
    at::Tensor want = run(*reference, *slots_for(*reference));
    EXPECT_LT((got - want).abs().max().item<double>(), 1e-4) << name;
    // The adapters do act: the same batch without them differs.
    AdapterSlots empty(quantized->config(), 2, at::kFloat, at::kCPU);
    EXPECT_GT((got - run(*quantized, empty)).abs().max().item<double>(), 1e-2) << name;
  }
}

}  // namespace
}  // namespace mnemo
