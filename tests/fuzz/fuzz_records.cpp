// Fuzz targets for line-oriented user data: interaction-log JSONL records and
// evaluation question lines.
#include "eval/interaction_log.h"
#include "eval/question.h"
#include "fuzz/fuzz_target.h"
#include "tokenizer/utf8.h"

namespace mnemo::fuzz {
namespace {

MNEMO_FUZZ_TARGET(interaction_log) {
  LogRecord record;
  if (!parsed("parse_log_record", [&] { record = parse_log_record(data, "logs.jsonl", 1); })) return;
  if (record.user.empty() || record.messages.empty()) violation("log record: accepted without a user or messages");
  for (const ChatMessage& message : record.messages)
    if (first_invalid_utf8(message.content)) violation("log record: accepted invalid UTF-8 content");
}

MNEMO_FUZZ_TARGET(questions) {
  Question question;
  if (!parsed("parse_question", [&] { question = parse_question(data, "questions.jsonl", 1); })) return;
  if (question.user.empty() || question.question.empty()) violation("question: accepted without a user or question");
  if (question.kind != QuestionKind::Abstain && question.answers.empty())
    violation("question: accepted a question with no answers");
}

}  // namespace
}  // namespace mnemo::fuzz
