// bench_lora_cpu: whole-model forward time with many users' adapters in
// one batch against the same batch on the base model alone, in one run.
//
// One batch of `--batch` sequences; with A distinct adapters, sequence b runs
// with adapter b % A (A = 1, 8, 32; all rank `--rank` on all seven modules,
// the production default) and A = 0 is the baseline: the same batch with no
// LoRA hook at all. Two workloads:
//   prefill: every sequence's `--prompt-tokens` prompt in one forward;
//   decode:  one new token per sequence on top of that prefix (the step a
//            serving engine repeats), `--decode-steps` steps per round.
// `--repeats` timed rounds run every configuration in turn; medians over them.
// Each adapter count runs with both CPU decode paths of the slots (grouped
// GEMMs per distinct adapter, and the per-token pass), so the choice between
// them is measured in one run.
// Prints one JSON line per (workload, adapters); bench/lora_cpu/run.sh
// pipes them to bench/write_results.py.
#include "adapters/adapter_slots.h"
#include "adapters/lora_adapter.h"
#include "model/kv_cache.h"
#include "model/model_loader.h"
#include "model/transformer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>

using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Forward time with 1, 8, 32 distinct LoRA adapters in a batch vs the base model; prints JSON lines."};
  std::string model_path, dtype = "float32";
  int batch = 32, prompt_tokens = 32, decode_steps = 8, repeats = 5, threads = 1;
  int64_t rank = 16;
  std::vector<int> adapter_counts = {1, 8, 32};
  app.add_option("--model", model_path, "model directory")->required();
  app.add_option("--batch", batch, "sequences per batch")->capture_default_str();
  app.add_option("--prompt-tokens", prompt_tokens, "tokens per prompt (prefill)")->capture_default_str();
  app.add_option("--decode-steps", decode_steps, "decode steps timed per round")->capture_default_str();
  app.add_option("--repeats", repeats, "timed rounds, each running every configuration once (medians)")
      ->capture_default_str();
  app.add_option("--rank", rank, "LoRA rank of every adapter")->capture_default_str();
  app.add_option("--adapters", adapter_counts, "distinct adapter counts to run")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads (1 is steadier on a shared machine)")->capture_default_str();
  app.add_option("--dtype", dtype, "float32 or bfloat16")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);

  c10::InferenceMode inference_mode;
  auto model = mnemo::load_transformer(model_path, {.dtype = dtype, .device = "cpu"});
  const mnemo::ModelConfig& config = model->config();
  std::mt19937 rng(0);
  std::uniform_int_distribution<int32_t> token(3, static_cast<int32_t>(config.vocab_size) - 1);
  std::vector<std::vector<int32_t>> prompts(batch, std::vector<int32_t>(prompt_tokens));
  for (auto& prompt : prompts)
    for (auto& id : prompt) id = token(rng);

  int max_adapters = *std::max_element(adapter_counts.begin(), adapter_counts.end());
  mnemo::AdapterSlots slots(config, max_adapters, model->dtype(), model->device());
  mnemo::LoraConfig lora_config;
  lora_config.rank = rank;
  for (int a = 0; a < max_adapters; ++a) slots.load(a, mnemo::make_random_adapter(lora_config, config, a, 0.02));

  auto fresh_batch = [&](std::vector<std::unique_ptr<mnemo::SequenceCache>>& caches, int adapters) {
    mnemo::ForwardBatch step;
    caches.clear();
    for (int b = 0; b < batch; ++b) {
      caches.push_back(std::make_unique<mnemo::SequenceCache>(config, prompt_tokens + decode_steps + 1, model->dtype(),
                                                              model->device()));
      step.caches.push_back(caches.back().get());
      step.tokens.push_back(prompts[b]);
      step.adapter_slots.push_back(adapters == 0 ? -1 : b % adapters);
    }
    return step;
  };

  // Configurations: the base (no hook), then each adapter count with each
  // CPU decode path of the slots (the grouped GEMMs and the per-token pass;
  // prefill always takes the segment path, so it is the same for both).
  struct Run {
    int adapters;
    std::string path;
  };
  std::vector<Run> runs = {{0, "base"}};
  for (int adapters : adapter_counts)
    for (const char* path : {"grouped", "per_token"}) runs.push_back({adapters, path});
  // Rounds interleave the configurations, so drift in a shared machine's
  // speed spreads over all of them rather than landing on one; each round
  // times one prefill and the decode steps after it.
  std::map<std::pair<int, std::string>, std::vector<double>> prefill_s, decode_s;
  for (int round = 0; round < repeats + 1; ++round) {  // round 0 warms up and is not counted
    for (const Run& run : runs) {
      slots.set_cpu_decode_path(run.path == "grouped" ? mnemo::CpuDecodePath::Grouped
                                                      : mnemo::CpuDecodePath::PerToken);
      const mnemo::LoraHook* lora = run.adapters == 0 ? nullptr : &slots;
      const auto key = std::pair{run.adapters, run.path};
      std::vector<std::unique_ptr<mnemo::SequenceCache>> caches;
      mnemo::ForwardBatch step = fresh_batch(caches, run.adapters);
      auto start = Clock::now();
      at::Tensor next = model->forward(step, lora).argmax(-1);
      if (round > 0) prefill_s[key].push_back(seconds_since(start));
      for (int i = 0; i < decode_steps; ++i) {
        for (int b = 0; b < batch; ++b) step.tokens[b] = {static_cast<int32_t>(next[b].item<int64_t>())};
        start = Clock::now();
        next = model->forward(step, lora).argmax(-1);
        if (round > 0) decode_s[key].push_back(seconds_since(start));
      }
    }
  }
  const auto base = std::pair{0, std::string("base")};
  double base_prefill_ms = 1e3 * median(prefill_s[base]), base_decode_ms = 1e3 * median(decode_s[base]);
  for (const Run& run : runs) {
    const auto key = std::pair{run.adapters, run.path};
    const double prefill_ms = 1e3 * median(prefill_s[key]), decode_ms = 1e3 * median(decode_s[key]);
    for (auto [workload, ms, base_ms, tokens] :
         {std::tuple{"prefill", prefill_ms, base_prefill_ms, batch * prompt_tokens},
          std::tuple{"decode", decode_ms, base_decode_ms, batch}}) {
      nlohmann::json row = {{"workload", workload},
                            {"adapters", run.adapters},
                            {"cpu_decode_path", run.path},
                            {"batch", batch},
                            {"tokens", tokens},
                            {"rank", run.adapters == 0 ? 0 : rank},
                            {"ms", ms},
                            {"tokens_per_s", tokens / (ms / 1e3)},
                            {"over_base", ms / base_ms},
                            {"threads", at::get_num_threads()},
                            {"dtype", dtype}};
      std::cout << row.dump() << std::endl;
    }
  }
  return 0;
}
