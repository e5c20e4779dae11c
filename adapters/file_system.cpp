#include "adapters/file_system.h"

#include "model/error.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mnemo {
namespace {

[[noreturn]] void fail_errno(const char* what, const std::string& path, int error) {
  fail("{}: {} failed: {}", path, what, std::strerror(error));
}

class PosixWritableFile : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  void append(std::string_view bytes) override {
    while (!bytes.empty()) {
      ssize_t written = ::write(fd_, bytes.data(), bytes.size());
      if (written < 0) {
        if (errno == EINTR) continue;
        fail_errno("write", path_, errno);
      }
      bytes.remove_prefix(static_cast<size_t>(written));
    }
  }
  void sync() override {
    if (::fsync(fd_) != 0) fail_errno("fsync", path_, errno);
  }
  void close() override {
    int fd = fd_;
    fd_ = -1;
    if (fd >= 0 && ::close(fd) != 0) fail_errno("close", path_, errno);
  }

 private:
  std::string path_;
  int fd_;
};

class PosixReadableFile : public ReadableFile {
 public:
  PosixReadableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixReadableFile() override { ::close(fd_); }
  size_t read(char* buffer, size_t capacity) override {
    for (;;) {
      ssize_t n = ::read(fd_, buffer, capacity);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) fail_errno("read", path_, errno);
    }
  }

 private:
  std::string path_;
  int fd_;
};

class PosixFileLock : public FileLock {
 public:
  explicit PosixFileLock(int fd) : fd_(fd) {}
  ~PosixFileLock() override { ::close(fd_); }  // closing releases the flock

 private:
  int fd_;
};

class PosixFileSystem : public FileSystem {
 public:
  std::unique_ptr<WritableFile> create_file(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail_errno("create", path, errno);
    return std::make_unique<PosixWritableFile>(path, fd);
  }
  std::unique_ptr<ReadableFile> open_file(const std::string& path) override {
    // O_NONBLOCK so that a FIFO cannot make open() wait for a writer; only
    // regular files are read (a device or FIFO is refused, never read forever).
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) fail_errno("open", path, errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      fail("{}: not a regular file", path);
    }
    return std::make_unique<PosixReadableFile>(path, fd);
  }
  void rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) fail("{}: rename to {} failed: {}", from, to, std::strerror(errno));
  }
  void remove_file(const std::string& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) fail_errno("remove", path, errno);
  }
  void sync_dir(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail_errno("open directory", path, errno);
    int result = ::fsync(fd);
    int error = errno;
    ::close(fd);
    if (result != 0) fail_errno("fsync directory", path, error);
  }
  void create_dirs(const std::string& path) override {
    for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
      std::string prefix = path.substr(0, slash);
      if (!prefix.empty() && ::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) fail_errno("mkdir", prefix, errno);
      if (slash == std::string::npos) break;
    }
  }
  bool exists(const std::string& path) override {
    struct stat info;
    return ::stat(path.c_str(), &info) == 0;
  }
  uint64_t file_size(const std::string& path) override {
    struct stat info;
    if (::stat(path.c_str(), &info) != 0) fail_errno("stat", path, errno);
    return static_cast<uint64_t>(info.st_size);
  }
  std::vector<std::string> list_dir(const std::string& path) override {
    std::vector<std::string> names;
    DIR* dir = ::opendir(path.c_str());
    if (!dir) {
      if (errno == ENOENT) return names;
      fail_errno("opendir", path, errno);
    }
    while (dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(dir);
    return names;
  }
  std::unique_ptr<FileLock> lock_file(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) fail_errno("open lock file", path, errno);
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      int error = errno;
      ::close(fd);
      fail_errno("flock", path, error);
    }
    return std::make_unique<PosixFileLock>(fd);
  }
  std::unique_ptr<FileLock> try_lock_file(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) fail_errno("open lock file", path, errno);
    while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EINTR) continue;
      int error = errno;
      ::close(fd);
      if (error == EWOULDBLOCK) return nullptr;
      fail_errno("flock", path, error);
    }
    return std::make_unique<PosixFileLock>(fd);
  }
  // Also honours the mode bits, because root passes access(W_OK) on a
  // directory an operator made read-only (chmod a-w) on purpose.
  bool is_writable_dir(const std::string& path) override {
    struct stat info;
    if (::stat(path.c_str(), &info) != 0 || (info.st_mode & 0222) == 0) return false;
    return ::access(path.c_str(), W_OK | X_OK) == 0;
  }
};

class FaultInjectingWritableFile : public WritableFile {
 public:
  FaultInjectingWritableFile(FaultInjectingFileSystem& fs, std::string path, std::unique_ptr<WritableFile> base)
      : fs_(fs), path_(std::move(path)), base_(std::move(base)) {}
  void append(std::string_view bytes) override {
    fs_.maybe_fail(FaultInjectingFileSystem::Op::kAppend, path_);
    fs_.charge_bytes(bytes.size(), path_);
    base_->append(bytes);
  }
  void sync() override {
    fs_.maybe_fail(FaultInjectingFileSystem::Op::kSync, path_);
    base_->sync();
  }
  void close() override { base_->close(); }

 private:
  FaultInjectingFileSystem& fs_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
};

}  // namespace

void write_file_durably(FileSystem& file_system, const std::string& path, std::string_view text) {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  try {
    std::unique_ptr<WritableFile> file = file_system.create_file(temporary);
    file->append(text);
    file->sync();
    file->close();
    file_system.rename(temporary, path);
  } catch (...) {
    try {
      file_system.remove_file(temporary);
    } catch (const Error&) {  // the first error is the one to report
    }
    throw;
  }
  const size_t slash = path.find_last_of('/');
  file_system.sync_dir(slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash));
}

FileSystem& default_file_system() {
  static PosixFileSystem* file_system = new PosixFileSystem();  // never destroyed: used at exit
  return *file_system;
}

void FileSystem::make_read_only(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || ::chmod(path.c_str(), st.st_mode & ~(S_IWUSR | S_IWGRP | S_IWOTH)) != 0)
    fail("{}: cannot make read-only: {}", path, std::strerror(errno));
}

void FaultInjectingFileSystem::inject(Op op, int skip, int count) {
  plans_[static_cast<int>(op)] = Plan{skip, count};
}

void FaultInjectingFileSystem::heal() {
  for (Plan& plan : plans_) plan = Plan{};
  free_bytes_ = UINT64_MAX;
}

void FaultInjectingFileSystem::maybe_fail(Op op, const std::string& path) {
  static const char* const kNames[] = {"create", "write", "fsync", "rename", "remove", "fsync directory"};
  Plan& plan = plans_[static_cast<int>(op)];
  if (plan.count == 0) return;
  if (plan.skip > 0) {
    --plan.skip;
    return;
  }
  --plan.count;
  ++injected_;
  fail("{}: {} failed: injected I/O error", path, kNames[static_cast<int>(op)]);
}

void FaultInjectingFileSystem::charge_bytes(uint64_t bytes, const std::string& path) {
  if (bytes > free_bytes_) {
    ++injected_;
    fail("{}: write failed: {} (injected)", path, std::strerror(ENOSPC));
  }
  if (free_bytes_ != UINT64_MAX) free_bytes_ -= bytes;
}

std::unique_ptr<WritableFile> FaultInjectingFileSystem::create_file(const std::string& path) {
  maybe_fail(Op::kCreate, path);
  return std::make_unique<FaultInjectingWritableFile>(*this, path, base_.create_file(path));
}

void FaultInjectingFileSystem::rename(const std::string& from, const std::string& to) {
  maybe_fail(Op::kRename, from);
  base_.rename(from, to);
}

void FaultInjectingFileSystem::remove_file(const std::string& path) {
  maybe_fail(Op::kRemove, path);
  base_.remove_file(path);
}

void FaultInjectingFileSystem::sync_dir(const std::string& path) {
  maybe_fail(Op::kSyncDir, path);
  base_.sync_dir(path);
}

}  // namespace mnemo
