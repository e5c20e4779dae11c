// The multi-adapter LoRA ops on CPU (kernels/lora_ops.h) against the naive
// per-token formula  y[t] += s·(x[t]·A[slot,:r]ᵀ)·B[slot,:,:r]ᵀ  computed in
// float64, over random shapes, mixed ranks, unsorted slots with −1, segments,
// fp32 and bf16, and autograd gradients against the naive formula's gradients.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/lora_ops.h"

namespace mnemo {
namespace {

at::Tensor ints(const std::vector<int32_t>& values) {
  return at::tensor(at::ArrayRef<int32_t>(values), at::TensorOptions().dtype(at::kInt)).clone();
}

at::Tensor floats(const std::vector<float>& values) {
  return at::tensor(at::ArrayRef<float>(values), at::TensorOptions().dtype(at::kFloat)).clone();
}

// One random problem: shapes, adapters, and a slot per token.
struct Problem {
  int64_t T = 0, in = 0, out = 0, S = 0, r_max = 0;
  std::vector<int32_t> ranks, slots;
  std::vector<float> scales;
  at::Tensor x, A, B, y0;  // float32; A/B padding (past each slot's rank) is NaN

  at::Tensor ranks_t() const { return ints(ranks); }
  at::Tensor scales_t() const { return floats(scales); }
  at::Tensor slots_t() const { return ints(slots); }
};

Problem random_problem(std::mt19937& rng, int64_t max_tokens = 40, int64_t max_features = 300) {
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  Problem p;
  p.T = uniform(1, max_tokens);
  p.in = uniform(1, max_features);
  p.out = uniform(1, max_features);
  p.S = uniform(1, 6);
  p.r_max = uniform(1, 64);
  for (int64_t s = 0; s < p.S; ++s) {
    p.ranks.push_back(static_cast<int32_t>(uniform(0, p.r_max)));
    p.scales.push_back(std::uniform_real_distribution<float>(0.25f, 2.0f)(rng));
  }
  p.ranks[0] = static_cast<int32_t>(p.r_max);  // one full-rank slot always
  for (int64_t t = 0; t < p.T; ++t) p.slots.push_back(static_cast<int32_t>(uniform(-1, p.S - 1)));
  p.x = at::randn({p.T, p.in});
  p.A = at::randn({p.S, p.r_max, p.in}) / std::sqrt(static_cast<double>(p.in));
  p.B = at::randn({p.S, p.out, p.r_max}) / std::sqrt(static_cast<double>(p.r_max));
  p.y0 = at::randn({p.T, p.out});
  // The ops must never read the padding: poison it.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t s = 0; s < p.S; ++s) {
    if (p.ranks[s] < p.r_max) {
      p.A.select(0, s).narrow(0, p.ranks[s], p.r_max - p.ranks[s]).fill_(nan);
      p.B.select(0, s).narrow(1, p.ranks[s], p.r_max - p.ranks[s]).fill_(nan);
    }
  }
  return p;
}

// The naive formula, token by token, built of differentiable ops so autograd
// gives the reference gradients. Inputs in any dtype; computes in x's dtype.
struct Naive {
  at::Tensor v, delta;  // [T, r_max], [T, out]
};

Naive naive(const at::Tensor& x, const at::Tensor& A, const at::Tensor& B, const std::vector<int32_t>& ranks,
            const std::vector<float>& scales, const std::vector<int32_t>& slots) {
  const int64_t T = x.size(0), r_max = A.size(1), out = B.size(1);
  std::vector<at::Tensor> v_rows, delta_rows;
  for (int64_t t = 0; t < T; ++t) {
    const int32_t s = slots[t];
    const int64_t r = s < 0 ? 0 : ranks[s];
    if (r == 0) {
      v_rows.push_back(at::zeros({r_max}, x.options()));
      delta_rows.push_back(at::zeros({out}, x.options()));
      continue;
    }
    at::Tensor a = A.select(0, s).narrow(0, 0, r);  // [r, in]
    at::Tensor b = B.select(0, s).narrow(1, 0, r);  // [out, r]
    at::Tensor vt = at::mv(a, x.select(0, t));      // [r]
    v_rows.push_back(at::constant_pad_nd(vt, {0, r_max - r}, 0));
    delta_rows.push_back(at::mv(b, vt) * static_cast<double>(scales[s]));
  }
  return {at::stack(v_rows), at::stack(delta_rows)};
}

// The NaN padding replaced by zeros, for the naive formula's autograd (NaN·0
// would poison its gradients through the narrow).
at::Tensor finite(const at::Tensor& t) { return at::nan_to_num(t, 0.0, 0.0, 0.0); }

std::vector<int32_t> slots_of_segments(const std::vector<int32_t>& starts, const std::vector<int32_t>& seg_slots,
                                       int64_t T) {
  std::vector<int32_t> slots(static_cast<size_t>(T), -1);
  for (size_t i = 0; i < seg_slots.size(); ++i)
    for (int32_t t = starts[i]; t < starts[i + 1]; ++t) slots[t] = seg_slots[i];
  return slots;
}

// Random segments over [0, T): gaps, empty segments and −1 segments included.
void random_segments(std::mt19937& rng, int64_t T, int64_t S, std::vector<int32_t>& starts,
                     std::vector<int32_t>& seg_slots) {
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  int64_t t = uniform(0, std::min<int64_t>(2, T));
  starts = {static_cast<int32_t>(t)};
  seg_slots.clear();
  while (t < T) {
    t = std::min<int64_t>(T, t + uniform(0, 9));
    if (uniform(0, 5) == 0 && t < T) t = std::max<int64_t>(t, T - uniform(0, 2));  // maybe leave a tail gap
    starts.push_back(static_cast<int32_t>(t));
    seg_slots.push_back(static_cast<int32_t>(uniform(-1, S - 1)));
    if (uniform(0, 7) == 0) break;
  }
}

void expect_close(const at::Tensor& actual, const at::Tensor& expected, double rtol, double atol, const char* what,
                  int trial) {
  ASSERT_EQ(actual.sizes(), expected.sizes()) << what << " (trial " << trial << ")";
  at::Tensor a = actual.to(at::kDouble), e = expected.to(at::kDouble);
  EXPECT_TRUE(at::isfinite(a).all().item<bool>()) << what << " has non-finite values (trial " << trial << ")";
  double max_error = (a - e).abs().max().item<double>();
  EXPECT_TRUE(at::allclose(a, e, rtol, atol)) << what << " differs from the naive formula by " << max_error
                                              << " (trial " << trial << ")";
}

TEST(LoraOps, ShrinkAndExpandMatchTheNaiveFormulaOverRandomShapesFloat32) {
  std::mt19937 rng(1234);
  at::manual_seed(1234);
  for (int trial = 0; trial < 40; ++trial) {
    Problem p = random_problem(rng);
    Naive ref = naive(p.x.to(at::kDouble), finite(p.A).to(at::kDouble), finite(p.B).to(at::kDouble), p.ranks,
                      p.scales, p.slots);
    at::Tensor v = lora_shrink_cpu(p.x, p.A, p.ranks_t(), p.slots_t());
    expect_close(v, ref.v, 1e-4, 1e-5, "v", trial);
    at::Tensor y = p.y0.clone();
    lora_expand_cpu(y, v, p.B, p.ranks_t(), p.scales_t(), p.slots_t());
    expect_close(y, p.y0.to(at::kDouble) + ref.delta, 1e-4, 1e-5, "y", trial);
  }
}

TEST(LoraOps, TokensWithoutAdapterKeepYBitForBitAndVZero) {
  std::mt19937 rng(7);
  at::manual_seed(7);
  Problem p = random_problem(rng);
  p.slots[0] = -1;
  at::Tensor v = lora_shrink_cpu(p.x, p.A, p.ranks_t(), p.slots_t());
  at::Tensor y = p.y0.clone();
  lora_expand_cpu(y, v, p.B, p.ranks_t(), p.scales_t(), p.slots_t());
  for (int64_t t = 0; t < p.T; ++t) {
    if (p.slots[t] >= 0) continue;
    EXPECT_TRUE(at::equal(y.select(0, t), p.y0.select(0, t))) << "token " << t;
    EXPECT_EQ(v.select(0, t).abs().sum().item<float>(), 0.0f) << "token " << t;
  }
}

TEST(LoraOps, ColumnsOfVPastTheSlotRankAreZero) {
  at::manual_seed(3);
  at::Tensor x = at::randn({5, 32});
  at::Tensor A = at::randn({2, 16, 32});
  at::Tensor v = lora_shrink_cpu(x, A, ints({4, 16}), ints({0, 1, 0, -1, 1}));
  EXPECT_EQ(v.narrow(1, 4, 12).index_select(0, at::arange(0, 3, 2)).abs().sum().item<float>(), 0.0f);
  EXPECT_GT(v.select(0, 1).narrow(0, 4, 12).abs().sum().item<float>(), 0.0f);
}

TEST(LoraOps, AllTokensOfOneSlotAndNoTokensOfAnySlot) {
  std::mt19937 rng(11);
  at::manual_seed(11);
  Problem p = random_problem(rng);
  for (int32_t fill : {0, -1}) {
    std::vector<int32_t> slots(static_cast<size_t>(p.T), fill);
    Naive ref = naive(p.x.to(at::kDouble), finite(p.A).to(at::kDouble), finite(p.B).to(at::kDouble), p.ranks,
                      p.scales, slots);
    at::Tensor y = p.y0.clone();
    lora_apply(y, p.x, p.A, p.B, p.ranks_t(), p.scales_t(), ints(slots));
    expect_close(y, p.y0.to(at::kDouble) + ref.delta, 1e-4, 1e-5, "y", fill);
  }
}

TEST(LoraOps, SegmentsMatchTheNaiveFormulaWithGapsEmptyAndBaseSegments) {
  std::mt19937 rng(99);
  at::manual_seed(99);
  for (int trial = 0; trial < 40; ++trial) {
    Problem p = random_problem(rng);
    std::vector<int32_t> starts, seg_slots;
    random_segments(rng, p.T, p.S, starts, seg_slots);
    std::vector<int32_t> slots = slots_of_segments(starts, seg_slots, p.T);
    Naive ref = naive(p.x.to(at::kDouble), finite(p.A).to(at::kDouble), finite(p.B).to(at::kDouble), p.ranks,
                      p.scales, slots);
    at::Tensor v = lora_shrink_segments_cpu(p.x, p.A, p.ranks_t(), ints(starts), ints(seg_slots));
    expect_close(v, ref.v, 1e-4, 1e-5, "segment v", trial);
    at::Tensor y = p.y0.clone();
    lora_expand_segments_cpu(y, v, p.B, p.ranks_t(), p.scales_t(), ints(starts), ints(seg_slots));
    expect_close(y, p.y0.to(at::kDouble) + ref.delta, 1e-4, 1e-5, "segment y", trial);
    // The dispatching entry on CPU tensors is the reference.
    at::Tensor y2 = p.y0.clone();
    lora_apply_segments(y2, p.x, p.A, p.B, p.ranks_t(), p.scales_t(), ints(starts), ints(seg_slots));
    EXPECT_TRUE(at::equal(y, y2)) << "trial " << trial;
  }
}

TEST(LoraOps, BFloat16MatchesTheNaiveFormulaWithinBf16Tolerance) {
  std::mt19937 rng(5);
  at::manual_seed(5);
  for (int trial = 0; trial < 20; ++trial) {
    Problem p = random_problem(rng);
    at::Tensor x = p.x.to(at::kBFloat16), A = p.A.to(at::kBFloat16), B = p.B.to(at::kBFloat16);
    at::Tensor y0 = p.y0.to(at::kBFloat16);
    // The reference sees the same bf16-rounded inputs, computed in float64.
    Naive ref = naive(x.to(at::kDouble), finite(A).to(at::kDouble), finite(B).to(at::kDouble), p.ranks, p.scales,
                      p.slots);
    at::Tensor v = lora_shrink(x, A, p.ranks_t(), p.slots_t());
    EXPECT_EQ(v.scalar_type(), at::kBFloat16);
    expect_close(v, ref.v, 2e-2, 2e-2, "bf16 v", trial);
    at::Tensor y = y0.clone();
    lora_expand(y, v, B, p.ranks_t(), p.scales_t(), p.slots_t());
    // v is rounded to bf16 between the steps and y is bf16: a few bf16 ulps.
    expect_close(y, y0.to(at::kDouble) + ref.delta, 3e-2, 3e-2, "bf16 y", trial);
  }
}

// Gradients of L = Σ G ⊙ y w.r.t. x, A_stack and B_stack against the naive
// formula's autograd gradients (float64), for token slots and segments.
TEST(LoraOps, AutogradGradientsMatchTheNaiveFormula) {
  std::mt19937 rng(2024);
  at::manual_seed(2024);
  for (int trial = 0; trial < 16; ++trial) {
    Problem p = random_problem(rng, 24, 80);
    const bool segments = trial % 2 == 1;
    std::vector<int32_t> starts, seg_slots, slots = p.slots;
    if (segments) {
      random_segments(rng, p.T, p.S, starts, seg_slots);
      slots = slots_of_segments(starts, seg_slots, p.T);
    }
    at::Tensor G = at::randn({p.T, p.out});

    // Ours, float32. The padding is zero here (autograd of the naive form
    // multiplies through it), and must still get zero gradient from ours.
    at::Tensor x = p.x.clone().requires_grad_(true);
    at::Tensor A = finite(p.A).requires_grad_(true);
    at::Tensor B = finite(p.B).requires_grad_(true);
    at::Tensor y = p.y0.clone();
    if (segments)
      lora_apply_segments(y, x, A, B, p.ranks_t(), p.scales_t(), ints(starts), ints(seg_slots));
    else
      lora_apply(y, x, A, B, p.ranks_t(), p.scales_t(), ints(slots));
    // (With every token on −1 or rank 0 nothing depends on x/A/B: no graph.)
    at::Tensor loss = (y * G).sum();
    if (loss.requires_grad()) loss.backward();

    at::Tensor x64 = p.x.to(at::kDouble).requires_grad_(true);
    at::Tensor A64 = finite(p.A).to(at::kDouble).requires_grad_(true);
    at::Tensor B64 = finite(p.B).to(at::kDouble).requires_grad_(true);
    Naive ref = naive(x64, A64, B64, p.ranks, p.scales, slots);
    at::Tensor ref_loss = (ref.delta * G.to(at::kDouble)).sum();
    if (ref_loss.requires_grad()) ref_loss.backward();

    auto grad_or_zero = [](const at::Tensor& t) { return t.grad().defined() ? t.grad() : at::zeros_like(t); };
    expect_close(grad_or_zero(x), grad_or_zero(x64), 1e-4, 1e-4, "dL/dx", trial);
    expect_close(grad_or_zero(A), grad_or_zero(A64), 1e-4, 1e-4, "dL/dA_stack", trial);
    expect_close(grad_or_zero(B), grad_or_zero(B64), 1e-4, 1e-4, "dL/dB_stack", trial);
  }
}

// The model's hook adds into y = x·Wᵀ in place; autograd must see through that.
TEST(LoraOps, AutogradThroughInPlaceAddIntoABaseGemmOutput) {
  at::manual_seed(8);
  at::Tensor W = at::randn({24, 16});
  at::Tensor x = at::randn({6, 16}).requires_grad_(true);
  at::Tensor A = at::randn({3, 8, 16}).requires_grad_(true);
  at::Tensor B = at::randn({3, 24, 8}).requires_grad_(true);
  at::Tensor y = at::matmul(x, W.t());
  lora_apply(y, x, A, B, ints({8, 4, 2}), floats({2.0f, 1.0f, 0.5f}), ints({2, 0, -1, 0, 1, 2}));
  y.sum().backward();
  ASSERT_TRUE(x.grad().defined() && A.grad().defined() && B.grad().defined());
  // Rows past slot 1's rank get no gradient; slot 1 is used, so its first rows do.
  EXPECT_EQ(A.grad().select(0, 1).narrow(0, 4, 4).abs().sum().item<float>(), 0.0f);
  EXPECT_GT(A.grad().select(0, 1).narrow(0, 0, 4).abs().sum().item<float>(), 0.0f);
}

TEST(LoraOps, StridedViewsAreAccepted) {
  std::mt19937 rng(31);
  at::manual_seed(31);
  Problem p = random_problem(rng);
  at::Tensor x_wide = at::randn({p.T, p.in + 5});
  x_wide.narrow(1, 2, p.in).copy_(p.x);
  at::Tensor x_view = x_wide.narrow(1, 2, p.in);  // row stride ≠ in
  at::Tensor y_t = p.y0.t().contiguous().t();     // column-major y
  lora_apply(y_t, x_view, p.A, p.B, p.ranks_t(), p.scales_t(), p.slots_t());
  at::Tensor y = p.y0.clone();
  lora_apply(y, p.x, p.A, p.B, p.ranks_t(), p.scales_t(), p.slots_t());
  EXPECT_TRUE(at::allclose(y, y_t, 1e-5, 1e-6));
}

TEST(LoraOps, OutFormsOverwriteEveryElementOfV) {
  std::mt19937 rng(17);
  at::manual_seed(17);
  Problem p = random_problem(rng);
  at::Tensor v = at::full({p.T, p.r_max}, std::numeric_limits<float>::quiet_NaN());
  lora_shrink_out(v, p.x, p.A, p.ranks_t(), p.slots_t());
  EXPECT_TRUE(at::equal(v, lora_shrink_cpu(p.x, p.A, p.ranks_t(), p.slots_t())));
  std::vector<int32_t> starts{0, static_cast<int32_t>(p.T)}, seg_slots{0};
  v.fill_(std::numeric_limits<float>::quiet_NaN());
  lora_shrink_segments_out(v, p.x, p.A, p.ranks_t(), ints(starts), ints(seg_slots));
  EXPECT_TRUE(at::equal(v, lora_shrink_cpu(p.x, p.A, p.ranks_t(), ints(std::vector<int32_t>(p.T, 0)))));
}

TEST(LoraOps, NoTokensIsANoOp) {
  at::Tensor x = at::zeros({0, 8}), y = at::zeros({0, 4});
  at::Tensor A = at::randn({2, 4, 8}), B = at::randn({2, 4, 4});
  at::Tensor empty_slots = at::zeros({0}, at::TensorOptions().dtype(at::kInt));
  lora_apply(y, x, A, B, ints({4, 2}), floats({1, 1}), empty_slots);
  lora_apply_segments(y, x, A, B, ints({4, 2}), floats({1, 1}), ints({0}), empty_slots);
  EXPECT_EQ(y.numel(), 0);
}

TEST(LoraOps, BadInputsFailWithAMessage) {
  at::Tensor x = at::randn({3, 8}), y = at::zeros({3, 4});
  at::Tensor A = at::randn({2, 4, 8}), B = at::randn({2, 4, 4});
  at::Tensor ranks = ints({4, 2}), scales = floats({1, 1});
  EXPECT_THROW(lora_shrink(x, A, ranks, ints({0, 2, 1})), c10::Error);           // slot ≥ S
  EXPECT_THROW(lora_shrink(x, A, ranks, ints({0, -2, 1})), c10::Error);          // slot < −1
  EXPECT_THROW(lora_shrink(x, A, ranks, ints({0, 1})), c10::Error);              // wrong T
  EXPECT_THROW(lora_shrink(x, A, ints({5, 2}), ints({0, 1, 1})), c10::Error);    // rank > r_max
  EXPECT_THROW(lora_shrink(x, A.to(at::kBFloat16), ranks, ints({0, 1, 1})), c10::Error);  // dtype mismatch
  EXPECT_THROW(lora_shrink(x, at::randn({2, 65, 8}), ints({1, 1}), ints({0, 1, 1})), c10::Error);  // r_max > 64
  EXPECT_THROW(lora_shrink(x, at::randn({2, 4, 9}), ranks, ints({0, 1, 1})), c10::Error);  // in mismatch
  EXPECT_THROW(lora_shrink(x, A, ranks.to(at::kLong), ints({0, 1, 1})), c10::Error);       // ranks dtype
  at::Tensor v = lora_shrink(x, A, ranks, ints({0, 1, 1}));
  EXPECT_THROW(lora_expand(y, v, B, ranks, scales.to(at::kDouble), ints({0, 1, 1})), c10::Error);
  EXPECT_THROW(lora_expand(y, v, at::randn({2, 5, 4}), ranks, scales, ints({0, 1, 1})), c10::Error);
  EXPECT_THROW(lora_shrink_segments(x, A, ranks, ints({0, 2, 1}), ints({0, 1})), c10::Error);  // decreasing
  EXPECT_THROW(lora_shrink_segments(x, A, ranks, ints({0, 4}), ints({0})), c10::Error);        // past T
  EXPECT_THROW(lora_shrink_segments(x, A, ranks, ints({0, 3}), ints({0, 1})), c10::Error);     // N+1 mismatch
  try {
    lora_shrink(x, A, ranks, ints({0, 7, 1}));
    FAIL() << "expected an error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("token_slots[1] = 7"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mnemo
