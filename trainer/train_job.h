// The nightly job's state on disk (`mnemo train --job-dir DIR`), so that a job
// killed at any moment, SIGKILL included, and started again finishes the
// remaining work: no user trained twice to completion, none skipped, none
// published twice.
//
// A job directory (one per shard) holds:
//   LOCK                             held (flock) by the run working on the job
//   job.json                         the job: id, what it trains (identity), finished or not
//   users/<user>.json                one record per user job
//   checkpoints/<user>.safetensors   the user's training state (user_trainer.h's TrainCheckpoint)
// Every file is written to a temporary, fsynced and renamed into place, so a
// reader finds the old version or the new one.
//
// A user job goes pending → building_data → training → evaluating and ends
// published, rejected (by the gate), trained (--out) or failed. A job is
// finished when a run ends with every user job ended; the next run in the
// directory starts a new job.
#pragma once

#include "trainer/user_trainer.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mnemo {

class FileLock;
struct ModelConfig;

enum class UserJobState { kPending, kBuildingData, kTraining, kEvaluating, kPublished, kRejected, kTrained, kFailed };

const char* user_job_state_name(UserJobState state);
bool is_final(UserJobState state);

struct UserJob {
  std::string user;
  UserJobState state = UserJobState::kPending;
  std::string data_fingerprint;  // of the logs it trains on: a record holds only for these logs
  std::string reason;            // why it failed or was rejected
  // Times its training reached the last step and was recorded (1 in a job
  // that went well, however often it was killed).
  int64_t trainings_completed = 0;
  int64_t runs = 0;        // runs of the job that worked on it
  std::string entry_json;  // its entry in the run's summary, once ended
};

// What a job trains; a run resumes an unfinished job only when it is the same.
struct JobIdentity {
  std::string recipe;  // the training config and the base model's fingerprint, as JSON
  std::string target;  // "registry DIR" or "out DIR"
  std::string shard;   // "i/N"
};

class TrainJob {
 public:
  // Opens the job in `dir` (created when missing) and holds its lock until
  // destroyed (a second run on the same directory fails at once, saying
  // so: two runs of one job would train the same users). Resumes the
  // unfinished job there when it has `identity`; otherwise starts a new job,
  // clearing the old one's records and checkpoints, when the old one is
  // finished or absent, or when `start_new` is set. An unfinished job of
  // another identity fails, naming what differs.
  static std::unique_ptr<TrainJob> open(const std::string& dir, const JobIdentity& identity, bool start_new);
  ~TrainJob();

  const std::string& id() const { return id_; }
  const std::string& dir() const { return dir_; }
  bool resumed() const { return resumed_; }

  // The user's record in this job, if any. Throws for a record that does not parse.
  std::optional<UserJob> find(const std::string& user) const;
  void put(const UserJob& job);  // durable when it returns

  // The training state of `user`, kept with the fingerprint of the data it
  // trains on (`data_key`).
  void save_checkpoint(const TrainCheckpoint& checkpoint, const std::string& data_key);
  // The user's checkpoint when there is one for `data_key` that fits the
  // adapters of `lora` on `model`; nullopt otherwise (a mismatch is logged:
  // the user starts over).
  std::optional<TrainCheckpoint> load_checkpoint(const std::string& user, const std::string& data_key,
                                                 const LoraConfig& lora, const ModelConfig& model) const;
  void remove_checkpoint(const std::string& user);

  // Every user job ended: the job is finished (its checkpoints are removed).
  void finish();

 private:
  TrainJob() = default;
  void write_job_file(bool finished);
  std::string dir_, id_;
  JobIdentity identity_;
  bool resumed_ = false;
  std::unique_ptr<FileLock> lock_;
};

// What a run keeps about the job while it works: the records of the users it
// works on, written through to the job directory; with no job (nullptr)
// every call does nothing.
class JobRecords {
 public:
  explicit JobRecords(TrainJob* job) : job_(job) {}
  // The user's record (the earlier run's when it is of these same logs),
  // counted as worked on by this run.
  void begin(const std::string& user, const std::string& data_fingerprint, std::optional<UserJob> earlier);
  // How many times this job has trained the user to completion (0 without a job).
  int64_t trainings_completed(const std::string& user) const;
  void set(const std::string& user, UserJobState state, bool training_completed = false);
  // The user's job ended as its summary `entry` says (published, rejected,
  // trained or failed); its checkpoint goes.
  void end(const nlohmann::ordered_json& entry);

 private:
  TrainJob* job_;
  std::map<std::string, UserJob> records_;
};

// The fingerprint of the examples a user trains on: a checkpoint resumes only
// on the very same data.
std::string examples_fingerprint(const UserData& data);

}  // namespace mnemo
