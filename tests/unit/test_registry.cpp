// The adapter registry's operations: publish, live pointer, rollback, erase,
// gc, verify, export/import, the change feed. Each test owns a fresh root.
#include "adapters/registry.h"
#include "model/safetensors.h"
#include "support/reference.h"
#include "support/test_adapter.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mnemo {
namespace {

namespace fs = std::filesystem;

std::string scratch_dir(const std::string& name) { return testing::scratch_dir("registry_" + name).string(); }

// A small PEFT adapter directory with Mnemo's metadata.
void write_adapter(const std::string& dir, const std::string& user, float fill, const std::string& base = "base-A") {
  testing::write_test_adapter(dir,
                              {{kMetaUser, user},
                               {kMetaBaseFingerprint, base},
                               {kMetaDataFingerprint, "data-" + user},
                               {kMetaMetrics, R"({"recall":0.9})"}},
                              fill);
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

std::vector<std::string> blob_files(const std::string& root) {
  std::vector<std::string> files;
  if (!fs::exists(root + "/blobs")) return files;
  for (const auto& entry : fs::recursive_directory_iterator(root + "/blobs"))
    if (entry.is_regular_file()) files.push_back(entry.path().string());
  return files;
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = scratch_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    root_ = dir_ + "/registry";
    registry_ = open(OpenMode::kCreate);
    registry_->init("base-A", testing::test_base_shapes());
  }
  std::unique_ptr<Registry> open(OpenMode mode) {
    RegistryOptions options;
    options.mode = mode;
    options.actor = "tester";
    return Registry::open(root_, options);
  }
  PublishResult publish(const std::string& user, float fill, bool live) {
    std::string adapter = fmt::format("{}/adapters/{}-{}", dir_, user, fill);
    write_adapter(adapter, user, fill);
    return registry_->publish(PublishRequest{adapter, "", "", live});
  }
  std::string dir_, root_;
  std::unique_ptr<Registry> registry_;
};

TEST_F(RegistryTest, PublishNumbersVersionsAndOnlyLiveMovesThePointer) {
  EXPECT_EQ(publish("alice", 1, true).version, 1);
  EXPECT_EQ(publish("alice", 2, false).version, 2);
  EXPECT_EQ(registry_->live_version("alice"), 1);
  EXPECT_EQ(registry_->base_fingerprint(), "base-A");

  VersionRecord live = registry_->version("alice");
  EXPECT_EQ(live.version, 1);
  EXPECT_TRUE(live.live);
  EXPECT_EQ(live.data_fingerprint, "data-alice");
  EXPECT_EQ(nlohmann::json::parse(live.metrics_json)["recall"], 0.9);
  ASSERT_EQ(live.files.size(), 2u);
  EXPECT_EQ(sha256_of_file(registry_->file_path("alice", {}, kAdapterWeightsFile)),
            live.files[1].sha256);

  std::vector<UserSummary> users = registry_->list();
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0].user, "alice");
  EXPECT_EQ(users[0].n_versions, 2);
  EXPECT_EQ(users[0].size_bytes, live.size_bytes);
}

// `adapters list` showed "-" for the size and age of such a user.
TEST_F(RegistryTest, AUserWithVersionsButNoneLiveIsListedWithTheNewestVersionsSizeAndAge) {
  publish("carol", 1, false);
  PublishResult newest = publish("carol", 2, false);
  std::vector<UserSummary> users = registry_->list();
  ASSERT_EQ(users.size(), 1u);
  EXPECT_FALSE(users[0].live_version.has_value());
  EXPECT_EQ(users[0].size_bytes, registry_->version("carol", newest.version).size_bytes);
  EXPECT_GT(users[0].created_ms, 0);
}

TEST_F(RegistryTest, IdenticalFilesAreStoredOnce) {
  publish("alice", 1, true);
  publish("bob", 2, true);
  // Two distinct safetensors, one shared adapter_config.json.
  EXPECT_EQ(blob_files(root_).size(), 3u);
}

TEST_F(RegistryTest, RollbackSkipsVersionsRolledBackBefore) {
  publish("alice", 1, true);
  publish("alice", 2, true);
  publish("alice", 3, true);
  EXPECT_EQ(registry_->rollback("alice"), 2);
  EXPECT_EQ(registry_->versions("alice")[2].status, VersionStatus::kRolledBack);
  EXPECT_EQ(registry_->rollback("alice"), 1);
  EXPECT_THROW(registry_->rollback("alice"), Error);  // nothing earlier
  EXPECT_EQ(registry_->rollback("alice", 3), 3);      // --to rolls forward and revives
  EXPECT_EQ(registry_->versions("alice")[2].status, VersionStatus::kReady);
  EXPECT_THROW(registry_->rollback("alice", 9), RegistryNotFound);
  EXPECT_THROW(registry_->rollback("nobody"), RegistryNotFound);
}

// The trainer's gate keeps a version it turned down: stored, never live, and
// passed over by rollback unless named.
TEST_F(RegistryTest, ARejectedVersionIsKeptButNeverMadeLiveByItself) {
  publish("alice", 1, true);
  publish("alice", 2, true);
  std::string adapter = fmt::format("{}/adapters/alice-rejected", dir_);
  write_adapter(adapter, "alice", 3);
  PublishRequest rejected{adapter, "", "", false};
  rejected.rejected = true;
  PublishResult result = registry_->publish(rejected);
  EXPECT_EQ(result.version, 3);
  EXPECT_FALSE(result.live);
  EXPECT_EQ(registry_->live_version("alice"), 2);
  EXPECT_EQ(registry_->versions("alice")[2].status, VersionStatus::kRejected);
  EXPECT_STREQ(to_string(VersionStatus::kRejected), "rejected");
  int64_t audited = 0;
  for (const AuditEntry& entry : registry_->audit(0, "alice"))
    audited += entry.action == "publish" && entry.detail_json.find("\"status\":\"rejected\"") != std::string::npos;
  EXPECT_EQ(audited, 1);
  // A rejected version cannot be published live.
  rejected.make_live = true;
  EXPECT_THROW(registry_->publish(rejected), RegistryUsageError);
  EXPECT_EQ(registry_->versions("alice").size(), 3u);
  // Rollback from 2 goes to 1; rolling forward without --to never picks 3.
  EXPECT_EQ(registry_->rollback("alice"), 1);
  EXPECT_EQ(registry_->rollback("alice", 3), 3);  // named: the operator's call
  EXPECT_EQ(registry_->versions("alice")[2].status, VersionStatus::kReady);
  // Reopened, the status is what was stored.
  registry_.reset();
  registry_ = open(OpenMode::kReadOnly);
  EXPECT_EQ(registry_->versions("alice")[1].status, VersionStatus::kRolledBack);
}

TEST_F(RegistryTest, GenerationAndChangesTellReadersWhichLivePointersMoved) {
  uint64_t start = registry_->generation();
  publish("alice", 1, true);
  publish("bob", 1, false);  // not live: no change for a server
  uint64_t after_alice = registry_->generation();
  EXPECT_GT(after_alice, start);
  std::vector<LiveChange> changes = registry_->changes_since(start);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].user, "alice");
  EXPECT_EQ(changes[0].live_version, 1);

  registry_->erase("alice");
  changes = registry_->changes_since(after_alice);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].user, "alice");
  EXPECT_FALSE(changes[0].live_version.has_value());
}

TEST_F(RegistryTest, EraseRemovesEveryBlobOfTheUserAndAuditsHashesOnly) {
  std::vector<std::string> alice_hashes;
  for (float fill : {1.0f, 2.0f})
    for (const FileRef& f : publish("alice", fill, true).files) alice_hashes.push_back(f.sha256);
  PublishResult bob = publish("bob", 3, true);

  ErasureReport report = registry_->erase("alice");
  EXPECT_EQ(report.n_versions, 2);
  EXPECT_EQ(report.removed_blobs.size(), 2u);  // the two safetensors; the config is bob's too
  for (const std::string& hash : alice_hashes) {
    bool bobs = hash == bob.files[0].sha256 || hash == bob.files[1].sha256;
    EXPECT_EQ(fs::exists(root_ + "/blobs/sha256/" + hash.substr(0, 2) + "/" + hash.substr(2)), bobs) << hash;
  }
  EXPECT_FALSE(registry_->live_version("alice").has_value());
  EXPECT_THROW(registry_->versions("alice"), RegistryNotFound);
  EXPECT_THROW(registry_->erase("alice"), RegistryNotFound);
  ASSERT_EQ(registry_->list().size(), 1u);
  EXPECT_TRUE(registry_->verify().ok());

  std::vector<AuditEntry> audit = registry_->audit(0, "alice");
  ASSERT_GE(audit.size(), 4u);
  const AuditEntry& erase = audit[audit.size() - 2];
  EXPECT_EQ(erase.action, "erase");
  EXPECT_EQ(erase.actor, "tester");
  EXPECT_EQ(audit.back().action, "erase-completed");
  for (const AuditEntry& entry : audit) {
    EXPECT_EQ(entry.detail_json.find("recall"), std::string::npos) << "audit must hold no content";
    EXPECT_EQ(entry.detail_json.find("data-alice"), std::string::npos);
  }
  EXPECT_NE(erase.detail_json.find(report.removed_blobs[0]), std::string::npos);

  // Numbers are never reused: a returning user's old version 1 cannot be confused with the new one.
  EXPECT_EQ(publish("alice", 5, true).version, 3);
}

TEST_F(RegistryTest, GcRemovesOnlyUnreferencedBlobs) {
  publish("alice", 1, true);
  std::string stray_source = dir_ + "/stray";
  std::ofstream(stray_source) << "left behind by a publish that crashed before its transaction";
  std::string hash = sha256_of_file(stray_source);
  fs::create_directories(root_ + "/blobs/sha256/" + hash.substr(0, 2));
  fs::copy_file(stray_source, root_ + "/blobs/sha256/" + hash.substr(0, 2) + "/" + hash.substr(2));

  VerifyReport before = registry_->verify();
  EXPECT_TRUE(before.ok());  // unreferenced is reported, not a failure
  ASSERT_EQ(before.problems.size(), 1u);
  GcReport report = registry_->gc();
  ASSERT_EQ(report.removed_blobs.size(), 1u);
  EXPECT_EQ(report.removed_blobs[0], hash);
  EXPECT_EQ(blob_files(root_).size(), 2u);
  EXPECT_TRUE(registry_->verify().problems.empty());
}

TEST_F(RegistryTest, VerifyAndExportCatchACorruptBlob) {
  PublishResult published = publish("alice", 1, true);
  std::string weights = registry_->file_path("alice", {}, kAdapterWeightsFile);
  // Blobs are immutable and stored read-only.
  EXPECT_EQ(fs::status(weights).permissions() & (fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write),
            fs::perms::none);
  fs::permissions(weights, fs::perms::owner_write, fs::perm_options::add);
  {
    std::fstream file(weights, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(-1, std::ios::end);
    file.put('\x7f');
  }
  VerifyReport report = registry_->verify();
  EXPECT_FALSE(report.ok());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].sha256, published.files[1].sha256);
  EXPECT_EQ(report.problems[0].used_by, std::vector<std::string>{"alice@1"});
  EXPECT_THROW(registry_->export_version("alice", dir_ + "/out"), RegistryCorruption);
  EXPECT_FALSE(fs::exists(dir_ + "/out/adapter_model.safetensors"));
}

TEST_F(RegistryTest, ExportThenImportRoundTripsByteForByte) {
  publish("alice", 1, true);
  publish("bob", 2, true);
  registry_->export_version("alice", dir_ + "/export/alice");
  registry_->export_version("bob", dir_ + "/export/bob");

  RegistryOptions options;
  options.mode = OpenMode::kCreate;
  auto other = Registry::open(dir_ + "/other", options);
  other->init("base-A", testing::test_base_shapes());
  std::vector<PublishResult> imported = other->import_dir(dir_ + "/export", "", "", true);
  ASSERT_EQ(imported.size(), 2u);
  for (const std::string user : {"alice", "bob"}) {
    VersionRecord original = registry_->version(user);
    VersionRecord copy = other->version(user);
    ASSERT_EQ(copy.files.size(), original.files.size());
    for (size_t i = 0; i < copy.files.size(); ++i) EXPECT_EQ(copy.files[i].sha256, original.files[i].sha256);
    EXPECT_EQ(copy.data_fingerprint, original.data_fingerprint);
  }
}

TEST_F(RegistryTest, APublishBatchIsAllOrNothing) {
  write_adapter(dir_ + "/good", "alice", 1);
  write_adapter(dir_ + "/bad", "bob", 1, "base-B");
  EXPECT_THROW(registry_->publish_batch({{dir_ + "/good", "", "", true}, {dir_ + "/bad", "", "", true}}), Error);
  EXPECT_TRUE(registry_->list().empty());
}

TEST_F(RegistryTest, AReaderOpenedBeforeAPublishSeesItWithoutReopening) {
  auto reader = open(OpenMode::kReadOnly);
  EXPECT_FALSE(reader->live_version("alice").has_value());
  uint64_t generation = reader->generation();
  publish("alice", 1, true);
  EXPECT_GT(reader->generation(), generation);
  EXPECT_EQ(reader->live_version("alice"), 1);
}

TEST(RegistryRoot, FlagThenConfigThenMnemoHome) {
  std::string dir = scratch_dir("root");
  std::ofstream(dir + "/config.yaml") << "registry:\n  root: /srv/registry\n";
  EXPECT_EQ(resolve_registry_root("/flag", dir + "/config.yaml"), "/flag");
  EXPECT_EQ(resolve_registry_root("", dir + "/config.yaml"), "/srv/registry");
  ::setenv("MNEMO_HOME", "/home/mnemo", 1);
  EXPECT_EQ(resolve_registry_root("", ""), "/home/mnemo/registry");
  ::unsetenv("MNEMO_HOME");
}

}  // namespace
}  // namespace mnemo
