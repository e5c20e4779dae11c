// bench_registry: the registry at scale. Seeds N users (default 100,000), then
// times, on that registry in one run: `list`, a live-version lookup (what a
// server does per request on a cache miss), a full version lookup, the
// generation poll, a durable publish and a durable erase. Prints a stable
// table and writes bench/results/registry.json.
//
// Seeding uses publish_batch with fsync off (durable = false) so that 100,000
// users take seconds, not an hour of fsyncs; every timed operation runs on a
// durable (fsyncing) handle, as in production.
#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "bench/support/run_info.h"

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string user_name(int64_t i) { return fmt::format("user-{:06d}", i); }

// A minimal PEFT adapter (rank 2 on q_proj of a one-layer, 4-wide base): a
// config and a 64-byte safetensors with Mnemo's metadata, distinct per user and version (so no blob is shared but the config).
void write_adapter(const std::string& dir, const std::string& user, uint32_t salt) {
  fs::create_directories(dir);
  std::ofstream(dir + "/adapter_config.json")
      << R"({"peft_type":"LORA","r":2,"lora_alpha":4,"target_modules":["q_proj"]})";
  json header = {
      {"__metadata__", {{"mnemo.user", user}, {"mnemo.base_model_fingerprint", "bench-base"}, {"mnemo.metrics", "{}"}}},
      {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
       {{"dtype", "F32"}, {"shape", {2, 4}}, {"data_offsets", {0, 32}}}},
      {"base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
       {{"dtype", "F32"}, {"shape", {4, 2}}, {"data_offsets", {32, 64}}}}};
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  std::ofstream out(dir + "/adapter_model.safetensors", std::ios::binary);
  uint64_t length = text.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((length >> (8 * i)) & 0xff));
  out << text;
  std::mt19937 random(salt);
  for (int i = 0; i < 16; ++i) {
    float value = static_cast<float>(random()) / 4e9f;
    out.write(reinterpret_cast<const char*>(&value), 4);
  }
}

struct Timing {
  std::string operation;
  int64_t n = 0;
  double median_us = 0, p99_us = 0, mean_us = 0;
};

template <typename Body>
Timing measure(const std::string& operation, int64_t n, Body&& body) {
  std::vector<double> samples;
  samples.reserve(n);
  for (int64_t i = 0; i < n; ++i) {
    auto start = Clock::now();
    body(i);
    samples.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  std::sort(samples.begin(), samples.end());
  double sum = 0;
  for (double s : samples) sum += s;
  return Timing{operation, n, samples[samples.size() / 2],
                samples[std::min<size_t>(samples.size() - 1, samples.size() * 99 / 100)], sum / static_cast<double>(n)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_registry: the adapter registry at 100,000 users"};
  int64_t n_users = 100000;
  int64_t n_lookups = 20000;
  int64_t n_writes = 20;
  int64_t batch = 2000;
  std::string root = (fs::temp_directory_path() / "mnemo_bench_registry").string();
  std::string out_path = "bench/results/registry.json";
  bool keep = false;
  app.add_option("--users", n_users, "Users to seed");
  app.add_option("--lookups", n_lookups, "Live-version lookups to time");
  app.add_option("--writes", n_writes, "Publishes and erases to time (each)");
  app.add_option("--batch", batch, "Users per seeding transaction");
  app.add_option("--root", root, "Registry root (wiped first)");
  app.add_option("--out", out_path, "JSON results file");
  app.add_flag("--keep", keep, "Keep the seeded registry");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  fs::remove_all(root);
  std::string staging = root + ".staging";
  auto seed_start = Clock::now();
  {
    mnemo::RegistryOptions options;
    options.mode = mnemo::OpenMode::kCreate;
    options.durable = false;
    options.actor = "bench";
    auto seeder = mnemo::Registry::open(root, options);
    mnemo::AdapterShapes shapes;  // a one-layer base whose projections are all 4x4
    shapes.num_layers = 1;
    for (auto& shape : shapes.modules) shape = {4, 4};
    seeder->init("bench-base", mnemo::adapter_shapes_to_json(shapes));
    for (int64_t first = 0; first < n_users; first += batch) {
      std::vector<mnemo::PublishRequest> requests;
      for (int64_t i = first; i < std::min(n_users, first + batch); ++i) {
        std::string dir = fmt::format("{}/{}", staging, user_name(i));
        write_adapter(dir, user_name(i), static_cast<uint32_t>(i));
        requests.push_back({dir, "", "", true});
      }
      seeder->publish_batch(requests);
      fs::remove_all(staging);
    }
  }
  double seed_s = std::chrono::duration<double>(Clock::now() - seed_start).count();

  mnemo::RegistryOptions options;
  options.mode = mnemo::OpenMode::kReadWrite;
  options.actor = "bench";
  auto registry = mnemo::Registry::open(root, options);
  std::mt19937_64 random(42);
  std::vector<Timing> timings;
  size_t listed = 0;
  timings.push_back(measure("list (all users)", 5, [&](int64_t) { listed = registry->list().size(); }));
  if (static_cast<int64_t>(listed) != n_users) {
    std::fprintf(stderr, "list returned %zu users, expected %lld\n", listed, static_cast<long long>(n_users));
    return 1;
  }
  timings.push_back(measure("live-version lookup", n_lookups, [&](int64_t) {
    if (!registry->live_version(user_name(static_cast<int64_t>(random() % n_users)))) std::abort();
  }));
  timings.push_back(measure("version lookup (row + files)", n_lookups / 4,
                            [&](int64_t) { registry->version(user_name(static_cast<int64_t>(random() % n_users))); }));
  timings.push_back(measure("generation poll", n_lookups, [&](int64_t) { registry->generation(); }));
  timings.push_back(measure("publish, durable (new version, live)", n_writes, [&](int64_t i) {
    std::string user = user_name(static_cast<int64_t>(random() % n_users));
    std::string dir = fmt::format("{}/{}", staging, i);
    write_adapter(dir, user, static_cast<uint32_t>(n_users + i));
    registry->publish({dir, "", "", true});
  }));
  timings.push_back(measure("erase, durable (user with 1-2 versions)", n_writes,
                            [&](int64_t i) { registry->erase(user_name(n_users - 1 - i)); }));
  fs::remove_all(staging);

  std::cout << fmt::format("registry: {} users seeded in {:.1f} s (non-durable batches of {})\n", n_users, seed_s,
                           batch);
  std::cout << fmt::format("{:<42} {:>7} {:>12} {:>12} {:>12}\n", "operation", "n", "median_us", "p99_us", "mean_us");
  for (const Timing& t : timings)
    std::cout << fmt::format("{:<42} {:>7} {:>12.1f} {:>12.1f} {:>12.1f}\n", t.operation, t.n, t.median_us, t.p99_us,
                             t.mean_us);

  json results = mnemo::bench::run_info("registry");
  results.update({{"parameters",
                   {{"users", n_users},
                    {"lookups", n_lookups},
                    {"writes", n_writes},
                    {"seed_batch", batch},
                    {"root", root},
                    {"seed_durable", false},
                    {"timed_durable", true},
                    {"adapter", "config + 64-byte safetensors per version"}}},
                  {"seed_seconds", seed_s},
                  {"operations", json::array()}});
  for (const Timing& t : timings)
    results["operations"].push_back({{"operation", t.operation},
                                     {"n", t.n},
                                     {"median_us", t.median_us},
                                     {"p99_us", t.p99_us},
                                     {"mean_us", t.mean_us}});
  fs::create_directories(fs::path(out_path).parent_path().empty() ? "." : fs::path(out_path).parent_path());
  std::ofstream(out_path) << results.dump(2) << '\n';
  std::cout << "wrote " << out_path << '\n';
  registry.reset();
  if (!keep) fs::remove_all(root);
  return 0;
}
