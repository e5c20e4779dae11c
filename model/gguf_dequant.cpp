// Dequantization of ggml tensor types into fp32/bf16/fp16 CPU tensors.
//
// Hand-written: no packaged C++ library dequantizes ggml blocks except ggml
// itself. Each block decoder below follows ggml's reference
// dequantize_row_* (ggml-quants.c) bit for bit; the parity test compares
// every type with gguf-py's numpy port of the same code.
//
// Shape of the work: a block decodes into a 32- or 256-float stack buffer
// (plain loops over bytes that the compiler vectorises), then one store loop
// converts to the output dtype, so a bf16 load never materialises an fp32
// copy of the model. Blocks are independent, so at::parallel_for splits them.
#include "model/gguf.h"

#include "model/error.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstring>

namespace mnemo {
namespace {

inline float half_to_float(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return c10::detail::fp16_ieee_to_fp32_value(bits);
}

// ---- 32-value blocks --------------------------------------------------------

void decode_q4_0(const uint8_t* b, float* y) {  // d f16, qs[16]
  float d = half_to_float(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

void decode_q4_1(const uint8_t* b, float* y) {  // d f16, m f16, qs[16]
  float d = half_to_float(b), m = half_to_float(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

void decode_q5_0(const uint8_t* b, float* y) {  // d f16, qh u32, qs[16]
  float d = half_to_float(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    uint8_t high0 = ((qh >> j) << 4) & 0x10;
    uint8_t high1 = (qh >> (j + 12)) & 0x10;
    y[j] = static_cast<float>(((qs[j] & 0x0F) | high0) - 16) * d;
    y[j + 16] = static_cast<float>(((qs[j] >> 4) | high1) - 16) * d;
  }
}

void decode_q5_1(const uint8_t* b, float* y) {  // d f16, m f16, qh u32, qs[16]
  float d = half_to_float(b), m = half_to_float(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 16; ++j) {
    uint8_t high0 = ((qh >> j) << 4) & 0x10;
    uint8_t high1 = (qh >> (j + 12)) & 0x10;
    y[j] = static_cast<float>((qs[j] & 0x0F) | high0) * d + m;
    y[j + 16] = static_cast<float>((qs[j] >> 4) | high1) * d + m;
  }
}

void decode_q8_0(const uint8_t* b, float* y) {  // d f16, qs int8[32]
  float d = half_to_float(b);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

// ---- 256-value K-quant super-blocks -----------------------------------------

// The 6-bit scale and min of sub-block j packed in 12 bytes (Q4_K, Q5_K).
inline void scale_min_k4(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

void decode_q2_k(const uint8_t* b, float* y) {  // scales[16], qs[64], d f16, dmin f16
  const uint8_t* scales = b;
  const uint8_t* q = b + 16;
  float d = half_to_float(b + 80), dmin = half_to_float(b + 82);
  int is = 0;
  for (int n = 0; n < 256; n += 128) {
    int shift = 0;
    for (int j = 0; j < 4; ++j) {
      uint8_t sc = scales[is++];
      float dl = d * (sc & 0xF), ml = dmin * (sc >> 4);
      for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l] >> shift) & 3) - ml;
      sc = scales[is++];
      dl = d * (sc & 0xF);
      ml = dmin * (sc >> 4);
      for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((q[l + 16] >> shift) & 3) - ml;
      shift += 2;
    }
    q += 32;
  }
}

void decode_q3_k(const uint8_t* b, float* y) {  // hmask[32], qs[64], scales[12], d f16
  const uint8_t* hm = b;
  const uint8_t* q = b + 32;
  float d_all = half_to_float(b + 108);
  constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  uint32_t aux[4];
  std::memcpy(aux, b + 96, 12);
  uint32_t tmp = aux[2];
  aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
  aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
  aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
  aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
  int8_t scales[16];
  std::memcpy(scales, aux, 16);
  int is = 0;
  uint8_t m = 1;
  for (int n = 0; n < 256; n += 128) {
    int shift = 0;
    for (int j = 0; j < 4; ++j) {
      float dl = d_all * static_cast<float>(scales[is++] - 32);
      for (int l = 0; l < 16; ++l)
        *y++ = dl * static_cast<float>(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
      dl = d_all * static_cast<float>(scales[is++] - 32);
      for (int l = 0; l < 16; ++l)
        *y++ = dl * static_cast<float>(((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
      shift += 2;
      m <<= 1;
    }
    q += 32;
  }
}

void decode_q4_k(const uint8_t* b, float* y) {  // d f16, dmin f16, scales[12], qs[128]
  float d = half_to_float(b), dmin = half_to_float(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  int is = 0;
  for (int j = 0; j < 256; j += 64) {
    uint8_t sc, m;
    scale_min_k4(is, scales, &sc, &m);
    float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(is + 1, scales, &sc, &m);
    float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    q += 32;
    is += 2;
  }
}

void decode_q5_k(const uint8_t* b, float* y) {  // d, dmin f16, scales[12], qh[32], qs[128]
  float d = half_to_float(b), dmin = half_to_float(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  int is = 0;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0; j < 256; j += 64) {
    uint8_t sc, m;
    scale_min_k4(is, scales, &sc, &m);
    float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(is + 1, scales, &sc, &m);
    float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    ql += 32;
    is += 2;
    u1 <<= 2;
    u2 <<= 2;
  }
}

void decode_q6_k(const uint8_t* b, float* y) {  // ql[128], qh[64], scales int8[16], d f16
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  float d = half_to_float(b + 208);
  for (int n = 0; n < 256; n += 128) {
    for (int l = 0; l < 32; ++l) {
      int is = l / 16;
      int q1 = static_cast<int8_t>((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      int q2 = static_cast<int8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      int q3 = static_cast<int8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      int q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

void decode_q8_k(const uint8_t* b, float* y) {  // d f32, qs int8[256], bsums int16[16]
  float d;
  std::memcpy(&d, b, 4);
  const int8_t* qs = reinterpret_cast<const int8_t*>(b + 4);
  for (int j = 0; j < 256; ++j) y[j] = d * static_cast<float>(qs[j]);
}

// ---- plain float types: "blocks" of one value, decoded in runs --------------

void decode_f32(const uint8_t* b, float* y, int64_t n) { std::memcpy(y, b, n * 4); }
void decode_f16(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = half_to_float(b + 2 * i);
}
void decode_bf16(const uint8_t* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t bits;
    std::memcpy(&bits, b + 2 * i, 2);
    uint32_t wide = static_cast<uint32_t>(bits) << 16;
    std::memcpy(&y[i], &wide, 4);
  }
}

using BlockDecoder = void (*)(const uint8_t*, float*);

BlockDecoder block_decoder(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return decode_q4_0;
    case GgmlType::Q4_1: return decode_q4_1;
    case GgmlType::Q5_0: return decode_q5_0;
    case GgmlType::Q5_1: return decode_q5_1;
    case GgmlType::Q8_0: return decode_q8_0;
    case GgmlType::Q2_K: return decode_q2_k;
    case GgmlType::Q3_K: return decode_q3_k;
    case GgmlType::Q4_K: return decode_q4_k;
    case GgmlType::Q5_K: return decode_q5_k;
    case GgmlType::Q6_K: return decode_q6_k;
    case GgmlType::Q8_K: return decode_q8_k;
    default: return nullptr;
  }
}

template <typename Out>
inline void store(const float* in, Out* out, int64_t n) {
  if constexpr (std::is_same_v<Out, float>) {
    std::memcpy(out, in, n * sizeof(float));
  } else if constexpr (std::is_same_v<Out, c10::BFloat16>) {
    // c10's round-to-nearest-even, written branch-free so the loop
    // vectorises (the per-element constructor does not): same bits.
    uint16_t* bits_out = reinterpret_cast<uint16_t*>(out);
    for (int64_t i = 0; i < n; ++i) {
      uint32_t bits;
      std::memcpy(&bits, in + i, 4);
      uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
      bool nan = (bits & 0x7FFFFFFFu) > 0x7F800000u;
      bits_out[i] = static_cast<uint16_t>(nan ? 0x7FC0u : rounded);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<Out>(in[i]);
  }
}

// Decodes `n_blocks` blocks starting at `src` into `dst`, in parallel. Plain
// float types go through the same path with runs of 256 values as "blocks".
template <typename Out>
void decode_all(GgmlType type, const GgmlTypeTraits& traits, const uint8_t* src, Out* dst, int64_t numel) {
  constexpr int64_t kRun = 256;  // values per work item for the plain float types
  if (type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16) {
    auto decode = type == GgmlType::F32 ? decode_f32 : type == GgmlType::F16 ? decode_f16 : decode_bf16;
    int64_t n_runs = (numel + kRun - 1) / kRun;
    at::parallel_for(0, n_runs, 256, [&](int64_t begin, int64_t end) {
      alignas(64) float buffer[kRun];
      for (int64_t r = begin; r < end; ++r) {
        int64_t first = r * kRun, n = std::min(kRun, numel - first);
        decode(src + first * traits.block_bytes, buffer, n);
        store(buffer, dst + first, n);
      }
    });
    return;
  }
  BlockDecoder decode = block_decoder(type);
  MNEMO_CHECK(decode != nullptr, "no decoder for ggml type {}", traits.name);
  int64_t block_values = traits.block_values, block_bytes = traits.block_bytes;
  int64_t n_blocks = numel / block_values;
  // ~8-64 KiB of output per grain: enough to amortise the thread hand-off.
  int64_t grain = std::max<int64_t>(1, 8192 / block_values);
  at::parallel_for(0, n_blocks, grain, [&](int64_t begin, int64_t end) {
    alignas(64) float buffer[256];
    for (int64_t blk = begin; blk < end; ++blk) {
      decode(src + blk * block_bytes, buffer);
      store(buffer, dst + blk * block_values, block_values);
    }
  });
}

}  // namespace

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t type) {
  switch (static_cast<GgmlType>(type)) {
    case GgmlType::F32: return GgmlTypeTraits{"F32", 1, 4};
    case GgmlType::F16: return GgmlTypeTraits{"F16", 1, 2};
    case GgmlType::BF16: return GgmlTypeTraits{"BF16", 1, 2};
    case GgmlType::Q4_0: return GgmlTypeTraits{"Q4_0", 32, 18};
    case GgmlType::Q4_1: return GgmlTypeTraits{"Q4_1", 32, 20};
    case GgmlType::Q5_0: return GgmlTypeTraits{"Q5_0", 32, 22};
    case GgmlType::Q5_1: return GgmlTypeTraits{"Q5_1", 32, 24};
    case GgmlType::Q8_0: return GgmlTypeTraits{"Q8_0", 32, 34};
    case GgmlType::Q2_K: return GgmlTypeTraits{"Q2_K", 256, 84};
    case GgmlType::Q3_K: return GgmlTypeTraits{"Q3_K", 256, 110};
    case GgmlType::Q4_K: return GgmlTypeTraits{"Q4_K", 256, 144};
    case GgmlType::Q5_K: return GgmlTypeTraits{"Q5_K", 256, 176};
    case GgmlType::Q6_K: return GgmlTypeTraits{"Q6_K", 256, 210};
    case GgmlType::Q8_K: return GgmlTypeTraits{"Q8_K", 256, 292};
  }
  return std::nullopt;
}

at::Tensor GgufFile::dequantize(const GgufTensorInfo& info, at::ScalarType dtype) const {
  if (dtype != at::kFloat && dtype != at::kBFloat16 && dtype != at::kHalf)
    fail("{}: tensor '{}': cannot dequantize to {} (use float32, bfloat16 or float16)", path_, info.name,
         c10::toString(dtype));
  auto traits = ggml_type_traits(static_cast<uint32_t>(info.type));
  MNEMO_CHECK(traits.has_value(), "tensor '{}' has a type that open() should have rejected", info.name);
  // open() checked that [file_offset, file_offset + bytes) lies in the file
  // and that bytes == numel / block_values * block_bytes.
  MNEMO_CHECK(info.file_offset + info.bytes <= size_bytes_, "tensor '{}' outside the mapping", info.name);
  at::Tensor out = at::empty(info.shape, at::TensorOptions().dtype(dtype));
  const uint8_t* src = mapping_ + info.file_offset;
  int64_t numel = info.numel();
  switch (dtype) {
    case at::kFloat: decode_all(info.type, *traits, src, out.data_ptr<float>(), numel); break;
    case at::kBFloat16: decode_all(info.type, *traits, src, out.data_ptr<c10::BFloat16>(), numel); break;
    default: decode_all(info.type, *traits, src, out.data_ptr<c10::Half>(), numel); break;
  }
  return out;
}

}  // namespace mnemo
