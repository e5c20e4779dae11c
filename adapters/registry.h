// The adapter registry: where trained adapters are published, versioned and
// erased, and where servers find them. Per-user memory is user data, so every
// operation is atomic (a crash leaves the old or the new state, never a torn
// one), audited, and erasure removes every byte of the user's adapters.
//
// Layout of a local registry root:
//   index.sqlite (+ -wal, -shm)   the index (storage.h), SQLite in WAL mode
//   blobs/sha256/ab/cdef…         immutable blobs named by their sha256
//   tmp/                          blobs being written; never read
//   LOCK                          the writer lock (flock)
//
// Thread-safety: a Registry may be shared by threads. Any number of readers
// (in any process) run alongside one writer; writers in different processes
// serialize on the writer lock.
#pragma once

#include "adapters/peft_files.h"
#include "adapters/storage.h"
#include "model/error.h"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mnemo {

// The user id, the version, or the registry itself does not exist (CLI exit 3).
class RegistryNotFound : public Error {
 public:
  using Error::Error;
};
// The request is malformed: bad user id, bad flag combination (CLI exit 2).
class RegistryUsageError : public Error {
 public:
  using Error::Error;
};
// Stored bytes no longer match their hash (CLI exit 4).
class RegistryCorruption : public Error {
 public:
  using Error::Error;
};

// `[A-Za-z0-9._-]{1,128}`, not "." or ".." (a user id may become a path
// component on export) and not starting with "-" (it could not be named on a
// command line). Throws RegistryUsageError saying what is wrong.
void validate_user_id(const std::string& user);

// The safetensors `__metadata__` keys that carry Mnemo's own facts.
inline constexpr const char* kMetaUser = "mnemo.user";
inline constexpr const char* kMetaBaseFingerprint = "mnemo.base_model_fingerprint";
inline constexpr const char* kMetaDataFingerprint = "mnemo.data_fingerprint";
inline constexpr const char* kMetaMetrics = "mnemo.metrics";  // a JSON object, as a string


// An adapter directory as found on disk, before anything is stored.
struct AdapterCandidate {
  std::string dir;
  std::string user;
  std::string base_fingerprint;
  std::string data_fingerprint;
  std::string metrics_json;
  std::map<std::string, std::string> metadata;  // the whole safetensors __metadata__
};

struct RegistryOptions {
  FileSystem* file_system = nullptr;  // nullptr: the real one. Not owned.
  OpenMode mode = OpenMode::kReadOnly;
  bool durable = true;   // false skips fsync: for seeding benchmarks only
  std::string actor;     // who is recorded in the audit log; default $USER
};

struct PublishRequest {
  std::string adapter_dir;
  std::string user;              // empty: from the metadata (which must agree when both are set)
  std::string base_fingerprint;  // empty: from the metadata
  bool make_live = false;
  // Kept as a rejected version (the trainer's gate turned it down): stored,
  // never live, and skipped by rollback unless named with --to.
  bool rejected = false;
};

struct PublishResult {
  std::string user;
  int64_t version = 0;
  bool live = false;
  std::vector<FileRef> files;
};

struct ErasureReport {
  std::string user;
  int64_t n_versions = 0;
  std::vector<std::string> removed_blobs;  // hashes
};

struct GcReport {
  std::vector<std::string> removed_blobs;
  uint64_t removed_bytes = 0;
};

struct VerifyProblem {
  std::string sha256;
  std::string problem;  // "missing", "hash mismatch: actual …", "unreferenced", "does not load: …"
  std::vector<std::string> used_by;  // "user@version"
};
struct VerifyReport {
  int64_t n_blobs_checked = 0;
  std::vector<VerifyProblem> problems;
  bool ok() const;  // true when no blob is missing or mismatched (unreferenced is fine)
};

class Registry {
 public:
  // Opens the local registry at `root`. kCreate creates the root if it is
  // missing. Throws RegistryNotFound when there is no registry (and the mode
  // is not kCreate), mnemo::Error for a newer schema, an unwritable root
  // (kReadWrite/kCreate) or an unreadable index. A writer finishes what a
  // crashed writer left (temporary files, a half-done erasure) first.
  static std::unique_ptr<Registry> open(const std::string& root, RegistryOptions options);
  // Any index and blob store (PostgreSQL + object store later). Takes ownership.
  Registry(std::unique_ptr<RegistryIndex> index, std::unique_ptr<BlobStore> blobs, RegistryOptions options);
  ~Registry();

  // Sets the base-model fingerprint and, when given, the shapes adapters must
  // fit (adapter_shapes_to_json in adapters/lora_adapter.h). Throws if
  // different ones are set.
  void init(const std::string& base_fingerprint, const std::string& shapes_json = "");
  std::optional<std::string> base_fingerprint();
  std::optional<std::string> base_shapes();

  // Reads the adapter directory (adapter_config.json and
  // adapter_model.safetensors, regular files only), checks the user id, the
  // base fingerprint (init() records the registry's) and that the
  // adapter loads: the safetensors and PEFT rules, finite weights, and the
  // shapes recorded for the base model (a registry without recorded shapes
  // refuses every publish, naming how to record them). Then stores the files
  // as blobs and adds a version, live if asked. Errors leave nothing visible
  // changed (at most an unreferenced blob for gc).
  PublishResult publish(const PublishRequest& request);
  // Every request checked first, then all versions added in one transaction.
  std::vector<PublishResult> publish_batch(const std::vector<PublishRequest>& requests);
  // What publish() would store, without storing it (throws what it would).
  AdapterCandidate inspect(const PublishRequest& request);

  // Readers. `live_version` is one indexed lookup (microseconds); a server
  // polls generation() and asks changes_since() only when it moved.
  std::optional<int64_t> live_version(const std::string& user);
  VersionRecord version(const std::string& user, std::optional<int64_t> number = {});  // RegistryNotFound
  std::vector<VersionRecord> versions(const std::string& user);  // RegistryNotFound when none
  std::vector<UserSummary> list();
  uint64_t generation();
  std::vector<LiveChange> changes_since(uint64_t generation);
  std::vector<AuditEntry> audit(int64_t after_id = 0, const std::string& user = "");
  // A local path to a file of a version (for loading); RegistryNotFound.
  std::string file_path(const std::string& user, std::optional<int64_t> number, const std::string& file_name);

  // Moves live back: to `to`, or to the newest earlier version that was not
  // rolled back; the version that was live is marked rolled back. Returns the
  // new live version. RegistryNotFound for an unknown user or version.
  int64_t rollback(const std::string& user, std::optional<int64_t> to = {});
  // Right to erasure: every version's rows and every blob no other user
  // references are removed; one audit entry (who, when, which hashes) stays.
  // Crash-safe: a crash after the index transaction is finished by the next
  // writer. RegistryNotFound when the user has no versions.
  ErasureReport erase(const std::string& user);
  GcReport gc();  // removes blobs that no version references
  VerifyReport verify();  // re-hashes every blob and loads every version as publish would check it

  // Writes a version's files (the live one by default) into `dir` as a PEFT
  // directory, checking each hash. RegistryCorruption on a mismatch.
  void export_version(const std::string& user, const std::string& dir, std::optional<int64_t> number = {});
  // `dir` is one adapter directory, or a directory of `<user>/` adapter
  // directories (what export of several users produces). All in one batch.
  std::vector<PublishResult> import_dir(const std::string& dir, const std::string& user_override,
                                        const std::string& base_fingerprint, bool make_live);

 private:
  void recover_locked();
  std::vector<std::string> erase_blobs_locked(const std::vector<std::string>& hashes);

  std::unique_ptr<RegistryIndex> index_;
  std::unique_ptr<BlobStore> blobs_;
  RegistryOptions options_;
  FileSystem* file_system_;
};

// Where the registry lives: `--registry` if given, else `registry:` (or
// `registry: {root: …}`) in the YAML config if given, else $MNEMO_HOME/registry,
// else $XDG_DATA_HOME/mnemo/registry, else ~/.local/share/mnemo/registry.
std::string resolve_registry_root(const std::string& flag_value, const std::string& config_path);

}  // namespace mnemo
