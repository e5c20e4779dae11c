// bench_kv_cache: one batched decode step of the whole model with paged KV
// caches (blocks of a shared pool, what the serving engine uses) against
// contiguous per-sequence caches (what generate() uses), same batch, same
// history length, in one run. Prints a table; medians over --steps.
#include "model/default_model.h"
#include "model/kv_cache.h"
#include "model/model_loader.h"
#include "model/transformer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>

using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  CLI::App app{"Decode step time with paged vs contiguous KV caches (prints a table)."};
  std::string model_path;
  int batch = 8, history = 96, steps = 20, threads = 2, block_tokens = 16;
  app.add_option("--model", model_path, "model (default: the default model)");
  app.add_option("--batch", batch, "sequences")->capture_default_str();
  app.add_option("--history", history, "tokens already in each cache")->capture_default_str();
  app.add_option("--steps", steps, "timed decode steps")->capture_default_str();
  app.add_option("--block-tokens", block_tokens, "tokens per KV block")->capture_default_str();
  app.add_option("--threads", threads, "intra-op threads")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);
  if (model_path.empty()) model_path = mnemo::default_model_path();
  c10::InferenceMode guard;
  auto model = mnemo::load_transformer(model_path, {});
  const auto& config = model->config();
  mnemo::KvBlockPool pool(config, batch * ((history + steps + 2) / block_tokens + 2), block_tokens, model->dtype(),
                          model->device());
  for (bool paged : {false, true}) {
    std::vector<std::unique_ptr<mnemo::SequenceCache>> caches;
    mnemo::ForwardBatch step;
    for (int b = 0; b < batch; ++b) {
      caches.push_back(paged ? std::make_unique<mnemo::SequenceCache>(pool)
                             : std::make_unique<mnemo::SequenceCache>(config, history + steps + 1, model->dtype(),
                                                                      model->device()));
      if (paged) caches.back()->reserve(history + steps + 1);
      step.caches.push_back(caches.back().get());
      step.tokens.push_back(std::vector<int32_t>(static_cast<size_t>(history), 100 + b));
    }
    model->forward(step);
    std::vector<double> ms;
    for (int i = 0; i < steps; ++i) {
      for (auto& tokens : step.tokens) tokens = {42};
      auto start = Clock::now();
      model->forward(step);
      ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
    std::sort(ms.begin(), ms.end());
    std::cout << fmt::format("{:10}  batch {}  history {}  decode step {:7.2f} ms (median of {})\n",
                             paged ? "paged" : "contiguous", batch, history, ms[ms.size() / 2], steps);
  }
  return 0;
}
