#include "eval/scoring.h"

#include "eval/answer_text.h"

#include <array>

namespace mnemo {
namespace {

constexpr std::array<std::string_view, 52> kPhrases = {
    "don't know", "do not know", "dont know", "not know", "no way to know", "not sure",
    "don't have", "do not have", "i have no", "no information", "no record", "no details",
    "not aware", "unknown", "not something i",
    "haven't told", "have not told", "didn't tell", "did not tell", "never told", "not been told", "wasn't told",
    "haven't mentioned", "have not mentioned", "didn't mention", "did not mention", "never mentioned",
    "not mentioned", "haven't said", "didn't say", "haven't shared", "didn't share", "not shared",
    "haven't provided", "didn't provide", "not provided", "not specified",
    "can't recall", "cannot recall", "don't recall", "do not recall", "can't remember", "cannot remember",
    "don't remember", "do not remember", "no memory", "can't tell", "cannot tell", "unable to",
    "not able to", "can't access", "cannot access"};

}  // namespace

const std::span<const std::string_view> kNotKnowingPhrases{kPhrases};

bool says_not_knowing(std::string_view answer) {
  const std::string folded = fold_for_matching(answer);
  for (std::string_view phrase : kNotKnowingPhrases)
    if (folded.find(fold_for_matching(phrase)) != std::string::npos) return true;
  return false;
}

FactValueOwners::FactValueOwners(const std::vector<Question>& questions) {
  for (const Question& question : questions) {
    for (const std::string& value : question.answers) owners_[value].insert(question.user);
    for (const std::string& value : question.stale) owners_[value].insert(question.user);
  }
}

std::vector<std::string> FactValueOwners::values_in(std::string_view answer) const {
  std::vector<std::string> found;
  for (const auto& [value, users] : owners_)
    if (contains_folded_phrase(answer, value)) found.push_back(value);
  return found;
}

std::vector<std::string> FactValueOwners::leaked_into(std::string_view answer, const std::string& user) const {
  std::vector<std::string> leaked;
  for (const auto& [value, users] : owners_)
    if (!users.contains(user) && contains_folded_phrase(answer, value)) leaked.push_back(value);
  return leaked;
}

AnswerScore score_answer(const Question& question, std::string_view answer, const FactValueOwners& owners) {
  AnswerScore score;
  auto any_in = [&](const std::vector<std::string>& values) {
    for (const std::string& value : values)
      if (contains_folded(answer, value)) return true;
    return false;
  };
  score.said_not_knowing = says_not_knowing(answer);
  score.leaked = owners.leaked_into(answer, question.user);
  switch (question.kind) {
    case QuestionKind::Recall:
      score.correct = any_in(question.answers);
      break;
    case QuestionKind::Update:
      score.gave_stale = any_in(question.stale);
      score.correct = any_in(question.answers) && !score.gave_stale;
      break;
    case QuestionKind::Abstain:
      score.correct = score.said_not_knowing && owners.values_in(answer).empty();
      break;
  }
  return score;
}

}  // namespace mnemo
