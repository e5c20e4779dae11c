#include "trainer/cli.h"

#include "adapters/base_fingerprint.h"
#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "eval/interaction_log.h"
#include "model/base_model.h"
#include "model/default_model.h"
#include "model/error.h"
#include "model/transformer.h"
#include "trainer/augmenter.h"
#include "trainer/context_distiller.h"
#include "trainer/job_metrics.h"
#include "trainer/retention_bank.h"
#include "trainer/train_config.h"
#include "trainer/train_job.h"
#include "trainer/train_output.h"
#include "trainer/train_progress.h"
#include "trainer/training_data.h"
#include "trainer/user_trainer.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>


#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string_view>

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

struct TrainCommand {
  std::string logs;
  std::string out;
  std::string registry;
  std::string users;
  std::string config;
  std::string model;
  std::string summary;
  std::string metrics_file;
  std::string dump_data;
  std::string on_bad_record = "fail";
  int64_t steps = 0;  // 0 = the config's
  bool no_live = false;
  bool data_only = false;
  bool dry_run = false;
  std::string job_dir;  // "" = the config's job.dir
  bool new_job = false;
  std::string shard;  // "i/N"; empty: from Slurm's or Kubernetes' environment, else all users
};

// This process's share of the users: those whose id hashes to `index` mod
// `count`. A user's shard depends on their id alone, so it stays put as
// other users come and go.
struct Shard {
  int64_t index = 0, count = 1;
  bool holds(const std::string& user) const {
    return static_cast<int64_t>(stable_user_hash(user) % static_cast<uint64_t>(count)) == index;
  }
};

// The whole of `text` as an integer.
bool parse_integer(std::string_view text, int64_t& out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

int64_t env_integer(const char* name) {
  const char* value = std::getenv(name);
  int64_t parsed = 0;
  if (!parse_integer(value, parsed)) fail("train: environment variable {}=\"{}\" is not an integer", name, value);
  return parsed;
}

// --shard i/N; else a Slurm array task (SLURM_ARRAY_TASK_ID from
// SLURM_ARRAY_TASK_MIN, of SLURM_ARRAY_TASK_COUNT); else a Kubernetes Indexed
// Job (JOB_COMPLETION_INDEX of the config's job.shards); else every user.
Shard resolve_shard(const std::string& flag, const TrainConfig& config) {
  Shard shard;
  std::string where;
  if (!flag.empty()) {
    const size_t slash = flag.find('/');
    if (slash == std::string::npos || !parse_integer(std::string_view(flag).substr(0, slash), shard.index) ||
        !parse_integer(std::string_view(flag).substr(slash + 1), shard.count))
      fail("train: --shard must be i/N (0 <= i < N), got \"{}\"", flag);
    where = "--shard";
  } else if (std::getenv("SLURM_ARRAY_TASK_ID") && std::getenv("SLURM_ARRAY_TASK_COUNT")) {
    const int64_t first = std::getenv("SLURM_ARRAY_TASK_MIN") ? env_integer("SLURM_ARRAY_TASK_MIN") : 0;
    shard = {env_integer("SLURM_ARRAY_TASK_ID") - first, env_integer("SLURM_ARRAY_TASK_COUNT")};
    where = "SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT";
  } else if (std::getenv("JOB_COMPLETION_INDEX")) {
    shard = {env_integer("JOB_COMPLETION_INDEX"), config.shards};
    where = "JOB_COMPLETION_INDEX of job.shards";
  }
  if (shard.count < 1) fail("train: {} gives {} shards; there must be at least 1", where, shard.count);
  if (shard.index < 0 || shard.index >= shard.count)
    fail("train: shard {} of {} (from {}) is not one of 0..{}", shard.index, shard.count, where, shard.count - 1);
  return shard;
}

// Whether a user trains this run, and why.
struct TrainDecision {
  std::string user;
  bool train = true;
  std::string reason;
  std::string data_fingerprint;  // of the user's current logs
};

// Incremental training against a registry: a user named with --users always
// trains; otherwise a user trains unless their live version was trained on
// exactly their current conversations (the data fingerprint in its record).
// Reads the registry only when it exists; creates nothing.
std::vector<TrainDecision> decide_who_trains(const std::vector<std::string>& users, bool named,
                                             const InteractionLogs& logs, const std::string& registry_dir) {
  std::unique_ptr<Registry> registry;
  if (!registry_dir.empty() && fs::exists(fs::path(registry_dir) / "index.sqlite")) {
    RegistryOptions options;
    options.mode = OpenMode::kReadOnly;
    registry = Registry::open(registry_dir, std::move(options));
  }
  std::vector<TrainDecision> decisions;
  for (const std::string& user : users) {
    TrainDecision d{user, true, "", data_fingerprint(logs.by_user.at(user))};
    // The user's versions, read once: the live one, and the newest when the
    // gate turned it down (the same logs would train the same adapter again:
    // training is deterministic).
    std::vector<VersionRecord> versions;
    if (registry) {
      try {
        versions = registry->versions(user);
      } catch (const RegistryNotFound&) {  // no version yet
      }
    }
    const auto live = std::find_if(versions.begin(), versions.end(), [](const VersionRecord& v) { return v.live; });
    const VersionRecord* rejected =
        !versions.empty() && versions.back().status == VersionStatus::kRejected ? &versions.back() : nullptr;
    const std::string& fingerprint = d.data_fingerprint;
    if (named) {
      d.reason = "named with --users";
    } else if (rejected && rejected->data_fingerprint == fingerprint) {
      d.train = false;
      d.reason = fmt::format("version {} was rejected by the gate on these same logs (train it again with --users)",
                             rejected->version);
    } else if (live == versions.end()) {
      d.reason = registry_dir.empty() ? "every user trains with --out" : "no live version";
    } else if (live->data_fingerprint == fingerprint) {
      d.train = false;
      d.reason = fmt::format("unchanged since live version {}", live->version);
    } else {
      d.reason = fmt::format("logs changed since live version {}", live->version);
    }
    decisions.push_back(std::move(d));
  }
  return decisions;
}

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> items;
  std::stringstream stream(list);
  for (std::string item; std::getline(stream, item, ',');)
    if (!item.empty()) items.push_back(item);
  return items;
}

// The summary's entries of the users whose live adapter stays.
json unchanged_entries(const std::vector<TrainDecision>& kept) {
  json entries = json::array();
  for (const TrainDecision& d : kept) entries.push_back(json{{"user", d.user}, {"state", "unchanged"}, {"reason", d.reason}});
  return entries;
}

// The JSON summary (--summary) and the Prometheus text (--metrics-file).
void write_summary_files(const TrainCommand& command, const json& summary) {
  if (!command.summary.empty()) {
    std::ofstream out(command.summary);
    out << summary.dump(2) << "\n";
    out.flush();
    if (!out) fail("{}: cannot write the summary", command.summary);
  }
  if (!command.metrics_file.empty()) write_job_metrics(command.metrics_file, summary);
}

void run_train(const TrainCommand& command) {
  auto started = Clock::now();
  if (command.data_only) {
    if (command.dump_data.empty()) fail("train: --data-only needs --dump-data DIR");
  } else if (command.out.empty() == command.registry.empty()) {
    fail("train: give exactly one of --out DIR or --registry DIR");
  }
  BadRecordPolicy policy;
  if (command.on_bad_record == "fail") policy = BadRecordPolicy::Fail;
  else if (command.on_bad_record == "skip") policy = BadRecordPolicy::Skip;
  else fail("--on-bad-record must be fail or skip, got \"{}\"", command.on_bad_record);

  TrainConfig config = command.config.empty() ? TrainConfig{} : read_train_config(command.config);
  if (!command.model.empty()) config.model = command.model;
  if (command.steps > 0) config.steps = command.steps;
  if (!command.job_dir.empty()) config.job_dir = command.job_dir;
  validate_train_config(config, command.config.empty() ? "the default config" : command.config);

  // Everything that can be checked without the model is checked first, so a
  // bad log or an unknown user fails in a moment and changes nothing.
  InteractionLogs logs = read_interaction_logs(command.logs, policy);
  if (logs.n_skipped > 0) {
    spdlog::warn("train: skipped {} bad records of {}:", logs.n_skipped, logs.n_records + logs.n_skipped);
    for (const std::string& reason : logs.skipped) spdlog::warn("  {}", reason);
  }
  std::vector<std::string> users;
  for (const std::string& user : split_list(command.users))
    if (std::find(users.begin(), users.end(), user) == users.end()) users.push_back(user);
  const bool named = !users.empty();  // --users always trains the users it names
  if (users.empty())
    for (const auto& [user, records] : logs.by_user) users.push_back(user);
  for (const std::string& user : users)
    if (!logs.by_user.count(user)) fail("train: user {} has no conversations in {}", user, command.logs);
  if (users.empty()) fail("train: {} holds no conversations", command.logs);
  const Shard shard = resolve_shard(command.shard, config);
  if (shard.count > 1) {
    const size_t all = users.size();
    std::erase_if(users, [&](const std::string& user) { return !shard.holds(user); });
    spdlog::info("train: shard {}/{} holds {} of the {} users", shard.index, shard.count, users.size(), all);
    if (users.empty()) {
      std::printf("shard %lld/%lld holds none of the %zu users: nothing to do\n", static_cast<long long>(shard.index),
                  static_cast<long long>(shard.count), all);
      return;
    }
  }

  std::vector<TrainDecision> decisions = decide_who_trains(users, named, logs, command.registry);
  if (command.dry_run) {
    size_t n_train = 0;
    for (const TrainDecision& d : decisions) {
      std::printf("%-24s %-6s %s\n", d.user.c_str(), d.train ? "train" : "keep", d.reason.c_str());
      n_train += d.train;
    }
    std::printf("dry run: %zu of %zu users would train\n", n_train, decisions.size());
    return;
  }

  const std::string model_path = config.model.empty() ? default_model_path() : config.model;
  const json recipe = json::parse(train_config_json(config));
  // Reads every byte of the model: computed once, here when the job's
  // identity needs it, else once the model has loaded.
  std::string base_fingerprint;
  // The job directory: what a run killed at any moment resumes from.
  std::unique_ptr<TrainJob> job;
  json earlier_entries = json::array();  // users this job ended in an earlier run
  if (!config.job_dir.empty() && !command.data_only) {
    std::string dir = config.job_dir;
    if (shard.count > 1) dir = (fs::path(dir) / fmt::format("shard-{}-of-{}", shard.index, shard.count)).string();
    base_fingerprint = base_model_fingerprint(model_path);
    JobIdentity identity{
        json{{"recipe", recipe}, {"model", model_path}, {"base_model_fingerprint", base_fingerprint}}.dump(),
        command.registry.empty() ? "out " + fs::absolute(command.out).string()
                                 : "registry " + fs::absolute(command.registry).string(),
        fmt::format("{}/{}", shard.index, shard.count)};
    job = TrainJob::open(dir, identity, command.new_job);
    spdlog::info("train: {} job {} in {}", job->resumed() ? "resuming" : "starting", job->id(), dir);
    for (TrainDecision& d : decisions) {
      std::optional<UserJob> record = job->find(d.user);
      if (!record || record->data_fingerprint != d.data_fingerprint) continue;
      if (is_final(record->state)) {
        json entry = record->entry_json.empty() ? json{{"user", d.user}, {"state", user_job_state_name(record->state)}}
                                                : json::parse(record->entry_json);
        entry["earlier_run"] = true;
        earlier_entries.push_back(entry);
        d.train = false;
        d.reason = "";
      } else {
        d.train = true;
        d.reason = fmt::format("resuming job {} ({})", job->id(), user_job_state_name(record->state));
      }
    }
  }
  std::vector<TrainDecision> kept;  // users whose live adapter stays
  users.clear();
  for (const TrainDecision& d : decisions) {
    if (d.train)
      users.push_back(d.user);
    else if (!d.reason.empty())
      kept.push_back(d);
  }
  if (users.empty()) {
    std::printf("nothing to train: every user's live adapter was trained on their current logs, their newest "
                "version was rejected on them, or this job has done them (%zu users)\n",
                decisions.size());
    if (job) job->finish();
    const double total_seconds = std::chrono::duration<double>(Clock::now() - started).count();
    json entries = earlier_entries;
    for (const json& entry : unchanged_entries(kept)) entries.push_back(entry);
    write_summary_files(command, json{{"users", entries},
                                      {"n_users", 0},
                                      {"n_failed", 0},
                                      {"n_rejected", 0},
                                      {"skipped_records", logs.n_skipped},
                                      {"seconds", {{"total", total_seconds}, {"data", 0.0}, {"train", 0.0}}}});
    return;
  }

  LoadOptions load;
  load.dtype = config.dtype;  // the base's; adapters train in float32 either way (AdapterSlots::apply)
  load.device = config.device;
  spdlog::info("train: loading {}", model_path);
  const auto load_started = Clock::now();
  BaseModel model = open_base_model(model_path, load);
  if (!model.chat_template) fail("{}: training needs a model with a chat template", model_path);
  if (base_fingerprint.empty()) base_fingerprint = base_model_fingerprint(model_path);
  // The registry is opened (and created) only once the model has loaded, so a
  // run that fails before training leaves no trace in it.
  std::unique_ptr<Registry> registry;
  if (!command.registry.empty()) {
    RegistryOptions options;
    options.mode = OpenMode::kCreate;
    registry = Registry::open(command.registry, std::move(options));
  } else if (!command.out.empty()) {
    fs::create_directories(command.out);
  }
  if (registry) {
    if (std::optional<std::string> registered = registry->base_fingerprint();
        registered && *registered != base_fingerprint)
      fail("registry {} holds adapters for base model {}, but {} is {}", command.registry, *registered, model_path,
           base_fingerprint);
    // What the registry checks every adapter against (recorded once).
    registry->init(base_fingerprint, adapter_shapes_to_json(adapter_shapes(model.transformer->config())));
  }

  // Every user this run works on gets its record; a user whose version this
  // job published before it was killed ends here, without training again.
  JobRecords records(job.get());
  json summary_users = json::array();
  if (job) {
    std::vector<std::string> to_do;
    for (const TrainDecision& d : decisions) {
      if (!d.train) continue;
      const std::string& user = d.user;
      records.begin(user, d.data_fingerprint, job->find(user));
      std::optional<VersionRecord> published = registry ? version_of_job(*registry, user, job->id()) : std::nullopt;
      if (published) {
        spdlog::info("train: user {}: version {} was published by this job before it stopped", user,
                     published->version);
        json entry = entry_of_version(*published);
        records.end(entry);
        summary_users.push_back(entry);
      } else {
        to_do.push_back(user);
      }
    }
    users = to_do;
  }

  std::unique_ptr<BaseModel> augment_model;
  if ((config.data.augmentation || config.data.distillation) && !config.data.augment_model.empty() &&
      !users.empty()) {
    spdlog::info("train: loading the augmentation model {}", config.data.augment_model);
    augment_model = std::make_unique<BaseModel>(open_base_model(config.data.augment_model, load));
  }
  const BaseModel& generator = augment_model ? *augment_model : model;
  const double load_seconds = std::chrono::duration<double>(Clock::now() - load_started).count();

  // Data. One user's failure here is theirs alone: they are listed as failed
  // with the reason, and the others go on.
  auto data_started = Clock::now();
  std::vector<std::unique_ptr<UserData>> data;
  json data_stats = json::object();
  int64_t failed = 0, n_rejected = 0;
  for (size_t u = 0; u < users.size(); ++u) {
    const std::string& user = users[u];
    records.set(user, UserJobState::kBuildingData);
    std::unique_ptr<UserData> user_data;
    AugmentStats augment;
    DistillStats distill;
    try {
      user_data = std::make_unique<UserData>(build_user_data(
          user, logs.by_user.at(user), config.data,
          [&](const std::vector<NamedThing>& things) { return label_kinds(generator, things); }));
      if (config.data.augmentation) {
        std::vector<AugmentedPair> pairs =
            augment_statements(generator, user_data->statements, user_data->kinds,
                               config.data.augment_faithful, config.data.augment_samples,
                               config.data.augment_temperature, config.data.seed, &augment);
        add_augmented_examples(*user_data, pairs, config.data);
      }
      if (config.data.distillation) {
        const std::vector<std::string>& probes = config.data.distillation_probes.empty()
                                                     ? default_distillation_probes()
                                                     : config.data.distillation_probes;
        std::vector<AugmentedPair> pairs =
            distill_from_context(generator, user_data->statements, probes, config.data.distillation_per_statement,
                                 config.data.seed, &distill);
        add_distilled_examples(*user_data, pairs, config.data);
      }
      if (const double factor = limit_abstention_share(*user_data, config.data); factor < 1)
        spdlog::info("train: user {}: abstention weights scaled by {:.2f} to hold {:.0f}% of the sampling weight",
                     user, factor, 100 * config.data.abstention_max_share);
      if (user_data->examples.empty())
        fail("no training example (the config's data parts found nothing in {} conversations)",
             user_data->n_conversations);
    } catch (const Error& e) {
      spdlog::error("train: user {}: building the training data failed: {}", user, e.what());
      json entry{{"user", user}, {"state", "failed"}, {"reason", fmt::format("building the training data: {}", e.what())}};
      records.end(entry);
      summary_users.push_back(entry);
      ++failed;
      continue;
    }
    std::map<std::string, int64_t> by_source;
    for (const ChatExample& example : user_data->examples) ++by_source[example_source_name(example.source)];
    spdlog::info("train: data {}/{} {}: {} statements ({} superseded, {} by kind, {} changes kept current), {} "
                 "examples ({} augmented of {} generations, {} untrue to their statement dropped, {} distilled of {})",
                 u + 1, users.size(), user, user_data->statements.size(), user_data->n_superseded,
                 user_data->n_replaced_by_kind, user_data->n_kept_current, user_data->examples.size(),
                 augment.kept_facts + augment.kept_pairs, augment.generations, augment.untrue, distill.kept,
                 distill.prompts);
    data_stats[user] = json{{"statements", user_data->statements.size()},
                            {"superseded", user_data->n_superseded},
                            {"superseded_by_kind", user_data->n_replaced_by_kind},
                            {"changes_kept_current", user_data->n_kept_current},
                            {"examples", by_source},
                            {"augment_generations", augment.generations},
                            {"augment_untrue", augment.untrue},
                            {"distill_prompts", distill.prompts}};
    if (!command.dump_data.empty()) dump_user_data(command.dump_data, *user_data);
    records.set(user, UserJobState::kTraining);
    data.push_back(std::move(user_data));
  }
  if (command.data_only) {
    std::printf("wrote the training data of %zu users to %s\n", data.size(), command.dump_data.c_str());
    if (failed > 0) fail("train: {} of {} users failed (see above)", failed, users.size());
    return;
  }
  std::vector<ChatExample> retention;
  if (config.data.retention && config.retention_per_step > 0 && !data.empty()) {
    spdlog::info("train: the base model answers {} generic instructions (retention)", config.data.retention_prompts);
    retention = build_retention_examples(model, config.data.retention_prompts, config.data.retention_answer_tokens,
                                         config.data.replay_loss);
  }
  const double data_seconds = std::chrono::duration<double>(Clock::now() - data_started).count();

  // Training, group by group; each group's users are gated and published as
  // soon as it ends. With a job directory every user's state is saved every
  // job.checkpoint_every steps, and a resumed run goes on from there.
  std::vector<const UserData*> to_train;
  std::map<std::string, std::string> data_keys;
  TrainResume resume;
  for (const auto& d : data) {
    to_train.push_back(d.get());
    data_keys[d->user] = examples_fingerprint(*d);
    if (job && job->resumed())
      if (std::optional<TrainCheckpoint> checkpoint = job->load_checkpoint(
              d->user, data_keys[d->user], lora_config_of(config, model.path), model.transformer->config())) {
        spdlog::info("train: user {}: resuming at step {} of {}", d->user, checkpoint->step, config.steps);
        resume.from.emplace(d->user, std::move(*checkpoint));
      }
  }
  if (job) {
    resume.every = config.checkpoint_every;
    resume.save = [&](const TrainCheckpoint& checkpoint) {
      job->save_checkpoint(checkpoint, data_keys.at(checkpoint.user));
    };
  }
  const OutputContext output{config,         model,           registry.get(), command.out, command.no_live,
                             base_fingerprint, recipe.dump(), job ? job->id() : ""};
  TrainProgressLine line(static_cast<int64_t>(to_train.size()));
  int64_t users_done = 0;
  double gate_seconds = 0, output_seconds = 0;
  auto train_started = Clock::now();
  for (const std::vector<size_t>& group : training_groups(to_train, resume, config.users_per_batch, config.steps)) {
    std::vector<const UserData*> members;
    for (size_t i : group) members.push_back(to_train[i]);
    std::vector<UserTrainResult> results = train_users(
        model, config, members, retention,
        [&](const std::vector<std::string>& names, int64_t step, int64_t steps, const std::vector<double>& losses) {
          double mean = 0;
          for (double l : losses) mean += l / static_cast<double>(losses.size());
          line.update(users_done, static_cast<double>(step) / static_cast<double>(steps),
                      static_cast<int64_t>(names.size()), mean);
        },
        {}, resume);
    for (size_t m = 0; m < results.size(); ++m) {
      const std::string& user = results[m].user;
      auto resumed = resume.from.find(user);
      // Resumed from the final checkpoint of a training this job already
      // counted (a run killed after that, even while it rebuilt the data,
      // must not count it again).
      const bool trained_before = resumed != resume.from.end() && resumed->second.step == config.steps &&
                                  records.trainings_completed(user) > 0;
      records.set(user, UserJobState::kEvaluating, /*training_completed=*/!trained_before);
      const auto output_started = Clock::now();
      json entry = finish_user(output, results[m], *members[m], data_stats[user], gate_seconds);
      output_seconds += std::chrono::duration<double>(Clock::now() - output_started).count();
      if (entry["state"] == "failed") ++failed;
      if (entry["state"] == "rejected") ++n_rejected;
      records.end(entry);
      summary_users.push_back(entry);
    }
    users_done += static_cast<int64_t>(group.size());
  }
  // Gate and publish are timed apart from training (they run between groups).
  const double train_seconds = std::chrono::duration<double>(Clock::now() - train_started).count() - output_seconds;
  const double publish_seconds = output_seconds - gate_seconds;
  if (job) job->finish();

  const double total_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  for (const json& entry : earlier_entries) summary_users.push_back(entry);
  for (const json& entry : unchanged_entries(kept)) summary_users.push_back(entry);
  json summary{{"model", model_path},
               {"base_model_fingerprint", base_fingerprint},
               {"users", summary_users},
               {"n_users", users.size()},
               {"n_failed", failed},
               {"n_rejected", n_rejected},
               {"skipped_records", logs.n_skipped},
               {"seconds",
                {{"total", total_seconds},
                 {"load", load_seconds},
                 {"data", data_seconds},
                 {"train", train_seconds},
                 {"gate", gate_seconds},
                 {"publish", publish_seconds}}},
               {"recipe", recipe}};
  if (job) summary["job"] = json{{"id", job->id()}, {"dir", job->dir()}, {"resumed", job->resumed()}};
  print_summary_table(summary_users);
  std::printf("trained %zu users (%lld failed, %lld rejected by the gate) in %.0f s: loading %.0f s, data %.0f s, "
              "training %.0f s (%.0f s per user), gate %.0f s, publishing %.1f s\n",
              users.size(), static_cast<long long>(failed), static_cast<long long>(n_rejected), total_seconds,
              load_seconds, data_seconds, train_seconds,
              train_seconds / static_cast<double>(std::max<size_t>(1, to_train.size())), gate_seconds, publish_seconds);
  write_summary_files(command, summary);
  if (failed > 0) fail("train: {} of {} users failed (see above)", failed, users.size());
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto command = std::make_shared<TrainCommand>();
  CLI::App* train = app.add_subcommand(
      "train",
      "Distill each user's interaction logs into a LoRA adapter on the frozen base model: build training\n"
      "data (the conversations, probes answered with the user's own statements, generated question/answer\n"
      "pairs, abstention probes, retention on generic instructions), train every user's adapter (many users\n"
      "in one batch) and write PEFT adapters to --out DIR/<user>/ or publish them to --registry DIR.\n"
      "With --registry each new adapter must pass the publish gate (the config's gate: recall on held-out\n"
      "questions from the user's own logs, perplexity on generic text, not worse than the live version)\n"
      "to go live; one that fails is kept as a rejected version with the reason, and the live one stays.\n"
      "Exit codes: 0 ok (rejections included: see the summary), 1 error (bad logs, a model that does not\n"
      "load, a user whose training failed), 2 usage.");
  train->add_option("--logs", command->logs, "interaction logs: a .jsonl file, a directory, or logs/<user>/*.jsonl")
      ->required();
  train->add_option("--out", command->out, "write each adapter to DIR/<user>/ (PEFT format)");
  train->add_option("--registry", command->registry, "publish each adapter to this registry (live unless --no-live)");
  train->add_flag("--no-live", command->no_live, "with --registry: publish without making the new version live");
  train->add_option("--users", command->users, "comma-separated users to train (default: every user in the logs)");
  train->add_option("--config", command->config, "training config (YAML, e.g. configs/train.yaml); default: built in");
  train->add_option("--model", command->model, "base model (HF directory or GGUF); default: the config's, else the default model");
  train->add_option("--steps", command->steps, "training steps (overrides the config)");
  train->add_option("--on-bad-record", command->on_bad_record, "fail or skip (skipped records are reported)")
      ->capture_default_str();
  train->add_option("--summary", command->summary, "write the JSON summary to this file");
  train->add_option("--metrics-file", command->metrics_file,
                    "write the run's numbers as Prometheus text to this file (atomically: for node-exporter's\n"
                    "textfile collector, e.g. /var/lib/node_exporter/textfile/mnemo_train.prom)");
  train->add_option("--dump-data", command->dump_data, "write each user's training examples to DIR/<user>.jsonl and the statements read from\n"
                                         "their logs to DIR/<user>.statements.jsonl");
  train->add_flag("--data-only", command->data_only, "build and dump the training data (--dump-data), train nothing");
  train->add_option("--shard", command->shard, "i/N: train only the users whose id hashes to i mod N (default: Slurm's\n"
                                              "SLURM_ARRAY_TASK_ID/COUNT, else Kubernetes' JOB_COMPLETION_INDEX of\n"
                                              "job.shards, else every user)");
  train->add_option("--job-dir", command->job_dir,
                    "keep the job's state here (one record per user, training checkpoints), so a run killed at any\n"
                    "moment finishes the remaining work when started again with the same arguments: no user trained\n"
                    "twice to completion, none skipped, none published twice (default: the config's job.dir; each\n"
                    "shard uses DIR/shard-i-of-N)");
  train->add_flag("--new-job", command->new_job,
                  "with --job-dir: drop an unfinished job there and start a new one");
  train->add_flag("--dry-run", command->dry_run, "list who would train and why (with --registry: users whose logs changed\n"
                                                "since their live version, or who have none), train nothing");
  train->callback([command] { run_train(*command); });
}

}  // namespace mnemo
