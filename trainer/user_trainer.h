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
#include <map>
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
  // A non-finite loss or weight, or a loss that blew up: the adapter is not
  // usable, and `divergence` says why.
  bool diverged = false;
  std::string divergence;
};

// Called after every step of a group: users of the group, steps done, steps in all.
using TrainProgress = std::function<void(const std::vector<std::string>& users, int64_t step, int64_t steps,
                                         const std::vector<double>& losses)>;

// Sees every step's batch before it runs (benchmarks replay them elsewhere).
using BatchRecorder = std::function<void(const std::vector<std::string>& users, int64_t step,
                                         const std::vector<TrainingSequence>& batch)>;

// A user's training state after `step` of the config's steps: the adapter,
// its AdamW moments, where its example stream and its walk through the
// retention bank stand, and its losses so far. Resumed, training goes on to
// the adapter an uninterrupted run ends with (within floating point: the
// user's batch-mates may differ).
struct TrainCheckpoint {
  std::string user;
  int64_t step = 0;
  LoraAdapter adapter;
  SlotMoments moments;
  std::string rng;  // the example stream: std::mt19937_64's text form
  int64_t next_retention = 0;
  std::vector<double> losses, kls;
};

// Where training starts and how it is saved as it goes.
struct TrainResume {
  // Users to resume, by id (the others start at step 0). Users train in
  // groups of the same starting step.
  std::map<std::string, TrainCheckpoint> from;
  // Called with each user's state after every `every` steps (0: never) and
  // after the last step; what it keeps is what a later run resumes from.
  int64_t every = 0;
  std::function<void(const TrainCheckpoint&)> save;
};

// The groups train_users trains together: up to `users_per_batch` users that
// start at the same step, in the order of `users` (indices into it). Throws
// for a checkpoint past `steps`.
std::vector<std::vector<size_t>> training_groups(const std::vector<const UserData*>& users, const TrainResume& resume,
                                                 int64_t users_per_batch, int64_t steps);

// Results in the order of `users`.
// REQUIRES: `users` non-empty, each with at least one example.
std::vector<UserTrainResult> train_users(const BaseModel& model, const TrainConfig& config,
                                         const std::vector<const UserData*>& users,
                                         const std::vector<ChatExample>& retention,
                                         const TrainProgress& progress = {}, const BatchRecorder& recorder = {},
                                         const TrainResume& resume = {});

// The LoRA config the trainer's adapters get from `config`.
// A hash of a user id that is the same on every platform and standard
// library (FNV-1a, unlike std::hash): seeds each user's adapter and picks a
// user's training shard.
uint64_t stable_user_hash(const std::string& user);

LoraConfig lora_config_of(const TrainConfig& config, const std::string& base_model_name);

}  // namespace mnemo
