// The question file: what `mnemo eval run` asks, and the contract that
// generated sets, hand-written sets and other tools share. JSONL, one question
// per line:
//   {"user": "alice", "fact": "pet", "kind": "recall" | "update" | "abstain",
//    "question": "…", "answers": ["Biscuit"], "stale": ["Rex"]}
// `answers`: accepted strings (matched as folded substrings, answer_text.h);
// required and non-empty for recall and update, empty or absent for abstain.
// `stale`: for update questions only (required there), values that make an
// answer wrong. Other fields are ignored, so a set may carry its own ids.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo {

// A question line longer than this is refused (real ones are under 1 KiB).
inline constexpr uint64_t kMaxQuestionLineBytes = 1ull << 20;

enum class QuestionKind { Recall, Update, Abstain };

const char* question_kind_name(QuestionKind kind);  // "recall", "update", "abstain"

struct Question {
  std::string user;
  std::string fact;  // the kind of fact asked about ("pet", "home_city", …)
  QuestionKind kind = QuestionKind::Recall;
  std::string question;
  std::vector<std::string> answers;
  std::vector<std::string> stale;
};

// Parses one line of a question file. Throws mnemo::Error "SOURCE:LINE: …"
// naming the field that is missing, mistyped or invalid (a user id outside
// [A-Za-z0-9._-]{1,128}, an unknown kind, an empty string, answers on an
// abstain question, stale on one that is not an update).
Question parse_question(std::string_view json_line, const std::string& source, int64_t line);

// Reads a question file; blank lines are skipped. Throws mnemo::Error naming
// the file and line of the first bad question, or a file with none.
std::vector<Question> read_questions(const std::string& path);

// One JSONL line (no newline), in the field order above.
std::string question_to_json(const Question& question);

}  // namespace mnemo
