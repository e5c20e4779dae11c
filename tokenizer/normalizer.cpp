// tokenizer.json normalizers. Prepend/Replace/Sequence are what Llama-2 style
// files use. NFC/NFKC (Qwen2 uses NFC) are honoured only where they provably
// change nothing: text made of code points in the stable tables passes
// through; anything else fails loudly rather than tokenize differently from
// `tokenizers`. Full Unicode normalization would need ICU, which the build
// does not link.
#include <algorithm>

#include "model/error.h"
#include "tokenizer/tokenizer_parts.h"
#include "tokenizer/unicode_normalization_tables.h"

namespace mnemo::tokenizer_detail {
namespace {

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string normalize(std::string text) const override { return text.empty() ? text : prefix_ + text; }

 private:
  std::string prefix_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::unique_ptr<Regex> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::string normalize(std::string text) const override {
    std::string out;
    size_t previous = 0;
    for (auto [begin, end] : pattern_->find_all(text)) {
      out.append(text, previous, begin - previous);
      out += content_;
      previous = end;
    }
    out.append(text, previous);
    return out;
  }

 private:
  std::unique_ptr<Regex> pattern_;
  std::string content_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  std::string normalize(std::string text) const override {
    for (const auto& part : parts_) text = part->normalize(std::move(text));
    return text;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

class StableOnlyNormalizer final : public Normalizer {
 public:
  StableOnlyNormalizer(std::string form, std::span<const CodePointRange> stable)
      : form_(std::move(form)), stable_(stable) {}
  std::string normalize(std::string text) const override {
    for (std::string_view character : utf8_characters(text)) {
      if (character.size() == 1) continue;  // ASCII is stable under every form
      char32_t code_point = decode_utf8_character(character);
      auto it = std::upper_bound(stable_.begin(), stable_.end(), code_point,
                                 [](char32_t c, const CodePointRange& r) { return c < r.first; });
      if (it == stable_.begin() || code_point > std::prev(it)->last)
        mnemo::fail("the tokenizer's {} normalizer would change U+{:04X} and full {} is not implemented; "
                    "the text cannot be tokenized exactly",
                    form_, static_cast<uint32_t>(code_point), form_);
    }
    return text;
  }

 private:
  std::string form_;
  std::span<const CodePointRange> stable_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& json, const JsonPlace& place) {
  if (json.is_null()) return nullptr;
  std::string type = place.string_member(json, "type");
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(place.string_member(json, "prepend"));
  if (type == "Replace")
    return std::make_unique<ReplaceNormalizer>(make_pattern(place.member(json, "pattern"), place.at("pattern")),
                                               place.string_member(json, "content"));
  if (type == "Sequence") {
    const nlohmann::json& list = place.member(json, "normalizers");
    if (!list.is_array()) place.at("normalizers").fail("expected an array");
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < list.size(); ++i)
      if (auto part = make_normalizer(list[i], place.at("normalizers").at(i))) parts.push_back(std::move(part));
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  if (type == "NFC") return std::make_unique<StableOnlyNormalizer>("NFC", nfc_stable_ranges());
  if (type == "NFKC") return std::make_unique<StableOnlyNormalizer>("NFKC", nfkc_stable_ranges());
  place.at("type").fail("unsupported normalizer type \"" + type +
                        "\" (supported: Prepend, Replace, Sequence, NFC and NFKC on already-normalized text)");
}

}  // namespace mnemo::tokenizer_detail
