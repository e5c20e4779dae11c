// The Llama-family decoder (Llama, Mistral, Qwen2, Qwen3): embedding, N blocks
// of RMSNorm → GQA attention with RoPE → RMSNorm → SwiGLU MLP, final norm, LM
// head. Sequences of different lengths run in one batch: their new tokens are
// packed into one [tokens, hidden] matrix for every linear layer (so a LoRA
// op can tag each row with its adapter slot), and attention runs per sequence
// over its own KV cache.
#pragma once

#include "model/config.h"
#include "model/weights.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace mnemo {

class SequenceCache;
struct PagedBatch;
class LoraHook;
struct LoraRouting;

struct ForwardBatch {
  std::vector<std::vector<int32_t>> tokens;  // new tokens of each sequence (none empty)
  std::vector<SequenceCache*> caches;        // one per sequence; its length is the sequence's past
  // Optional: an adapter slot per sequence (-1 = base model) for `lora`.
  std::vector<int32_t> adapter_slots;
  // Logits of every new token (prefill parity) or only each sequence's last
  // token (generation).
  bool all_logits = false;
  // When not empty: logits of only these rows of the new tokens (numbered
  // across the batch in order), in this order; all_logits is then ignored.
  // Training asks for the rows that carry a loss: the vocabulary projection
  // of every token is a large share of a step's time and memory.
  std::vector<int64_t> logit_rows;
  // Return the final norm's output at those rows ([rows, hidden], the
  // model's dtype) instead of their logits: what project_vocab turns into
  // logits later, at a 100th of the vocabulary's memory for the trainer's
  // cached teacher (trainer/adapter_optimizer.h: TeacherCache).
  bool final_hidden = false;
};

class Transformer {
 public:
  Transformer(ModelConfig config, ModelWeights weights);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  at::ScalarType dtype() const;
  at::Device device() const;

  // Runs the new tokens of every sequence, appends them to the caches, and
  // returns float32 logits: [logit_rows, vocab] with logit_rows, [sum of new
  // tokens, vocab] with all_logits, else [sequences, vocab]. REQUIRES: one cache per sequence, token ids in the
  // vocabulary (checked), `lora` (may be null) prepared for `adapter_slots`.
  at::Tensor forward(const ForwardBatch& batch, const LoraHook* lora = nullptr) const;
  // float32 logits of final-norm outputs ([rows, hidden], from a forward
  // with final_hidden): the LM head alone.
  at::Tensor project_vocab(const at::Tensor& final_hidden) const;

 private:
  at::Tensor attention(int64_t layer, const at::Tensor& hidden,
                       const std::vector<int64_t>& pasts, const ForwardBatch& batch, const at::Tensor& cos,
                       const at::Tensor& sin, const LoraHook* lora, const LoraRouting& routing,
                       const PagedBatch* paged) const;
  at::Tensor mlp(int64_t layer, const at::Tensor& hidden, const LoraHook* lora, const LoraRouting& routing) const;

  ModelConfig config_;
  ModelWeights weights_;
  at::Tensor inv_freq_;  // [head_dim / 2] float32, RoPE frequencies (llama3 scaling applied)
};

// Which linear layer of a block, for a LoRA hook.
enum class LinearModule { Q, K, V, O, Gate, Up, Down };

// Which adapter slot each packed token of a forward batch uses (-1: none), in
// the two forms of the multi-adapter ops (kernels/lora_ops.h): always per
// token (BGMV), and for a batch with prefill also per sequence as segments of
// consecutive tokens (SGMV), which need no gather. int32, on the model's device.
struct LoraRouting {
  at::Tensor token_slots;  // [T]
  at::Tensor seg_starts;   // [sequences + 1] token offsets; undefined in a decode-only batch
  at::Tensor seg_slots;    // [sequences]
};

// The LoRA hook: adds each token's adapter delta to a linear layer's output.
// The model calls it after every targeted base GEMM; the LoRA code implements it.
class LoraHook {
 public:
  virtual ~LoraHook() = default;
  // y[T, out] += delta for the tokens whose slot is >= 0.
  virtual void apply(int64_t layer, LinearModule module, const at::Tensor& x, at::Tensor& y,
                     const LoraRouting& routing) const = 0;
};

}  // namespace mnemo
