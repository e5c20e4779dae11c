#include "model/model_convert.h"

#include "model/dtype_device.h"
#include "model/error.h"
#include "model/gguf.h"
#include "model/safetensors.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

namespace mnemo {
namespace {

namespace fs = std::filesystem;

void write_json(const fs::path& path, const nlohmann::json& json) {
  std::ofstream out(path);
  out << json.dump(2) << "\n";
  if (!out.flush()) fail("{}: write failed", path.string());
}

}  // namespace

void convert_gguf_to_hf(const ConvertOptions& options) {
  const fs::path out_dir(options.out_dir);
  if (fs::exists(out_dir) && !options.force)
    fail("{}: already exists (pass --force to replace it)", options.out_dir);
  const at::ScalarType dtype = parse_dtype(options.dtype);
  spdlog::info("converting {} to {} ({})", options.gguf_path, options.out_dir, options.dtype);
  GgufModel gguf = load_gguf_model(options.gguf_path, dtype);

  fs::path staging = out_dir;
  staging += ".converting";
  fs::remove_all(staging);
  fs::create_directories(staging);
  nlohmann::json config = model_config_to_json(gguf.config);
  config["torch_dtype"] = options.dtype == "fp32" ? "float32" : options.dtype;
  write_json(staging / "config.json", config);
  nlohmann::json generation = {{"_from_model_config", true}};
  if (!gguf.config.bos_token_ids.empty()) generation["bos_token_id"] = gguf.config.bos_token_ids[0];
  if (!gguf.config.eos_token_ids.empty()) generation["eos_token_id"] = gguf.config.eos_token_ids[0];
  write_json(staging / "generation_config.json", generation);
  write_json(staging / "tokenizer.json", gguf.tokenizer_json);
  write_json(staging / "tokenizer_config.json", gguf.tokenizer_config);
  write_safetensors((staging / "model.safetensors").string(), gguf.tensors,
                    {{"format", "pt"}, {"mnemo.converted_from", fs::path(options.gguf_path).filename().string()}});
  if (fs::exists(out_dir)) fs::remove_all(out_dir);
  fs::rename(staging, out_dir);
  spdlog::info("wrote {} tensors to {}", gguf.tensors.size(), options.out_dir);
}

}  // namespace mnemo
