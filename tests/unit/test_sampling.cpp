// The sampler: greedy is argmax, a seed repeats a run exactly, top-k and
// top-p cut the distribution where they say, and bad parameters are refused.
#include "model/error.h"
#include "model/sampling.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace mnemo {
namespace {

at::Tensor logits_of(std::vector<float> values) { return at::tensor(values); }

TEST(Sampler, TemperatureZeroIsArgmax) {
  Sampler sampler({.temperature = 0});
  EXPECT_EQ(sampler.sample(logits_of({0.1f, 3.0f, -1.0f, 2.9f})), 1);
}

TEST(Sampler, TheSameSeedRepeatsTheSameTokens) {
  at::Tensor logits = at::randn({50}, at::TensorOptions().dtype(at::kFloat));
  Sampler a({.temperature = 1.0, .seed = 42}), b({.temperature = 1.0, .seed = 42}), c({.temperature = 1.0, .seed = 7});
  std::vector<int32_t> first, second, other;
  for (int i = 0; i < 64; ++i) {
    first.push_back(a.sample(logits));
    second.push_back(b.sample(logits));
    other.push_back(c.sample(logits));
  }
  EXPECT_EQ(first, second);
  EXPECT_NE(first, other);
}

TEST(Sampler, TopKOneIsGreedyWhateverTheTemperature) {
  Sampler sampler({.temperature = 5.0, .top_k = 1, .seed = 3});
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sampler.sample(logits_of({1.0f, 0.5f, 1.5f, 1.4f})), 2);
}

TEST(Sampler, TopKNeverPicksOutsideTheTopK) {
  Sampler sampler({.temperature = 10.0, .top_k = 2, .seed = 5});
  for (int i = 0; i < 200; ++i) {
    int32_t token = sampler.sample(logits_of({1.0f, 0.5f, 1.5f, 1.4f}));
    EXPECT_TRUE(token == 2 || token == 3) << token;
  }
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingTheMass) {
  // Probabilities 0.5, 0.3, 0.15, 0.05: top_p 0.7 keeps the first two only.
  at::Tensor logits = at::log(at::tensor({0.5, 0.3, 0.15, 0.05})).to(at::kFloat);
  Sampler sampler({.temperature = 1.0, .top_p = 0.7, .seed = 9});
  std::map<int32_t, int> counts;
  for (int i = 0; i < 2000; ++i) ++counts[sampler.sample(logits)];
  EXPECT_EQ(counts.size(), 2u);
  // Renormalised: 0.625 / 0.375.
  EXPECT_NEAR(counts[0] / 2000.0, 0.625, 0.04);
  EXPECT_NEAR(counts[1] / 2000.0, 0.375, 0.04);
}

TEST(Sampler, FrequenciesFollowTheSoftmaxAtTemperatureOne) {
  at::Tensor logits = at::log(at::tensor({0.6, 0.3, 0.1})).to(at::kFloat);
  Sampler sampler({.temperature = 1.0, .seed = 11});
  std::map<int32_t, int> counts;
  const int n = 5000;
  for (int i = 0; i < n; ++i) ++counts[sampler.sample(logits)];
  EXPECT_NEAR(counts[0] / double(n), 0.6, 0.03);
  EXPECT_NEAR(counts[1] / double(n), 0.3, 0.03);
  EXPECT_NEAR(counts[2] / double(n), 0.1, 0.02);
}

TEST(Sampler, InvalidParametersAreRefused) {
  EXPECT_THROW(Sampler({.temperature = -1}), Error);
  EXPECT_THROW(Sampler({.temperature = std::nan("")}), Error);
  EXPECT_THROW(Sampler({.temperature = INFINITY}), Error);
  EXPECT_THROW(Sampler({.top_k = -3}), Error);
  EXPECT_THROW(Sampler({.top_p = 0}), Error);
  EXPECT_THROW(Sampler({.top_p = 1.5}), Error);
}

}  // namespace
}  // namespace mnemo
