// One optimizer step over a batch that mixes users: the frozen base runs once
// over every sequence, each sequence's LoRA from its own user's adapter slot
// (adapters/adapter_slots.h), and AdamW updates only the adapters.
//
// Users never touch each other's weights: the loss is a sum of per-user
// means (so a user's gradient is what it would be alone), gradient clipping
// is per slot, and AdamW is elementwise. A user trained in a batch with
// others therefore ends where it would end alone, within floating point.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace mnemo {

class Transformer;
class AdapterSlots;

// One training sequence: `tokens`, and for each position i < size-1 the
// weight of predicting tokens[i+1] (0 = no loss there, e.g. the prompt).
// `kl_weights` (empty, or tokens.size() - 1 entries) weigh a KL penalty
// KL(base || adapted) between the frozen base's next-token distribution and
// the adapted model's at each position: retention, the adapter held to the
// assistant the base was.
struct TrainingSequence {
  std::vector<int32_t> tokens;
  std::vector<float> target_weights;  // tokens.size() - 1 entries
  std::vector<float> kl_weights;      // empty or tokens.size() - 1 entries
  int32_t slot = 0;                   // the user's adapter slot
  // A sequence that recurs (one of the retention bank's): the key its base
  // distributions are kept under in a TeacherCache; -1 = not kept.
  int32_t teacher_key = -1;
};

// The frozen base's side of the KL penalty for sequences that recur across
// steps and users (the retention bank). Per sequence, the base's final
// hidden states at its KL positions ([positions, hidden], a 100th of the
// logits' size), computed once and alone, so they do not depend on what
// shares a batch; each later use costs the LM head instead of a forward of
// the base. One per training run, shared by its optimizers.
struct TeacherCache {
  struct Entry {
    std::vector<int32_t> tokens;
    std::vector<float> kl_weights;
    at::Tensor hidden;
  };
  std::vector<Entry> by_key;  // index: teacher_key
  int64_t forwards = 0;       // sequences the base has run for the cache
};

struct OptimizerConfig {
  double learning_rate = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  double weight_decay = 0.0;
  int64_t warmup_steps = 0;  // linear warmup from 0
  int64_t total_steps = 0;   // cosine decay to 0 over the rest; 0 = constant after warmup
  double max_grad_norm = 0;  // per slot; 0 = no clipping
  double kl_weight = 1.0;    // a slot's loss = its weighted cross-entropy mean + kl_weight · its KL mean
};

struct StepResult {
  std::vector<double> loss_by_slot;  // mean weighted cross-entropy of each slot in the batch (NaN where absent)
  std::vector<double> kl_by_slot;    // mean weighted KL to the base of each slot (NaN where it has none)
  double learning_rate = 0;
};

// One slot's AdamW moments, one tensor per trained parameter (every targeted
// module's A then B, layer by layer: the optimizer's own order), without the
// slot dimension: what a checkpoint keeps so training goes on exactly.
struct SlotMoments {
  std::vector<at::Tensor> exp_avg, exp_avg_sq;
};

class AdapterOptimizer {
 public:
  // Trains every loaded slot of `slots` (which becomes trainable: autograd
  // leaves). Sequences with a teacher_key keep their base distributions in
  // `teacher_cache` (when given). REQUIRES: `model`, `slots` and
  // `teacher_cache` outlive this; float32 stacks.
  AdapterOptimizer(const Transformer& model, AdapterSlots& slots, OptimizerConfig config,
                   TeacherCache* teacher_cache = nullptr);
  ~AdapterOptimizer();

  // One forward, backward and AdamW step over `batch`. Every trained slot
  // should have a sequence in every step: AdamW moves a slot whose gradient
  // is zero by its momentum (and weight decay), as it would any parameter.
  // Throws mnemo::Error
  // for a sequence shorter than 2 tokens, weights of the wrong length, a
  // slot out of range, or a teacher_key the cache holds for other tokens.
  StepResult step(const std::vector<TrainingSequence>& batch);

  int64_t steps_taken() const;
  // Slot `slot`'s moments (zeros before the first step), on the CPU.
  SlotMoments moments(int32_t slot) const;
  // Puts the optimizer where it was after `steps_taken` steps with these
  // moments (by_slot[slot]; an empty SlotMoments leaves that slot's zero).
  // Every slot shares the step count, so slots resumed together must have
  // stopped at the same step. Throws mnemo::Error for moments of the wrong
  // count or shape. REQUIRES: no step taken yet.
  void restore(int64_t steps_taken, const std::vector<SlotMoments>& by_slot);
  // The learning rate the schedule gives step `step` (0-based).
  double learning_rate_at(int64_t step) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace mnemo
