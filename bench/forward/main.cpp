// bench_forward: prefill and decode throughput of mnemo's forward pass on one
// model, for one batch size. bench/forward/run.sh runs it beside the same
// workload in transformers (bench/forward/transformers_forward.py) and writes
// the side-by-side JSON; this program prints one JSON object on stdout.
#include "kernels/skinny_linear_cpu.h"
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
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>

using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  CLI::App app{"Times mnemo's prefill and greedy decode (tokens/s) for one batch size; prints JSON."};
  std::string model_path, dtype = "float32", device = "cpu", quant = "none";
  int batch = 1, prompt_tokens = 128, decode_tokens = 32, repeats = 3;
  app.add_option("--model", model_path, "model directory or GGUF file")->required();
  app.add_option("--batch", batch, "sequences per batch");
  app.add_option("--prompt-tokens", prompt_tokens, "tokens per prompt (prefill)");
  app.add_option("--decode-tokens", decode_tokens, "tokens decoded per sequence");
  app.add_option("--repeats", repeats, "timed repetitions (the best is reported)");
  app.add_option("--dtype", dtype, "float32, bfloat16 or float16");
  app.add_option("--device", device, "cpu or cuda");
  app.add_option("--quant", quant, "base weights: none, int8 or int4 (kernels/quantized_linear_cpu.h)");
  bool no_skinny = false;
  app.add_flag("--no-skinny-linear", no_skinny,
               "send decode's small products to at::linear (MKL) instead of kernels/skinny_linear_cpu.h");
  CLI11_PARSE(app, argc, argv);

  mnemo::set_skinny_linear_enabled(!no_skinny);
  c10::InferenceMode inference_mode;
  auto model = mnemo::load_transformer(model_path, {.dtype = dtype, .device = device, .quant = quant});
  std::mt19937 rng(0);
  std::uniform_int_distribution<int32_t> token(3, static_cast<int32_t>(model->config().vocab_size) - 1);
  std::vector<std::vector<int32_t>> prompts(batch, std::vector<int32_t>(prompt_tokens));
  for (auto& prompt : prompts)
    for (auto& id : prompt) id = token(rng);

  double best_prefill_s = 1e30, best_decode_s = 1e30;
  for (int r = 0; r < repeats + 1; ++r) {  // the first run warms up and is not counted
    std::vector<std::unique_ptr<mnemo::SequenceCache>> caches;
    mnemo::ForwardBatch step;
    for (int b = 0; b < batch; ++b) {
      caches.push_back(std::make_unique<mnemo::SequenceCache>(model->config(), prompt_tokens + decode_tokens,
                                                              model->dtype(), model->device()));
      step.caches.push_back(caches.back().get());
      step.tokens.push_back(prompts[b]);
    }
    auto t0 = Clock::now();
    at::Tensor next = model->forward(step).argmax(-1).to(at::kCPU);
    auto t1 = Clock::now();
    for (int i = 0; i < decode_tokens; ++i) {
      for (int b = 0; b < batch; ++b) step.tokens[b] = {static_cast<int32_t>(next[b].item<int64_t>())};
      next = model->forward(step).argmax(-1).to(at::kCPU);
    }
    auto t2 = Clock::now();
    if (r == 0) continue;
    best_prefill_s = std::min(best_prefill_s, std::chrono::duration<double>(t1 - t0).count());
    best_decode_s = std::min(best_decode_s, std::chrono::duration<double>(t2 - t1).count());
  }
  nlohmann::json result = {
      {"implementation", no_skinny ? "mnemo (MKL for every product)"
                         : quant != "none" ? "mnemo " + quant
                                           : "mnemo"},
      {"quant", quant},
      {"batch", batch},
      {"prompt_tokens", prompt_tokens},
      {"decode_tokens", decode_tokens},
      {"dtype", dtype},
      {"device", device},
      {"threads", at::get_num_threads()},
      {"prefill_s", best_prefill_s},
      {"decode_s", best_decode_s},
      {"prefill_tokens_per_s", batch * prompt_tokens / best_prefill_s},
      {"decode_tokens_per_s", batch * decode_tokens / best_decode_s},
  };
  std::cout << result.dump() << std::endl;
  return 0;
}
