#include "eval/retention.h"

#include "model/error.h"
#include "model/kv_cache.h"
#include "model/transformer.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <memory>

namespace mnemo {

std::vector<double> perplexities(const Transformer& model, const std::vector<int32_t>& tokens,
                                 const std::vector<int32_t>& slots, const LoraHook* lora, int64_t window_tokens) {
  MNEMO_CHECK(window_tokens >= 2, "window of {} tokens", window_tokens);
  if (tokens.size() < 2) fail("retention: the text has fewer than two tokens");
  c10::InferenceMode inference_mode;
  window_tokens = std::min(window_tokens, model.config().max_position_embeddings);
  std::vector<std::vector<int32_t>> windows;
  for (size_t start = 0; start + 1 < tokens.size(); start += static_cast<size_t>(window_tokens))
    windows.emplace_back(tokens.begin() + start,
                         tokens.begin() + std::min(tokens.size(), start + static_cast<size_t>(window_tokens)));
  if (windows.size() > 1 && windows.back().size() < 2) windows.pop_back();

  std::vector<double> result;
  for (int32_t slot : slots) {
    double nll = 0;
    int64_t predicted = 0;
    for (const std::vector<int32_t>& window : windows) {
      SequenceCache cache(model.config(), static_cast<int64_t>(window.size()), model.dtype(), model.device());
      ForwardBatch batch;
      batch.tokens = {window};
      batch.caches = {&cache};
      batch.adapter_slots = {slot};
      batch.all_logits = true;
      at::Tensor logits = model.forward(batch, slot >= 0 ? lora : nullptr);  // [n, vocab] float32
      const int64_t n = static_cast<int64_t>(window.size());
      at::Tensor targets = at::tensor(std::vector<int64_t>(window.begin() + 1, window.end()), at::kLong)
                               .to(logits.device());
      at::Tensor log_probs = at::log_softmax(logits.narrow(0, 0, n - 1), -1);
      nll -= log_probs.gather(1, targets.unsqueeze(1)).sum().item<double>();
      predicted += n - 1;
    }
    result.push_back(std::exp(nll / static_cast<double>(predicted)));
  }
  return result;
}

}  // namespace mnemo
