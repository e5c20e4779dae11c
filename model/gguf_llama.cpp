// A Llama-family GGUF as a Hugging Face model: config from `<arch>.*`
// metadata, tensor names, and the undoing of the q/k row permutation.
//
// Hand-written: this mirrors what transformers' GGUF loader does
// (transformers/modeling_gguf_pytorch_utils.py, integrations/ggml.py) and
// what llama.cpp's convert_hf_to_gguf.py did in the other direction; no C++
// library offers the mapping.
#include "model/gguf.h"

#include "model/error.h"
#include "model/weights.h"
#include "kernels/quantized_linear_cpu.h"

#include <ATen/ops/empty.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <regex>

namespace mnemo {
namespace {

// GGUF block-tensor suffix -> HF module path under model.layers.N.
const std::map<std::string, std::string>& layer_names() {
  static const std::map<std::string, std::string> names = {
      {"attn_q", "self_attn.q_proj"},     {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},     {"attn_output", "self_attn.o_proj"},
      {"attn_q_norm", "self_attn.q_norm"}, {"attn_k_norm", "self_attn.k_norm"},
      {"ffn_gate", "mlp.gate_proj"},      {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"},      {"attn_norm", "input_layernorm"},
      {"ffn_norm", "post_attention_layernorm"},
  };
  return names;
}

Architecture architecture_of(const GgufFile& file, std::string* hf_class) {
  std::string arch = file.get_string("general.architecture");
  if (arch == "llama") {
    // llama.cpp writes Mistral models as "llama"; transformers tells them
    // apart by the model name, and so do we.
    std::string name = file.get_string_or("general.name", "");
    std::string lower;
    for (char c : name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.find("mistral") != std::string::npos) {
      *hf_class = "MistralForCausalLM";
      return Architecture::Mistral;
    }
    *hf_class = "LlamaForCausalLM";
    return Architecture::Llama;
  }
  if (arch == "qwen2") {
    *hf_class = "Qwen2ForCausalLM";
    return Architecture::Qwen2;
  }
  if (arch == "qwen3") {
    *hf_class = "Qwen3ForCausalLM";
    return Architecture::Qwen3;
  }
  fail("{}: general.architecture '{}' is not supported (Mnemo reads llama, qwen2 and qwen3 GGUF files)", file.path(),
       arch);
}

// Inverse of convert_hf_to_gguf.py's permute(): GGUF stores each head's rows
// as (pair, half) so that ggml's rope can rotate adjacent values; HF stores
// (half, pair). Applies to the weight [rows, cols] and a bias [rows] alike.
at::Tensor unpermute_rows(const at::Tensor& weight, int64_t n_heads, const std::string& path,
                          const std::string& name) {
  int64_t rows = weight.size(0);
  if (n_heads <= 0 || rows % (2 * n_heads) != 0)
    fail("{}: tensor '{}': {} rows cannot be split into {} heads of pairs", path, name, rows, n_heads);
  std::vector<int64_t> split = {n_heads, rows / n_heads / 2, 2};
  for (int64_t d = 1; d < weight.dim(); ++d) split.push_back(weight.size(d));
  return weight.reshape(split).transpose(1, 2).contiguous().reshape(weight.sizes());
}

}  // namespace

std::optional<std::string> gguf_to_hf_tensor_name(const std::string& gguf_name) {
  static const std::regex block(R"(blk\.(\d+)\.([a-z_]+)\.(weight|bias))");
  std::smatch match;
  if (std::regex_match(gguf_name, match, block)) {
    auto it = layer_names().find(match[2].str());
    if (it == layer_names().end()) return std::nullopt;
    return "model.layers." + match[1].str() + "." + it->second + "." + match[3].str();
  }
  if (gguf_name == "token_embd.weight") return "model.embed_tokens.weight";
  if (gguf_name == "output_norm.weight") return "model.norm.weight";
  if (gguf_name == "output.weight") return "lm_head.weight";
  return std::nullopt;
}

ModelConfig gguf_model_config(const GgufFile& file) {
  ModelConfig config;
  config.source = file.path();
  config.architecture = architecture_of(file, &config.architecture_name);
  std::string arch = file.get_string("general.architecture");
  auto key = [&](const std::string& suffix) { return arch + "." + suffix; };

  config.num_layers = file.get_int(key("block_count"));
  config.hidden_size = file.get_int(key("embedding_length"));
  config.intermediate_size = file.get_int(key("feed_forward_length"));
  config.num_attention_heads = file.get_int(key("attention.head_count"));
  config.num_key_value_heads = file.get_int_or(key("attention.head_count_kv"), config.num_attention_heads);
  config.rms_norm_eps = file.get_float_or(key("attention.layer_norm_rms_epsilon"), 1e-6);
  config.rope_theta = file.get_float_or(key("rope.freq_base"), 10000.0);
  config.max_position_embeddings = file.get_int_or(key("context_length"), config.max_position_embeddings);
  if (config.num_attention_heads <= 0 || config.hidden_size <= 0 || config.num_layers <= 0 ||
      config.num_key_value_heads <= 0 || config.num_attention_heads % config.num_key_value_heads != 0)
    fail("{}: bad attention shape: {} layers, hidden size {}, {} heads, {} kv heads", file.path(), config.num_layers,
         config.hidden_size, config.num_attention_heads, config.num_key_value_heads);
  // key_length is the head size where it differs from hidden/heads (Qwen3);
  // rope.dimension_count equals it for Llama (transformers reads it as head_dim).
  config.head_dim = file.get_int_or(key("attention.key_length"),
                                    file.get_int_or(key("rope.dimension_count"),
                                                    config.hidden_size / config.num_attention_heads));

  if (file.has(key("vocab_size"))) {
    config.vocab_size = file.get_int(key("vocab_size"));
  } else if (file.has("tokenizer.ggml.tokens")) {
    config.vocab_size = static_cast<int64_t>(file.value("tokenizer.ggml.tokens").array.size());
  } else if (file.has_tensor("token_embd.weight")) {
    config.vocab_size = file.tensor("token_embd.weight").shape.at(0);
  }
  if (config.vocab_size <= 0) fail("{}: cannot tell the vocabulary size (no {} and no tokens)", file.path(), key("vocab_size"));

  config.tie_word_embeddings = !file.has_tensor("output.weight");
  config.attention_bias = file.has_tensor("blk.0.attn_q.bias");
  config.qk_norm = file.has_tensor("blk.0.attn_q_norm.weight");
  if (file.has("tokenizer.ggml.bos_token_id")) config.bos_token_ids = {file.get_int("tokenizer.ggml.bos_token_id")};
  if (file.has("tokenizer.ggml.eos_token_id")) config.eos_token_ids = {file.get_int("tokenizer.ggml.eos_token_id")};
  return config;
}

GgufModel load_gguf_model(const std::string& path, at::ScalarType dtype, WeightQuant quant) {
  std::shared_ptr<GgufFile> file = GgufFile::open(path);
  GgufModel model;
  model.source = path;
  model.config = gguf_model_config(*file);
  const ModelConfig& config = model.config;
  // convert_hf_to_gguf.py permutes q/k only for the Llama family (its
  // LlamaModel class); Qwen2/Qwen3 rows are stored as in HF.
  bool permuted = file->get_string("general.architecture") == "llama";

  std::map<std::string, std::vector<int64_t>> shapes;  // HF shapes, also of the tensors packed below
  for (const GgufTensorInfo& info : file->tensors()) {
    std::optional<std::string> hf_name = gguf_to_hf_tensor_name(info.name);
    if (!hf_name) {
      // rope_freqs (Llama 3.1 scaling factors, which config.json expresses
      // as rope_scaling instead) and anything else with no HF counterpart.
      spdlog::debug("{}: skipping tensor '{}' (no Hugging Face counterpart)", path, info.name);
      continue;
    }
    at::Tensor tensor = file->dequantize(info, dtype);
    if (permuted && info.name.find(".attn_q.") != std::string::npos)
      tensor = unpermute_rows(tensor, config.num_attention_heads, path, info.name);
    else if (permuted && info.name.find(".attn_k.") != std::string::npos)
      tensor = unpermute_rows(tensor, config.num_key_value_heads, path, info.name);
    shapes[*hf_name] = tensor.sizes().vec();
    // Packed one tensor at a time, so the float32 model never exists whole.
    if (const WeightQuant packing = weight_quant_for(*hf_name, quant);
        packing != WeightQuant::kNone && tensor.dim() == 2 && tensor.size(1) % kQuantBlock == 0) {
      try {
        tensor = quantize_weight(tensor, packing);
      } catch (const c10::Error& e) {
        fail("{}: tensor '{}': {}", path, info.name, e.what_without_backtrace());
      }
    }
    model.tensors.emplace(*hf_name, std::move(tensor));
  }

  // The shapes every later stage relies on, checked once here so a file
  // whose metadata disagrees with its tensors fails with its own name.
  auto expect = [&](const std::string& name, std::vector<int64_t> shape) {
    auto it = shapes.find(name);
    if (it == shapes.end()) fail("{}: tensor for '{}' is missing", path, name);
    if (it->second != shape)
      fail("{}: tensor '{}' has shape {} but the metadata implies {}", path, name, it->second, shape);
  };
  expect("model.embed_tokens.weight", {config.vocab_size, config.hidden_size});
  expect("model.norm.weight", {config.hidden_size});
  if (!config.tie_word_embeddings) expect("lm_head.weight", {config.vocab_size, config.hidden_size});
  int64_t q_rows = config.num_attention_heads * config.head_dim, kv_rows = config.num_key_value_heads * config.head_dim;
  for (int64_t layer = 0; layer < config.num_layers; ++layer) {
    std::string prefix = fmt::format("model.layers.{}.", layer);
    expect(prefix + "self_attn.q_proj.weight", {q_rows, config.hidden_size});
    expect(prefix + "self_attn.k_proj.weight", {kv_rows, config.hidden_size});
    expect(prefix + "self_attn.v_proj.weight", {kv_rows, config.hidden_size});
    expect(prefix + "self_attn.o_proj.weight", {config.hidden_size, q_rows});
    expect(prefix + "mlp.gate_proj.weight", {config.intermediate_size, config.hidden_size});
    expect(prefix + "mlp.up_proj.weight", {config.intermediate_size, config.hidden_size});
    expect(prefix + "mlp.down_proj.weight", {config.hidden_size, config.intermediate_size});
    expect(prefix + "input_layernorm.weight", {config.hidden_size});
    expect(prefix + "post_attention_layernorm.weight", {config.hidden_size});
  }

  model.tokenizer_json = gguf_tokenizer_json(*file);
  model.tokenizer_config = gguf_tokenizer_config(*file);
  return model;
}

}  // namespace mnemo
