// The personal-memory benchmark generator (`mnemo eval generate`): synthetic
// users, each with facts of the same kinds but their own values, mentioned in
// passing (at least twice, in different wordings) inside ordinary
// conversations; some facts change later (the newest value is right); and
// held-out questions in wordings of their own, from the dev or the test pool.
// Deterministic for a seed: the same options give byte-identical files.
#pragma once

#include "eval/interaction_log.h"
#include "eval/question.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mnemo {

enum class QuestionSplit { Dev, Test };

struct BenchmarkOptions {
  int64_t n_users = 24;
  uint64_t seed = 1;
  QuestionSplit split = QuestionSplit::Test;
  int64_t n_conversations = 22;  // per user
  int64_t n_kinds = 0;           // fact kinds per user, stated or not (0 = every kind)
  int64_t n_unstated = 2;        // of those, kinds never mentioned: their questions test abstention
  int64_t n_updates = 2;         // facts that change later
};

// One mention of a fact inside the logs (ground truth, for tests and reports).
struct FactMention {
  std::string fact;
  std::string value;
  bool stale = false;  // states a value that a later mention replaces
  int64_t conversation = 0;
  int64_t message = 0;  // index into that conversation's messages
  size_t statement = 0;  // which wording of the pool (statement, or update statement when `update`)
  bool update = false;
};

struct GeneratedUser {
  std::string id;
  std::vector<LogRecord> conversations;  // oldest first
  std::vector<FactMention> mentions;
};

struct Benchmark {
  BenchmarkOptions options;
  std::vector<GeneratedUser> users;
  std::vector<Question> questions;
  bool values_repeat = false;  // more users than some value pool holds
};

// Throws mnemo::Error for options out of range (no users, more unstated or
// changing facts than there are kinds).
Benchmark generate_benchmark(const BenchmarkOptions& options);

// Writes OUT/logs/<user>.jsonl and OUT/questions.jsonl (creating OUT).
// Throws mnemo::Error when a file cannot be written.
void write_benchmark(const Benchmark& benchmark, const std::string& out_dir);

std::string log_record_to_json(const LogRecord& record);

}  // namespace mnemo
