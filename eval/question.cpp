#include "eval/question.h"

#include "adapters/registry.h"  // validate_user_id
#include "eval/jsonl_file.h"
#include "model/error.h"

#include <nlohmann/json.hpp>

namespace mnemo {
namespace {

const nlohmann::json& required(const nlohmann::json& object, const char* field, const std::string& where) {
  auto it = object.find(field);
  if (it == object.end()) fail("{}: field \"{}\" is missing", where, field);
  return *it;
}

std::string non_empty_string(const nlohmann::json& value, const char* field, const std::string& where) {
  if (!value.is_string()) fail("{}: field \"{}\" must be a string, got {}", where, field, value.type_name());
  std::string text = value.get<std::string>();
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) fail("{}: field \"{}\" is empty", where, field);
  return text;
}

std::vector<std::string> string_list(const nlohmann::json& object, const char* field, const std::string& where) {
  std::vector<std::string> out;
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return out;
  if (!it->is_array()) fail("{}: field \"{}\" must be a list of strings, got {}", where, field, it->type_name());
  for (size_t i = 0; i < it->size(); ++i) {
    const nlohmann::json& item = (*it)[i];
    if (!item.is_string() || item.get<std::string>().find_first_not_of(" \t\r\n") == std::string::npos)
      fail("{}: field \"{}\"[{}] must be a non-empty string", where, field, i);
    out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace

const char* question_kind_name(QuestionKind kind) {
  switch (kind) {
    case QuestionKind::Recall: return "recall";
    case QuestionKind::Update: return "update";
    case QuestionKind::Abstain: return "abstain";
  }
  return "?";
}

Question parse_question(std::string_view json_line, const std::string& source, int64_t line) {
  const std::string where = source + ":" + std::to_string(line);
  const nlohmann::json object =
      parse_json_object(json_line, where, "question", JsonLimits{kMaxQuestionLineBytes, 16, kMaxQuestionLineBytes});

  Question question;
  question.user = non_empty_string(required(object, "user", where), "user", where);
  try {
    validate_user_id(question.user);
  } catch (const Error& e) {
    fail("{}: field \"user\": {}", where, e.what());
  }
  question.fact = non_empty_string(required(object, "fact", where), "fact", where);
  std::string kind = non_empty_string(required(object, "kind", where), "kind", where);
  if (kind == "recall") question.kind = QuestionKind::Recall;
  else if (kind == "update") question.kind = QuestionKind::Update;
  else if (kind == "abstain") question.kind = QuestionKind::Abstain;
  else fail("{}: field \"kind\" must be recall, update or abstain, got \"{}\"", where, kind);
  question.question = non_empty_string(required(object, "question", where), "question", where);
  question.answers = string_list(object, "answers", where);
  question.stale = string_list(object, "stale", where);

  if (question.kind == QuestionKind::Abstain && !question.answers.empty())
    fail("{}: an abstain question has no answers (the right answer is not to know), but \"answers\" has {}", where,
         question.answers.size());
  if (question.kind != QuestionKind::Abstain && question.answers.empty())
    fail("{}: a {} question needs at least one string in \"answers\"", where, kind);
  if (question.kind == QuestionKind::Update && question.stale.empty())
    fail("{}: an update question needs the old value(s) in \"stale\"", where);
  if (question.kind != QuestionKind::Update && !question.stale.empty())
    fail("{}: \"stale\" is only for update questions, this one is {}", where, kind);
  return question;
}

std::vector<Question> read_questions(const std::string& path) {
  std::vector<Question> questions;
  for_each_jsonl_line(
      path, "question file", kMaxQuestionLineBytes,
      [&](std::string_view text, int64_t line) { questions.push_back(parse_question(text, path, line)); },
      [&](int64_t line, uint64_t bytes) {
        fail_oversized_line(path, line, bytes, kMaxQuestionLineBytes, "question");
      });
  if (questions.empty()) fail("{}: the question file holds no questions", path);
  return questions;
}

std::string question_to_json(const Question& question) {
  nlohmann::ordered_json object;
  object["user"] = question.user;
  object["fact"] = question.fact;
  object["kind"] = question_kind_name(question.kind);
  object["question"] = question.question;
  object["answers"] = question.answers;
  if (question.kind == QuestionKind::Update) object["stale"] = question.stale;
  return object.dump();
}

}  // namespace mnemo
