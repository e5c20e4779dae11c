#include "model/text_stream.h"

#include "model/error.h"
#include "tokenizer/tokenizer.h"

#include <algorithm>

namespace mnemo {
namespace {

// Bytes at the end of `text` that could still grow into a stop string: they
// are held back until the next token decides.
size_t held_back(const std::string& text, const std::vector<std::string>& stops) {
  size_t hold = 0;
  for (const std::string& stop : stops)
    for (size_t n = std::min(stop.size() - 1, text.size()); n > hold; --n)
      if (text.compare(text.size() - n, n, stop, 0, n) == 0) {
        hold = n;
        break;
      }
  return hold;
}

}  // namespace

TextStream::TextStream(const Tokenizer& tokenizer, const GenerationParams& params, int64_t max_new_tokens)
    : params_(&params),
      decoder_(std::make_unique<StreamDecoder>(tokenizer, /*skip_special_tokens=*/true)),
      max_new_tokens_(max_new_tokens),
      done_(max_new_tokens <= 0) {}

TextStream::~TextStream() = default;
TextStream::TextStream(TextStream&&) noexcept = default;
TextStream& TextStream::operator=(TextStream&&) noexcept = default;

// Looks for a stop string in the text added since the last check; on a match
// cuts the text there and finishes.
void TextStream::check_stop_strings(size_t search_from) {
  size_t first = std::string::npos;
  for (const std::string& stop : params_->stop_strings) {
    if (stop.empty()) continue;
    size_t from = search_from >= stop.size() ? search_from - stop.size() + 1 : 0;
    size_t at = text_.find(stop, from);
    if (at != std::string::npos) first = std::min(first, at);
  }
  if (first != std::string::npos) {
    text_.resize(first);
    done_ = true;
    finish_reason_ = FinishReason::Stop;
  }
}

std::string TextStream::release() {
  size_t ready = done_ ? text_.size() : text_.size() - held_back(text_, params_->stop_strings);
  if (ready <= emitted_) return {};
  std::string piece = text_.substr(emitted_, ready - emitted_);
  emitted_ = ready;
  return piece;
}

std::string TextStream::accept(int32_t token) {
  MNEMO_CHECK(!done_, "a token after the stream finished");
  const auto& stop_ids = params_->stop_token_ids;
  if (std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end()) {
    done_ = true;
    finish_reason_ = FinishReason::Stop;
  } else {
    tokens_.push_back(token);
    size_t before = text_.size();
    text_ += decoder_->push(token);
    check_stop_strings(before);
    if (!done_ && static_cast<int64_t>(tokens_.size()) >= max_new_tokens_) {
      done_ = true;
      finish_reason_ = FinishReason::Length;
    }
  }
  if (done_ && finish_reason_ == FinishReason::Length) {
    size_t before = text_.size();
    text_ += decoder_->flush();
    check_stop_strings(before);
  }
  return release();
}

}  // namespace mnemo
