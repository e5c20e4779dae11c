// The adapter optimizer (trainer/adapter_optimizer.h): from the same initial
// adapter, on the same sequences, Mnemo's AdamW steps give the adapter that
// peft + torch.optim.AdamW give (scripts/reference_train.py; fp32, 1e-5);
// and a user trained in one batch with another ends exactly where it ends
// trained alone; and a bf16 base trains float32 adapters to where a float32
// base takes them, within bf16's precision; and the retention bank's cached
// teacher trains what a teacher forward in every step trains.
#include "adapters/adapter_slots.h"
#include "adapters/lora_adapter.h"
#include "model/error.h"
#include "model/model_loader.h"
#include "model/transformer.h"
#include "support/command.h"
#include "support/reference.h"
#include "trainer/adapter_optimizer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

namespace mnemo {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<Transformer> reference_llama(const std::string& dtype = "float32") {
  LoadOptions options;
  options.dtype = dtype;
  return load_transformer((testing::reference_dir() / "models" / "llama").string(), options);
}

// Two sequences with loss on part of each (weight 0 marks a prompt).
std::vector<TrainingSequence> sequences(int32_t slot, int64_t vocab, int64_t seed) {
  std::vector<TrainingSequence> out;
  for (int64_t length : {9, 6}) {
    TrainingSequence s;
    s.slot = slot;
    for (int64_t i = 0; i < length; ++i) s.tokens.push_back(static_cast<int32_t>((seed * 131 + i * 37 + length) % vocab));
    for (int64_t i = 0; i + 1 < length; ++i) s.target_weights.push_back(i < 2 ? 0.0f : (i % 3 == 0 ? 2.0f : 1.0f));
    out.push_back(s);
  }
  return out;
}

double max_adapter_diff(const LoraAdapter& a, const LoraAdapter& b) {
  double worst = 0;
  for (size_t layer = 0; layer < a.layers.size(); ++layer)
    for (LinearModule m : a.config.target_modules) {
      worst = std::max(worst, (a.pair(layer, m).A.to(at::kFloat) - b.pair(layer, m).A.to(at::kFloat)).abs().max().item<double>());
      worst = std::max(worst, (a.pair(layer, m).B.to(at::kFloat) - b.pair(layer, m).B.to(at::kFloat)).abs().max().item<double>());
    }
  return worst;
}

TEST(AdapterOptimizer, StepsMatchPeftWithTorchAdamW) {
  auto model = reference_llama();
  LoraConfig config;
  config.rank = 8;
  config.alpha = 16;
  LoraAdapter initial = make_random_adapter(config, model->config(), 7, /*std=*/0.05);
  fs::path dir = testing::scratch_dir("adapter_optimizer_parity");
  write_peft_adapter((dir / "initial").string(), initial);
  std::vector<TrainingSequence> batch = sequences(0, model->config().vocab_size, 3);
  nlohmann::json batch_json = nlohmann::json::array();
  for (const TrainingSequence& s : batch) batch_json.push_back({{"tokens", s.tokens}, {"weights", s.target_weights}});
  std::ofstream(dir / "batch.json") << batch_json.dump();

  OptimizerConfig optimizer;
  optimizer.learning_rate = 5e-3;
  optimizer.warmup_steps = 1;
  optimizer.total_steps = 4;
  optimizer.max_grad_norm = 0.5;
  optimizer.weight_decay = 0.01;
  const int steps = 4;

  AdapterSlots slots(model->config(), 1, at::kFloat, at::kCPU);
  slots.load(0, initial);
  AdapterOptimizer trainer(*model, slots, optimizer);
  double first_loss = 0, last_loss = 0;
  for (int step = 0; step < steps; ++step) {
    StepResult result = trainer.step(batch);
    (step == 0 ? first_loss : last_loss) = result.loss_by_slot[0];
  }
  EXPECT_LT(last_loss, first_loss);  // it learns
  LoraAdapter trained = slots.extract(0);

  const std::string command =
      testing::shell_quote(testing::env_or_empty("MNEMO_PYTHON")) + " " +
      testing::shell_quote(testing::env_or_empty("MNEMO_SOURCE_DIR") + "/scripts/reference_train.py") + " --model " +
      testing::shell_quote((testing::reference_dir() / "models" / "llama").string()) + " --adapter " +
      testing::shell_quote((dir / "initial").string()) + " --batch " + testing::shell_quote((dir / "batch.json").string()) +
      " --out " + testing::shell_quote((dir / "peft").string()) + " --steps 4 --lr 5e-3 --warmup 1 --total 4 "
      "--max-grad-norm 0.5 --weight-decay 0.01 2>&1";
  auto r = testing::run_command(command);
  ASSERT_EQ(r.exit_code, 0) << command << "\n" << r.output;
  LoraAdapter reference = read_peft_adapter((dir / "peft").string());
  EXPECT_GT(max_adapter_diff(trained, initial), 1e-3);  // the steps moved it
  const double diff = max_adapter_diff(trained, reference);
  std::printf("max |mnemo - peft| after %d steps: %.3g (moved %.3g from the start)\n", steps, diff,
              max_adapter_diff(trained, initial));
  EXPECT_LE(diff, 1e-5);
}

TEST(AdapterOptimizer, AUserTrainedInABatchEndsWhereItEndsAlone) {
  auto model = reference_llama();
  LoraConfig config;
  config.rank = 4;
  config.alpha = 8;
  LoraAdapter a = make_random_adapter(config, model->config(), 11, 0.05);
  LoraConfig config_b = config;
  config_b.rank = 8;  // another rank, in the same stacks
  LoraAdapter b = make_random_adapter(config_b, model->config(), 12, 0.05);
  OptimizerConfig optimizer;
  optimizer.learning_rate = 1e-2;
  optimizer.max_grad_norm = 0.3;  // per user: B's larger gradient must not shrink A's
  const int64_t vocab = model->config().vocab_size;

  AdapterSlots alone(model->config(), 2, at::kFloat, at::kCPU);
  alone.load(0, a);
  AdapterOptimizer alone_trainer(*model, alone, optimizer);
  for (int step = 0; step < 3; ++step) alone_trainer.step(sequences(0, vocab, 5));

  AdapterSlots together(model->config(), 2, at::kFloat, at::kCPU);
  together.load(0, a);
  together.load(1, b);
  AdapterOptimizer together_trainer(*model, together, optimizer);
  for (int step = 0; step < 3; ++step) {
    std::vector<TrainingSequence> batch = sequences(1, vocab, 9);
    for (TrainingSequence& s : sequences(0, vocab, 5)) batch.insert(batch.begin() + 1, s);
    together_trainer.step(batch);
  }
  const double diff = max_adapter_diff(alone.extract(0), together.extract(0));
  std::printf("user A alone vs in a batch with B: max diff %.3g\n", diff);
  // Float32 rounding only: the batch's base GEMMs have other shapes than the
  // lone user's (measured 1.6e-6 after 3 steps that moved the weights ~1e-2).
  EXPECT_LE(diff, 1e-5);
  EXPECT_GT(max_adapter_diff(together.extract(1), b), 1e-4);  // B trained too
}

// What `dtype: bfloat16` trains (a GPU's recipe; the same code runs on CPU):
// the base's weights and activations in bf16, the adapter's master weights,
// gradients and AdamW moments in float32.
TEST(AdapterOptimizer, ABfloat16BaseTrainsFloat32AdaptersLikeAFloat32Base) {
  LoraConfig config;
  config.rank = 8;
  config.alpha = 16;
  OptimizerConfig optimizer;
  optimizer.learning_rate = 5e-3;
  optimizer.warmup_steps = 1;
  optimizer.total_steps = 4;
  optimizer.max_grad_norm = 0.5;
  std::vector<LoraAdapter> trained;
  std::vector<double> first_loss, last_loss;
  LoraAdapter initial;
  for (const char* dtype : {"float32", "bfloat16"}) {
    auto model = reference_llama(dtype);
    if (initial.layers.empty()) initial = make_random_adapter(config, model->config(), 7, /*std=*/0.05);
    AdapterSlots slots(model->config(), 1, at::kFloat, at::kCPU);
    slots.load(0, initial);
    AdapterOptimizer trainer(*model, slots, optimizer);
    std::vector<TrainingSequence> batch = sequences(0, model->config().vocab_size, 3);
    for (int step = 0; step < 4; ++step) {
      StepResult result = trainer.step(batch);
      ASSERT_TRUE(std::isfinite(result.loss_by_slot[0])) << dtype << " step " << step;
      if (step == 0) first_loss.push_back(result.loss_by_slot[0]);
      if (step == 3) last_loss.push_back(result.loss_by_slot[0]);
    }
    EXPECT_EQ(slots.a_stack(0, LinearModule::Q).scalar_type(), at::kFloat) << dtype;
    trained.push_back(slots.extract(0));
  }
  // AdamW moves a weight by about the learning rate whatever its gradient's
  // size, so bf16 rounding in a small gradient shows in the weight as much as
  // a large gradient does: compare the direction of the whole update.
  double dot = 0, norm_bf16 = 0, norm_f32 = 0;
  for (size_t layer = 0; layer < initial.layers.size(); ++layer)
    for (LinearModule m : initial.config.target_modules)
      for (auto part : {&LoraPair::A, &LoraPair::B}) {
        const at::Tensor start = initial.pair(layer, m).*part;
        const at::Tensor bf16 = trained[1].pair(layer, m).*part - start, f32 = trained[0].pair(layer, m).*part - start;
        dot += (bf16 * f32).sum().item<double>();
        norm_bf16 += bf16.pow(2).sum().item<double>();
        norm_f32 += f32.pow(2).sum().item<double>();
      }
  const double cosine = dot / std::sqrt(norm_bf16 * norm_f32), moved = max_adapter_diff(trained[1], initial);
  std::printf("bf16 base vs float32 base after 4 steps: update cosine %.4f (moved %.3g); loss %.4f -> %.4f vs "
              "%.4f -> %.4f\n",
              cosine, moved, first_loss[1], last_loss[1], first_loss[0], last_loss[0]);
  EXPECT_GT(moved, 1e-3);    // the gradients reached the float32 weights
  EXPECT_GT(cosine, 0.9);    // and moved them the way float32 does
  EXPECT_NEAR(first_loss[1], first_loss[0], 0.01 * first_loss[0]);
  EXPECT_LT(last_loss[1], first_loss[1]);  // it learns, about as fast
  EXPECT_NEAR(last_loss[1], last_loss[0], 0.1 * last_loss[0]);
}

// The retention bank's base distributions, kept in a TeacherCache, train
// the adapter the teacher's forward in every step trains (float32
// rounding: the cached sequence ran alone, not in the step's batch), and
// each recurring sequence runs through the base once.
TEST(AdapterOptimizer, ACachedTeacherTrainsWhatAForwardEveryStepTrains) {
  auto model = reference_llama();
  LoraConfig config;
  config.rank = 4;
  config.alpha = 8;
  LoraAdapter a = make_random_adapter(config, model->config(), 21, 0.05);
  OptimizerConfig optimizer;
  optimizer.learning_rate = 1e-2;
  const int64_t vocab = model->config().vocab_size;
  // The user's sequences, then two retention sequences: KL on their answers.
  auto batch = [&](bool keyed) {
    std::vector<TrainingSequence> out = sequences(0, vocab, 3);
    for (TrainingSequence s : sequences(0, vocab, 17)) {
      s.kl_weights.assign(s.target_weights.size(), 0.0f);
      for (size_t t = 2; t < s.kl_weights.size(); ++t) s.kl_weights[t] = 1.0f;
      s.target_weights.assign(s.target_weights.size(), 0.0f);
      if (keyed) s.teacher_key = static_cast<int32_t>(out.size() - 2);
      out.push_back(s);
    }
    return out;
  };

  AdapterSlots every_step(model->config(), 1, at::kFloat, at::kCPU);
  every_step.load(0, a);
  AdapterOptimizer every_step_trainer(*model, every_step, optimizer);
  AdapterSlots cached(model->config(), 1, at::kFloat, at::kCPU);
  cached.load(0, a);
  TeacherCache cache;
  AdapterOptimizer cached_trainer(*model, cached, optimizer, &cache);
  for (int step = 0; step < 3; ++step) {
    StepResult x = every_step_trainer.step(batch(false));
    StepResult y = cached_trainer.step(batch(true));
    EXPECT_GT(x.kl_by_slot[0], 0);  // a random adapter is not the base
    EXPECT_NEAR(x.kl_by_slot[0], y.kl_by_slot[0], 1e-5 * x.kl_by_slot[0]);
  }
  EXPECT_EQ(cache.forwards, 2);  // 3 steps, 2 retention sequences
  const double diff = max_adapter_diff(every_step.extract(0), cached.extract(0));
  std::printf("teacher every step vs cached: max diff %.3g\n", diff);
  EXPECT_LE(diff, 1e-5);
  EXPECT_GT(max_adapter_diff(cached.extract(0), a), 1e-4);  // it trained

  // A key the cache holds for other tokens is an error, not a wrong teacher.
  std::vector<TrainingSequence> other = batch(true);
  other.back().tokens[0] = (other.back().tokens[0] + 1) % static_cast<int32_t>(vocab);
  EXPECT_THROW(cached_trainer.step(other), Error);
}

}  // namespace
}  // namespace mnemo
