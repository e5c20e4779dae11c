// Chat templates by family. A Jinja engine would be the general answer, but the
// models Mnemo serves use a handful of templates; recognising them and
// rendering each in code is small, fast and testable against transformers
// (tests/interop/test_chat_template_parity.cpp). Values a template carries as
// text (SmolLM2's default system prompt, Llama 3.1's date) are read from it.
#include "tokenizer/chat_template.h"

#include <nlohmann/json.hpp>


#include "model/error.h"
#include "tokenizer/json_input.h"

namespace mnemo {
namespace {

const char* kOverrideHint =
    "choose a family explicitly with the chat template override (one of: chatml, llama3, llama2, mistral)";

// The string literals of a Jinja template, unescaped ('...' and "...").
std::vector<std::string> string_literals(std::string_view text) {
  std::vector<std::string> out;
  for (size_t i = 0; i < text.size(); ++i) {
    char quote = text[i];
    if (quote != '\'' && quote != '"') continue;
    std::string literal;
    size_t k = i + 1;
    for (; k < text.size() && text[k] != quote; ++k) {
      if (text[k] == '\\' && k + 1 < text.size()) {
        char next = text[++k];
        literal += next == 'n' ? '\n' : next == 't' ? '\t' : next == 'r' ? '\r' : next;
      } else {
        literal += text[k];
      }
    }
    out.push_back(std::move(literal));
    i = k;
  }
  return out;
}

// Python's str.strip() on the whitespace that occurs in practice (ASCII and
// the common Unicode spaces), which Jinja's trim and .strip() call.
bool is_python_space_at(std::string_view s, size_t at, size_t& length) {
  static const char* kUnicodeSpaces[] = {"\xC2\x85", "\xC2\xA0", "\xE3\x80\x80", "\xE2\x80\xA8", "\xE2\x80\xA9",
                                         "\xE2\x80\xAF", "\xE2\x81\x9F", "\xE1\x9A\x80"};
  unsigned char c = s[at];
  if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) return length = 1, true;
  for (const char* space : kUnicodeSpaces)
    if (s.substr(at).starts_with(space)) return length = std::char_traits<char>::length(space), true;
  if (s.substr(at).starts_with("\xE2\x80") && at + 2 < s.size()) {
    unsigned char third = s[at + 2];
    if (third >= 0x80 && third <= 0x8A) return length = 3, true;  // U+2000..U+200A
  }
  return false;
}

std::string python_strip(std::string_view s, bool left = true, bool right = true) {
  size_t begin = 0, end = s.size(), length = 0;
  while (left && begin < end && is_python_space_at(s, begin, length)) begin += length;
  if (right) {
    // Scan forward so multi-byte spaces are recognised; remember the last non-space end.
    size_t last_end = begin;
    for (size_t i = begin; i < end;) {
      if (is_python_space_at(s, i, length)) {
        i += length;
      } else {
        size_t n = 1;
        while (i + n < end && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80) ++n;
        i += n;
        last_end = i;
      }
    }
    end = last_end;
  }
  return std::string(s.substr(begin, end - begin));
}

std::string strip_chars(std::string_view s, char c, bool left, bool right) {
  size_t begin = 0, end = s.size();
  while (left && begin < end && s[begin] == c) ++begin;
  while (right && end > begin && s[end - 1] == c) --end;
  return std::string(s.substr(begin, end - begin));
}

std::string token_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string())
    return value["content"].get<std::string>();
  return "";
}

// tokenizer_config.json: a few kilobytes plus the templates and added tokens.
constexpr JsonLimits kTokenizerConfigLimits{16ull << 20, 32, 4ull << 20};

[[noreturn]] void raise_alternation() {
  fail("chat template: Conversation roles must alternate user/assistant/user/assistant/...");
}

}  // namespace

std::vector<std::string> ChatTemplate::family_names() { return {"chatml", "llama3", "llama2", "mistral"}; }

ChatTemplate ChatTemplate::from_template_text(std::string_view jinja, std::string bos_token, std::string eos_token,
                                              const std::string& source, const std::string& override_family) {
  ChatTemplate t;
  t.bos_ = std::move(bos_token);
  t.eos_ = std::move(eos_token);
  t.source_ = source;
  auto contains = [&](std::string_view needle) { return jinja.find(needle) != std::string_view::npos; };
  if (!override_family.empty()) {
    auto names = family_names();
    if (std::find(names.begin(), names.end(), override_family) == names.end())
      fail("{}: unknown chat template family \"{}\" (known: chatml, llama3, llama2, mistral)", source, override_family);
    t.family_ = override_family;
  } else if (contains("<|im_start|>")) {
    t.family_ = "chatml";
  } else if (contains("<|start_header_id|>")) {
    t.family_ = "llama3";
  } else if (contains("[INST]") && contains("<<SYS>>")) {
    t.family_ = "llama2";
  } else if (contains("[INST]")) {
    t.family_ = "mistral";
  } else {
    fail("{}: the chat_template is not one Mnemo recognises (it knows ChatML, Llama 3, Llama 2 and Mistral "
         "templates and has no Jinja engine); {}",
         source, kOverrideHint);
  }

  if (t.family_ == "chatml") {
    if (contains("<think>") && contains("last_query_index")) t.variant_ = "qwen3";
    // A default system prompt is a literal "<|im_start|>system\n...<|im_end|>"
    // that the template emits when messages[0] is not a system message.
    if (contains("!= 'system'") || contains("!= \"system\"") || contains("== 'system' %}") ||
        contains("== \"system\" %}")) {
      for (const std::string& literal : string_literals(jinja)) {
        const std::string_view head = "<|im_start|>system\n";
        size_t end = literal.find("<|im_end|>");
        if (literal.starts_with(head) && end != std::string::npos) {
          t.default_system_ = literal.substr(head.size(), end - head.size());
          break;
        }
      }
    }
  } else if (t.family_ == "llama3" && contains("Cutting Knowledge Date")) {
    t.variant_ = "llama3.1";
    t.date_ = "26 Jul 2024";  // the date Llama 3.1's template uses when none is given
    size_t at = jinja.find("date_string = ");
    if (at != std::string_view::npos) {
      auto literals = string_literals(jinja.substr(at, 64));
      if (!literals.empty()) t.date_ = literals.front();
    }
  }
  return t;
}

ChatTemplate ChatTemplate::from_tokenizer_config(const std::string& path, const std::string& override_family) {
  const nlohmann::json config = read_json_file(path, "tokenizer_config.json", kTokenizerConfigLimits);
  if (!config.is_object()) fail("{}: expected a JSON object at the top level", path);
  std::string bos = config.contains("bos_token") ? token_text(config["bos_token"]) : "";
  std::string eos = config.contains("eos_token") ? token_text(config["eos_token"]) : "";
  std::string jinja;
  if (auto it = config.find("chat_template"); it != config.end() && !it->is_null()) {
    if (it->is_string()) {
      jinja = it->get<std::string>();
    } else if (it->is_array()) {  // named templates: [{"name": "default", "template": ...}, ...]
      for (size_t i = 0; i < it->size(); ++i) {
        const nlohmann::json& entry = (*it)[i];
        if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") ||
            !entry["name"].is_string() || !entry["template"].is_string())
          fail("{}: chat_template[{}]: expected {{\"name\": string, \"template\": string}}", path, i);
        if (entry["name"] == "default") jinja = entry["template"].get<std::string>();
      }
      if (jinja.empty()) fail("{}: chat_template: no template named \"default\"; {}", path, kOverrideHint);
    } else {
      fail("{}: chat_template: expected a string", path);
    }
  } else if (override_family.empty()) {
    fail("{}: no chat_template; {}", path, kOverrideHint);
  }
  return from_template_text(jinja, bos, eos, path, override_family);
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  return render_marked(messages, add_generation_prompt).text;
}

ChatTemplate::Rendered ChatTemplate::render_marked(const std::vector<ChatMessage>& messages,
                                                   bool add_generation_prompt) const {
  Rendered rendered;
  std::string& out = rendered.text;
  // Appends text that came from a message, marking where it lies.
  auto content = [&](const std::string& text) {
    rendered.content.emplace_back(out.size(), out.size() + text.size());
    out += text;
  };
  if (family_ == "chatml" && variant_ == "qwen3") {
    // Qwen3: the assistant turn after the last user query carries its
    // (possibly empty) <think> block; earlier turns lose their reasoning.
    size_t last_query = messages.empty() ? 0 : messages.size() - 1;
    for (size_t i = messages.size(); i-- > 0;) {
      const std::string& c = messages[i].content;
      if (messages[i].role == "user" && !(c.starts_with("<tool_response>") && c.ends_with("</tool_response>"))) {
        last_query = i;
        break;
      }
    }
    for (size_t i = 0; i < messages.size(); ++i) {
      const ChatMessage& m = messages[i];
      if (m.role == "user" || m.role == "system") {
        out += "<|im_start|>" + m.role + "\n";
        content(m.content);
        out += "<|im_end|>\n";
      } else if (m.role == "assistant") {
        std::string text = m.content, reasoning;
        size_t close = text.find("</think>");
        if (close != std::string::npos) {
          std::string before = strip_chars(text.substr(0, close), '\n', false, true);
          size_t open = before.rfind("<think>");
          reasoning = strip_chars(open == std::string::npos ? before : before.substr(open + 7), '\n', true, false);
          text = strip_chars(text.substr(text.rfind("</think>") + 8), '\n', true, false);
        }
        out += "<|im_start|>assistant\n";
        if (i > last_query && (i + 1 == messages.size() || !reasoning.empty())) {
          out += "<think>\n";
          content(strip_chars(reasoning, '\n', true, true));
          out += "\n</think>\n\n";
          content(strip_chars(text, '\n', true, false));
        } else {
          content(text);
        }
        out += "<|im_end|>\n";
      } else {
        fail("{}: chat template: role \"{}\" is not supported by the Qwen3 template renderer", source_, m.role);
      }
    }
    if (add_generation_prompt) out += "<|im_start|>assistant\n";
  } else if (family_ == "chatml") {
    if (!messages.empty() && messages[0].role != "system" && !default_system_.empty())
      out += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
    for (const ChatMessage& m : messages) {
      out += "<|im_start|>" + m.role + "\n";
      content(m.content);
      out += "<|im_end|>\n";
    }
    if (add_generation_prompt) out += "<|im_start|>assistant\n";
  } else if (family_ == "llama3") {
    auto turn = [&](const std::string& role, const std::string& text) {
      out += "<|start_header_id|>" + role + "<|end_header_id|>\n\n";
      content(python_strip(text));
      out += "<|eot_id|>";
    };
    size_t first = 0;
    if (variant_ == "llama3.1") {
      std::string system;
      if (!messages.empty() && messages[0].role == "system") system = messages[0].content, first = 1;
      out += bos_ + "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: " + date_ + "\n\n";
      content(python_strip(system));
      out += "<|eot_id|>";
    }
    for (size_t i = first; i < messages.size(); ++i) {
      if (i == 0) out += bos_;
      turn(messages[i].role, messages[i].content);
    }
    if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  } else if (family_ == "llama2") {
    size_t first = 0;
    bool has_system = !messages.empty() && messages[0].role == "system";
    if (has_system) first = 1;
    for (size_t i = first; i < messages.size(); ++i) {
      const ChatMessage& m = messages[i];
      size_t index = i - first;
      if ((m.role == "user") != (index % 2 == 0)) raise_alternation();
      std::string text = m.content;
      if (index == 0 && has_system) text = "<<SYS>>\n" + messages[0].content + "\n<</SYS>>\n\n" + m.content;
      if (m.role == "user") {
        out += bos_ + "[INST] ";
        content(python_strip(text));
        out += " [/INST]";
      } else if (m.role == "assistant") {
        out += " ";
        content(python_strip(text));
        out += " " + eos_;
      }
    }
  } else if (family_ == "mistral") {
    out += bos_;
    for (size_t i = 0; i < messages.size(); ++i) {
      const ChatMessage& m = messages[i];
      if ((m.role == "user") != (i % 2 == 0)) raise_alternation();
      if (m.role == "user") {
        out += "[INST] ";
        content(m.content);
        out += " [/INST]";
      } else if (m.role == "assistant") {
        content(m.content);
        out += eos_;
      } else {
        fail("chat template: Only user and assistant roles are supported!");
      }
    }
  }
  return rendered;
}

}  // namespace mnemo
