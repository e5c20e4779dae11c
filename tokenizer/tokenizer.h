// Text <-> token ids, from a Hugging Face tokenizer.json. Two model families:
// byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM: a Split/ByteLevel/Digits
// pre-tokenizer and the ByteLevel decoder) and SentencePiece-style BPE
// (Llama 2, Mistral: Metaspace or Prepend/Replace normalizers, byte_fallback
// <0xNN> tokens, unk). Added tokens (special or not) are matched in the raw
// text first, longest first, as `tokenizers` does; the post_processor adds
// BOS/EOS when add_special_tokens is set.
//
// Every result equals what the `tokenizers` library gives for the same file
// (tests/interop/test_tokenizer_parity.cpp checks ids and decodes on a corpus
// of hard strings). A Tokenizer is immutable after loading and safe to use
// from many threads at once.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo {

// What a tokenizer may hold; beyond these it is refused with the limit named,
// so a hostile file cannot make loading allocate without bound. The largest
// real ones: tokenizer.json ~35 MB, 262,144 tokens, ~500,000 merges.
inline constexpr uint64_t kMaxTokenizerFileBytes = 128ull << 20;
inline constexpr int64_t kMaxVocabulary = 1 << 21;  // model.vocab plus added_tokens
inline constexpr int64_t kMaxMerges = 1 << 22;

class Tokenizer {
 public:
  // Throws mnemo::Error naming the file and the JSON path of what is wrong
  // (bad JSON, no model, an unknown model/normalizer/pre-tokenizer/decoder
  // type, a merge naming a token not in the vocabulary).
  static Tokenizer from_file(const std::string& tokenizer_json_path);
  // `source` names the origin in error messages (a path, or "gguf:<file>").
  static Tokenizer from_json(const nlohmann::json& tokenizer_json, const std::string& source);
  // The text of a tokenizer.json, read within the same limits as the file.
  static Tokenizer from_json_text(std::string_view text, const std::string& source);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // REQUIRES: text is valid UTF-8 (else mnemo::Error with the byte offset).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // The same, except that inside the `literal` byte ranges of `text` special
  // tokens are not recognised: their text is tokenized as text (what
  // `tokenizers` does everywhere with split_special_tokens=True). What a user
  // typed can then never become a control token such as <|im_start|>.
  struct Span {
    size_t begin = 0, end = 0;
  };
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens, std::span<const Span> literal) const;
  // Ids outside the vocabulary are skipped, as `tokenizers` does. Invalid
  // UTF-8 produced by byte tokens becomes U+FFFD.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  // One more than the largest id (model vocabulary and added tokens).
  int32_t vocab_size() const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token's text as stored in tokenizer.json (byte-level or "▁" form);
  // an empty string for an id that names no token.
  const std::string& id_to_token(int32_t id) const;
  // True for added tokens marked "special" (BOS, EOS, <|im_end|>, ...).
  bool is_special(int32_t id) const;
  const std::string& source() const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Turns a stream of generated ids into text pieces. Text is held back while it
// would end inside a UTF-8 character (or a run of byte tokens that does not
// yet form one), so every piece is valid UTF-8, and the concatenation of all
// push() results and the final flush() equals decode(all ids).
// REQUIRES: the Tokenizer outlives the StreamDecoder.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);
  std::string push(int32_t id);
  // Whatever is still held back (possibly with U+FFFD for bytes that never
  // completed a character); the decoder is then empty and may be reused.
  std::string flush();

 private:
  const Tokenizer* tokenizer_;
  bool skip_special_tokens_;
  // A window: the tokens of the last emitted piece (they begin where every
  // earlier token was complete text) and those not yet emitted.
  std::vector<int32_t> ids_;
  size_t emitted_ids_ = 0;  // ids_[0, emitted_ids_) is the last emitted piece
  std::string prefix_;      // decode(ids_[0, emitted_ids_))
};

}  // namespace mnemo
