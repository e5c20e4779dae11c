// `mnemo adapters …`: how an operator looks after the registry. Every
// subcommand prints a human table by default and JSON with --json; errors
// become the exit codes listed in the footer of `mnemo adapters --help`.
#include "adapters/cli.h"

#include "adapters/base_fingerprint.h"
#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "model/model_loader.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>

namespace mnemo {
namespace {

using json = nlohmann::json;

constexpr const char* kExitCodes =
    "Registry location: --registry DIR, else `registry:` in --config FILE, else $MNEMO_HOME/registry,\n"
    "else $XDG_DATA_HOME/mnemo/registry, else ~/.local/share/mnemo/registry.\n"
    "\n"
    "Exit codes:\n"
    "  0  ok\n"
    "  1  error (I/O, corrupt index, base-model mismatch, read-only or newer-schema registry)\n"
    "  2  usage (invalid user id, missing user or fingerprint, bad flag combination)\n"
    "  3  not found (no registry, no such user, version or directory)\n"
    "  4  verification failed (a blob is missing, does not match its hash, or a version does not load)\n"
    "  A malformed command line (unknown flag, missing argument) also exits 2.";

struct Settings {
  std::string registry;
  std::string config;
  std::string actor;
  bool json_output = false;
};

std::unique_ptr<Registry> open_registry(const Settings& settings, OpenMode mode) {
  RegistryOptions options;
  options.mode = mode;
  options.actor = settings.actor;
  return Registry::open(resolve_registry_root(settings.registry, settings.config), std::move(options));
}

// Runs a subcommand body; registry errors with their own exit code are
// printed here (after the body's objects are destroyed) and end the process.
void run(const std::function<void()>& body) {
  int code = 0;
  std::string message;
  try {
    body();
  } catch (const RegistryUsageError& e) {
    code = 2, message = e.what();
  } catch (const RegistryNotFound& e) {
    code = 3, message = e.what();
  } catch (const RegistryCorruption& e) {
    code = 4, message = e.what();
  }
  if (code == 0) return;
  std::fflush(stdout);
  std::fprintf(stderr, "error: %s\n", message.c_str());
  std::exit(code);
}

std::string iso_time(int64_t ms) {
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) value /= 1024, ++unit;
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, units[unit]);
}

std::string human_age(int64_t created_ms) {
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  int64_t seconds = std::max<int64_t>(0, (now - created_ms) / 1000);
  if (seconds < 120) return fmt::format("{}s", seconds);
  if (seconds < 7200) return fmt::format("{}m", seconds / 60);
  if (seconds < 172800) return fmt::format("{}h", seconds / 3600);
  return fmt::format("{}d", seconds / 86400);
}

// Left-aligned columns, two spaces apart, widths from the content.
void print_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths(header.size());
  for (size_t c = 0; c < header.size(); ++c) widths[c] = header[c].size();
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size() && c < widths.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(widths[c] - row[c].size() + 2, ' ');
    }
    std::cout << line << '\n';
  };
  print_row(header);
  for (const auto& row : rows) print_row(row);
}

json files_json(const std::vector<FileRef>& files) {
  json out = json::array();
  for (const FileRef& file : files) out.push_back({{"name", file.name}, {"sha256", file.sha256}, {"size_bytes", file.size_bytes}});
  return out;
}

json version_json(const VersionRecord& record) {
  return {{"user", record.user},
          {"version", record.version},
          {"status", to_string(record.status)},
          {"live", record.live},
          {"created", iso_time(record.created_ms)},
          {"base_model_fingerprint", record.base_fingerprint},
          {"data_fingerprint", record.data_fingerprint},
          {"metrics", json::parse(record.metrics_json, nullptr, false)},
          {"size_bytes", record.size_bytes},
          {"files", files_json(record.files)}};
}

void print_publish_results(const Settings& settings, const std::vector<PublishResult>& results) {
  if (settings.json_output) {
    json out = json::array();
    for (const PublishResult& r : results)
      out.push_back({{"user", r.user}, {"version", r.version}, {"live", r.live}, {"files", files_json(r.files)}});
    std::cout << out.dump(2) << '\n';
    return;
  }
  for (const PublishResult& r : results)
    std::cout << fmt::format("published {}@{}{}\n", r.user, r.version, r.live ? " (live)" : "");
}

void add_init(CLI::App& adapters, std::shared_ptr<Settings> settings) {
  auto* command = adapters.add_subcommand(
      "init", "Create a registry (or check an existing one) for a base model, recording what adapters must fit");
  struct Args {
    std::string fingerprint, model;
  };
  auto args = std::make_shared<Args>();
  command->add_option("--base-fingerprint", args->fingerprint, "The base model's fingerprint; publishes must match it");
  command->add_option("--model", args->model,
                      "The base model (HF directory or .gguf): records its fingerprint and the adapter shapes it "
                      "takes, without which the registry refuses publishes");
  command->callback([settings, args] {
    run([&] {
      std::string fingerprint = args->fingerprint, shapes;
      if (!args->model.empty()) {
        shapes = adapter_shapes_to_json(adapter_shapes(read_model_config(args->model)));
        std::string computed = base_model_fingerprint(args->model);
        if (!fingerprint.empty() && fingerprint != computed)
          throw RegistryUsageError(fmt::format("--base-fingerprint {} is not {}'s fingerprint ({})", fingerprint,
                                               args->model, computed));
        fingerprint = computed;
      }
      auto registry = open_registry(*settings, OpenMode::kCreate);
      if (!fingerprint.empty()) registry->init(fingerprint, shapes);
      std::optional<std::string> base = registry->base_fingerprint();
      std::optional<std::string> base_shapes = registry->base_shapes();
      const std::string root = resolve_registry_root(settings->registry, settings->config);
      if (settings->json_output) {
        std::cout << json{{"registry", root},
                          {"base_model_fingerprint", base ? json(*base) : json()},
                          {"base_model_shapes", base_shapes ? json::parse(*base_shapes) : json()}}
                         .dump(2)
                  << '\n';
        return;
      }
      std::cout << fmt::format("registry at {} (base model {})\n", root,
                               base ? *base : "not recorded");
      if (!base_shapes)
        std::cout << "adapter shapes not recorded: publishes are refused until `mnemo adapters init --model PATH`\n";
    });
  });
}

void add_publish(CLI::App& adapters, std::shared_ptr<Settings> settings) {
  auto* command = adapters.add_subcommand(
      "publish", "Store an adapter directory (PEFT: adapter_config.json + adapter_model.safetensors) as a new version");
  auto request = std::make_shared<PublishRequest>();
  command->add_option("dir", request->adapter_dir, "The adapter directory")->required();
  command->add_option("--user", request->user, "User id (default: mnemo.user in the safetensors metadata)");
  command->add_option("--base-fingerprint", request->base_fingerprint,
                      "Base-model fingerprint (default: mnemo.base_model_fingerprint in the metadata)");
  command->add_flag("--live", request->make_live, "Make the new version live");
  command->callback([settings, request] {
    run([&] {
      auto registry = open_registry(*settings, OpenMode::kCreate);
      print_publish_results(*settings, {registry->publish(*request)});
    });
  });
}

void add_list(CLI::App& adapters, std::shared_ptr<Settings> settings) {
  auto* command = adapters.add_subcommand(
      "list", "List users: live version, number of versions, size and age (of the newest version when none is live)");
  command->callback([settings] {
    run([&] {
      auto registry = open_registry(*settings, OpenMode::kReadOnly);
      std::vector<UserSummary> users = registry->list();
      if (settings->json_output) {
        json out = json::array();
        for (const UserSummary& u : users)
          out.push_back({{"user", u.user},
                         {"live_version", u.live_version ? json(*u.live_version) : json()},
                         {"versions", u.n_versions},
                         {"size_bytes", u.size_bytes},
                         {"created", iso_time(u.created_ms)}});
        std::cout << out.dump(2) << '\n';
        return;
      }
      std::vector<std::vector<std::string>> rows;
      for (const UserSummary& u : users)
        rows.push_back({u.user, u.live_version ? std::to_string(*u.live_version) : "-", std::to_string(u.n_versions),
                        human_bytes(u.size_bytes), human_age(u.created_ms)});
      print_table({"USER", "LIVE", "VERSIONS", "SIZE", "AGE"}, rows);
    });
  });
}

void add_show(CLI::App& adapters, std::shared_ptr<Settings> settings) {
  auto* command = adapters.add_subcommand("show", "Show a user's versions: status, metrics, fingerprints, files");
  auto user = std::make_shared<std::string>();
  command->add_option("user", *user, "User id")->required();
  command->callback([settings, user] {
    run([&] {
      auto registry = open_registry(*settings, OpenMode::kReadOnly);
      std::vector<VersionRecord> records = registry->versions(*user);
      if (settings->json_output) {
        json out = json::array();
        for (const VersionRecord& record : records) out.push_back(version_json(record));
        std::cout << json{{"user", *user}, {"versions", out}}.dump(2) << '\n';
        return;
      }
      std::vector<std::vector<std::string>> rows;
      for (const VersionRecord& r : records)
        rows.push_back({std::to_string(r.version), r.live ? "live" : to_string(r.status), iso_time(r.created_ms),
                        human_bytes(r.size_bytes), r.data_fingerprint.empty() ? "-" : r.data_fingerprint,
                        r.metrics_json});
      print_table({"VERSION", "STATUS", "CREATED", "SIZE", "DATA FINGERPRINT", "METRICS"}, rows);
      std::cout << '\n';
      for (const VersionRecord& r : records) {
        std::cout << fmt::format("version {}  base model {}\n", r.version, r.base_fingerprint);
        for (const FileRef& f : r.files)
          std::cout << fmt::format("  {:<27} sha256:{}  {}\n", f.name, f.sha256, human_bytes(f.size_bytes));
      }
    });
  });
}

void add_rollback(CLI::App& adapters, std::shared_ptr<Settings> settings) {
  auto* command = adapters.add_subcommand(
      "rollback", "Make an earlier version live (the newest one not rolled back before, or --to N)");
  auto user = std::make_shared<std::string>();
  auto to = std::make_shared<int64_t>(0);
  command->add_option("user", *user, "User id")->required();
  command->add_option("--to", *to, "The version to make live (also rolls forward)")->check(CLI::PositiveNumber);
  command->callback([settings, user, to] {
    run([&] {
      auto registry = open_registry(*settings, OpenMode::kReadWrite);
      std::optional<int64_t> before = registry->live_version(*user);
      int64_t live = registry->rollback(*user, *to > 0 ? std::optional<int64_t>(*to) : std::nullopt);
      if (settings->json_output)
        std::cout << json{{"user", *user}, {"from", before ? json(*before) : json()}, {"live_version", live}}.dump(2)
                  << '\n';
      else
        std::cout << fmt::format("{}: live version {} -> {}\n", *user, before ? std::to_string(*before) : "none", live);
    });
  });
}

void add_rm(CLI::App& adapters, std::shared_ptr<Settings> settings) {
  auto* command = adapters.add_subcommand(
      "rm", "Erase a user (right to erasure): every version's blobs and rows; an audit entry records who, when, "
            "which hashes");
  auto user = std::make_shared<std::string>();
  command->add_option("user", *user, "User id")->required();
  command->callback([settings, user] {
    run([&] {
      auto registry = open_registry(*settings, OpenMode::kReadWrite);
      ErasureReport report = registry->erase(*user);
      if (settings->json_output)
        std::cout << json{{"user", report.user}, {"versions", report.n_versions}, {"blobs_removed", report.removed_blobs}}
                         .dump(2)
                  << '\n';
      else
        std::cout << fmt::format("erased {}: {} versions, {} blobs removed\n", report.user, report.n_versions,
                                 report.removed_blobs.size());
    });
  });
}

void add_gc(CLI::App& adapters, std::shared_ptr<Settings> settings) {
  auto* command = adapters.add_subcommand("gc", "Remove blobs that no version references (left by failed publishes)");
  command->callback([settings] {
    run([&] {
      auto registry = open_registry(*settings, OpenMode::kReadWrite);
      GcReport report = registry->gc();
      if (settings->json_output)
        std::cout << json{{"blobs_removed", report.removed_blobs}, {"bytes_removed", report.removed_bytes}}.dump(2) << '\n';
      else
        std::cout << fmt::format("removed {} unreferenced blobs ({})\n", report.removed_blobs.size(),
                                 human_bytes(report.removed_bytes));
    });
  });
}

void add_verify(CLI::App& adapters, std::shared_ptr<Settings> settings) {
  auto* command = adapters.add_subcommand("verify", "Re-hash every blob; report missing or mismatched ones (exit 4)");
  command->callback([settings] {
    run([&] {
      auto registry = open_registry(*settings, OpenMode::kReadOnly);
      VerifyReport report = registry->verify();
      if (settings->json_output) {
        json problems = json::array();
        for (const VerifyProblem& p : report.problems)
          problems.push_back({{"sha256", p.sha256}, {"problem", p.problem}, {"used_by", p.used_by}});
        std::cout << json{{"ok", report.ok()}, {"blobs_checked", report.n_blobs_checked}, {"problems", problems}}.dump(2)
                  << '\n';
      } else {
        std::cout << fmt::format("checked {} blobs: {}\n", report.n_blobs_checked, report.ok() ? "ok" : "FAILED");
        std::vector<std::vector<std::string>> rows;
        for (const VerifyProblem& p : report.problems) {
          std::string used;
          for (const std::string& u : p.used_by) used += (used.empty() ? "" : ",") + u;
          rows.push_back({p.sha256, p.problem, used.empty() ? "-" : used});
        }
        if (!rows.empty()) print_table({"SHA256", "PROBLEM", "USED BY"}, rows);
      }
      if (!report.ok()) throw RegistryCorruption(fmt::format("verification failed: {} problems", report.problems.size()));
    });
  });
}

void add_import(CLI::App& adapters, std::shared_ptr<Settings> settings) {
  auto* command = adapters.add_subcommand(
      "import", "Import a PEFT adapter directory, or a directory of <user>/ adapter directories, in one transaction");
  struct Args {
    std::string dir, user, base_fingerprint;
    bool no_live = false;
  };
  auto args = std::make_shared<Args>();
  command->add_option("dir", args->dir, "A PEFT directory or a directory of <user>/ PEFT directories")->required();
  command->add_option("--user", args->user, "User id for a single adapter without mnemo.user metadata");
  command->add_option("--base-fingerprint", args->base_fingerprint,
                      "Base-model fingerprint for adapters that carry none (e.g. written by peft)");
  command->add_flag("--no-live", args->no_live, "Do not make the imported versions live");
  command->callback([settings, args] {
    run([&] {
      auto registry = open_registry(*settings, OpenMode::kCreate);
      print_publish_results(*settings, registry->import_dir(args->dir, args->user, args->base_fingerprint, !args->no_live));
    });
  });
}

void add_export(CLI::App& adapters, std::shared_ptr<Settings> settings) {
  auto* command = adapters.add_subcommand("export", "Write a user's live version (or --version N) as a PEFT directory");
  struct Args {
    std::string user, dir;
    int64_t version = 0;
    bool force = false;
  };
  auto args = std::make_shared<Args>();
  command->add_option("user", args->user, "User id")->required();
  command->add_option("dir", args->dir, "Target directory (created if missing)")->required();
  command->add_option("--version", args->version, "Version to export (default: the live one)")->check(CLI::PositiveNumber);
  command->add_flag("--force", args->force, "Replace an adapter already in the target directory");
  command->callback([settings, args] {
    run([&] {
      if (!args->force)
        for (const char* name : {kAdapterConfigFile, kAdapterWeightsFile})
          if (std::filesystem::exists(std::filesystem::path(args->dir) / name))
            throw RegistryUsageError(
                fmt::format("{}: already holds an adapter ({}); pass --force to replace it", args->dir, name));
      auto registry = open_registry(*settings, OpenMode::kReadOnly);
      std::optional<int64_t> number = args->version > 0 ? std::optional<int64_t>(args->version) : std::nullopt;
      VersionRecord record = registry->version(args->user, number);
      registry->export_version(args->user, args->dir, record.version);
      if (settings->json_output)
        std::cout << json{{"user", args->user}, {"version", record.version}, {"dir", args->dir}}.dump(2) << '\n';
      else
        std::cout << fmt::format("exported {}@{} to {}\n", args->user, record.version, args->dir);
    });
  });
}

void add_audit(CLI::App& adapters, std::shared_ptr<Settings> settings) {
  auto* command = adapters.add_subcommand("audit", "Print the audit log (who did what, when; hashes, never content)");
  struct Args {
    std::string user;
    int64_t after = 0;
  };
  auto args = std::make_shared<Args>();
  command->add_option("--user", args->user, "Only entries about this user");
  command->add_option("--after", args->after, "Only entries with an id above this one");
  command->callback([settings, args] {
    run([&] {
      auto registry = open_registry(*settings, OpenMode::kReadOnly);
      std::vector<AuditEntry> entries = registry->audit(args->after, args->user);
      if (settings->json_output) {
        json out = json::array();
        for (const AuditEntry& e : entries)
          out.push_back({{"id", e.id},
                         {"time", iso_time(e.time_ms)},
                         {"actor", e.actor},
                         {"action", e.action},
                         {"user", e.user},
                         {"detail", json::parse(e.detail_json, nullptr, false)}});
        std::cout << out.dump(2) << '\n';
        return;
      }
      std::vector<std::vector<std::string>> rows;
      for (const AuditEntry& e : entries)
        rows.push_back({std::to_string(e.id), iso_time(e.time_ms), e.actor, e.action, e.user.empty() ? "-" : e.user,
                        e.detail_json});
      print_table({"ID", "TIME", "ACTOR", "ACTION", "USER", "DETAIL"}, rows);
    });
  });
}

}  // namespace

void add_adapters_commands(CLI::App& app) {
  auto* adapters = app.add_subcommand("adapters", "Look after the adapter registry (publish, list, rollback, erase, …)");
  adapters->require_subcommand(1);
  adapters->fallthrough();  // --registry/--json may come after the subcommand too
  adapters->footer(kExitCodes);
  auto settings = std::make_shared<Settings>();
  adapters->add_option("--registry", settings->registry, "Registry root directory");
  adapters->add_option("--config", settings->config, "YAML config with `registry: DIR`");
  adapters->add_option("--actor", settings->actor, "Name recorded in the audit log (default: $USER)");
  adapters->add_flag("--json", settings->json_output, "Print JSON instead of tables");
  add_init(*adapters, settings);
  add_publish(*adapters, settings);
  add_list(*adapters, settings);
  add_show(*adapters, settings);
  add_rollback(*adapters, settings);
  add_rm(*adapters, settings);
  add_gc(*adapters, settings);
  add_verify(*adapters, settings);
  add_import(*adapters, settings);
  add_export(*adapters, settings);
  add_audit(*adapters, settings);
}

}  // namespace mnemo
