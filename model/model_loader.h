// Opening a base model by path: a Hugging Face directory (config.json +
// safetensors) or a GGUF file (dequantized at load into the chosen dtype).
#pragma once

#include "kernels/weight_quant.h"
#include "model/config.h"

#include <memory>
#include <string>

namespace mnemo {

class Transformer;

struct LoadOptions {
  std::string dtype = "float32";  // "float32", "bfloat16" or "float16"
  std::string device = "cpu";     // "cpu", "cuda", "cuda:N"
  // "none", or "int8"/"int4": weight-only quantization of the projections,
  // embedding and LM head at load (CPU, float32; kernels/quantized_linear_cpu.h).
  std::string quant = "none";
};

// "none", "int8", "int4". Throws mnemo::Error otherwise.
WeightQuant parse_weight_quant(const std::string& name);

bool is_gguf_path(const std::string& path);

// Only the config (config.json, or a GGUF file's metadata): no weights read.
ModelConfig read_model_config(const std::string& path);

// Loads weights and config. Throws mnemo::Error naming the file and what is
// wrong for a missing or malformed config, a missing tensor, a wrong shape.
std::shared_ptr<Transformer> load_transformer(const std::string& path, const LoadOptions& options);

}  // namespace mnemo
