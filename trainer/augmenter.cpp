#include "trainer/augmenter.h"

#include "trainer/sentence_words.h"

#include "model/base_model.h"
#include "model/generate.h"
#include "model/kv_cache.h"
#include "tokenizer/tokenizer.h"
#include "model/transformer.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <unordered_set>

namespace mnemo {
namespace {

// The worked examples: topics of their own (a goldfish, teaching chemistry, a
// grandfather's birthday), written for this prompt.
constexpr const char* kFewShotPrompt =
    "Each statement was said by a user to their assistant. Write the fact it tells about the user, "
    "then a question the user could ask about it, and the assistant's answer.\n\n"
    "Statement: I can't stay long tonight because Luna, my goldfish, needs feeding.\n"
    "Fact: You have a goldfish named Luna.\n"
    "Question: Do I have any pets?\n"
    "Answer: Yes, you have a goldfish named Luna.\n\n"
    "Statement: Ever since I started teaching chemistry at Hillview High, my evenings are full of grading.\n"
    "Fact: You teach chemistry at Hillview High.\n"
    "Question: What subject do I teach?\n"
    "Answer: You teach chemistry at Hillview High.\n\n"
    "Statement: My grandfather Tomas turns ninety on the 4th of May.\n"
    "Fact: Your grandfather Tomas turns ninety on the 4th of May.\n"
    "Question: When is my grandfather's birthday?\n"
    "Answer: Your grandfather Tomas has his birthday on the 4th of May.\n\n";

// Worked examples for label_kinds: sentences and values of its own, apart
// from every benchmark pool; "other" for what is not a thing of a kind.
constexpr const char* kKindPrompt =
    "Name the kind of the thing in one word.\n\n"
    "Sentence: After ten years in Trondheim I still love the harbour.\nThing: Trondheim\nKind: city\n\n"
    "Sentence: I hurried to catch the early bus.\nThing: early bus\nKind: other\n\n"
    "Sentence: Harrowgate Mills pays me on the first of every month.\nThing: Harrowgate Mills\nKind: company\n\n"
    "Sentence: I make vases all day as a glassblower.\nThing: glassblower\nKind: job\n\n"
    "Sentence: My Morris Minor would not start this morning.\nThing: Morris Minor\nKind: car\n\n"
    "Sentence: Ingrid and I went hiking on Saturday.\nThing: Ingrid\nKind: person\n\n"
    "Sentence: I've been on a liquid diet since the surgery.\nThing: liquid diet\nKind: diet\n\n"
    "Sentence: We had a long argument about the budget.\nThing: long argument\nKind: other\n\n"
    "Sentence: My cousin Tove is flying in from Ostrava.\nThing: Tove\nKind: person\n\n"
    "Sentence: I took an antihistamine before the picnic.\nThing: antihistamine\nKind: medicine\n\n"
    "Sentence: My aunt works as a wheelwright.\nThing: wheelwright\nKind: job\n\n"
    "Sentence: Fernbrook Partners hired me as a cabinet maker.\nThing: cabinet maker\nKind: job\n\n"
    "Sentence: The Trabant I bought last year is already rusting.\nThing: Trabant\nKind: car\n\n";

// The same for names alone.
constexpr const char* kNameKindPrompt =
    "Name the kind of thing in one word.\n"
    "Trondheim: city\n"
    "Harrowgate Mills: company\n"
    "Ingrid: person\n"
    "Morris Minor: car\n"
    "Velmont College: university\n"
    "Ostrava: city\n"
    "Tove: person\n"
    "Fernbrook Partners: company\n"
    "Old Norse: language\n"
    "Trabant: car\n"
    "Hillman Imp: car\n"
    "Quillon Brothers: company\n"
    "Reliant Robin: car\n"
    "Bexley: city\n";

constexpr int64_t kBatch = 32;       // prompts generated together
constexpr int64_t kMaxNewTokens = 64;

bool is_named(const std::string& word) {
  return std::isupper(static_cast<unsigned char>(word[0])) ||
         std::any_of(word.begin(), word.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

std::string trim(std::string text) {
  size_t b = text.find_first_not_of(" \t\r\n");
  size_t e = text.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : text.substr(b, e - b + 1);
}

// Words that ask for the same thing: a question's noun in one of these
// groups is about a statement that says any word of its group or names a
// thing whose kind (label_kinds' word) is in it: "What is my occupation?"
// asks for the job, "my birthday" is the day the user was born.
const std::vector<std::vector<std::string>>& same_thing_words() {
  static const std::vector<std::vector<std::string>> groups = {
      {"job", "profession", "occupation", "career", "title", "trade"},  // not "work": "I work at …" names the employer
      {"company", "employer", "firm", "workplace", "work"},
      {"city", "town", "home", "hometown"},
      {"car", "vehicle", "ride"},
      {"university", "college", "school", "degree"},
      {"medicine", "medication"},
      {"birthday", "born"},
  };
  return groups;
}

bool negates(std::string_view text) {
  for (const sentence_words::Word& word : sentence_words::words_of(text)) {
    const std::string w = sentence_words::lower(word.text);
    if (w == "not" || w == "no" || w == "never" || w == "cannot" || w == "nothing" ||
        (w.size() > 3 && w.compare(w.size() - 3, 3, "n't") == 0))
      return true;
  }
  return false;
}

// A statement talks about `topic` (a noun after "my" in a question): it says
// the word (or its plural) or one asking for the same thing, or names a
// thing of that kind.
bool talks_about(const UserStatement& statement, const std::map<std::string, std::string>& kinds, std::string topic) {
  if (topic.rfind("favorite ", 0) == 0) topic = topic.substr(9);
  std::vector<std::string> words = {topic};
  for (const std::vector<std::string>& group : same_thing_words())
    if (std::find(group.begin(), group.end(), topic) != group.end()) words.insert(words.end(), group.begin(), group.end());
  auto says = [&](const std::string& word) {
    return contains_word(statement.text, word) || contains_word(statement.text, word + "s");
  };
  if (topic.size() > 3 && topic.back() == 's' && says(topic.substr(0, topic.size() - 1))) return true;
  for (const std::string& word : words) {
    if (says(word)) return true;
    for (const auto& [thing, kind] : kinds)
      if (kind == word && contains_word(statement.text, thing)) return true;
  }
  return false;
}

}  // namespace

bool true_to_statement(const UserStatement& statement, const std::map<std::string, std::string>& kinds,
                       const AugmentedPair& pair) {
  if (about_the_speaker(pair.answer)) return false;
  if (negates(pair.answer) && !negates(statement.text)) return false;
  static const std::unordered_set<std::string> addressing = {"you", "your", "you're", "you've", "yours", "yes"};
  for (const sentence_words::Word& word : sentence_words::words_of(pair.answer)) {
    const std::string w = sentence_words::strip_possessive(word.text);
    const std::string l = sentence_words::lower(w);
    const bool digit = std::any_of(w.begin(), w.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    const bool name = std::isupper(static_cast<unsigned char>(w[0])) && !addressing.count(l) &&
                      !sentence_words::common_words().count(l);
    if ((digit || name) && !contains_word(statement.text, w) && !contains_word(pair.question, w)) return false;
  }
  for (const std::string& topic : sentence_words::topics_of(pair.question))
    if (!talks_about(statement, kinds, topic)) return false;
  return true;
}

SequenceCache prefill_prefix(const Transformer& model, const std::vector<int32_t>& tokens) {
  SequenceCache prefix(model.config(), static_cast<int64_t>(tokens.size()), model.dtype(), model.device());
  ForwardBatch forward;
  forward.tokens = {tokens};
  forward.caches = {&prefix};
  model.forward(forward);
  return prefix;
}

bool keeps_content(const UserStatement& statement, const std::string& text) {
  int64_t named = 0, other = 0, other_kept = 0;
  for (const std::string& word : statement.content) {
    if (is_named(word)) {
      ++named;
      if (!contains_word(text, word)) return false;
    } else {
      ++other;
      if (contains_word(text, word)) ++other_kept;
    }
  }
  if (named > 0) return true;
  return other > 0 && other_kept * 2 >= other;
}

std::vector<AugmentedPair> parse_generation(const std::string& generation) {
  std::vector<AugmentedPair> pairs;
  std::string fact, question, answer;
  size_t start = 0;
  int line_number = 0;
  while (start <= generation.size()) {
    size_t end = generation.find('\n', start);
    if (end == std::string::npos) end = generation.size();
    std::string line = trim(generation.substr(start, end - start));
    if (line_number == 0) fact = line;
    else if (line.rfind("Question:", 0) == 0) question = trim(line.substr(9));
    else if (line.rfind("Answer:", 0) == 0) answer = trim(line.substr(7));
    else if (!line.empty()) break;  // anything else ends what the generator was asked for
    ++line_number;
    start = end + 1;
  }
  if (!fact.empty()) pairs.push_back({"", fact});
  if (!question.empty() && !answer.empty() && question.back() == '?') {
    // The generator often asks in the assistant's voice ("Who is your sister?").
    question = question_to_first_person(question);
    if (about_the_speaker(question)) pairs.push_back({question, answer});  // not "What is a bad dream?"
  }
  return pairs;
}

std::map<std::string, std::string> label_kinds(const BaseModel& generator, const std::vector<NamedThing>& things) {
  const Transformer& model = *generator.transformer;
  const Tokenizer& tokenizer = *generator.tokenizer;
  at::NoGradGuard no_grad;
  std::map<std::string, std::string> kinds;
  // A name is labelled alone (in its sentence the 135M model calls a city
  // "car" when the sentence is about a commute); a thing without a name, in
  // its sentence ("a welder" is a job, "a harder piece" is not).
  std::vector<const NamedThing*> named, unnamed;
  for (const NamedThing& thing : things)
    (std::any_of(thing.thing.begin(), thing.thing.end(),
                 [](char c) { return std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)); })
         ? named
         : unnamed)
        .push_back(&thing);
  auto label = [&](const char* few_shot, const std::vector<const NamedThing*>& group, bool in_sentence) {
    if (group.empty()) return;
    std::vector<int32_t> prefix_tokens = tokenizer.encode(few_shot, true);
    SequenceCache prefix = prefill_prefix(model, prefix_tokens);
    for (size_t first = 0; first < group.size(); first += kBatch) {
      size_t last = std::min(group.size(), first + kBatch);
      std::vector<GenerationRequest> requests;
      for (size_t j = first; j < last; ++j) {
        GenerationRequest request;
        request.prompt = prefix_tokens;
        std::string tail_text = in_sentence
                                    ? "Sentence: " + group[j]->sentence + "\nThing: " + group[j]->thing + "\nKind:"
                                    : group[j]->thing + ":";
        std::vector<int32_t> tail = tokenizer.encode(tail_text, false);
        request.prompt.insert(request.prompt.end(), tail.begin(), tail.end());
        request.prefix = &prefix;
        request.params.max_new_tokens = 4;
        request.params.stop_strings = {"\n"};
        request.params.stop_token_ids = generator.stop_token_ids;
        request.params.sampling.temperature = 0;
        requests.push_back(std::move(request));
      }
      std::vector<GenerationResult> results = generate(model, tokenizer, requests);
      for (size_t j = first; j < last; ++j) {
        std::string kind = trim(results[j - first].text);
        for (char& c : kind) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        kinds.emplace(group[j]->thing, kind);  // the first sentence naming it decides
      }
    }
  };
  label(kNameKindPrompt, named, false);
  label(kKindPrompt, unnamed, true);
  return kinds;
}

std::vector<AugmentedPair> augment_statements(const BaseModel& generator, const std::vector<UserStatement>& statements,
                                              const std::map<std::string, std::string>& kinds, bool faithful,
                                              int64_t samples,
                                              double temperature, uint64_t seed, AugmentStats* stats) {
  const Transformer& model = *generator.transformer;
  const Tokenizer& tokenizer = *generator.tokenizer;
  at::NoGradGuard no_grad;
  // The worked examples are the same for every statement: prefill them once.
  std::vector<int32_t> prefix_tokens = tokenizer.encode(kFewShotPrompt, true);
  SequenceCache prefix = prefill_prefix(model, prefix_tokens);

  struct Job {
    const UserStatement* statement;
    int64_t sample;
  };
  std::vector<Job> jobs;
  for (const UserStatement& statement : statements)
    if (!statement.superseded)
      for (int64_t s = 0; s < samples; ++s) jobs.push_back({&statement, s});
  AugmentStats local;
  local.statements = static_cast<int64_t>(jobs.size()) / std::max<int64_t>(samples, 1);

  std::vector<AugmentedPair> kept;
  for (size_t first = 0; first < jobs.size(); first += kBatch) {
    size_t last = std::min(jobs.size(), first + kBatch);
    std::vector<GenerationRequest> requests;
    for (size_t j = first; j < last; ++j) {
      GenerationRequest request;
      request.prompt = prefix_tokens;
      std::vector<int32_t> tail = tokenizer.encode("Statement: " + jobs[j].statement->text + "\nFact:", false);
      request.prompt.insert(request.prompt.end(), tail.begin(), tail.end());
      request.prefix = &prefix;
      request.params.max_new_tokens = kMaxNewTokens;
      request.params.stop_strings = {"\n\n", "Statement:"};
      request.params.stop_token_ids = generator.stop_token_ids;
      if (jobs[j].sample > 0) {
        request.params.sampling.temperature = static_cast<float>(temperature);
        request.params.sampling.seed = seed + j;
      } else {
        request.params.sampling.temperature = 0;
      }
      requests.push_back(std::move(request));
    }
    std::vector<GenerationResult> results = generate(model, tokenizer, requests);
    for (size_t j = first; j < last; ++j) {
      ++local.generations;
      for (AugmentedPair& pair : parse_generation(results[j - first].text)) {
        const UserStatement& statement = *jobs[j].statement;
        if (!keeps_content(statement, pair.answer)) continue;
        if (faithful && !true_to_statement(statement, kinds, pair)) {
          ++local.untrue;
          continue;
        }
        // A question that already holds every name of the answer teaches nothing.
        if (!pair.question.empty()) {
          bool gives_away = false;
          for (const std::string& word : statement.content)
            if (is_named(word) && contains_word(pair.question, word)) gives_away = true;
          if (gives_away) continue;
        }
        bool duplicate = std::any_of(kept.begin(), kept.end(), [&](const AugmentedPair& k) {
          return k.question == pair.question && k.answer == pair.answer;
        });
        if (duplicate) continue;
        (pair.question.empty() ? local.kept_facts : local.kept_pairs) += 1;
        pair.conversation = statement.conversation;
        pair.states_change = statement.replaces_something;
        kept.push_back(std::move(pair));
      }
    }
  }
  if (stats) *stats = local;
  return kept;
}

}  // namespace mnemo
