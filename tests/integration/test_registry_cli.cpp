// `mnemo adapters …` driven as an operator would: the real binary
// ($MNEMO_BINARY), tables and --json, and the documented exit codes.
#include "adapters/base_fingerprint.h"
#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "model/model_loader.h"
#include "support/reference.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct CommandResult {
  int exit_code = -1;
  std::string out, err;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class RegistryCli : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = testing::mnemo_binary();
    ASSERT_FALSE(binary_.empty()) << "MNEMO_BINARY is not set: run through ctest";
    dir_ = testing::scratch_dir("registry_cli_" +
                                std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    root_ = dir_ + "/registry";
    model_ = (testing::reference_dir() / "models" / "llama").string();
    base_ = base_model_fingerprint(model_);
  }
  // An adapter for the reference model (what `init --model` records), with Mnemo's metadata.
  void write_adapter(const std::string& dir, const std::string& user, float seed, const std::string& base = "") {
    LoraConfig config;
    config.rank = 4;
    config.alpha = 8;
    config.target_modules = {LinearModule::Q, LinearModule::V};
    LoraAdapter adapter = make_random_adapter(config, read_model_config(model_), static_cast<uint64_t>(seed * 1000));
    adapter.metadata = {{kMetaUser, user},
                        {kMetaBaseFingerprint, base.empty() ? base_ : base},
                        {kMetaDataFingerprint, "data-" + user},
                        {kMetaMetrics, R"({"recall":0.75})"}};
    write_peft_adapter(dir, adapter);
  }
  void init() { ASSERT_EQ(mnemo("init --model " + model_).exit_code, 0); }
  CommandResult mnemo(const std::string& args) {
    std::string command = fmt::format("{} adapters --registry {} --actor ops {} >{}/out 2>{}/err", binary_, root_, args,
                                      dir_, dir_);
    int status = std::system(command.c_str());
    return CommandResult{WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(dir_ + "/out"), read_file(dir_ + "/err")};
  }
  json mnemo_json(const std::string& args) {
    CommandResult run = mnemo("--json " + args);
    EXPECT_EQ(run.exit_code, 0) << args << "\n" << run.err;
    return json::parse(run.out);
  }
  std::string binary_, dir_, root_, model_, base_;
};

TEST_F(RegistryCli, HelpDocumentsEverySubcommandAndTheExitCodes) {
  CommandResult help = mnemo("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Exit codes"), std::string::npos) << help.out;
  EXPECT_EQ(help.out.find("105"), std::string::npos) << "names exit codes that never occur";
  EXPECT_EQ(mnemo("show --no-such-flag").exit_code, 2);
  for (const char* sub : {"init", "publish", "list", "show", "rollback", "rm", "gc", "verify", "import", "export", "audit"}) {
    EXPECT_NE(help.out.find(sub), std::string::npos) << sub;
    CommandResult sub_help = mnemo(std::string(sub) + " --help");
    EXPECT_EQ(sub_help.exit_code, 0) << sub;
    EXPECT_GT(sub_help.out.size(), 40u) << sub;
  }
}

TEST_F(RegistryCli, PublishListShowRollbackAndErase) {
  write_adapter(dir_ + "/a1", "alice", 1);
  write_adapter(dir_ + "/a2", "alice", 2);
  write_adapter(dir_ + "/b1", "bob", 3);
  init();
  json initialised = mnemo_json("init");
  EXPECT_EQ(initialised["base_model_fingerprint"], base_);
  EXPECT_EQ(initialised["base_model_shapes"]["modules"]["q_proj"].size(), 2u);
  CommandResult published = mnemo("publish " + dir_ + "/a1 --live");
  EXPECT_EQ(published.exit_code, 0) << published.err;
  EXPECT_NE(published.out.find("alice@1 (live)"), std::string::npos) << published.out;
  EXPECT_EQ(mnemo_json("publish " + dir_ + "/a2 --live")[0]["version"], 2);
  EXPECT_EQ(mnemo("publish " + dir_ + "/b1 --live").exit_code, 0);

  CommandResult table = mnemo("list");
  EXPECT_NE(table.out.find("USER"), std::string::npos);
  EXPECT_NE(table.out.find("alice"), std::string::npos);
  json list = mnemo_json("list");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["user"], "alice");
  EXPECT_EQ(list[0]["live_version"], 2);
  EXPECT_EQ(list[0]["versions"], 2);

  json show = mnemo_json("show alice");
  ASSERT_EQ(show["versions"].size(), 2u);
  EXPECT_EQ(show["versions"][1]["live"], true);
  EXPECT_EQ(show["versions"][1]["metrics"]["recall"], 0.75);
  EXPECT_EQ(show["versions"][1]["data_fingerprint"], "data-alice");
  EXPECT_EQ(show["versions"][1]["files"].size(), 2u);
  EXPECT_NE(mnemo("show alice").out.find("sha256:"), std::string::npos);

  EXPECT_EQ(mnemo_json("rollback alice")["live_version"], 1);
  EXPECT_EQ(mnemo_json("rollback alice --to 2")["live_version"], 2);

  json erased = mnemo_json("rm alice");
  EXPECT_EQ(erased["versions"], 2);
  EXPECT_EQ(erased["blobs_removed"].size(), 2u);  // the config blob is bob's too
  EXPECT_EQ(mnemo_json("list").size(), 1u);
  EXPECT_EQ(mnemo("show alice").exit_code, 3);

  json audit = mnemo_json("audit --user alice");
  ASSERT_FALSE(audit.empty());
  bool saw_erase = false;
  for (const json& entry : audit) {
    EXPECT_EQ(entry["actor"], "ops");
    saw_erase |= entry["action"] == "erase";
  }
  EXPECT_TRUE(saw_erase);
  EXPECT_EQ(mnemo_json("verify")["ok"], true);
  EXPECT_EQ(mnemo_json("gc")["blobs_removed"].size(), 0u);
}

// Two processes (two training shards, say) creating and publishing into a
// registry that does not exist yet: both succeed. Before the fix one of them failed about
// one time in four with "PRAGMA journal_mode=WAL: database is locked"; 12
// rounds catch that with 96% probability.
TEST_F(RegistryCli, TwoProcessesCreatingOneRegistryAtOnceBothPublish) {
  write_adapter(dir_ + "/a", "alice", 1);
  write_adapter(dir_ + "/b", "bob", 2);
  for (int round = 0; round < 12; ++round) {
    const std::string root = fmt::format("{}/registry_{}", dir_, round);
    auto publish = [&](const char* name) {
      return fmt::format(
          "{{ {0} adapters --registry {1} init --model {2} && {0} adapters --registry {1} publish {3}/{4} --live; }} "
          ">{3}/{4}_{5}.log 2>&1",
          binary_, root, model_, dir_, name, round);
    };
    const std::string script =
        fmt::format("{} & p=$!; {}; b=$?; wait $p; a=$?; exit $((a * 16 + b))", publish("a"), publish("b"));
    const int status = std::system(("sh -c '" + script + "'").c_str());
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "round " << round << ": " << read_file(fmt::format("{}/a_{}.log", dir_, round))
        << read_file(fmt::format("{}/b_{}.log", dir_, round));
  }
  root_ = dir_ + "/registry_11";
  json list = mnemo_json("list");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["live_version"], 1);
  EXPECT_EQ(list[1]["live_version"], 1);
}

TEST_F(RegistryCli, ExportAndImportMovePeftDirectoriesBetweenRegistries) {
  write_adapter(dir_ + "/a1", "alice", 1);
  write_adapter(dir_ + "/a2", "alice", 2);
  init();
  ASSERT_EQ(mnemo("publish " + dir_ + "/a1 --live").exit_code, 0);
  CommandResult exported = mnemo("export alice " + dir_ + "/exported/alice");
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_TRUE(fs::exists(dir_ + "/exported/alice/adapter_config.json"));
  EXPECT_EQ(read_file(dir_ + "/exported/alice/adapter_model.safetensors"), read_file(dir_ + "/a1/adapter_model.safetensors"));

  // Exporting over another adapter needs --force.
  ASSERT_EQ(mnemo("publish " + dir_ + "/a2 --live").exit_code, 0);
  CommandResult over = mnemo("export alice " + dir_ + "/exported/alice");
  EXPECT_EQ(over.exit_code, 2);
  EXPECT_NE(over.err.find("--force"), std::string::npos) << over.err;
  EXPECT_EQ(read_file(dir_ + "/exported/alice/adapter_model.safetensors"), read_file(dir_ + "/a1/adapter_model.safetensors"));
  ASSERT_EQ(mnemo("export alice " + dir_ + "/exported/alice --force").exit_code, 0);
  EXPECT_EQ(read_file(dir_ + "/exported/alice/adapter_model.safetensors"), read_file(dir_ + "/a2/adapter_model.safetensors"));

  root_ = dir_ + "/second";
  init();
  json imported = mnemo_json("import " + dir_ + "/exported");
  ASSERT_EQ(imported.size(), 1u);
  EXPECT_EQ(imported[0]["user"], "alice");
  EXPECT_EQ(imported[0]["live"], true);
}

TEST_F(RegistryCli, ErrorsHaveTheirDocumentedExitCodes) {
  write_adapter(dir_ + "/a1", "alice", 1);
  EXPECT_EQ(mnemo("list").exit_code, 3);  // no registry yet
  CommandResult unchecked = mnemo("publish " + dir_ + "/a1 --live");
  EXPECT_EQ(unchecked.exit_code, 2);  // the registry cannot check shapes it does not know
  EXPECT_NE(unchecked.err.find("adapters init --model"), std::string::npos) << unchecked.err;
  init();
  ASSERT_EQ(mnemo("publish " + dir_ + "/a1 --live").exit_code, 0);
  CommandResult bad_user = mnemo("show ../../etc");
  EXPECT_EQ(bad_user.exit_code, 2);
  EXPECT_NE(bad_user.err.find("user id"), std::string::npos) << bad_user.err;
  EXPECT_EQ(mnemo("rm " + std::string(129, 'x')).exit_code, 2);
  EXPECT_EQ(mnemo("show nobody").exit_code, 3);
  EXPECT_EQ(mnemo("rollback alice --to 7").exit_code, 3);

  write_adapter(dir_ + "/other", "alice", 2, "base-B");
  CommandResult mismatch = mnemo("publish " + dir_ + "/other --live");
  EXPECT_EQ(mismatch.exit_code, 1);
  EXPECT_NE(mismatch.err.find("base-B"), std::string::npos) << mismatch.err;

  // Damage a stored blob: verify fails with 4 and names the version.
  json show = mnemo_json("show alice");
  std::string hash = show["versions"][0]["files"][1]["sha256"];
  std::string blob = root_ + "/blobs/sha256/" + hash.substr(0, 2) + "/" + hash.substr(2);
  fs::permissions(blob, fs::perms::owner_write, fs::perm_options::add);  // blobs are stored read-only
  std::ofstream(blob, std::ios::app) << "x";
  CommandResult verify = mnemo("verify");
  EXPECT_EQ(verify.exit_code, 4);
  EXPECT_NE(verify.out.find("alice@1"), std::string::npos) << verify.out;
  EXPECT_EQ(mnemo("export alice " + dir_ + "/exported").exit_code, 4);
}

}  // namespace
}  // namespace mnemo
