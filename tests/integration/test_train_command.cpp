// `mnemo train` on the default model, driven as a user would: two generated
// users' adapters each remember some of their own facts that the base model
// does not know, and neither names the other's; against a registry, only
// users whose logs changed since their live version train (`--dry-run` says
// who and why, and writes nothing); shards, a killed job that resumes, the
// publish gate, one user's failure, bad input.
#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "eval/interaction_log.h"
#include "model/base_model.h"
#include "model/default_model.h"
#include "model/transformer.h"
#include "support/command.h"
#include "support/generated_users.h"
#include "support/json_files.h"
#include "support/reference.h"
#include "trainer/train_job.h"

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
fs::path benchmark_dir() { return testing::generated_users("train_command_benchmark"); }

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
