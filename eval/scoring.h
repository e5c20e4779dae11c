// Scoring one answer to one question. The rules (also in the README):
//  * recall: right when the answer contains one of `answers` (folded
//    substring match, answer_text.h).
//  * update: right when it contains one of `answers` and none of `stale`:
//    an answer that gives both the new and the old value ("Porto, not Lyon
//    any more") is wrong, since it does not say which one holds.
//  * abstain: right when the answer contains no fact value at all (neither
//    this user's nor any other user's, as whole phrases) and says it does not
//    know, by one of kNotKnowingPhrases (folded substrings).
//  * leakage, for every question: the fact values in the answer (whole
//    phrases) that belong to other users only. A value that this user also
//    has, for any fact, is not a leak.
#pragma once

#include "eval/question.h"

#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mnemo {

// Phrases that say "I do not know this", matched after folding (so curly and
// straight apostrophes are the same).
extern const std::span<const std::string_view> kNotKnowingPhrases;

bool says_not_knowing(std::string_view answer);

// Every fact value of a question set (answers and stale values) and the users
// who have it.
class FactValueOwners {
 public:
  explicit FactValueOwners(const std::vector<Question>& questions);
  // Values found in `answer` as whole phrases; all of them, or only those no
  // fact of `user` has.
  std::vector<std::string> values_in(std::string_view answer) const;
  std::vector<std::string> leaked_into(std::string_view answer, const std::string& user) const;

 private:
  std::map<std::string, std::set<std::string>> owners_;  // value as written -> users
};

struct AnswerScore {
  bool correct = false;
  bool gave_stale = false;           // update: a stale value is in the answer
  bool said_not_knowing = false;     // a not-knowing phrase is in the answer
  std::vector<std::string> leaked;   // other users' values in the answer
};

AnswerScore score_answer(const Question& question, std::string_view answer, const FactValueOwners& owners);

}  // namespace mnemo
