#include "model/generate.h"

#include "model/error.h"
#include "model/kv_cache.h"
#include "model/tokenizer.h"
#include "model/transformer.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <memory>

namespace mnemo {
namespace {

// One request's state while it generates.
struct Slot {
  size_t index = 0;
  const GenerationParams* params = nullptr;
  std::unique_ptr<SequenceCache> cache;
  std::unique_ptr<StreamDecoder> decoder;
  Sampler sampler;
  std::string text;      // decoded so far (may run past a stop string until checked)
  size_t emitted = 0;    // bytes of `text` already passed to the callback
  int64_t max_new_tokens = 0;
  bool done = false;
  GenerationResult result;

  Slot(const SamplingParams& sampling) : sampler(sampling) {}
};

// Bytes at the end of `text` that could still grow into a stop string: they
// are held back from streaming until the next token decides.
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

// Looks for a stop string in the text added since the last check; on a match
// cuts the text there and finishes the slot.
void check_stop_strings(Slot& slot, size_t search_from) {
  size_t first = std::string::npos;
  for (const std::string& stop : slot.params->stop_strings) {
    if (stop.empty()) continue;
    size_t from = search_from >= stop.size() ? search_from - stop.size() + 1 : 0;
    size_t at = slot.text.find(stop, from);
    if (at != std::string::npos) first = std::min(first, at);
  }
  if (first != std::string::npos) {
    slot.text.resize(first);
    slot.done = true;
    slot.result.finish_reason = FinishReason::Stop;
  }
}

void stream(Slot& slot, const TextCallback& on_text) {
  size_t ready = slot.done ? slot.text.size() : slot.text.size() - held_back(slot.text, slot.params->stop_strings);
  if (ready > slot.emitted) {
    if (on_text) on_text(slot.index, std::string_view(slot.text).substr(slot.emitted, ready - slot.emitted));
    slot.emitted = ready;
  }
}

void accept(Slot& slot, int32_t token, const TextCallback& on_text) {
  const auto& stop_ids = slot.params->stop_token_ids;
  if (std::find(stop_ids.begin(), stop_ids.end(), token) != stop_ids.end()) {
    slot.done = true;
    slot.result.finish_reason = FinishReason::Stop;
  } else {
    slot.result.tokens.push_back(token);
    size_t before = slot.text.size();
    slot.text += slot.decoder->push(token);
    check_stop_strings(slot, before);
    if (!slot.done && static_cast<int64_t>(slot.result.tokens.size()) >= slot.max_new_tokens) {
      slot.done = true;
      slot.result.finish_reason = FinishReason::Length;
    }
  }
  if (slot.done && slot.result.finish_reason == FinishReason::Length) {
    size_t before = slot.text.size();
    slot.text += slot.decoder->flush();
    check_stop_strings(slot, before);
  }
  stream(slot, on_text);
}

}  // namespace

std::vector<GenerationResult> generate(const Transformer& model, const Tokenizer& tokenizer,
                                       const std::vector<GenerationRequest>& requests, const TextCallback& on_text,
                                       const LoraHook* lora) {
  c10::InferenceMode inference_mode;
  const int64_t context = model.config().max_position_embeddings;
  std::vector<std::unique_ptr<Slot>> slots;
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerationRequest& request = requests[i];
    if (request.prompt.empty()) fail("request {}: the prompt is empty", i);
    const int64_t prompt_tokens = static_cast<int64_t>(request.prompt.size());
    if (prompt_tokens >= context)
      fail("request {}: the prompt has {} tokens, but the model's context holds {}", i, prompt_tokens, context);
    auto slot = std::make_unique<Slot>(request.params.sampling);
    slot->index = i;
    slot->params = &request.params;
    slot->max_new_tokens = std::min(request.params.max_new_tokens, context - prompt_tokens);
    if (request.prefix) {
      if (request.prefix->length() >= prompt_tokens)
        fail("request {}: the prefix cache holds {} tokens, but the prompt has only {}", i,
             request.prefix->length(), prompt_tokens);
      slot->cache = std::make_unique<SequenceCache>(request.prefix->clone(prompt_tokens + slot->max_new_tokens));
    } else {
      slot->cache = std::make_unique<SequenceCache>(model.config(), prompt_tokens + slot->max_new_tokens,
                                                    model.dtype(), model.device());
    }
    slot->decoder = std::make_unique<StreamDecoder>(tokenizer, /*skip_special_tokens=*/true);
    slot->result.prompt_tokens = prompt_tokens;
    if (slot->max_new_tokens <= 0) slot->done = true;
    slots.push_back(std::move(slot));
  }

  // The first step feeds whole prompts, less any cached prefix (batched prefill); later steps feed
  // each live request its last token.
  std::vector<std::vector<int32_t>> next_input(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const int64_t cached = requests[i].prefix ? requests[i].prefix->length() : 0;
    next_input[i].assign(requests[i].prompt.begin() + cached, requests[i].prompt.end());
  }
  while (true) {
    ForwardBatch batch;
    std::vector<Slot*> live;
    for (auto& slot : slots) {
      if (slot->done) continue;
      live.push_back(slot.get());
      batch.tokens.push_back(std::move(next_input[slot->index]));
      batch.caches.push_back(slot->cache.get());
      batch.adapter_slots.push_back(requests[slot->index].adapter_slot);
    }
    if (live.empty()) break;
    at::Tensor logits = model.forward(batch, lora);
    for (size_t row = 0; row < live.size(); ++row) {
      Slot& slot = *live[row];
      int32_t token = slot.sampler.sample(logits[static_cast<int64_t>(row)]);
      accept(slot, token, on_text);
      next_input[slot.index] = {token};
    }
  }

  std::vector<GenerationResult> results;
  for (auto& slot : slots) {
    slot->result.text = std::move(slot->text);
    results.push_back(std::move(slot->result));
  }
  return results;
}

}  // namespace mnemo
