// The hand-written small-batch linear of CPU decode (kernels/skinny_linear_cpu.h)
// against at::linear: every row count it takes, widths that are and are not a
// multiple of the vector width and of its four-row blocks, a bias, a strided
// x, and the cases it must refuse (autograd on, too many rows, a transposed
// weight, bfloat16, mismatched widths).
#include "kernels/skinny_linear_cpu.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <cmath>

namespace mnemo {
namespace {

TEST(SkinnyLinear, EqualsAtLinearForEveryRowCountItTakes) {
  c10::InferenceMode inference;
  at::manual_seed(3);
  for (int64_t k : {576, 1536, 100, 7})
    for (int64_t n : {1, 6, 192, 577})
      for (int64_t m = 1; m <= kSkinnyLinearMaxRows; m += (m < 4 ? 1 : 5)) {
        at::Tensor x = at::randn({m, k}), w = at::randn({n, k}), b = at::randn({n});
        EXPECT_EQ(skinny_linear_applies(x, w), m >= kSkinnyLinearMinRows);
        at::Tensor want = at::linear(x, w), got = skinny_linear_cpu(x, w);
        ASSERT_EQ(got.sizes(), want.sizes());
        // float32 sums of k products of unit normals in another order.
        const double tolerance = 1e-5 * std::sqrt(static_cast<double>(k)) * 4;
        EXPECT_LT((got - want).abs().max().item<double>(), tolerance) << "m " << m << " k " << k << " n " << n;
        EXPECT_LT((skinny_linear_cpu(x, w, b) - at::linear(x, w, b)).abs().max().item<double>(), tolerance);
      }
}

TEST(SkinnyLinear, TakesAStridedXAndGivesTheSameRows) {
  c10::InferenceMode inference;
  at::Tensor wide = at::randn({4, 1000}), w = at::randn({64, 500});  // 4 rows: above the minimum
  at::Tensor x = wide.narrow(1, 250, 500);  // rows with a stride of 1000
  ASSERT_FALSE(x.is_contiguous());
  EXPECT_LT((skinny_linear_cpu(x, w) - at::linear(x, w)).abs().max().item<double>(), 1e-3);
}

TEST(SkinnyLinear, RefusesWhatItDoesNotTake) {
  at::Tensor x = at::randn({kSkinnyLinearMinRows, 8}), w = at::randn({4, 8});
  {
    c10::AutoGradMode grad(true);
    EXPECT_FALSE(skinny_linear_applies(x, w)) << "training needs autograd through at::linear";
  }
  c10::InferenceMode inference;
  EXPECT_TRUE(skinny_linear_applies(x, w));
  EXPECT_FALSE(skinny_linear_applies(at::randn({kSkinnyLinearMaxRows + 1, 8}), w));
  EXPECT_FALSE(skinny_linear_applies(at::randn({1, 8}), w)) << "one row is MKL's SGEMV";
  EXPECT_THROW(skinny_linear_cpu(at::randn({kSkinnyLinearMaxRows + 1, 8}), w), c10::Error);
  EXPECT_FALSE(skinny_linear_applies(x, at::randn({8, 4}).t()));  // not contiguous
  EXPECT_FALSE(skinny_linear_applies(x.to(at::kBFloat16), w.to(at::kBFloat16)));
  EXPECT_FALSE(skinny_linear_applies(x, at::randn({4, 9})));
  EXPECT_THROW(skinny_linear_cpu(x, at::randn({4, 9})), c10::Error);
  EXPECT_THROW(skinny_linear_cpu(x, w, at::randn({5})), c10::Error);
  set_skinny_linear_enabled(false);
  EXPECT_FALSE(skinny_linear_applies(x, w));
  set_skinny_linear_enabled(true);
}

}  // namespace
}  // namespace mnemo
