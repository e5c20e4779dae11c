// Crash safety and concurrency of the registry, with real processes:
//  * a forked writer publishes and erases in a loop and is SIGKILLed at a
//    random moment, hundreds of times; after each kill the index opens, no
//    partial blob is visible, every live version verifies, and the next
//    writer finishes any interrupted erasure;
//  * two writer processes serialize while a reader checks, over and over,
//    that the live version it sees is whole.
#include "adapters/registry.h"
#include "model/safetensors.h"
#include "support/reference.h"
#include "support/test_adapter.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace mnemo {
namespace {

namespace fs = std::filesystem;

std::string scratch_dir(const std::string& name) { return testing::scratch_dir("registry_crash_" + name).string(); }

// Large enough (256 KiB) that a kill often lands in the middle of a blob write.
void write_adapter(const std::string& dir, const std::string& user, float fill) {
  // 128 KiB of weights: large enough that a kill often lands mid-write.
  testing::write_test_adapter(dir, {{kMetaUser, user}, {kMetaBaseFingerprint, "base-A"}}, fill, /*in_features=*/1024,
                              /*rank=*/16);
}

std::string sha256_of_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  std::string data = bytes.str();
  unsigned char digest[32];
  unsigned int length = 0;
  EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned char byte : digest) hex += fmt::format("{:02x}", byte);
  return hex;
}

std::unique_ptr<Registry> open(const std::string& root, OpenMode mode) {
  RegistryOptions options;
  options.mode = mode;
  return Registry::open(root, options);
}

const std::vector<std::string> kUsers = {"alice", "bob", "carol", "dave"};

// The writer that gets killed. Never returns.
[[noreturn]] void writer_loop(const std::string& root, const std::string& adapters, unsigned seed) {
  try {
    auto registry = open(root, OpenMode::kReadWrite);
    std::mt19937 random(seed);
    for (;;) {
      const std::string& user = kUsers[random() % kUsers.size()];
      if (random() % 5 == 0) {
        if (registry->live_version(user)) registry->erase(user);
      } else {
        registry->publish({fmt::format("{}/{}-{}", adapters, user, random() % 3), "", "", true});
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "writer failed: %s\n", e.what());
  }
  ::_exit(3);
}

// What must hold after any crash, before and after recovery.
void check_invariants(const std::string& root, int iteration) {
  SCOPED_TRACE("after kill " + std::to_string(iteration));
  // No partial blob is visible: every file under blobs/ is complete.
  if (fs::exists(root + "/blobs"))
    for (const auto& entry : fs::recursive_directory_iterator(root + "/blobs"))
      if (entry.is_regular_file()) {
        std::string name = entry.path().parent_path().filename().string() + entry.path().filename().string();
        ASSERT_EQ(sha256_of_file(entry.path().string()), name) << entry.path();
      }
  {
    // The index opens for readers, and every live version is whole.
    auto reader = open(root, OpenMode::kReadOnly);
    for (const UserSummary& user : reader->list()) {
      if (!user.live_version) continue;
      VersionRecord live = reader->version(user.user);
      ASSERT_EQ(live.files.size(), 2u);
      for (const FileRef& file : live.files)
        ASSERT_EQ(sha256_of_file(reader->file_path(user.user, live.version, file.name)), file.sha256);
    }
  }
  // The next writer finishes what the dead one left: verify passes and no
  // blob an erasure decided to remove survives, unless the same bytes were
  // published again after it: as a version, or by a publish killed between
  // storing its blobs and adding its version (a blob written after the
  // erasure, unreferenced, left for gc).
  auto writer = open(root, OpenMode::kReadWrite);
  VerifyReport report = writer->verify();
  ASSERT_TRUE(report.ok());
  std::set<std::string> referenced;
  for (const UserSummary& user : writer->list())
    for (const VersionRecord& v : writer->versions(user.user))
      for (const FileRef& file : v.files) referenced.insert(file.sha256);
  for (const AuditEntry& entry : writer->audit()) {
    if (entry.action != "erase") continue;
    // A named object: a range-for over a member of a temporary reads freed
    // memory (the temporary dies before the loop; ASan found it).
    const nlohmann::json detail = nlohmann::json::parse(entry.detail_json);
    for (const auto& hash : detail.at("blobs_removed")) {
      std::string h = hash.get<std::string>();
      const fs::path blob = root + "/blobs/sha256/" + h.substr(0, 2) + "/" + h.substr(2);
      if (referenced.count(h) || !fs::exists(blob)) continue;
      const int64_t written_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::file_clock::to_sys(fs::last_write_time(blob)).time_since_epoch())
                                     .count();
      // File times come from the kernel's coarse clock (one tick: up to 4 ms
      // behind), the audit's from the precise one: 10 ms of slack.
      ASSERT_GT(written_ms, entry.time_ms - 10) << entry.user << " " << h << ": erased, yet written before the erasure";
    }
  }
  ASSERT_FALSE(fs::exists(root + "/tmp") && !fs::is_empty(root + "/tmp"));
}

TEST(RegistryCrash, SigkillAtRandomPointsNeverTearsTheRegistry) {
  std::string dir = scratch_dir("sigkill");
  std::string root = dir + "/registry";
  std::string adapters = dir + "/adapters";
  for (const std::string& user : kUsers)
    for (int variant = 0; variant < 3; ++variant)
      write_adapter(fmt::format("{}/{}-{}", adapters, user, variant), user, static_cast<float>(variant + 1));
  open(root, OpenMode::kCreate)->init("base-A", testing::test_base_shapes(1024));

  int iterations = 300;
  if (const char* text = std::getenv("MNEMO_CRASH_ITERATIONS")) iterations = std::atoi(text);
  std::mt19937 random(12345);
  int n_killed_running = 0;
  for (int i = 0; i < iterations; ++i) {
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) writer_loop(root, adapters, static_cast<unsigned>(i));
    std::this_thread::sleep_for(std::chrono::microseconds(random() % 40000));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer exited by itself with " << WEXITSTATUS(status);
    ++n_killed_running;
    check_invariants(root, i);
    if (HasFatalFailure()) return;
  }
  auto registry = open(root, OpenMode::kReadOnly);
  int64_t n_publishes = 0;
  for (const AuditEntry& entry : registry->audit()) n_publishes += entry.action == "publish";
  EXPECT_GT(n_publishes, iterations / 4) << "the writer rarely got to publish before being killed";
  RecordProperty("kills", n_killed_running);
  RecordProperty("publishes", static_cast<int>(n_publishes));
}

TEST(RegistryCrash, TwoWriterProcessesSerializeAndReadersSeeWholeVersions) {
  std::string dir = scratch_dir("writers");
  std::string root = dir + "/registry";
  for (int variant = 0; variant < 4; ++variant)
    write_adapter(fmt::format("{}/carol-{}", dir, variant), "carol", static_cast<float>(variant));
  open(root, OpenMode::kCreate)->init("base-A", testing::test_base_shapes(1024));
  constexpr int kPerWriter = 15;
  std::vector<pid_t> writers;
  for (int w = 0; w < 2; ++w) {
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      int code = 0;
      try {
        auto registry = open(root, OpenMode::kReadWrite);
        for (int i = 0; i < kPerWriter; ++i) registry->publish({fmt::format("{}/carol-{}", dir, (i + w) % 4), "", "", true});
      } catch (const std::exception& e) {
        std::fprintf(stderr, "writer %d: %s\n", w, e.what());
        code = 1;
      }
      ::_exit(code);
    }
    writers.push_back(child);
  }
  auto reader = open(root, OpenMode::kReadOnly);
  int n_reads = 0;
  for (int running = 2; running > 0;) {
    if (reader->live_version("carol")) {
      VersionRecord live = reader->version("carol");
      ASSERT_EQ(live.files.size(), 2u);
      for (const FileRef& file : live.files)
        ASSERT_EQ(sha256_of_file(reader->file_path("carol", live.version, file.name)), file.sha256);
      ++n_reads;
    }
    running = 0;
    for (pid_t& writer : writers) {
      if (writer == 0) continue;
      int status = 0;
      if (::waitpid(writer, &status, WNOHANG) == writer) {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        writer = 0;
      } else {
        ++running;
      }
    }
  }
  std::vector<VersionRecord> versions = reader->versions("carol");
  ASSERT_EQ(versions.size(), 2u * kPerWriter);
  for (size_t i = 0; i < versions.size(); ++i) EXPECT_EQ(versions[i].version, static_cast<int64_t>(i + 1));
  EXPECT_EQ(reader->live_version("carol"), 2 * kPerWriter);
  EXPECT_GT(n_reads, 0);
  EXPECT_TRUE(reader->verify().ok());
}

}  // namespace
}  // namespace mnemo
