#include "model/config.h"

#include "model/error.h"
#include "tokenizer/json_input.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <type_traits>

namespace mnemo {
namespace {

using nlohmann::json;

// config.json and generation_config.json: a few kilobytes in real models.
constexpr JsonLimits kModelConfigLimits{4ull << 20, 32, 1ull << 20};

const json& required(const json& object, const char* field, const std::string& source) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) fail("{}: missing field '{}'", source, field);
  return *it;
}

int64_t positive_int(const json& object, const char* field, const std::string& source) {
  const json& value = required(object, field, source);
  if (!value.is_number_integer() || value.get<int64_t>() <= 0)
    fail("{}: field '{}' must be a positive integer, got {}", source, field, value.dump());
  return value.get<int64_t>();
}

double positive_number(const json& object, const char* field, double fallback, const std::string& source) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_number() || it->get<double>() <= 0)
    fail("{}: field '{}' must be a positive number, got {}", source, field, it->dump());
  return it->get<double>();
}

// An optional field of a JSON type T (bool or string), `fallback` when absent
// or null; a value of another type is an error naming the file and the field.
template <typename T>
T optional_field(const json& object, const char* field, T fallback, const std::string& source) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return fallback;
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) fail("{}: field '{}' must be true or false, got {}", source, field, it->dump());
  } else {
    if (!it->is_string()) fail("{}: field '{}' must be a string, got {}", source, field, it->dump());
  }
  return it->get<T>();
}

// bos/eos ids are an int, a list of ints, or null.
std::vector<int64_t> token_ids(const json& object, const char* field, const std::string& source) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return {};
  if (it->is_number_integer()) return {it->get<int64_t>()};
  if (it->is_array()) {
    std::vector<int64_t> ids;
    for (const json& id : *it) {
      if (!id.is_number_integer()) fail("{}: field '{}' must hold integers, got {}", source, field, it->dump());
      ids.push_back(id.get<int64_t>());
    }
    return ids;
  }
  fail("{}: field '{}' must be an integer or a list of integers, got {}", source, field, it->dump());
}

RopeScaling parse_rope_scaling(const json& config, const std::string& source) {
  RopeScaling scaling;
  auto it = config.find("rope_scaling");
  if (it == config.end() || it->is_null()) return scaling;
  if (!it->is_object()) fail("{}: field 'rope_scaling' must be an object", source);
  std::string type = optional_field(*it, "rope_type", optional_field(*it, "type", std::string("default"), source),
                                     source);
  if (type == "default") return scaling;
  if (type != "llama3")
    fail("{}: rope_scaling type '{}' is not supported (supported: default, llama3)", source, type);
  scaling.llama3 = true;
  scaling.factor = positive_number(*it, "factor", 8.0, source);
  scaling.low_freq_factor = positive_number(*it, "low_freq_factor", 1.0, source);
  scaling.high_freq_factor = positive_number(*it, "high_freq_factor", 4.0, source);
  scaling.original_max_position_embeddings =
      static_cast<int64_t>(positive_number(*it, "original_max_position_embeddings", 8192, source));
  return scaling;
}

}  // namespace

ModelConfig parse_model_config(const json& config, const std::string& source) {
  if (!config.is_object()) fail("{}: expected a JSON object", source);
  ModelConfig c;
  c.source = source;
  const json& architectures = required(config, "architectures", source);
  if (!architectures.is_array() || architectures.empty() || !architectures[0].is_string())
    fail("{}: field 'architectures' must be a non-empty list of names", source);
  c.architecture_name = architectures[0].get<std::string>();
  if (c.architecture_name == "LlamaForCausalLM") {
    c.architecture = Architecture::Llama;
  } else if (c.architecture_name == "MistralForCausalLM") {
    c.architecture = Architecture::Mistral;
  } else if (c.architecture_name == "Qwen2ForCausalLM") {
    c.architecture = Architecture::Qwen2;
    c.attention_bias = true;
  } else if (c.architecture_name == "Qwen3ForCausalLM") {
    c.architecture = Architecture::Qwen3;
    c.qk_norm = true;
  } else {
    fail("{}: architecture '{}' is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
         "Qwen2ForCausalLM, Qwen3ForCausalLM)",
         source, c.architecture_name);
  }
  c.vocab_size = positive_int(config, "vocab_size", source);
  c.hidden_size = positive_int(config, "hidden_size", source);
  c.intermediate_size = positive_int(config, "intermediate_size", source);
  c.num_layers = positive_int(config, "num_hidden_layers", source);
  c.num_attention_heads = positive_int(config, "num_attention_heads", source);
  c.num_key_value_heads = config.contains("num_key_value_heads") && !config["num_key_value_heads"].is_null()
                              ? positive_int(config, "num_key_value_heads", source)
                              : c.num_attention_heads;
  if (config.contains("head_dim") && !config["head_dim"].is_null()) {
    c.head_dim = positive_int(config, "head_dim", source);
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      fail("{}: hidden_size {} is not divisible by num_attention_heads {}", source, c.hidden_size,
           c.num_attention_heads);
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    fail("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", source,
         c.num_attention_heads, c.num_key_value_heads);
  if (c.head_dim % 2 != 0) fail("{}: head_dim {} must be even for rotary embeddings", source, c.head_dim);
  if (config.contains("max_position_embeddings"))
    c.max_position_embeddings = positive_int(config, "max_position_embeddings", source);
  c.rms_norm_eps = positive_number(config, "rms_norm_eps", 1e-6, source);
  c.rope_theta = positive_number(config, "rope_theta", 10000.0, source);
  // transformers 5 may nest rope_theta inside rope_parameters.
  if (auto it = config.find("rope_parameters"); it != config.end() && it->is_object()) {
    c.rope_theta = positive_number(*it, "rope_theta", c.rope_theta, source);
    json nested = config;
    nested["rope_scaling"] = *it;
    c.rope_scaling = parse_rope_scaling(nested, source);
  } else {
    c.rope_scaling = parse_rope_scaling(config, source);
  }
  c.tie_word_embeddings = optional_field(config, "tie_word_embeddings", false, source);
  if (optional_field(config, "mlp_bias", false, source)) fail("{}: mlp_bias = true is not supported", source);
  if (auto act = optional_field(config, "hidden_act", std::string("silu"), source); act != "silu")
    fail("{}: hidden_act '{}' is not supported (only silu)", source, act);
  if (c.architecture == Architecture::Llama || c.architecture == Architecture::Mistral)
    c.attention_bias = optional_field(config, "attention_bias", false, source);
  if (auto it = config.find("sliding_window"); it != config.end() && !it->is_null() &&
      optional_field(config, "use_sliding_window", true, source))
    c.sliding_window = positive_int(config, "sliding_window", source);
  c.bos_token_ids = token_ids(config, "bos_token_id", source);
  c.eos_token_ids = token_ids(config, "eos_token_id", source);
  return c;
}

ModelConfig parse_model_config_text(std::string_view text, const std::string& source) {
  return parse_model_config(parse_json_input(text, source, kModelConfigLimits), source);
}

ModelConfig load_model_config(const std::string& path) {
  const json config = read_json_file(path, "model config", kModelConfigLimits);
  return parse_model_config(config, path);
}

json model_config_to_json(const ModelConfig& c) {
  json config = {
      {"architectures", {c.architecture_name}},
      {"model_type", c.architecture == Architecture::Llama     ? "llama"
                     : c.architecture == Architecture::Mistral ? "mistral"
                     : c.architecture == Architecture::Qwen2   ? "qwen2"
                                                               : "qwen3"},
      {"vocab_size", c.vocab_size},
      {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size},
      {"num_hidden_layers", c.num_layers},
      {"num_attention_heads", c.num_attention_heads},
      {"num_key_value_heads", c.num_key_value_heads},
      {"head_dim", c.head_dim},
      {"max_position_embeddings", c.max_position_embeddings},
      {"rms_norm_eps", c.rms_norm_eps},
      {"rope_theta", c.rope_theta},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"hidden_act", "silu"},
      {"torch_dtype", "float32"},
  };
  if (c.architecture == Architecture::Llama || c.architecture == Architecture::Mistral)
    config["attention_bias"] = c.attention_bias;
  if (c.rope_scaling.llama3)
    config["rope_scaling"] = {{"rope_type", "llama3"},
                              {"factor", c.rope_scaling.factor},
                              {"low_freq_factor", c.rope_scaling.low_freq_factor},
                              {"high_freq_factor", c.rope_scaling.high_freq_factor},
                              {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
  if (c.bos_token_ids.size() == 1) config["bos_token_id"] = c.bos_token_ids[0];
  if (c.eos_token_ids.size() == 1) config["eos_token_id"] = c.eos_token_ids[0];
  if (c.eos_token_ids.size() > 1) config["eos_token_id"] = c.eos_token_ids;
  return config;
}

}  // namespace mnemo
