#include "model/base_model.h"

#include "model/dtype_device.h"
#include "model/error.h"
#include "model/gguf.h"
#include "tokenizer/json_input.h"
#include "tokenizer/tokenizer.h"
#include "model/transformer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

namespace mnemo {
namespace {

namespace fs = std::filesystem;

void add_unique(std::vector<int32_t>& ids, int64_t id) {
  if (id >= 0 && std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(static_cast<int32_t>(id));
}

void add_token(std::vector<int32_t>& ids, const Tokenizer& tokenizer, const std::string& token) {
  if (token.empty()) return;
  if (auto id = tokenizer.token_to_id(token)) add_unique(ids, *id);
}

// generation_config.json's eos_token_id: what transformers stops on.
void add_generation_config_ids(std::vector<int32_t>& ids, const fs::path& dir) {
  fs::path path = dir / "generation_config.json";
  if (!fs::exists(path)) return;
  constexpr JsonLimits kLimits{4ull << 20, 32, 1ull << 20};  // a few hundred bytes in real models
  const nlohmann::json config = read_json_file(path.string(), "generation config", kLimits);
  if (!config.is_object() || !config.contains("eos_token_id")) return;
  const auto& eos = config["eos_token_id"];
  if (eos.is_number_integer()) add_unique(ids, eos.get<int64_t>());
  if (eos.is_array())
    for (const auto& id : eos)
      if (id.is_number_integer()) add_unique(ids, id.get<int64_t>());
}

void add_stop_tokens(BaseModel& model);

// A GGUF file carries its tokenizer and chat template in its metadata.
BaseModel open_gguf_model(const std::string& path, const LoadOptions& options,
                          const std::string& chat_template_override) {
  BaseModel model;
  model.path = path;
  const at::ScalarType dtype = parse_dtype(options.dtype);
  const at::Device device = parse_device(options.device);
  const WeightQuant quant = parse_weight_quant(options.quant);
  check_quant_options(quant, dtype, device);
  GgufModel gguf = load_gguf_model(path, dtype, quant);
  model.tokenizer = std::make_shared<Tokenizer>(Tokenizer::from_json(gguf.tokenizer_json, path + " (tokenizer)"));
  const nlohmann::json& tokenizer_config = gguf.tokenizer_config;
  if (tokenizer_config.contains("chat_template") && tokenizer_config["chat_template"].is_string()) {
    model.chat_template = ChatTemplate::from_template_text(tokenizer_config["chat_template"].get<std::string>(),
                                                           tokenizer_config.value("bos_token", ""),
                                                           tokenizer_config.value("eos_token", ""),
                                                           path + " (tokenizer.chat_template)", chat_template_override);
  } else if (!chat_template_override.empty()) {
    model.chat_template = ChatTemplate::from_template_text("", tokenizer_config.value("bos_token", ""),
                                                           tokenizer_config.value("eos_token", ""), path,
                                                           chat_template_override);
  }
  ModelWeights weights = load_weights(gguf.config, gguf.tensors, TensorStorage::Owned, dtype, device, path, quant);
  gguf.tensors.clear();
  model.transformer = std::make_shared<Transformer>(std::move(gguf.config), std::move(weights));
  return model;
}

}  // namespace

BaseModel open_base_model(const std::string& path, const LoadOptions& options,
                          const std::string& chat_template_override) {
  if (is_gguf_path(path)) {
    BaseModel model = open_gguf_model(path, options, chat_template_override);
    add_stop_tokens(model);
    return model;
  }
  BaseModel model;
  model.path = path;
  model.transformer = load_transformer(path, options);
  fs::path dir(path);
  fs::path tokenizer_json = dir / "tokenizer.json";
  if (!fs::exists(tokenizer_json)) fail("{}: no tokenizer.json beside the model", path);
  model.tokenizer = std::make_shared<Tokenizer>(Tokenizer::from_file(tokenizer_json.string()));
  if (model.tokenizer->vocab_size() > model.transformer->config().vocab_size)
    fail("{}: the tokenizer has {} tokens but the model's vocabulary holds {}", tokenizer_json.string(),
         model.tokenizer->vocab_size(), model.transformer->config().vocab_size);
  fs::path tokenizer_config = dir / "tokenizer_config.json";
  if (fs::exists(tokenizer_config)) {
    try {
      model.chat_template = ChatTemplate::from_tokenizer_config(tokenizer_config.string(), chat_template_override);
    } catch (const Error&) {
      // A model without a chat template is fine for plain completion; one
      // whose template we do not know is an error only when asked to chat.
      if (!chat_template_override.empty()) throw;
      model.chat_template.reset();
    }
  }
  add_generation_config_ids(model.stop_token_ids, dir);
  add_stop_tokens(model);
  return model;
}

namespace {

void add_stop_tokens(BaseModel& model) {
  for (int64_t id : model.transformer->config().eos_token_ids) add_unique(model.stop_token_ids, id);
  if (model.chat_template) {
    add_token(model.stop_token_ids, *model.tokenizer, model.chat_template->eos_token());
    // The end-of-turn marker of the family, which may differ from eos.
    const std::string family = model.chat_template->family();
    if (family == "chatml") add_token(model.stop_token_ids, *model.tokenizer, "<|im_end|>");
    if (family == "llama3") add_token(model.stop_token_ids, *model.tokenizer, "<|eot_id|>");
  }
}

}  // namespace

std::vector<int32_t> encode_chat(const BaseModel& model, const std::vector<ChatMessage>& messages,
                                 ContentTokens content) {
  if (!model.chat_template) {
    std::string config = (fs::path(model.path) / "tokenizer_config.json").string();
    // Re-read to give the real reason (missing file, unknown template).
    ChatTemplate::from_tokenizer_config(config);
    fail("{}: the model has no chat template", model.path);
  }
  ChatTemplate::Rendered rendered = model.chat_template->render_marked(messages, /*add_generation_prompt=*/true);
  std::vector<Tokenizer::Span> literal;
  if (content == ContentTokens::kText)
    for (auto [begin, end] : rendered.content) literal.push_back({begin, end});
  return model.tokenizer->encode(rendered.text, /*add_special_tokens=*/false, literal);
}

}  // namespace mnemo
