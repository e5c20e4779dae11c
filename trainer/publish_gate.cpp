#include "trainer/publish_gate.h"

#include "adapters/adapter_slots.h"
#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "eval/retention.h"
#include "model/base_model.h"
#include "model/error.h"
#include "model/generate.h"
#include "model/transformer.h"
#include "tokenizer/tokenizer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

// Wordings of the gate's own: none is one of the data builder's probes
// (probe_wordings(), tested), so a question the adapter answers here was not
// learnt by heart in that form.
const std::vector<std::string>& wordings() {
  static const std::vector<std::string> list = {
      "Quick question about my {topic}: what do you recall?",
      "Can you recall what I said regarding my {topic}?",
      "My {topic} came up before. What do you remember?",
      "Do you still remember what I told you of my {topic}?",
  };
  return list;
}

// The gate's measurement and verdict as they go into a version's metrics.
json gate_json(const GateMeasurement& m, const GateVerdict& verdict, std::optional<int64_t> live_version) {
  json out{{"passed", verdict.passed},
           {"held_out_questions", m.candidate.n_questions},
           {"recall", m.candidate.recall},
           {"perplexity_ratio", m.candidate.perplexity_ratio()}};
  if (!verdict.passed) out["reason"] = verdict.reason;
  if (m.live)
    out["live"] = {{"version", *live_version}, {"recall", m.live->recall},
                   {"perplexity_ratio", m.live->perplexity_ratio()}};
  return out;
}

// The user's live adapter, read back from the registry; none when there is
// none or it no longer fits the model (then the gate compares with nothing).
std::optional<LoraAdapter> read_live_adapter(Registry& registry, const std::string& user, int64_t version,
                                             const ModelConfig& model_config) {
  fs::path dir = fs::temp_directory_path() / fmt::format("mnemo-train-live-{}-{}", ::getpid(), user);
  std::error_code ignored;
  fs::remove_all(dir, ignored);
  try {
    registry.export_version(user, dir.string(), version);
    LoraAdapter adapter = read_peft_adapter(dir.string());
    validate_against(adapter, model_config);
    fs::remove_all(dir, ignored);
    return adapter;
  } catch (const Error& e) {
    fs::remove_all(dir, ignored);
    spdlog::warn("train: user {}: live version {} cannot be compared with: {}", user, version, e.what());
    return std::nullopt;
  }
}

}  // namespace

std::vector<std::string> gate_wordings() { return wordings(); }

std::vector<GateQuestion> gate_questions(const std::vector<UserStatement>& statements, int64_t max_questions) {
  std::vector<GateQuestion> all;
  for (const UserStatement& statement : statements) {
    if (statement.superseded || statement.topics.empty()) continue;
    const std::string& topic = statement.topics.front();
    GateQuestion question;
    for (const std::string& word : statement.content)
      if (!contains_word(topic, word)) question.expected.push_back(word);
    if (question.expected.empty()) continue;
    question.question = replace_all(wordings()[all.size() % wordings().size()], "{topic}", topic);
    all.push_back(std::move(question));
  }
  if (max_questions <= 0 || static_cast<int64_t>(all.size()) <= max_questions) return all;
  // Evenly spread over all of them, the newest (last) always in.
  std::vector<GateQuestion> kept;
  const size_t n = all.size(), k = static_cast<size_t>(max_questions);
  for (size_t i = k; i-- > 0;) kept.push_back(all[n - 1 - i * n / k]);
  return kept;
}

GateMeasurement measure_for_gate(const BaseModel& model, const GateConfig& config,
                                 const std::vector<GateQuestion>& questions, const LoraAdapter& candidate,
                                 const LoraAdapter* live) {
  const Transformer& transformer = *model.transformer;
  c10::InferenceMode inference_mode;
  AdapterSlots slots(transformer.config(), live ? 2 : 1, transformer.dtype(), transformer.device());
  slots.load(0, candidate);
  if (live) slots.load(1, *live);
  const int32_t n_slots = live ? 2 : 1;

  std::vector<GenerationRequest> requests;
  for (int32_t slot = 0; slot < n_slots; ++slot)
    for (const GateQuestion& question : questions) {
      GenerationRequest request;
      request.prompt = encode_chat(model, {{"user", question.question}});
      request.params.max_new_tokens = config.answer_tokens;
      request.params.stop_token_ids = model.stop_token_ids;
      request.adapter_slot = slot;
      requests.push_back(std::move(request));
    }
  std::vector<GenerationResult> answers;
  if (!requests.empty()) answers = generate(transformer, *model.tokenizer, requests, {}, &slots);

  std::vector<int32_t> text = model.tokenizer->encode(retention_text(), /*add_special_tokens=*/true);
  if (config.retention_tokens > 0 && static_cast<int64_t>(text.size()) > config.retention_tokens)
    text.resize(static_cast<size_t>(config.retention_tokens));
  std::vector<int32_t> ppl_slots{-1, 0};
  if (live) ppl_slots.push_back(1);
  const std::vector<double> ppl = perplexities(transformer, text, ppl_slots, &slots);

  auto scores_of = [&](int32_t slot) {
    GateScores scores;
    scores.n_questions = static_cast<int64_t>(questions.size());
    int64_t right = 0;
    for (size_t q = 0; q < questions.size(); ++q) {
      const std::string& answer = answers[static_cast<size_t>(slot) * questions.size() + q].text;
      right += std::any_of(questions[q].expected.begin(), questions[q].expected.end(),
                           [&](const std::string& word) { return contains_word(answer, word); });
    }
    scores.recall = questions.empty() ? 0 : static_cast<double>(right) / static_cast<double>(questions.size());
    scores.base_perplexity = ppl[0];
    scores.perplexity = ppl[static_cast<size_t>(slot) + 1];
    return scores;
  };
  GateMeasurement measurement;
  measurement.candidate = scores_of(0);
  if (live) measurement.live = scores_of(1);
  return measurement;
}

GateVerdict judge(const GateConfig& config, const GateMeasurement& m) {
  const GateScores& c = m.candidate;
  if (c.n_questions > 0 && c.recall < config.min_recall)
    return {false, fmt::format("recall {:.2f} on {} held-out questions is below gate.min_recall {:.2f}", c.recall,
                               c.n_questions, config.min_recall)};
  if (!(c.perplexity_ratio() <= config.max_perplexity_ratio))
    return {false, fmt::format("perplexity {:.2f}x the base's on the generic text is above "
                               "gate.max_perplexity_ratio {:.2f}",
                               c.perplexity_ratio(), config.max_perplexity_ratio)};
  if (m.live) {
    const GateScores& l = *m.live;
    // One question's worth of slack beside the tolerance: on a handful of
    // questions one answer more or less is noise, not a worse adapter.
    const double slack = c.n_questions > 0 ? 1.0 / static_cast<double>(c.n_questions) : 0.0;
    if (c.n_questions > 0 && c.recall < l.recall - config.recall_tolerance - slack - 1e-9)
      return {false, fmt::format("recall {:.2f} is worse than the live version's {:.2f} (gate.recall_tolerance {:.2f} "
                                 "and one question of {})",
                                 c.recall, l.recall, config.recall_tolerance, c.n_questions)};
    if (c.perplexity_ratio() > l.perplexity_ratio() + config.perplexity_tolerance)
      return {false, fmt::format("perplexity {:.2f}x the base's is worse than the live version's {:.2f}x "
                                 "(gate.perplexity_tolerance {:.2f})",
                                 c.perplexity_ratio(), l.perplexity_ratio(), config.perplexity_tolerance)};
  }
  return {};
}

GateOutcome gate_new_adapter(const BaseModel& model, const GateConfig& config, Registry& registry,
                             const std::string& user, const std::vector<UserStatement>& statements,
                             const LoraAdapter& adapter) {
  const std::optional<int64_t> live = registry.live_version(user);
  std::optional<LoraAdapter> live_adapter;
  if (live) live_adapter = read_live_adapter(registry, user, *live, model.transformer->config());
  const auto started = std::chrono::steady_clock::now();
  const GateMeasurement measured = measure_for_gate(model, config, gate_questions(statements, config.max_questions),
                                                    adapter, live_adapter ? &*live_adapter : nullptr);
  GateOutcome outcome;
  outcome.verdict = judge(config, measured);
  outcome.record = gate_json(measured, outcome.verdict, live_adapter ? live : std::nullopt);
  outcome.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  spdlog::info("train: user {}: gate {}: recall {:.2f} on {} held-out questions, perplexity {:.3f}x the base{}{}", user,
               outcome.verdict.passed ? "passed" : "failed", measured.candidate.recall, measured.candidate.n_questions,
               measured.candidate.perplexity_ratio(),
               measured.live ? fmt::format(" (live version {}: {:.2f}, {:.3f}x)", *live, measured.live->recall,
                                           measured.live->perplexity_ratio())
                             : "",
               outcome.verdict.passed ? "" : ": " + outcome.verdict.reason);
  return outcome;
}

}  // namespace mnemo
