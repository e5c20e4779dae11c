#include "model/model_loader.h"

#include "model/dtype_device.h"
#include "model/error.h"
#include "model/gguf.h"
#include "model/safetensors.h"
#include "model/transformer.h"

#include <ATen/ATen.h>

#include <filesystem>

namespace mnemo {

c10::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32") return at::kFloat;
  if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
  if (name == "float16" || name == "fp16") return at::kHalf;
  fail("unknown dtype '{}' (choose float32, bfloat16 or float16)", name);
}

c10::Device parse_device(const std::string& name) {
  try {
    at::Device device(name);
    if (device.is_cuda() && !at::hasCUDA()) fail("device '{}' requested, but no CUDA device is available", name);
    return device;
  } catch (const c10::Error&) {
    fail("unknown device '{}' (choose cpu or cuda[:N])", name);
  }
}

void check_quant_options(WeightQuant quant, at::ScalarType dtype, at::Device device) {
  if (quant != WeightQuant::kNone && (dtype != at::kFloat || !device.is_cpu()))
    fail("--quant {} is for the CPU with float32 activations (asked: {} on {})", weight_quant_name(quant),
         c10::toString(dtype), device.str());
}

WeightQuant parse_weight_quant(const std::string& name) {
  if (name == "none") return WeightQuant::kNone;
  if (name == "int8") return WeightQuant::kInt8;
  if (name == "int4") return WeightQuant::kInt4;
  fail("unknown quantization '{}' (choose none, int8 or int4)", name);
}

bool is_gguf_path(const std::string& path) {
  return std::filesystem::is_regular_file(path) && path.size() > 5 && path.substr(path.size() - 5) == ".gguf";
}

ModelConfig read_model_config(const std::string& path) {
  if (!std::filesystem::exists(path)) fail("{}: no such model file or directory", path);
  if (is_gguf_path(path)) return gguf_model_config(*GgufFile::open(path));
  return load_model_config((std::filesystem::path(path) / "config.json").string());
}

std::shared_ptr<Transformer> load_transformer(const std::string& path, const LoadOptions& options) {
  namespace fs = std::filesystem;
  const at::ScalarType dtype = parse_dtype(options.dtype);
  const at::Device device = parse_device(options.device);
  const WeightQuant quant = parse_weight_quant(options.quant);
  if (!fs::exists(path)) fail("{}: no such model file or directory", path);
  check_quant_options(quant, dtype, device);
  if (is_gguf_path(path)) {
    GgufModel gguf = load_gguf_model(path, dtype, quant);
    ModelWeights weights = load_weights(gguf.config, gguf.tensors, TensorStorage::Owned, dtype, device, path, quant);
    return std::make_shared<Transformer>(std::move(gguf.config), std::move(weights));
  }
  if (!fs::is_directory(path))
    fail("{}: not a model (a Hugging Face directory with config.json, or a .gguf file)", path);
  ModelConfig config = load_model_config((fs::path(path) / "config.json").string());
  auto tensors = load_safetensors_dir(path);
  ModelWeights weights = load_weights(config, tensors, TensorStorage::FileViews, dtype, device, path, quant);
  return std::make_shared<Transformer>(std::move(config), std::move(weights));
}

}  // namespace mnemo
