// Multi-adapter LoRA ops: many users' adapters applied in one batch.
//
// Every targeted linear layer computes y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ with each token's
// own adapter. The base GEMM is the model's; these ops add the LoRA term in two
// steps, the way Punica/S-LoRA split it:
//
//   shrink:  v[t, :r]  = x[t, :] · A_stack[slot(t), :r, :]ᵀ             (in → r)
//   expand:  y[t, :]  += scales[slot(t)] · v[t, :r] · B_stack[slot(t), :, :r]ᵀ  (r → out)
//
// where r = ranks[slot(t)]. Two ways to say which token uses which slot:
//   * per token (BGMV, decode):  token_slots int32 [T], −1 = no adapter;
//   * per segment (SGMV, prefill): seg_starts int32 [N+1] (nondecreasing token
//     offsets: segment i is tokens [seg_starts[i], seg_starts[i+1])) and
//     seg_slots int32 [N] (−1 = no adapter). Tokens outside
//     [seg_starts[0], seg_starts[N]) have no adapter.
//
// Shapes and types (REQUIRES, checked with a message naming the tensor):
//   x        [T, in]                 fp32, bf16 or fp16 (fp16: CUDA only)
//   A_stack  [S, r_max, in]          same dtype as x; slot s uses rows [0, ranks[s])
//   B_stack  [S, out, r_max]         same dtype as x; slot s uses columns [0, ranks[s])
//   ranks    [S] int32, 0 ≤ ranks[s] ≤ r_max ≤ 64   (a rank-0 slot adds nothing)
//   scales   [S] float32              (alpha/r, or alpha/sqrt(r) with rsLoRA)
//   v        [T, r_max]              same dtype as x
//   y        [T, out]                same dtype as x
//   slot values in [−1, S); out-of-range slots are an error on CPU and mean
//   "no adapter" on CUDA (the kernels cannot report without a host
//   synchronization, and never read past the stacks). Ranks outside
//   [0, r_max] are an error on CPU and clamped to it on CUDA.
// Any strides are accepted. On CUDA, x, v and y with unit stride along a row
// are read and written in place; other layouts, and A_stack, B_stack or tables
// that are not contiguous, go through a contiguous copy made on the stream (no
// host synchronization, but an extra pass: a non-contiguous stack is copied
// whole on every call). v and y must not overlap themselves (stride-0 rows).
// All tensors live on one device; ranks, scales and the slot tensors too (on
// CUDA that is what keeps the ops free of host synchronization).
//
// Padding: v's columns [ranks[slot(t)], r_max) are zero, and rows of tokens
// without an adapter are zero. Only a slot's own rank is computed: a rank-8
// adapter beside a rank-64 one costs rank-8 work, and the padding rows/columns
// of A_stack/B_stack are never read (they may hold anything, even NaN).
//
// Accumulation is fp32 (CPU bf16 GEMMs accumulate in fp32 too); v is rounded to
// x's dtype between the two steps, as PEFT does with a bf16 lora_A output.
//
// Device dispatch (lora_shrink, lora_expand, …): CPU tensors run the grouped
// CPU reference; CUDA tensors run the CUDA kernels when the project was built
// with CUDA (else a clear error). The CUDA kernels allocate nothing (except
// lora_shrink's returned v — use the _out form inside a CUDA graph — and the
// copies of non-row-addressable tensors above, from the caching allocator) and
// never synchronize with the host, so they can be captured in a CUDA graph.
//
// Autograd: on CPU the ops are built of differentiable ATen ops, so gradients
// flow to x, A_stack, B_stack (and v, y) whenever they require grad — the
// trainer trains A/B through them. On CUDA, when grad mode is on and any input
// requires grad, the dispatcher takes the same grouped ATen path on the GPU
// (differentiable; it reads the slots to the host once) instead of the
// inference kernels. ranks, scales and slots are never differentiated.
//
// Cost on CPU: tokens are grouped by slot (one pass over the slots, read to the
// host), then one GEMM per (slot, step): gather rows, GEMM at the slot's own
// rank, scatter back. Segments need no gather.
#pragma once

#include <ATen/core/Tensor.h>

namespace mnemo {

// ---- Device-dispatching entry points (what the model, server and trainer call).

// Returns v [T, r_max] (new tensor, x's dtype) for per-token slots.
at::Tensor lora_shrink(const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks,
                       const at::Tensor& token_slots);
// Writes v into `v` [T, r_max] (every element: zero where no adapter/padding).
// No allocation on CUDA: the form to capture in a CUDA graph.
void lora_shrink_out(at::Tensor& v, const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks,
                     const at::Tensor& token_slots);
// y += scales[slot]·v[:, :r]·B[slot][:, :r]ᵀ in place, for per-token slots. Rows
// of y whose slot is −1 are not touched.
void lora_expand(at::Tensor& y, const at::Tensor& v, const at::Tensor& B_stack, const at::Tensor& ranks,
                 const at::Tensor& scales, const at::Tensor& token_slots);

// The segment (SGMV) forms: seg_starts int32 [N+1], seg_slots int32 [N].
at::Tensor lora_shrink_segments(const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks,
                                const at::Tensor& seg_starts, const at::Tensor& seg_slots);
void lora_shrink_segments_out(at::Tensor& v, const at::Tensor& x, const at::Tensor& A_stack,
                              const at::Tensor& ranks, const at::Tensor& seg_starts, const at::Tensor& seg_slots);
void lora_expand_segments(at::Tensor& y, const at::Tensor& v, const at::Tensor& B_stack, const at::Tensor& ranks,
                          const at::Tensor& scales, const at::Tensor& seg_starts, const at::Tensor& seg_slots);

// Convenience: y += LoRA(x) = expand(shrink(x)), per-token slots / segments.
void lora_apply(at::Tensor& y, const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& B_stack,
                const at::Tensor& ranks, const at::Tensor& scales, const at::Tensor& token_slots);
void lora_apply_segments(at::Tensor& y, const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& B_stack,
                         const at::Tensor& ranks, const at::Tensor& scales, const at::Tensor& seg_starts,
                         const at::Tensor& seg_slots);

// ---- CPU reference (the test oracle), same signatures. Also accept tensors on
// any device: they are the grouped ATen path (differentiable), and on CUDA they
// read the slots to the host.
at::Tensor lora_shrink_cpu(const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks,
                           const at::Tensor& token_slots);
void lora_shrink_out_cpu(at::Tensor& v, const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks,
                         const at::Tensor& token_slots);
void lora_expand_cpu(at::Tensor& y, const at::Tensor& v, const at::Tensor& B_stack, const at::Tensor& ranks,
                     const at::Tensor& scales, const at::Tensor& token_slots);
at::Tensor lora_shrink_segments_cpu(const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks,
                                    const at::Tensor& seg_starts, const at::Tensor& seg_slots);
void lora_shrink_segments_out_cpu(at::Tensor& v, const at::Tensor& x, const at::Tensor& A_stack,
                                  const at::Tensor& ranks, const at::Tensor& seg_starts,
                                  const at::Tensor& seg_slots);
void lora_expand_segments_cpu(at::Tensor& y, const at::Tensor& v, const at::Tensor& B_stack,
                              const at::Tensor& ranks, const at::Tensor& scales, const at::Tensor& seg_starts,
                              const at::Tensor& seg_slots);

// Whether this build has the CUDA kernels (MNEMO_WITH_CUDA).
bool lora_cuda_kernels_available();

}  // namespace mnemo
