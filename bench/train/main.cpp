// bench_train: training speed of the trainer on the default model. For N
// generated users (the test split's logs) it times, in one run:
//   data       building each user's data (the augmenter's generations included)
//   batched    all N users' adapters trained together, N users per batch
//   sequential the same N users one after another, same steps and examples
// and writes every step's sequences to --batches FILE, so the peft baseline
// (bench/train/peft_train.py, run by run.sh) trains the same adapters on the
// same sequences with the same steps. Prints one JSON row per line for
// bench/write_results.py (which adds device, commit and date).
#include "eval/benchmark_generator.h"
#include "model/base_model.h"
#include "model/default_model.h"
#include "trainer/augmenter.h"
#include "trainer/retention_bank.h"
#include "trainer/train_config.h"
#include "trainer/training_data.h"
#include "trainer/user_trainer.h"

#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mnemo;
  CLI::App app{"bench_train: seconds per user of the trainer, batched against one user after another"};
  int64_t n_users = 8, steps = 0, threads = 2;
  std::string model_path, config_path, batches_path = "train_batches.json", device = "cpu", dtype = "float32";
  app.add_option("--users", n_users, "generated users")->capture_default_str();
  app.add_option("--steps", steps, "training steps (0 = the config's)")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads")->capture_default_str();
  app.add_option("--model", model_path, "base model (default: the default model)");
  app.add_option("--config", config_path, "training config (default: built in)");
  app.add_option("--device", device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--dtype", dtype, "the base's weights: float32 or bfloat16 (adapters train in float32)")
      ->check(CLI::IsMember({"float32", "bfloat16"}))
      ->capture_default_str();
  app.add_option("--batches", batches_path, "where to write every step's sequences for the peft baseline")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(static_cast<int>(threads));

  TrainConfig config = config_path.empty() ? TrainConfig{} : read_train_config(config_path);
  if (steps > 0) config.steps = steps;
  if (model_path.empty()) model_path = config.model.empty() ? default_model_path() : config.model;
  LoadOptions load;
  load.device = device;
  load.dtype = dtype;
  BaseModel model = open_base_model(model_path, load);

  BenchmarkOptions options;
  options.n_users = n_users;
  options.seed = 1;
  Benchmark benchmark = generate_benchmark(options);

  auto data_started = Clock::now();
  std::vector<std::unique_ptr<UserData>> data;
  for (const GeneratedUser& user : benchmark.users) {
    auto built = std::make_unique<UserData>(build_user_data(user.id, user.conversations, config.data));
    if (config.data.augmentation)
      add_augmented_examples(*built,
                             augment_statements(model, built->statements, built->kinds,
                                                config.data.augment_faithful, config.data.augment_samples,
                                                config.data.augment_temperature, config.data.seed),
                             config.data);
    limit_abstention_share(*built, config.data);
    data.push_back(std::move(built));
  }
  std::vector<ChatExample> retention;
  if (config.data.retention && config.retention_per_step > 0)
    retention = build_retention_examples(model, config.data.retention_prompts, config.data.retention_answer_tokens,
                                         config.data.replay_loss);
  const double data_seconds = seconds_since(data_started);
  std::vector<const UserData*> users;
  for (const auto& d : data) users.push_back(d.get());

  // Untimed warm-up: the first training step of a process costs seconds more
  // than the next (thread pools, kernel choice, first touch of the activations'
  // memory; measured 11 s against 3.5 s for 4 users), and neither timed
  // workload should pay it for the other.
  {
    TrainConfig warm_up = config;
    warm_up.steps = 1;
    warm_up.users_per_batch = n_users;
    train_users(model, warm_up, users, retention);
  }

  // Batched, recording each user's sequences per step for the baseline.
  json recorded = json::object();
  TrainConfig batched = config;
  batched.users_per_batch = n_users;
  auto started = Clock::now();
  train_users(model, batched, users, retention, {},
              [&](const std::vector<std::string>& names, int64_t step, const std::vector<TrainingSequence>& batch) {
                for (const TrainingSequence& sequence : batch) {
                  json& steps_of = recorded[names[static_cast<size_t>(sequence.slot)]];
                  while (static_cast<int64_t>(steps_of.size()) <= step) steps_of.push_back(json::array());
                  steps_of[static_cast<size_t>(step)].push_back(
                      {{"tokens", sequence.tokens}, {"weights", sequence.target_weights}, {"kl", sequence.kl_weights}});
                }
              });
  const double batched_seconds = seconds_since(started);

  TrainConfig sequential = config;
  sequential.users_per_batch = 1;
  started = Clock::now();
  train_users(model, sequential, users, retention);
  const double sequential_seconds = seconds_since(started);

  std::ofstream(batches_path) << json{{"config",
                                       {{"rank", config.rank},
                                        {"alpha", config.alpha},
                                        {"target_modules", config.target_modules},
                                        {"steps", config.steps},
                                        {"learning_rate", config.learning_rate},
                                        {"warmup_steps", config.warmup_steps},
                                        {"max_grad_norm", config.max_grad_norm},
                                        {"kl_weight", config.data.kl_weight}}},
                                      {"users", recorded}}
                                         .dump();

  const double n = static_cast<double>(n_users);
  auto row = [&](const char* workload, double seconds, double baseline) {
    json r = {{"workload", workload},
                    {"device", device},
                    {"dtype", dtype},
                    {"users", n_users},
                    {"steps", config.steps},
                    {"seconds", seconds},
                    {"seconds_per_user", seconds / n},
                    {"speedup", baseline > 0 ? baseline / seconds : 1.0}};
    std::printf("%s\n", r.dump().c_str());
  };
  row("data (augmentation + retention answers)", data_seconds, 0);
  row("train: one user after another", sequential_seconds, sequential_seconds);
  row("train: all users in one batch", batched_seconds, sequential_seconds);
  std::fflush(stdout);
  return 0;
}
