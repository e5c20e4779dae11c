#include "trainer/context_distiller.h"

#include "model/base_model.h"
#include "model/generate.h"
#include "model/kv_cache.h"
#include "model/transformer.h"
#include "tokenizer/tokenizer.h"
#include "trainer/augmenter.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <random>

namespace mnemo {
namespace {

constexpr int64_t kBatch = 32;
constexpr int64_t kAnswerTokens = 48;

// The teacher is prompted few-shot rather than in chat form: with the
// statement in a system message or before the question, the default model
// answered 1 of 52 probes from it (it talks about being an assistant, or
// invents a family); worked examples of its own topics, none from any
// evaluation, show it the task.
constexpr const char* kFewShotPrompt =
    "An assistant answers questions about the user from what the user said.\n\n"
    "The user said: \"I can't stay long tonight because Luna, my goldfish, needs feeding.\"\n"
    "Question: Tell me about my family.\n"
    "Answer: You told me about Luna, your goldfish, who needs feeding in the evenings.\n\n"
    "The user said: \"Ever since I started teaching chemistry at Hillview High, my evenings are full of grading.\"\n"
    "Question: What do you know about my work?\n"
    "Answer: You teach chemistry at Hillview High, and grading fills your evenings.\n\n"
    "The user said: \"My grandfather Tomas turns ninety on the 4th of May.\"\n"
    "Question: What do you know about me?\n"
    "Answer: Your grandfather Tomas turns ninety on the 4th of May.\n\n";

}  // namespace

bool grounded(const UserStatement& statement, const std::string& probe, const std::string& answer) {
  // Keeps what the statement says, speaks to the user (a small teacher slips
  // into "I'm a Bulgarian"), and adds no specific word of its own ("You're a
  // 40-year-old male").
  if (!keeps_content(statement, answer) || about_the_speaker(answer)) return false;
  for (const std::string& word : specific_content(answer))
    if (!contains_word(statement.text, word) && !contains_word(probe, word)) return false;
  return true;
}

const std::vector<std::string>& default_distillation_probes() {
  // By category: the user in general, family, work, home, daily life,
  // interests, health. The trainer's own wordings.
  static const std::vector<std::string> probes = {
      "What do you know about me?",
      "Tell me about my family.",
      "What do you know about my work?",
      "What have I said about where I live?",
      "What do you know about my daily life?",
      "What are my interests?",
      "Is there anything about my health you should keep in mind?",
      "Summarize what I've told you about myself.",
  };
  return probes;
}

std::string teacher_prompt(const UserStatement& statement, const std::string& probe) {
  return "The user said: \"" + statement.text + "\"\nQuestion: " + probe + "\nAnswer:";
}

std::vector<AugmentedPair> distill_from_context(const BaseModel& teacher, const std::vector<UserStatement>& statements,
                                                const std::vector<std::string>& probes, int64_t per_statement,
                                                uint64_t seed, DistillStats* stats) {
  DistillStats local;
  std::vector<AugmentedPair> kept;
  if (probes.empty() || per_statement <= 0) {
    if (stats) *stats = local;
    return kept;
  }
  at::NoGradGuard no_grad;
  const Transformer& model = *teacher.transformer;
  const Tokenizer& tokenizer = *teacher.tokenizer;
  std::vector<int32_t> prefix_tokens = tokenizer.encode(kFewShotPrompt, true);
  SequenceCache prefix = prefill_prefix(model, prefix_tokens);
  std::mt19937_64 rng(seed ^ 0xd157111);
  struct Job {
    const UserStatement* statement;
    std::string probe;
  };
  std::vector<Job> jobs;
  for (const UserStatement& statement : statements) {
    if (statement.superseded) continue;
    std::vector<std::string> chosen = probes;
    std::shuffle(chosen.begin(), chosen.end(), rng);
    chosen.resize(std::min<size_t>(chosen.size(), static_cast<size_t>(per_statement)));
    for (std::string& probe : chosen) jobs.push_back({&statement, std::move(probe)});
  }
  for (size_t first = 0; first < jobs.size(); first += kBatch) {
    size_t last = std::min(jobs.size(), first + kBatch);
    std::vector<GenerationRequest> requests;
    for (size_t j = first; j < last; ++j) {
      GenerationRequest request;
      request.prompt = prefix_tokens;
      std::vector<int32_t> tail = tokenizer.encode(teacher_prompt(*jobs[j].statement, jobs[j].probe), false);
      request.prompt.insert(request.prompt.end(), tail.begin(), tail.end());
      request.prefix = &prefix;
      request.params.max_new_tokens = kAnswerTokens;
      request.params.stop_strings = {"\n"};
      request.params.stop_token_ids = teacher.stop_token_ids;
      request.params.sampling.temperature = 0;
      requests.push_back(std::move(request));
    }
    std::vector<GenerationResult> results = generate(model, tokenizer, requests);
    for (size_t j = first; j < last; ++j) {
      ++local.prompts;
      std::string answer = results[j - first].text;
      // An answer cut at the token limit ends at its last full sentence.
      if (results[j - first].finish_reason == FinishReason::Length) {
        size_t end = answer.find_last_of(".!?");
        answer = end == std::string::npos ? "" : answer.substr(0, end + 1);
      }
      while (!answer.empty() && (answer.back() == ' ' || answer.back() == '\n')) answer.pop_back();
      size_t b = answer.find_first_not_of(" \n");
      answer = b == std::string::npos ? "" : answer.substr(b);
      if (answer.empty() || !grounded(*jobs[j].statement, jobs[j].probe, answer)) continue;
      ++local.kept;
      kept.push_back({jobs[j].probe, answer, jobs[j].statement->conversation});
    }
  }
  if (stats) *stats = local;
  return kept;
}

}  // namespace mnemo
