// The trainer on the default model, in process: which tokens carry loss, that
// a fresh adapter starts at zero KL from the base, that a user trains to the
// same adapter alone or in a batch with another, that a checkpoint resumes
// to where an uninterrupted run ends, and the train job's records.
// `mnemo train` driven as a user would: test_train_command.cpp.
#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "eval/interaction_log.h"
#include "model/base_model.h"
#include "model/default_model.h"
#include "tokenizer/tokenizer.h"
#include "model/transformer.h"
#include "support/command.h"
#include "support/generated_users.h"
#include "support/reference.h"
#include "trainer/example_tokens.h"
#include "trainer/train_job.h"
#include "trainer/training_data.h"
#include "trainer/user_trainer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

namespace mnemo {
namespace {

namespace fs = std::filesystem;

const BaseModel& model() {
  static const BaseModel loaded = open_base_model(default_model_path(), {});
  return loaded;
}

// Two generated users (test split, seed 1).
fs::path benchmark_dir() { return testing::generated_users("trainer_benchmark"); }

// The text of the tokens that carry loss (each target's weight is that of
// predicting tokens[t + 1]).
std::string weighted_text(const TrainingSequence& sequence, const std::vector<float>& weights) {
  std::vector<int32_t> ids;
  for (size_t t = 0; t < weights.size(); ++t)
    if (weights[t] > 0) ids.push_back(sequence.tokens[t + 1]);
  return model().tokenizer->decode(ids);
}

TEST(TrainingExamples, OnlyTheAnswerAndItsEndOfTurnCarryLoss) {
  ChatExample example;
  example.source = ExampleSource::Statement;
  example.messages = {{"user", "What do you know about my dog?"}, {"assistant", "Your dog is called Biscuit."}};
  TrainingSequence sequence = tokenize_example(model(), example, 3, 512);
  EXPECT_EQ(sequence.slot, 3);
  ASSERT_EQ(sequence.target_weights.size(), sequence.tokens.size() - 1);
  EXPECT_TRUE(sequence.kl_weights.empty());
  // The whole rendering is the template's (default system prompt included).
  EXPECT_EQ(model().tokenizer->decode(sequence.tokens), model().chat_template->render(example.messages, false));
  EXPECT_EQ(weighted_text(sequence, sequence.target_weights), "Your dog is called Biscuit.<|im_end|>\n");
}

TEST(TrainingExamples, ConversationsWeighTheUsersWordsButNeverTheSystemPrompt) {
  ChatExample example;
  example.source = ExampleSource::Conversation;
  example.messages = {{"user", "My cat is Pepper."}, {"assistant", "Nice name."}};
  example.user_loss = 1.0;
  example.assistant_loss = 0.25;
  TrainingSequence sequence = tokenize_example(model(), example, 0, 512);
  std::vector<float> user(sequence.target_weights.size()), assistant(sequence.target_weights.size());
  for (size_t t = 0; t < user.size(); ++t) {
    user[t] = sequence.target_weights[t] == 1.0f;
    assistant[t] = sequence.target_weights[t] == 0.25f;
  }
  EXPECT_EQ(weighted_text(sequence, user), "My cat is Pepper.<|im_end|>\n");
  EXPECT_EQ(weighted_text(sequence, assistant), "Nice name.<|im_end|>\n");
}

TEST(TrainingExamples, RetentionExamplesCarryKlOnTheAnswer) {
  ChatExample example;
  example.source = ExampleSource::Retention;
  example.messages = {{"user", "Explain rain."}, {"assistant", "Water falls from clouds."}};
  example.user_loss = 0;
  example.assistant_loss = 0;
  example.kl_to_base = true;
  TrainingSequence sequence = tokenize_example(model(), example, 0, 512);
  ASSERT_EQ(sequence.kl_weights.size(), sequence.tokens.size() - 1);
  EXPECT_EQ(weighted_text(sequence, sequence.kl_weights), "Water falls from clouds.<|im_end|>\n");
  EXPECT_EQ(weighted_text(sequence, sequence.target_weights), "");
}

UserData user_data(const std::string& user) {
  static const InteractionLogs logs = read_interaction_logs((benchmark_dir() / "logs").string());
  DataConfig config;
  config.augmentation = false;
  return build_user_data(user, logs.by_user.at(user), config);
}

TrainConfig short_schedule() {
  TrainConfig config;
  config.steps = 3;
  config.examples_per_step = 2;
  config.retention_per_step = 1;
  config.warmup_steps = 1;
  config.max_sequence_tokens = 96;
  return config;
}

std::vector<ChatExample> retention_examples() {
  std::vector<ChatExample> retention;
  for (const char* answer : {"Rain is water falling from clouds.", "A haiku has three lines."}) {
    ChatExample example;
    example.messages = {{"user", "Tell me something."}, {"assistant", answer}};
    example.assistant_loss = 0;
    example.kl_to_base = true;
    retention.push_back(example);
  }
  return retention;
}

// How far apart two adapters are, relative to how far training moved them
// (B starts at zero, so |B| is the update): the Frobenius norm of the
// difference over the norm of B, over every targeted module.
double relative_difference(const LoraAdapter& x, const LoraAdapter& y) {
  double difference = 0, update = 0;
  for (size_t layer = 0; layer < x.layers.size(); ++layer)
    for (LinearModule module : x.config.target_modules) {
      const LoraPair& p = x.pair(static_cast<int64_t>(layer), module);
      const LoraPair& q = y.pair(static_cast<int64_t>(layer), module);
      difference += (p.A - q.A).pow(2).sum().item<double>() + (p.B - q.B).pow(2).sum().item<double>();
      update += p.B.pow(2).sum().item<double>();
    }
  EXPECT_GT(update, 0) << "the adapter did not train";
  return std::sqrt(difference / update);
}

TEST(UserTrainer, AUserTrainsToTheSameAdapterAloneAndInABatch) {
  UserData a = user_data("user01"), b = user_data("user02");
  TrainConfig alone_config = short_schedule(), batched_config = short_schedule();
  alone_config.users_per_batch = 1;
  batched_config.users_per_batch = 2;
  std::vector<UserTrainResult> alone = train_users(model(), alone_config, {&a}, retention_examples());
  std::vector<UserTrainResult> batched = train_users(model(), batched_config, {&b, &a}, retention_examples());
  ASSERT_EQ(alone.size(), 1u);
  ASSERT_EQ(batched.size(), 2u);
  ASSERT_EQ(batched[1].user, "user01");
  const double relative = relative_difference(alone[0].adapter, batched[1].adapter);
  std::printf("|alone - batched| / |update| = %.3g\n", relative);
  // Not bit-identical: a batch of other shapes rounds the GEMMs differently,
  // and at the first steps, where the KL gradient is only that rounding
  // (a fresh adapter is the base), AdamW's normalised step turns it into
  // full-size moves of a few weights. Measured 0.0022 (3 steps); a user's
  // gradient leaking into another's would move the adapter by order 1.
  EXPECT_LT(relative, 1e-2);
  EXPECT_TRUE(std::isfinite(alone[0].final_loss));
  EXPECT_TRUE(std::isfinite(alone[0].final_kl));
  // And the other user really is another adapter.
  EXPECT_GT(relative_difference(alone[0].adapter, batched[0].adapter), 0.5);
}

TEST(UserTrainer, AFreshAdapterStartsAtZeroKlFromTheBase) {
  UserData a = user_data("user01");
  TrainConfig config = short_schedule();
  config.steps = 1;
  std::vector<UserTrainResult> result = train_users(model(), config, {&a}, retention_examples());
  // B = 0 at PEFT's initialisation: the adapted model is the base.
  EXPECT_LT(std::abs(result[0].final_kl), 1e-6);
}

// A job killed mid-training resumes from its checkpoint to the adapter an
// uninterrupted run ends with: the weights, the AdamW moments, the example
// stream and the walk through the retention bank all come back.
TEST(UserTrainer, ACheckpointResumesToTheAdapterAnUninterruptedRunEndsWith) {
  UserData a = user_data("user01");
  TrainConfig config = short_schedule();
  config.steps = 4;
  const std::vector<UserTrainResult> full = train_users(model(), config, {&a}, retention_examples());
  std::vector<TrainCheckpoint> saved;
  TrainResume save;
  save.every = 2;
  save.save = [&](const TrainCheckpoint& checkpoint) { saved.push_back(checkpoint); };
  train_users(model(), config, {&a}, retention_examples(), {}, {}, save);
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_EQ(saved[0].step, 2);
  EXPECT_EQ(saved[1].step, 4);

  // Through the job directory's file, as a restarted run reads it.
  const fs::path dir = testing::scratch_dir("trainer_checkpoint");
  std::unique_ptr<TrainJob> job = TrainJob::open(dir.string(), {"recipe", "out x", "0/1"}, false);
  job->save_checkpoint(saved[0], "data-1");
  const LoraConfig lora = lora_config_of(config, model().path);
  EXPECT_FALSE(job->load_checkpoint("user01", "data-2", lora, model().transformer->config()))
      << "a checkpoint of other training data must not be resumed";
  std::optional<TrainCheckpoint> loaded = job->load_checkpoint("user01", "data-1", lora, model().transformer->config());
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->step, 2);
  EXPECT_EQ(loaded->rng, saved[0].rng);
  EXPECT_EQ(loaded->losses, saved[0].losses);

  TrainResume resume;
  resume.from.emplace("user01", *loaded);
  int64_t steps_run = 0;
  const std::vector<UserTrainResult> resumed = train_users(
      model(), config, {&a}, retention_examples(),
      [&](const std::vector<std::string>&, int64_t, int64_t, const std::vector<double>&) { ++steps_run; }, {}, resume);
  EXPECT_EQ(steps_run, 2);
  const double relative = relative_difference(full[0].adapter, resumed[0].adapter);
  std::printf("|uninterrupted - resumed at step 2| / |update| = %.3g\n", relative);
  EXPECT_LT(relative, 1e-6);
  EXPECT_NEAR(resumed[0].final_loss, full[0].final_loss, 1e-6);
  EXPECT_NEAR(resumed[0].first_loss, full[0].first_loss, 1e-12);

  // Resumed without its moments (a fresh AdamW at the same weights), the same
  // two steps end elsewhere: the moments are what the check above checks.
  TrainResume no_moments;
  TrainCheckpoint bare = *loaded;
  for (at::Tensor& m : bare.moments.exp_avg) m = at::zeros_like(m);
  for (at::Tensor& m : bare.moments.exp_avg_sq) m = at::zeros_like(m);
  no_moments.from.emplace("user01", bare);
  const double without = relative_difference(
      full[0].adapter, train_users(model(), config, {&a}, retention_examples(), {}, {}, no_moments)[0].adapter);
  std::printf("|uninterrupted - resumed without moments| / |update| = %.3g\n", without);
  EXPECT_GT(without, 1e-3);

  // A checkpoint at the last step is a finished training: nothing runs again.
  TrainResume finished;
  finished.from.emplace("user01", saved[1]);
  steps_run = 0;
  const std::vector<UserTrainResult> again = train_users(
      model(), config, {&a}, retention_examples(),
      [&](const std::vector<std::string>&, int64_t, int64_t, const std::vector<double>&) { ++steps_run; }, {}, finished);
  EXPECT_EQ(steps_run, 0);
  EXPECT_LT(relative_difference(full[0].adapter, again[0].adapter), 1e-6);
}

// The job directory: records survive, an unfinished job of another recipe is
// refused (naming what differs), and a finished job gives way to a new one.
TEST(TrainJobDirectory, RecordsPersistAndOnlyTheSameJobResumes) {
  const fs::path dir = testing::scratch_dir("trainer_job_dir");
  const JobIdentity identity{"recipe-1", "registry /r", "0/1"};
  std::string first_id;
  {
    std::unique_ptr<TrainJob> job = TrainJob::open(dir.string(), identity, false);
    EXPECT_FALSE(job->resumed());
    first_id = job->id();
    UserJob record;
    record.user = "alice";
    record.state = UserJobState::kTraining;
    record.data_fingerprint = "fp";
    record.runs = 1;
    job->put(record);
  }
  {
    std::unique_ptr<TrainJob> job = TrainJob::open(dir.string(), identity, false);
    EXPECT_TRUE(job->resumed());
    EXPECT_EQ(job->id(), first_id);
    // A second run on the same job while this one holds it fails at once.
    try {
      TrainJob::open(dir.string(), identity, false);
      ADD_FAILURE() << "two runs opened one job";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("another mnemo train is working on this job"), std::string::npos)
          << e.what();
    }
    std::optional<UserJob> record = job->find("alice");
    ASSERT_TRUE(record);
    EXPECT_EQ(record->state, UserJobState::kTraining);
    EXPECT_EQ(record->data_fingerprint, "fp");
    EXPECT_FALSE(job->find("bob"));
  }
  try {
    TrainJob::open(dir.string(), {"recipe-2", "registry /r", "0/1"}, false);
    ADD_FAILURE() << "an unfinished job of another recipe was resumed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("recipe"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--new-job"), std::string::npos) << e.what();
  }
  {
    std::unique_ptr<TrainJob> job = TrainJob::open(dir.string(), identity, false);
    job->finish();
  }
  std::unique_ptr<TrainJob> next = TrainJob::open(dir.string(), {"recipe-2", "registry /r", "0/1"}, false);
  EXPECT_FALSE(next->resumed());
  EXPECT_FALSE(next->find("alice")) << "a new job starts with no records";
}

}  // namespace
}  // namespace mnemo
