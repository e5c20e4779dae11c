// The registry's two storage interfaces: an index (who has which versions,
// which one is live, the audit log) and a blob store (immutable files named by
// their sha256). The Registry (adapters/registry.h) only talks to these
// interfaces, never to SQLite or to a directory, so the single-host
// implementations here can be swapped for shared ones:
//
//  * PostgreSQL index. The tables below map one to one (TEXT/BIGINT columns,
//    the same primary keys and the index on version_files(hash)). Each
//    RegistryIndex method is one transaction at REPEATABLE READ (SQLite's WAL
//    snapshot gives readers the same guarantee). lock_writers() becomes
//    pg_advisory_lock(hashtext(registry name)), so writers on many hosts
//    serialize exactly like two local processes do with flock. generation()
//    is a sequence bumped inside each write transaction; servers poll it, or
//    LISTEN on a channel that the write transaction NOTIFYs.
//  * Object store (S3, GCS). put() uploads to `sha256/ab/cdef…` with a
//    conditional create (If-None-Match: *); an object is visible only once
//    its upload completes, which is what the local temp-file-then-rename
//    gives. fetch() downloads to a local cache keyed by hash (a blob never
//    changes, so the cache needs no invalidation) and returns that path.
//    list() is a prefix listing, used only by gc.
//
// Ordering contract that makes a publish atomic with any pair: blobs are put
// (durably) before the index transaction that references them commits, and a
// blob is removed only after the transaction that dropped its last reference
// commits. A crash between the two leaves an unreferenced blob (gc removes it)
// or a pending erasure (the next writer finishes it), never a reference to a
// missing blob.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

namespace mnemo {

class FileSystem;
class FileLock;

// One file of a version: its name in the adapter directory and its blob.
struct FileRef {
  std::string name;  // "adapter_config.json", "adapter_model.safetensors"
  std::string sha256;  // 64 lowercase hex digits
  uint64_t size_bytes = 0;
};

// A version can be made live unless it was rolled back away from (a bad
// version stays on record, but `rollback` without a target skips it).
// kRejected: kept, never made live automatically (the trainer's publish gate
// turned it down; the reason is in its metrics).
enum class VersionStatus { kReady, kRolledBack, kRejected };
const char* to_string(VersionStatus status);

// The state of one published version; one row of the index.
struct VersionRecord {
  std::string user;
  int64_t version = 0;  // 1, 2, 3 … per user, never reused, even after erasure
  VersionStatus status = VersionStatus::kReady;
  bool live = false;
  int64_t created_ms = 0;  // Unix time
  std::string base_fingerprint;
  std::string data_fingerprint;
  std::string metrics_json;  // "{}" when the trainer recorded none
  uint64_t size_bytes = 0;   // sum of the files
  std::vector<FileRef> files;
};

struct UserSummary {
  std::string user;
  std::optional<int64_t> live_version;
  int64_t n_versions = 0;
  // Of the live version (what a server serves), else of the newest version.
  uint64_t size_bytes = 0;
  int64_t created_ms = 0;
};

// One audit-log row. `detail_json` holds version numbers and hashes, never
// adapter content.
struct AuditEntry {
  int64_t id = 0;
  int64_t time_ms = 0;
  std::string actor;  // OS user or --actor
  std::string action;  // init, publish, rollback, erase, erase-finished, gc
  std::string user;    // empty for registry-wide actions
  std::string detail_json;
};

// A user whose live pointer moved (publish --live, rollback, erase) after a
// given generation; erased users come back with no live version.
struct LiveChange {
  std::string user;
  std::optional<int64_t> live_version;
  uint64_t generation = 0;
};

// What an index stores for a new version (the number is assigned by the index).
struct NewVersion {
  VersionRecord record;  // user, fingerprints, metrics, files, size, status (ready or rejected)
  bool make_live = false;
};

// The index. Implementations are thread-safe; every method is atomic (one
// transaction) and throws mnemo::Error on failure with nothing changed.
class RegistryIndex {
 public:
  virtual ~RegistryIndex() = default;

  // Held by the one writer (publish, rollback, erase, gc) at a time, across
  // processes and, for a shared index, across hosts. Readers never take it.
  virtual std::unique_ptr<FileLock> lock_writers() = 0;

  virtual std::optional<std::string> base_fingerprint() = 0;
  // REQUIRES: no fingerprint set yet, or the same one.
  virtual void set_base_fingerprint(const std::string& fingerprint, const std::string& actor) = 0;
  // The base model's adapter shapes (adapters/lora_adapter.h, as JSON).
  virtual std::optional<std::string> base_shapes() = 0;
  // REQUIRES: no shapes recorded yet, or the same ones.
  virtual void set_base_shapes(const std::string& shapes_json, const std::string& actor) = 0;

  // Adds every version in one transaction (all or none), with one audit entry
  // each. Returns the assigned version numbers in order.
  virtual std::vector<int64_t> add_versions(const std::vector<NewVersion>& versions, const std::string& actor) = 0;
  // Points `user`'s live pointer at `version`; if `retire_current`, the
  // version that was live becomes kRolledBack. Returns the previous live.
  virtual std::optional<int64_t> set_live(const std::string& user, int64_t version, bool retire_current,
                                          const std::string& action, const std::string& actor) = 0;

  virtual std::optional<int64_t> live_version(const std::string& user) = 0;  // one indexed lookup
  virtual std::optional<VersionRecord> version(const std::string& user, std::optional<int64_t> number) = 0;  // live if none
  virtual std::vector<VersionRecord> versions(const std::string& user) = 0;  // ascending, with files
  virtual bool has_user(const std::string& user) = 0;  // has at least one version
  virtual std::vector<UserSummary> list_users() = 0;   // sorted by user

  // Erasure, phase 1: drops every version row of `user`, writes an audit
  // entry with the hashes it referenced, and records as pending the hashes
  // that no other version references. Returns those pending hashes.
  virtual std::vector<std::string> begin_erase(const std::string& user, const std::string& actor) = 0;
  // Phase 2 happens in the blob store; then the pending hashes are cleared.
  virtual std::vector<std::string> pending_erasures() = 0;
  virtual void finish_erasures(const std::vector<std::string>& hashes, const std::string& actor) = 0;

  virtual std::unordered_set<std::string> referenced_hashes() = 0;
  virtual bool is_referenced(const std::string& sha256) = 0;

  virtual void append_audit(const std::string& action, const std::string& user, const std::string& detail_json,
                            const std::string& actor) = 0;
  // Entries with id > after_id, oldest first; `user` filters when not empty.
  virtual std::vector<AuditEntry> audit(int64_t after_id, const std::string& user) = 0;

  // Bumped by every transaction that moves a live pointer. Cheap to poll.
  virtual uint64_t generation() = 0;
  virtual std::vector<LiveChange> changes_since(uint64_t generation) = 0;
};

// The blob store: immutable, content-addressed files. Thread-safe.
class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // Copies `source_path` into the store (hashing it on the way), durably,
  // visible only once complete. A blob already present is not rewritten.
  virtual FileRef put(const std::string& source_path) = 0;
  virtual bool contains(const std::string& sha256) = 0;
  // A local path holding the blob's bytes, valid until the blob is removed.
  virtual std::string fetch(const std::string& sha256) = 0;
  // Re-reads the blob and returns the sha256 of what is actually stored.
  virtual std::string rehash(const std::string& sha256) = 0;
  virtual uint64_t size_bytes(const std::string& sha256) = 0;
  virtual void remove(const std::vector<std::string>& sha256s) = 0;  // durable; missing ones are fine
  virtual std::vector<std::string> list() = 0;  // every complete blob
  // Removes what a crashed writer left behind (temporary files). REQUIRES:
  // the writer lock is held.
  virtual void recover() = 0;
};

// The single-host implementations.
enum class OpenMode { kReadOnly, kReadWrite, kCreate };
// REQUIRES for kReadOnly/kReadWrite: `root`/index.sqlite exists. Throws
// RegistryNotFound (registry.h) when it does not, mnemo::Error for a registry
// whose schema is newer than this build's or for an unwritable root.
// `durable` = false skips fsync (benchmark seeding only).
std::unique_ptr<RegistryIndex> open_sqlite_index(const std::string& root, OpenMode mode, bool durable,
                                                 FileSystem& file_system);
std::unique_ptr<BlobStore> open_local_blob_store(const std::string& root, FileSystem& file_system, bool durable);

// The index schema this build writes; a registry with a newer one is refused.
inline constexpr int kRegistrySchemaVersion = 1;

}  // namespace mnemo
