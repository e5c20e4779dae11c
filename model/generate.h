// Text generation over a batch of requests: one batched prefill of every
// prompt, then one batched decode step per token until each request meets a
// stop token, a stop string or its token limit. Text streams out through a
// callback as it becomes final (never a broken UTF-8 character, never the
// start of what may turn out to be a stop string).
#pragma once

#include "model/sampling.h"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo {

class Transformer;
class Tokenizer;
class LoraHook;
class SequenceCache;

struct GenerationParams {
  int64_t max_new_tokens = 256;
  SamplingParams sampling;
  std::vector<std::string> stop_strings;  // generation ends before the first match; it is not returned
  std::vector<int32_t> stop_token_ids;    // usually the model's end-of-turn/eos ids; not returned
};

struct GenerationRequest {
  std::vector<int32_t> prompt;
  GenerationParams params;
  int32_t adapter_slot = -1;  // for the LoRA hook; -1 = base model
  // Optional: a cache that already holds the first prefix->length() tokens of
  // `prompt`, computed with the same adapter slot (a history shared by many
  // questions). It is copied, never changed; only the rest of the prompt is
  // prefilled. REQUIRES: prefix->length() < prompt.size(). Not owned.
  const SequenceCache* prefix = nullptr;
};

enum class FinishReason { Stop, Length };

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated tokens, stop token excluded
  std::string text;             // decoded, cut before a stop string
  FinishReason finish_reason = FinishReason::Length;
  int64_t prompt_tokens = 0;
  // Wall time of the batch's first step (the prompts and the first token) and
  // of the steps after it (one token each); shared by a batch's requests.
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

// Called with each request's index and the next piece of its final text.
using TextCallback = std::function<void(size_t request, std::string_view text)>;

// REQUIRES: non-empty prompts. Throws mnemo::Error for a prompt that leaves no
// room in the model's context or invalid sampling parameters; max_new_tokens
// is cut to the room the context leaves.
std::vector<GenerationResult> generate(const Transformer& model, const Tokenizer& tokenizer,
                                       const std::vector<GenerationRequest>& requests,
                                       const TextCallback& on_text = {}, const LoraHook* lora = nullptr);

}  // namespace mnemo
