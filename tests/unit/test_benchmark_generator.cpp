// The benchmark generator's guarantees: question wordings never reuse the
// statements' wording, the dev and test pools are disjoint, every fact is
// stated at least twice in different wordings inside ordinary conversations,
// changed facts are stated old-then-new, users differ, no fact value hides in
// the ordinary text, and a seed gives the same benchmark.
#include "eval/answer_text.h"
#include "eval/benchmark_content.h"
#include "eval/benchmark_generator.h"
#include "support/reference.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

namespace mnemo {
namespace {

using benchmark::FactKind;

// Lowercased words with placeholders counted as words and punctuation dropped.
std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '{' || c == '}' || c == '_' || c == '\'') {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      words.push_back(word);
      word.clear();
    }
  }
  if (!word.empty()) words.push_back(word);
  return words;
}

std::set<std::string> four_grams(std::string_view text) {
  std::vector<std::string> words = words_of(text);
  std::set<std::string> grams;
  for (size_t i = 0; i + 4 <= words.size(); ++i)
    grams.insert(words[i] + " " + words[i + 1] + " " + words[i + 2] + " " + words[i + 3]);
  return grams;
}

// Each value with its aliases: one group per fact value.
std::vector<std::vector<std::string>> value_groups() {
  std::vector<std::vector<std::string>> groups;
  for (const FactKind& kind : benchmark::fact_kinds())
    for (const auto& value : kind.values) {
      groups.push_back({std::string(value.text)});
      for (auto alias : value.aliases) groups.back().emplace_back(alias);
    }
  return groups;
}

TEST(BenchmarkContent, HasAtLeastTwelveKindsWithEnoughWordings) {
  const auto& kinds = benchmark::fact_kinds();
  EXPECT_GE(kinds.size(), 12u);
  for (const FactKind& kind : kinds) {
    EXPECT_GE(kind.values.size(), 24u) << kind.id;
    EXPECT_GE(kind.statements.size(), 4u) << kind.id;
    EXPECT_GE(kind.dev_questions.size(), 3u) << kind.id;
    EXPECT_GE(kind.test_questions.size(), 3u) << kind.id;
  }
  EXPECT_GE(benchmark::conversations().size(), 40u);
}

TEST(BenchmarkContent, QuestionWordingsNeverReuseStatementWordings) {
  for (const FactKind& kind : benchmark::fact_kinds()) {
    std::set<std::string> statement_grams;
    for (auto s : kind.statements) statement_grams.merge(four_grams(s));
    for (auto s : kind.update_statements) statement_grams.merge(four_grams(s));
    for (const auto* pool : {&kind.dev_questions, &kind.test_questions})
      for (auto question : *pool)
        for (const std::string& gram : four_grams(question))
          EXPECT_FALSE(statement_grams.contains(gram))
              << kind.id << ": question \"" << question << "\" repeats \"" << gram << "\" of a statement";
  }
}

TEST(BenchmarkContent, DevAndTestQuestionPoolsAreDisjoint) {
  for (const FactKind& kind : benchmark::fact_kinds()) {
    std::set<std::string> dev;
    for (auto q : kind.dev_questions) dev.insert(fold_for_matching(q));
    for (auto q : kind.test_questions) EXPECT_FALSE(dev.contains(fold_for_matching(q))) << kind.id << ": " << q;
  }
}

TEST(BenchmarkContent, ValuesAreUniqueAndNeverInTheOrdinaryText) {
  std::vector<std::vector<std::string>> groups = value_groups();
  std::set<std::string> seen;
  for (const auto& group : groups)
    for (const std::string& value : group) EXPECT_TRUE(seen.insert(fold_for_matching(value)).second) << value;
  // No value (or alias) of one fact value is a phrase inside another's: an
  // answer naming one must never count as naming the other.
  for (size_t a = 0; a < groups.size(); ++a)
    for (size_t b = 0; b < groups.size(); ++b)
      if (a != b)
        for (const std::string& needle : groups[a])
          for (const std::string& hay : groups[b])
            EXPECT_FALSE(contains_folded_phrase(hay, needle)) << "\"" << needle << "\" is inside \"" << hay << "\"";
  std::string text;
  for (const auto& conversation : benchmark::conversations())
    for (const auto& exchange : conversation.exchanges) text += std::string(exchange.user) + "\n" + std::string(exchange.assistant) + "\n";
  for (const FactKind& kind : benchmark::fact_kinds()) {
    for (auto s : kind.statements) text += std::string(s) + "\n";
    for (auto s : kind.update_statements) text += std::string(s) + "\n";
    for (auto s : kind.dev_questions) text += std::string(s) + "\n";
    for (auto s : kind.test_questions) text += std::string(s) + "\n";
  }
  for (const auto& group : groups)
    for (const std::string& value : group) EXPECT_FALSE(contains_folded_phrase(text, value)) << value;
}

BenchmarkOptions small(uint64_t seed, QuestionSplit split = QuestionSplit::Test) {
  BenchmarkOptions options;
  options.n_users = 6;
  options.seed = seed;
  options.split = split;
  return options;
}

TEST(BenchmarkGenerator, StatesEveryFactTwiceInDifferentWordingsAndMostTurnsCarryNone) {
  Benchmark benchmark = generate_benchmark(small(7));
  ASSERT_EQ(benchmark.users.size(), 6u);
  for (const GeneratedUser& user : benchmark.users) {
    std::map<std::pair<std::string, std::string>, std::set<std::pair<bool, size_t>>> wordings;  // (fact, value)
    std::set<std::pair<int64_t, int64_t>> fact_turns;
    for (const FactMention& m : user.mentions) {
      wordings[{m.fact, m.value}].insert({m.update, m.statement});
      fact_turns.insert({m.conversation, m.message});
      // The sentence really is in that message, with its value.
      const std::string& content = user.conversations.at(m.conversation).messages.at(m.message).content;
      EXPECT_TRUE(contains_folded(content, m.value)) << content;
    }
    for (const auto& [fact_value, distinct] : wordings)
      EXPECT_GE(distinct.size(), 2u) << user.id << " " << fact_value.first << "=" << fact_value.second;
    int64_t turns = 0;
    for (const LogRecord& record : user.conversations) turns += static_cast<int64_t>(record.messages.size());
    EXPECT_LT(static_cast<double>(fact_turns.size()), 0.5 * turns) << user.id;
  }
}

TEST(BenchmarkGenerator, ChangedFactsAreStatedOldThenNewAndAskedAsUpdates) {
  Benchmark benchmark = generate_benchmark(small(3));
  int64_t updates = 0;
  for (const Question& question : benchmark.questions) {
    if (question.kind != QuestionKind::Update) continue;
    ++updates;
    const GeneratedUser& user = *std::find_if(benchmark.users.begin(), benchmark.users.end(),
                                              [&](const GeneratedUser& u) { return u.id == question.user; });
    int64_t last_old = -1, first_new = std::numeric_limits<int64_t>::max();
    for (const FactMention& m : user.mentions) {
      if (m.fact != question.fact) continue;
      int64_t when = user.conversations.at(m.conversation).timestamp_seconds;
      if (m.stale) {
        EXPECT_EQ(m.value, question.stale.front());
        last_old = std::max(last_old, when);
      } else {
        EXPECT_EQ(m.value, question.answers.front());
        first_new = std::min(first_new, when);
      }
    }
    EXPECT_LT(last_old, first_new) << question.user << " " << question.fact;
    EXPECT_GE(last_old, 0);
  }
  EXPECT_EQ(updates, 6 * 2);
}

TEST(BenchmarkGenerator, UsersHaveTheSameKindsWithDifferentValues) {
  Benchmark benchmark = generate_benchmark(small(11));
  std::map<std::string, std::set<std::string>> values_of_kind;
  std::map<std::string, int64_t> stated_of_kind;
  for (const Question& question : benchmark.questions) {
    if (question.kind == QuestionKind::Abstain) continue;
    values_of_kind[question.fact].insert(question.answers.front());
    ++stated_of_kind[question.fact];
  }
  for (const auto& [kind, values] : values_of_kind)
    EXPECT_EQ(static_cast<int64_t>(values.size()), stated_of_kind[kind]) << kind;
  EXPECT_FALSE(benchmark.values_repeat);
  // Abstain questions ask about kinds the user never mentioned.
  for (const Question& question : benchmark.questions) {
    if (question.kind != QuestionKind::Abstain) continue;
    const GeneratedUser& user = *std::find_if(benchmark.users.begin(), benchmark.users.end(),
                                              [&](const GeneratedUser& u) { return u.id == question.user; });
    for (const FactMention& m : user.mentions) EXPECT_NE(m.fact, question.fact);
  }
}

TEST(BenchmarkGenerator, QuestionsComeFromTheirSplitsPoolOnly) {
  std::map<std::string, const FactKind*> kinds;
  for (const FactKind& kind : benchmark::fact_kinds()) kinds[std::string(kind.id)] = &kind;
  for (QuestionSplit split : {QuestionSplit::Dev, QuestionSplit::Test}) {
    Benchmark benchmark = generate_benchmark(small(5, split));
    for (const Question& question : benchmark.questions) {
      const FactKind& kind = *kinds.at(question.fact);
      const auto& own = split == QuestionSplit::Dev ? kind.dev_questions : kind.test_questions;
      bool from_own = false;
      for (auto pattern : own) {
        std::string prefix(pattern.substr(0, pattern.find('{')));
        if (!prefix.empty()) prefix[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(prefix[0])));
        from_own |= question.question.rfind(prefix, 0) == 0;
      }
      EXPECT_TRUE(from_own) << question.question;
    }
  }
}

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(BenchmarkGenerator, IsDeterministicForASeed) {
  auto a = testing::scratch_dir("generator_a"), b = testing::scratch_dir("generator_b"),
       c = testing::scratch_dir("generator_c");
  write_benchmark(generate_benchmark(small(42)), a.string());
  write_benchmark(generate_benchmark(small(42)), b.string());
  write_benchmark(generate_benchmark(small(43)), c.string());
  EXPECT_EQ(read_all(a / "questions.jsonl"), read_all(b / "questions.jsonl"));
  EXPECT_EQ(read_all(a / "logs" / "user01.jsonl"), read_all(b / "logs" / "user01.jsonl"));
  EXPECT_NE(read_all(a / "logs" / "user01.jsonl"), read_all(c / "logs" / "user01.jsonl"));
  // What was written reads back through the evaluation's own validators.
  EXPECT_EQ(read_questions((a / "questions.jsonl").string()).size(), generate_benchmark(small(42)).questions.size());
  EXPECT_EQ(read_interaction_logs((a / "logs").string()).by_user.size(), 6u);
}

}  // namespace
}  // namespace mnemo
