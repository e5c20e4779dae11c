// y = x · Wᵀ for the few rows of a decode step, float32 on the CPU, written
// by hand because LibTorch's path for these shapes (MKL's small-M SGEMM) is
// slow: on this project's 2-core CPU a 1536×576 product took 169 µs at 8
// rows against 78 µs at 1, and the default model decoded 116 tok/s at batch
// 8 where llama.cpp's own kernels reached 139 (bench/forward). MKL's
// packed-weight GEMM (mkl::_mkl_linear) halves that, but only for the one
// row count it was packed for, with a pack 4× the weights' size; LibTorch's
// weight-only int8/int4 CPU ops were slower than fp32.
//
// Each row of W is read from memory once and multiplied with every row of x
// (which stays in cache); four rows of W at a time, one accumulator each, so
// the multiply-adds do not wait on one another; rows of W split over threads.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mnemo {

// The rows of x for which inference uses skinny_linear_cpu. Measured on the
// default model, 2 threads, decode tok/s against MKL: 1 row 0.92× (MKL's
// SGEMV streams one row at full bandwidth), 2 rows 0.98×, 4 rows 1.25×, 8
// rows 1.19×, 16 rows 1.05×.
inline constexpr int64_t kSkinnyLinearMinRows = 3;
inline constexpr int64_t kSkinnyLinearMaxRows = 16;

// Whether inference sends this product to skinny_linear_cpu: the path
// enabled, no autograd, float32 CPU tensors, x [M, K] with
// kSkinnyLinearMinRows ≤ M ≤ kSkinnyLinearMaxRows, W [N, K] contiguous.
bool skinny_linear_applies(const at::Tensor& x, const at::Tensor& weight);

// On by default; off sends every product to at::linear (bench/forward
// --no-skinny-linear measures both in one run). Process-wide.
void set_skinny_linear_enabled(bool enabled);

// x [M, K] · weight [N, K]ᵀ (+ bias [N]) → [M, N], each output summed in
// float32 in a fixed order (it differs from at::linear in the last bits).
// Takes any 1 ≤ M ≤ kSkinnyLinearMaxRows (the others as for
// skinny_linear_applies); throws c10::Error otherwise or for a bias not [N].
at::Tensor skinny_linear_cpu(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});

}  // namespace mnemo
