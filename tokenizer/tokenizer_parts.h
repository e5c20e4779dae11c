// Private to the tokenizer: the pieces a tokenizer.json names (normalizer,
// pre-tokenizer, BPE model, decoder, added tokens) and the text primitives they
// share. Each `make_*` reads one JSON object and fails with the file and the
// JSON path of anything it does not understand.
#pragma once

#include "tokenizer/utf8.h"

#include <nlohmann/json.hpp>

#include <array>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mnemo::tokenizer_detail {

// Where a JSON value came from: the file and the path inside it.
struct JsonPlace {
  const std::string& source;
  std::string path;
  JsonPlace at(std::string_view key) const {
    return {source, path.empty() ? std::string(key) : path + "." + std::string(key)};
  }
  JsonPlace at(size_t index) const { return {source, path + "[" + std::to_string(index) + "]"}; }
  [[noreturn]] void fail(const std::string& what) const;
  const nlohmann::json& member(const nlohmann::json& object, std::string_view key) const;  // required
  std::string string_member(const nlohmann::json& object, std::string_view key) const;
  bool bool_member(const nlohmann::json& object, std::string_view key, bool fallback) const;
};

// ---- UTF-8: tokenizer/utf8.h (namespace mnemo, found from here unqualified) ----

// GPT-2's reversible byte <-> printable-character map.
const std::array<std::string, 256>& byte_to_unicode();
std::optional<uint8_t> unicode_to_byte(char32_t code_point);

// A PCRE2 pattern compiled with UTF and Unicode properties (\p{L}, \s, ...).
class Regex {
 public:
  Regex(const std::string& pattern, const JsonPlace& place);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Non-overlapping matches, left to right, as [begin, end) byte offsets.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

 private:
  void* code_;  // pcre2_code_8*, kept opaque so pcre2.h stays in one file
};
std::string escape_regex(std::string_view literal);
// A tokenizer.json {"String": s} or {"Regex": r} pattern as a Regex.
std::unique_ptr<Regex> make_pattern(const nlohmann::json& pattern, const JsonPlace& place);

// ---- normalizers (normalizer.cpp) ----
class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string text) const = 0;
};
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& json, const JsonPlace& place);

// ---- pre-tokenizers (pre_tokenizer.cpp) ----
struct PreToken {
  std::string text;
  bool at_text_start = false;  // begins at offset 0 of the original text (Metaspace "first")
};
class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void pre_tokenize(std::vector<PreToken>& pieces) const = 0;
};
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& json, const JsonPlace& place);

// ---- decoders (token_decoder.cpp) ----
class TokenDecoder {
 public:
  virtual ~TokenDecoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};
std::unique_ptr<TokenDecoder> make_token_decoder(const nlohmann::json& json, const JsonPlace& place);

// ---- the BPE model (bpe.cpp) ----
class BpeModel {
 public:
  BpeModel(const nlohmann::json& model, const JsonPlace& place);
  // Appends the ids of one pre-token.
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;
  const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }

 private:
  struct PairHash {
    size_t operator()(uint64_t key) const { return std::hash<uint64_t>()(key * 0x9E3779B97F4A7C15ull); }
  };
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<uint64_t, Merge, PairHash> merges_;  // (left id << 32 | right id)
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::array<int32_t, 256> byte_token_ids_{};  // <0xNN>, -1 when absent

  // Words repeat a lot in real text; a bounded cache keeps encode fast.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

// ---- added tokens (added_tokens.cpp) ----
struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};
struct TextPiece {
  std::string_view text;
  int32_t added_id = -1;  // >= 0: this piece is that added token
  size_t offset = 0;      // byte offset in the string it was cut from
};
// Finds added tokens in text leftmost-longest, honouring single_word, lstrip
// and rstrip as `tokenizers` does, and cuts the text around them.
class AddedTokenMatcher {
 public:
  void add(const AddedToken& token, std::string pattern);
  bool empty() const { return tokens_.empty(); }
  // `accept(start, stop, token)`, when given, may turn down a match, which is
  // then left as text (the search goes on from the next byte).
  using Accept = std::function<bool(size_t start, size_t stop, const AddedToken& token)>;
  std::vector<TextPiece> split(std::string_view text, const Accept& accept = {}) const;

 private:
  struct Entry {
    std::string pattern;
    AddedToken token;
  };
  std::vector<Entry> tokens_;
  std::array<std::vector<size_t>, 256> by_first_byte_;  // entries, longest pattern first
};

}  // namespace mnemo::tokenizer_detail
