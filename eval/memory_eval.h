// `mnemo eval run`: asks every question under each memory condition, greedily
// in chat form, scores the answers (scoring.h) and reports per condition and
// per fact kind. The conditions:
//   none          the base model, the question alone
//   context       the user's whole history in the prompt as one block of text
//                 before the question (oldest first; the oldest conversations
//                 are dropped, and counted, when it does not fit the context)
//   context-turns the history as earlier chat turns instead
//   bm25          the user's top-k log turns by BM25 (bm25_index.h) in the prompt
//   adapter       the user's adapter, the question alone
//   adapter+bm25  both
// The evaluation consumes adapters and never builds them, so adapters made by
// peft or anything else are scored the same way.
#pragma once

#include "eval/scoring.h"
#include "eval/question.h"
#include "eval/interaction_log.h"
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace mnemo {

enum class Condition { None, Context, ContextTurns, Bm25, Adapter, AdapterBm25 };

const char* condition_name(Condition condition);
// "none,context,bm25" -> conditions; throws mnemo::Error naming an unknown one.
std::vector<Condition> parse_conditions(const std::string& list);
bool uses_adapter(Condition condition);

struct EvalOptions {
  std::string logs;       // interaction logs (file or directory)
  std::string questions;  // question file
  std::vector<Condition> conditions;
  std::string out_dir;
  std::string model;      // "" = the default model
  std::string dtype = "float32";
  std::string device = "cpu";
  std::string adapters_dir;  // DIR/<user>/ PEFT adapters, or
  std::string registry;      // each user's live version
  std::vector<std::string> users;  // evaluate only these; empty = every user with questions
  int64_t bm25_k = 3;
  int64_t max_new_tokens = 48;
  int64_t batch_size = 16;
  bool retention = true;  // perplexity on the shipped generic text
  bool chart = true;      // chart.png through the project's Python (matplotlib)
  std::string python;     // interpreter for the chart; "" = MNEMO_PYTHON or the project's .venv
};

// One answer, as kept in answers.jsonl.
struct EvalAnswer {
  Condition condition = Condition::None;
  const Question* question = nullptr;
  std::string answer;
  AnswerScore score;
  int64_t prompt_tokens = 0;
  int64_t dropped_conversations = 0;  // context conditions: oldest conversations left out to fit
  double seconds = 0;                 // this question's share of its batch's wall time
};

// Runs the evaluation, writes OUT/answers.jsonl, OUT/summary.json (and
// OUT/chart.png) and prints the table. Returns the summary document. Throws
// mnemo::Error for bad inputs (question file, logs, a condition that needs
// adapters without --adapters/--registry, a user without an adapter).
nlohmann::ordered_json run_memory_eval(const EvalOptions& options);

}  // namespace mnemo
