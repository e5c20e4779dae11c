// Text primitives of the tokenizer: UTF-8 handling with Rust's lossy rules (so
// decode output matches `tokenizers` byte for byte), GPT-2's byte <-> unicode
// map, and a PCRE2 wrapper for the pre-tokenizer regexes. Hand-written: the
// byte map and lossy rules are tiny and must match Rust exactly; PCRE2 does
// the Unicode-aware matching (\p{L}, \p{N}, \s with UCP) that std::regex lacks.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "model/error.h"
#include "tokenizer/tokenizer_parts.h"
#include "tokenizer/utf8.h"

namespace mnemo::tokenizer_detail {

void JsonPlace::fail(const std::string& what) const {
  if (path.empty()) mnemo::fail("{}: {}", source, what);
  mnemo::fail("{}: {}: {}", source, path, what);
}

const nlohmann::json& JsonPlace::member(const nlohmann::json& object, std::string_view key) const {
  if (!object.is_object()) fail("expected an object");
  auto it = object.find(std::string(key));
  if (it == object.end() || it->is_null()) at(key).fail("missing");
  return *it;
}

std::string JsonPlace::string_member(const nlohmann::json& object, std::string_view key) const {
  const nlohmann::json& value = member(object, key);
  if (!value.is_string()) at(key).fail("expected a string");
  return value.get<std::string>();
}

bool JsonPlace::bool_member(const nlohmann::json& object, std::string_view key, bool fallback) const {
  auto it = object.find(std::string(key));
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) at(key).fail("expected true or false");
  return it->get<bool>();
}

}  // namespace mnemo::tokenizer_detail

// ---- UTF-8 (tokenizer/utf8.h) ----
namespace mnemo {

size_t utf8_sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

namespace {

// Length of the valid UTF-8 character at text[i], or the length of the maximal
// invalid subpart (negated) as the Unicode "substitution of maximal subparts"
// practice that Rust follows defines it.
int classify_at(std::string_view text, size_t i) {
  auto byte = [&](size_t k) -> int { return k < text.size() ? static_cast<unsigned char>(text[k]) : -1; };
  int lead = byte(i);
  size_t length = utf8_sequence_length(static_cast<unsigned char>(lead));
  if (length == 1) return 1;
  if (length == 0) return -1;
  int low = 0x80, high = 0xBF;
  if (lead == 0xE0) low = 0xA0;
  if (lead == 0xED) high = 0x9F;
  if (lead == 0xF0) low = 0x90;
  if (lead == 0xF4) high = 0x8F;
  int second = byte(i + 1);
  if (second < low || second > high) return -1;
  for (size_t k = 2; k < length; ++k) {
    int next = byte(i + k);
    if (next < 0x80 || next > 0xBF) return -static_cast<int>(k);
  }
  return static_cast<int>(length);
}

}  // namespace

std::optional<size_t> first_invalid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    int n = classify_at(text, i);
    if (n < 0) return i;
    i += n;
  }
  return std::nullopt;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    int n = classify_at(bytes, i);
    if (n > 0) {
      out.append(bytes.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += -n;
    }
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::vector<std::string_view> utf8_characters(std::string_view text) {
  std::vector<std::string_view> out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t n = utf8_sequence_length(static_cast<unsigned char>(text[i]));
    if (n == 0 || i + n > text.size()) n = 1;  // callers pass valid UTF-8; stay in bounds regardless
    out.push_back(text.substr(i, n));
    i += n;
  }
  return out;
}

char32_t decode_utf8_character(std::string_view s) {
  auto b = [&](size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[k])); };
  switch (s.size()) {
    case 1: return b(0);
    case 2: return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3: return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    case 4: return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    default: return 0xFFFD;
  }
}

}  // namespace mnemo

namespace mnemo::tokenizer_detail {

namespace {

struct ByteMap {
  std::array<std::string, 256> to_unicode;
  std::array<int16_t, 512> from_unicode;  // every mapped code point is below 324
  ByteMap() {
    from_unicode.fill(-1);
    // GPT-2's bytes_to_unicode(): printable Latin-1 maps to itself, the other
    // bytes to 256, 257, ... in byte order.
    int next = 0;
    for (int byte = 0; byte < 256; ++byte) {
      bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE && byte <= 0xFF);
      char32_t code_point = printable ? static_cast<char32_t>(byte) : static_cast<char32_t>(256 + next++);
      append_utf8(to_unicode[byte], code_point);
      from_unicode[code_point] = static_cast<int16_t>(byte);
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

}  // namespace

const std::array<std::string, 256>& byte_to_unicode() { return byte_map().to_unicode; }

std::optional<uint8_t> unicode_to_byte(char32_t code_point) {
  if (code_point >= 512) return std::nullopt;
  int16_t byte = byte_map().from_unicode[code_point];
  if (byte < 0) return std::nullopt;
  return static_cast<uint8_t>(byte);
}

Regex::Regex(const std::string& pattern, const JsonPlace& place) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error_code, &error_offset, nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    place.fail(fmt::format("regex does not compile at offset {}: {}", error_offset, reinterpret_cast<char*>(message)));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // best effort: the interpreter is the fallback
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  auto* code = static_cast<pcre2_code*>(code_);
  std::vector<std::pair<size_t, size_t>> matches;
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(code, nullptr);
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    // The text was validated once on entry; PCRE2_NO_UTF_CHECK avoids
    // re-validating the whole subject at every match (quadratic otherwise).
    int rc = pcre2_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, data, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      pcre2_match_data_free(data);
      mnemo::fail("tokenizer regex failed with PCRE2 error {}", rc);
    }
    PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    size_t begin = ovector[0], end = ovector[1];
    if (end == begin) {
      // An empty match contributes no split; step over one character.
      if (start >= text.size()) break;
      size_t n = utf8_sequence_length(static_cast<unsigned char>(text[start]));
      start += n == 0 ? 1 : n;
      continue;
    }
    matches.emplace_back(begin, end);
    start = end;
  }
  pcre2_match_data_free(data);
  return matches;
}

std::string escape_regex(std::string_view literal) {
  std::string out;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}-/#").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

std::unique_ptr<Regex> make_pattern(const nlohmann::json& pattern, const JsonPlace& place) {
  if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string())
    return std::make_unique<Regex>(escape_regex(pattern["String"].get<std::string>()), place.at("String"));
  if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string())
    return std::make_unique<Regex>(pattern["Regex"].get<std::string>(), place.at("Regex"));
  place.fail("expected {\"String\": ...} or {\"Regex\": ...}");
}

}  // namespace mnemo::tokenizer_detail
