// The Registry: the operations, built on the two storage interfaces. Every
// writer holds the writer lock for the whole operation and first finishes
// whatever a crashed writer left behind.
#include "adapters/registry.h"

#include "adapters/file_system.h"
#include "adapters/lora_adapter.h"

#include <nlohmann/json.hpp>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>

namespace mnemo {
namespace {

using json = nlohmann::json;

std::string default_actor() {
  if (const char* user = std::getenv("USER"); user && *user) return user;
  if (passwd* entry = ::getpwuid(::geteuid())) return entry->pw_name;
  return "unknown";
}

std::string read_small_file(FileSystem& fs, const std::string& path, uint64_t max_bytes) {
  std::unique_ptr<ReadableFile> file = fs.open_file(path);
  std::string text;
  char buffer[65536];
  while (size_t n = file->read(buffer, sizeof buffer)) {
    text.append(buffer, n);
    if (text.size() > max_bytes)
      fail("{}: more than {}, the limit for an adapter config", path, byte_size_text(max_bytes));
  }
  return text;
}

}  // namespace

void validate_user_id(const std::string& user) {
  if (user.empty()) throw RegistryUsageError("user id is empty (expected [A-Za-z0-9._-]{1,128})");
  if (user.size() > 128)
    throw RegistryUsageError(fmt::format("user id is {} characters long (at most 128)", user.size()));
  for (size_t i = 0; i < user.size(); ++i) {
    char c = user[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok)
      throw RegistryUsageError(fmt::format("user id {:?} has a character not in [A-Za-z0-9._-] at position {}",
                                           user.substr(0, 128), i));
  }
  if (user == "." || user == "..") throw RegistryUsageError(fmt::format("user id {:?} is not allowed", user));
  if (user[0] == '-')
    throw RegistryUsageError(fmt::format("user id {:?} starts with '-' (it would read as a command-line flag)", user));
}

bool VerifyReport::ok() const {
  return std::all_of(problems.begin(), problems.end(),
                     [](const VerifyProblem& p) { return p.problem.rfind("unreferenced", 0) == 0; });
}

std::unique_ptr<Registry> Registry::open(const std::string& root, RegistryOptions options) {
  FileSystem& fs = options.file_system ? *options.file_system : default_file_system();
  std::unique_ptr<RegistryIndex> index = open_sqlite_index(root, options.mode, options.durable, fs);
  std::unique_ptr<BlobStore> blobs = open_local_blob_store(root, fs, options.durable);
  auto registry = std::make_unique<Registry>(std::move(index), std::move(blobs), std::move(options));
  if (registry->options_.mode != OpenMode::kReadOnly) {
    std::unique_ptr<FileLock> lock = registry->index_->lock_writers();
    registry->recover_locked();
  }
  return registry;
}

Registry::Registry(std::unique_ptr<RegistryIndex> index, std::unique_ptr<BlobStore> blobs, RegistryOptions options)
    : index_(std::move(index)), blobs_(std::move(blobs)), options_(std::move(options)) {
  file_system_ = options_.file_system ? options_.file_system : &default_file_system();
  if (options_.actor.empty()) options_.actor = default_actor();
}

Registry::~Registry() = default;

void Registry::recover_locked() {
  blobs_->recover();
  std::vector<std::string> pending = index_->pending_erasures();
  if (pending.empty()) return;
  spdlog::warn("registry: finishing an interrupted erasure ({} blobs)", pending.size());
  erase_blobs_locked(pending);
  index_->finish_erasures(pending, options_.actor);
}

std::vector<std::string> Registry::erase_blobs_locked(const std::vector<std::string>& hashes) {
  std::vector<std::string> removable;
  // Under the writer lock nothing can start referencing these; the check
  // guards against an index edited by hand.
  for (const std::string& hash : hashes)
    if (!index_->is_referenced(hash)) removable.push_back(hash);
  blobs_->remove(removable);
  return removable;
}

void Registry::init(const std::string& base_fingerprint, const std::string& shapes_json) {
  if (base_fingerprint.empty()) throw RegistryUsageError("the base-model fingerprint is empty");
  std::string shapes;
  if (!shapes_json.empty()) shapes = adapter_shapes_to_json(parse_adapter_shapes(shapes_json, "init"));
  std::unique_ptr<FileLock> lock = index_->lock_writers();
  index_->set_base_fingerprint(base_fingerprint, options_.actor);
  if (!shapes.empty()) index_->set_base_shapes(shapes, options_.actor);
}

std::optional<std::string> Registry::base_fingerprint() { return index_->base_fingerprint(); }
std::optional<std::string> Registry::base_shapes() { return index_->base_shapes(); }

namespace {

// What every stored adapter must pass: it loads (the safetensors and PEFT
// rules, finite weights) and fits the base model's recorded shapes. Returns
// the safetensors __metadata__ of what it read.
std::map<std::string, std::string> check_adapter_loads(const std::string& config_path, const std::string& weights_path,
                                                       const std::optional<std::string>& shapes_json,
                                                       const std::string& what) {
  if (!shapes_json)
    throw RegistryUsageError(fmt::format(
        "{}: the registry does not record its base model's shapes, so the adapter cannot be checked against it; "
        "record them once with `mnemo adapters init --model PATH` (training or serving with the model does too)",
        what));
  LoraAdapter adapter = read_peft_adapter_files(config_path, weights_path);
  try {
    validate_against(adapter, parse_adapter_shapes(*shapes_json, "the registry"), "the registry's base model");
  } catch (const Error& e) {
    fail("{}: {}", what, e.what());
  }
  return std::move(adapter.metadata);
}

}  // namespace

AdapterCandidate Registry::inspect(const PublishRequest& request) {
  AdapterCandidate candidate;
  candidate.dir = request.adapter_dir;
  std::string config_path = request.adapter_dir + "/" + kAdapterConfigFile;
  std::string weights_path = request.adapter_dir + "/" + kAdapterWeightsFile;
  if (!file_system_->exists(request.adapter_dir))
    throw RegistryNotFound(fmt::format("{}: no such adapter directory", request.adapter_dir));
  for (const std::string& path : {config_path, weights_path})
    if (!file_system_->exists(path)) fail("{}: missing (a PEFT adapter directory holds {} and {})", path,
                                          kAdapterConfigFile, kAdapterWeightsFile);
  const json config = parse_json_input(read_small_file(*file_system_, config_path, kAdapterConfigLimits.max_bytes),
                                       config_path, kAdapterConfigLimits);
  if (!config.is_object()) fail("{}: expected a JSON object", config_path);
  if (auto it = config.find("peft_type"); it != config.end() && *it != "LORA")
    fail("{}: peft_type is {}, only LORA adapters are supported", config_path, it->dump());

  candidate.metadata = check_adapter_loads(config_path, weights_path, index_->base_shapes(), request.adapter_dir);
  auto meta = [&](const char* key) {
    auto it = candidate.metadata.find(key);
    return it == candidate.metadata.end() ? std::string() : it->second;
  };
  std::string meta_user = meta(kMetaUser);
  if (!request.user.empty() && !meta_user.empty() && request.user != meta_user)
    fail("{}: adapter was trained for user {:?}, not {:?} (refusing to publish one user's memory as another's)",
         weights_path, meta_user, request.user);
  candidate.user = request.user.empty() ? meta_user : request.user;
  if (candidate.user.empty())
    throw RegistryUsageError(fmt::format("{}: no {} in the metadata; pass the user id (--user)", weights_path, kMetaUser));
  validate_user_id(candidate.user);

  std::string meta_base = meta(kMetaBaseFingerprint);
  if (!request.base_fingerprint.empty() && !meta_base.empty() && request.base_fingerprint != meta_base)
    fail("{}: adapter was trained on base model {}, not {}", weights_path, meta_base, request.base_fingerprint);
  candidate.base_fingerprint = request.base_fingerprint.empty() ? meta_base : request.base_fingerprint;
  if (candidate.base_fingerprint.empty())
    throw RegistryUsageError(fmt::format("{}: no {} in the metadata; pass --base-fingerprint", weights_path,
                                         kMetaBaseFingerprint));
  candidate.data_fingerprint = meta(kMetaDataFingerprint);
  candidate.metrics_json = meta(kMetaMetrics);
  if (candidate.metrics_json.empty()) candidate.metrics_json = "{}";
  json metrics = json::parse(candidate.metrics_json, nullptr, false);
  if (metrics.is_discarded() || !metrics.is_object())
    fail("{}: {} is not a JSON object: {}", weights_path, kMetaMetrics, candidate.metrics_json.substr(0, 200));
  candidate.metrics_json = metrics.dump();
  return candidate;
}

PublishResult Registry::publish(const PublishRequest& request) { return publish_batch({request}).at(0); }

std::vector<PublishResult> Registry::publish_batch(const std::vector<PublishRequest>& requests) {
  if (options_.mode == OpenMode::kReadOnly) fail("registry is open read-only; cannot publish");
  for (const PublishRequest& request : requests)
    if (request.rejected && request.make_live)
      throw RegistryUsageError(fmt::format("{}: a rejected version cannot be made live", request.adapter_dir));
  std::vector<AdapterCandidate> candidates;
  candidates.reserve(requests.size());
  for (const PublishRequest& request : requests) candidates.push_back(inspect(request));

  std::unique_ptr<FileLock> lock = index_->lock_writers();
  recover_locked();
  // inspect() refused every adapter of a registry without recorded shapes,
  // which init() records together with the fingerprint.
  const std::string registry_base = index_->base_fingerprint().value_or("(none recorded)");
  for (const AdapterCandidate& candidate : candidates)
    if (candidate.base_fingerprint != registry_base)
      fail("{}: adapter base model {} does not match the registry's base model {}", candidate.dir,
           candidate.base_fingerprint, registry_base);

  // Blobs first, durably; only then the one transaction that references them.
  std::vector<NewVersion> versions;
  versions.reserve(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    NewVersion item;
    item.make_live = requests[i].make_live;
    VersionRecord& record = item.record;
    record.status = requests[i].rejected ? VersionStatus::kRejected : VersionStatus::kReady;
    record.user = candidates[i].user;
    record.base_fingerprint = candidates[i].base_fingerprint;
    record.data_fingerprint = candidates[i].data_fingerprint;
    record.metrics_json = candidates[i].metrics_json;
    for (const char* name : {kAdapterConfigFile, kAdapterWeightsFile}) {
      FileRef ref = blobs_->put(candidates[i].dir + "/" + name);
      ref.name = name;
      record.size_bytes += ref.size_bytes;
      record.files.push_back(std::move(ref));
    }
    versions.push_back(std::move(item));
  }
  std::vector<int64_t> numbers = index_->add_versions(versions, options_.actor);

  std::vector<PublishResult> results;
  for (size_t i = 0; i < versions.size(); ++i)
    results.push_back(PublishResult{versions[i].record.user, numbers[i], versions[i].make_live, versions[i].record.files});
  return results;
}

std::optional<int64_t> Registry::live_version(const std::string& user) { return index_->live_version(user); }

VersionRecord Registry::version(const std::string& user, std::optional<int64_t> number) {
  validate_user_id(user);
  std::optional<VersionRecord> record = index_->version(user, number);
  if (record) return *record;
  if (number) throw RegistryNotFound(fmt::format("user {} has no version {}", user, *number));
  if (index_->has_user(user)) throw RegistryNotFound(fmt::format("user {} has no live version", user));
  throw RegistryNotFound(fmt::format("user {} is not in the registry", user));
}

std::vector<VersionRecord> Registry::versions(const std::string& user) {
  validate_user_id(user);
  std::vector<VersionRecord> records = index_->versions(user);
  if (records.empty()) throw RegistryNotFound(fmt::format("user {} is not in the registry", user));
  return records;
}

std::vector<UserSummary> Registry::list() { return index_->list_users(); }
uint64_t Registry::generation() { return index_->generation(); }
std::vector<LiveChange> Registry::changes_since(uint64_t generation) { return index_->changes_since(generation); }
std::vector<AuditEntry> Registry::audit(int64_t after_id, const std::string& user) {
  if (!user.empty()) validate_user_id(user);
  return index_->audit(after_id, user);
}

std::string Registry::file_path(const std::string& user, std::optional<int64_t> number, const std::string& file_name) {
  VersionRecord record = version(user, number);
  for (const FileRef& file : record.files)
    if (file.name == file_name) return blobs_->fetch(file.sha256);
  throw RegistryNotFound(fmt::format("{}@{} has no file {}", user, record.version, file_name));
}

int64_t Registry::rollback(const std::string& user, std::optional<int64_t> to) {
  validate_user_id(user);
  std::unique_ptr<FileLock> lock = index_->lock_writers();
  recover_locked();
  std::vector<VersionRecord> records = versions(user);
  std::optional<int64_t> live = index_->live_version(user);
  int64_t target = 0;
  if (to) {
    target = *to;
  } else {
    if (!live) fail("user {} has no live version to roll back from; pass --to N", user);
    for (const VersionRecord& record : records)
      if (record.version < *live && record.status == VersionStatus::kReady) target = record.version;
    if (target == 0) fail("user {} has no earlier version (not rolled back before) than live version {}", user, *live);
  }
  bool backwards = live && target < *live;
  index_->set_live(user, target, backwards, backwards ? "rollback" : "set-live", options_.actor);
  return target;
}

ErasureReport Registry::erase(const std::string& user) {
  validate_user_id(user);
  if (options_.mode == OpenMode::kReadOnly) fail("registry is open read-only; cannot erase");
  std::unique_ptr<FileLock> lock = index_->lock_writers();
  recover_locked();
  ErasureReport report;
  report.user = user;
  report.n_versions = static_cast<int64_t>(index_->versions(user).size());
  std::vector<std::string> pending = index_->begin_erase(user, options_.actor);
  // From here on the erasure is decided: a crash before finish_erasures() is
  // completed by the next writer's recover_locked().
  report.removed_blobs = erase_blobs_locked(pending);
  index_->finish_erasures(pending, options_.actor);
  return report;
}

GcReport Registry::gc() {
  std::unique_ptr<FileLock> lock = index_->lock_writers();
  recover_locked();
  std::unordered_set<std::string> referenced = index_->referenced_hashes();
  GcReport report;
  for (const std::string& hash : blobs_->list()) {
    if (referenced.count(hash)) continue;
    report.removed_bytes += blobs_->size_bytes(hash);
    report.removed_blobs.push_back(hash);
  }
  blobs_->remove(report.removed_blobs);
  if (!report.removed_blobs.empty())
    index_->append_audit("gc", "", json{{"blobs_removed", report.removed_blobs}}.dump(), options_.actor);
  return report;
}

VerifyReport Registry::verify() {
  VerifyReport report;
  std::unordered_set<std::string> referenced = index_->referenced_hashes();
  std::unordered_set<std::string> present;
  for (const std::string& hash : blobs_->list()) {
    present.insert(hash);
    ++report.n_blobs_checked;
    std::string actual = blobs_->rehash(hash);
    if (actual != hash) report.problems.push_back(VerifyProblem{hash, "hash mismatch: content hashes to " + actual, {}});
    else if (!referenced.count(hash)) report.problems.push_back(VerifyProblem{hash, "unreferenced (gc removes it)", {}});
  }
  for (const std::string& hash : referenced)
    if (!present.count(hash)) report.problems.push_back(VerifyProblem{hash, "missing", {}});
  // Every version must still load as publish would check it (a registry
  // written before those checks, or edited by hand, may hold one that does not).
  std::set<std::string> damaged;
  for (const VerifyProblem& problem : report.problems) damaged.insert(problem.sha256);
  std::optional<std::string> shapes = index_->base_shapes();
  for (const UserSummary& user : index_->list_users())
    for (const VersionRecord& record : index_->versions(user.user)) {
      std::map<std::string, const FileRef*> files;
      for (const FileRef& file : record.files) files[file.name] = &file;
      const FileRef* config = files[kAdapterConfigFile];
      const FileRef* weights = files[kAdapterWeightsFile];
      if (!config || !weights || damaged.count(config->sha256) || damaged.count(weights->sha256)) continue;
      const std::string name = fmt::format("{}@{}", record.user, record.version);
      try {
        check_adapter_loads(blobs_->fetch(config->sha256), blobs_->fetch(weights->sha256), shapes, name);
      } catch (const Error& e) {
        report.problems.push_back(VerifyProblem{weights->sha256, std::string("does not load: ") + e.what(), {name}});
      }
    }
  if (report.ok()) return report;
  // Name the versions that a damaged blob breaks (rare, so a full scan is fine).
  std::map<std::string, VerifyProblem*> by_hash;
  for (VerifyProblem& problem : report.problems)
    if (problem.used_by.empty()) by_hash[problem.sha256] = &problem;  // load problems name their version already
  for (const UserSummary& user : index_->list_users())
    for (const VersionRecord& record : index_->versions(user.user))
      for (const FileRef& file : record.files)
        if (auto it = by_hash.find(file.sha256); it != by_hash.end())
          it->second->used_by.push_back(fmt::format("{}@{}", record.user, record.version));
  return report;
}

void Registry::export_version(const std::string& user, const std::string& dir, std::optional<int64_t> number) {
  VersionRecord record = version(user, number);
  file_system_->create_dirs(dir);
  for (const FileRef& file : record.files) {
    std::string source = blobs_->fetch(file.sha256);
    std::string target = dir + "/" + file.name;
    std::string tmp = target + ".partial";
    {
      std::unique_ptr<ReadableFile> in = file_system_->open_file(source);
      std::unique_ptr<WritableFile> out = file_system_->create_file(tmp);
      std::string buffer(1 << 20, '\0');
      while (size_t n = in->read(buffer.data(), buffer.size())) out->append(std::string_view(buffer.data(), n));
      out->sync();
      out->close();
    }
    if (std::string actual = blobs_->rehash(file.sha256); actual != file.sha256) {
      file_system_->remove_file(tmp);
      throw RegistryCorruption(fmt::format("blob {} ({} of {}@{}) is corrupt: its content hashes to {}", file.sha256,
                                           file.name, user, record.version, actual));
    }
    file_system_->rename(tmp, target);
  }
  file_system_->sync_dir(dir);
}

std::vector<PublishResult> Registry::import_dir(const std::string& dir, const std::string& user_override,
                                                const std::string& base_fingerprint, bool make_live) {
  std::vector<PublishRequest> requests;
  if (file_system_->exists(dir + "/" + kAdapterConfigFile)) {
    requests.push_back(PublishRequest{dir, user_override, base_fingerprint, make_live});
  } else {
    if (!user_override.empty())
      throw RegistryUsageError(fmt::format("{} holds several adapters; --user applies to one adapter directory", dir));
    std::vector<std::string> names = file_system_->list_dir(dir);
    std::sort(names.begin(), names.end());
    for (const std::string& name : names)
      if (file_system_->exists(dir + "/" + name + "/" + kAdapterConfigFile))
        requests.push_back(PublishRequest{dir + "/" + name, name, base_fingerprint, make_live});
    if (requests.empty())
      throw RegistryNotFound(fmt::format("{}: neither an adapter directory nor a directory of <user>/ adapters", dir));
  }
  return publish_batch(requests);
}

}  // namespace mnemo
