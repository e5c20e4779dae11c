// Bad input and failing disks: every refusal is a clear error and leaves what
// is stored exactly as it was.
#include "adapters/file_system.h"
#include "adapters/registry.h"
#include "model/safetensors.h"
#include "support/reference.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using Op = FaultInjectingFileSystem::Op;

std::string scratch_dir(const std::string& name) { return testing::scratch_dir("registry_faults_" + name).string(); }

void write_adapter(const std::string& dir, const std::string& user, float fill, const std::string& base = "base-A") {
  fs::create_directories(dir);
  std::ofstream(dir + "/adapter_config.json") << R"({"peft_type":"LORA","r":4,"lora_alpha":8})";
  std::map<std::string, std::string> metadata{{kMetaBaseFingerprint, base}};
  if (!user.empty()) metadata[kMetaUser] = user;
  write_safetensors(dir + "/adapter_model.safetensors",
                    {{"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", at::full({4, 64}, fill)}},
                    metadata);
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
                           std::string("bob smith"), std::string("ünïcode"), std::string(129, 'a')}) {
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

TEST_F(RegistryFaultTest, TheValidatorHookCanRefuseAnAdapter) {
  RegistryOptions options;
  options.mode = OpenMode::kReadWrite;
  options.validator = [](const AdapterCandidate& candidate) {
    if (candidate.metadata.count("mnemo.rank") == 0) fail("{}: no rank (validator)", candidate.dir);
  };
  auto strict = Registry::open(root_, options);
  write_adapter(dir_ + "/v2", "alice", 2);
  Snapshot before = snapshot();
  EXPECT_THROW(strict->publish({dir_ + "/v2", "", "", true}), Error);
  EXPECT_EQ(snapshot(), before);
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
