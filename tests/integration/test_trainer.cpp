// The trainer on the default model: which tokens carry loss, that a fresh
// adapter starts at zero KL from the base, that a user trains to the same
// adapter alone or in a batch with another, and `mnemo train` driven as a
// user would: two generated users' adapters each remember some of their own
// facts that the base model does not know, and neither names the other's;
// and against a registry, only users whose logs changed since their live
// version train (`--dry-run` says who and why, and writes nothing).
#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "eval/interaction_log.h"
#include "model/base_model.h"
#include "model/default_model.h"
#include "tokenizer/tokenizer.h"
#include "model/transformer.h"
#include "support/command.h"
#include "support/json_files.h"
#include "support/reference.h"
#include "trainer/example_tokens.h"
#include "trainer/train_job.h"
#include "trainer/training_data.h"
#include "trainer/user_trainer.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::run_command;
using testing::read_json;
using testing::read_jsonl;
using testing::shell_quote;

std::string mnemo() { return testing::mnemo_command(); }

const BaseModel& model() {
  static const BaseModel loaded = open_base_model(default_model_path(), {});
  return loaded;
}

// Two generated users (test split, seed 1).
fs::path benchmark_dir() {
  static const fs::path dir = [] {
    fs::path d = testing::scratch_dir("trainer_benchmark");
    auto r = run_command(mnemo() + " eval generate --users 2 --seed 1 --out " + shell_quote(d.string()) + " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return d;
  }();
  return dir;
}

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

TEST(TrainCommand, EachUsersAdapterRemembersItsOwnFactsAndNotTheOthers) {
  const fs::path benchmark = benchmark_dir(), out = testing::scratch_dir("trainer_cli"),
                 registry = out / "registry", eval = out / "eval", config = out / "train.yaml";
  // A shorter schedule than the default, for the test's time.
  std::ofstream(config) << "schedule:\n  steps: 24\ndata:\n  retention_prompts: 8\n  augment_samples: 1\n";
  auto r = run_command(mnemo() + " train --logs " + shell_quote((benchmark / "logs").string()) + " --registry " +
                       shell_quote(registry.string()) + " --config " + shell_quote(config.string()) + " --summary " +
                       shell_quote((out / "summary.json").string()) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::printf("%s\n", r.output.c_str());
  json summary = read_json(out / "summary.json");
  ASSERT_EQ(summary["n_users"], 2);
  for (const json& user : summary["users"]) {
    EXPECT_EQ(user["state"], "published");
    EXPECT_EQ(user["metrics"]["gate"]["passed"], true);  // nothing live to compare with; the default bounds
    EXPECT_EQ(user["version"], 1);
    EXPECT_TRUE(user["live"].get<bool>());
    EXPECT_LT(user["metrics"]["final_loss"].get<double>(), user["metrics"]["first_loss"].get<double>());
  }
  {
    auto opened = Registry::open(registry.string(), {});
    for (const char* user : {"user01", "user02"}) {
      ASSERT_EQ(opened->live_version(user), std::optional<int64_t>(1)) << user;
      fs::path exported = out / (std::string("export_") + user);
      opened->export_version(user, exported.string());
      LoraAdapter adapter = read_peft_adapter(exported.string());
      EXPECT_EQ(adapter.metadata[kMetaUser], user);
      EXPECT_TRUE(adapter.metadata[kMetaBaseFingerprint].starts_with("sha256:"));
      EXPECT_TRUE(adapter.metadata[kMetaDataFingerprint].starts_with("sha256:"));
      EXPECT_TRUE(json::parse(adapter.metadata[kMetaMetrics]).contains("final_loss"));
      EXPECT_EQ(json::parse(adapter.metadata["mnemo.recipe"])["schedule"]["steps"], 24);
      EXPECT_EQ(adapter.config.rank, 16);
    }
  }

  r = run_command(mnemo() + " eval run --logs " + shell_quote((benchmark / "logs").string()) + " --questions " +
                  shell_quote((benchmark / "questions.jsonl").string()) + " --conditions none,adapter --registry " +
                  shell_quote(registry.string()) + " --out " + shell_quote(eval.string()) + " --no-chart 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::printf("%s\n", r.output.c_str());
  std::vector<json> answers = read_jsonl(eval / "answers.jsonl");
  std::set<std::string> base_knows;
  for (const json& a : answers)
    if (a["condition"] == "none" && a["correct"].get<bool>()) base_knows.insert(a["question"].get<std::string>());
  std::map<std::string, int64_t> remembered;
  int64_t leaked = 0;
  for (const json& a : answers) {
    if (a["condition"] != "adapter") continue;
    if (a["kind"] != "abstain" && a["correct"].get<bool>() && !base_knows.count(a["question"].get<std::string>()))
      ++remembered[a["user"].get<std::string>()];
    leaked += !a["leaked"].empty();
  }
  std::printf("remembered (not known to the base): user01 %lld, user02 %lld; answers naming the other user's "
              "values: %lld\n",
              static_cast<long long>(remembered["user01"]), static_cast<long long>(remembered["user02"]),
              static_cast<long long>(leaked));
  EXPECT_GE(remembered["user01"], 1);
  EXPECT_GE(remembered["user02"], 1);
  EXPECT_EQ(leaked, 0);
}

TEST(TrainCommand, ADryRunListsWhoseLogsChangedSinceTheirLiveVersionAndWritesNothing) {
  const fs::path benchmark = benchmark_dir(), out = testing::scratch_dir("trainer_dry_run"),
                 registry = out / "registry";
  const InteractionLogs logs = read_interaction_logs((benchmark / "logs").string());
  {  // user01's live adapter was trained on today's logs, user02's on older ones
    RegistryOptions options;
    options.mode = OpenMode::kCreate;
    auto opened = Registry::open(registry.string(), std::move(options));
    opened->init("test-base", adapter_shapes_to_json(adapter_shapes(model().transformer->config())));
    LoraConfig config;
    config.rank = 4;
    config.alpha = 8;
    for (const char* user : {"user01", "user02"}) {
      LoraAdapter adapter = make_random_adapter(config, model().transformer->config(), 7, 0.02);
      adapter.metadata[kMetaUser] = user;
      adapter.metadata[kMetaDataFingerprint] =
          std::string(user) == "user01" ? data_fingerprint(logs.by_user.at(user)) : "sha256:older-logs";
      const fs::path dir = out / user;
      write_peft_adapter(dir.string(), adapter);
      PublishRequest request;
      request.adapter_dir = dir.string();
      request.user = user;
      request.base_fingerprint = "test-base";
      request.make_live = true;
      opened->publish(request);
    }
  }
  const std::string train = mnemo() + " train --logs " + shell_quote((benchmark / "logs").string()) + " --dry-run";
  auto r = run_command(train + " --registry " + shell_quote(registry.string()) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("keep   unchanged since live version 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("train  logs changed since live version 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 of 2 users would train"), std::string::npos) << r.output;

  r = run_command(train + " --registry " + shell_quote(registry.string()) + " --users user01 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("train  named with --users"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 of 1 users would train"), std::string::npos) << r.output;

  // A registry that does not exist yet: everyone is new, and it is not created.
  const fs::path fresh = out / "fresh";
  r = run_command(train + " --registry " + shell_quote(fresh.string()) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("2 of 2 users would train"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("no live version"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(fresh));

  RegistryOptions read_only;
  read_only.mode = OpenMode::kReadOnly;
  auto opened = Registry::open(registry.string(), std::move(read_only));
  for (const char* user : {"user01", "user02"}) EXPECT_EQ(opened->versions(user).size(), 1u) << user;
}

// The users that a dry run lists (one per line, before "dry run:").
std::set<std::string> listed_users(const std::string& output) {
  std::set<std::string> users;
  std::stringstream lines(output);
  for (std::string line; std::getline(lines, line);)
    if (line.starts_with("user")) users.insert(line.substr(0, line.find(' ')));
  return users;
}

TEST(TrainCommand, ShardsSplitTheUsersOnceEachFromTheFlagSlurmOrKubernetes) {
  const fs::path out = testing::scratch_dir("trainer_shards");
  const std::string train = mnemo() + " train --logs " + shell_quote((benchmark_dir() / "logs").string()) +
                            " --registry " + shell_quote((out / "registry").string()) + " --dry-run";
  std::set<std::string> seen;
  size_t listed = 0;
  for (int shard = 0; shard < 3; ++shard) {
    auto r = run_command(train + " --shard " + std::to_string(shard) + "/3 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    std::set<std::string> users = listed_users(r.output);
    listed += users.size();
    seen.insert(users.begin(), users.end());
    // Slurm numbers its array tasks from SLURM_ARRAY_TASK_MIN; Kubernetes from 0.
    auto slurm = run_command("SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_ID=" + std::to_string(shard + 1) +
                             " SLURM_ARRAY_TASK_COUNT=3 " + train + " 2>&1");
    ASSERT_EQ(slurm.exit_code, 0) << slurm.output;
    EXPECT_EQ(listed_users(slurm.output), users) << slurm.output;
    const fs::path config = out / "job.yaml";
    std::ofstream(config) << "job:\n  shards: 3\n";
    auto kubernetes = run_command("JOB_COMPLETION_INDEX=" + std::to_string(shard) + " " + train + " --config " +
                                  shell_quote(config.string()) + " 2>&1");
    ASSERT_EQ(kubernetes.exit_code, 0) << kubernetes.output;
    EXPECT_EQ(listed_users(kubernetes.output), users) << kubernetes.output;
  }
  EXPECT_EQ(seen, (std::set<std::string>{"user01", "user02"}));
  EXPECT_EQ(listed, 2u);  // each user in exactly one shard

  auto r = run_command(train + " --shard 3/3 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("shard 3 of 3 (from --shard) is not one of 0..2"), std::string::npos) << r.output;
  r = run_command("JOB_COMPLETION_INDEX=1 " + train + " 2>&1");  // the config's job.shards is 1
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("JOB_COMPLETION_INDEX of job.shards"), std::string::npos) << r.output;
}

// Three shards as three processes over one registry, as a Slurm array or an
// Indexed Job runs them: every user is trained and published exactly once,
// and a second night with the same logs trains nobody.
TEST(TrainCommand, ThreeShardsTrainEveryUserOnceIntoOneRegistryAndTheNextRunKeepsThem) {
  const fs::path out = testing::scratch_dir("trainer_three_shards"), registry = out / "registry",
                 config = out / "tiny.yaml";
  std::ofstream(config) << "schedule:\n  steps: 2\n  examples_per_step: 2\n  retention_per_step: 1\n"
                           "  max_sequence_tokens: 128\ndata:\n  augmentation: false\n  retention_prompts: 2\n"
                           "  retention_answer_tokens: 8\n  abstention_probes: 2\n";
  const std::string train = mnemo() + " train --logs " + shell_quote((benchmark_dir() / "logs").string()) +
                            " --registry " + shell_quote(registry.string()) + " --config " +
                            shell_quote(config.string());
  auto night = [&](const std::string& name) {
    std::string script;
    for (int shard = 0; shard < 3; ++shard)
      script += fmt::format("{} --shard {}/3 >{} 2>&1 & p{}=$!; ", train, shard,
                            shell_quote((out / fmt::format("{}_{}.log", name, shard)).string()), shard);
    script += "wait $p0; e0=$?; wait $p1; e1=$?; wait $p2; e2=$?; echo exits $e0 $e1 $e2";
    return run_command("sh -c " + shell_quote(script) + " 2>&1");
  };
  auto log_of = [&](const std::string& name, int shard) {
    std::ifstream in(out / fmt::format("{}_{}.log", name, shard));
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  auto r = night("first");
  EXPECT_NE(r.output.find("exits 0 0 0"), std::string::npos)
      << r.output << log_of("first", 0) << log_of("first", 1) << log_of("first", 2);
  {
    RegistryOptions read_only;
    read_only.mode = OpenMode::kReadOnly;
    auto opened = Registry::open(registry.string(), std::move(read_only));
    for (const char* user : {"user01", "user02"}) {
      EXPECT_EQ(opened->versions(user).size(), 1u) << user;
      EXPECT_EQ(opened->live_version(user), std::optional<int64_t>(1)) << user;
    }
  }
  r = night("second");
  EXPECT_NE(r.output.find("exits 0 0 0"), std::string::npos) << r.output;
  int64_t kept = 0;
  for (int shard = 0; shard < 3; ++shard) kept += log_of("second", shard).find("nothing to train") != std::string::npos;
  EXPECT_EQ(kept, 2);  // the two shards that hold a user; the third holds none
  RegistryOptions read_only;
  read_only.mode = OpenMode::kReadOnly;
  auto opened = Registry::open(registry.string(), std::move(read_only));
  for (const char* user : {"user01", "user02"}) EXPECT_EQ(opened->versions(user).size(), 1u) << user;
}

// The job directory end to end: a run SIGKILLed right after a training
// checkpoint resumes from it and publishes each user once; a run killed after
// a publish but before recording it (the job's files set back to that
// moment) does not publish again; a finished job gives way to the next night's.
TEST(TrainCommand, AKilledJobResumesFromItsCheckpointAndPublishesEachUserOnce) {
  const fs::path out = testing::scratch_dir("trainer_job_kill"), registry = out / "registry", job = out / "job",
                 config = out / "tiny.yaml";
  std::ofstream(config) << "schedule:\n  steps: 4\n  examples_per_step: 2\n  retention_per_step: 1\n"
                           "  max_sequence_tokens: 128\ndata:\n  augmentation: false\n  retention_prompts: 2\n"
                           "  retention_answer_tokens: 8\n  abstention_probes: 2\njob:\n  checkpoint_every: 2\n"
                           "gate:\n  max_questions: 2\n  answer_tokens: 8\n  retention_tokens: 64\n";
  const std::string train = mnemo() + " train --logs " + shell_quote((benchmark_dir() / "logs").string()) +
                            " --registry " + shell_quote(registry.string()) + " --config " +
                            shell_quote(config.string()) + " --job-dir " + shell_quote(job.string());
  const std::string checkpoint = (job / "checkpoints" / "user01.safetensors").string();
  auto r = run_command("sh -c " + shell_quote(train + " >" + shell_quote((out / "killed.log").string()) +
                                             " 2>&1 & p=$!; while [ ! -e " + shell_quote(checkpoint) +
                                             " ] && kill -0 $p 2>/dev/null; do sleep 0.05; done; kill -9 $p; "
                                             "wait $p; echo status $?"));
  ASSERT_NE(r.output.find("status 137"), std::string::npos) << r.output;
  auto record = [&](const std::string& user) { return read_json(job / "users" / (user + ".json")); };
  EXPECT_EQ(record("user01")["state"], "training");
  auto versions = [&](const std::string& user) -> size_t {
    RegistryOptions read_only;
    read_only.mode = OpenMode::kReadOnly;
    try {
      return Registry::open(registry.string(), std::move(read_only))->versions(user).size();
    } catch (const RegistryNotFound&) {
      return 0;
    }
  };
  EXPECT_EQ(versions("user01"), 0u);

  r = run_command(train + " --summary " + shell_quote((out / "summary.json").string()) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resuming job"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("user01: resuming at step"), std::string::npos) << r.output;
  const json summary = read_json(out / "summary.json");
  ASSERT_TRUE(summary.contains("job")) << summary.dump(2);
  for (const json& entry : summary["users"]) EXPECT_EQ(entry["state"], "published") << entry.dump();
  for (const char* user : {"user01", "user02"}) {
    EXPECT_EQ(versions(user), 1u) << user;
    EXPECT_EQ(record(user)["state"], "published") << user;
    EXPECT_EQ(record(user)["trainings_completed"], 1) << user;
    EXPECT_EQ(record(user)["job"], summary["job"]["id"]) << user;
  }
  EXPECT_FALSE(fs::exists(checkpoint)) << "an ended user's checkpoint stays behind";

  // Killed after user02's publish, before its record said so.
  json user02 = record("user02"), job_file = read_json(job / "job.json");
  user02["state"] = "evaluating";
  job_file["finished"] = false;
  std::ofstream(job / "users" / "user02.json") << user02.dump(2);
  std::ofstream(job / "job.json") << job_file.dump(2);
  r = run_command(train + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("user02: version 1 was published by this job before it stopped"), std::string::npos)
      << r.output;
  EXPECT_EQ(versions("user02"), 1u) << "published twice";
  EXPECT_EQ(record("user02")["state"], "published");
  EXPECT_EQ(read_json(job / "job.json")["finished"], true);

  // The next night: a new job, and nobody's logs changed.
  r = run_command(train + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("starting job"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("nothing to train"), std::string::npos) << r.output;
  EXPECT_NE(read_json(job / "job.json")["id"], summary["job"]["id"]);
}

// The publish gate: an adapter that fails it is kept as a rejected version
// with the reason and the live one stays; the same logs do not train again;
// one that passes goes live, measured against the version live before it.
TEST(TrainCommand, TheGateKeepsARejectedVersionAndTheLiveOneStays) {
  const fs::path out = testing::scratch_dir("trainer_gate"), registry = out / "registry";
  auto config = [&](const std::string& name, const std::string& gate) {
    const fs::path path = out / (name + ".yaml");
    std::ofstream(path) << "schedule:\n  steps: 2\n  examples_per_step: 2\n  retention_per_step: 1\n"
                           "  max_sequence_tokens: 128\ndata:\n  augmentation: false\n  retention_prompts: 2\n"
                           "  retention_answer_tokens: 8\n  abstention_probes: 2\n"
                           "gate:\n  max_questions: 4\n  answer_tokens: 8\n  retention_tokens: 128\n"
                        << gate;
    return path.string();
  };
  const std::string strict = config("strict", "  max_perplexity_ratio: 0.5\n");  // no adapter halves it
  const std::string lenient = config("lenient", "  max_perplexity_ratio: 2.0\n  recall_tolerance: 1.0\n");
  const std::string train = mnemo() + " train --logs " + shell_quote((benchmark_dir() / "logs").string()) +
                            " --users user01 --registry " + shell_quote(registry.string());
  auto versions = [&] {
    RegistryOptions read_only;
    read_only.mode = OpenMode::kReadOnly;
    return Registry::open(registry.string(), std::move(read_only))->versions("user01");
  };

  // First night, strict gate: rejected, kept, nothing live; exit 0 (a rejection is not a failure).
  auto r = run_command(train + " --config " + shell_quote(strict) + " --summary " +
                       shell_quote((out / "first.json").string()) + " --metrics-file " +
                       shell_quote((out / "train.prom").string()) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("is above gate.max_perplexity_ratio 0.50"), std::string::npos) << r.output;
  std::vector<VersionRecord> records = versions();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].status, VersionStatus::kRejected);
  EXPECT_FALSE(records[0].live);
  const json metrics = json::parse(records[0].metrics_json);
  EXPECT_EQ(metrics["gate"]["passed"], false);
  EXPECT_NE(metrics["gate"]["reason"].get<std::string>().find("gate.max_perplexity_ratio"), std::string::npos);
  EXPECT_GT(metrics["gate"]["held_out_questions"].get<int64_t>(), 0);
  const json first = read_json(out / "first.json");
  EXPECT_EQ(first["users"][0]["state"], "rejected");
  EXPECT_EQ(first["n_rejected"], 1);
  // The same as Prometheus text for node-exporter's textfile collector.
  std::ifstream prom(out / "train.prom");
  const std::string text((std::istreambuf_iterator<char>(prom)), {});
  EXPECT_NE(text.find("mnemo_train_users{state=\"rejected\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("mnemo_train_users{state=\"published\"} 0"), std::string::npos) << text;
  EXPECT_NE(text.find("mnemo_train_seconds{phase=\"train\"}"), std::string::npos) << text;

  // The same logs again, without --users: the rejected version stands for them.
  r = run_command(mnemo() + " train --logs " + shell_quote((benchmark_dir() / "logs").string()) + " --registry " +
                  shell_quote(registry.string()) + " --config " + shell_quote(strict) + " --dry-run 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("keep   version 1 was rejected by the gate on these same logs"),
            std::string::npos)
      << r.output;

  // Named again with a lenient gate: passes and goes live (no live version to compare with).
  r = run_command(train + " --config " + shell_quote(lenient) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  records = versions();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_TRUE(records[1].live);
  EXPECT_EQ(json::parse(records[1].metrics_json)["gate"]["passed"], true);
  EXPECT_FALSE(json::parse(records[1].metrics_json)["gate"].contains("live"));

  // Once more, strict: rejected, and version 2 stays live; the measurement of live is recorded.
  r = run_command(train + " --config " + shell_quote(strict) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  records = versions();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2].status, VersionStatus::kRejected);
  EXPECT_TRUE(records[1].live);
  const json third = json::parse(records[2].metrics_json)["gate"];
  EXPECT_EQ(third["live"]["version"], 2);
  EXPECT_GT(third["live"]["perplexity_ratio"].get<double>(), 0);

  // `adapters show` says which version was rejected and why.
  r = run_command(mnemo() + " adapters --registry " + shell_quote(registry.string()) + " show user01 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("rejected"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("gate.max_perplexity_ratio"), std::string::npos) << r.output;
}

// A user with nothing to train on fails alone: listed with the reason, the
// others trained and written, and the exit code says something failed.
TEST(TrainCommand, OneUsersFailureIsTheirsAlone) {
  const fs::path out = testing::scratch_dir("trainer_one_fails"), logs = out / "logs";
  fs::create_directories(logs);
  std::ofstream(logs / "talker.jsonl")
      << R"({"user":"talker","conversation_id":"c1","timestamp":"2026-08-01T10:00:00Z","messages":[)"
      << R"({"role":"user","content":"My dog is called Rex. How often should I walk him?"},)"
      << R"({"role":"assistant","content":"Twice a day is a good start."}]})" << "\n";
  std::ofstream(logs / "asker.jsonl")
      << R"({"user":"asker","conversation_id":"c1","timestamp":"2026-08-01T10:00:00Z","messages":[)"
      << R"({"role":"user","content":"How do I boil an egg?"},)"
      << R"({"role":"assistant","content":"Seven minutes in boiling water."}]})" << "\n";
  // Statements only: the asker said nothing about themselves.
  const fs::path config = out / "statements_only.yaml";
  std::ofstream(config) << "schedule:\n  steps: 1\n  examples_per_step: 1\n  retention_per_step: 0\n"
                           "data:\n  conversations: false\n  augmentation: false\n  abstention: false\n"
                           "  retention: false\n";
  auto r = run_command(mnemo() + " train --logs " + shell_quote(logs.string()) + " --out " +
                       shell_quote((out / "adapters").string()) + " --config " + shell_quote(config.string()) +
                       " --summary " + shell_quote((out / "summary.json").string()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("1 of 2 users failed"), std::string::npos) << r.output;
  const json summary = read_json(out / "summary.json");
  std::map<std::string, json> by_user;
  for (const json& entry : summary["users"]) by_user[entry["user"]] = entry;
  ASSERT_EQ(by_user.size(), 2u) << summary.dump(2);
  EXPECT_EQ(by_user["asker"]["state"], "failed");
  EXPECT_NE(by_user["asker"]["reason"].get<std::string>().find("no training example"), std::string::npos);
  EXPECT_EQ(by_user["talker"]["state"], "trained");
  EXPECT_TRUE(fs::exists(out / "adapters" / "talker" / "adapter_model.safetensors"));
  EXPECT_FALSE(fs::exists(out / "adapters" / "asker"));

  // A training that blows up (a learning rate of 0.9 moves every weight by
  // about that much a step) is a failure with its reason, and writes nothing.
  const fs::path blowup = out / "blowup.yaml";
  std::ofstream(blowup) << "schedule:\n  steps: 4\n  examples_per_step: 1\n  retention_per_step: 0\n"
                           "  warmup_steps: 0\n  learning_rate: 0.9\n  max_grad_norm: 0\n"
                           "data:\n  conversations: false\n  augmentation: false\n  abstention: false\n"
                           "  retention: false\n";
  r = run_command(mnemo() + " train --logs " + shell_quote(logs.string()) + " --users talker --out " +
                  shell_quote((out / "blown").string()) + " --config " + shell_quote(blowup.string()) +
                  " --summary " + shell_quote((out / "blown.json").string()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  const json blown = read_json(out / "blown.json");
  ASSERT_EQ(blown["users"].size(), 1u) << blown.dump(2);
  EXPECT_EQ(blown["users"][0]["state"], "failed");
  EXPECT_NE(blown["users"][0]["reason"].get<std::string>().find("training diverged ("), std::string::npos)
      << blown.dump(2);
  EXPECT_FALSE(fs::exists(out / "blown" / "talker"));
}

TEST(TrainCommand, BadInputFailsBeforeAnythingIsWritten) {
  const fs::path out = testing::scratch_dir("trainer_bad_input"), registry = out / "registry";
  const std::string logs = shell_quote((benchmark_dir() / "logs").string());
  auto r = run_command(mnemo() + " train --logs " + logs + " --users nobody --registry " + shell_quote(registry.string()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("user nobody has no conversations"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(registry));
  r = run_command(mnemo() + " train --logs " + logs + " --out a --registry b 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("exactly one of --out DIR or --registry DIR"), std::string::npos) << r.output;
  fs::path bad_logs = out / "bad.jsonl";
  std::ofstream(bad_logs) << "{\"user\": \"a\", \"conversation_id\": \"c\", \"timestamp\": \"2026-01-01T00:00:00Z\", "
                             "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n{not json\n";
  r = run_command(mnemo() + " train --logs " + shell_quote(bad_logs.string()) + " --out " +
                  shell_quote((out / "adapters").string()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("bad.jsonl:2"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out / "adapters"));
}

}  // namespace
}  // namespace mnemo
