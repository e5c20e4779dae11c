// Device dispatch of the multi-adapter LoRA ops (lora_ops.h): CPU tensors go
// to the grouped reference (lora_cpu.cpp), CUDA tensors to the kernels
// (lora_cuda.cu) after the checks the kernels rely on.
//
// CUDA tensors take the grouped ATen path instead of the kernels when
//   * grad mode is on and an input requires grad (the kernels have no
//     backward; the grouped path is differentiable — the trainer's case), or
//   * the dtype is float32 (the kernels are bf16/fp16 by design).
// That path reads the slot tables to the host, so it is not graph-capturable.
#include "kernels/lora_ops.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#if MNEMO_WITH_CUDA
#include <ATen/MemoryOverlap.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "kernels/lora_cuda.h"
#endif

namespace mnemo {
namespace lora_detail {  // defined in lora_cpu.cpp
void check_shrink_args(const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks);
void check_expand_args(const at::Tensor& y, const at::Tensor& v, const at::Tensor& B_stack, const at::Tensor& ranks,
                       const at::Tensor& scales);
void check_token_slots(const at::Tensor& token_slots, int64_t n_tokens);
void check_segments(const at::Tensor& seg_starts, const at::Tensor& seg_slots);
}  // namespace lora_detail

namespace {

using namespace lora_detail;

[[maybe_unused]] bool any_requires_grad(std::initializer_list<const at::Tensor*> tensors) {
  if (!at::GradMode::is_enabled()) return false;
  for (const at::Tensor* t : tensors)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

// Whether the CUDA kernels take this call (else the grouped ATen path does).
bool use_cuda_kernels(const at::Tensor& lead, std::initializer_list<const at::Tensor*> differentiable) {
  if (!lead.is_cuda()) return false;
#if MNEMO_WITH_CUDA
  if (lead.scalar_type() == at::kFloat) return false;
  return !any_requires_grad(differentiable);
#else
  TORCH_CHECK(false, "lora: got CUDA tensors but this build of mnemo has no CUDA kernels "
                     "(configure with nvcc present and without -DMNEMO_DISABLE_CUDA=ON), or move the tensors to CPU");
  return false;
#endif
}

#if MNEMO_WITH_CUDA
// Whether the kernels can address t [rows, columns] in place: a base pointer
// and a row stride, unit stride along a row (lora_cuda.h).
bool rows_addressable(const at::Tensor& t) {
  return (t.size(1) <= 1 || t.stride(1) == 1) && (t.size(0) <= 1 || t.stride(0) >= 0);
}

// An input as the kernels can read it: itself, or a contiguous copy. The copy
// is one more kernel on the current stream from the caching allocator, so a
// call stays free of host synchronization and capturable in a CUDA graph; the
// copy must outlive the launch, so callers hold the returned tensor.
at::Tensor readable_rows(const at::Tensor& t) { return rows_addressable(t) ? t : t.contiguous(); }

lora_cuda::ElementType element_type(const at::Tensor& t) {
  return t.scalar_type() == at::kHalf ? lora_cuda::ElementType::Float16 : lora_cuda::ElementType::BFloat16;
}

// The slot tables must be contiguous (callers pass .contiguous() and keep it).
lora_cuda::SlotMap token_map(const at::Tensor& token_slots) {
  TORCH_INTERNAL_ASSERT(token_slots.is_contiguous());
  lora_cuda::SlotMap map;
  map.token_slots = token_slots.data_ptr<int32_t>();
  return map;
}

lora_cuda::SlotMap segment_map(const at::Tensor& seg_starts, const at::Tensor& seg_slots) {
  TORCH_INTERNAL_ASSERT(seg_starts.is_contiguous() && seg_slots.is_contiguous());
  lora_cuda::SlotMap map;
  map.seg_starts = seg_starts.data_ptr<int32_t>();
  map.seg_slots = seg_slots.data_ptr<int32_t>();
  map.n_segments = seg_slots.size(0);
  return map;
}

void cuda_shrink(at::Tensor& v, const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks_in,
                 const lora_cuda::SlotMap& map) {
  TORCH_CHECK(v.dim() == 2 && v.size(0) == x.size(0) && v.size(1) == A_stack.size(1), "lora shrink: v must be [",
              x.size(0), ", ", A_stack.size(1), "], got ", v.sizes());
  TORCH_CHECK(v.scalar_type() == x.scalar_type(), "lora shrink: v dtype ", v.scalar_type(), " != x dtype ",
              x.scalar_type());
  TORCH_CHECK(v.device() == x.device(), "lora shrink: v is on ", v.device(), ", x on ", x.device());
  at::assert_no_internal_overlap(v);
  if (x.size(0) == 0) return;
  c10::cuda::CUDAGuard guard(x.device());
  if (!rows_addressable(v)) {  // written through a dense buffer, then copied in
    at::Tensor dense = at::empty(v.sizes(), v.options());
    cuda_shrink(dense, x, A_stack, ranks_in, map);
    v.copy_(dense);
    return;
  }
  const at::Tensor x_rows = readable_rows(x);
  const at::Tensor A = A_stack.contiguous();
  const at::Tensor ranks = ranks_in.contiguous();
  lora_cuda::ShrinkArgs args;
  args.x = x_rows.data_ptr();
  args.x_stride = x_rows.stride(0);
  args.A = A.data_ptr();
  args.v = v.data_ptr();
  args.v_stride = v.stride(0);
  args.ranks = ranks.data_ptr<int32_t>();
  args.map = map;
  args.map.n_slots = A.size(0);
  args.n_tokens = x.size(0);
  args.in_features = x.size(1);
  args.r_max = A.size(1);
  args.type = element_type(x);
  const char* error = lora_cuda::launch_lora_shrink(args, c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(error == nullptr, "lora shrink: CUDA kernel launch failed: ", error);
}

void cuda_expand(at::Tensor& y, const at::Tensor& v_in, const at::Tensor& B_stack, const at::Tensor& ranks_in,
                 const at::Tensor& scales_in, const lora_cuda::SlotMap& map) {
  at::assert_no_internal_overlap(y);
  if (y.size(0) == 0) return;
  c10::cuda::CUDAGuard guard(y.device());
  if (!rows_addressable(y)) {  // updated in a dense copy, then copied back
    at::Tensor dense = y.contiguous();
    cuda_expand(dense, v_in, B_stack, ranks_in, scales_in, map);
    y.copy_(dense);
    return;
  }
  const at::Tensor v = readable_rows(v_in);
  const at::Tensor B = B_stack.contiguous();
  const at::Tensor ranks = ranks_in.contiguous();
  const at::Tensor scales = scales_in.contiguous();
  lora_cuda::ExpandArgs args;
  args.y = y.data_ptr();
  args.y_stride = y.stride(0);
  args.v = v.data_ptr();
  args.v_stride = v.stride(0);
  args.B = B.data_ptr();
  args.ranks = ranks.data_ptr<int32_t>();
  args.scales = scales.data_ptr<float>();
  args.map = map;
  args.map.n_slots = B.size(0);
  args.n_tokens = y.size(0);
  args.out_features = y.size(1);
  args.r_max = B.size(2);
  args.type = element_type(y);
  const char* error = lora_cuda::launch_lora_expand(args, c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(error == nullptr, "lora expand: CUDA kernel launch failed: ", error);
}
#endif

}  // namespace

bool lora_cuda_kernels_available() {
#if MNEMO_WITH_CUDA
  return true;
#else
  return false;
#endif
}

void lora_shrink_out(at::Tensor& v, const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks,
                     const at::Tensor& token_slots) {
  if (!use_cuda_kernels(x, {&x, &A_stack, &v})) return lora_shrink_out_cpu(v, x, A_stack, ranks, token_slots);
#if MNEMO_WITH_CUDA
  check_shrink_args(x, A_stack, ranks);
  check_token_slots(token_slots, x.size(0));
  TORCH_CHECK(token_slots.device() == x.device(), "lora shrink: token_slots is on ", token_slots.device(),
              ", x on ", x.device());
  const at::Tensor slots = token_slots.contiguous();
  cuda_shrink(v, x, A_stack, ranks, token_map(slots));
#endif
}

at::Tensor lora_shrink(const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks,
                       const at::Tensor& token_slots) {
  if (!use_cuda_kernels(x, {&x, &A_stack})) return lora_shrink_cpu(x, A_stack, ranks, token_slots);
  check_shrink_args(x, A_stack, ranks);
  at::Tensor v = at::empty({x.size(0), A_stack.size(1)}, x.options());
  lora_shrink_out(v, x, A_stack, ranks, token_slots);
  return v;
}

void lora_expand(at::Tensor& y, const at::Tensor& v, const at::Tensor& B_stack, const at::Tensor& ranks,
                 const at::Tensor& scales, const at::Tensor& token_slots) {
  if (!use_cuda_kernels(y, {&y, &v, &B_stack})) return lora_expand_cpu(y, v, B_stack, ranks, scales, token_slots);
#if MNEMO_WITH_CUDA
  check_expand_args(y, v, B_stack, ranks, scales);
  check_token_slots(token_slots, y.size(0));
  TORCH_CHECK(token_slots.device() == y.device(), "lora expand: token_slots is on ", token_slots.device(),
              ", y on ", y.device());
  const at::Tensor slots = token_slots.contiguous();
  cuda_expand(y, v, B_stack, ranks, scales, token_map(slots));
#endif
}

void lora_shrink_segments_out(at::Tensor& v, const at::Tensor& x, const at::Tensor& A_stack,
                              const at::Tensor& ranks, const at::Tensor& seg_starts, const at::Tensor& seg_slots) {
  if (!use_cuda_kernels(x, {&x, &A_stack, &v}))
    return lora_shrink_segments_out_cpu(v, x, A_stack, ranks, seg_starts, seg_slots);
#if MNEMO_WITH_CUDA
  check_shrink_args(x, A_stack, ranks);
  check_segments(seg_starts, seg_slots);
  TORCH_CHECK(seg_starts.device() == x.device() && seg_slots.device() == x.device(),
              "lora shrink: seg_starts/seg_slots must be on ", x.device());
  const at::Tensor starts = seg_starts.contiguous(), slots = seg_slots.contiguous();
  cuda_shrink(v, x, A_stack, ranks, segment_map(starts, slots));
#endif
}

at::Tensor lora_shrink_segments(const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks,
                                const at::Tensor& seg_starts, const at::Tensor& seg_slots) {
  if (!use_cuda_kernels(x, {&x, &A_stack}))
    return lora_shrink_segments_cpu(x, A_stack, ranks, seg_starts, seg_slots);
  check_shrink_args(x, A_stack, ranks);
  at::Tensor v = at::empty({x.size(0), A_stack.size(1)}, x.options());
  lora_shrink_segments_out(v, x, A_stack, ranks, seg_starts, seg_slots);
  return v;
}

void lora_expand_segments(at::Tensor& y, const at::Tensor& v, const at::Tensor& B_stack, const at::Tensor& ranks,
                          const at::Tensor& scales, const at::Tensor& seg_starts, const at::Tensor& seg_slots) {
  if (!use_cuda_kernels(y, {&y, &v, &B_stack}))
    return lora_expand_segments_cpu(y, v, B_stack, ranks, scales, seg_starts, seg_slots);
#if MNEMO_WITH_CUDA
  check_expand_args(y, v, B_stack, ranks, scales);
  check_segments(seg_starts, seg_slots);
  TORCH_CHECK(seg_starts.device() == y.device() && seg_slots.device() == y.device(),
              "lora expand: seg_starts/seg_slots must be on ", y.device());
  const at::Tensor starts = seg_starts.contiguous(), slots = seg_slots.contiguous();
  cuda_expand(y, v, B_stack, ranks, scales, segment_map(starts, slots));
#endif
}

void lora_apply(at::Tensor& y, const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& B_stack,
                const at::Tensor& ranks, const at::Tensor& scales, const at::Tensor& token_slots) {
  at::Tensor v = lora_shrink(x, A_stack, ranks, token_slots);
  lora_expand(y, v, B_stack, ranks, scales, token_slots);
}

void lora_apply_segments(at::Tensor& y, const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& B_stack,
                         const at::Tensor& ranks, const at::Tensor& scales, const at::Tensor& seg_starts,
                         const at::Tensor& seg_slots) {
  at::Tensor v = lora_shrink_segments(x, A_stack, ranks, seg_starts, seg_slots);
  lora_expand_segments(y, v, B_stack, ranks, scales, seg_starts, seg_slots);
}

}  // namespace mnemo
