// tokenizer.json decoders: each maps the list of token strings to a new list,
// as `tokenizers`' decode_chain does, so a Sequence composes them the same
// way and the final join matches byte for byte.
#include "model/error.h"
#include "tokenizer/tokenizer_parts.h"

namespace mnemo::tokenizer_detail {
namespace {

class ByteLevelDecoder final : public TokenDecoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) {
      // A token with any character outside the byte map (an added token such
      // as "<｜end▁of▁sentence｜>") contributes its own UTF-8 bytes unchanged.
      std::string mapped;
      bool all_mapped = true;
      for (std::string_view character : utf8_characters(token)) {
        auto byte = unicode_to_byte(decode_utf8_character(character));
        if (!byte) {
          all_mapped = false;
          break;
        }
        mapped += static_cast<char>(*byte);
      }
      bytes += all_mapped ? mapped : token;
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class ReplaceDecoder final : public TokenDecoder {
 public:
  ReplaceDecoder(std::unique_ptr<Regex> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::string out;
      size_t previous = 0;
      for (auto [begin, end] : pattern_->find_all(token)) {
        out.append(token, previous, begin - previous);
        out += content_;
        previous = end;
      }
      out.append(token, previous);
      token = std::move(out);
    }
  }

 private:
  std::unique_ptr<Regex> pattern_;
  std::string content_;
};

std::optional<uint8_t> byte_token_value(const std::string& token) {
  if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  int high = hex(token[3]), low = hex(token[4]);
  if (high < 0 || low < 0) return std::nullopt;
  return static_cast<uint8_t>(high * 16 + low);
}

class ByteFallbackDecoder final : public TokenDecoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      // A run of byte tokens that is not valid UTF-8 as a whole becomes one
      // U+FFFD per byte (not per maximal subpart), as `tokenizers` does.
      if (!first_invalid_utf8(pending)) out.push_back(pending);
      else
        for (size_t i = 0; i < pending.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
      pending.clear();
    };
    for (std::string& token : tokens) {
      if (auto byte = byte_token_value(token)) {
        pending += static_cast<char>(*byte);
        continue;
      }
      flush();
      out.push_back(std::move(token));
    }
    flush();
    tokens = std::move(out);
  }
};

class FuseDecoder final : public TokenDecoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const std::string& token : tokens) joined += token;
    tokens.assign(1, std::move(joined));
  }
};

class StripDecoder final : public TokenDecoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::vector<std::string_view> characters = utf8_characters(token);
      size_t begin = 0, end = characters.size();
      while (begin < start_ && begin < end && characters[begin] == content_) ++begin;
      size_t stripped_right = 0;
      while (stripped_right < stop_ && end > begin && characters[end - 1] == content_) --end, ++stripped_right;
      std::string out;
      for (size_t i = begin; i < end; ++i) out += characters[i];
      token = std::move(out);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class MetaspaceDecoder final : public TokenDecoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first) : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& token = tokens[i];
      for (size_t at = 0; at < token.size();) {
        if (token.compare(at, replacement_.size(), replacement_) == 0) {
          // `tokenizers` drops every replacement character of the first token
          // (not only a leading one) unless prepend_scheme is "never".
          if (!(i == 0 && strip_first_)) out += ' ';
          at += replacement_.size();
        } else {
          out += token[at++];
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

class SequenceDecoder final : public TokenDecoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<TokenDecoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& part : parts_) part->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<TokenDecoder>> parts_;
};

size_t count_member(const nlohmann::json& json, std::string_view key, const JsonPlace& place) {
  const nlohmann::json& value = place.member(json, key);
  if (!value.is_number_unsigned() && !(value.is_number_integer() && value.get<int64_t>() >= 0))
    place.at(key).fail("expected a non-negative integer");
  return value.get<size_t>();
}

}  // namespace

std::unique_ptr<TokenDecoder> make_token_decoder(const nlohmann::json& json, const JsonPlace& place) {
  if (json.is_null()) return nullptr;
  std::string type = place.string_member(json, "type");
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace")
    return std::make_unique<ReplaceDecoder>(make_pattern(place.member(json, "pattern"), place.at("pattern")),
                                            place.string_member(json, "content"));
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    std::string content = place.string_member(json, "content");
    if (utf8_characters(content).size() != 1) place.at("content").fail("expected exactly one character");
    return std::make_unique<StripDecoder>(content, count_member(json, "start", place), count_member(json, "stop", place));
  }
  if (type == "Metaspace") {
    std::string scheme = json.contains("prepend_scheme") && json["prepend_scheme"].is_string()
                             ? json["prepend_scheme"].get<std::string>()
                             : (place.bool_member(json, "add_prefix_space", true) ? "always" : "never");
    return std::make_unique<MetaspaceDecoder>(place.string_member(json, "replacement"), scheme != "never");
  }
  if (type == "Sequence") {
    const nlohmann::json& list = place.member(json, "decoders");
    if (!list.is_array()) place.at("decoders").fail("expected an array");
    std::vector<std::unique_ptr<TokenDecoder>> parts;
    for (size_t i = 0; i < list.size(); ++i)
      if (auto part = make_token_decoder(list[i], place.at("decoders").at(i))) parts.push_back(std::move(part));
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  place.at("type").fail("unsupported decoder type \"" + type +
                        "\" (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence)");
}

}  // namespace mnemo::tokenizer_detail
