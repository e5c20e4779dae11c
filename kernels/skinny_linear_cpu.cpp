#include "kernels/skinny_linear_cpu.h"

#include "kernels/cpu_dot_rows.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <atomic>

namespace mnemo {

MNEMO_CPU_CLONES void dot_rows(const float* x, int64_t m, int64_t k, const float* w, int64_t n, float* y,
                               int64_t ldy) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* r0 = w + j * k;
    const float* r1 = r0 + k;
    const float* r2 = r1 + k;
    const float* r3 = r2 + k;
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * k;
      float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
      for (int64_t c = 0; c < k; ++c) {
        s0 += xi[c] * r0[c];
        s1 += xi[c] * r1[c];
        s2 += xi[c] * r2[c];
        s3 += xi[c] * r3[c];
      }
      float* yi = y + i * ldy + j;
      yi[0] = s0;
      yi[1] = s1;
      yi[2] = s2;
      yi[3] = s3;
    }
  }
  for (; j < n; ++j) {
    const float* row = w + j * k;
    for (int64_t i = 0; i < m; ++i) {
      const float* xi = x + i * k;
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t c = 0; c < k; ++c) sum += xi[c] * row[c];
      y[i * ldy + j] = sum;
    }
  }
}

namespace {

std::atomic<bool> enabled{true};

// What the kernel can take, whatever the row count's speed.
bool supports(const at::Tensor& x, const at::Tensor& weight) {
  return !at::GradMode::is_enabled() && x.device().is_cpu() && weight.device().is_cpu() &&
         x.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat && x.dim() == 2 && weight.dim() == 2 &&
         x.size(0) >= 1 && x.size(0) <= kSkinnyLinearMaxRows && x.size(1) == weight.size(1) &&
         weight.is_contiguous();
}

}  // namespace

void set_skinny_linear_enabled(bool on) { enabled.store(on, std::memory_order_relaxed); }

bool skinny_linear_applies(const at::Tensor& x, const at::Tensor& weight) {
  return enabled.load(std::memory_order_relaxed) && x.dim() == 2 && x.size(0) >= kSkinnyLinearMinRows &&
         supports(x, weight);
}

at::Tensor skinny_linear_cpu(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  TORCH_CHECK(supports(x, weight), "skinny_linear_cpu: needs float32 CPU x [M<=",
              kSkinnyLinearMaxRows, ", K] and contiguous weight [N, K] without autograd; got x ", x.sizes(), " ",
              x.scalar_type(), ", weight ", weight.sizes(), " ", weight.scalar_type());
  TORCH_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(0)), "skinny_linear_cpu: bias ",
              bias.sizes(), " for ", weight.size(0), " outputs");
  const at::Tensor rows = x.contiguous();
  const int64_t m = rows.size(0), k = rows.size(1), n = weight.size(0);
  at::Tensor y = at::empty({m, n}, rows.options());
  const float* x_data = rows.const_data_ptr<float>();
  const float* w_data = weight.const_data_ptr<float>();
  float* y_data = y.mutable_data_ptr<float>();
  // A thread gets at least ~64k multiply-adds: a fork/join costs microseconds.
  const int64_t grain = std::max<int64_t>(4, (int64_t{1} << 16) / std::max<int64_t>(1, k * m));
  at::parallel_for(0, n, grain, [&](int64_t first, int64_t last) {
    dot_rows(x_data, m, k, w_data + first * k, last - first, y_data + first, n);
  });
  if (bias.defined()) y.add_(bias);
  return y;
}

}  // namespace mnemo
