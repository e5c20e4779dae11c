// The single-host RegistryIndex: SQLite in WAL mode. WAL lets readers (the
// server) run on a consistent snapshot while one writer commits, and makes a
// commit one fsync of the log. Writers take BEGIN IMMEDIATE so two processes
// never interleave a read-modify-write; whole operations (blob writes plus
// the transaction) are serialized by the flock in lock_writers().
#include "adapters/file_system.h"
#include "adapters/registry.h"
#include "adapters/storage.h"

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace mnemo {
namespace {

using json = nlohmann::json;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A version's status as the index stores it.
const char* status_text(VersionStatus status) {
  switch (status) {
    case VersionStatus::kRolledBack: return "rolled_back";
    case VersionStatus::kRejected: return "rejected";
    case VersionStatus::kReady: break;
  }
  return "ready";
}

VersionStatus status_of(const std::string& text) {
  if (text == "rolled_back") return VersionStatus::kRolledBack;
  if (text == "rejected") return VersionStatus::kRejected;
  return VersionStatus::kReady;
}

constexpr const char* kSchema = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE users(
  user TEXT PRIMARY KEY,
  live_version INTEGER,
  next_version INTEGER NOT NULL,
  generation INTEGER NOT NULL,   -- of the last live-pointer move
  erased INTEGER NOT NULL DEFAULT 0);
CREATE INDEX users_generation ON users(generation);
CREATE TABLE versions(
  user TEXT NOT NULL, version INTEGER NOT NULL, status TEXT NOT NULL, created_ms INTEGER NOT NULL,
  base_fingerprint TEXT NOT NULL, data_fingerprint TEXT NOT NULL, metrics TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  PRIMARY KEY(user, version)) WITHOUT ROWID;
CREATE TABLE version_files(
  user TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  PRIMARY KEY(user, version, name)) WITHOUT ROWID;
CREATE INDEX version_files_sha256 ON version_files(sha256);
CREATE TABLE pending_erasures(sha256 TEXT PRIMARY KEY, user TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE audit(
  id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL, actor TEXT NOT NULL,
  action TEXT NOT NULL, user TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX audit_user ON audit(user);
INSERT INTO meta VALUES ('generation', 0);
)sql";

// A cached prepared statement, reset when the scope ends.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Statement() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Statement& bind(int index, int64_t value) {
    check(sqlite3_bind_int64(stmt_, index, value));
    return *this;
  }
  Statement& bind(int index, const std::string& value) {
    check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Statement& bind(int index, std::optional<int64_t> value) {
    check(value ? sqlite3_bind_int64(stmt_, index, *value) : sqlite3_bind_null(stmt_, index));
    return *this;
  }
  bool step() {
    int result = sqlite3_step(stmt_);
    if (result == SQLITE_ROW) return true;
    if (result == SQLITE_DONE) return false;
    fail("registry index: {}: {}", sqlite3_sql(stmt_), sqlite3_errmsg(db_));
  }
  void run() {
    while (step()) {
    }
  }
  int64_t integer(int column) { return sqlite3_column_int64(stmt_, column); }
  bool is_null(int column) { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::optional<int64_t> optional_integer(int column) {
    return is_null(column) ? std::nullopt : std::optional<int64_t>(integer(column));
  }
  std::string text(int column) {
    auto* bytes = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return bytes ? std::string(bytes, static_cast<size_t>(sqlite3_column_bytes(stmt_, column))) : std::string();
  }

 private:
  void check(int result) {
    if (result != SQLITE_OK) fail("registry index: bind failed: {}", sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class SqliteIndex : public RegistryIndex {
 public:
  SqliteIndex(const std::string& root, OpenMode mode, bool durable, FileSystem& file_system)
      : root_(root), mode_(mode), file_system_(file_system) {
    std::string path = root + "/index.sqlite";
    bool exists = file_system.exists(path);
    if (!exists && mode != OpenMode::kCreate) throw RegistryNotFound(fmt::format("no registry at {} (no index.sqlite; `mnemo adapters init` creates one)", root));
    if (mode != OpenMode::kReadOnly) {
      if (mode == OpenMode::kCreate) file_system.create_dirs(root);
      if (!file_system.is_writable_dir(root))
        fail("registry at {} is read-only: cannot write there (nothing was changed)", root);
    }
    int flags = (mode == OpenMode::kReadOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_NOMUTEX;  // our mutex guards the connection and the statement cache
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
      std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      fail("{}: cannot open the registry index: {}", path, message);
    }
    sqlite3_busy_timeout(db_, 30000);
    int schema = 0;
    try {
      schema = static_cast<int>(query_integer("PRAGMA user_version"));
    } catch (const Error& e) {
      close();
      fail("{}: not a readable registry index: {}", path, e.what());
    }
    if (schema > kRegistrySchemaVersion) {
      close();
      fail("{}: registry written by a newer mnemo (schema {}; this build reads up to {}); upgrade mnemo", path,
           schema, kRegistrySchemaVersion);
    }
    if (mode != OpenMode::kReadOnly) {
      enable_wal();
      exec(durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF");
    }
    if (schema == 0) {
      if (mode == OpenMode::kReadOnly) {
        close();
        throw RegistryNotFound(fmt::format("{}: the registry index is empty (never initialized)", path));
      }
      exec("BEGIN IMMEDIATE");
      try {
        // Another process may have created it between our check and the lock.
        if (query_integer("PRAGMA user_version") == 0) {
          exec(kSchema);
          exec(fmt::format("PRAGMA user_version={}", kRegistrySchemaVersion));
        }
        exec("COMMIT");
      } catch (...) {
        exec_noexcept("ROLLBACK");
        close();
        throw;
      }
    }
  }

  ~SqliteIndex() override { close(); }

  std::unique_ptr<FileLock> lock_writers() override {
    if (mode_ == OpenMode::kReadOnly) fail("registry at {} is open read-only", root_);
    return file_system_.lock_file(root_ + "/LOCK");
  }

  std::optional<std::string> base_fingerprint() override {
    std::lock_guard lock(mutex_);
    Statement s = prepare("SELECT value FROM meta WHERE key='base_model_fingerprint'");
    if (!s.step()) return std::nullopt;
    return s.text(0);
  }

  void set_base_fingerprint(const std::string& fingerprint, const std::string& actor) override {
    transaction([&] {
      Statement s = prepare("SELECT value FROM meta WHERE key='base_model_fingerprint'");
      if (s.step()) {
        std::string existing = s.text(0);
        if (existing != fingerprint)
          fail("registry at {} is for base model {}, not {}", root_, existing, fingerprint);
        return;
      }
      prepare("INSERT INTO meta VALUES ('base_model_fingerprint', ?)").bind(1, fingerprint).run();
      audit_locked("init", "", json{{"base_model_fingerprint", fingerprint}}.dump(), actor);
    });
  }

  std::optional<std::string> base_shapes() override {
    std::lock_guard lock(mutex_);
    Statement s = prepare("SELECT value FROM meta WHERE key='base_model_shapes'");
    if (!s.step()) return std::nullopt;
    return s.text(0);
  }

  void set_base_shapes(const std::string& shapes_json, const std::string& actor) override {
    transaction([&] {
      Statement s = prepare("SELECT value FROM meta WHERE key='base_model_shapes'");
      if (s.step()) {
        std::string existing = s.text(0);
        if (existing != shapes_json)
          fail("registry at {} records base model shapes {}, not {}", root_, existing, shapes_json);
        return;
      }
      prepare("INSERT INTO meta VALUES ('base_model_shapes', ?)").bind(1, shapes_json).run();
      audit_locked("init", "", json{{"base_model_shapes", json::parse(shapes_json)}}.dump(), actor);
    });
  }

  std::vector<int64_t> add_versions(const std::vector<NewVersion>& versions, const std::string& actor) override {
    std::vector<int64_t> numbers;
    transaction([&] {
      numbers.clear();
      int64_t time = now_ms();
      std::optional<int64_t> generation;
      for (const NewVersion& item : versions) {
        const VersionRecord& record = item.record;
        int64_t number = 1;
        {
          Statement s = prepare("SELECT next_version FROM users WHERE user=?");
          s.bind(1, record.user);
          if (s.step()) number = s.integer(0);
        }
        if (number == 1)
          prepare("INSERT OR IGNORE INTO users(user, live_version, next_version, generation) VALUES (?, NULL, 1, 0)")
              .bind(1, record.user)
              .run();
        prepare("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(1, record.user)
            .bind(2, number)
            .bind(3, status_text(record.status))
            .bind(4, time)
            .bind(5, record.base_fingerprint)
            .bind(6, record.data_fingerprint)
            .bind(7, record.metrics_json)
            .bind(8, static_cast<int64_t>(record.size_bytes))
            .run();
        json files = json::object();
        for (const FileRef& file : record.files) {
          prepare("INSERT INTO version_files VALUES (?, ?, ?, ?, ?)")
              .bind(1, record.user)
              .bind(2, number)
              .bind(3, file.name)
              .bind(4, file.sha256)
              .bind(5, static_cast<int64_t>(file.size_bytes))
              .run();
          files[file.name] = file.sha256;
        }
        prepare("UPDATE users SET next_version=?, erased=0 WHERE user=?").bind(1, number + 1).bind(2, record.user).run();
        if (item.make_live) {
          if (!generation) generation = bump_generation_locked();
          prepare("UPDATE users SET live_version=?, generation=? WHERE user=?")
              .bind(1, number)
              .bind(2, *generation)
              .bind(3, record.user)
              .run();
        }
        json detail{{"version", number}, {"live", item.make_live}, {"files", files}};
        if (record.status == VersionStatus::kRejected) detail["status"] = status_text(record.status);
        audit_locked("publish", record.user, detail.dump(), actor);
        numbers.push_back(number);
      }
    });
    return numbers;
  }

  std::optional<int64_t> set_live(const std::string& user, int64_t version, bool retire_current,
                                  const std::string& action, const std::string& actor) override {
    std::optional<int64_t> previous;
    transaction([&] {
      {
        Statement s = prepare("SELECT 1 FROM versions WHERE user=? AND version=?");
        if (!s.bind(1, user).bind(2, version).step())
          throw RegistryNotFound(fmt::format("user {} has no version {}", user, version));
      }
      previous = live_locked(user);
      if (retire_current && previous && *previous != version)
        prepare("UPDATE versions SET status='rolled_back' WHERE user=? AND version=?").bind(1, user).bind(2, *previous).run();
      prepare("UPDATE versions SET status='ready' WHERE user=? AND version=?").bind(1, user).bind(2, version).run();
      prepare("UPDATE users SET live_version=?, generation=? WHERE user=?")
          .bind(1, version)
          .bind(2, bump_generation_locked())
          .bind(3, user)
          .run();
      audit_locked(action, user, json{{"from", previous ? json(*previous) : json()}, {"to", version}}.dump(), actor);
    });
    return previous;
  }

  std::optional<int64_t> live_version(const std::string& user) override {
    std::lock_guard lock(mutex_);
    return live_locked(user);
  }

  std::optional<VersionRecord> version(const std::string& user, std::optional<int64_t> number) override {
    std::lock_guard lock(mutex_);
    // One read transaction, so the live pointer and the row agree.
    exec("BEGIN");
    try {
      if (!number) number = live_locked(user);
      std::optional<VersionRecord> result;
      if (number) {
        std::vector<VersionRecord> rows = versions_locked(user, *number);
        if (!rows.empty()) result = std::move(rows[0]);
      }
      exec("COMMIT");
      return result;
    } catch (...) {
      exec_noexcept("ROLLBACK");
      throw;
    }
  }

  std::vector<VersionRecord> versions(const std::string& user) override {
    std::lock_guard lock(mutex_);
    exec("BEGIN");
    try {
      std::vector<VersionRecord> rows = versions_locked(user, std::nullopt);
      exec("COMMIT");
      return rows;
    } catch (...) {
      exec_noexcept("ROLLBACK");
      throw;
    }
  }

  bool has_user(const std::string& user) override {
    std::lock_guard lock(mutex_);
    return prepare("SELECT 1 FROM versions WHERE user=? LIMIT 1").bind(1, user).step();
  }

  std::vector<UserSummary> list_users() override {
    std::lock_guard lock(mutex_);
    std::vector<UserSummary> users;
    Statement s = prepare(
        "SELECT u.user, u.live_version, (SELECT count(*) FROM versions v WHERE v.user=u.user), l.size_bytes, "
        "l.created_ms FROM users u LEFT JOIN versions l ON l.user=u.user AND l.version=coalesce(u.live_version, "
        "(SELECT max(version) FROM versions n WHERE n.user=u.user)) "
        "WHERE u.erased=0 ORDER BY u.user");
    while (s.step()) {
      UserSummary summary;
      summary.user = s.text(0);
      summary.live_version = s.optional_integer(1);
      summary.n_versions = s.integer(2);
      summary.size_bytes = static_cast<uint64_t>(s.integer(3));
      summary.created_ms = s.integer(4);
      users.push_back(std::move(summary));
    }
    return users;
  }

  std::vector<std::string> begin_erase(const std::string& user, const std::string& actor) override {
    std::vector<std::string> pending;
    transaction([&] {
      pending.clear();
      std::vector<std::string> hashes;
      {
        Statement s = prepare("SELECT DISTINCT sha256 FROM version_files WHERE user=? ORDER BY sha256");
        s.bind(1, user);
        while (s.step()) hashes.push_back(s.text(0));
      }
      std::vector<int64_t> numbers;
      {
        Statement s = prepare("SELECT version FROM versions WHERE user=? ORDER BY version");
        s.bind(1, user);
        while (s.step()) numbers.push_back(s.integer(0));
      }
      if (numbers.empty()) throw RegistryNotFound(fmt::format("user {} is not in the registry", user));
      prepare("DELETE FROM version_files WHERE user=?").bind(1, user).run();
      prepare("DELETE FROM versions WHERE user=?").bind(1, user).run();
      prepare("UPDATE users SET live_version=NULL, erased=1, generation=? WHERE user=?")
          .bind(1, bump_generation_locked())
          .bind(2, user)
          .run();
      std::vector<std::string> shared;
      for (const std::string& hash : hashes) {
        if (referenced_locked(hash)) {
          shared.push_back(hash);  // identical bytes another user still has (e.g. a common config)
          continue;
        }
        prepare("INSERT OR REPLACE INTO pending_erasures VALUES (?, ?)").bind(1, hash).bind(2, user).run();
        pending.push_back(hash);
      }
      audit_locked("erase", user,
                   json{{"versions", numbers}, {"blobs_removed", pending}, {"blobs_shared_with_other_users", shared}}
                       .dump(),
                   actor);
    });
    return pending;
  }

  std::vector<std::string> pending_erasures() override {
    std::lock_guard lock(mutex_);
    std::vector<std::string> hashes;
    Statement s = prepare("SELECT sha256 FROM pending_erasures ORDER BY sha256");
    while (s.step()) hashes.push_back(s.text(0));
    return hashes;
  }

  void finish_erasures(const std::vector<std::string>& hashes, const std::string& actor) override {
    transaction([&] {
      std::map<std::string, std::vector<std::string>> by_user;
      for (const std::string& hash : hashes) {
        Statement s = prepare("SELECT user FROM pending_erasures WHERE sha256=?");
        if (s.bind(1, hash).step()) by_user[s.text(0)].push_back(hash);
      }
      for (const std::string& hash : hashes) prepare("DELETE FROM pending_erasures WHERE sha256=?").bind(1, hash).run();
      for (const auto& [user, removed] : by_user)
        audit_locked("erase-completed", user, json{{"blobs_removed", removed}}.dump(), actor);
    });
  }

  std::unordered_set<std::string> referenced_hashes() override {
    std::lock_guard lock(mutex_);
    std::unordered_set<std::string> hashes;
    Statement s = prepare("SELECT DISTINCT sha256 FROM version_files");
    while (s.step()) hashes.insert(s.text(0));
    return hashes;
  }

  bool is_referenced(const std::string& sha256) override {
    std::lock_guard lock(mutex_);
    return referenced_locked(sha256);
  }

  void append_audit(const std::string& action, const std::string& user, const std::string& detail_json,
                    const std::string& actor) override {
    transaction([&] { audit_locked(action, user, detail_json, actor); });
  }

  std::vector<AuditEntry> audit(int64_t after_id, const std::string& user) override {
    std::lock_guard lock(mutex_);
    std::vector<AuditEntry> entries;
    Statement s = prepare(
        "SELECT id, time_ms, actor, action, user, detail FROM audit WHERE id > ? AND (?='' OR user=?) ORDER BY id");
    s.bind(1, after_id).bind(2, user).bind(3, user);
    while (s.step()) entries.push_back(AuditEntry{s.integer(0), s.integer(1), s.text(2), s.text(3), s.text(4), s.text(5)});
    return entries;
  }

  uint64_t generation() override {
    std::lock_guard lock(mutex_);
    Statement s = prepare("SELECT value FROM meta WHERE key='generation'");
    return s.step() ? static_cast<uint64_t>(s.integer(0)) : 0;
  }

  std::vector<LiveChange> changes_since(uint64_t generation) override {
    std::lock_guard lock(mutex_);
    std::vector<LiveChange> changes;
    Statement s = prepare("SELECT user, live_version, generation FROM users WHERE generation > ? ORDER BY generation, user");
    s.bind(1, static_cast<int64_t>(generation));
    while (s.step()) changes.push_back(LiveChange{s.text(0), s.optional_integer(1), static_cast<uint64_t>(s.integer(2))});
    return changes;
  }

 private:
  template <typename Body>
  void transaction(Body&& body) {
    std::lock_guard lock(mutex_);
    if (mode_ == OpenMode::kReadOnly) fail("registry at {} is open read-only", root_);
    exec("BEGIN IMMEDIATE");
    try {
      body();
      exec("COMMIT");
    } catch (...) {
      exec_noexcept("ROLLBACK");
      throw;
    }
  }

  Statement prepare(const char* sql) {
    auto it = statements_.find(sql);
    if (it == statements_.end()) {
      sqlite3_stmt* stmt = nullptr;
      if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK)
        fail("registry index: cannot prepare {}: {}", sql, sqlite3_errmsg(db_));
      it = statements_.emplace(sql, stmt).first;
    }
    return Statement(db_, it->second);
  }

  // sqlite3_exec's result code; on failure `error` holds its message.
  int try_exec(const std::string& sql, std::string& error) {
    char* message = nullptr;
    const int result = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message);
    if (result != SQLITE_OK) error = message ? message : sqlite3_errmsg(db_);
    sqlite3_free(message);
    return result;
  }
  void exec(const std::string& sql) {
    std::string error;
    if (try_exec(sql, error) != SQLITE_OK) fail("registry index at {}: {}: {}", root_, sql.substr(0, 60), error);
  }
  // Switching to WAL needs the file to itself for a moment, and SQLite
  // answers BUSY at once, without the busy handler, while another process is
  // opening or creating the same registry (seen: two training shards' first
  // publish into a new registry failed one time in four). So: retry, for as
  // long as the busy timeout would have waited.
  void enable_wal() {
    const std::string sql = "PRAGMA journal_mode=WAL";
    for (int attempt = 0;; ++attempt) {
      std::string error;
      const int result = try_exec(sql, error);
      if (result == SQLITE_OK) return;
      if ((result != SQLITE_BUSY && result != SQLITE_LOCKED) || attempt >= 600)
        fail("registry index at {}: {}: {}", root_, sql, error);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  void exec_noexcept(const char* sql) { sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }

  int64_t query_integer(const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) fail("{}", sqlite3_errmsg(db_));
    int64_t value = 0;
    int result = sqlite3_step(stmt);
    if (result == SQLITE_ROW) value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    if (result != SQLITE_ROW && result != SQLITE_DONE) fail("{}", sqlite3_errmsg(db_));
    return value;
  }

  std::optional<int64_t> live_locked(const std::string& user) {
    Statement s = prepare("SELECT live_version FROM users WHERE user=?");
    if (!s.bind(1, user).step()) return std::nullopt;
    return s.optional_integer(0);
  }

  bool referenced_locked(const std::string& sha256) {
    return prepare("SELECT 1 FROM version_files WHERE sha256=? LIMIT 1").bind(1, sha256).step();
  }

  int64_t bump_generation_locked() {
    int64_t next = 0;
    {
      Statement s = prepare("SELECT value FROM meta WHERE key='generation'");
      if (s.step()) next = s.integer(0) + 1;
    }
    prepare("UPDATE meta SET value=? WHERE key='generation'").bind(1, next).run();
    return next;
  }

  // Rows of one user (all versions, or just `only`), with files.
  std::vector<VersionRecord> versions_locked(const std::string& user, std::optional<int64_t> only) {
    std::optional<int64_t> live = live_locked(user);
    std::vector<VersionRecord> rows;
    {
      Statement s = prepare(
          "SELECT version, status, created_ms, base_fingerprint, data_fingerprint, metrics, size_bytes FROM versions "
          "WHERE user=? AND (? IS NULL OR version=?) ORDER BY version");
      s.bind(1, user).bind(2, only).bind(3, only);
      while (s.step()) {
        VersionRecord record;
        record.user = user;
        record.version = s.integer(0);
        record.status = status_of(s.text(1));
        record.live = live && *live == record.version;
        record.created_ms = s.integer(2);
        record.base_fingerprint = s.text(3);
        record.data_fingerprint = s.text(4);
        record.metrics_json = s.text(5);
        record.size_bytes = static_cast<uint64_t>(s.integer(6));
        rows.push_back(std::move(record));
      }
    }
    Statement s = prepare(
        "SELECT version, name, sha256, size_bytes FROM version_files WHERE user=? AND (? IS NULL OR version=?) "
        "ORDER BY version, name");
    s.bind(1, user).bind(2, only).bind(3, only);
    size_t row = 0;
    while (s.step()) {
      int64_t number = s.integer(0);
      while (row < rows.size() && rows[row].version < number) ++row;
      MNEMO_CHECK(row < rows.size() && rows[row].version == number, "file row without a version: {}@{}", user, number);
      rows[row].files.push_back(FileRef{s.text(1), s.text(2), static_cast<uint64_t>(s.integer(3))});
    }
    return rows;
  }

  void audit_locked(const std::string& action, const std::string& user, const std::string& detail,
                    const std::string& actor) {
    prepare("INSERT INTO audit(time_ms, actor, action, user, detail) VALUES (?, ?, ?, ?, ?)")
        .bind(1, now_ms())
        .bind(2, actor)
        .bind(3, action)
        .bind(4, user)
        .bind(5, detail)
        .run();
  }

  void close() {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
    statements_.clear();
    if (db_) sqlite3_close(db_);
    db_ = nullptr;
  }

  std::string root_;
  OpenMode mode_;
  FileSystem& file_system_;
  sqlite3* db_ = nullptr;
  std::mutex mutex_;
  std::unordered_map<const char*, sqlite3_stmt*> statements_;  // keyed by the literal's address
};

}  // namespace

const char* to_string(VersionStatus status) {
  switch (status) {
    case VersionStatus::kRolledBack: return "rolled-back";
    case VersionStatus::kRejected: return "rejected";
    case VersionStatus::kReady: break;
  }
  return "ready";
}

std::unique_ptr<RegistryIndex> open_sqlite_index(const std::string& root, OpenMode mode, bool durable,
                                                 FileSystem& file_system) {
  return std::make_unique<SqliteIndex>(root, mode, durable, file_system);
}

}  // namespace mnemo
