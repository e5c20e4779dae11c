// The base model's architecture, read from a Hugging Face config.json (or
// built from GGUF metadata). Torch-free so that anything may include it.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo {

enum class Architecture { Llama, Mistral, Qwen2, Qwen3 };

// `rope_scaling` of type "llama3" (Llama 3.1+); type "default" or absent means none.
struct RopeScaling {
  bool llama3 = false;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  Architecture architecture = Architecture::Llama;
  std::string architecture_name = "LlamaForCausalLM";  // as written in config.json
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_attention_heads unless given
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v biases (Qwen2)
  bool qk_norm = false;         // per-head RMSNorm on q and k (Qwen3)
  int64_t sliding_window = 0;   // Mistral: attend to at most this many past tokens; 0 = unbounded
  std::vector<int64_t> bos_token_ids;
  std::vector<int64_t> eos_token_ids;
  std::string source;  // where it was read from, for error messages
};

// Parses config.json content; `source` names the file in error messages.
// Throws mnemo::Error naming the file and the field for a missing or bad field
// or an architecture that is not one of the four above.
ModelConfig parse_model_config(const nlohmann::json& json, const std::string& source);
ModelConfig load_model_config(const std::string& config_json_path);
// The text of a config.json, read within the same limits as the file (4 MiB,
// nesting 32; json_input.h).
ModelConfig parse_model_config_text(std::string_view text, const std::string& source);

// The inverse, for `mnemo model convert`: a config.json that transformers loads.
nlohmann::json model_config_to_json(const ModelConfig& config);

}  // namespace mnemo
