// The per-token CPU LoRA path (kernels/lora_cpu_per_token.h) gives what the
// grouped reference gives, over shapes, dtypes, slot patterns (−1 slots,
// repeated and distinct adapters), mixed ranks (rank 0 included) and padding
// that holds NaN (which must never be read), and refuses bad tables.
#include "adapters/adapter_slots.h"
#include "adapters/lora_adapter.h"
#include "kernels/lora_cpu_per_token.h"
#include "kernels/lora_ops.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <limits>
#include <tuple>

namespace mnemo {
namespace {

struct Case {
  int64_t tokens, in, out, slots, r_max;
  at::ScalarType dtype;
};

void expect_matches_reference(const Case& c, uint64_t seed) {
  c10::InferenceMode guard;
  at::manual_seed(static_cast<int64_t>(seed));
  auto options = at::TensorOptions().dtype(c.dtype);
  at::Tensor x = at::randn({c.tokens, c.in}, options);
  at::Tensor A = at::randn({c.slots, c.r_max, c.in}, options) * 0.1;
  at::Tensor B = at::randn({c.slots, c.out, c.r_max}, options) * 0.1;
  at::Tensor ranks = at::randint(0, c.r_max + 1, {c.slots}, at::TensorOptions().dtype(at::kInt));
  ranks[0] = static_cast<int>(c.r_max);
  at::Tensor scales = at::rand({c.slots}, at::TensorOptions().dtype(at::kFloat)) + 0.5;
  // Padding beyond each slot's rank holds NaN: reading it would show.
  for (int64_t s = 0; s < c.slots; ++s) {
    const int64_t r = ranks[s].item<int>();
    if (r < c.r_max) {
      A[s].narrow(0, r, c.r_max - r).fill_(std::numeric_limits<float>::quiet_NaN());
      B[s].narrow(1, r, c.r_max - r).fill_(std::numeric_limits<float>::quiet_NaN());
    }
  }
  at::Tensor slots = at::randint(-1, c.slots, {c.tokens}, at::TensorOptions().dtype(at::kInt));
  at::Tensor y0 = at::randn({c.tokens, c.out}, options);
  at::Tensor expected = y0.clone(), actual = y0.clone();
  lora_apply(expected, x, A, B, ranks, scales, slots);
  lora_apply_per_token_cpu(actual, x, A, B.transpose(1, 2).contiguous(), ranks, scales, slots);
  const double tolerance = c.dtype == at::kFloat ? 1e-5 : 2e-2;
  EXPECT_TRUE(at::allclose(actual.to(at::kFloat), expected.to(at::kFloat), tolerance, tolerance))
      << "tokens " << c.tokens << " in " << c.in << " out " << c.out << " slots " << c.slots << " r_max " << c.r_max
      << " dtype " << c.dtype << ": max difference "
      << (actual.to(at::kFloat) - expected.to(at::kFloat)).abs().max().item<float>();
  // Tokens without an adapter are untouched, bit for bit.
  at::Tensor untouched = slots.eq(-1);
  EXPECT_TRUE(at::equal(actual.index({untouched}), y0.index({untouched})));
}

TEST(LoraPerTokenCpu, MatchesTheGroupedReference) {
  uint64_t seed = 1;
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16})
    for (Case c : {Case{1, 64, 64, 1, 8, dtype}, Case{8, 96, 160, 8, 16, dtype}, Case{32, 64, 200, 32, 16, dtype},
                   Case{17, 33, 7, 5, 64, dtype}, Case{5, 128, 64, 3, 1, dtype}})
      expect_matches_reference(c, seed++);
}

TEST(LoraPerTokenCpu, ANonContiguousRowOfXIsRead) {
  c10::InferenceMode guard;
  at::Tensor wide = at::randn({4, 128});
  at::Tensor x = wide.narrow(1, 0, 64);  // rows with stride 128
  at::Tensor A = at::randn({2, 8, 64}), B = at::randn({2, 32, 8});
  at::Tensor ranks = at::tensor({8, 4}, at::kInt), scales = at::tensor({0.5f, 2.0f});
  at::Tensor slots = at::tensor({1, 0, -1, 1}, at::kInt);
  at::Tensor expected = at::zeros({4, 32}), actual = at::zeros({4, 32});
  lora_apply(expected, x.contiguous(), A, B, ranks, scales, slots);
  lora_apply_per_token_cpu(actual, x, A, B.transpose(1, 2).contiguous(), ranks, scales, slots);
  EXPECT_TRUE(at::allclose(actual, expected, 1e-5, 1e-5));
}

TEST(LoraPerTokenCpu, BadTablesAreRefusedWithTheirNames) {
  c10::InferenceMode guard;
  at::Tensor x = at::randn({2, 16}), y = at::zeros({2, 8});
  at::Tensor A = at::randn({2, 4, 16}), B = at::randn({2, 8, 4});
  at::Tensor scales = at::ones({2});
  try {
    lora_apply_per_token_cpu(y, x, A, B.transpose(1, 2), at::tensor({4, 4}, at::kInt), scales, at::tensor({0, 2}, at::kInt));
    FAIL() << "slot 2 of 2 slots was accepted";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("token_slots[1] = 2"), std::string::npos) << e.what();
  }
  try {
    lora_apply_per_token_cpu(y, x, A, B.transpose(1, 2), at::tensor({4, 5}, at::kInt), scales, at::tensor({0, 1}, at::kInt));
    FAIL() << "rank 5 above r_max 4 was accepted";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("ranks[1] = 5"), std::string::npos) << e.what();
  }
}

// The slots keep Bᵀ for this path: after loads, a larger rank, and training
// that changes B in place, both CPU decode paths still give the same deltas.
TEST(LoraPerTokenCpu, AdapterSlotsGiveTheSameDeltasOnBothDecodePaths) {
  ModelConfig config;
  config.vocab_size = 32;
  config.hidden_size = 48;
  config.intermediate_size = 80;
  config.num_layers = 2;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 12;
  AdapterSlots slots(config, 3, at::kFloat, at::kCPU, 8);
  LoraConfig small, large;
  small.rank = 4;
  large.rank = 16;  // grows the stacks' r_max
  slots.load(0, make_random_adapter(small, config, 1));
  slots.load(2, make_random_adapter(large, config, 2));
  auto deltas = [&](CpuDecodePath path) {
    slots.set_cpu_decode_path(path);
    at::NoGradGuard no_grad;
    at::manual_seed(5);
    at::Tensor x = at::randn({4, config.hidden_size});
    at::Tensor y = at::zeros({4, config.intermediate_size});
    LoraRouting routing{.token_slots = at::tensor({0, 2, -1, 2}, at::kInt)};
    slots.apply(1, LinearModule::Up, x, y, routing);
    return y;
  };
  EXPECT_TRUE(at::allclose(deltas(CpuDecodePath::PerToken), deltas(CpuDecodePath::Grouped), 1e-5, 1e-5));
  slots.set_requires_grad(true);
  {
    at::NoGradGuard no_grad;
    const_cast<at::Tensor&>(slots.b_stack(1, LinearModule::Up)).mul_(3.0);  // an optimizer step, in place
  }
  slots.set_requires_grad(false);
  at::Tensor grouped = deltas(CpuDecodePath::Grouped);
  EXPECT_GT(grouped.abs().max().item<float>(), 0.0f);
  EXPECT_TRUE(at::allclose(deltas(CpuDecodePath::PerToken), grouped, 1e-5, 1e-5));
}

}  // namespace
}  // namespace mnemo
