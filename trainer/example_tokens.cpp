#include "trainer/example_tokens.h"

#include "model/base_model.h"
#include "model/error.h"
#include "tokenizer/tokenizer.h"

#include <algorithm>

namespace mnemo {

TrainingSequence tokenize_example(const BaseModel& model, const ChatExample& example, int32_t slot,
                                  int64_t max_tokens) {
  if (!model.chat_template) fail("{}: training on chat examples needs a chat template", model.path);
  const ChatTemplate& chat = *model.chat_template;
  auto encode = [&](const std::string& text) { return model.tokenizer->encode(text, /*add_special_tokens=*/false); };

  // Token boundaries of each message: the rendering of the first k messages
  // is a prefix of the rendering of all (special tokens delimit the turns).
  std::vector<int32_t> tokens;
  std::vector<float> weights;  // weight of predicting tokens[i] (shifted below)
  std::vector<float> kl;
  std::vector<ChatMessage> so_far;
  for (const ChatMessage& message : example.messages) {
    const size_t before = tokens.size();
    size_t content_start = before;
    std::vector<ChatMessage> empty_turn = so_far;
    empty_turn.push_back({message.role, ""});
    std::vector<int32_t> header = encode(message.role == "assistant" ? chat.render(so_far, true)
                                                                     : chat.render(empty_turn, false));
    so_far.push_back(message);
    std::vector<int32_t> all = encode(chat.render(so_far, false));
    // The content starts where the rendering with an empty message departs
    // from this one (the role header and, first, the default system prompt
    // carry no loss).
    content_start = std::mismatch(header.begin(), header.end(), all.begin(), all.end()).first - header.begin();
    content_start = std::max(content_start, before);
    MNEMO_CHECK(all.size() >= before && std::equal(tokens.begin(), tokens.end(), all.begin()),
                "a chat rendering is not a prefix of the next one");
    if (static_cast<int64_t>(all.size()) > max_tokens) {
      if (before > 0 && so_far.size() > 2) break;  // keep whole exchanges
      all.resize(static_cast<size_t>(max_tokens));
    }
    float weight = static_cast<float>(message.role == "assistant" ? example.assistant_loss
                                      : message.role == "user"    ? example.user_loss
                                                                  : 0.0);
    float kl_weight = example.kl_to_base && message.role == "assistant" ? 1.0f : 0.0f;
    for (size_t i = before; i < all.size(); ++i) {
      bool content = i >= content_start;
      weights.push_back(content ? weight : 0.0f);
      kl.push_back(content ? kl_weight : 0.0f);
    }
    tokens = std::move(all);
    if (static_cast<int64_t>(tokens.size()) >= max_tokens) break;
  }
  // Trailing "\n" after the end-of-turn token is the template's, not worth learning.
  TrainingSequence sequence;
  sequence.slot = slot;
  sequence.tokens = tokens;
  // target_weights[t] is the weight of predicting tokens[t + 1].
  sequence.target_weights.assign(weights.begin() + 1, weights.end());
  bool any_kl = std::any_of(kl.begin(), kl.end(), [](float w) { return w > 0; });
  if (any_kl) sequence.kl_weights.assign(kl.begin() + 1, kl.end());
  return sequence;
}

}  // namespace mnemo
