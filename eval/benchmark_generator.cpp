#include "eval/benchmark_generator.h"

#include "eval/benchmark_content.h"
#include "eval/jsonl_file.h"
#include "model/error.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <numeric>

namespace mnemo {
namespace {

using benchmark::FactKind;
using benchmark::FactValue;

// SplitMix64: a generator whose output is fixed by this file alone (the
// standard distributions differ between standard libraries), so a seed gives
// the same benchmark everywhere.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
  template <typename T>
  void shuffle(std::vector<T>& items) {
    for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[below(i)]);
  }

 private:
  uint64_t state_;
};

uint64_t mix(uint64_t seed, uint64_t salt) { return Random(seed * 0x100000001B3ull ^ salt).next(); }

uint64_t text_hash(std::string_view text) {
  uint64_t hash = 0xCBF29CE484222325ull;  // FNV-1a
  for (char c : text) hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001B3ull;
  return hash;
}

std::vector<size_t> shuffled_indices(size_t n, Random& random) {
  std::vector<size_t> indices(n);
  std::iota(indices.begin(), indices.end(), 0);
  random.shuffle(indices);
  return indices;
}

std::string with_article(std::string_view noun) {
  char first = noun.empty() ? 'x' : static_cast<char>(std::tolower(static_cast<unsigned char>(noun[0])));
  bool vowel = first == 'a' || first == 'e' || first == 'i' || first == 'o' || first == 'u';
  return std::string(vowel ? "an " : "a ") + std::string(noun);
}

void replace_all(std::string& text, std::string_view from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
}

struct Filled {
  std::string value, old, attr;
};

std::string fill(std::string_view pattern, const Filled& with) {
  std::string text(pattern);
  replace_all(text, "{a_value}", with_article(with.value));
  replace_all(text, "{value}", with.value);
  replace_all(text, "{a_old}", with_article(with.old));
  replace_all(text, "{old}", with.old);
  replace_all(text, "{attr}", with.attr);
  MNEMO_CHECK(text.find('{') == std::string::npos, "unfilled placeholder in \"{}\"", pattern);
  if (!text.empty() && text[0] >= 'a' && text[0] <= 'z') text[0] = static_cast<char>(text[0] - 'a' + 'A');
  return text;
}

std::vector<std::string> answer_strings(const FactValue& value) {
  std::vector<std::string> answers{std::string(value.text)};
  for (std::string_view alias : value.aliases) answers.emplace_back(alias);
  return answers;
}

// Hands out each kind's values in a seeded order, so users get different
// values until a pool runs out (then it starts over, and values repeat).
class ValueDealer {
 public:
  ValueDealer(const std::vector<FactKind>& kinds, uint64_t seed) {
    for (size_t k = 0; k < kinds.size(); ++k) {
      Random random(mix(seed, text_hash(kinds[k].id)));
      order_.push_back(shuffled_indices(kinds[k].values.size(), random));
      next_.push_back(0);
    }
  }
  size_t deal(size_t kind) {
    if (next_[kind] == order_[kind].size()) {
      next_[kind] = 0;
      repeated_ = true;
    }
    return order_[kind][next_[kind]++];
  }
  bool repeated() const { return repeated_; }

 private:
  std::vector<std::vector<size_t>> order_;
  std::vector<size_t> next_;
  bool repeated_ = false;
};

// One fact of one user.
struct UserFact {
  size_t kind = 0;
  size_t value = 0;
  std::optional<size_t> old_value;  // the fact changes from this value to `value`
  std::string attr;
};

// A place for a mention: one user turn of one conversation.
struct TurnSlot {
  int64_t conversation;
  int64_t exchange;
};

std::string numbered_id(const char* prefix, int64_t index, int64_t count) {
  return count >= 100 ? fmt::format("{}{:03d}", prefix, index) : fmt::format("{}{:02d}", prefix, index);
}

std::string iso_timestamp(int64_t seconds) {
  int64_t days = seconds / 86400, rest = seconds % 86400;
  // civil_from_days (Howard Hinnant)
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp + (mp < 10 ? 3 : -9);
  const int64_t year = yoe + era * 400 + (month <= 2);
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}Z", year, month, day, rest / 3600, rest / 60 % 60,
                     rest % 60);
}

GeneratedUser generate_user(const BenchmarkOptions& options, int64_t index, ValueDealer& dealer,
                            std::vector<Question>& questions) {
  const auto& kinds = benchmark::fact_kinds();
  const auto& pool = benchmark::conversations();
  Random random(mix(options.seed, 0x5EED0000ull + static_cast<uint64_t>(index)));
  GeneratedUser user;
  user.id = numbered_id("user", index + 1, options.n_users);

  // Which kinds this user never mentions, and which of the rest change.
  std::vector<size_t> kind_order = shuffled_indices(kinds.size(), random);
  const size_t n_kinds = options.n_kinds > 0 ? static_cast<size_t>(options.n_kinds) : kinds.size();
  std::vector<size_t> unstated(kind_order.begin(), kind_order.begin() + options.n_unstated);
  std::vector<size_t> stated(kind_order.begin() + options.n_unstated, kind_order.begin() + n_kinds);
  std::vector<UserFact> facts;
  for (size_t k = 0; k < kinds.size(); ++k) {
    if (std::find(stated.begin(), stated.end(), k) == stated.end()) continue;
    UserFact fact;
    fact.kind = k;
    if (!kinds[k].attributes.empty())
      fact.attr = std::string(kinds[k].attributes[random.below(kinds[k].attributes.size())]);
    facts.push_back(fact);
  }
  std::vector<size_t> changeable;
  for (size_t f = 0; f < facts.size(); ++f)
    if (!kinds[facts[f].kind].update_statements.empty()) changeable.push_back(f);
  random.shuffle(changeable);
  changeable.resize(std::min<size_t>(changeable.size(), options.n_updates));
  for (size_t f = 0; f < facts.size(); ++f) {
    if (std::find(changeable.begin(), changeable.end(), f) != changeable.end())
      facts[f].old_value = dealer.deal(facts[f].kind);
    facts[f].value = dealer.deal(facts[f].kind);
  }

  // The conversations, and a turn for every mention: a changing fact is
  // stated twice with its old value, then twice with the new one, each in a
  // different conversation, in time order.
  std::vector<size_t> picked;
  while (static_cast<int64_t>(picked.size()) < options.n_conversations) {
    std::vector<size_t> order = shuffled_indices(pool.size(), random);
    picked.insert(picked.end(), order.begin(), order.end());
  }
  picked.resize(options.n_conversations);
  std::vector<TurnSlot> free_slots;
  for (int64_t c = 0; c < options.n_conversations; ++c)
    for (int64_t e = 0; e < static_cast<int64_t>(pool[picked[c]].exchanges.size()); ++e) free_slots.push_back({c, e});
  random.shuffle(free_slots);

  struct Placed {
    TurnSlot slot;
    std::string sentence;
    FactMention mention;
  };
  std::vector<Placed> placed;
  std::vector<size_t> fact_order = shuffled_indices(facts.size(), random);
  std::stable_partition(fact_order.begin(), fact_order.end(), [&](size_t f) { return facts[f].old_value.has_value(); });
  for (size_t f : fact_order) {
    const UserFact& fact = facts[f];
    const FactKind& kind = kinds[fact.kind];
    const size_t needed = fact.old_value ? 4 : 2;
    std::vector<TurnSlot> chosen;
    for (auto it = free_slots.begin(); it != free_slots.end() && chosen.size() < needed;) {
      bool conversation_used = std::any_of(chosen.begin(), chosen.end(),
                                           [&](const TurnSlot& s) { return s.conversation == it->conversation; });
      if (conversation_used) {
        ++it;
      } else {
        chosen.push_back(*it);
        it = free_slots.erase(it);
      }
    }
    if (chosen.size() < needed)
      fail("eval generate: {} conversations leave no room to mention every fact twice; use more conversations",
           options.n_conversations);
    std::sort(chosen.begin(), chosen.end(), [](const TurnSlot& a, const TurnSlot& b) {
      return a.conversation != b.conversation ? a.conversation < b.conversation : a.exchange < b.exchange;
    });
    std::vector<size_t> wordings = shuffled_indices(kind.statements.size(), random);
    const std::string value(kind.values[fact.value].text);
    auto add = [&](const TurnSlot& slot, std::string_view pattern, const std::string& stated, const std::string& old,
                   bool stale, bool update, size_t wording) {
      FactMention mention{std::string(kind.id), stated, stale, slot.conversation, 0, wording, update};
      placed.push_back({slot, fill(pattern, {stated, old, fact.attr}), mention});
    };
    if (fact.old_value) {
      const std::string old(kind.values[*fact.old_value].text);
      add(chosen[0], kind.statements[wordings[0]], old, "", true, false, wordings[0]);
      add(chosen[1], kind.statements[wordings[1]], old, "", true, false, wordings[1]);
      size_t update_wording = random.below(kind.update_statements.size());
      add(chosen[2], kind.update_statements[update_wording], value, old, false, true, update_wording);
      add(chosen[3], kind.statements[wordings[2]], value, "", false, false, wordings[2]);
    } else {
      add(chosen[0], kind.statements[wordings[0]], value, "", false, false, wordings[0]);
      add(chosen[1], kind.statements[wordings[1]], value, "", false, false, wordings[1]);
    }
  }

  // Render the conversations, the statements tucked before or after the
  // user's own request.
  const int64_t start = parse_timestamp("2026-08-01T00:00:00Z") + index % 7 * 86400;
  for (int64_t c = 0; c < options.n_conversations; ++c) {
    const benchmark::Conversation& conversation = pool[picked[c]];
    LogRecord record;
    record.user = user.id;
    record.conversation_id = numbered_id("c", c + 1, options.n_conversations);
    record.timestamp_seconds = start + c * 3 * 86400 + (8 + static_cast<int64_t>(random.below(13))) * 3600 +
                               static_cast<int64_t>(random.below(60)) * 60;
    record.timestamp = iso_timestamp(record.timestamp_seconds);
    for (int64_t e = 0; e < static_cast<int64_t>(conversation.exchanges.size()); ++e) {
      std::string text(conversation.exchanges[e].user);
      for (Placed& p : placed) {
        if (p.slot.conversation != c || p.slot.exchange != e) continue;
        text = random.below(2) ? p.sentence + " " + text : text + " " + p.sentence;
        p.mention.message = static_cast<int64_t>(record.messages.size());
        user.mentions.push_back(p.mention);
      }
      record.messages.push_back({"user", text});
      record.messages.push_back({"assistant", std::string(conversation.exchanges[e].assistant)});
    }
    user.conversations.push_back(std::move(record));
  }

  // The questions, in wordings of the chosen split's pool only.
  auto question_text = [&](const FactKind& kind, const std::string& attr) {
    const auto& wordings = options.split == QuestionSplit::Dev ? kind.dev_questions : kind.test_questions;
    return fill(wordings[random.below(wordings.size())], {"", "", attr});
  };
  for (const UserFact& fact : facts) {
    const FactKind& kind = kinds[fact.kind];
    Question question;
    question.user = user.id;
    question.fact = std::string(kind.id);
    question.kind = fact.old_value ? QuestionKind::Update : QuestionKind::Recall;
    question.question = question_text(kind, fact.attr);
    question.answers = answer_strings(kind.values[fact.value]);
    if (fact.old_value) question.stale = answer_strings(kind.values[*fact.old_value]);
    questions.push_back(std::move(question));
  }
  std::sort(unstated.begin(), unstated.end());
  for (size_t k : unstated) {
    const FactKind& kind = kinds[k];
    std::string attr = kind.attributes.empty() ? "" : std::string(kind.attributes[random.below(kind.attributes.size())]);
    Question question;
    question.user = user.id;
    question.fact = std::string(kind.id);
    question.kind = QuestionKind::Abstain;
    question.question = question_text(kind, attr);
    questions.push_back(std::move(question));
  }
  return user;
}

}  // namespace

Benchmark generate_benchmark(const BenchmarkOptions& options) {
  const auto& kinds = benchmark::fact_kinds();
  if (options.n_users < 1) fail("eval generate: --users must be at least 1, got {}", options.n_users);
  if (options.n_users > 9999) fail("eval generate: --users must be at most 9999, got {}", options.n_users);
  const int64_t n_kinds = options.n_kinds > 0 ? options.n_kinds : static_cast<int64_t>(kinds.size());
  if (n_kinds > static_cast<int64_t>(kinds.size()))
    fail("eval generate: --kinds must be at most {} (the kinds of fact there are), got {}", kinds.size(), n_kinds);
  if (options.n_unstated < 0 || options.n_unstated >= n_kinds)
    fail("eval generate: unstated kinds must be in [0, {}), got {}", n_kinds, options.n_unstated);
  if (options.n_updates < 0) fail("eval generate: changing facts must be at least 0, got {}", options.n_updates);
  if (options.n_conversations < 4)
    fail("eval generate: at least 4 conversations per user, got {}", options.n_conversations);
  Benchmark benchmark;
  benchmark.options = options;
  ValueDealer dealer(kinds, options.seed);
  for (int64_t u = 0; u < options.n_users; ++u)
    benchmark.users.push_back(generate_user(options, u, dealer, benchmark.questions));
  benchmark.values_repeat = dealer.repeated();
  return benchmark;
}

std::string log_record_to_json(const LogRecord& record) {
  nlohmann::ordered_json object;
  object["user"] = record.user;
  object["conversation_id"] = record.conversation_id;
  object["timestamp"] = record.timestamp;
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  for (const ChatMessage& message : record.messages)
    messages.push_back(nlohmann::ordered_json{{"role", message.role}, {"content", message.content}});
  object["messages"] = std::move(messages);
  return object.dump();
}

void write_benchmark(const Benchmark& benchmark, const std::string& out_dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::create_directories(fs::path(out_dir) / "logs", error);
  if (error) fail("{}: cannot create: {}", out_dir, error.message());

  for (const GeneratedUser& user : benchmark.users) {
    std::string lines;
    for (const LogRecord& record : user.conversations) lines += log_record_to_json(record) + "\n";
    write_text_file(fs::path(out_dir) / "logs" / (user.id + ".jsonl"), lines);
  }
  std::string lines;
  for (const Question& question : benchmark.questions) lines += question_to_json(question) + "\n";
  write_text_file(fs::path(out_dir) / "questions.jsonl", lines);
}

}  // namespace mnemo
