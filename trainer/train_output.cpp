#include "trainer/train_output.h"

#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "model/error.h"
#include "trainer/publish_gate.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

namespace mnemo {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

std::optional<VersionRecord> version_of_job(Registry& registry, const std::string& user, const std::string& job_id) {
  std::vector<VersionRecord> versions;
  try {
    versions = registry.versions(user);
  } catch (const RegistryNotFound&) {
    return std::nullopt;
  }
  for (const VersionRecord& version : versions) {
    const json metrics = json::parse(version.metrics_json, nullptr, /*allow_exceptions=*/false);
    if (metrics.is_object() && metrics.contains("job") && metrics["job"] == job_id) return version;
  }
  return std::nullopt;
}

json entry_of_version(const VersionRecord& version) {
  json entry{{"user", version.user},
             {"state", version.status == VersionStatus::kRejected ? "rejected" : "published"},
             {"metrics", json::parse(version.metrics_json, nullptr, false)},
             {"version", version.version},
             {"live", version.live}};
  return entry;
}

json finish_user(const OutputContext& c, UserTrainResult& result, const UserData& data, const json& data_stats,
                 double& gate_seconds) {
  json metrics{{"steps", result.steps},
               {"first_loss", result.first_loss},
               {"final_loss", result.final_loss},
               {"final_kl", std::isfinite(result.final_kl) ? json(result.final_kl) : json(nullptr)},
               {"examples", result.n_examples},
               {"train_seconds", result.seconds}};
  if (!c.job_id.empty()) metrics["job"] = c.job_id;
  json entry{{"user", result.user},
             {"state", result.diverged ? "failed" : c.registry ? "published" : "trained"},
             {"metrics", metrics},
             {"data", data_stats}};
  if (result.diverged) {
    entry["reason"] = fmt::format("training diverged ({}); nothing was written", result.divergence);
    spdlog::error("train: user {}: training diverged ({}); no adapter written", result.user, result.divergence);
    return entry;
  }
  LoraAdapter& adapter = result.adapter;
  adapter.metadata[kMetaUser] = result.user;
  adapter.metadata[kMetaBaseFingerprint] = c.base_fingerprint;
  adapter.metadata[kMetaDataFingerprint] = data.data_fingerprint;
  adapter.metadata[kMetaMetrics] = metrics.dump();
  adapter.metadata["mnemo.recipe"] = c.recipe_json;
  try {
    bool rejected = false;
    if (c.registry && c.config.gate.enabled && !c.no_live) {
      const GateOutcome gate = gate_new_adapter(c.model, c.config.gate, *c.registry, result.user, data.statements, adapter);
      metrics["gate"] = gate.record;
      metrics["gate_seconds"] = gate.seconds;
      gate_seconds += gate.seconds;
      adapter.metadata[kMetaMetrics] = metrics.dump();
      entry["metrics"] = metrics;
      if (!gate.verdict.passed) {
        rejected = true;
        entry["state"] = "rejected";
        entry["reason"] = gate.verdict.reason;
      }
    }
    if (c.registry) {
      fs::path staging = fs::temp_directory_path() / fmt::format("mnemo-train-{}-{}", ::getpid(), result.user);
      write_peft_adapter(staging.string(), adapter);
      PublishRequest request;
      request.adapter_dir = staging.string();
      request.user = result.user;
      request.base_fingerprint = c.base_fingerprint;
      request.make_live = !c.no_live && !rejected;
      request.rejected = rejected;
      PublishResult published;
      try {
        published = c.registry->publish(request);
      } catch (...) {
        fs::remove_all(staging);
        throw;
      }
      fs::remove_all(staging);
      entry["version"] = published.version;
      entry["live"] = published.live;
    } else {
      std::string dir = (fs::path(c.out_dir) / result.user).string();
      write_peft_adapter(dir, adapter);
      entry["adapter"] = dir;
    }
  } catch (const Error& e) {
    entry["state"] = "failed";
    entry["reason"] = fmt::format("{}: {}", c.registry ? "gating or publishing" : "writing the adapter", e.what());
    spdlog::error("train: user {}: {}", result.user, entry["reason"].get<std::string>());
  }
  return entry;
}

void print_summary_table(const json& summary_users) {
  // Users the run kept have no metrics; gate columns only where the gate ran.
  std::printf("%-20s %-9s %8s %10s %10s %8s %7s %7s\n", "user", "state", "examples", "first loss", "final loss", "kl",
              "recall", "ppl x");
  auto number = [](const json& object, const char* key, const char* format) {
    return object.is_object() && object.contains(key) && object[key].is_number()
               ? fmt::format(fmt::runtime(format), object[key].get<double>())
               : std::string("-");
  };
  for (const json& entry : summary_users) {
    const json metrics = entry.contains("metrics") ? entry["metrics"] : json::object();
    const json gate = metrics.is_object() && metrics.contains("gate") ? metrics["gate"] : json::object();
    std::printf("%-20s %-9s %8s %10s %10s %8s %7s %7s\n", entry["user"].get<std::string>().c_str(),
                entry["state"].get<std::string>().c_str(), number(metrics, "examples", "{:.0f}").c_str(),
                number(metrics, "first_loss", "{:.3f}").c_str(), number(metrics, "final_loss", "{:.3f}").c_str(),
                number(metrics, "final_kl", "{:.4f}").c_str(), number(gate, "recall", "{:.2f}").c_str(),
                number(gate, "perplexity_ratio", "{:.3f}").c_str());
  }
  for (const json& entry : summary_users)
    if (entry.contains("reason") && entry["state"] != "unchanged")
      std::printf("%s: %s: %s\n", entry["user"].get<std::string>().c_str(), entry["state"].get<std::string>().c_str(),
                  entry["reason"].get<std::string>().c_str());
}


}  // namespace mnemo
