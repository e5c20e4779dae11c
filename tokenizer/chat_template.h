// Chat templates: renders a conversation into the prompt text a model was
// trained on, exactly as transformers' apply_chat_template(tokenize=False)
// does. There is no Jinja engine here: the `chat_template` of
// tokenizer_config.json is recognised as one of the known families and each
// family is rendered by code. Defaults that a template carries in its text (a
// default system prompt, as SmolLM2's) are read from that text.
//
// Families: "chatml" (Qwen2/2.5, Qwen3, SmolLM/SmolLM2), "llama3",
// "llama2" (<<SYS>> folded into the first [INST]), "mistral" ([INST] without
// a system role).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mnemo {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

class ChatTemplate {
 public:
  // Reads chat_template, bos_token and eos_token from tokenizer_config.json.
  // `override_family` (one of the names above, or "" to recognise) selects a
  // family whatever the template says. Throws mnemo::Error naming the file when
  // the template is missing or not recognised, saying how to override.
  static ChatTemplate from_tokenizer_config(const std::string& tokenizer_config_json_path,
                                            const std::string& override_family = "");
  static ChatTemplate from_template_text(std::string_view jinja, std::string bos_token, std::string eos_token,
                                         const std::string& source, const std::string& override_family = "");

  // Throws mnemo::Error where the template would raise (llama2/mistral: roles
  // that do not alternate user/assistant; mistral: a system message).
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  // The same text, with the byte ranges that came from the messages' content
  // (as the template transformed it) rather than from the template itself.
  struct Rendered {
    std::string text;
    std::vector<std::pair<size_t, size_t>> content;  // [begin, end)
  };
  Rendered render_marked(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  std::string family() const { return family_; }
  const std::string& default_system_prompt() const { return default_system_; }
  const std::string& bos_token() const { return bos_; }
  const std::string& eos_token() const { return eos_; }

  static std::vector<std::string> family_names();

 private:
  std::string family_;
  std::string variant_;         // finer shape within a family ("qwen3", "llama3.1", ...)
  std::string default_system_;  // system prompt the template injects when none is given
  std::string date_;            // llama3.1: "Today Date" the template uses when none is given
  std::string bos_;
  std::string eos_;
  std::string source_;
};

}  // namespace mnemo
