// One generated sequence's text as it streams: tokens in, final text out.
// Stop tokens and stop strings end it (neither is returned), the token limit
// ends it, and text is released only once it is final: never a broken UTF-8
// character, never the start of what may turn out to be a stop string.
// Shared by generate() and the serving engine so both stop and stream alike.
#pragma once

#include "model/generate.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mnemo {

class StreamDecoder;
class Tokenizer;

class TextStream {
 public:
  // REQUIRES: `tokenizer` and `params` outlive the stream. max_new_tokens ≤ 0
  // makes a stream that is done before its first token (finish: Length).
  TextStream(const Tokenizer& tokenizer, const GenerationParams& params, int64_t max_new_tokens);
  ~TextStream();
  TextStream(TextStream&&) noexcept;
  TextStream& operator=(TextStream&&) noexcept;

  // Takes the next sampled token and returns the text that became final with
  // it (often empty). REQUIRES: !done().
  std::string accept(int32_t token);

  bool done() const { return done_; }
  FinishReason finish_reason() const { return finish_reason_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }  // stop token excluded
  // All final text so far; once done, the whole text, cut before a stop string.
  std::string text() const { return text_.substr(0, emitted_); }

 private:
  void check_stop_strings(size_t search_from);
  std::string release();

  const GenerationParams* params_;
  std::unique_ptr<StreamDecoder> decoder_;
  int64_t max_new_tokens_;
  std::vector<int32_t> tokens_;
  std::string text_;   // decoded so far (may run past a stop string until checked)
  size_t emitted_ = 0; // bytes of text_ already released
  bool done_ = false;
  FinishReason finish_reason_ = FinishReason::Length;
};

}  // namespace mnemo
