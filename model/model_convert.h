// `mnemo model convert`: a GGUF model as a Hugging Face directory, so that the
// Python references (transformers, peft) run on exactly the weights mnemo runs.
#pragma once

#include <string>

namespace mnemo {

struct ConvertOptions {
  std::string gguf_path;
  std::string out_dir;
  std::string dtype = "float32";
  bool force = false;  // replace an existing out_dir
};

// Writes config.json, model.safetensors, tokenizer.json, tokenizer_config.json
// and generation_config.json into a temporary directory beside out_dir, then
// renames it into place, so a failed conversion leaves nothing half-written.
// Throws mnemo::Error for a bad GGUF file or an existing out_dir without force.
void convert_gguf_to_hf(const ConvertOptions& options);

}  // namespace mnemo
