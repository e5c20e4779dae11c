// Choosing the next token from logits: greedy, or temperature with top-k and
// top-p, from a seeded generator so a run can be repeated exactly.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <random>

namespace mnemo {

struct SamplingParams {
  double temperature = 0.0;  // 0 = greedy
  int64_t top_k = 0;         // 0 = no limit
  double top_p = 1.0;        // nucleus: the smallest set whose probability reaches top_p
  uint64_t seed = 0;
};

// Throws mnemo::Error for a negative temperature or top_k, or top_p outside (0, 1].
void validate(const SamplingParams& params);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // `logits`: [vocab] float32 on any device. Returns a token id.
  int32_t sample(const at::Tensor& logits);

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace mnemo
