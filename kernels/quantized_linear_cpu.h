// Weight-only int8 and int4 linear layers for CPU inference: the base
// model's weights held in 8 or 4 bits with a half-float scale per block of 32
// values, the activations (and any LoRA adapter on top) in float32. Written
// by hand because no packaged library does this at speed on the CPU:
// LibTorch's weight-only ops (_weight_int8pack_mm, _weight_int4pack_mm_for_cpu)
// decoded the default model 2.2× and 5× slower than its float32 path
// (README, Speed), and llama.cpp's kernels are not a library one links.
//
// Layout of one row of W (K values, K a multiple of 32), as bytes:
//   int8: K/32 fp16 scales, then K int8 codes;        w = scale · q
//   int4: K/32 fp16 scales, K/32 fp16 minimums, then K/2 bytes of
//         codes 0..15, block b's byte j holding value j in its low nibble and
//         value j+16 in its high one (ggml's Q4_1 order);  w = scale · q + min
// int8 is symmetric (ggml's Q8_0 rule: scale = max|w| / 127), int4 spans each
// block's minimum to maximum (Q4_1's rule), so a GGUF file's Q4_1 weights,
// dequantized at load, quantize back to the same values.
//
// A product decodes four rows of W at a time into float32 in cache and runs
// the float32 dot products of kernels/cpu_dot_rows.h on them: each weight
// byte is read once per step whatever the batch, and a decode step reads
// 3.8× (int8: 34 bytes per 32 values, ggml's Q8_0 size) or 6.4× (int4: 20
// bytes, Q4_1's) fewer bytes than float32.
#pragma once

#include "kernels/weight_quant.h"

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace mnemo {

// weight [N, K] floating point (any dtype, CPU), K a multiple of 32 →
// uint8 [N, quantized_row_bytes(quant, K)]. Throws c10::Error otherwise or
// for a non-finite weight.
at::Tensor quantize_weight(const at::Tensor& weight, WeightQuant quant);

// The float32 values a packed weight stands for: [N, k].
at::Tensor dequantize_weight(const at::Tensor& packed, WeightQuant quant, int64_t k);

// Rows `ids` (int64 [T]) of a packed [N, k] weight as float32 [T, k]: an
// embedding lookup.
at::Tensor dequantize_weight_rows(const at::Tensor& packed, WeightQuant quant, int64_t k, const at::Tensor& ids);

// x [M, K] float32 CPU · Wᵀ (+ bias [N]) → float32 [M, N], W packed [N, row
// bytes of K]. Any M: up to kQuantizedDirectRows rows decode W once per
// product into cache; more (prefill) decode it a tile of rows at a time for
// a float32 GEMM. Inference only: throws c10::Error under autograd, or for
// shapes, dtypes or devices other than these.
inline constexpr int64_t kQuantizedDirectRows = 16;
at::Tensor quantized_linear_cpu(const at::Tensor& x, const at::Tensor& packed, WeightQuant quant,
                                const at::Tensor& bias = {});

// Which instruction set the direct path uses: the widest this CPU runs
// (kAuto), or one named, so tests compare every variant with the portable
// one. Returns false, changing nothing, for one this CPU lacks. Process-wide.
enum class QuantizedKernelIsa { kAuto, kPortable, kAvx2, kAvx512 };
bool set_quantized_kernel_isa(QuantizedKernelIsa isa);

}  // namespace mnemo
