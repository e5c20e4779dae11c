// A base model as a user names it: weights, tokenizer, chat template and the
// token ids that end a turn, from a Hugging Face directory or a GGUF file.
#pragma once

#include "tokenizer/chat_template.h"
#include "model/model_loader.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mnemo {

class Transformer;
class Tokenizer;

struct BaseModel {
  std::string path;
  std::shared_ptr<Transformer> transformer;
  std::shared_ptr<Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat_template;  // absent when the model has none
  std::vector<int32_t> stop_token_ids;        // eos ids and the template's end-of-turn token
};

// Opens `path` (a directory with config.json, safetensors, tokenizer.json and
// tokenizer_config.json). `chat_template_override` names a template family to
// use instead of recognising the model's own. Throws mnemo::Error naming the
// file and what is wrong.
BaseModel open_base_model(const std::string& path, const LoadOptions& options,
                          const std::string& chat_template_override = "");

// What special-token text inside a message's content becomes.
enum class ContentTokens {
  kSpecial,  // <|im_end|> typed by a user is the control token (transformers' default)
  kText,     // it is tokenized as text, so nobody can write a turn of another role (the server's mode)
};

// Renders `messages` with the model's chat template and tokenizes the result
// (the template's special tokens are matched, none added). Throws
// mnemo::Error when the model has no chat template.
std::vector<int32_t> encode_chat(const BaseModel& model, const std::vector<ChatMessage>& messages,
                                 ContentTokens content = ContentTokens::kSpecial);

}  // namespace mnemo
