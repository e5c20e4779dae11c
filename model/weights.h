// The base model's weights, named and shaped as in a Hugging Face checkpoint,
// validated against the config and placed in the chosen dtype and device.
#pragma once

#include "kernels/weight_quant.h"
#include "model/config.h"

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

namespace mnemo {

struct LayerWeights {
  at::Tensor input_norm;           // [hidden]
  at::Tensor q_proj, k_proj, v_proj, o_proj;  // [out, in]
  at::Tensor q_bias, k_bias, v_bias;          // Qwen2 only; undefined otherwise
  at::Tensor q_norm, k_norm;                  // Qwen3 only: [head_dim]
  at::Tensor post_attention_norm;  // [hidden]
  at::Tensor gate_proj, up_proj, down_proj;
};

struct ModelWeights {
  at::Tensor embed_tokens;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  at::Tensor final_norm;  // [hidden]
  at::Tensor lm_head;     // [vocab, hidden]; the embedding itself when tied
  // kInt8/kInt4: every projection is packed uint8 [out,
  // quantized_row_bytes(in)] (kernels/quantized_linear_cpu.h), and the
  // embedding and LM head as embedding_quant; norms and biases stay floating
  // point.
  WeightQuant quant = WeightQuant::kNone;
  WeightQuant embedding_quant = WeightQuant::kNone;
};

// How a checkpoint's tensors hold their bytes: as views of a memory-mapped
// file (safetensors), or in memory of their own (GGUF, dequantized at load;
// tensors made in memory).
enum class TensorStorage { FileViews, Owned };

// Takes the named tensors of a checkpoint (Hugging Face names), checks that
// every tensor the config calls for is there with the right shape and a
// floating dtype, and converts them to `dtype` on `device`. With `quant`
// (CPU float32 only) the projections, embedding and LM head are quantized,
// or taken as they are when already packed for `quant` (a GGUF loaded with
// quantize_as_loaded). The weights never
// view a file: a FileViews tensor that needs no conversion is copied (see
// weights.cpp for why). Throws
// mnemo::Error naming `source` and the tensor for a missing tensor, a wrong
// shape or dtype, or an unexpected tensor that would be silently ignored
// (for example the bias of a model whose config says it has none).
ModelWeights load_weights(const ModelConfig& config, const std::map<std::string, at::Tensor>& tensors,
                          TensorStorage storage, at::ScalarType dtype, at::Device device,
                          const std::string& source, WeightQuant quant = WeightQuant::kNone);

// How load_weights with `quant` holds the tensor of this Hugging Face name:
// the projections as `quant`, the embedding and LM head as
// embedding_quant_for(quant), anything else kNone (floating point).
WeightQuant weight_quant_for(const std::string& name, WeightQuant quant);
// int4 keeps the embedding and LM head in int8, as llama.cpp's Q4 files do
// (the default model's Q4_1 file holds its token embedding as Q8_0). With
// them in int4 too, the default model's perplexity rose 5.4% and 13% of its
// greedy tokens changed; this way its int4 equals its float32
// (bench/quant).
WeightQuant embedding_quant_for(WeightQuant quant);

// The reverse: Hugging Face names for every tensor (for `mnemo model convert`).
// Throws mnemo::Error for quantized weights.
std::map<std::string, at::Tensor> named_weights(const ModelConfig& config, const ModelWeights& weights);

}  // namespace mnemo
