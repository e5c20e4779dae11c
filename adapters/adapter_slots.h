// Adapter slots: many LoRA adapters resident at once, stacked so that one
// multi-adapter op (kernels/lora_ops.h) applies every token's own adapter in
// a batch. This is the model's LoraHook for generation, the server's device
// slot tier and the trainer's trainable parameters.
//
// Layout, per layer and module (q_proj … down_proj):
//   A_stack [S, r_max, in], B_stack [S, out, r_max]  in the model's dtype and device
// and, shared by all layers,
//   ranks[module] int32 [S]  the slot's rank for that module (0 where the slot is
//                            empty or its adapter does not target the module)
//   scales        float [S]  alpha/r (alpha/sqrt(r) with rsLoRA)
// A slot keeps its adapter's own rank: the ops compute rank-8 work for a
// rank-8 adapter even when r_max is 64, and never read the padding.
//
// r_max starts at `rank_capacity` and grows to the next multiple of 8 (the
// CUDA kernels' vector width; padding costs no work) when an adapter of a
// larger rank is loaded, reallocating the stacks of every module; a module's
// stacks exist only once some loaded adapter targets it, so modules nobody
// targets cost nothing. A server that captures CUDA graphs passes rank_capacity = 64 and
// targets all modules up front (prepare_all_modules) so no tensor ever moves.
//
// Thread safety: none. load/unload must not run concurrently with apply.
#pragma once

#include "adapters/lora_adapter.h"
#include "model/config.h"
#include "model/transformer.h"

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <vector>

namespace mnemo {

// How a CPU batch without prefill segments (a decode step) applies the
// adapters: one small GEMM per distinct slot (the grouped reference), or one
// pass per token over its own adapter's rows (kernels/lora_cpu_per_token.h).
// bench/lora_cpu runs both side by side. PerToken (the default) takes the
// per-token pass when the batch's adapted tokens are at most 4 per distinct
// adapter, and the grouped GEMMs when many tokens share an adapter.
enum class CpuDecodePath { Grouped, PerToken };

class AdapterSlots : public LoraHook {
 public:
  // REQUIRES: num_slots ≥ 1, 0 ≤ rank_capacity ≤ 64.
  AdapterSlots(ModelConfig model_config, int64_t num_slots, at::ScalarType dtype, at::Device device,
               int64_t rank_capacity = 0);

  // Copies `adapter` into `slot` (converted to the slots' dtype and device),
  // replacing what was there. Throws mnemo::Error when the adapter does not fit
  // the model (validate_against) or the slot is out of range.
  void load(int32_t slot, const LoraAdapter& adapter);
  // Empties `slot`: its tokens then run on the base model.
  void unload(int32_t slot);
  bool loaded(int32_t slot) const;

  // Reads `slot` back as an adapter (CPU, float32): what a trainer saves
  // after training the stacks. REQUIRES: the slot is loaded.
  LoraAdapter extract(int32_t slot) const;

  // Allocates every module's stacks now (see the file comment).
  void prepare_all_modules();

  // For training: the stacks become autograd leaves (requires_grad), so a
  // forward through apply() gives gradients in A_stack/B_stack; each slot's
  // gradient lives in its own rows [0, rank) (padding gets zero gradient).
  void set_requires_grad(bool requires_grad);
  // Defined only for modules some loaded adapter targets (or after prepare_all_modules).
  const at::Tensor& a_stack(int64_t layer, LinearModule module) const;
  const at::Tensor& b_stack(int64_t layer, LinearModule module) const;
  const at::Tensor& ranks(LinearModule module) const { return ranks_[static_cast<int>(module)]; }
  const at::Tensor& scales() const { return scales_; }

  void set_cpu_decode_path(CpuDecodePath path) { cpu_decode_path_ = path; }

  int64_t num_slots() const { return num_slots_; }
  int64_t max_rank() const { return rank_capacity_; }

  // LoraHook: y += scale·(x·Aᵀ)·Bᵀ per token, with the adapter in its slot;
  // by segments when the routing has them (prefill), else per token.
  void apply(int64_t layer, LinearModule module, const at::Tensor& x, at::Tensor& y,
             const LoraRouting& routing) const override;

 private:
  void ensure_module(LinearModule module);
  void grow_rank(int64_t rank);
  bool keeps_transposed() const;
  bool copy_on_cpu(LoraPair& stack, at::Tensor& transposed, int32_t slot, const LoraPair& pair) const;
  void rebuild_transposed();

  ModelConfig model_config_;
  int64_t num_slots_;
  at::ScalarType dtype_;
  at::Device device_;
  int64_t rank_capacity_;
  bool requires_grad_ = false;
  CpuDecodePath cpu_decode_path_ = CpuDecodePath::PerToken;
  // stacks_[layer][module]: {A_stack, B_stack}; undefined until a module is targeted.
  std::vector<std::array<LoraPair, kLinearModuleCount>> stacks_;
  // CPU serving only: Bᵀ per layer and module, [S, r_max, out], for the
  // per-token decode path; rewritten with every load and whenever the slots
  // stop being trainable (an optimizer changes B behind the slots' back).
  std::vector<std::array<at::Tensor, kLinearModuleCount>> transposed_b_;
  std::array<at::Tensor, kLinearModuleCount> ranks_;  // int32 [S] each
  at::Tensor scales_;                                 // float32 [S]
  std::vector<LoraConfig> slot_configs_;              // rank 0 = empty slot
};

}  // namespace mnemo
