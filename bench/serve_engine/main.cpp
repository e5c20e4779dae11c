// bench_serve_engine: the serving engine in-process, against its baselines
// measured in the same run.
//
//   1. Streams: 1, 8 and 32 concurrent requests (random prompts of
//      --prompt-tokens, --new-tokens each), all on the base model vs each with
//      its own user's adapter (as many distinct adapters as streams): decode
//      and prefill tokens/s, time to first token and inter-token latency p50/p99.
//      Baseline: generate() (what `mnemo generate` runs) on the same batch,
//      base model, whose decode step time is (T(new tokens) − T(1)) / (new − 1).
//   2. The bound for adapters: the extra decode step time over base against the
//      time the active adapters' bytes take to read at this machine's memory
//      bandwidth (measured here: a large tensor copy, bytes read + written).
//   3. Adapter swaps: registry → slot (background load included) and host
//      tier → slot, p50/p99 over --swap-users adapters.
//   4. Swaps under load: 8 base streams decode while short requests of other
//      users arrive; the users either stay in their slots (no swaps) or cycle
//      through more users than slots (every request swaps); p99 inter-token
//      latency of the 8 streams, with and without swaps.
// Writes one JSON document (run info, parameters, rows) to --out.
#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "model/base_model.h"
#include "model/generate.h"
#include "model/kv_cache.h"
#include "model/default_model.h"
#include "model/transformer.h"
#include "serve/adapter_cache.h"
#include "serve/engine.h"
#include "bench/support/run_info.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <execinfo.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

double median(std::vector<double> values) { return percentile(std::move(values), 0.5); }

// Bytes read + written per second by one large copy (best of five).
double memory_bandwidth_gbs(at::Device device) {
  at::Tensor source = at::ones({int64_t{64} << 20}, at::TensorOptions().dtype(at::kFloat).device(device));
  at::Tensor target = at::empty_like(source);
  double best_s = 1e9;
  for (int i = 0; i < 5; ++i) {
    target[0].item<float>();  // on a GPU: the stream is idle before the clock starts
    auto start = Clock::now();
    target.copy_(source);
    target[-1].item<float>();  // and the copy is done before it stops
    best_s = std::min(best_s, ms_since(start) / 1e3);
  }
  return 2.0 * static_cast<double>(source.nbytes()) / best_s / 1e9;
}

int64_t adapter_bytes(const mnemo::ModelConfig& config, int64_t rank, at::ScalarType dtype) {
  int64_t per_layer = 0;
  for (mnemo::LinearModule module : mnemo::kAllLinearModules) {
    auto [out, in] = mnemo::module_shape(config, module);
    per_layer += rank * (in + out);
  }
  return per_layer * config.num_layers * static_cast<int64_t>(c10::elementSize(dtype));
}

struct StreamRun {
  double prefill_tokens_per_s = 0, decode_tokens_per_s = 0, decode_step_ms = 0;
  std::vector<double> first_token_ms, inter_token_ms;
};

// A crash prints its stack (binary+offset; addr2line turns them into lines):
// the GPU machine has no debugger.
void print_stack_and_exit(int signal) {
  void* frames[64];
  const int n = backtrace(frames, 64);
  backtrace_symbols_fd(frames, n, STDERR_FILENO);
  _exit(128 + signal);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGSEGV, print_stack_and_exit);
  std::signal(SIGABRT, print_stack_and_exit);
  CLI::App app{"The serving engine in-process: streams, adapters, swaps, against generate() and the memory bandwidth; "
               "writes JSON."};
  std::string model_path, dtype = "float32", device = "cpu", out = "bench/results/serve_engine.json";
  std::vector<int> stream_counts = {1, 8, 32};
  int prompt_tokens = 64, new_tokens = 32, rounds = 3, threads = 2, swap_users = 32, load_streams = 8;
  int64_t rank = 16;
  app.add_option("--model", model_path, "model directory or GGUF (default: the default model)");
  app.add_option("--streams", stream_counts, "concurrent stream counts")->delimiter(',')->capture_default_str();
  app.add_option("--prompt-tokens", prompt_tokens, "tokens per prompt")->capture_default_str();
  app.add_option("--new-tokens", new_tokens, "tokens generated per stream")->capture_default_str();
  app.add_option("--rounds", rounds, "timed rounds per configuration (medians)")->capture_default_str();
  app.add_option("--rank", rank, "LoRA rank of every adapter (all seven modules)")->capture_default_str();
  app.add_option("--swap-users", swap_users, "adapters in the swap measurements")->capture_default_str();
  app.add_option("--load-streams", load_streams, "base streams decoding during the swap-under-load run")
      ->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads")->capture_default_str();
  app.add_option("--dtype", dtype, "float32 or bfloat16")->capture_default_str();
  app.add_option("--device", device, "cpu or cuda")->capture_default_str();
  app.add_option("--out", out, "result JSON")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);
  if (std::getenv("MNEMO_BENCH_TRACE")) spdlog::set_level(spdlog::level::debug);  // the engine's step log
  if (model_path.empty()) model_path = mnemo::default_model_path();

  mnemo::BaseModel model = mnemo::open_base_model(model_path, {.dtype = dtype, .device = device});
  const mnemo::ModelConfig& config = model.transformer->config();
  const at::Device at_device = model.transformer->device();
  const at::ScalarType at_dtype = model.transformer->dtype();
  const double bandwidth_gbs = memory_bandwidth_gbs(at_device);
  const int64_t one_adapter_bytes = adapter_bytes(config, rank, at_dtype);
  std::cerr << fmt::format("model {} ({} layers, hidden {}), {} {}, {} threads; memory bandwidth {:.1f} GB/s; "
                           "adapter {:.1f} MB\n",
                           model_path, config.num_layers, config.hidden_size, device, dtype, at::get_num_threads(),
                           bandwidth_gbs, one_adapter_bytes / 1e6);

  // A registry of random adapters (not durable: seeding only).
  const int max_streams = *std::max_element(stream_counts.begin(), stream_counts.end());
  const int n_users = std::max({max_streams, swap_users, 8});
  fs::path scratch = fs::temp_directory_path() / fmt::format("mnemo_bench_serve_{}", ::getpid());
  fs::remove_all(scratch);
  mnemo::RegistryOptions registry_options;
  registry_options.mode = mnemo::OpenMode::kCreate;
  registry_options.durable = false;
  registry_options.actor = "bench";
  auto registry = mnemo::Registry::open((scratch / "registry").string(), registry_options);
  registry->init("bench", mnemo::adapter_shapes_to_json(mnemo::adapter_shapes(config)));
  std::vector<std::string> users;
  {
    mnemo::LoraConfig lora_config;
    lora_config.rank = rank;
    lora_config.alpha = 2.0 * static_cast<double>(rank);
    for (int u = 0; u < n_users; ++u) {
      users.push_back(fmt::format("user{:03d}", u));
      mnemo::LoraAdapter adapter = mnemo::make_random_adapter(lora_config, config, 1000 + u, 0.02);
      adapter.metadata[mnemo::kMetaUser] = users.back();
      adapter.metadata[mnemo::kMetaBaseFingerprint] = "bench";
      adapter.metadata[mnemo::kMetaDataFingerprint] = "bench";
      std::string dir = (scratch / "adapters" / users.back()).string();
      mnemo::write_peft_adapter(dir, adapter);
      registry->publish(mnemo::PublishRequest{dir, "", "", true});
    }
  }

  std::mt19937 rng(0);
  std::uniform_int_distribution<int32_t> token(3, static_cast<int32_t>(config.vocab_size) - 1);
  std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(std::max(max_streams, load_streams) + n_users));
  for (auto& prompt : prompts) {
    prompt.resize(static_cast<size_t>(prompt_tokens));
    for (auto& id : prompt) id = token(rng);
  }
  auto params_for = [&](int64_t max_new) {
    mnemo::GenerationParams params;
    params.max_new_tokens = max_new;
    params.stop_token_ids = {-1};  // never sampled: every stream runs its full length
    return params;
  };

  json rows = json::array();
  auto engine_options_for = [&](int streams) {
    mnemo::EngineOptions options;
    options.max_batch_tokens = std::max<int64_t>(streams * prompt_tokens, 256);
    options.max_sequences = std::max(streams, 64);
    options.kv_memory_bytes = 2 * mnemo::KvBlockPool::block_bytes(config, 16, at_dtype) *
                              ((static_cast<int64_t>(streams) + 8) * (prompt_tokens + new_tokens + 16) / 16 + 1);
    options.adapters.device_slots = std::max(streams, 8);
    options.adapters.rank_capacity = rank;
    options.adapters.scratch_dir = (scratch / "loads").string();
    options.registry_poll_ms = 1000;
    return options;
  };

  // ---- 1 and 2: streams, base vs adapters, and generate() as the baseline.
  auto run_streams = [&](mnemo::Engine& engine, int streams, bool adapters) {
    StreamRun run;
    std::vector<mnemo::RequestEvent> finals;
    for (int s = 0; s < streams; ++s) {
      mnemo::EngineRequest request;
      request.prompt = prompts[static_cast<size_t>(s)];
      request.user = adapters ? users[static_cast<size_t>(s)] : "";
      request.params = params_for(new_tokens);
      request.on_event = [&](const mnemo::RequestEvent& event) {
        if (event.final) finals.push_back(event);
      };
      engine.submit(std::move(request));
    }
    double prefill_ms = 0, decode_ms = 0;
    int64_t prefill_tokens = 0, decode_tokens = 0, decode_steps = 0;
    while (static_cast<int>(finals.size()) < streams) {
      mnemo::StepStats stats;
      auto start = Clock::now();
      if (!engine.step(&stats)) {
        engine.wait_for_event(50);
        continue;
      }
      const double ms = ms_since(start);
      if (stats.prefill_tokens > 0) {
        prefill_ms += ms;
        prefill_tokens += stats.prefill_tokens;
      } else if (stats.decode_tokens == streams) {  // full-batch decode steps only
        decode_ms += ms;
        decode_tokens += stats.decode_tokens;
        ++decode_steps;
      }
    }
    for (const auto& event : finals) {
      if (event.state != mnemo::RequestState::Finished) throw std::runtime_error("a bench request failed: " + event.error);
      run.first_token_ms.push_back(event.timings.first_token_ms);
      for (float gap : event.timings.inter_token_ms) run.inter_token_ms.push_back(gap);
    }
    run.prefill_tokens_per_s = prefill_tokens / (prefill_ms / 1e3);
    run.decode_tokens_per_s = decode_tokens / (decode_ms / 1e3);
    run.decode_step_ms = decode_ms / std::max<int64_t>(decode_steps, 1);
    return run;
  };

  for (int streams : stream_counts) {
    // generate() on the same batch, base model.
    std::vector<double> generate_step_ms;
    for (int round = 0; round <= rounds; ++round) {
      auto time_generate = [&](int64_t max_new) {
        std::vector<mnemo::GenerationRequest> requests;
        for (int s = 0; s < streams; ++s)
          requests.push_back({.prompt = prompts[static_cast<size_t>(s)], .params = params_for(max_new)});
        auto start = Clock::now();
        mnemo::generate(*model.transformer, *model.tokenizer, requests);
        return ms_since(start);
      };
      const double one = time_generate(1), full = time_generate(new_tokens);
      if (round > 0) generate_step_ms.push_back((full - one) / (new_tokens - 1));
    }
    const double generate_ms = median(generate_step_ms);
    rows.push_back({{"measure", "streams"}, {"method", "generate"}, {"streams", streams}, {"adapters", 0},
                    {"decode_step_ms", generate_ms}, {"decode_tokens_per_s", streams / (generate_ms / 1e3)}});
    std::cerr << fmt::format("streams {:2}  generate()          decode {:8.1f} tok/s\n", streams,
                             streams / (generate_ms / 1e3));

    double base_step_ms = 0;
    for (bool adapters : {false, true}) {
      mnemo::Engine engine(model, registry.get(), engine_options_for(streams));
      run_streams(engine, streams, adapters);  // warm-up: loads the adapters, fills the allocator
      std::vector<StreamRun> runs;
      for (int round = 0; round < rounds; ++round) runs.push_back(run_streams(engine, streams, adapters));
      std::vector<double> prefill, decode, step_ms, first, gaps;
      for (const StreamRun& run : runs) {
        prefill.push_back(run.prefill_tokens_per_s);
        decode.push_back(run.decode_tokens_per_s);
        step_ms.push_back(run.decode_step_ms);
        first.insert(first.end(), run.first_token_ms.begin(), run.first_token_ms.end());
        gaps.insert(gaps.end(), run.inter_token_ms.begin(), run.inter_token_ms.end());
      }
      const double decode_step_ms = median(step_ms);
      json row = {{"measure", "streams"},
                  {"method", "engine"},
                  {"streams", streams},
                  {"adapters", adapters ? streams : 0},
                  {"prefill_tokens_per_s", median(prefill)},
                  {"decode_tokens_per_s", median(decode)},
                  {"decode_step_ms", decode_step_ms},
                  {"first_token_ms_p50", percentile(first, 0.5)},
                  {"first_token_ms_p99", percentile(first, 0.99)},
                  {"inter_token_ms_p50", percentile(gaps, 0.5)},
                  {"inter_token_ms_p99", percentile(gaps, 0.99)}};
      if (!adapters) {
        base_step_ms = decode_step_ms;
        row["over_generate"] = median(decode) / (streams / (generate_ms / 1e3));
      } else {
        const double bound_ms = static_cast<double>(streams) * one_adapter_bytes / (bandwidth_gbs * 1e9) * 1e3;
        row["extra_decode_ms"] = decode_step_ms - base_step_ms;
        row["adapter_bytes_ms"] = bound_ms;
        row["extra_over_bytes"] = (decode_step_ms - base_step_ms) / bound_ms;
      }
      rows.push_back(row);
      std::cerr << fmt::format("streams {:2}  engine {:8}  decode {:8.1f} tok/s  prefill {:8.1f} tok/s  "
                               "ttft p50 {:7.1f} ms  itl p50 {:6.1f} p99 {:6.1f} ms{}\n",
                               streams, adapters ? "adapters" : "base", median(decode), median(prefill),
                               percentile(first, 0.5), percentile(gaps, 0.5), percentile(gaps, 0.99),
                               adapters ? fmt::format("  extra/bytes {:.2f}", row["extra_over_bytes"].get<double>())
                                        : fmt::format("  vs generate {:.2f}", row["over_generate"].get<double>()));
    }
  }

  // ---- 3: swap costs, on the adapter cache itself.
  {
    c10::InferenceMode inference_mode;
    mnemo::AdapterCacheOptions options;
    options.device_slots = 2;
    options.rank_capacity = rank;
    options.scratch_dir = (scratch / "swap_loads").string();
    mnemo::AdapterCache cache(config, at_dtype, at_device, registry.get(), options);
    std::vector<double> from_registry, from_host;
    for (int u = 0; u < swap_users; ++u) {
      mnemo::AdapterKey key{users[static_cast<size_t>(u)], 1};
      auto start = Clock::now();
      auto acquired = cache.acquire(key);
      while (acquired.status == mnemo::AdapterCache::Status::Loading) {
        if (!cache.collect_loads().empty()) throw std::runtime_error("a bench adapter failed to load");
        if (!cache.loads_in_flight()) acquired = cache.acquire(key);
        else std::this_thread::yield();
      }
      cache.slots().scales().sum().item<float>();  // the slot's copy is done (a GPU copy is asynchronous)
      from_registry.push_back(ms_since(start));
      cache.release(acquired.slot);
    }
    for (int round = 0; round < 2; ++round)
      for (int u = 0; u < swap_users; ++u) {
        auto start = Clock::now();
        auto acquired = cache.acquire({users[static_cast<size_t>(u)], 1});
        if (acquired.status != mnemo::AdapterCache::Status::Ready) throw std::runtime_error("not in the host tier");
        cache.slots().scales().sum().item<float>();
        from_host.push_back(ms_since(start));
        cache.release(acquired.slot);
      }
    for (auto [source, values] : {std::pair{"registry", &from_registry}, std::pair{"host", &from_host}}) {
      rows.push_back({{"measure", "swap"}, {"from", source}, {"count", values->size()},
                      {"ms_p50", percentile(*values, 0.5)}, {"ms_p99", percentile(*values, 0.99)}});
      std::cerr << fmt::format("swap from {:8}: p50 {:6.2f} ms  p99 {:6.2f} ms  ({} swaps)\n", source,
                               percentile(*values, 0.5), percentile(*values, 0.99), values->size());
    }
  }

  // ---- 4: inter-token latency of running streams while other users' adapters swap.
  for (bool swapping : {false, true}) {
    mnemo::EngineOptions options = engine_options_for(load_streams + 4);
    options.adapters.device_slots = 4;
    options.max_batch_tokens = 256;
    mnemo::Engine engine(model, registry.get(), options);
    const int visitors = swapping ? swap_users : 4;  // 4 users fit the 4 slots: no swap after the first
    for (int u = 0; u < 4; ++u) {  // warm the slots and the host tier
      mnemo::EngineRequest request{.prompt = prompts[0], .user = users[static_cast<size_t>(u)], .params = params_for(1)};
      engine.submit(std::move(request));
    }
    engine.run_until_idle();
    std::vector<double> gaps;
    int finished_streams = 0;
    for (int s = 0; s < load_streams; ++s) {
      mnemo::EngineRequest request{.prompt = prompts[static_cast<size_t>(s)], .params = params_for(4 * new_tokens)};
      request.on_event = [&](const mnemo::RequestEvent& event) {
        if (!event.final) return;
        ++finished_streams;
        for (float gap : event.timings.inter_token_ms) gaps.push_back(gap);
      };
      engine.submit(std::move(request));
    }
    int visitor = 0, in_flight = 0;
    auto stats_before = engine.stats().adapters;
    while (finished_streams < load_streams) {
      // One short visitor at a time, each a different user in turn.
      if (in_flight == 0) {
        mnemo::EngineRequest request{.prompt = std::vector<int32_t>(prompts[0].begin(), prompts[0].begin() + 8),
                                     .user = users[static_cast<size_t>(visitor++ % visitors)],
                                     .params = params_for(2)};
        request.on_event = [&](const mnemo::RequestEvent& event) { in_flight -= event.final ? 1 : 0; };
        ++in_flight;
        engine.submit(std::move(request));
      }
      if (!engine.step()) engine.wait_for_event(50);
    }
    engine.run_until_idle();
    auto stats_after = engine.stats().adapters;
    rows.push_back({{"measure", "swaps_under_load"}, {"swapping", swapping}, {"streams", load_streams},
                    {"visitors", visitor}, {"slot_loads", stats_after.host_hits - stats_before.host_hits},
                    {"registry_loads", stats_after.registry_loads - stats_before.registry_loads},
                    {"inter_token_ms_p50", percentile(gaps, 0.5)}, {"inter_token_ms_p99", percentile(gaps, 0.99)}});
    std::cerr << fmt::format("{} streams with visitors {:12}: itl p50 {:6.1f} ms p99 {:6.1f} ms ({} visitors, {} "
                             "slot loads)\n",
                             load_streams, swapping ? "swapping" : "in their slots", percentile(gaps, 0.5),
                             percentile(gaps, 0.99), visitor, stats_after.host_hits - stats_before.host_hits);
  }

  std::string gpu = device == "cuda" ? mnemo::bench::command_output(
                                           "nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1")
                                     : "";
  json document = mnemo::bench::run_info(device == "cuda" ? "serve_engine_cuda" : "serve_engine", gpu);
  document["parameters"] = {{"model", model_path},
                            {"layers", config.num_layers},
                            {"hidden", config.hidden_size},
                            {"dtype", dtype},
                            {"device", device},
                            {"threads", at::get_num_threads()},
                            {"prompt_tokens", prompt_tokens},
                            {"new_tokens", new_tokens},
                            {"rounds", rounds},
                            {"rank", rank},
                            {"adapter_modules", "q,k,v,o,gate,up,down"},
                            {"adapter_bytes", one_adapter_bytes},
                            {"memory_bandwidth_gbs", bandwidth_gbs},
                            {"swap_users", swap_users},
                            {"baseline", "generate() on the same batch (base model); the adapters' bytes at the "
                                         "measured bandwidth"},
                            {"statistic", "medians over rounds; latency percentiles over every token of every round"}};
  document["results"] = rows;
  fs::create_directories(fs::path(out).parent_path().empty() ? "." : fs::path(out).parent_path());
  std::ofstream(out) << document.dump(2) << "\n";
  std::cerr << "wrote " << out << "\n";
  fs::remove_all(scratch);
  return 0;
}
