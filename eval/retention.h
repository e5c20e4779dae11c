// Retention: whether an adapter left the model the assistant it was, measured
// as perplexity on a generic English text written for this purpose and
// shipped in the repository (eval/retention_text.txt, compiled in), with and
// without the adapter.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace mnemo {

class Transformer;
class LoraHook;

// The shipped text (about 6,000 words of ordinary English prose).
std::string_view retention_text();

// exp(mean negative log-likelihood) of `tokens`, cut into consecutive
// windows of `window_tokens` that each start from an empty context (every
// token but each window's first is predicted). With `lora`, runs the model
// with adapter slot `slot` (one of `slots`, several windows or adapters per
// forward). Returns one perplexity per slot, in order; slot -1 is the base.
std::vector<double> perplexities(const Transformer& model, const std::vector<int32_t>& tokens,
                                 const std::vector<int32_t>& slots, const LoraHook* lora,
                                 int64_t window_tokens = 1024);

}  // namespace mnemo
