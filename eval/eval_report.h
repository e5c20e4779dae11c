// What `mnemo eval run` leaves behind: the metrics per condition and per fact
// kind, a table on the terminal, OUT/summary.json, OUT/answers.jsonl (every
// answer, for a person to read) and OUT/chart.png.
#pragma once

#include "eval/memory_eval.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mnemo {

struct RetentionReport {
  bool measured = false;
  int64_t n_tokens = 0;
  double base_ppl = 0;
  std::map<std::string, double> adapter_ppl;  // per user
};

struct ReportInputs {
  const EvalOptions* options = nullptr;
  std::string model_path;
  std::string model_fingerprint;
  std::vector<std::string> users;
  size_t n_questions = 0;
  int64_t logs_skipped = 0;
  double seconds_total = 0;
};

// Rates of one condition over a set of answers (fractions; -1 where a kind of
// question is absent).
struct ConditionMetrics {
  int64_t n_recall = 0, n_update = 0, n_abstain = 0, n_answers = 0;
  double recall = -1, update = -1, abstention = -1, leakage = 0;
  double prompt_tokens = 0, seconds = 0;
  int64_t n_truncated = 0;  // answers whose prompt dropped old conversations
};

ConditionMetrics metrics_of(const std::vector<const EvalAnswer*>& answers);

// Writes the files, prints the table and returns summary.json's document.
nlohmann::ordered_json write_eval_report(const ReportInputs& inputs, const std::vector<EvalAnswer>& answers,
                                 const RetentionReport& retention);

}  // namespace mnemo
