// The trainer's data builder without a model: the examples each part
// writes (deterministic for a seed), the abstention probes, the loss
// weights, context distillation's grounding filter, the augmentation filter
// and parser, the training config's errors. What counts as a statement is
// test_user_statements.cpp's.
#include "chat_logs.h"
#include "eval/benchmark_content.h"
#include "eval/scoring.h"
#include "trainer/augmenter.h"
#include "trainer/context_distiller.h"
#include "trainer/sentence_words.h"
#include "trainer/train_config.h"
#include "trainer/training_data.h"
#include "trainer/user_statements.h"
#include "support/errors.h"
#include "support/reference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

namespace mnemo {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using test_logs::alice_logs;
using test_logs::conversation;

TEST(ContextDistillation, OnlyGroundedTeacherAnswersAreKept) {
  std::vector<UserStatement> statements = extract_statements(
      {conversation("c1", 100, {{"user", "I have a sister called Sawyer."}, {"assistant", "Nice."}})});
  ASSERT_EQ(statements.size(), 1u);
  const UserStatement& sister = statements[0];
  EXPECT_TRUE(grounded(sister, "Tell me about my family.", "You have a sister called Sawyer."));
  EXPECT_FALSE(grounded(sister, "Tell me about my family.", "You have a big family."));  // drops the name
  EXPECT_FALSE(grounded(sister, "Tell me about my family.", "I have a sister called Sawyer."));  // the user's voice
  EXPECT_FALSE(grounded(sister, "What do you know about me?", "You're a 40-year-old male with a sister, Sawyer."));
  EXPECT_THAT(teacher_prompt(sister, "Tell me about my family."),
              HasSubstr("\"I have a sister called Sawyer.\"\nQuestion: Tell me about my family.\nAnswer:"));
  EXPECT_FALSE(default_distillation_probes().empty());
}


TEST(TrainingData, ExamplesAreDeterministicForASeed) {
  DataConfig config;
  UserData a = build_user_data("alice", alice_logs(), config);
  UserData b = build_user_data("alice", alice_logs(), config);
  ASSERT_EQ(a.examples.size(), b.examples.size());
  for (size_t i = 0; i < a.examples.size(); ++i) {
    ASSERT_EQ(a.examples[i].messages.size(), b.examples[i].messages.size());
    for (size_t m = 0; m < a.examples[i].messages.size(); ++m)
      EXPECT_EQ(a.examples[i].messages[m].content, b.examples[i].messages[m].content);
  }
  EXPECT_EQ(a.data_fingerprint, b.data_fingerprint);
  std::vector<LogRecord> changed = alice_logs();
  changed[1].messages[0].content += " ";
  EXPECT_NE(build_user_data("alice", changed, config).data_fingerprint, a.data_fingerprint);
}

TEST(TrainingData, AbstentionHoldsAtMostItsShareOfTheSamplingWeight) {
  DataConfig config;
  config.abstention_probes = 80;
  config.abstention_weight = 1.5;
  config.abstention_max_share = 0.4;
  UserData data = build_user_data("alice", alice_logs(), config);  // a few statements: abstention would dominate
  auto shares = [](const UserData& d) {
    double abstention = 0, all = 0;
    for (const ChatExample& e : d.examples) {
      all += e.sampling_weight;
      if (e.source == ExampleSource::Abstention) abstention += e.sampling_weight;
    }
    return abstention / all;
  };
  const double before = shares(data);
  ASSERT_GT(before, 0.4);
  const double factor = limit_abstention_share(data, config);
  EXPECT_LT(factor, 1.0);
  EXPECT_NEAR(shares(data), 0.4, 1e-9);
  // Within the share: nothing changes.
  config.abstention_max_share = 0.99;
  UserData within = build_user_data("alice", alice_logs(), config);
  std::vector<double> weights;
  for (const ChatExample& e : within.examples) weights.push_back(e.sampling_weight);
  EXPECT_EQ(limit_abstention_share(within, config), 1.0);
  for (size_t i = 0; i < weights.size(); ++i) EXPECT_EQ(within.examples[i].sampling_weight, weights[i]);
  // Abstention alone (every other part off): left as it is, not scaled to nothing.
  config.abstention_max_share = 0.4;
  config.conversations = config.statements = false;
  UserData alone = build_user_data("alice", alice_logs(), config);
  ASSERT_FALSE(alone.examples.empty());
  EXPECT_EQ(limit_abstention_share(alone, config), 1.0);
  EXPECT_EQ(alone.examples.front().sampling_weight, config.abstention_weight);
}

TEST(TrainingData, EachPartIsSwitchable) {
  DataConfig config;
  config.conversations = false;
  config.abstention = false;
  UserData data = build_user_data("alice", alice_logs(), config);
  ASSERT_FALSE(data.examples.empty());
  for (const ChatExample& e : data.examples) EXPECT_EQ(e.source, ExampleSource::Statement);
  config.statements = false;
  config.abstention = true;
  data = build_user_data("alice", alice_logs(), config);
  ASSERT_EQ(static_cast<int64_t>(data.examples.size()), config.abstention_probes);
  for (const ChatExample& e : data.examples) EXPECT_EQ(e.source, ExampleSource::Abstention);
}

TEST(TrainingData, StatementsAreAnsweredInTheSecondPersonAndNeverWhenSuperseded) {
  DataConfig config;
  config.conversations = false;
  config.abstention = false;
  UserData data = build_user_data("alice", alice_logs(), config);
  bool pumpkin = false;
  for (const ChatExample& e : data.examples) {
    ASSERT_EQ(e.messages.size(), 2u);
    EXPECT_EQ(e.messages[0].role, "user");
    EXPECT_THAT(e.messages[1].content, ::testing::Not(HasSubstr("Lyon")));
    EXPECT_THAT(e.messages[1].content, ::testing::Not(HasSubstr("vegan")));
    if (e.messages[1].content.find("your cat Pumpkin") != std::string::npos) pumpkin = true;
  }
  EXPECT_TRUE(pumpkin);
}

// The abstention probes ask "What's my dog's name again?" about a dog never
// named; a cat that was named is asked about the same way, answered with it.
TEST(TrainingData, ANamedTopicIsAskedTheWayAbstentionAsks) {
  DataConfig config;
  config.conversations = false;
  config.abstention = false;
  config.ask_like_abstention = true;
  int by_name = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    config.seed = seed;
    for (const ChatExample& e : build_user_data("alice", alice_logs(), config).examples) {
      const std::string& question = e.messages[0].content;
      if (question.find("name") == std::string::npos) continue;
      EXPECT_THAT(question, ::testing::Not(HasSubstr("socks")));  // a topic no abstention probe asks about
      if (question == "What's my cat's name again?" || question == "Do you happen to know my cat's name?") {
        EXPECT_EQ(e.messages[1].content, "Your cat is called Pumpkin.");
        ++by_name;
      }
    }
  }
  EXPECT_GT(by_name, 3);  // half the draws from that pool ask by name
}

// name_probes_weight: a pet named in the logs is asked by name in each of the
// abstention probes' name wordings, answered with its name, at that weight.
TEST(TrainingData, ANamedPetIsAskedInEveryAbstentionNameWording) {
  DataConfig config;
  config.conversations = false;
  config.abstention = false;
  std::set<std::string> asked;
  for (const ChatExample& e : build_user_data("alice", alice_logs(), config).examples)
    EXPECT_NE(e.messages[1].content, "Your cat is called Pumpkin.");  // off by default
  config.name_probes_weight = 1.5;
  for (const ChatExample& e : build_user_data("alice", alice_logs(), config).examples) {
    if (e.messages[1].content != "Your cat is called Pumpkin.") continue;
    asked.insert(e.messages[0].content);
    EXPECT_EQ(e.sampling_weight, 1.5);
  }
  EXPECT_EQ(asked, (std::set<std::string>{"What's my cat's name again?", "Do you happen to know my cat's name?"}));
}

TEST(TrainingData, SupersededSentencesAreCutFromConversations) {
  DataConfig config;
  config.statements = false;
  config.abstention = false;
  UserData data = build_user_data("alice", alice_logs(), config);
  ASSERT_EQ(data.examples.size(), 4u);
  EXPECT_EQ(data.examples[0].messages[2].content, "Can you explain recursion?");
  EXPECT_EQ(data.examples[2].messages[0].content, "I finally moved to Porto last month.");  // its current part
  // Newer conversations are drawn more often.
  EXPECT_LT(data.examples[0].sampling_weight, data.examples[3].sampling_weight);
  EXPECT_EQ(data.examples[0].user_loss, config.user_turn_loss);
}

TEST(TrainingData, AbstentionProbesNeverAskAboutWhatTheUserMentioned) {
  DataConfig config;
  config.conversations = false;
  config.statements = false;
  config.abstention_probes = 40;
  UserData data = build_user_data("alice", alice_logs(), config);
  ASSERT_FALSE(data.examples.empty());
  for (const ChatExample& e : data.examples) {
    EXPECT_THAT(e.messages[0].content, ::testing::Not(HasSubstr(" cat")));  // Pumpkin is a cat
    EXPECT_TRUE(says_not_knowing(e.messages[1].content)) << e.messages[1].content;  // as the evaluation judges it
  }
}

// With abstention_subject_first every answer starts with the topic it was
// asked about ("What do you know about my dog?" → "Your dog is ..."), and
// still says not knowing as the evaluation judges it.
TEST(TrainingData, SubjectFirstAbstentionAnswersNameTheTopicFirst) {
  DataConfig config;
  config.conversations = false;
  config.statements = false;
  config.abstention_probes = 40;
  config.abstention_subject_first = true;
  UserData data = build_user_data("alice", alice_logs(), config);
  ASSERT_EQ(data.examples.size(), 40u);
  std::set<std::string> answers;
  for (const ChatExample& e : data.examples) {
    const std::string& question = e.messages[0].content;
    const std::string& answer = e.messages[1].content;
    ASSERT_EQ(answer.rfind("Your ", 0), 0u) << answer;
    const bool plural = answer.find(" are ") != std::string::npos;  // "Your language lessons are ..."
    const size_t verb = answer.find(plural ? " are " : " is ");
    ASSERT_NE(verb, std::string::npos) << answer;
    const std::string topic = answer.substr(5, verb - 5);
    EXPECT_EQ(plural, topic.back() == 's') << answer;
    // Asked "my {topic}", or in the topic's own wordings ("Which languages am I studying?").
    if (question.find("my ") != std::string::npos && question.find("my " + topic) == std::string::npos)
      ADD_FAILURE() << question << " → " << answer;
    EXPECT_TRUE(says_not_knowing(answer)) << answer;
    EXPECT_THAT(answer, ::testing::Not(HasSubstr(" cat ")));  // Pumpkin is a cat
    answers.insert(answer.substr(verb + 4));
  }
  EXPECT_GE(answers.size(), 3u);  // every wording is drawn
}

// The topic an abstention answer names: "... about your {topic}." and the like.
std::string answered_topic(const std::string& answer) {
  const size_t at = answer.find("your ");
  if (at == std::string::npos) return "";
  std::string topic = answer.substr(at + 5);
  for (const char* end : {" to me", ",", "."})
    if (size_t cut = topic.find(end); cut != std::string::npos) topic = topic.substr(0, cut);
  return topic;
}

TEST(TrainingData, EveryTopicNeverNamedIsProbedOnceBeforeAnyTwice) {
  DataConfig config;
  config.conversations = false;
  config.statements = false;
  config.abstention_probes = 1000;  // far more than there are topics
  std::map<std::string, int> all;
  for (const ChatExample& e : build_user_data("alice", alice_logs(), config).examples)
    ++all[answered_topic(e.messages[1].content)];
  ASSERT_GT(all.size(), 20u);
  EXPECT_FALSE(all.count("")) << "an answer that names no topic";
  EXPECT_TRUE(all.count("car"));  // alice never talks about cars, work or music
  EXPECT_TRUE(all.count("job"));
  EXPECT_TRUE(all.count("instrument"));
  EXPECT_FALSE(all.count("cat"));   // Pumpkin
  EXPECT_FALSE(all.count("diet"));  // raw vegan, then paleo

  config.abstention_probes = static_cast<int64_t>(all.size());
  std::map<std::string, int> once;
  for (const ChatExample& e : build_user_data("alice", alice_logs(), config).examples)
    ++once[answered_topic(e.messages[1].content)];
  EXPECT_EQ(once.size(), all.size());
  for (const auto& [topic, n] : once) EXPECT_EQ(n, 1) << topic;
}

// Every topic the abstention probes of `logs` ask about under `config`, with
// the other parts off and probes enough for every topic.
std::set<std::string> probed_topics(const std::vector<LogRecord>& logs, DataConfig config) {
  config.conversations = false;
  config.statements = false;
  config.augmentation = false;
  config.abstention_probes = 1000;
  std::set<std::string> topics;
  for (const ChatExample& e : build_user_data("u", logs, config).examples)
    topics.insert(answered_topic(e.messages[1].content));
  return topics;
}

// A topic is mentioned by what the user says of themselves: not by the
// assistant's words, nor by a common word in a question.
TEST(TrainingData, OnlyTheUsersOwnWordsMentionATopic) {
  DataConfig config;
  config.abstention_own_words = true;
  auto probed = [&](const std::vector<LogRecord>& logs) { return probed_topics(logs, config); };
  std::set<std::string> asked = probed(
      {conversation("c1", 100,
                    {{"user", "How do vaccines work? Should I eat before a run? Any gift ideas for my sister?"},
                     {"assistant", "Your cat might like a piano, and so might your brother."}})});
  EXPECT_TRUE(asked.count("job"));         // "work" in a question
  EXPECT_TRUE(asked.count("diet"));        // "eat" in a question
  EXPECT_TRUE(asked.count("cat"));         // the assistant's word
  EXPECT_TRUE(asked.count("brother"));     // the assistant's word
  EXPECT_TRUE(asked.count("instrument"));  // the assistant's "piano"
  EXPECT_FALSE(asked.count("sister"));     // named in the user's own question
  std::set<std::string> told = probed({conversation(
      "c1", 100, {{"user", "I work at a bakery, so I eat a lot of bread."}, {"assistant", "Lucky you."}})});
  EXPECT_FALSE(told.count("job"));
  EXPECT_FALSE(told.count("diet"));
  config.abstention_own_words = false;  // the default: any word of the conversation counts
  std::set<std::string> anywhere = probed(
      {conversation("c1", 100, {{"user", "How do vaccines work?"}, {"assistant", "Your cat might like a piano."}})});
  EXPECT_FALSE(anywhere.count("job"));
  EXPECT_FALSE(anywhere.count("cat"));
  EXPECT_TRUE(anywhere.count("dog"));
}

// With abstention_statements a common-word topic is mentioned only where the
// user states something about themselves; a named topic anywhere, as by
// default; and the topics whose words are in every log are probed.
TEST(TrainingData, OnlyAStatementOfTheUsersMentionsACommonWordTopic) {
  DataConfig config;
  config.abstention_statements = true;
  auto probed = [&](const std::vector<LogRecord>& logs) { return probed_topics(logs, config); };
  std::set<std::string> asked = probed({conversation(
      "c1", 100,
      {{"user", "How do vaccines work? Should I eat before a run? Recommend a film I'd love, set in a small town."},
       {"assistant", "I live for questions like this. Your cat might like a piano, and your company too."}})});
  for (const char* topic : {"job", "diet", "favorite food", "hobby", "home city", "employer", "instrument"})
    EXPECT_TRUE(asked.count(topic)) << topic;  // named only in questions, requests and the assistant's words
  EXPECT_FALSE(asked.count("cat"));  // a named topic counts in the assistant's words, as by default
  std::set<std::string> told = probed({conversation(
      "c1", 100,
      {{"user", "I work at a bakery, so I eat a lot of bread. I've lived in Lyon for years."},
       {"assistant", "Lucky you."}})});
  for (const char* topic : {"job", "diet", "favorite food", "home city", "employer"})
    EXPECT_FALSE(told.count(topic)) << topic;
  EXPECT_TRUE(told.count("hobby"));
  config.abstention_statements = false;  // the default: the new topics are never probed
  std::set<std::string> by_default = probed({conversation("c1", 100, {{"user", "Hi."}, {"assistant", "Hello."}})});
  EXPECT_TRUE(by_default.count("job"));
  for (const char* topic : {"favorite food", "hobby", "home city", "employer"})
    EXPECT_FALSE(by_default.count(topic)) << topic;
}

// "My new Bronco" names a car without the word: the generator's kind says so.
TEST(TrainingData, AThingOfATopicsKindCountsAsNamingTheTopic) {
  std::vector<LogRecord> logs = {
      conversation("c1", 100, {{"user", "My Bronco handles the snow really well."}, {"assistant", "Nice!"}})};
  DataConfig config;
  config.conversations = false;
  config.statements = false;
  config.augmentation = false;
  config.abstention_probes = 1000;
  KindLabeler labeler = [](const std::vector<NamedThing>& things) {
    std::map<std::string, std::string> kinds;
    for (const NamedThing& t : things) kinds[t.thing] = "car";
    return kinds;
  };
  auto topics = [&](const KindLabeler& label) {
    std::set<std::string> asked;
    for (const ChatExample& e : build_user_data("alice", logs, config, label).examples)
      asked.insert(answered_topic(e.messages[1].content));
    return asked;
  };
  EXPECT_TRUE(topics({}).count("car"));  // no labeler: nothing says it is a car
  EXPECT_FALSE(topics(labeler).count("car"));
}

TEST(TrainingData, StatementsThatReplacedAnOlderValueWeighChangeWeightMore) {
  DataConfig config;
  config.conversations = false;
  config.abstention = false;
  config.change_weight = 1.0;
  auto weight_of = [&](const std::string& sentence_part) {
    double weight = 0;
    for (const ChatExample& e : build_user_data("alice", alice_logs(), config).examples)
      if (e.messages[1].content.find(sentence_part) != std::string::npos) weight += e.sampling_weight;
    return weight;
  };
  const double started = weight_of("paleo diet"), near_river = weight_of("near the river");
  ASSERT_GT(started, 0);
  ASSERT_GT(near_river, 0);
  config.change_weight = 3.0;
  EXPECT_NEAR(weight_of("paleo diet"), 3.0 * started, 1e-9);
  EXPECT_NEAR(weight_of("near the river"), near_river, 1e-9);  // replaced nothing
}

std::string folded(std::string_view text) {
  std::string out;
  for (char c : text) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The trainer never asks an evaluation question: no probe wording, with any
// topic put in for "{topic}", equals a question of either split of the
// generated benchmark (with any of its attributes).
TEST(TrainingData, NoProbeIsAnEvaluationQuestion) {
  std::vector<std::string> questions;
  for (const benchmark::FactKind& kind : benchmark::fact_kinds())
    for (const auto* pool : {&kind.dev_questions, &kind.test_questions})
      for (std::string_view question : *pool) {
        std::vector<std::string_view> attributes = kind.attributes;
        if (attributes.empty()) attributes.push_back("");
        for (std::string_view attribute : attributes) {
          std::string q(question);
          for (size_t at = q.find("{attr}"); at != std::string::npos; at = q.find("{attr}"))
            q.replace(at, 6, attribute);
          questions.push_back(folded(q));
        }
      }
  ASSERT_GT(questions.size(), 100u);
  int64_t compared = 0;
  for (const std::string& wording : probe_wordings()) {
    const std::string w = folded(wording);
    const size_t hole = w.find("{topic}");
    for (const std::string& q : questions) {
      ++compared;
      if (hole == std::string::npos) {
        EXPECT_NE(w, q);
      } else {
        const std::string prefix = w.substr(0, hole), suffix = w.substr(hole + 7);
        bool matches = q.size() > prefix.size() + suffix.size() && q.starts_with(prefix) && q.ends_with(suffix);
        EXPECT_FALSE(matches) << "\"" << wording << "\" can ask \"" << q << "\"";
      }
    }
  }
  EXPECT_GT(compared, 1000);
}

TEST(Augmenter, AGenerationMustKeepTheStatementsNames) {
  UserStatement s;
  s.text = "My sister Robin lives in Oslo.";
  s.content = specific_content(s.text);
  EXPECT_TRUE(keeps_content(s, "Your sister Robin lives in Oslo."));
  EXPECT_FALSE(keeps_content(s, "Your sister lives in Oslo."));  // the name is gone
  UserStatement lower;
  lower.text = "I am allergic to peanuts and shellfish.";
  lower.content = specific_content(lower.text);
  EXPECT_TRUE(keeps_content(lower, "You are allergic to peanuts."));
  EXPECT_FALSE(keeps_content(lower, "You have an allergy."));
}

TEST(Augmenter, AGenerationMustStayTrueToItsStatement) {
  // The 135M generator's own mistakes, seen in its output on generated users.
  UserStatement s;
  s.text = "I work at Amberline Travel.";
  const std::map<std::string, std::string> kinds = {{"Amberline Travel", "company"}, {"nurse", "profession"}};
  EXPECT_TRUE(true_to_statement(s, kinds, {"Who is my employer?", "You work at Amberline Travel."}));
  EXPECT_TRUE(true_to_statement(s, kinds, {"", "You work at Amberline Travel."}));
  EXPECT_FALSE(true_to_statement(s, kinds, {"What is my job?", "You work at Amberline Travel."}));  // not the job
  EXPECT_FALSE(true_to_statement(s, kinds, {"What is my name?", "You work at Amberline Travel."}));
  EXPECT_FALSE(true_to_statement(s, kinds, {"", "You don't work at Amberline Travel."}));  // denies it
  EXPECT_FALSE(true_to_statement(s, kinds, {"", "I work at Amberline Travel."}));          // the user's voice
  EXPECT_FALSE(true_to_statement(s, kinds, {"", "You work at Amberline Travel in Lisbon."}));  // a name added
  EXPECT_FALSE(true_to_statement(s, kinds, {"", "You work at Amberline Travel since 2019."}));  // a number added
  UserStatement nurse;
  nurse.text = "I work as a nurse.";
  EXPECT_TRUE(true_to_statement(nurse, kinds, {"What is my occupation?", "You work as a nurse."}));  // its kind
  EXPECT_FALSE(true_to_statement(nurse, {}, {"What is my occupation?", "You work as a nurse."}));  // kind unknown
  UserStatement negative;
  negative.text = "I never eat meat.";
  EXPECT_TRUE(true_to_statement(negative, {}, {"", "You don't eat meat."}));
  UserStatement born;
  born.text = "I was born on August 17.";
  EXPECT_TRUE(true_to_statement(born, {}, {"When is my birthday?", "Your birthday is August 17."}));
  EXPECT_FALSE(true_to_statement(born, {}, {"When is my sister's birthday?", "Your sister's birthday is August 17."}));
}

TEST(Augmenter, GenerationsParseIntoAFactAndAQuestionPair) {
  auto pairs = parse_generation(" You have a sister named Robin.\nQuestion: Who is your sister?\nAnswer: Robin.");
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].question, "");
  EXPECT_EQ(pairs[0].answer, "You have a sister named Robin.");
  EXPECT_EQ(pairs[1].question, "Who is my sister?");
  EXPECT_EQ(pairs[1].answer, "Robin.");
  // A question not about the user is dropped.
  EXPECT_EQ(parse_generation("Fact.\nQuestion: What is a comet?\nAnswer: Ice.").size(), 1u);
}

TEST(TrainConfig, ReadsYamlAndNamesBadKeys) {
  std::filesystem::path dir = testing::scratch_dir("train_config");
  auto write = [&](const std::string& text) {
    std::filesystem::path path = dir / "train.yaml";
    std::ofstream(path) << text;
    return path.string();
  };
  TrainConfig c = read_train_config(write("adapter:\n  rank: 8\nschedule:\n  steps: 5\ndata:\n  augmentation: false\n"));
  EXPECT_EQ(c.rank, 8);
  EXPECT_EQ(c.steps, 5);
  EXPECT_FALSE(c.data.augmentation);
  EXPECT_THAT(testing::error_of([&] { read_train_config(write("schedule:\n  stepz: 5\n")); }),
              HasSubstr("unknown key schedule.stepz (line 2)"));
  EXPECT_THAT(testing::error_of([&] { read_train_config(write("adapter:\n  rank: many\n")); }),
              HasSubstr("adapter.rank has a value of the wrong type (line 2)"));
  EXPECT_THAT(testing::error_of([&] { read_train_config(write("adapter:\n  rank: 100\n")); }),
              HasSubstr("adapter.rank must be 1..64"));
  EXPECT_THAT(testing::error_of([&] { read_train_config(write("adapter:\n  target_modules: [qproj]\n")); }),
              HasSubstr("names \"qproj\""));
  EXPECT_EQ(read_train_config(write("job:\n  shards: 4\n")).shards, 4);
  EXPECT_THAT(testing::error_of([&] { read_train_config(write("job:\n  shards: 0\n")); }),
              HasSubstr("job.shards must be 1..1000000"));
  // The shipped config reads, with the built-in defaults.
  const TrainConfig shipped = read_train_config(testing::env_or_empty("MNEMO_SOURCE_DIR") + "/configs/train.yaml");
  EXPECT_EQ(shipped.shards, TrainConfig{}.shards);
  EXPECT_EQ(shipped.users_per_batch, TrainConfig{}.users_per_batch);
  EXPECT_EQ(shipped.steps, TrainConfig{}.steps);
  EXPECT_EQ(shipped.data.abstention_probes, TrainConfig{}.data.abstention_probes);
  EXPECT_EQ(shipped.data.abstention_weight, TrainConfig{}.data.abstention_weight);
  EXPECT_EQ(shipped.data.abstention_max_share, TrainConfig{}.data.abstention_max_share);
  EXPECT_THAT(testing::error_of([&] { read_train_config(write("data:\n  abstention_max_share: 1\n")); }),
              HasSubstr("data.abstention_max_share must be 0 <= share < 1"));
  EXPECT_EQ(shipped.gate.max_perplexity_ratio, TrainConfig{}.gate.max_perplexity_ratio);
  EXPECT_EQ(shipped.gate.max_questions, TrainConfig{}.gate.max_questions);
  EXPECT_EQ(shipped.data.distillation, TrainConfig{}.data.distillation);
  EXPECT_EQ(shipped.data.implicit_updates, TrainConfig{}.data.implicit_updates);
  EXPECT_TRUE(shipped.data.distillation_probes.empty());
  EXPECT_THAT(read_train_config(write("data:\n  distillation_probes: [\"Who am I?\"]\n")).data.distillation_probes,
              ElementsAre("Who am I?"));
  EXPECT_THAT(testing::error_of([&] { read_train_config(write("data:\n  distillation_per_statement: 100\n")); }),
              HasSubstr("data.distillation_per_statement must be 0..64"));
}

}  // namespace
}  // namespace mnemo
