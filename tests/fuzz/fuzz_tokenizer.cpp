// Fuzz targets for text: tokenizer.json, encode/decode of fuzzed text with
// fixed tokenizers, and chat-template rendering of fuzzed messages.
#include "fuzz/fuzz_target.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <vector>

namespace mnemo::fuzz {
namespace {

MNEMO_FUZZ_TARGET(tokenizer_json) {
  std::unique_ptr<Tokenizer> tokenizer;
  if (!parsed("Tokenizer::from_json_text",
              [&] { tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_json_text(data, "t.json")); }))
    return;
  // A tokenizer that loaded must encode and decode without throwing anything
  // but a clear error.
  parsed("encode", [&] { tokenizer->decode(tokenizer->encode("Hello, world! <s> 123 \xc3\xa9")); });
}

// Fixed tokenizers from the reference data: byte-level BPE must give the text
// back exactly (decode(encode(s)) == s); every one must accept any valid UTF-8
// and refuse invalid UTF-8 with the byte offset.
const std::vector<std::pair<std::string, std::shared_ptr<Tokenizer>>>& fixed_tokenizers() {
  static const auto tokenizers = [] {
    std::vector<std::pair<std::string, std::shared_ptr<Tokenizer>>> loaded;
    const std::string dir = reference_dir();
    if (dir.empty()) return loaded;
    for (const char* name : {"bytelevel", "smollm", "llama3", "spm"}) {
      const auto path = std::filesystem::path(dir) / "tokenizers" / name / "tokenizer.json";
      if (std::filesystem::exists(path))
        loaded.emplace_back(name, std::make_shared<Tokenizer>(Tokenizer::from_file(path.string())));
    }
    return loaded;
  }();
  return tokenizers;
}

MNEMO_FUZZ_TARGET(tokenizer_text) {
  const bool valid = !first_invalid_utf8(data).has_value();
  for (const auto& entry : fixed_tokenizers()) {  // clang 14 cannot capture a structured binding
    const std::string& name = entry.first;
    const Tokenizer* tokenizer = entry.second.get();
    std::vector<int32_t> ids;
    const bool encoded = parsed("encode", [&] { ids = tokenizer->encode(data, /*add_special_tokens=*/false); });
    if (encoded != valid) violation(name + ": encode " + (valid ? "refused valid" : "accepted invalid") + " UTF-8");
    if (!encoded) continue;
    for (int32_t id : ids)
      if (id < 0 || id >= tokenizer->vocab_size()) violation(name + ": encode gave an id outside the vocabulary");
    std::string decoded = tokenizer->decode(ids);
    // Its <tool> token strips the whitespace around it (lstrip/rstrip, as in
    // `tokenizers`), so only text without it must come back byte for byte.
    if (name == "bytelevel" && data.find("<tool>") == std::string_view::npos && decoded != data)
      violation("bytelevel: decode(encode(s)) != s");
  }
}

// Messages from the input: NUL-separated role and content fields.
std::vector<ChatMessage> messages_of(std::string_view data) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (size_t i = 0; i <= data.size(); ++i)
    if (i == data.size() || data[i] == '\0') {
      fields.emplace_back(data.substr(start, i - start));
      start = i + 1;
    }
  static const char* kRoles[] = {"system", "user", "assistant"};
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i + 1 < fields.size(); i += 2)
    messages.push_back({fields[i].size() == 1 ? kRoles[static_cast<unsigned char>(fields[i][0]) % 3] : fields[i],
                        fields[i + 1]});
  return messages;
}

MNEMO_FUZZ_TARGET(chat_template) {
  const std::vector<ChatMessage> messages = messages_of(data);
  for (const std::string& family : ChatTemplate::family_names()) {
    ChatTemplate chat = ChatTemplate::from_template_text("", "<s>", "</s>", "fuzz", family);
    for (bool generation_prompt : {false, true}) {
      ChatTemplate::Rendered rendered;
      if (!parsed("render", [&] { rendered = chat.render_marked(messages, generation_prompt); })) continue;
      if (rendered.text != chat.render(messages, generation_prompt)) violation(family + ": render_marked differs from render");
      size_t previous_end = 0;
      for (auto [begin, end] : rendered.content) {
        if (begin > end || end > rendered.text.size() || begin < previous_end)
          violation(family + ": a content span outside the text or out of order");
        previous_end = end;
      }
    }
  }
}

}  // namespace
}  // namespace mnemo::fuzz
