// The weight-only int8/int4 CPU linear (kernels/quantized_linear_cpu.h):
// what quantizing keeps (every value within half a step of its block's
// scale; GGUF Q4_1 values kept exactly), the product against at::linear on
// the dequantized weight for every row count, direct and tiled, in each
// instruction set this CPU runs, the embedding lookup, and what it refuses.
#include "kernels/quantized_linear_cpu.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace mnemo {
namespace {

const std::vector<WeightQuant> kQuants = {WeightQuant::kInt8, WeightQuant::kInt4};

// Per block of 32: |w - dequantized| <= half a quantization step (and the
// rounding of the half-float scale).
TEST(QuantizedLinear, EveryValueIsWithinHalfAStepOfItsBlock) {
  at::manual_seed(1);
  at::Tensor w = at::randn({64, 576}) * 0.05;
  w.index_put_({3, 40}, 2.0);  // an outlier widens only its own block
  for (WeightQuant quant : kQuants) {
    at::Tensor back = dequantize_weight(quantize_weight(w, quant), quant, 576);
    at::Tensor blocks = w.view({64, 18, 32}), error = (back - w).abs().view({64, 18, 32});
    at::Tensor step = quant == WeightQuant::kInt8
                          ? std::get<0>(blocks.abs().max(-1)) / 127
                          : (std::get<0>(blocks.max(-1)) - std::get<0>(blocks.min(-1))) / 15;
    // Half a step, plus what rounding the scale (and minimum) to a half
    // float moves the largest code: 127 or 15 steps of 2^-11 relative.
    at::Tensor slack = std::get<0>(error.max(-1)) - (step * (0.5 + 127.0 / 2048) + 1e-6);
    EXPECT_LE(slack.max().item<double>(), 0.0) << weight_quant_name(quant);
    // The outlier's block is coarse; the next block keeps its fine step.
    EXPECT_LT(error[3][2].max().item<double>(), 0.05 * 4 / 15.0) << weight_quant_name(quant);
  }
}

TEST(QuantizedLinear, Q4_1ValuesComeBackExactly) {
  // What a GGUF Q4_1 tensor dequantizes to: per block d·q + m, q in 0..15
  // with both ends present (ggml's quantizer puts the block's min and max there).
  at::manual_seed(2);
  // d and m are half floats in the file.
  at::Tensor d = (at::rand({8, 4, 1}) * 0.01 + 1e-3).to(at::kHalf).to(at::kFloat);
  at::Tensor m = (at::randn({8, 4, 1}) * 0.05).to(at::kHalf).to(at::kFloat);
  at::Tensor q = at::randint(0, 16, {8, 4, 32}).to(at::kFloat);
  q.select(2, 0).fill_(0);
  q.select(2, 31).fill_(15);
  at::Tensor w = (d * q + m).view({8, 128});
  at::Tensor back = dequantize_weight(quantize_weight(w, WeightQuant::kInt4), WeightQuant::kInt4, 128);
  EXPECT_LT(((back - w).abs() / w.abs().clamp_min(1e-3)).max().item<double>(), 1e-5);
}

TEST(QuantizedLinear, EqualsAtLinearOnTheDequantizedWeightInEveryIsa) {
  c10::InferenceMode inference;
  at::manual_seed(3);
  for (QuantizedKernelIsa isa :
       {QuantizedKernelIsa::kPortable, QuantizedKernelIsa::kAvx2, QuantizedKernelIsa::kAvx512}) {
    if (!set_quantized_kernel_isa(isa)) continue;  // this CPU lacks it
    for (WeightQuant quant : kQuants)
      for (int64_t k : {32, 576, 1536})
        for (int64_t n : {1, 6, 192, 577})
          for (int64_t m : {1, 2, 3, 5, 8, 16, 17, 40}) {
            at::Tensor x = at::randn({m, k}), w = at::randn({n, k}) * 0.1, bias = at::randn({n});
            at::Tensor packed = quantize_weight(w, quant);
            at::Tensor exact = dequantize_weight(packed, quant, k);
            const std::string where = std::string(weight_quant_name(quant)) + " isa " +
                                      std::to_string(static_cast<int>(isa)) + " m " + std::to_string(m) + " k " +
                                      std::to_string(k) + " n " + std::to_string(n);
            at::Tensor want = at::linear(x, exact, bias), got = quantized_linear_cpu(x, packed, quant, bias);
            ASSERT_EQ(got.sizes(), want.sizes()) << where;
            // float32 sums of k products of size ~0.1 in another order.
            const double tolerance = 1e-5 * std::sqrt(static_cast<double>(k)) * 2;
            EXPECT_LT((got - want).abs().max().item<double>(), tolerance) << where;
          }
  }
  set_quantized_kernel_isa(QuantizedKernelIsa::kAuto);
}

TEST(QuantizedLinear, TakesAStridedXAndLooksUpEmbeddingRows) {
  c10::InferenceMode inference;
  at::manual_seed(4);
  at::Tensor w = at::randn({50, 64});
  for (WeightQuant quant : kQuants) {
    at::Tensor packed = quantize_weight(w, quant), exact = dequantize_weight(packed, quant, 64);
    at::Tensor wide = at::randn({3, 200}), x = wide.narrow(1, 100, 64);
    EXPECT_LT((quantized_linear_cpu(x, packed, quant) - at::linear(x, exact)).abs().max().item<double>(), 1e-4);
    at::Tensor ids = at::tensor(std::vector<int64_t>{7, 0, 49, 7});
    EXPECT_TRUE(at::equal(dequantize_weight_rows(packed, quant, 64, ids), exact.index_select(0, ids)));
    EXPECT_THROW(dequantize_weight_rows(packed, quant, 64, at::tensor(std::vector<int64_t>{50})), c10::Error);
  }
}

TEST(QuantizedLinear, RefusesWhatItDoesNotTake) {
  at::Tensor w = at::randn({4, 64}), packed = quantize_weight(w, WeightQuant::kInt8);
  EXPECT_EQ(packed.size(1), quantized_row_bytes(WeightQuant::kInt8, 64));
  EXPECT_EQ(quantized_row_bytes(WeightQuant::kInt8, 64), 2 * 2 + 64);  // ggml's Q8_0 size
  EXPECT_EQ(quantized_row_bytes(WeightQuant::kInt4, 64), 2 * 2 * 2 + 32);  // and Q4_1's
  {
    c10::AutoGradMode grad(true);
    EXPECT_THROW(quantized_linear_cpu(at::randn({1, 64}), packed, WeightQuant::kInt8), c10::Error)
        << "no autograd through quantized weights";
  }
  c10::InferenceMode inference;
  EXPECT_THROW(quantize_weight(at::randn({4, 48}), WeightQuant::kInt8), c10::Error) << "48 is not a multiple of 32";
  at::Tensor bad = w.clone();
  bad.index_put_({1, 1}, std::nan(""));
  EXPECT_THROW(quantize_weight(bad, WeightQuant::kInt4), c10::Error);
  EXPECT_THROW(quantized_linear_cpu(at::randn({1, 64}), packed, WeightQuant::kInt4), c10::Error)
      << "int8 bytes read as int4";
  EXPECT_THROW(quantized_linear_cpu(at::randn({1, 96}), packed, WeightQuant::kInt8), c10::Error);
  EXPECT_THROW(quantized_linear_cpu(at::randn({1, 64}).to(at::kBFloat16), packed, WeightQuant::kInt8), c10::Error);
  EXPECT_THROW(quantized_linear_cpu(at::randn({1, 64}), packed, WeightQuant::kInt8, at::randn({5})), c10::Error);
  EXPECT_THROW(quantized_linear_cpu(at::randn({1, 64}), packed, WeightQuant::kNone), c10::Error);
}

}  // namespace
}  // namespace mnemo
