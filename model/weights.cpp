#include "model/weights.h"

#include "model/error.h"

#include "kernels/quantized_linear_cpu.h"

#include <ATen/ATen.h>
#include <fmt/ranges.h>

#include <set>

namespace mnemo {
namespace {

// Tensors that checkpoints carry but the forward pass derives itself.
bool is_derived_buffer(const std::string& name) {
  return name.find("rotary_emb.inv_freq") != std::string::npos;
}

class WeightTaker {
 public:
  WeightTaker(const std::map<std::string, at::Tensor>& tensors, TensorStorage storage, at::ScalarType dtype,
              at::Device device, const std::string& source, WeightQuant quant)
      : tensors_(tensors), storage_(storage), dtype_(dtype), device_(device), source_(source), quant_(quant) {}

  at::Tensor take(const std::string& name, std::vector<int64_t> shape) {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) fail("{}: missing tensor '{}'", source_, name);
    const at::Tensor& tensor = it->second;
    if (const WeightQuant quant = weight_quant_for(name, quant_); quant != WeightQuant::kNone)
      return take_quantized(name, tensor, shape, quant);
    if (!at::isFloatingType(tensor.scalar_type()))
      fail("{}: tensor '{}' has dtype {}, expected a floating-point dtype", source_, name,
           c10::toString(tensor.scalar_type()));
    if (tensor.sizes().vec() != shape)
      fail("{}: tensor '{}' has shape {}, but the config calls for {}", source_, name, tensor.sizes().vec(),
           shape);
    used_.insert(name);
    at::Tensor weight = tensor.to(device_, dtype_).contiguous();
    // A weight that would still view the mapped file gets memory of its own:
    // GEMMs on it measured ~7% slower (4 KiB file pages, where anonymous
    // memory gets transparent huge pages: perf, SmolLM2 fp32 prefill), and a
    // running model must not change or fault when the file is rewritten or
    // truncated underneath it.
    if (storage_ == TensorStorage::FileViews && weight.is_alias_of(tensor)) weight = weight.clone();
    return weight;
  }

  // A weight packed for `quant` already (by load_gguf_model), or one to pack now.
  at::Tensor take_quantized(const std::string& name, const at::Tensor& tensor, const std::vector<int64_t>& shape,
                            WeightQuant quant) {
    used_.insert(name);
    if (tensor.scalar_type() == at::kByte) {
      const std::vector<int64_t> packed{shape[0], quantized_row_bytes(quant, shape[1])};
      if (tensor.sizes().vec() != packed)
        fail("{}: tensor '{}' is packed as {} bytes, but a {} {} weight packs as {}", source_, name,
             tensor.sizes().vec(), weight_quant_name(quant), shape, packed);
      return tensor;
    }
    if (!at::isFloatingType(tensor.scalar_type()))
      fail("{}: tensor '{}' has dtype {}, expected a floating-point dtype", source_, name,
           c10::toString(tensor.scalar_type()));
    if (tensor.sizes().vec() != shape)
      fail("{}: tensor '{}' has shape {}, but the config calls for {}", source_, name, tensor.sizes().vec(), shape);
    if (shape[1] % kQuantBlock != 0)
      fail("{}: tensor '{}' has rows of {} values; {} weights need a multiple of {}", source_, name, shape[1],
           weight_quant_name(quant), kQuantBlock);
    try {
      return quantize_weight(tensor, quant);
    } catch (const c10::Error& e) {
      fail("{}: tensor '{}': {}", source_, name, e.what_without_backtrace());
    }
  }

  void check_all_used() const {
    for (const auto& [name, tensor] : tensors_)
      if (!used_.count(name) && !is_derived_buffer(name))
        fail("{}: unexpected tensor '{}' (the config does not call for it; wrong architecture or config?)",
             source_, name);
  }

 private:
  const std::map<std::string, at::Tensor>& tensors_;
  TensorStorage storage_;
  at::ScalarType dtype_;
  at::Device device_;
  const std::string& source_;
  WeightQuant quant_;
  std::set<std::string> used_;
};

}  // namespace

WeightQuant weight_quant_for(const std::string& name, WeightQuant quant) {
  if (quant == WeightQuant::kNone) return quant;
  if (name == "model.embed_tokens.weight" || name == "lm_head.weight") return embedding_quant_for(quant);
  auto ends_with = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const char* module : {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"})
    if (ends_with(std::string(module) + ".weight")) return quant;
  return WeightQuant::kNone;
}

WeightQuant embedding_quant_for(WeightQuant quant) {
  return quant == WeightQuant::kInt4 ? WeightQuant::kInt8 : quant;
}

ModelWeights load_weights(const ModelConfig& c, const std::map<std::string, at::Tensor>& tensors,
                          TensorStorage storage, at::ScalarType dtype, at::Device device, const std::string& source,
                          WeightQuant quant) {
  if (!at::isFloatingType(dtype)) fail("{}: weights must load as a floating dtype", source);
  if (quant != WeightQuant::kNone && (dtype != at::kFloat || !device.is_cpu()))
    fail("{}: {} weights are for float32 on the CPU (asked: {} on {})", source, weight_quant_name(quant),
         c10::toString(dtype), device.str());
  WeightTaker taker(tensors, storage, dtype, device, source, quant);
  ModelWeights w;
  w.quant = quant;
  w.embedding_quant = embedding_quant_for(quant);
  const int64_t q_out = c.num_attention_heads * c.head_dim;
  const int64_t kv_out = c.num_key_value_heads * c.head_dim;
  w.embed_tokens = taker.take("model.embed_tokens.weight", {c.vocab_size, c.hidden_size});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    LayerWeights l;
    l.input_norm = taker.take(p + "input_layernorm.weight", {c.hidden_size});
    l.q_proj = taker.take(p + "self_attn.q_proj.weight", {q_out, c.hidden_size});
    l.k_proj = taker.take(p + "self_attn.k_proj.weight", {kv_out, c.hidden_size});
    l.v_proj = taker.take(p + "self_attn.v_proj.weight", {kv_out, c.hidden_size});
    l.o_proj = taker.take(p + "self_attn.o_proj.weight", {c.hidden_size, q_out});
    if (c.attention_bias) {
      l.q_bias = taker.take(p + "self_attn.q_proj.bias", {q_out});
      l.k_bias = taker.take(p + "self_attn.k_proj.bias", {kv_out});
      l.v_bias = taker.take(p + "self_attn.v_proj.bias", {kv_out});
    }
    if (c.qk_norm) {
      l.q_norm = taker.take(p + "self_attn.q_norm.weight", {c.head_dim});
      l.k_norm = taker.take(p + "self_attn.k_norm.weight", {c.head_dim});
    }
    l.post_attention_norm = taker.take(p + "post_attention_layernorm.weight", {c.hidden_size});
    l.gate_proj = taker.take(p + "mlp.gate_proj.weight", {c.intermediate_size, c.hidden_size});
    l.up_proj = taker.take(p + "mlp.up_proj.weight", {c.intermediate_size, c.hidden_size});
    l.down_proj = taker.take(p + "mlp.down_proj.weight", {c.hidden_size, c.intermediate_size});
    w.layers.push_back(std::move(l));
  }
  w.final_norm = taker.take("model.norm.weight", {c.hidden_size});
  if (c.tie_word_embeddings) {
    w.lm_head = w.embed_tokens;
    // A tied checkpoint may still store the head; like transformers, the
    // embedding is used, but the stored head's shape is still checked.
    if (tensors.count("lm_head.weight")) taker.take("lm_head.weight", {c.vocab_size, c.hidden_size});
  } else {
    w.lm_head = taker.take("lm_head.weight", {c.vocab_size, c.hidden_size});
  }
  taker.check_all_used();
  return w;
}

std::map<std::string, at::Tensor> named_weights(const ModelConfig& c, const ModelWeights& w) {
  if (w.quant != WeightQuant::kNone)
    fail("the model's weights are {}: only float weights can be written out", weight_quant_name(w.quant));
  std::map<std::string, at::Tensor> named;
  named["model.embed_tokens.weight"] = w.embed_tokens;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    const LayerWeights& l = w.layers[i];
    named[p + "input_layernorm.weight"] = l.input_norm;
    named[p + "self_attn.q_proj.weight"] = l.q_proj;
    named[p + "self_attn.k_proj.weight"] = l.k_proj;
    named[p + "self_attn.v_proj.weight"] = l.v_proj;
    named[p + "self_attn.o_proj.weight"] = l.o_proj;
    if (l.q_bias.defined()) {
      named[p + "self_attn.q_proj.bias"] = l.q_bias;
      named[p + "self_attn.k_proj.bias"] = l.k_bias;
      named[p + "self_attn.v_proj.bias"] = l.v_bias;
    }
    if (l.q_norm.defined()) {
      named[p + "self_attn.q_norm.weight"] = l.q_norm;
      named[p + "self_attn.k_norm.weight"] = l.k_norm;
    }
    named[p + "post_attention_layernorm.weight"] = l.post_attention_norm;
    named[p + "mlp.gate_proj.weight"] = l.gate_proj;
    named[p + "mlp.up_proj.weight"] = l.up_proj;
    named[p + "mlp.down_proj.weight"] = l.down_proj;
  }
  named["model.norm.weight"] = w.final_norm;
  if (!c.tie_word_embeddings) named["lm_head.weight"] = w.lm_head;
  return named;
}

}  // namespace mnemo
