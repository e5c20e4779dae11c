// A LoRA adapter: the low-rank A/B pair of every targeted linear layer of a
// Llama-family base model, its scaling, and Mnemo's own facts about it, read
// from and written to the PEFT directory format so that an adapter Mnemo trains
// loads in `peft` and one `peft` writes loads in Mnemo, with the same logits.
//
// Format (what `peft` 0.x writes for a *ForCausalLM model):
//   adapter_config.json        {"peft_type": "LORA", "r": 16, "lora_alpha": 32,
//                               "target_modules": [...] or a regex string,
//                               "use_rslora": false, "base_model_name_or_path": ...}
//   adapter_model.safetensors  base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight [r, in]
//                              base_model.model.model.layers.{i}.self_attn.q_proj.lora_B.weight [out, r]
//                              (…mlp.gate_proj… for gate/up/down), and in `__metadata__`
//                              Mnemo's facts (user, base-model fingerprint, data
//                              fingerprint, metrics) as string pairs.
// Each targeted linear computes y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ with scale = alpha/r,
// or alpha/sqrt(r) with rsLoRA.
//
// Only what Mnemo computes exactly like PEFT is accepted: plain LoRA on some of
// the seven projections of every layer, one rank and one alpha. DoRA,
// modules_to_save, layers_to_transform, rank/alpha patterns, LoRA biases and
// fan_in_fan_out are refused with an error naming the file and the field
// rather than silently run as something else.
#pragma once

#include "adapters/peft_files.h"
#include "model/transformer.h"  // LinearModule

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo {

struct ModelConfig;

inline constexpr int kLinearModuleCount = 7;
inline constexpr int64_t kMaxLoraRank = 64;  // what the multi-adapter kernels support
inline constexpr std::array<LinearModule, kLinearModuleCount> kAllLinearModules = {
    LinearModule::Q, LinearModule::K, LinearModule::V, LinearModule::O,
    LinearModule::Gate, LinearModule::Up, LinearModule::Down};

// "q_proj", …, "down_proj": PEFT's (and Hugging Face's) names.
const char* module_name(LinearModule module);
// "self_attn.q_proj", "mlp.down_proj": the path inside a decoder layer.
std::string module_path(LinearModule module);
std::optional<LinearModule> parse_module_name(std::string_view name);
// {out_features, in_features} of a module in `config`'s model.
std::pair<int64_t, int64_t> module_shape(const ModelConfig& config, LinearModule module);

struct LoraConfig {
  int64_t rank = 16;
  double alpha = 32;  // lora_alpha
  bool use_rslora = false;
  // Ordered as kAllLinearModules; default: all seven.
  std::vector<LinearModule> target_modules = {kAllLinearModules.begin(), kAllLinearModules.end()};
  std::string base_model_name_or_path;

  double scale() const;  // alpha / rank, or alpha / sqrt(rank) with rsLoRA
  bool targets(LinearModule module) const;
};

// The A/B pair of one linear layer: A [rank, in], B [out, rank].
struct LoraPair {
  at::Tensor A;
  at::Tensor B;
};

struct LoraAdapter {
  LoraConfig config;
  // layers[i][int(module)]: defined exactly for the targeted modules.
  std::vector<std::array<LoraPair, kLinearModuleCount>> layers;
  // Mnemo's facts, stored in the safetensors __metadata__ (string → string;
  // structured values such as metrics are JSON text). PEFT's own "format": "pt"
  // is kept here too.
  std::map<std::string, std::string> metadata;

  const LoraPair& pair(int64_t layer, LinearModule module) const;
  LoraPair& pair(int64_t layer, LinearModule module);
};

// PEFT's tensor names (file names: adapters/peft_files.h).
std::string peft_tensor_name(int64_t layer, LinearModule module, char which /* 'A' or 'B' */);

// What an adapter must fit in a base model: the number of decoder layers and
// {out_features, in_features} of each of the seven projections. The registry
// records it beside the base-model fingerprint, so adapters can be checked
// against the base without loading it.
struct AdapterShapes {
  int64_t num_layers = 0;
  std::array<std::pair<int64_t, int64_t>, kLinearModuleCount> modules{};  // ordered as kAllLinearModules
};
AdapterShapes adapter_shapes(const ModelConfig& config);
// {"num_layers": N, "modules": {"q_proj": [out, in], …}}; the parser throws
// mnemo::Error naming `where` and the field for anything else.
std::string adapter_shapes_to_json(const AdapterShapes& shapes);
AdapterShapes parse_adapter_shapes(const std::string& json_text, const std::string& where);

// Reads a PEFT LoRA directory. Tensors are copied into memory in the stored
// dtype. Throws mnemo::Error naming the file and the field or tensor for: a
// missing file, a config field that is absent, malformed or asks for an
// unsupported feature, a target module other than the seven projections, an
// unknown, missing or misshapen tensor (rank differs from `r`), non-float data,
// a NaN or infinite weight, or a file that is not a regular file.
LoraAdapter read_peft_adapter(const std::string& dir);
// The same from the two files wherever they are (registry blobs are named by hash).
LoraAdapter read_peft_adapter_files(const std::string& config_path, const std::string& weights_path);

// Writes `adapter` as a PEFT directory, atomically: everything goes to a
// temporary sibling directory that is fsynced and then renamed into place (an
// existing `dir` is swapped out with one atomic exchange and removed), so a
// reader sees the old adapter or the new one, never a mix. Validates the
// adapter's internal consistency first.
void write_peft_adapter(const std::string& dir, const LoraAdapter& adapter);

// Checks that `adapter` fits the base model: the same number of layers, every
// A [rank, in] and B [out, rank] of the model's module shapes, 1 ≤ rank ≤ 64.
// Throws mnemo::Error saying which layer/module/tensor does not fit.
void validate_against(const LoraAdapter& adapter, const ModelConfig& config);
// The same against recorded shapes; `where` names the base model in messages.
void validate_against(const LoraAdapter& adapter, const AdapterShapes& shapes, const std::string& where);

// PEFT's initialisation for training (init_lora_weights=True): A
// kaiming-uniform (a = √5, i.e. U(−1/√in, 1/√in)), B zero — so a fresh
// adapter leaves the model's output unchanged. float32 on the CPU.
LoraAdapter init_lora_adapter(const LoraConfig& config, const ModelConfig& model_config, uint64_t seed);

// A and B both random normal × `std` (tests and benchmarks: an adapter that
// visibly changes the logits). float32 on the CPU.
LoraAdapter make_random_adapter(const LoraConfig& config, const ModelConfig& model_config, uint64_t seed,
                                double std = 0.1);

}  // namespace mnemo
