// The single-host BlobStore: `blobs/sha256/ab/cdef…` under the registry root.
// A blob is written to tmp/, fsynced, renamed into place and its directory
// fsynced, so a visible blob is always complete; a crash leaves at most a
// file in tmp/ (removed by recover()) or a complete unreferenced blob (gc).
#include "adapters/file_system.h"
#include "adapters/sha256.h"
#include "adapters/registry.h"
#include "adapters/storage.h"

#include <unistd.h>

#include <atomic>
#include <random>
#include <set>

namespace mnemo {
namespace {

bool is_sha256_hex(const std::string& text) {
  if (text.size() != 64) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

class LocalBlobStore : public BlobStore {
 public:
  LocalBlobStore(const std::string& root, FileSystem& file_system, bool durable)
      : root_(root), blobs_dir_(root + "/blobs/sha256"), tmp_dir_(root + "/tmp"), fs_(file_system),
        durable_(durable) {}

  FileRef put(const std::string& source_path) override {
    if (!fs_.exists(tmp_dir_)) fs_.create_dirs(tmp_dir_);
    std::string tmp_path = fmt::format("{}/{}-{}-{:08x}.partial", tmp_dir_, ::getpid(), counter_++, random_());
    FileRef ref;
    try {
      std::unique_ptr<ReadableFile> source = fs_.open_file(source_path);
      std::unique_ptr<WritableFile> target = fs_.create_file(tmp_path);
      Sha256 hash;
      std::string buffer(1 << 20, '\0');
      while (size_t n = source->read(buffer.data(), buffer.size())) {
        hash.update(buffer.data(), n);
        target->append(std::string_view(buffer.data(), n));
        ref.size_bytes += n;
      }
      if (durable_) target->sync();
      target->close();
      fs_.make_read_only(tmp_path);  // immutable: named by its hash
      ref.sha256 = hash.hex();
      std::string final_path = path_of(ref.sha256);
      if (fs_.exists(final_path)) {
        fs_.remove_file(tmp_path);  // content-addressed: the bytes are already there
        return ref;
      }
      std::string shard_dir = final_path.substr(0, final_path.rfind('/'));
      if (!fs_.exists(shard_dir)) {
        fs_.create_dirs(shard_dir);
        if (durable_) fs_.sync_dir(blobs_dir_);
      }
      fs_.rename(tmp_path, final_path);
      if (durable_) fs_.sync_dir(shard_dir);
    } catch (...) {
      try {
        fs_.remove_file(tmp_path);
      } catch (...) {
      }
      throw;
    }
    return ref;
  }

  bool contains(const std::string& sha256) override { return is_sha256_hex(sha256) && fs_.exists(path_of(sha256)); }

  std::string fetch(const std::string& sha256) override {
    if (!contains(sha256)) throw RegistryCorruption(fmt::format("blob {} is missing from {}", sha256, blobs_dir_));
    return path_of(sha256);
  }

  std::string rehash(const std::string& sha256) override {
    std::unique_ptr<ReadableFile> file = fs_.open_file(path_of(sha256));
    Sha256 hash;
    std::string buffer(1 << 20, '\0');
    while (size_t n = file->read(buffer.data(), buffer.size())) hash.update(buffer.data(), n);
    return hash.hex();
  }

  uint64_t size_bytes(const std::string& sha256) override { return fs_.file_size(path_of(sha256)); }

  void remove(const std::vector<std::string>& sha256s) override {
    std::set<std::string> dirs;
    for (const std::string& sha256 : sha256s) {
      MNEMO_CHECK(is_sha256_hex(sha256), "not a sha256: {}", sha256);
      std::string path = path_of(sha256);
      fs_.remove_file(path);
      dirs.insert(path.substr(0, path.rfind('/')));
    }
    if (durable_)
      for (const std::string& dir : dirs)
        if (fs_.exists(dir)) fs_.sync_dir(dir);
  }

  std::vector<std::string> list() override {
    std::vector<std::string> hashes;
    for (const std::string& shard : fs_.list_dir(blobs_dir_)) {
      if (shard.size() != 2) continue;
      for (const std::string& rest : fs_.list_dir(blobs_dir_ + "/" + shard))
        if (is_sha256_hex(shard + rest)) hashes.push_back(shard + rest);
    }
    return hashes;
  }

  void recover() override {
    std::vector<std::string> leftovers = fs_.list_dir(tmp_dir_);
    for (const std::string& name : leftovers) fs_.remove_file(tmp_dir_ + "/" + name);
    if (!leftovers.empty() && durable_) fs_.sync_dir(tmp_dir_);
  }

 private:
  std::string path_of(const std::string& sha256) const {
    return fmt::format("{}/{}/{}", blobs_dir_, sha256.substr(0, 2), sha256.substr(2));
  }

  std::string root_;
  std::string blobs_dir_;
  std::string tmp_dir_;
  FileSystem& fs_;
  bool durable_;
  std::atomic<uint64_t> counter_{0};
  std::mt19937 random_{std::random_device{}()};
};

}  // namespace

std::unique_ptr<BlobStore> open_local_blob_store(const std::string& root, FileSystem& file_system, bool durable) {
  return std::make_unique<LocalBlobStore>(root, file_system, durable);
}

}  // namespace mnemo
