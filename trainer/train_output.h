// What `mnemo train` does with each user's trained adapter: gate it, publish
// it to the registry (or write it to --out), and say what happened in the
// user's summary entry; and the table printed at the end of a run.
#pragma once

#include "trainer/train_config.h"
#include "trainer/user_trainer.h"

#include <nlohmann/json_fwd.hpp>

#include <optional>
#include <string>

namespace mnemo {

class Registry;
struct BaseModel;
struct VersionRecord;

struct OutputContext {
  const TrainConfig& config;
  const BaseModel& model;
  Registry* registry = nullptr;  // nullptr: write PEFT directories under out_dir
  std::string out_dir;
  bool no_live = false;          // publish without making the version live (and without the gate)
  std::string base_fingerprint;
  std::string recipe_json;       // recorded in every adapter's metadata
  std::string job_id;            // "" without a job directory; else recorded in the metrics
};

// Gates, publishes or writes one user's trained adapter and returns the
// user's summary entry (state published, rejected, trained or failed, with
// the reason, metrics and version). A failure is this user's alone: it ends
// in the entry, never thrown. (With a job, run_train first looks for a
// version this job already published, version_of_job, and does not call this.)
nlohmann::ordered_json finish_user(const OutputContext& context, UserTrainResult& result, const UserData& data,
                                   const nlohmann::ordered_json& data_stats, double& gate_seconds);

// The version of `user` that job `job_id` published, if any.
std::optional<VersionRecord> version_of_job(Registry& registry, const std::string& user, const std::string& job_id);
// A summary entry for such a version.
nlohmann::ordered_json entry_of_version(const VersionRecord& version);

// One line per user (state, examples, losses, gate numbers), then the reasons.
void print_summary_table(const nlohmann::ordered_json& summary_users);

}  // namespace mnemo
