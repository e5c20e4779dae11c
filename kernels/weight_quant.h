// How the base model's weights are held for CPU inference (no LibTorch
// here: the loaders' options name it). The layouts and kernels are in
// kernels/quantized_linear_cpu.h.
#pragma once

#include <cstdint>

namespace mnemo {

enum class WeightQuant : uint8_t { kNone, kInt8, kInt4 };

// Values that share one scale (and, for int4, one minimum).
inline constexpr int64_t kQuantBlock = 32;

const char* weight_quant_name(WeightQuant quant);  // "none", "int8", "int4"

// Bytes of one packed row of K values. REQUIRES: quant is not kNone.
int64_t quantized_row_bytes(WeightQuant quant, int64_t k);

}  // namespace mnemo
