// Trains users' adapters from their built data (training_data.h): users go
// through in groups of `users_per_batch`, each group in one set of adapter
// slots, and every step is one forward and backward of the frozen base over
// a batch that holds `examples_per_step` examples of every user in the group
// (drawn by their sampling weights) and `retention_per_step` retention
// examples with a KL penalty to the base. A user's adapter starts from PEFT's
// initialisation seeded by the config seed and the user id, and draws its
// examples from its own seeded stream, so a user ends with the same adapter
// whichever users share its batches (AdapterOptimizer keeps their gradients
// apart).
#pragma once

#include "adapters/lora_adapter.h"
#include "trainer/adapter_optimizer.h"
#include "trainer/train_config.h"
#include "trainer/training_data.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mnemo {

struct BaseModel;

struct UserTrainResult {
  std::string user;
  LoraAdapter adapter;
  int64_t steps = 0;
  double first_loss = 0;  // mean over the first few steps
  double final_loss = 0;  // mean over the last few steps
  double final_kl = 0;
  double seconds = 0;     // this user's share of its group's training time
  int64_t n_examples = 0;
  bool diverged = false;  // a non-finite loss: the adapter is not usable
};

// Called after every step of a group: users of the group, steps done, steps in all.
using TrainProgress = std::function<void(const std::vector<std::string>& users, int64_t step, int64_t steps,
                                         const std::vector<double>& losses)>;

// Sees every step's batch before it runs (benchmarks replay them elsewhere).
using BatchRecorder = std::function<void(const std::vector<std::string>& users, int64_t step,
                                         const std::vector<TrainingSequence>& batch)>;

// REQUIRES: `users` non-empty, each with at least one example.
std::vector<UserTrainResult> train_users(const BaseModel& model, const TrainConfig& config,
                                         const std::vector<const UserData*>& users,
                                         const std::vector<ChatExample>& retention,
                                         const TrainProgress& progress = {}, const BatchRecorder& recorder = {});

// The LoRA config the trainer's adapters get from `config`.
// A hash of a user id that is the same on every platform and standard
// library (FNV-1a, unlike std::hash): seeds each user's adapter and picks a
// user's training shard.
uint64_t stable_user_hash(const std::string& user);

LoraConfig lora_config_of(const TrainConfig& config, const std::string& base_model_name);

}  // namespace mnemo
