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
void check_rows(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.size(1) <= 1 || t.stride(1) == 1, "lora (CUDA): ", name,
              " needs unit stride in its last dimension, got strides ", t.strides());
  TORCH_CHECK(t.size(0) <= 1 || t.stride(0) >= 0, "lora (CUDA): ", name, " has a negative row stride");
}

void check_contiguous(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.is_contiguous(), "lora (CUDA): ", name, " must be contiguous, got strides ", t.strides());
}

lora_cuda::ElementType element_type(const at::Tensor& t) {
  return t.scalar_type() == at::kHalf ? lora_cuda::ElementType::Float16 : lora_cuda::ElementType::BFloat16;
}

lora_cuda::SlotMap token_map(const at::Tensor& token_slots) {
  check_contiguous(token_slots, "token_slots");
  lora_cuda::SlotMap map;
  map.token_slots = token_slots.data_ptr<int32_t>();
  return map;
}

lora_cuda::SlotMap segment_map(const at::Tensor& seg_starts, const at::Tensor& seg_slots) {
  check_contiguous(seg_starts, "seg_starts");
  check_contiguous(seg_slots, "seg_slots");
  lora_cuda::SlotMap map;
  map.seg_starts = seg_starts.data_ptr<int32_t>();
  map.seg_slots = seg_slots.data_ptr<int32_t>();
  map.n_segments = seg_slots.size(0);
  return map;
}

void cuda_shrink(at::Tensor& v, const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks,
                 const lora_cuda::SlotMap& map) {
  TORCH_CHECK(v.dim() == 2 && v.size(0) == x.size(0) && v.size(1) == A_stack.size(1), "lora shrink: v must be [",
              x.size(0), ", ", A_stack.size(1), "], got ", v.sizes());
  TORCH_CHECK(v.scalar_type() == x.scalar_type(), "lora shrink: v dtype ", v.scalar_type(), " != x dtype ",
              x.scalar_type());
  TORCH_CHECK(v.device() == x.device(), "lora shrink: v is on ", v.device(), ", x on ", x.device());
  check_rows(x, "x");
  check_rows(v, "v");
  check_contiguous(A_stack, "A_stack");
  check_contiguous(ranks, "ranks");
  if (x.size(0) == 0) return;
  c10::cuda::CUDAGuard guard(x.device());
  lora_cuda::ShrinkArgs args;
  args.x = x.data_ptr();
  args.x_stride = x.stride(0);
  args.A = A_stack.data_ptr();
  args.v = v.data_ptr();
  args.v_stride = v.stride(0);
  args.ranks = ranks.data_ptr<int32_t>();
  args.map = map;
  args.n_tokens = x.size(0);
  args.in_features = x.size(1);
  args.r_max = A_stack.size(1);
  args.type = element_type(x);
  const char* error = lora_cuda::launch_lora_shrink(args, c10::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(error == nullptr, "lora shrink: CUDA kernel launch failed: ", error);
}

void cuda_expand(at::Tensor& y, const at::Tensor& v, const at::Tensor& B_stack, const at::Tensor& ranks,
                 const at::Tensor& scales, const lora_cuda::SlotMap& map) {
  check_rows(y, "y");
  check_rows(v, "v");
  check_contiguous(B_stack, "B_stack");
  check_contiguous(ranks, "ranks");
  check_contiguous(scales, "scales");
  if (y.size(0) == 0) return;
  c10::cuda::CUDAGuard guard(y.device());
  lora_cuda::ExpandArgs args;
  args.y = y.data_ptr();
  args.y_stride = y.stride(0);
  args.v = v.data_ptr();
  args.v_stride = v.stride(0);
  args.B = B_stack.data_ptr();
  args.ranks = ranks.data_ptr<int32_t>();
  args.scales = scales.data_ptr<float>();
  args.map = map;
  args.n_tokens = y.size(0);
  args.out_features = y.size(1);
  args.r_max = B_stack.size(2);
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
  cuda_shrink(v, x, A_stack, ranks, token_map(token_slots));
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
  cuda_expand(y, v, B_stack, ranks, scales, token_map(token_slots));
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
  cuda_shrink(v, x, A_stack, ranks, segment_map(seg_starts, seg_slots));
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
  cuda_expand(y, v, B_stack, ranks, scales, segment_map(seg_starts, seg_slots));
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
