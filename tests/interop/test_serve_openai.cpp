// `mnemo serve` as applications meet it: started as a process on the tiny
// reference Llama with a registry of three users' adapters, then driven by
// the real `openai` Python client (tests/interop/serve_openai_client.py):
// each key gets its own user's memory, equal to `mnemo generate --adapter`;
// chat and streams; OpenAI's error classes; a full queue's 429; a client
// leaving mid-stream; vLLM's admin load and unload routes; SIGTERM while a
// request runs (health says draining, new requests get 503, the running ones
// finish) ends it with exit code 0; 1,000 connections opened at once are all
// answered; and no key is logged.
#include "adapters/base_fingerprint.h"
#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "model/config.h"
#include "model/model_loader.h"
#include "model/transformer.h"
#include "support/command.h"
#include "support/reference.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

extern char** environ;

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using testing::run_command;
using testing::shell_quote;

constexpr int kDrainMinMs = 3000;  // the server's drain_min_ms

TEST(ServeOpenAi, TheRealClientGetsEachUsersOwnMemoryAndOpenAisErrors) {
  const fs::path dir = testing::scratch_dir("serve_openai");
  const std::string model = (testing::reference_dir() / "models" / "llama").string();
  const std::string python = testing::env_or_empty("MNEMO_PYTHON");
  ASSERT_FALSE(python.empty()) << "MNEMO_PYTHON is not set: run through ctest";

  // Three users' adapters, published live.
  auto transformer = load_transformer(model, {});
  RegistryOptions registry_options;
  registry_options.mode = OpenMode::kCreate;
  registry_options.actor = "test";
  auto registry = Registry::open((dir / "registry").string(), registry_options);
  registry->init(base_model_fingerprint(model), adapter_shapes_to_json(adapter_shapes(transformer->config())));
  std::map<std::string, std::string> adapter_dirs;
  uint64_t seed = 100;
  for (const std::string user : {"alice", "bob", "carol"}) {
    LoraConfig config;
    config.rank = 8;
    config.alpha = 16;
    LoraAdapter adapter = make_random_adapter(config, transformer->config(), ++seed, 0.3);
    adapter.metadata[kMetaUser] = user;
    adapter.metadata[kMetaBaseFingerprint] = *registry->base_fingerprint();
    adapter.metadata[kMetaDataFingerprint] = "data";
    adapter_dirs[user] = (dir / "adapters" / user).string();
    write_peft_adapter(adapter_dirs[user], adapter);
    registry->publish(PublishRequest{adapter_dirs[user], "", "", true});
  }
  // Dave's adapter is not published: the client loads it over the admin route.
  {
    LoraConfig config;
    config.rank = 4;
    config.alpha = 8;
    LoraAdapter adapter = make_random_adapter(config, transformer->config(), ++seed, 0.3);
    adapter.metadata[kMetaUser] = "dave";
    adapter.metadata[kMetaBaseFingerprint] = *registry->base_fingerprint();
    adapter.metadata[kMetaDataFingerprint] = "data";
    adapter_dirs["dave"] = (dir / "adapters" / "dave").string();
    write_peft_adapter(adapter_dirs["dave"], adapter);
  }
  registry.reset();

  const std::map<std::string, std::string> keys = {{"alice", "sk-alice-key-000000000001"},
                                                   {"bob", "sk-bob-key-00000000000002"},
                                                   {"service", "sk-service-key-000000003"},
                                                   {"admin", "sk-admin-key-0000000000004"}};
  std::ofstream(dir / "keys.yaml") << "keys:\n"
                                   << "  - {key: " << keys.at("alice") << ", role: user, user: alice}\n"
                                   << "  - {key: " << keys.at("bob") << ", role: user, user: bob}\n"
                                   << "  - {key: " << keys.at("service") << ", role: service}\n"
                                   << "  - {key: " << keys.at("admin") << ", role: admin}\n";
  // drain_min_ms: the checks after SIGTERM need the server up, however fast
  // the four requests running then finish.
  std::ofstream(dir / "serve.yaml") << "keys_file: keys.yaml\nthreads: 1\ndrain_min_ms: " << kDrainMinMs << "\n"
                                    << "limits: {queue: 6, body_bytes: 1048576, max_tokens: 256, default_chat_max_tokens: 64}\n"
                                    << "engine: {registry_poll_ms: 50, adapter_slots: 2}\n";

  // What `mnemo generate` says for each user (carol through the service key, and two without memory).
  const std::string prompt = "The secret word is", chat_prompt = "What is my name?";
  const int max_tokens = 8;
  auto generate = [&](const std::string& adapter, bool chat) {
    std::string command = testing::mnemo_command() + " generate --model " + shell_quote(model) + " -n " +
                          std::to_string(max_tokens) + " -p " + shell_quote(chat ? chat_prompt : prompt) +
                          (chat ? " --chat" : "") + (adapter.empty() ? "" : " --adapter " + shell_quote(adapter)) +
                          " 2>/dev/null";
    testing::CommandResult result = run_command(command);
    EXPECT_EQ(result.exit_code, 0) << command;
    if (!result.output.empty() && result.output.back() == '\n') result.output.pop_back();
    return result.output;
  };
  nlohmann::json cases = {{"prompt", prompt}, {"chat_prompt", chat_prompt}, {"max_tokens", max_tokens}};
  for (const auto& [name, key] : keys) cases["keys"][name] = key;
  for (const std::string user : {"alice", "bob", "carol"}) cases["completion"][user] = generate(adapter_dirs[user], false);
  cases["completion"]["base"] = generate("", false);
  cases["completion"]["nobody"] = cases["completion"]["base"];
  cases["chat"]["alice"] = generate(adapter_dirs["alice"], true);
  cases["admin_load"] = {{"user", "dave"}, {"path", adapter_dirs["dave"]}, {"completion", generate(adapter_dirs["dave"], false)}};
  std::ofstream(dir / "cases.json") << cases.dump(2);

  // The server, as its own process.
  const std::string binary = testing::mnemo_binary();
  const std::string port_file = (dir / "port").string(), log = (dir / "server.log").string();
  std::vector<std::string> argv_strings = {binary,      "serve",   "--config",   (dir / "serve.yaml").string(),
                                           "--model",   model,     "--registry", (dir / "registry").string(),
                                           "--port",    "0",       "--port-file", port_file};
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  int port = 0;
  for (int i = 0; i < 600 && port == 0; ++i) {  // the port file appears once the server listens
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) break;  // it exited: its log says why
    std::ifstream in(port_file);
    if (!(in >> port)) port = 0;
    if (port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GT(port, 0) << "the server did not start; its log:\n" << run_command("cat " + shell_quote(log)).output;

  testing::CommandResult client =
      run_command(shell_quote(python) + " " +
                  shell_quote((fs::path(testing::env_or_empty("MNEMO_SOURCE_DIR")) / "tests/interop/serve_openai_client.py").string()) +
                  " --base-url http://127.0.0.1:" + std::to_string(port) + "/v1 --cases " +
                  shell_quote((dir / "cases.json").string()) + " --server-pid " + std::to_string(pid) +
                  " --drain-min-ms " + std::to_string(kDrainMinMs) + " 2>&1");
  std::cout << client.output;  // one line per check: ctest -V shows what was checked
  EXPECT_EQ(client.exit_code, 0) << client.output;
  EXPECT_NE(client.output.find("0 failed"), std::string::npos) << client.output;

  // The client sent SIGTERM mid-request: the server drains and exits 0 by itself.
  int status = 0;
  pid_t waited = 0;
  for (int i = 0; i < 600 && waited == 0; ++i) {
    waited = waitpid(pid, &status, WNOHANG);
    if (waited == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (waited == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "the server did not exit within 60 s of SIGTERM";
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  const std::string server_log = run_command("cat " + shell_quote(log)).output;
  for (const auto& [name, key] : keys) EXPECT_EQ(server_log.find(key), std::string::npos) << name << "'s key was logged";
}

}  // namespace
}  // namespace mnemo
