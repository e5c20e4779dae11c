#include "kernels/quantized_linear_cpu.h"

#include "kernels/cpu_dot_rows.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Half.h>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

namespace mnemo {
namespace {

constexpr int64_t kBlock = kQuantBlock;
// Rows of W decoded together before their dot products (as dot_rows' four).
constexpr int64_t kDecodeRows = 4;

// Scales and minimums are IEEE half floats (as ggml's d and m).
constexpr int64_t kScaleBytes = 2;

uint16_t load_u16(const uint8_t* bytes, int64_t index) {
  uint16_t value;
  std::memcpy(&value, bytes + index * kScaleBytes, kScaleBytes);
  return value;
}

float load_scale(const uint8_t* bytes, int64_t index) {
  return c10::detail::fp16_ieee_to_fp32_value(load_u16(bytes, index));
}

// Rounds `value` to a half float, stores it, and returns what was stored.
float store_scale(uint8_t* bytes, int64_t index, float value) {
  const uint16_t half = c10::detail::fp16_ieee_from_fp32_value(value);
  std::memcpy(bytes + index * kScaleBytes, &half, kScaleBytes);
  return c10::detail::fp16_ieee_to_fp32_value(half);
}

// The portable path: one row decoded to float32, then kernels/cpu_dot_rows.h.
void decode_int8_row(const uint8_t* row, int64_t k, float* out) {
  const int64_t blocks = k / kBlock;
  const int8_t* codes = reinterpret_cast<const int8_t*>(row + blocks * kScaleBytes);
  for (int64_t b = 0; b < blocks; ++b) {
    const float scale = load_scale(row, b);
    for (int64_t j = 0; j < kBlock; ++j) out[b * kBlock + j] = scale * static_cast<float>(codes[b * kBlock + j]);
  }
}

void decode_int4_row(const uint8_t* row, int64_t k, float* out) {
  const int64_t blocks = k / kBlock;
  const uint8_t* codes = row + 2 * blocks * kScaleBytes;
  for (int64_t b = 0; b < blocks; ++b) {
    const float scale = load_scale(row, b), min = load_scale(row, blocks + b);
    const uint8_t* c = codes + b * (kBlock / 2);
    float* o = out + b * kBlock;
    for (int64_t j = 0; j < kBlock / 2; ++j) {
      o[j] = scale * static_cast<float>(c[j] & 15) + min;
      o[j + kBlock / 2] = scale * static_cast<float>(c[j] >> 4) + min;
    }
  }
}

void decode_row(WeightQuant quant, const uint8_t* row, int64_t k, float* out) {
  if (quant == WeightQuant::kInt8)
    decode_int8_row(row, k, out);
  else
    decode_int4_row(row, k, out);
}

// y[i · ldy + j] = x[i] · W[j] for i < m and the `count` packed rows of W
// at `w`; `scratch` holds kScratchFloats(k) floats.
using RowsKernel = void (*)(WeightQuant quant, const float* x, int64_t m, int64_t k, const uint8_t* w,
                            int64_t row_bytes, int64_t count, float* y, int64_t ldy, float* scratch);
int64_t scratch_floats(int64_t k) { return kDecodeRows * k + k / kBlock; }

void rows_portable(WeightQuant quant, const float* x, int64_t m, int64_t k, const uint8_t* w, int64_t row_bytes,
                   int64_t count, float* y, int64_t ldy, float* scratch) {
  for (int64_t r = 0; r < count; r += kDecodeRows) {
    const int64_t group = std::min(kDecodeRows, count - r);
    for (int64_t i = 0; i < group; ++i) decode_row(quant, w + (r + i) * row_bytes, k, scratch + i * k);
    dot_rows(x, m, k, scratch, group, y + r, ldy);
  }
}

#if defined(__GNUC__) && defined(__x86_64__)
// The same with AVX-512 and with AVX2+FMA intrinsics (GCC's vectorizer kept
// the nibble unpacking in 128-bit registers: 2.6× slower at batch 1). A block
// of 32 values decodes with two 16-lane (or four 8-lane) conversions and
// multiply-adds; the dot products run four rows of W at a time.
#define f16c_scale(bytes, index) _cvtsh_ss(load_u16(bytes, index))

// Asks for the row kPrefetchRows ahead of `row` while this one decodes: the
// hardware prefetcher alone left the first loads of each row waiting on
// memory (half the kernel's time at batch 1). A hint: it never faults, past
// the weight's end included.
constexpr int64_t kPrefetchRows = 8;
inline void prefetch_ahead(const uint8_t* row, int64_t row_bytes) {
  const char* ahead = reinterpret_cast<const char*>(row + kPrefetchRows * row_bytes);
  for (int64_t offset = 0; offset < row_bytes; offset += 64) _mm_prefetch(ahead + offset, _MM_HINT_T1);
}

// One row of x (a batch-1 decode step): no float32 copy of W. Per block,
// s·Σ q·x (+ min·Σx for int4, from `block_sums`), R rows of W at a time, so
// their R accumulation chains overlap. 1.6× the decode-then-dot path at
// batch 1 (fewer instructions: no store and reload of the decoded values).
template <int R>
__attribute__((target("avx512f,f16c"))) void one_row_avx512(WeightQuant quant, const float* x, int64_t k,
                                                        const uint8_t* w, int64_t row_bytes, float* y,
                                                        const float* block_sums) {
  const int64_t blocks = k / kBlock;
  const __m128i low_nibbles = _mm_set1_epi8(15);
  __m512 acc[R];
  for (int i = 0; i < R; ++i) {
    acc[i] = _mm512_setzero_ps();
    prefetch_ahead(w + i * row_bytes, row_bytes);
  }
  if (quant == WeightQuant::kInt8) {
    for (int64_t b = 0; b < blocks; ++b) {
      const __m512 x_lo = _mm512_loadu_ps(x + b * kBlock), x_hi = _mm512_loadu_ps(x + b * kBlock + 16);
      for (int i = 0; i < R; ++i) {
        const uint8_t* row = w + i * row_bytes;
        const __m128i* c = reinterpret_cast<const __m128i*>(row + blocks * kScaleBytes + b * kBlock);
        __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(c))), x_lo);
        t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(c + 1))), x_hi, t);
        acc[i] = _mm512_fmadd_ps(t, _mm512_set1_ps(f16c_scale(row, b)), acc[i]);
      }
    }
    for (int i = 0; i < R; ++i) y[i] = _mm512_reduce_add_ps(acc[i]);
    return;
  }
  for (int64_t b = 0; b < blocks; ++b) {
    const __m512 x_lo = _mm512_loadu_ps(x + b * kBlock), x_hi = _mm512_loadu_ps(x + b * kBlock + 16);
    for (int i = 0; i < R; ++i) {
      const uint8_t* row = w + i * row_bytes;
      const __m128i bytes =
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * blocks * kScaleBytes + b * (kBlock / 2)));
      const __m128i lo = _mm_and_si128(bytes, low_nibbles);
      const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_nibbles);
      __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(lo)), x_lo);
      t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(hi)), x_hi, t);
      acc[i] = _mm512_fmadd_ps(t, _mm512_set1_ps(f16c_scale(row, b)), acc[i]);
    }
  }
  for (int i = 0; i < R; ++i) {
    const uint8_t* row = w + i * row_bytes;
    float mins = 0.0f;
    for (int64_t b = 0; b < blocks; ++b) mins += f16c_scale(row, blocks + b) * block_sums[b];
    y[i] = _mm512_reduce_add_ps(acc[i]) + mins;
  }
}

__attribute__((target("avx512f,f16c"))) void rows_avx512_one(WeightQuant quant, const float* x, int64_t k,
                                                         const uint8_t* w, int64_t row_bytes, int64_t count, float* y,
                                                         const float* block_sums) {
  switch (count) {
    case 4: return one_row_avx512<4>(quant, x, k, w, row_bytes, y, block_sums);
    case 3: return one_row_avx512<3>(quant, x, k, w, row_bytes, y, block_sums);
    case 2: return one_row_avx512<2>(quant, x, k, w, row_bytes, y, block_sums);
    default: return one_row_avx512<1>(quant, x, k, w, row_bytes, y, block_sums);
  }
}

// At most kDecodeRows rows of W decoded into `scratch`, then their dot
// products with every row of x, four rows of W at a time.
__attribute__((target("avx512f,f16c"))) void group_avx512(WeightQuant quant, const float* x, int64_t m, int64_t k,
                                                      const uint8_t* w, int64_t row_bytes, int64_t count, float* y,
                                                      int64_t ldy, float* scratch) {
  const int64_t blocks = k / kBlock;
  const __m128i low_nibbles = _mm_set1_epi8(15);
  for (int64_t r = 0; r < count; ++r) {
    const uint8_t* row = w + r * row_bytes;
    float* out = scratch + r * k;
    prefetch_ahead(row, row_bytes);
    if (quant == WeightQuant::kInt8) {
      const uint8_t* codes = row + blocks * kScaleBytes;
      for (int64_t b = 0; b < blocks; ++b) {
        const __m512 scale = _mm512_set1_ps(f16c_scale(row, b));
        const __m128i* c = reinterpret_cast<const __m128i*>(codes + b * kBlock);
        _mm512_storeu_ps(out + b * kBlock,
                         _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(c))), scale));
        _mm512_storeu_ps(out + b * kBlock + 16,
                         _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(c + 1))), scale));
      }
    } else {
      const uint8_t* codes = row + 2 * blocks * kScaleBytes;
      for (int64_t b = 0; b < blocks; ++b) {
        const __m512 scale = _mm512_set1_ps(f16c_scale(row, b)), min = _mm512_set1_ps(f16c_scale(row, blocks + b));
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + b * (kBlock / 2)));
        const __m128i lo = _mm_and_si128(bytes, low_nibbles);
        const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_nibbles);
        _mm512_storeu_ps(out + b * kBlock, _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(lo)), scale, min));
        _mm512_storeu_ps(out + b * kBlock + 16,
                         _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(hi)), scale, min));
      }
    }
  }
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * k;
    int64_t r = 0;
    for (; r + 4 <= count; r += 4) {
      const float* w0 = scratch + r * k;
      __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
      for (int64_t c = 0; c < k; c += 16) {
        const __m512 xv = _mm512_loadu_ps(xi + c);
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + c), xv, a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + k + c), xv, a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + 2 * k + c), xv, a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(w0 + 3 * k + c), xv, a3);
      }
      float* yi = y + i * ldy + r;
      yi[0] = _mm512_reduce_add_ps(a0);
      yi[1] = _mm512_reduce_add_ps(a1);
      yi[2] = _mm512_reduce_add_ps(a2);
      yi[3] = _mm512_reduce_add_ps(a3);
    }
    for (; r < count; ++r) {
      __m512 a = _mm512_setzero_ps();
      for (int64_t c = 0; c < k; c += 16)
        a = _mm512_fmadd_ps(_mm512_loadu_ps(scratch + r * k + c), _mm512_loadu_ps(xi + c), a);
      y[i * ldy + r] = _mm512_reduce_add_ps(a);
    }
  }
}

__attribute__((target("avx2,fma,f16c"))) float sum_lanes(__m256 v) {
  const __m128 half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 pairs = _mm_add_ps(half, _mm_movehl_ps(half, half));
  return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)));
}

__attribute__((target("avx2,fma,f16c"))) void group_avx2(WeightQuant quant, const float* x, int64_t m, int64_t k,
                                                    const uint8_t* w, int64_t row_bytes, int64_t count, float* y,
                                                    int64_t ldy, float* scratch) {
  const int64_t blocks = k / kBlock;
  const __m128i low_nibbles = _mm_set1_epi8(15);
  for (int64_t r = 0; r < count; ++r) {
    const uint8_t* row = w + r * row_bytes;
    float* out = scratch + r * k;
    prefetch_ahead(row, row_bytes);
    if (quant == WeightQuant::kInt8) {
      const uint8_t* codes = row + blocks * kScaleBytes;
      for (int64_t b = 0; b < blocks; ++b) {
        const __m256 scale = _mm256_set1_ps(f16c_scale(row, b));
        for (int64_t q = 0; q < kBlock; q += 8) {
          const __m128i c = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + b * kBlock + q));
          _mm256_storeu_ps(out + b * kBlock + q, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c)), scale));
        }
      }
    } else {
      const uint8_t* codes = row + 2 * blocks * kScaleBytes;
      for (int64_t b = 0; b < blocks; ++b) {
        const __m256 scale = _mm256_set1_ps(f16c_scale(row, b)), min = _mm256_set1_ps(f16c_scale(row, blocks + b));
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + b * (kBlock / 2)));
        const __m128i lo = _mm_and_si128(bytes, low_nibbles);
        const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low_nibbles);
        float* o = out + b * kBlock;
        _mm256_storeu_ps(o, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)), scale, min));
        _mm256_storeu_ps(o + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8))),
                                                scale, min));
        _mm256_storeu_ps(o + 16, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)), scale, min));
        _mm256_storeu_ps(o + 24, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))),
                                                 scale, min));
      }
    }
  }
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * k;
    int64_t r = 0;
    for (; r + 4 <= count; r += 4) {
      const float* w0 = scratch + r * k;
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
      for (int64_t c = 0; c < k; c += 8) {
        const __m256 xv = _mm256_loadu_ps(xi + c);
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + c), xv, a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k + c), xv, a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + 2 * k + c), xv, a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + 3 * k + c), xv, a3);
      }
      float* yi = y + i * ldy + r;
      yi[0] = sum_lanes(a0);
      yi[1] = sum_lanes(a1);
      yi[2] = sum_lanes(a2);
      yi[3] = sum_lanes(a3);
    }
    for (; r < count; ++r) {
      __m256 a = _mm256_setzero_ps();
      for (int64_t c = 0; c < k; c += 8)
        a = _mm256_fmadd_ps(_mm256_loadu_ps(scratch + r * k + c), _mm256_loadu_ps(xi + c), a);
      y[i * ldy + r] = sum_lanes(a);
    }
  }
}

__attribute__((target("avx512f,f16c"))) void rows_avx512(WeightQuant quant, const float* x, int64_t m, int64_t k,
                                                     const uint8_t* w, int64_t row_bytes, int64_t count, float* y,
                                                     int64_t ldy, float* scratch) {
  if (m == 1) {
    const int64_t blocks = k / kBlock;
    float* block_sums = scratch + kDecodeRows * k;
    for (int64_t b = 0; b < blocks; ++b)
      block_sums[b] = _mm512_reduce_add_ps(
          _mm512_add_ps(_mm512_loadu_ps(x + b * kBlock), _mm512_loadu_ps(x + b * kBlock + 16)));
    for (int64_t r = 0; r < count; r += kDecodeRows)
      rows_avx512_one(quant, x, k, w + r * row_bytes, row_bytes, std::min(kDecodeRows, count - r), y + r,
                      block_sums);
    return;
  }
  for (int64_t r = 0; r < count; r += kDecodeRows)
    group_avx512(quant, x, m, k, w + r * row_bytes, row_bytes, std::min(kDecodeRows, count - r), y + r, ldy,
                 scratch);
}

__attribute__((target("avx2,fma,f16c"))) void rows_avx2(WeightQuant quant, const float* x, int64_t m, int64_t k,
                                                   const uint8_t* w, int64_t row_bytes, int64_t count, float* y,
                                                   int64_t ldy, float* scratch) {
  for (int64_t r = 0; r < count; r += kDecodeRows)
    group_avx2(quant, x, m, k, w + r * row_bytes, row_bytes, std::min(kDecodeRows, count - r), y + r, ldy, scratch);
}
#endif

// The kernel for `isa`, or null where this CPU lacks it; kAuto: the widest.
RowsKernel kernel_for(QuantizedKernelIsa isa) {
#if defined(__GNUC__) && defined(__x86_64__)
  __builtin_cpu_init();
  const bool f16c = __builtin_cpu_supports("f16c");
  const bool avx512 = f16c && __builtin_cpu_supports("avx512f");
  const bool avx2 = f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (isa == QuantizedKernelIsa::kAvx512 || (isa == QuantizedKernelIsa::kAuto && avx512))
    return avx512 ? &rows_avx512 : nullptr;
  if (isa == QuantizedKernelIsa::kAvx2 || (isa == QuantizedKernelIsa::kAuto && avx2)) return avx2 ? &rows_avx2 : nullptr;
#else
  if (isa == QuantizedKernelIsa::kAvx512 || isa == QuantizedKernelIsa::kAvx2) return nullptr;
#endif
  return &rows_portable;
}

std::atomic<RowsKernel> chosen_kernel{kernel_for(QuantizedKernelIsa::kAuto)};

void encode_int8_row(const float* w, int64_t k, uint8_t* row) {
  const int64_t blocks = k / kBlock;
  int8_t* codes = reinterpret_cast<int8_t*>(row + blocks * kScaleBytes);
  for (int64_t b = 0; b < blocks; ++b) {
    const float* v = w + b * kBlock;
    float max_abs = 0.0f;
    for (int64_t j = 0; j < kBlock; ++j) max_abs = std::max(max_abs, std::fabs(v[j]));
    const float scale = store_scale(row, b, max_abs / 127.0f);
    const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
    for (int64_t j = 0; j < kBlock; ++j)
      codes[b * kBlock + j] = static_cast<int8_t>(std::clamp(std::nearbyint(v[j] * inverse), -127.0f, 127.0f));
  }
}

void encode_int4_row(const float* w, int64_t k, uint8_t* row) {
  const int64_t blocks = k / kBlock;
  uint8_t* codes = row + 2 * blocks * kScaleBytes;
  for (int64_t b = 0; b < blocks; ++b) {
    const float* v = w + b * kBlock;
    const auto [lo, hi] = std::minmax_element(v, v + kBlock);
    const float min = store_scale(row, blocks + b, *lo);
    const float scale = store_scale(row, b, (*hi - min) / 15.0f);
    const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
    auto code = [&](int64_t j) {
      return static_cast<uint8_t>(std::clamp(std::nearbyint((v[j] - min) * inverse), 0.0f, 15.0f));
    };
    for (int64_t j = 0; j < kBlock / 2; ++j)
      codes[b * (kBlock / 2) + j] = static_cast<uint8_t>(code(j) | (code(j + kBlock / 2) << 4));
  }
}

void check_packed(const at::Tensor& packed, WeightQuant quant, int64_t k, const char* what) {
  TORCH_CHECK(quant != WeightQuant::kNone, what, ": no quantization given");
  TORCH_CHECK(k > 0 && k % kBlock == 0, what, ": rows of ", k, " values (a multiple of ", kBlock, " is needed)");
  TORCH_CHECK(packed.device().is_cpu() && packed.scalar_type() == at::kByte && packed.dim() == 2 &&
                  packed.is_contiguous() && packed.size(1) == quantized_row_bytes(quant, k),
              what, ": expected a contiguous uint8 CPU weight [N, ", quantized_row_bytes(quant, k), "] (",
              weight_quant_name(quant), ", ", k, " values a row); got ", packed.sizes(), " ",
              packed.scalar_type(), " on ", packed.device());
}

}  // namespace

const char* weight_quant_name(WeightQuant quant) {
  switch (quant) {
    case WeightQuant::kNone:
      return "none";
    case WeightQuant::kInt8:
      return "int8";
    case WeightQuant::kInt4:
      return "int4";
  }
  return "?";
}

int64_t quantized_row_bytes(WeightQuant quant, int64_t k) {
  const int64_t blocks = k / kBlock;
  return quant == WeightQuant::kInt8 ? blocks * int64_t{kScaleBytes} + k
                                     : 2 * blocks * int64_t{kScaleBytes} + k / 2;
}

at::Tensor quantize_weight(const at::Tensor& weight, WeightQuant quant) {
  TORCH_CHECK(quant != WeightQuant::kNone, "quantize_weight: no quantization given");
  TORCH_CHECK(weight.dim() == 2 && weight.device().is_cpu() && at::isFloatingType(weight.scalar_type()),
              "quantize_weight: expected a floating-point CPU matrix, got ", weight.sizes(), " ",
              weight.scalar_type(), " on ", weight.device());
  const int64_t n = weight.size(0), k = weight.size(1);
  TORCH_CHECK(k % kBlock == 0, "quantize_weight: rows of ", k, " values; ", weight_quant_name(quant),
              " needs a multiple of ", kBlock);
  const at::Tensor values = weight.to(at::kFloat).contiguous();
  TORCH_CHECK(at::isfinite(values).all().item<bool>(), "quantize_weight: the weight holds a non-finite value");
  const int64_t row_bytes = quantized_row_bytes(quant, k);
  at::Tensor packed = at::empty({n, row_bytes}, at::TensorOptions().dtype(at::kByte));
  const float* w = values.const_data_ptr<float>();
  uint8_t* out = packed.mutable_data_ptr<uint8_t>();
  at::parallel_for(0, n, 16, [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      if (quant == WeightQuant::kInt8)
        encode_int8_row(w + r * k, k, out + r * row_bytes);
      else
        encode_int4_row(w + r * k, k, out + r * row_bytes);
    }
  });
  return packed;
}

at::Tensor dequantize_weight(const at::Tensor& packed, WeightQuant quant, int64_t k) {
  check_packed(packed, quant, k, "dequantize_weight");
  const int64_t n = packed.size(0), row_bytes = packed.size(1);
  at::Tensor out = at::empty({n, k}, at::TensorOptions().dtype(at::kFloat));
  const uint8_t* in = packed.const_data_ptr<uint8_t>();
  float* o = out.mutable_data_ptr<float>();
  at::parallel_for(0, n, 16, [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) decode_row(quant, in + r * row_bytes, k, o + r * k);
  });
  return out;
}

at::Tensor dequantize_weight_rows(const at::Tensor& packed, WeightQuant quant, int64_t k, const at::Tensor& ids) {
  check_packed(packed, quant, k, "dequantize_weight_rows");
  TORCH_CHECK(ids.dim() == 1 && ids.device().is_cpu(), "dequantize_weight_rows: ids must be a 1-D CPU tensor");
  const at::Tensor rows = ids.to(at::kLong).contiguous();
  const int64_t t = rows.size(0), n = packed.size(0), row_bytes = packed.size(1);
  const int64_t* id = rows.const_data_ptr<int64_t>();
  for (int64_t i = 0; i < t; ++i)
    TORCH_CHECK(id[i] >= 0 && id[i] < n, "dequantize_weight_rows: row ", id[i], " of ", n);
  at::Tensor out = at::empty({t, k}, at::TensorOptions().dtype(at::kFloat));
  const uint8_t* in = packed.const_data_ptr<uint8_t>();
  float* o = out.mutable_data_ptr<float>();
  for (int64_t i = 0; i < t; ++i) decode_row(quant, in + id[i] * row_bytes, k, o + i * k);
  return out;
}

bool set_quantized_kernel_isa(QuantizedKernelIsa isa) {
  const RowsKernel kernel = kernel_for(isa);
  if (kernel == nullptr) return false;
  chosen_kernel.store(kernel, std::memory_order_relaxed);
  return true;
}

at::Tensor quantized_linear_cpu(const at::Tensor& x, const at::Tensor& packed, WeightQuant quant,
                                const at::Tensor& bias) {
  TORCH_CHECK(!at::GradMode::is_enabled(),
              "quantized_linear_cpu: int8/int4 weights are for inference (no autograd through them); "
              "training needs float weights");
  TORCH_CHECK(x.dim() == 2 && x.device().is_cpu() && x.scalar_type() == at::kFloat,
              "quantized_linear_cpu: x must be float32 [M, K] on the CPU; got ", x.sizes(), " ", x.scalar_type(),
              " on ", x.device());
  const int64_t m = x.size(0), k = x.size(1), n = packed.size(0);
  check_packed(packed, quant, k, "quantized_linear_cpu");
  TORCH_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == n), "quantized_linear_cpu: bias ",
              bias.sizes(), " for ", n, " outputs");
  const at::Tensor rows = x.contiguous();
  at::Tensor y = at::empty({m, n}, rows.options());
  const float* x_data = rows.const_data_ptr<float>();
  const uint8_t* w_data = packed.const_data_ptr<uint8_t>();
  const int64_t row_bytes = packed.size(1);
  if (m <= kQuantizedDirectRows) {
    float* y_data = y.mutable_data_ptr<float>();
    // A thread gets at least ~64k multiply-adds: a fork/join costs microseconds.
    const int64_t grain = std::max<int64_t>(kDecodeRows, (int64_t{1} << 16) / std::max<int64_t>(1, k * m));
    const RowsKernel kernel = chosen_kernel.load(std::memory_order_relaxed);
    at::parallel_for(0, n, grain, [&](int64_t first, int64_t last) {
      thread_local std::vector<float> scratch;
      scratch.resize(scratch_floats(k));
      kernel(quant, x_data, m, k, w_data + first * row_bytes, row_bytes, last - first, y_data + first, n,
             scratch.data());
    });
  } else {
    // Prefill: a tile of W (~2 MB) decoded at a time for LibTorch's GEMM.
    const int64_t tile = std::min(n, std::max<int64_t>(64, (int64_t{1} << 19) / k));
    at::Tensor decoded = at::empty({tile, k}, rows.options());
    float* d = decoded.mutable_data_ptr<float>();
    for (int64_t first = 0; first < n; first += tile) {
      const int64_t count = std::min(tile, n - first);
      at::parallel_for(0, count, 16, [&](int64_t a, int64_t b) {
        for (int64_t r = a; r < b; ++r) decode_row(quant, w_data + (first + r) * row_bytes, k, d + r * k);
      });
      y.narrow(1, first, count).copy_(at::mm(rows, decoded.narrow(0, 0, count).t()));
    }
  }
  if (bias.defined()) y.add_(bias);
  return y;
}

}  // namespace mnemo
