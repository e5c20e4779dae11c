#include "trainer/train_job.h"

#include "adapters/file_system.h"
#include "adapters/lora_adapter.h"
#include "adapters/sha256.h"
#include "model/config.h"
#include "model/error.h"
#include "model/safetensors.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <array>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

constexpr std::array<const char*, 8> kStateNames = {"pending",   "building_data", "training", "evaluating",
                                                    "published", "rejected",      "trained",  "failed"};

UserJobState parse_state(const std::string& name, const std::string& where) {
  for (size_t i = 0; i < kStateNames.size(); ++i)
    if (name == kStateNames[i]) return static_cast<UserJobState>(i);
  fail("{}: field \"state\": \"{}\" is not a user job state", where, name);
}

json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  if (!in) fail("{}: cannot read", path.string());
  std::stringstream text;
  text << in.rdbuf();
  try {
    return json::parse(text.str());
  } catch (const json::exception& e) {
    fail("{}: not JSON ({}); remove the job directory's file to start the job over", path.string(), e.what());
  }
}

std::string new_job_id() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  return fmt::format("{}-{}", stamp, ::getpid());
}

json numbers_json(const std::vector<double>& values) {
  json array = json::array();
  for (double v : values) array.push_back(std::isfinite(v) ? json(v) : json(nullptr));
  return array;
}

std::vector<double> numbers_of(const std::string& text) {
  std::vector<double> values;
  for (const json& v : json::parse(text)) values.push_back(v.is_number() ? v.get<double>() : std::nan(""));
  return values;
}

UserJobState final_state_of(const json& entry) {
  const std::string state = entry.at("state").get<std::string>();
  if (state == "published") return UserJobState::kPublished;
  if (state == "rejected") return UserJobState::kRejected;
  if (state == "trained") return UserJobState::kTrained;
  return UserJobState::kFailed;
}

std::string moment_name(size_t parameter, const char* which) {
  return fmt::format("moments.{}.{}", parameter, which);
}

}  // namespace

const char* user_job_state_name(UserJobState state) { return kStateNames[static_cast<size_t>(state)]; }

bool is_final(UserJobState state) {
  return state == UserJobState::kPublished || state == UserJobState::kRejected || state == UserJobState::kTrained ||
         state == UserJobState::kFailed;
}

std::unique_ptr<TrainJob> TrainJob::open(const std::string& dir, const JobIdentity& identity, bool start_new) {
  FileSystem& file_system = default_file_system();
  file_system.create_dirs(dir);
  std::unique_ptr<TrainJob> job(new TrainJob());
  job->dir_ = dir;
  job->identity_ = identity;
  const fs::path lock_path = fs::path(dir) / "LOCK";
  job->lock_ = file_system.try_lock_file(lock_path.string());
  if (!job->lock_)
    fail("{}: another mnemo train is working on this job (it holds {}); wait for it to end or stop it, then run "
         "again to resume",
         dir, lock_path.string());

  const fs::path job_file = fs::path(dir) / "job.json";
  if (fs::exists(job_file) && !start_new) {
    const json earlier = read_json_file(job_file);
    const bool finished = earlier.value("finished", false);
    if (!finished) {
      for (const auto& [field, value] : {std::pair<const char*, const std::string*>{"recipe", &identity.recipe},
                                         {"target", &identity.target},
                                         {"shard", &identity.shard}})
        if (earlier.value(field, std::string()) != *value)
          fail("{}: the unfinished job {} there has another {} ({} there, {} now); run it again as it was to finish "
               "it, or pass --new-job to drop it",
               dir, earlier.value("id", std::string("?")), field,
               std::string(field) == "recipe" ? "a different config or base model" : earlier.value(field, std::string()),
               std::string(field) == "recipe" ? "this run's" : *value);
      job->id_ = earlier.value("id", std::string());
      job->resumed_ = true;
      return job;
    }
  }
  // A new job: the last one's records and checkpoints go.
  fs::remove_all(fs::path(dir) / "users");
  fs::remove_all(fs::path(dir) / "checkpoints");
  file_system.create_dirs((fs::path(dir) / "users").string());
  file_system.create_dirs((fs::path(dir) / "checkpoints").string());
  job->id_ = new_job_id();
  job->write_job_file(false);
  return job;
}

TrainJob::~TrainJob() = default;

void TrainJob::write_job_file(bool finished) {
  json job{{"id", id_},
           {"recipe", identity_.recipe},
           {"target", identity_.target},
           {"shard", identity_.shard},
           {"finished", finished}};
  write_file_durably(default_file_system(), (fs::path(dir_) / "job.json").string(), job.dump(2) + "\n");
}

std::optional<UserJob> TrainJob::find(const std::string& user) const {
  const fs::path path = fs::path(dir_) / "users" / (user + ".json");
  if (!fs::exists(path)) return std::nullopt;
  const json record = read_json_file(path);
  UserJob job;
  try {
    job.user = record.at("user").get<std::string>();
    job.state = parse_state(record.at("state").get<std::string>(), path.string());
    job.data_fingerprint = record.at("data_fingerprint").get<std::string>();
    job.reason = record.value("reason", std::string());
    job.trainings_completed = record.value("trainings_completed", int64_t{0});
    job.runs = record.value("runs", int64_t{0});
    job.entry_json = record.contains("entry") ? record["entry"].dump() : std::string();
  } catch (const json::exception& e) {
    fail("{}: {}", path.string(), e.what());
  }
  if (job.user != user) fail("{}: the record is of user \"{}\"", path.string(), job.user);
  return job;
}

void TrainJob::put(const UserJob& job) {
  json record{{"user", job.user},
              {"job", id_},
              {"state", user_job_state_name(job.state)},
              {"data_fingerprint", job.data_fingerprint},
              {"reason", job.reason},
              {"trainings_completed", job.trainings_completed},
              {"runs", job.runs}};
  if (!job.entry_json.empty()) record["entry"] = json::parse(job.entry_json);
  write_file_durably(default_file_system(), (fs::path(dir_) / "users" / (job.user + ".json")).string(),
                     record.dump(2) + "\n");
}

void TrainJob::save_checkpoint(const TrainCheckpoint& checkpoint, const std::string& data_key) {
  std::map<std::string, at::Tensor> tensors;
  const LoraAdapter& adapter = checkpoint.adapter;
  for (int64_t layer = 0; layer < static_cast<int64_t>(adapter.layers.size()); ++layer)
    for (LinearModule module : adapter.config.target_modules) {
      tensors[peft_tensor_name(layer, module, 'A')] = adapter.pair(layer, module).A;
      tensors[peft_tensor_name(layer, module, 'B')] = adapter.pair(layer, module).B;
    }
  for (size_t p = 0; p < checkpoint.moments.exp_avg.size(); ++p) {
    tensors[moment_name(p, "exp_avg")] = checkpoint.moments.exp_avg[p];
    tensors[moment_name(p, "exp_avg_sq")] = checkpoint.moments.exp_avg_sq[p];
  }
  std::map<std::string, std::string> metadata{{"mnemo.user", checkpoint.user},
                                              {"mnemo.job", id_},
                                              {"mnemo.checkpoint.data", data_key},
                                              {"mnemo.checkpoint.step", std::to_string(checkpoint.step)},
                                              {"mnemo.checkpoint.rng", checkpoint.rng},
                                              {"mnemo.checkpoint.next_retention", std::to_string(checkpoint.next_retention)},
                                              {"mnemo.checkpoint.losses", numbers_json(checkpoint.losses).dump()},
                                              {"mnemo.checkpoint.kls", numbers_json(checkpoint.kls).dump()}};
  const std::string path = (fs::path(dir_) / "checkpoints" / (checkpoint.user + ".safetensors")).string();
  write_safetensors(path, tensors, metadata);
  default_file_system().sync_dir(fs::path(path).parent_path().string());
}

std::optional<TrainCheckpoint> TrainJob::load_checkpoint(const std::string& user, const std::string& data_key,
                                                         const LoraConfig& lora, const ModelConfig& model) const {
  const std::string path = (fs::path(dir_) / "checkpoints" / (user + ".safetensors")).string();
  if (!fs::exists(path)) return std::nullopt;
  try {
    std::shared_ptr<SafetensorsFile> file = SafetensorsFile::open(path);
    const auto& metadata = file->metadata();
    auto field = [&](const std::string& key) {
      auto found = metadata.find(key);
      if (found == metadata.end()) fail("{}: no __metadata__ field {}", path, key);
      return found->second;
    };
    if (field("mnemo.user") != user) fail("{}: a checkpoint of user {}", path, field("mnemo.user"));
    if (field("mnemo.job") != id_) fail("{}: a checkpoint of job {}, not {}", path, field("mnemo.job"), id_);
    if (field("mnemo.checkpoint.data") != data_key)
      fail("{}: trained on other data than the user's now (their logs or the data recipe changed)", path);
    TrainCheckpoint checkpoint;
    checkpoint.user = user;
    checkpoint.step = std::stoll(field("mnemo.checkpoint.step"));
    checkpoint.rng = field("mnemo.checkpoint.rng");
    checkpoint.next_retention = std::stoll(field("mnemo.checkpoint.next_retention"));
    checkpoint.losses = numbers_of(field("mnemo.checkpoint.losses"));
    checkpoint.kls = numbers_of(field("mnemo.checkpoint.kls"));
    if (static_cast<int64_t>(checkpoint.losses.size()) != checkpoint.step ||
        static_cast<int64_t>(checkpoint.kls.size()) != checkpoint.step)
      fail("{}: {} losses and {} KL values for {} steps", path, checkpoint.losses.size(), checkpoint.kls.size(),
           checkpoint.step);
    LoraAdapter& adapter = checkpoint.adapter;
    adapter.config = lora;
    adapter.layers.resize(static_cast<size_t>(model.num_layers));
    size_t parameter = 0;
    for (int64_t layer = 0; layer < model.num_layers; ++layer)
      for (LinearModule module : lora.target_modules) {
        adapter.pair(layer, module).A = file->tensor(peft_tensor_name(layer, module, 'A')).clone();
        adapter.pair(layer, module).B = file->tensor(peft_tensor_name(layer, module, 'B')).clone();
        for (int i = 0; i < 2; ++i, ++parameter) {
          checkpoint.moments.exp_avg.push_back(file->tensor(moment_name(parameter, "exp_avg")).clone());
          checkpoint.moments.exp_avg_sq.push_back(file->tensor(moment_name(parameter, "exp_avg_sq")).clone());
        }
      }
    validate_against(adapter, model);
    return checkpoint;
  } catch (const std::exception& e) {  // a torn or foreign file, a parse error: start over
    spdlog::warn("train: user {}: not resuming from the checkpoint: {}", user, e.what());
    return std::nullopt;
  }
}

void TrainJob::remove_checkpoint(const std::string& user) {
  default_file_system().remove_file((fs::path(dir_) / "checkpoints" / (user + ".safetensors")).string());
}

void JobRecords::begin(const std::string& user, const std::string& data_fingerprint, std::optional<UserJob> earlier) {
  if (!job_) return;
  UserJob record;
  if (earlier && earlier->data_fingerprint == data_fingerprint) {
    record = *earlier;
  } else {
    record.user = user;
    record.data_fingerprint = data_fingerprint;
  }
  ++record.runs;
  records_[user] = record;
  job_->put(record);
}

int64_t JobRecords::trainings_completed(const std::string& user) const {
  auto found = records_.find(user);
  return found == records_.end() ? 0 : found->second.trainings_completed;
}

void JobRecords::set(const std::string& user, UserJobState state, bool training_completed) {
  if (!job_) return;
  UserJob& record = records_.at(user);
  record.state = state;
  if (training_completed) ++record.trainings_completed;
  job_->put(record);
}

void JobRecords::end(const json& entry) {
  if (!job_) return;
  const std::string user = entry.at("user").get<std::string>();
  UserJob& record = records_.at(user);
  record.state = final_state_of(entry);
  record.reason = entry.value("reason", std::string());
  record.entry_json = entry.dump();
  job_->put(record);
  job_->remove_checkpoint(user);
}

std::string examples_fingerprint(const UserData& data) {
  Sha256 hash;
  for (const ChatExample& example : data.examples) {
    hash.update(fmt::format("{}\x1f{}\x1f", example_source_name(example.source), example.sampling_weight));
    for (const ChatMessage& m : example.messages) hash.update(m.role + "\x1f" + m.content + "\x1e");
    hash.update("\x1d");
  }
  return hash.hex();
}

void TrainJob::finish() {
  write_job_file(true);
  fs::remove_all(fs::path(dir_) / "checkpoints");
}

}  // namespace mnemo
