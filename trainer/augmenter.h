// Augmentation by a generator model: from each statement a user made, a
// few-shot prompt (three worked examples, none from any evaluation) asks the
// generator for the fact it states in the second person and a question the
// user might ask about it, with its answer. A generation is kept only when it
// keeps the statement's specific content (every name and number; at least
// half of its other uncommon words) and its question does not already give
// the answer away (and, when asked, it stays true to the statement).
// The generator is the base model unless the config names another (a larger
// one writes better data).
#pragma once

#include "trainer/training_data.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mnemo {

struct BaseModel;
class SequenceCache;
class Transformer;

// The KV cache of `tokens` (a few-shot prompt's worked examples, shared by
// every request generated after it), prefilled once.
SequenceCache prefill_prefix(const Transformer& model, const std::vector<int32_t>& tokens);

struct AugmentStats {
  int64_t statements = 0;
  int64_t generations = 0;
  int64_t kept_facts = 0;
  int64_t kept_pairs = 0;
  int64_t untrue = 0;  // kept the content but not true to the statement: dropped
};

// Generates for every statement that is not superseded, `samples` times
// (the first greedy, the rest at `temperature`, seeded), batched. `kinds`:
// the kinds of the user's named things (label_kinds; may be empty);
// `faithful`: also drop what is not true_to_statement.
std::vector<AugmentedPair> augment_statements(const BaseModel& generator, const std::vector<UserStatement>& statements,
                                              const std::map<std::string, std::string>& kinds, bool faithful,
                                              int64_t samples, double temperature, uint64_t seed,
                                              AugmentStats* stats = nullptr);

// The kind of each named thing in one word, read in the sentence that names
// it ("Ford Bronco" → "car", "Tidewater Insurance" → "company", "Logan" in
// "my brother Logan" → "person"), by a few-shot prompt to the generator
// (worked examples of its own, none from any evaluation), greedy and
// batched: what mark_replaced_by_kind (statement_changes.h) needs to see that
// a new car replaces the old one. A thing named in several sentences is
// labelled in the first.
std::map<std::string, std::string> label_kinds(const BaseModel& generator, const std::vector<NamedThing>& things);

// The filter alone (unit-tested): does `text` keep what `statement` says?
bool keeps_content(const UserStatement& statement, const std::string& text);

// The second filter (unit-tested): is `pair` true to `statement`? Its answer
// must not speak as the user ("My brother is Frankie"), deny what the
// statement says ("You did not graduate from …") or add a name or number the
// statement does not have ("… is worth $1.2 million"). Its question must ask
// about what the statement talks about: each noun after "my" is a word of the
// statement, or the kind of a thing the statement names (`kinds`), or a
// common word for that kind ("occupation" for a job). So "What is my name?"
// is not answered with an allergy, nor "What is my job?" with an employer.
bool true_to_statement(const UserStatement& statement, const std::map<std::string, std::string>& kinds,
                       const AugmentedPair& pair);

// Parses one generation ("…fact\nQuestion: …\nAnswer: …") into pairs; the
// few-shot prompt ends with "Fact:", so the text starts with the fact.
std::vector<AugmentedPair> parse_generation(const std::string& generation);

}  // namespace mnemo
