#include "trainer/user_trainer.h"

#include "adapters/adapter_slots.h"
#include "model/base_model.h"
#include "model/error.h"
#include "model/transformer.h"
#include "trainer/adapter_optimizer.h"
#include "trainer/example_tokens.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <sstream>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace mnemo {
namespace {

// Training on a CPU allocates the same large tensors every step (the
// logits of the loss rows, the activations autograd saves). glibc serves a
// block over its mmap threshold (which grows to at most 32 MiB) by a fresh
// mmap and unmaps it when freed, so each step page-faults (and the kernel
// zeroes) all of that memory again: with 4 users in one batch, 14% of the
// training time in clear_page and page faults, 47 s against 38 s without
// (bench/train, perf). From the heap (no mmap, no trimming) the next step
// reuses the freed blocks. The process keeps its peak memory until it
// exits, which a training process wants anyway. A no-op off glibc and on a
// GPU, whose caching allocator already reuses blocks.
void reuse_freed_memory(const at::Device& device) {
#if defined(__GLIBC__)
  if (!device.is_cpu()) return;
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());
#else
  (void)device;
#endif
}

uint64_t user_seed(uint64_t seed, const std::string& user) {
  return stable_user_hash(user) ^ (seed * 0x9E3779B97F4A7C15ull);
}

// `k` distinct indices drawn with probability proportional to `weights`
// (Efraimidis–Spirakis keys); all of them when k ≥ size.
std::vector<size_t> weighted_sample(const std::vector<double>& weights, size_t k, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(1e-12, 1.0);
  std::vector<std::pair<double, size_t>> keys;
  for (size_t i = 0; i < weights.size(); ++i) {
    double u = uniform(rng);
    if (weights[i] > 0) keys.push_back({std::log(u) / weights[i], i});
  }
  k = std::min(k, keys.size());
  std::partial_sort(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(k), keys.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<size_t> chosen;
  for (size_t i = 0; i < k; ++i) chosen.push_back(keys[i].second);
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

double mean_of(const std::vector<double>& values, size_t first, size_t last) {
  double sum = 0;
  int64_t n = 0;
  for (size_t i = first; i < last && i < values.size(); ++i)
    if (std::isfinite(values[i])) {
      sum += values[i];
      ++n;
    }
  return n ? sum / static_cast<double>(n) : std::nan("");
}

// Why a training with these losses diverged; "" when it did not. A loss that
// ends above kLossExplosion times where it started has blown up: a working
// run ends below its start (measured: 3.7 → 2.8 in 6 steps, 4.7 → 3.0).
constexpr double kLossExplosion = 3.0;
std::string divergence_of(const std::vector<double>& losses, double first_loss, double final_loss) {
  for (size_t step = 0; step < losses.size(); ++step)
    if (!std::isfinite(losses[step])) return fmt::format("a non-finite loss at step {}", step + 1);
  if (std::isfinite(first_loss) && final_loss > kLossExplosion * first_loss)
    return fmt::format("the loss exploded: {:.3g} at the end against {:.3g} at the start", final_loss, first_loss);
  return "";
}

}  // namespace

uint64_t stable_user_hash(const std::string& user) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : user) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

LoraConfig lora_config_of(const TrainConfig& config, const std::string& base_model_name) {
  LoraConfig lora;
  lora.rank = config.rank;
  lora.alpha = config.alpha;
  lora.target_modules.clear();
  for (LinearModule module : kAllLinearModules)
    for (const std::string& name : config.target_modules)
      if (parse_module_name(name) == module) lora.target_modules.push_back(module);
  lora.base_model_name_or_path = base_model_name;
  return lora;
}

std::vector<std::vector<size_t>> training_groups(const std::vector<const UserData*>& users, const TrainResume& resume,
                                                int64_t users_per_batch, int64_t steps) {
  std::map<int64_t, std::vector<size_t>> by_start;
  std::vector<int64_t> starts;  // in order of first appearance
  for (size_t i = 0; i < users.size(); ++i) {
    auto checkpoint = resume.from.find(users[i]->user);
    const int64_t start = checkpoint == resume.from.end() ? 0 : checkpoint->second.step;
    if (start < 0 || start > steps)
      fail("train: user {}: a checkpoint at step {} of {} steps", users[i]->user, start, steps);
    if (!by_start.count(start)) starts.push_back(start);
    by_start[start].push_back(i);
  }
  std::vector<std::vector<size_t>> groups;
  const size_t size = static_cast<size_t>(std::max<int64_t>(1, users_per_batch));
  for (int64_t start : starts) {
    const std::vector<size_t>& members = by_start[start];
    for (size_t first = 0; first < members.size(); first += size)
      groups.emplace_back(members.begin() + static_cast<std::ptrdiff_t>(first),
                          members.begin() + static_cast<std::ptrdiff_t>(std::min(members.size(), first + size)));
  }
  return groups;
}

std::vector<UserTrainResult> train_users(const BaseModel& model, const TrainConfig& config,
                                         const std::vector<const UserData*>& users,
                                         const std::vector<ChatExample>& retention, const TrainProgress& progress,
                                         const BatchRecorder& recorder, const TrainResume& resume) {
  const Transformer& transformer = *model.transformer;
  reuse_freed_memory(transformer.device());
  const LoraConfig lora = lora_config_of(config, model.path);
  std::vector<UserTrainResult> results(users.size());
  std::vector<TrainingSequence> retention_sequences;
  for (const ChatExample& example : retention) {
    retention_sequences.push_back(tokenize_example(model, example, 0, config.max_sequence_tokens));
    retention_sequences.back().teacher_key = static_cast<int32_t>(retention_sequences.size() - 1);
  }
  // The base's answers to the retention bank, kept across steps, users and
  // groups: each bank sequence runs through the base once per run.
  TeacherCache teacher_cache;
  auto checkpoint_of = [&](const std::string& user) -> const TrainCheckpoint* {
    auto found = resume.from.find(user);
    return found == resume.from.end() ? nullptr : &found->second;
  };

  const std::vector<std::vector<size_t>> groups = training_groups(users, resume, config.users_per_batch, config.steps);
  for (const std::vector<size_t>& group : groups) {
    const int64_t n_group = static_cast<int64_t>(group.size());
    auto started = std::chrono::steady_clock::now();
    AdapterSlots slots(transformer.config(), n_group, at::kFloat, transformer.device(), config.rank);
    std::vector<std::string> names;
    struct UserState {
      std::vector<TrainingSequence> sequences;
      std::vector<double> weights;
      std::mt19937_64 rng;
      std::vector<double> losses, kls;
      size_t next_retention = 0;
    };
    std::vector<UserState> states(static_cast<size_t>(n_group));
    std::vector<SlotMoments> moments(static_cast<size_t>(n_group));
    int64_t start = 0;
    for (int64_t g = 0; g < n_group; ++g) {
      const UserData& data = *users[group[static_cast<size_t>(g)]];
      if (data.examples.empty()) fail("train: user {} has no training examples", data.user);
      names.push_back(data.user);
      const uint64_t seed = user_seed(config.seed, data.user);
      UserState& state = states[static_cast<size_t>(g)];
      for (const ChatExample& example : data.examples) {
        TrainingSequence sequence =
            tokenize_example(model, example, static_cast<int32_t>(g), config.max_sequence_tokens);
        if (sequence.tokens.size() < 2) continue;
        state.sequences.push_back(std::move(sequence));
        state.weights.push_back(example.sampling_weight);
      }
      if (const TrainCheckpoint* checkpoint = checkpoint_of(data.user)) {
        start = checkpoint->step;
        slots.load(static_cast<int32_t>(g), checkpoint->adapter);
        std::istringstream rng_text(checkpoint->rng);
        rng_text >> state.rng;
        if (rng_text.fail()) fail("train: user {}: the checkpoint's example stream does not parse", data.user);
        if (!retention_sequences.empty() &&
            (checkpoint->next_retention < 0 ||
             checkpoint->next_retention >= static_cast<int64_t>(retention_sequences.size())))
          fail("train: user {}: the checkpoint's retention position {} is not one of the bank's {}", data.user,
               checkpoint->next_retention, retention_sequences.size());
        state.next_retention = static_cast<size_t>(checkpoint->next_retention);
        state.losses = checkpoint->losses;
        state.kls = checkpoint->kls;
        moments[static_cast<size_t>(g)] = checkpoint->moments;
      } else {
        slots.load(static_cast<int32_t>(g), init_lora_adapter(lora, transformer.config(), seed));
        state.rng.seed(seed + 1);
        if (!retention_sequences.empty())  // each user walks the retention bank from its own offset
          state.next_retention = static_cast<size_t>(seed % retention_sequences.size());
      }
    }

    OptimizerConfig optimizer_config;
    optimizer_config.learning_rate = config.learning_rate;
    optimizer_config.warmup_steps = config.warmup_steps;
    optimizer_config.total_steps = config.steps;
    optimizer_config.weight_decay = config.weight_decay;
    optimizer_config.max_grad_norm = config.max_grad_norm;
    optimizer_config.kl_weight = config.data.kl_weight;
    AdapterOptimizer optimizer(transformer, slots, optimizer_config, &teacher_cache);
    if (start > 0) optimizer.restore(start, moments);

    for (int64_t step = start; step < config.steps; ++step) {
      std::vector<TrainingSequence> batch;
      for (int64_t g = 0; g < n_group; ++g) {
        UserState& state = states[static_cast<size_t>(g)];
        for (size_t i : weighted_sample(state.weights, static_cast<size_t>(config.examples_per_step), state.rng))
          batch.push_back(state.sequences[i]);
        for (int64_t r = 0; r < config.retention_per_step && !retention_sequences.empty(); ++r) {
          TrainingSequence sequence = retention_sequences[state.next_retention];
          state.next_retention = (state.next_retention + 1) % retention_sequences.size();
          sequence.slot = static_cast<int32_t>(g);
          batch.push_back(std::move(sequence));
        }
      }
      if (recorder) recorder(names, step, batch);
      StepResult result = optimizer.step(batch);
      std::vector<double> losses;
      for (int64_t g = 0; g < n_group; ++g) {
        UserState& state = states[static_cast<size_t>(g)];
        state.losses.push_back(result.loss_by_slot[static_cast<size_t>(g)]);
        state.kls.push_back(result.kl_by_slot[static_cast<size_t>(g)]);
        losses.push_back(state.losses.back());
      }
      const int64_t done = step + 1;
      if (resume.save && ((resume.every > 0 && done % resume.every == 0) || done == config.steps))
        for (int64_t g = 0; g < n_group; ++g) {
          const UserState& state = states[static_cast<size_t>(g)];
          TrainCheckpoint checkpoint;
          checkpoint.user = names[static_cast<size_t>(g)];
          checkpoint.step = done;
          checkpoint.adapter = slots.extract(static_cast<int32_t>(g));
          checkpoint.adapter.config.base_model_name_or_path = model.path;
          checkpoint.moments = optimizer.moments(static_cast<int32_t>(g));
          std::ostringstream rng_text;
          rng_text << state.rng;
          checkpoint.rng = rng_text.str();
          checkpoint.next_retention = static_cast<int64_t>(state.next_retention);
          checkpoint.losses = state.losses;
          checkpoint.kls = state.kls;
          resume.save(checkpoint);
        }
      if (progress) progress(names, done, config.steps, losses);
    }

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    for (int64_t g = 0; g < n_group; ++g) {
      UserState& state = states[static_cast<size_t>(g)];
      UserTrainResult& result = results[group[static_cast<size_t>(g)]];
      result.user = names[static_cast<size_t>(g)];
      result.adapter = slots.extract(static_cast<int32_t>(g));
      result.adapter.config.base_model_name_or_path = model.path;
      result.steps = config.steps;
      const size_t n = state.losses.size(), window = std::max<size_t>(1, std::min<size_t>(4, n / 4));
      result.first_loss = mean_of(state.losses, 0, window);
      result.final_loss = mean_of(state.losses, n - window, n);
      result.final_kl = mean_of(state.kls, n - window, n);
      result.seconds = seconds / static_cast<double>(n_group);
      result.n_examples = static_cast<int64_t>(state.sequences.size());
      result.divergence = divergence_of(state.losses, result.first_loss, result.final_loss);
      for (int64_t layer = 0; layer < static_cast<int64_t>(result.adapter.layers.size()) && result.divergence.empty();
           ++layer)
        for (LinearModule module : lora.target_modules) {
          const LoraPair& pair = result.adapter.pair(layer, module);
          if (!at::isfinite(pair.A).all().item<bool>() || !at::isfinite(pair.B).all().item<bool>()) {
            result.divergence = fmt::format("a non-finite weight in layer {} {}", layer, module_name(module));
            break;
          }
        }
      result.diverged = !result.divergence.empty();
    }
  }
  return results;
}

}  // namespace mnemo
