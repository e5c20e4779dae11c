// The words the benchmark generator (benchmark_generator.h) builds users from:
// the kinds of personal fact, their value pools, the wordings in which a user
// states a fact, the two disjoint pools of question wordings (dev and test),
// and the ordinary conversations that the facts are tucked into.
//
// Placeholders in templates:
//   {value}    the fact's value as written in the pool ("Biscuit", "nurse")
//   {a_value}  the value with its indefinite article ("a nurse", "an architect")
//   {old}      (update statements) the value it replaces; {a_old} with its article
//   {attr}     the kind's attribute, when it has one ("dog" for a pet, "sister"
//              for a sibling); a question's {attr} is the user's own attribute
//
// The guarantees the tests check (tests/unit/test_benchmark_generator.cpp):
// every value is unique within its kind and across kinds, no value occurs in
// any conversation, question or other template, no question wording shares
// four consecutive words with a statement wording of its kind, and the dev
// and test question pools share no wording.
#pragma once

#include <string_view>
#include <vector>

namespace mnemo::benchmark {

struct FactValue {
  std::string_view text;                  // the canonical answer, as stated
  std::vector<std::string_view> aliases;  // other accepted answers ("14 March" for "March 14")
};

struct FactKind {
  std::string_view id;  // "pet", "home_city", ...: the question file's `fact`
  std::vector<FactValue> values;
  std::vector<std::string_view> attributes;  // empty when the kind has none
  // Sentences in which the user states the fact in passing (one sentence,
  // first person, ending in punctuation). At least four.
  std::vector<std::string_view> statements;
  // For a fact that can change: sentences that state the new {value}, some
  // naming the {old} one. Empty for kinds that never change.
  std::vector<std::string_view> update_statements;
  std::vector<std::string_view> dev_questions;   // at least three
  std::vector<std::string_view> test_questions;  // at least three
};

struct Exchange {
  std::string_view user;
  std::string_view assistant;
};

// An ordinary conversation about something unrelated to the user's facts.
struct Conversation {
  std::string_view topic;
  std::vector<Exchange> exchanges;  // one to three
};

const std::vector<FactKind>& fact_kinds();
const std::vector<Conversation>& conversations();

}  // namespace mnemo::benchmark
