#include "model/sampling.h"

#include "model/error.h"

#include <ATen/ATen.h>

#include <cmath>

namespace mnemo {

void validate(const SamplingParams& p) {
  // Written so that NaN (every comparison with it is false) is refused too.
  if (!(p.temperature >= 0 && std::isfinite(p.temperature)))
    fail("temperature must be a finite number >= 0, got {}", p.temperature);
  if (p.top_k < 0) fail("top_k must be >= 0, got {}", p.top_k);
  if (!(p.top_p > 0 && p.top_p <= 1)) fail("top_p must be in (0, 1], got {}", p.top_p);
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) { validate(params); }

int32_t Sampler::sample(const at::Tensor& logits) {
  if (params_.temperature == 0) return static_cast<int32_t>(logits.argmax().item<int64_t>());
  // Sort once on the CPU in float64: the order and the cumulative sum then do
  // not depend on the device, so a seed gives the same tokens everywhere.
  at::Tensor scaled = logits.to(at::kCPU, at::kDouble) / params_.temperature;
  auto [sorted, order] = scaled.sort(/*dim=*/-1, /*descending=*/true);
  int64_t keep = sorted.size(0);
  if (params_.top_k > 0) keep = std::min(keep, params_.top_k);
  at::Tensor probs = at::softmax(sorted.narrow(0, 0, keep), -1);
  if (params_.top_p < 1.0) {
    // Keep tokens until the mass before them reaches top_p (at least one).
    at::Tensor mass_before = probs.cumsum(0) - probs;
    keep = std::max<int64_t>(1, (mass_before < params_.top_p).sum().item<int64_t>());
    probs = probs.narrow(0, 0, keep);
    probs = probs / probs.sum();
  }
  const double* p = probs.data_ptr<double>();
  double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  double cumulative = 0;
  for (int64_t i = 0; i < keep; ++i) {
    cumulative += p[i];
    if (u < cumulative) return static_cast<int32_t>(order[i].item<int64_t>());
  }
  return static_cast<int32_t>(order[keep - 1].item<int64_t>());
}

}  // namespace mnemo
