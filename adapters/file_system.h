// The one interface through which the registry touches files (LevelDB's Env,
// reduced to what the registry needs). Everything durable the registry writes
// outside SQLite goes through it, so tests can inject a full disk, a failed
// fsync or a failed rename and prove that a publish or an erase is atomic.
//
// Errors: every operation throws mnemo::Error naming the path and the OS
// reason; none returns a half-done result.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo {

// A file opened for writing. close() without sync() is allowed but gives no
// durability. The destructor closes silently (errors are lost: call close()).
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual void append(std::string_view bytes) = 0;
  virtual void sync() = 0;  // data and size on stable storage (fsync)
  virtual void close() = 0;
};

// A file opened for sequential reading. read() returns 0 bytes at the end.
class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  virtual size_t read(char* buffer, size_t capacity) = 0;
};

// An exclusive advisory lock; released by the destructor or by process death
// (a SIGKILLed writer never leaves the registry locked).
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Creates or truncates `path`. REQUIRES: the parent directory exists.
  virtual std::unique_ptr<WritableFile> create_file(const std::string& path) = 0;
  virtual std::unique_ptr<ReadableFile> open_file(const std::string& path) = 0;
  // Atomically replaces `to` with `from` (POSIX rename). Both in one file system.
  virtual void rename(const std::string& from, const std::string& to) = 0;
  // Removes a file; a missing file is not an error (erasure is idempotent).
  virtual void remove_file(const std::string& path) = 0;
  // fsyncs a directory so that renames and removals inside it are durable.
  virtual void sync_dir(const std::string& path) = 0;
  virtual void create_dirs(const std::string& path) = 0;  // mkdir -p
  virtual bool exists(const std::string& path) = 0;
  // chmod a-w: for files that must never change once written (blobs).
  virtual void make_read_only(const std::string& path);
  virtual uint64_t file_size(const std::string& path) = 0;
  // Names (not paths) of the entries of a directory; a missing directory is empty.
  virtual std::vector<std::string> list_dir(const std::string& path) = 0;
  // Blocks until an exclusive lock on `path` (created if missing) is held.
  virtual std::unique_ptr<FileLock> lock_file(const std::string& path) = 0;
  // The lock if it is free now; nullptr when another holder has it.
  virtual std::unique_ptr<FileLock> try_lock_file(const std::string& path) = 0;
  // Whether this process may create files in the directory `path`.
  virtual bool is_writable_dir(const std::string& path) = 0;
};

// The real, POSIX file system. Process-wide, never destroyed.
FileSystem& default_file_system();

// Replaces `path` with `text` atomically and durably: a temporary beside it
// (named with the process id) is written, fsynced and renamed over it, and
// the directory is fsynced. A reader sees the old file or the new one; on
// failure the temporary is removed and the error (naming the path) thrown.
void write_file_durably(FileSystem& file_system, const std::string& path, std::string_view text);

// Wraps another file system and fails chosen operations on purpose, the way a
// full disk or a dying device would. Not thread-safe; for tests.
class FaultInjectingFileSystem : public FileSystem {
 public:
  enum class Op { kCreate, kAppend, kSync, kRename, kRemove, kSyncDir };

  explicit FaultInjectingFileSystem(FileSystem& base) : base_(base) {}

  // The next `count` calls of `op`, after `skip` successful ones, throw.
  void inject(Op op, int skip = 0, int count = 1);
  // Appends beyond this many bytes (from now on, over all files) throw ENOSPC.
  void set_free_bytes(uint64_t bytes) { free_bytes_ = bytes; }
  void heal();  // no more injected faults
  int injected_failures() const { return injected_; }

  std::unique_ptr<WritableFile> create_file(const std::string& path) override;
  std::unique_ptr<ReadableFile> open_file(const std::string& path) override { return base_.open_file(path); }
  void rename(const std::string& from, const std::string& to) override;
  void remove_file(const std::string& path) override;
  void sync_dir(const std::string& path) override;
  void create_dirs(const std::string& path) override { base_.create_dirs(path); }
  bool exists(const std::string& path) override { return base_.exists(path); }
  uint64_t file_size(const std::string& path) override { return base_.file_size(path); }
  std::vector<std::string> list_dir(const std::string& path) override { return base_.list_dir(path); }
  std::unique_ptr<FileLock> lock_file(const std::string& path) override { return base_.lock_file(path); }
  std::unique_ptr<FileLock> try_lock_file(const std::string& path) override { return base_.try_lock_file(path); }
  bool is_writable_dir(const std::string& path) override { return base_.is_writable_dir(path); }

  // Called by the wrapped files; throws if `op` is due to fail.
  void maybe_fail(Op op, const std::string& path);
  void charge_bytes(uint64_t bytes, const std::string& path);

 private:
  struct Plan {
    int skip = 0;
    int count = 0;
  };
  FileSystem& base_;
  Plan plans_[6];
  uint64_t free_bytes_ = UINT64_MAX;
  int injected_ = 0;
};

}  // namespace mnemo
