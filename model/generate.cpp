#include "model/generate.h"

#include "model/error.h"
#include "model/kv_cache.h"
#include "model/text_stream.h"
#include "tokenizer/tokenizer.h"
#include "model/transformer.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <memory>

namespace mnemo {
namespace {

// One request's state while it generates.
struct Slot {
  size_t index = 0;
  std::unique_ptr<SequenceCache> cache;
  Sampler sampler;
  TextStream stream;
  GenerationResult result;

  Slot(const Tokenizer& tokenizer, const GenerationParams& params, int64_t max_new_tokens)
      : sampler(params.sampling), stream(tokenizer, params, max_new_tokens) {}
};

}  // namespace

std::vector<GenerationResult> generate(const Transformer& model, const Tokenizer& tokenizer,
                                       const std::vector<GenerationRequest>& requests, const TextCallback& on_text,
                                       const LoraHook* lora) {
  c10::InferenceMode inference_mode;
  const int64_t context = model.config().max_position_embeddings;
  std::vector<std::unique_ptr<Slot>> slots;
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerationRequest& request = requests[i];
    // Which request, when there is more than one to tell apart.
    const std::string which = requests.size() > 1 ? fmt::format("request {}: ", i) : "";
    if (request.prompt.empty()) fail("{}the prompt is empty", which);
    const int64_t prompt_tokens = static_cast<int64_t>(request.prompt.size());
    if (prompt_tokens >= context)
      fail("{}the prompt has {} tokens, but the model's context holds {}", which, prompt_tokens, context);
    const int64_t max_new_tokens = std::min(request.params.max_new_tokens, context - prompt_tokens);
    auto slot = std::make_unique<Slot>(tokenizer, request.params, max_new_tokens);
    slot->index = i;
    if (request.prefix) {
      if (request.prefix->length() >= prompt_tokens)
        fail("{}the prefix cache holds {} tokens, but the prompt has only {}", which, request.prefix->length(),
             prompt_tokens);
      slot->cache = std::make_unique<SequenceCache>(request.prefix->clone(prompt_tokens + max_new_tokens));
    } else {
      slot->cache = std::make_unique<SequenceCache>(model.config(), prompt_tokens + max_new_tokens,
                                                    model.dtype(), model.device());
    }
    slot->result.prompt_tokens = prompt_tokens;
    slots.push_back(std::move(slot));
  }

  // The first step feeds whole prompts, less any cached prefix (batched prefill); later steps feed
  // each live request its last token.
  std::vector<std::vector<int32_t>> next_input(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const int64_t cached = requests[i].prefix ? requests[i].prefix->length() : 0;
    next_input[i].assign(requests[i].prompt.begin() + cached, requests[i].prompt.end());
  }
  using Clock = std::chrono::steady_clock;
  const Clock::time_point started = Clock::now();
  std::optional<Clock::time_point> first_step_done;
  while (true) {
    ForwardBatch batch;
    std::vector<Slot*> live;
    for (auto& slot : slots) {
      if (slot->stream.done()) continue;
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
      std::string piece = slot.stream.accept(token);
      if (on_text && !piece.empty()) on_text(slot.index, piece);
      next_input[slot.index] = {token};
    }
    if (!first_step_done) first_step_done = Clock::now();
  }
  const Clock::time_point finished = Clock::now();

  std::vector<GenerationResult> results;
  for (auto& slot : slots) {
    slot->result.tokens = slot->stream.tokens();
    slot->result.text = slot->stream.text();
    slot->result.finish_reason = slot->stream.finish_reason();
    slot->result.prefill_seconds = std::chrono::duration<double>(first_step_done.value_or(finished) - started).count();
    slot->result.decode_seconds = std::chrono::duration<double>(finished - first_step_done.value_or(finished)).count();
    results.push_back(std::move(slot->result));
  }
  return results;
}

}  // namespace mnemo
