// The per-token CPU path of the multi-adapter LoRA op for inference decode:
// y += scales[s]·(x·A[s][:r]ᵀ)·B[s][:, :r]ᵀ with s = token_slots[t], computed
// row by row without grouping, gathering or any intermediate tensor.
//
// Why a second CPU path beside the grouped reference (lora_cpu.cpp): in a
// decode step every token may have its own adapter, so the grouped path runs
// one tiny GEMM (plus a gather and a scatter) per distinct adapter, per layer
// and module, and its cost is call overhead, not bytes: on a 512-wide model it
// took 1.78× the base step at 32 adapters. Here each token's adapter rows are
// read once, straight from the stacks, in one parallel loop per step: the cost
// is the adapter bytes. bench/lora_cpu measures both; the adapter slots use
// this one for CPU inference batches without prefill segments.
//
// The contract of lora_apply (kernels/lora_ops.h), CPU only, float32 or
// bfloat16, no autograd, with one difference: B comes transposed,
// Bt_stack [S, r_max, out] (row j of a slot is column j of its B), so the
// expand is r vectorized multiply-adds along the output row instead of one
// short dot product (and its horizontal sum) per output element; the adapter
// slots keep that copy for CPU serving. Accumulates in float32 and rounds v
// to x's dtype between the two steps, as the reference does.
#pragma once

#include <ATen/core/Tensor.h>

namespace mnemo {

void lora_apply_per_token_cpu(at::Tensor& y, const at::Tensor& x, const at::Tensor& A_stack,
                              const at::Tensor& Bt_stack, const at::Tensor& ranks, const at::Tensor& scales,
                              const at::Tensor& token_slots);

}  // namespace mnemo
