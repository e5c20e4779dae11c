// bench_quant: what int8/int4 base weights cost in accuracy, against float32
// on the same model: perplexity on the shipped generic text
// (eval/retention.h), and greedy-token agreement on a fixed set of chat
// prompts (free-running completions equal to float32's, and, teacher-forced
// on float32's completion, the share of positions whose greedy token is
// float32's). Prints one JSON line per --quant; bench/quant/run.sh adds each
// setting's peak memory and writes bench/results/quant_<model>.json.
#include "eval/retention.h"
#include "model/base_model.h"
#include "model/default_model.h"
#include "model/generate.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "tokenizer/tokenizer.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

namespace {

// Generic requests (never the memory evaluation's questions).
const std::vector<std::string> kPrompts = {
    "Give me three tips for staying focused while studying.",
    "What is the difference between weather and climate?",
    "Write a short poem about the sea.",
    "How do I boil an egg?",
    "Explain what a CPU does in simple terms.",
    "Suggest a name for a small bakery.",
    "Why is the sky blue?",
    "List four common fruits and their colours.",
    "What should I pack for a weekend camping trip?",
    "Summarise the plot of Cinderella in two sentences.",
    "How can I save money on groceries?",
    "What is photosynthesis?",
    "Write a polite email declining a meeting invitation.",
    "Give me a simple recipe for pancakes.",
    "What are the benefits of regular exercise?",
    "Translate 'good morning' into French and Spanish.",
};

double resident_mb() {
  std::ifstream in("/proc/self/statm");
  long pages = 0, resident = 0;
  in >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1 << 20);
}

int64_t weight_bytes(const mnemo::ModelWeights& w) {
  int64_t bytes = w.embed_tokens.nbytes() + w.final_norm.nbytes();
  if (!w.lm_head.is_same(w.embed_tokens)) bytes += w.lm_head.nbytes();
  for (const auto& l : w.layers)
    for (const at::Tensor* t : {&l.input_norm, &l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.q_bias, &l.k_bias,
                                &l.v_bias, &l.q_norm, &l.k_norm, &l.post_attention_norm, &l.gate_proj, &l.up_proj,
                                &l.down_proj})
      if (t->defined()) bytes += t->nbytes();
  return bytes;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Accuracy of int8/int4 base weights against float32 (perplexity, greedy-token agreement); JSON lines."};
  std::string model_path;
  std::vector<std::string> quants = {"none", "int8", "int4"};
  int64_t max_tokens = 48, window = 512;
  app.add_option("--model", model_path, "model directory or GGUF file (default: the default model)");
  app.add_option("--quant", quants, "settings to measure; the first is the reference (none)")->delimiter(',');
  app.add_option("--max-tokens", max_tokens, "greedy tokens per prompt");
  app.add_option("--window", window, "perplexity window in tokens");
  CLI11_PARSE(app, argc, argv);
  if (model_path.empty()) model_path = mnemo::default_model_path();
  if (quants.empty() || quants.front() != "none") {
    std::cerr << "bench_quant: the first --quant must be none (the reference)\n";
    return 2;
  }

  c10::InferenceMode inference_mode;
  std::vector<std::vector<int32_t>> prompts, reference;
  for (const std::string& quant : quants) {
    std::cerr << "bench_quant: " << quant << "\n";
    const double before_mb = resident_mb();
    auto t0 = std::chrono::steady_clock::now();
    mnemo::BaseModel model = mnemo::open_base_model(model_path, {.quant = quant});
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double loaded_mb = resident_mb();
    const mnemo::Transformer& transformer = *model.transformer;

    std::vector<int32_t> text = model.tokenizer->encode(mnemo::retention_text(), /*add_special_tokens=*/true);
    const double ppl = mnemo::perplexities(transformer, text, {-1}, nullptr, window).at(0);

    if (prompts.empty())
      for (const std::string& p : kPrompts) prompts.push_back(mnemo::encode_chat(model, {{"user", p}}));
    std::vector<mnemo::GenerationRequest> requests;
    for (const auto& prompt : prompts) {
      mnemo::GenerationRequest r;
      r.prompt = prompt;
      r.params.max_new_tokens = max_tokens;
      r.params.stop_token_ids = model.stop_token_ids;
      requests.push_back(r);
    }
    auto results = mnemo::generate(transformer, *model.tokenizer, requests);
    int64_t equal_completions = 0, agreeing = 0, positions = 0;
    for (size_t i = 0; i < results.size(); ++i) {
      if (reference.size() < results.size()) {
        reference.push_back(results[i].tokens);
        continue;
      }
      equal_completions += results[i].tokens == reference[i];
      if (reference[i].empty()) continue;
      // Teacher-forced: the prompt and float32's completion in one prefill.
      std::vector<int32_t> sequence = prompts[i];
      sequence.insert(sequence.end(), reference[i].begin(), reference[i].end());
      mnemo::SequenceCache cache(transformer.config(), static_cast<int64_t>(sequence.size()), transformer.dtype(),
                                 transformer.device());
      at::Tensor logits = transformer.forward({.tokens = {sequence}, .caches = {&cache}, .all_logits = true});
      const int64_t n = static_cast<int64_t>(reference[i].size());
      at::Tensor chosen = logits.narrow(0, static_cast<int64_t>(prompts[i].size()) - 1, n).argmax(-1);
      at::Tensor want = at::tensor(std::vector<int64_t>(reference[i].begin(), reference[i].end()), at::kLong);
      agreeing += chosen.eq(want).sum().item<int64_t>();
      positions += n;
    }
    nlohmann::json row = {
        {"quant", quant},
        {"weight_mb", static_cast<double>(weight_bytes(transformer.weights())) / (1 << 20)},
        {"load_s", load_s},
        {"resident_mb_after_load", loaded_mb},
        {"resident_mb_before_load", before_mb},
        {"perplexity", ppl},
        {"perplexity_tokens", text.size()},
        {"prompts", kPrompts.size()},
        {"max_tokens", max_tokens},
    };
    if (quant != "none") {
      row["completions_equal_to_float32"] = equal_completions;
      row["teacher_forced_token_agreement"] = positions ? static_cast<double>(agreeing) / positions : 0.0;
      row["teacher_forced_positions"] = positions;
    }
    std::cout << row.dump() << std::endl;
  }
  return 0;
}
