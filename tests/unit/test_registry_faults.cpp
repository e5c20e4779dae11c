// Bad input and failing disks: every refusal is a clear error and leaves what
// is stored exactly as it was.
#include "adapters/file_system.h"
#include "adapters/registry.h"
#include "model/safetensors.h"
#include "support/reference.h"
#include "support/test_adapter.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using Op = FaultInjectingFileSystem::Op;

std::string scratch_dir(const std::string& name) { return testing::scratch_dir("registry_faults_" + name).string(); }

void write_adapter(const std::string& dir, const std::string& user, float fill, const std::string& base = "base-A") {
  std::map<std::string, std::string> metadata{{kMetaBaseFingerprint, base}};
  if (!user.empty()) metadata[kMetaUser] = user;
  testing::write_test_adapter(dir, metadata, fill, /*in_features=*/64);
}

// Everything an observer could see: rows and files.
struct Snapshot {
  std::string rows;
  std::set<std::string> blobs;
  size_t n_tmp = 0;
  bool operator==(const Snapshot&) const = default;
};

class RegistryFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = scratch_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    root_ = dir_ + "/registry";
    registry_ = open(OpenMode::kCreate);
    registry_->init("base-A", testing::test_base_shapes(/*in_features=*/64));
    write_adapter(dir_ + "/v1", "alice", 1);
    registry_->publish({dir_ + "/v1", "", "", true});
  }
  std::unique_ptr<Registry> open(OpenMode mode, FileSystem* file_system = nullptr) {
    RegistryOptions options;
    options.mode = mode;
    options.file_system = file_system;
    return Registry::open(root_, options);
  }
  Snapshot snapshot() {
    Snapshot s;
    auto reader = open(OpenMode::kReadOnly);
    for (const UserSummary& user : reader->list())
      for (const VersionRecord& v : reader->versions(user.user))
        s.rows += fmt::format("{}@{} live={} {};", v.user, v.version, v.live, v.size_bytes);
    for (const auto& entry : fs::recursive_directory_iterator(root_ + "/blobs"))
      if (entry.is_regular_file()) s.blobs.insert(entry.path().string());
    if (fs::exists(root_ + "/tmp")) s.n_tmp = std::distance(fs::directory_iterator(root_ + "/tmp"), {});
    return s;
  }
  std::string dir_, root_;
  std::unique_ptr<Registry> registry_;
};

TEST_F(RegistryFaultTest, BadUserIdsAreRefusedBeforeAnythingIsStored) {
  Snapshot before = snapshot();
  for (std::string user : {std::string(""), std::string("../../etc/passwd"), std::string("a/b"), std::string(".."),
                           std::string("bob smith"), std::string("ünïcode"), std::string(129, 'a'),
                           std::string("-alice"), std::string("--live")}) {
    write_adapter(dir_ + "/bad", "", 2);
    EXPECT_THROW(registry_->publish({dir_ + "/bad", user, "", true}), RegistryUsageError) << user;
    EXPECT_THROW(registry_->versions(user), RegistryUsageError) << user;
    EXPECT_THROW(registry_->erase(user), RegistryUsageError) << user;
  }
  EXPECT_NO_THROW(validate_user_id(std::string(128, 'a')));
  EXPECT_NO_THROW(validate_user_id("A-z_0.9"));
  EXPECT_EQ(snapshot(), before);
}

TEST_F(RegistryFaultTest, AnAdapterForAnotherBaseModelIsRefused) {
  Snapshot before = snapshot();
  write_adapter(dir_ + "/other", "alice", 2, "base-B");
  try {
    registry_->publish({dir_ + "/other", "", "", true});
    FAIL() << "published an adapter for another base model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("base-B"), std::string::npos) << e.what();
  }
  EXPECT_EQ(snapshot(), before);
}

TEST_F(RegistryFaultTest, OneUsersAdapterCannotBePublishedAsAnothers) {
  write_adapter(dir_ + "/v2", "alice", 2);
  EXPECT_THROW(registry_->publish({dir_ + "/v2", "bob", "", true}), Error);
  write_adapter(dir_ + "/anonymous", "", 2);
  EXPECT_THROW(registry_->publish({dir_ + "/anonymous", "", "", true}), RegistryUsageError);  // no user at all
}

TEST_F(RegistryFaultTest, MalformedAdapterDirectoriesAreRefused) {
  Snapshot before = snapshot();
  EXPECT_THROW(registry_->publish({dir_ + "/missing", "", "", true}), RegistryNotFound);
  write_adapter(dir_ + "/no_config", "alice", 2);
  fs::remove(dir_ + "/no_config/adapter_config.json");
  EXPECT_THROW(registry_->publish({dir_ + "/no_config", "", "", true}), Error);
  write_adapter(dir_ + "/truncated", "alice", 2);
  fs::resize_file(dir_ + "/truncated/adapter_model.safetensors", 5);
  EXPECT_THROW(registry_->publish({dir_ + "/truncated", "", "", true}), Error);
  EXPECT_EQ(snapshot(), before);
}

// What a hostile-input probe got published (and made live) before the
// registry checked that adapters load: each is refused and nothing changes.
TEST_F(RegistryFaultTest, AdaptersThatDoNotLoadAreNeverStored) {
  Snapshot before = snapshot();
  auto refused = [&](const std::string& name, const std::string& expected) {
    try {
      registry_->publish({dir_ + "/" + name, "", "", true});
      ADD_FAILURE() << name << ": published";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << name << ": " << e.what();
    }
  };
  const std::map<std::string, std::string> meta{{kMetaUser, "alice"}, {kMetaBaseFingerprint, "base-A"}};
  testing::write_test_adapter(dir_ + "/wrong_in", meta, 1, /*in_features=*/32);
  refused("wrong_in", "needs [4, 64]");
  testing::write_test_adapter(dir_ + "/nan", meta, std::nanf(""), 64);
  refused("nan", "NaN or infinite");
  testing::write_test_adapter(dir_ + "/inf", meta, INFINITY, 64);
  refused("inf", "NaN or infinite");
  testing::write_test_adapter(dir_ + "/huge_rank", meta, 1, 64);
  std::ofstream(dir_ + "/huge_rank/adapter_config.json")
      << R"({"peft_type":"LORA","r":100000,"lora_alpha":8,"target_modules":["q_proj"]})";
  refused("huge_rank", "r = 100000");
  testing::write_test_adapter(dir_ + "/truncated", meta, 1, 64);
  fs::resize_file(dir_ + "/truncated/adapter_model.safetensors",
                  fs::file_size(dir_ + "/truncated/adapter_model.safetensors") - 16);
  refused("truncated", "truncated");
  testing::write_test_adapter(dir_ + "/fifo", meta, 1, 64);
  fs::remove(dir_ + "/fifo/adapter_model.safetensors");
  ASSERT_EQ(::mkfifo((dir_ + "/fifo/adapter_model.safetensors").c_str(), 0600), 0);
  refused("fifo", "not a regular file");  // and does not hang waiting for a writer
  EXPECT_EQ(snapshot(), before);
  EXPECT_TRUE(registry_->verify().ok());
}

TEST_F(RegistryFaultTest, ARegistryWithoutRecordedShapesRefusesPublishes) {
  RegistryOptions options;
  options.mode = OpenMode::kCreate;
  auto bare = Registry::open(dir_ + "/bare", options);
  bare->init("base-A");  // a fingerprint alone says nothing about shapes
  write_adapter(dir_ + "/v2", "alice", 2);
  try {
    bare->publish({dir_ + "/v2", "", "", true});
    FAIL() << "published into a registry that cannot check shapes";
  } catch (const RegistryUsageError& e) {
    EXPECT_NE(std::string(e.what()).find("adapters init --model"), std::string::npos) << e.what();
  }
  bare->init("base-A", testing::test_base_shapes(64));
  EXPECT_EQ(bare->publish({dir_ + "/v2", "", "", true}).version, 1);
  EXPECT_THROW(bare->init("base-A", testing::test_base_shapes(65)), Error);  // shapes are recorded once
}

// A version that no longer loads (stored before the checks existed, or the
// recorded shapes edited by hand) fails verify, naming the version.
TEST_F(RegistryFaultTest, VerifyLoadsEveryVersion) {
  ASSERT_TRUE(registry_->verify().ok());
  registry_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((root_ + "/index.sqlite").c_str(), &db), SQLITE_OK);
  const std::string update =
      "UPDATE meta SET value='" + testing::test_base_shapes(32) + "' WHERE key='base_model_shapes'";
  ASSERT_EQ(sqlite3_exec(db, update.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  VerifyReport report = open(OpenMode::kReadOnly)->verify();
  EXPECT_FALSE(report.ok());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].problem.find("does not load"), std::string::npos) << report.problems[0].problem;
  EXPECT_EQ(report.problems[0].used_by, std::vector<std::string>{"alice@1"});
}

TEST_F(RegistryFaultTest, AMissingRegistryIsNotFound) {
  RegistryOptions options;
  EXPECT_THROW(Registry::open(dir_ + "/nowhere", options), RegistryNotFound);
  options.mode = OpenMode::kReadWrite;
  EXPECT_THROW(Registry::open(dir_ + "/nowhere", options), RegistryNotFound);
  EXPECT_FALSE(fs::exists(dir_ + "/nowhere"));
}

TEST_F(RegistryFaultTest, AReadOnlyRegistryRefusesWritesButServesReads) {
  registry_.reset();
  Snapshot before = snapshot();
  fs::permissions(root_, fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                  fs::perm_options::remove);
  try {
    open(OpenMode::kReadWrite);
    FAIL() << "opened a read-only registry for writing";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("read-only"), std::string::npos) << e.what();
  }
  EXPECT_EQ(open(OpenMode::kReadOnly)->live_version("alice"), 1);
  fs::permissions(root_, fs::perms::owner_write, fs::perm_options::add);
  EXPECT_EQ(snapshot(), before);
}

TEST_F(RegistryFaultTest, ARegistryFromANewerMnemoIsRefused) {
  registry_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((root_ + "/index.sqlite").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  for (OpenMode mode : {OpenMode::kReadOnly, OpenMode::kReadWrite}) {
    try {
      open(mode);
      FAIL() << "opened a schema-99 registry";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
    }
  }
}

TEST_F(RegistryFaultTest, AnIndexThatIsNotSqliteIsAClearError) {
  registry_.reset();
  std::ofstream(root_ + "/index.sqlite", std::ios::trunc) << "this is not a database, just some text padding it out";
  fs::remove(root_ + "/index.sqlite-wal");
  fs::remove(root_ + "/index.sqlite-shm");
  EXPECT_THROW(open(OpenMode::kReadOnly), Error);
}

// A publish that fails at any file operation, or on a full disk, changes
// nothing visible and leaves no temporary file; the next publish works.
TEST_F(RegistryFaultTest, AFailedPublishChangesNothing) {
  write_adapter(dir_ + "/v2", "alice", 2);
  for (Op op : {Op::kCreate, Op::kAppend, Op::kSync, Op::kRename, Op::kSyncDir}) {
    for (int skip = 0; skip < 2; ++skip) {
      FaultInjectingFileSystem faulty(default_file_system());
      auto registry = open(OpenMode::kReadWrite, &faulty);
      Snapshot before = snapshot();
      faulty.inject(op, skip);
      try {
        registry->publish({dir_ + "/v2", "", "", true});
      } catch (const Error&) {
      }
      if (faulty.injected_failures() == 0) continue;  // this op ran fewer than skip+1 times: it published
      Snapshot after = snapshot();
      EXPECT_EQ(after.rows, before.rows) << static_cast<int>(op) << " skip " << skip;
      EXPECT_EQ(after.n_tmp, 0u);
      EXPECT_EQ(open(OpenMode::kReadOnly)->live_version("alice"), 1);
      EXPECT_TRUE(open(OpenMode::kReadOnly)->verify().ok());
      registry->gc();  // a failed directory fsync can leave a complete, unreferenced blob
      EXPECT_EQ(snapshot(), before);
    }
  }
  FaultInjectingFileSystem full_disk(default_file_system());
  full_disk.set_free_bytes(100);
  auto registry = open(OpenMode::kReadWrite, &full_disk);
  Snapshot before = snapshot();
  EXPECT_THROW(registry->publish({dir_ + "/v2", "", "", true}), Error);
  EXPECT_EQ(snapshot(), before);
  full_disk.heal();
  int64_t version = registry->publish({dir_ + "/v2", "", "", true}).version;
  EXPECT_EQ(open(OpenMode::kReadOnly)->live_version("alice"), version);
}

// An erase that dies after its transaction is finished by the next writer:
// no blob of the user survives.
TEST_F(RegistryFaultTest, AnInterruptedEraseIsFinishedByTheNextWriter) {
  write_adapter(dir_ + "/v2", "alice", 2);
  PublishResult v2 = registry_->publish({dir_ + "/v2", "", "", true});
  std::string weights = root_ + "/blobs/sha256/" + v2.files[1].sha256.substr(0, 2) + "/" + v2.files[1].sha256.substr(2);
  {
    FaultInjectingFileSystem faulty(default_file_system());
    auto registry = open(OpenMode::kReadWrite, &faulty);
    faulty.inject(Op::kRemove);
    EXPECT_THROW(registry->erase("alice"), Error);
  }
  EXPECT_FALSE(open(OpenMode::kReadOnly)->live_version("alice").has_value());  // erased as far as readers know
  EXPECT_TRUE(fs::exists(weights));  // but the bytes are still there…
  open(OpenMode::kReadWrite);        // …until the next writer opens
  EXPECT_FALSE(fs::exists(weights));
  EXPECT_TRUE(snapshot().blobs.empty());
  EXPECT_EQ(open(OpenMode::kReadOnly)->audit().back().action, "erase-completed");
}

}  // namespace
}  // namespace mnemo
