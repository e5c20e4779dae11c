#include "kernels/lora_cpu_per_token.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>

#include <algorithm>
#include <type_traits>
#include <vector>

namespace mnemo {
namespace lora_detail {  // lora_cpu.cpp
void check_shrink_args(const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks);
void check_token_slots(const at::Tensor& token_slots, int64_t n_tokens);
}  // namespace lora_detail

namespace {

// The inner loops, compiled for AVX-512, AVX2+FMA and the baseline, chosen at
// load time by the CPU (GCC function multiversioning): the project builds for
// generic x86-64, where these dot products would run 4 floats wide.
#define MNEMO_CPU_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))

// v[j] = x · a[j] for the slot's `rank` rows of A (row length `in`, row stride `in`).
MNEMO_CPU_CLONES void shrink_rows_f32(const float* x, const float* a, int64_t in, int32_t rank, float* v) {
  for (int32_t j = 0; j < rank; ++j) {
    const float* row = a + j * in;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < in; ++i) sum += x[i] * row[i];
    v[j] = sum;
  }
}

// y[0, n) += Σ_j (scale · v[j]) · bt[j][0, n) for the slot's rank rows of Bt
// (row stride `out`): multiply-adds along the row, no horizontal sums.
MNEMO_CPU_CLONES void expand_rows_f32(const float* v, const float* bt, int64_t n, int32_t rank, int64_t out,
                                      float scale, float* y) {
  for (int32_t j = 0; j < rank; ++j) {
    const float weight = scale * v[j];
    const float* row = bt + j * out;
#pragma omp simd
    for (int64_t o = 0; o < n; ++o) y[o] += weight * row[o];
  }
}

// bfloat16 stacks: each row widened to float32 in a small buffer first (a
// bf16 value is the high half of a float32), then the float32 loops.
void widen(const c10::BFloat16* from, int64_t n, float* to) {
  for (int64_t i = 0; i < n; ++i) to[i] = static_cast<float>(from[i]);
}

void shrink_token(const float* x, const float* a, int64_t in, int32_t rank, float* v) {
  shrink_rows_f32(x, a, in, rank, v);
}
void shrink_token(const float* x, const c10::BFloat16* a, int64_t in, int32_t rank, float* v) {
  std::vector<float> row(static_cast<size_t>(in));
  for (int32_t j = 0; j < rank; ++j) {
    widen(a + j * in, in, row.data());
    shrink_rows_f32(x, row.data(), in, 1, v + j);
  }
}

template <typename T>
void apply_per_token(at::Tensor& y, const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& Bt_stack,
                     const int32_t* slots, const int32_t* ranks, const float* scales) {
  const int64_t n_tokens = x.size(0), in = x.size(1), out = y.size(1), r_max = A_stack.size(1);
  const T* x_data = x.const_data_ptr<T>();
  const T* a_data = A_stack.const_data_ptr<T>();
  const T* bt_data = Bt_stack.const_data_ptr<T>();
  T* y_data = y.mutable_data_ptr<T>();
  const int64_t x_row = x.stride(0), y_row = y.stride(0);

  // Shrink, one task per token: the slot's rank rows of A, each read once;
  // rows past the rank are never read. v is rounded to T as the reference does.
  std::vector<float> v(static_cast<size_t>(n_tokens * r_max), 0.0f);
  // A thread gets at least ~32k multiply-adds: a decode step calls this 7
  // times per layer, and a fork/join per call for a few microseconds of work
  // costs more than it saves (and stalls badly when a core is busy elsewhere).
  constexpr int64_t kWorkPerThread = int64_t{1} << 15;
  at::parallel_for(0, n_tokens, std::max<int64_t>(1, kWorkPerThread / std::max<int64_t>(r_max * in, 1)), [&](int64_t begin, int64_t end) {
    std::vector<float> xt(static_cast<size_t>(in));
    for (int64_t t = begin; t < end; ++t) {
      const int32_t slot = slots[t];
      if (slot < 0 || ranks[slot] == 0) continue;
      for (int64_t i = 0; i < in; ++i) xt[static_cast<size_t>(i)] = static_cast<float>(x_data[t * x_row + i]);
      float* vt = v.data() + t * r_max;
      shrink_token(xt.data(), a_data + slot * r_max * in, in, ranks[slot], vt);
      for (int32_t j = 0; j < ranks[slot]; ++j) vt[j] = static_cast<float>(static_cast<T>(vt[j]));
    }
  });
  // Expand, tasks of (token, block of output columns): each reads its
  // block of the slot's rank rows of Bt.
  constexpr int64_t kBlock = 512;
  const int64_t blocks = (out + kBlock - 1) / kBlock;
  at::parallel_for(0, n_tokens * blocks, std::max<int64_t>(1, kWorkPerThread / (kBlock * r_max)), [&](int64_t begin,
                                                                                                      int64_t end) {
    std::vector<float> acc(static_cast<size_t>(kBlock)), bt_rows;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t t = task / blocks, o0 = (task % blocks) * kBlock, n = std::min(kBlock, out - o0);
      const int32_t slot = slots[t];
      if (slot < 0 || ranks[slot] == 0) continue;
      const int32_t rank = ranks[slot];
      T* yt = y_data + t * y_row + o0;
      for (int64_t o = 0; o < n; ++o) acc[static_cast<size_t>(o)] = static_cast<float>(yt[o]);
      const T* bt = bt_data + slot * r_max * out + o0;
      if constexpr (std::is_same_v<T, float>) {
        expand_rows_f32(v.data() + t * r_max, bt, n, rank, out, scales[slot], acc.data());
      } else {
        bt_rows.resize(static_cast<size_t>(rank * n));
        for (int32_t j = 0; j < rank; ++j) widen(bt + j * out, n, bt_rows.data() + j * n);
        expand_rows_f32(v.data() + t * r_max, bt_rows.data(), n, rank, n, scales[slot], acc.data());
      }
      for (int64_t o = 0; o < n; ++o) yt[o] = static_cast<T>(acc[static_cast<size_t>(o)]);
    }
  });
}

}  // namespace

void lora_apply_per_token_cpu(at::Tensor& y, const at::Tensor& x, const at::Tensor& A_stack,
                              const at::Tensor& Bt_stack, const at::Tensor& ranks, const at::Tensor& scales,
                              const at::Tensor& token_slots) {
  lora_detail::check_shrink_args(x, A_stack, ranks);
  lora_detail::check_token_slots(token_slots, x.size(0));
  TORCH_CHECK(x.device().is_cpu(), "lora per-token: CPU tensors only, got ", x.device());
  TORCH_CHECK(y.dim() == 2 && y.size(0) == x.size(0), "lora per-token: y must be [T=", x.size(0), ", out], got ",
              y.sizes());
  TORCH_CHECK(Bt_stack.dim() == 3 && Bt_stack.size(0) == A_stack.size(0) && Bt_stack.size(1) == A_stack.size(1) &&
                  Bt_stack.size(2) == y.size(1),
              "lora per-token: Bt_stack ", Bt_stack.sizes(), " does not match A_stack ", A_stack.sizes(), " and y ",
              y.sizes(), " (expected [S, r_max, out])");
  TORCH_CHECK(y.scalar_type() == x.scalar_type() && Bt_stack.scalar_type() == x.scalar_type(),
              "lora per-token: x, y and Bt_stack must share one dtype");
  TORCH_CHECK(scales.scalar_type() == at::kFloat && scales.dim() == 1 && scales.size(0) == A_stack.size(0),
              "lora per-token: scales must be float32 [S]");
  // Rows of x and y are addressed by a row stride; the stacks and tables are read flat.
  at::Tensor x_rows = x.size(1) <= 1 || x.stride(1) == 1 ? x : x.contiguous();
  at::Tensor y_rows = y.size(1) <= 1 || y.stride(1) == 1 ? y : y.contiguous();
  at::Tensor A = A_stack.contiguous(), Bt = Bt_stack.contiguous();
  at::Tensor slots = token_slots.contiguous(), rank_table = ranks.contiguous(), scale_table = scales.contiguous();
  const int64_t n_slots = A.size(0), r_max = A.size(1);
  if (r_max == 0 || x.size(0) == 0) return;  // no rank anywhere: nothing to add
  const int32_t* slot_data = slots.const_data_ptr<int32_t>();
  const int32_t* rank_data = rank_table.const_data_ptr<int32_t>();
  for (int64_t t = 0; t < slots.numel(); ++t)
    TORCH_CHECK(slot_data[t] >= -1 && slot_data[t] < n_slots, "lora: token_slots[", t, "] = ", slot_data[t],
                " is outside [-1, ", n_slots, ")");
  for (int64_t s = 0; s < n_slots; ++s)
    TORCH_CHECK(rank_data[s] >= 0 && rank_data[s] <= r_max, "lora: ranks[", s, "] = ", rank_data[s],
                " is outside [0, r_max=", r_max, "]");
  switch (x.scalar_type()) {
    case at::kFloat:
      apply_per_token<float>(y_rows, x_rows, A, Bt, slot_data, rank_data, scale_table.const_data_ptr<float>());
      break;
    case at::kBFloat16:
      apply_per_token<c10::BFloat16>(y_rows, x_rows, A, Bt, slot_data, rank_data,
                                     scale_table.const_data_ptr<float>());
      break;
    default:
      TORCH_CHECK(false, "lora per-token: float32 or bfloat16 on CPU, got ", x.scalar_type());
  }
  if (!y_rows.is_same(y)) y.copy_(y_rows);
}

}  // namespace mnemo
