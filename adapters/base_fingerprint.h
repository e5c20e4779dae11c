// The fingerprint of a base model: what an adapter records it was trained on,
// what the registry checks on publish and what an evaluation reports, so an
// adapter is never run on weights it was not made for.
#pragma once

#include <string>

namespace mnemo {

// "sha256:<hex>" over the bytes of the model's weights and config: for a
// .gguf file the whole file; for a Hugging Face directory config.json and
// every *.safetensors file, by name in sorted order (tokenizer files do not
// change the weights and are left out). Reads every byte once (about 1 s per
// GB). Throws mnemo::Error naming the file that cannot be read.
std::string base_model_fingerprint(const std::string& model_path);

}  // namespace mnemo
