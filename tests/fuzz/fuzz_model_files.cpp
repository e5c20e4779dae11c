// Fuzz targets for the files a base model comes in: safetensors, GGUF (with
// the tokenizer and chat template read from it) and config.json.
#include "fuzz/fuzz_target.h"
#include "tokenizer/chat_template.h"
#include "model/config.h"
#include "model/gguf.h"
#include "model/safetensors.h"
#include "tokenizer/tokenizer.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

namespace mnemo::fuzz {
namespace {

MNEMO_FUZZ_TARGET(safetensors) {
  const std::string path = scratch_file("fuzz.safetensors", data);
  std::shared_ptr<SafetensorsFile> file;
  if (!parsed("SafetensorsFile::open", [&] { file = SafetensorsFile::open(path); })) return;
  const uint64_t data_bytes = data.size() >= 8 ? data.size() : 0;
  for (const SafetensorsEntry& entry : file->entries()) {
    if (entry.begin > entry.end || entry.end > data_bytes) violation("safetensors: entry '" + entry.name + "' offsets outside the file");
    at::Tensor tensor = file->tensor(entry.name);
    if (static_cast<uint64_t>(tensor.numel()) * tensor.element_size() != entry.end - entry.begin)
      violation("safetensors: tensor '" + entry.name + "' does not span its bytes");
    if (!tensor.defined() || !file->contains(entry.name)) violation("safetensors: entry '" + entry.name + "' unreadable");
  }
  parsed("read_safetensors_metadata", [&] { read_safetensors_metadata(path); });
}

MNEMO_FUZZ_TARGET(gguf) {
  const std::string path = scratch_file("fuzz.gguf", data);
  std::shared_ptr<GgufFile> file;
  if (!parsed("GgufFile::open", [&] { file = GgufFile::open(path); })) return;
  for (const GgufTensorInfo& info : file->tensors()) {
    if (!file->has_tensor(info.name)) violation("gguf: tensor '" + info.name + "' listed but not found");
    if (info.file_offset > data.size() || info.bytes > data.size() - info.file_offset)
      violation("gguf: tensor '" + info.name + "' data outside the file");
  }
  parsed("gguf_model_config", [&] { gguf_model_config(*file); });
  parsed("gguf tokenizer", [&] { Tokenizer::from_json(gguf_tokenizer_json(*file), "gguf:fuzz"); });
  parsed("gguf chat template", [&] {
    nlohmann::json config = gguf_tokenizer_config(*file);
    if (config.contains("chat_template") && config["chat_template"].is_string())
      ChatTemplate::from_template_text(config["chat_template"].get<std::string>(), "<s>", "</s>", "gguf:fuzz")
          .render({{"user", "hi"}}, true);
  });
}

MNEMO_FUZZ_TARGET(config_json) {
  ModelConfig config;
  if (!parsed("parse_model_config_text", [&] { config = parse_model_config_text(data, "config.json"); })) return;
  if (config.hidden_size <= 0 || config.num_layers <= 0 || config.num_attention_heads <= 0 || config.head_dim <= 0 ||
      config.num_key_value_heads <= 0 || config.num_attention_heads % config.num_key_value_heads != 0)
    violation("config.json: accepted a config with impossible sizes");
}

}  // namespace
}  // namespace mnemo::fuzz
