// The trainer's publish gate without a model: which held-out questions it
// asks (never in a wording the data builder trains on), how many, and the
// verdict from the measured numbers and the live version's.
#include "trainer/publish_gate.h"
#include "trainer/train_config.h"
#include "trainer/training_data.h"
#include "support/errors.h"
#include "support/reference.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace mnemo {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

UserStatement statement(std::string topic, std::vector<std::string> content, bool superseded = false) {
  UserStatement s;
  s.text = "My " + topic + " is " + (content.empty() ? "nice" : content.front()) + ".";
  if (!topic.empty()) s.topics = {topic};
  s.content = std::move(content);
  s.superseded = superseded;
  return s;
}

TEST(PublishGate, NoWordingIsOneTheTrainerTrainsOn) {
  const std::vector<std::string> training = probe_wordings();
  ASSERT_FALSE(training.empty());
  ASSERT_FALSE(gate_wordings().empty());
  for (const std::string& wording : gate_wordings()) {
    EXPECT_NE(wording.find("{topic}"), std::string::npos) << wording;
    EXPECT_THAT(training, ::testing::Not(::testing::Contains(wording)));
  }
}

TEST(PublishGate, QuestionsComeFromCurrentStatementsThatNameATopicAndCarryContent) {
  std::vector<GateQuestion> questions = gate_questions(
      {statement("dog", {"Biscuit"}), statement("city", {"Lyon"}, /*superseded=*/true), statement("", {"Porto"}),
       statement("cat", {"cat"}), statement("sister", {"Robin", "Oslo"})},
      16);
  ASSERT_EQ(questions.size(), 2u);
  EXPECT_THAT(questions[0].question, HasSubstr("my dog"));
  EXPECT_THAT(questions[0].expected, ElementsAre("Biscuit"));
  EXPECT_THAT(questions[1].question, HasSubstr("my sister"));
  EXPECT_THAT(questions[1].expected, ElementsAre("Robin", "Oslo"));
  EXPECT_NE(questions[0].question.substr(0, 10), questions[1].question.substr(0, 10));  // wordings rotate
}

TEST(PublishGate, AtMostMaxQuestionsSpreadOverTheLogsWithTheNewestIn) {
  std::vector<UserStatement> statements;
  for (int i = 0; i < 10; ++i) statements.push_back(statement("topic" + std::to_string(i), {"Word" + std::to_string(i)}));
  std::vector<GateQuestion> questions = gate_questions(statements, 4);
  ASSERT_EQ(questions.size(), 4u);
  std::vector<std::string> words;
  for (const GateQuestion& q : questions) words.push_back(q.expected.front());
  EXPECT_THAT(words, ElementsAre("Word2", "Word4", "Word7", "Word9"));
  EXPECT_EQ(gate_questions(statements, 0).size(), 10u);  // 0: no limit
}

GateMeasurement measured(double recall, double ratio, std::optional<std::pair<double, double>> live = {}) {
  GateMeasurement m;
  m.candidate = {recall, 10, ratio * 20.0, 20.0};
  if (live) m.live = GateScores{live->first, 10, live->second * 20.0, 20.0};
  return m;
}

TEST(PublishGate, TheVerdictNamesTheNumberAndTheBoundThatFailed) {
  GateConfig config;
  config.min_recall = 0.3;
  config.max_perplexity_ratio = 1.1;
  config.recall_tolerance = 0.1;
  config.perplexity_tolerance = 0.05;
  EXPECT_TRUE(judge(config, measured(0.5, 1.0)).passed);
  GateVerdict v = judge(config, measured(0.2, 1.0));
  EXPECT_FALSE(v.passed);
  EXPECT_THAT(v.reason, HasSubstr("recall 0.20 on 10 held-out questions is below gate.min_recall 0.30"));
  v = judge(config, measured(0.5, 1.2));
  EXPECT_FALSE(v.passed);
  EXPECT_THAT(v.reason, HasSubstr("1.20x the base's on the generic text is above gate.max_perplexity_ratio 1.10"));
  // Against live: worse recall or worse retention beyond the tolerances.
  EXPECT_TRUE(judge(config, measured(0.5, 1.0, {{0.55, 1.02}})).passed);
  EXPECT_TRUE(judge(config, measured(0.4, 1.0, {{0.6, 1.0}})).passed);  // tolerance + one question of 10
  v = judge(config, measured(0.3, 1.0, {{0.6, 1.0}}));
  EXPECT_FALSE(v.passed);
  EXPECT_THAT(v.reason, HasSubstr("worse than the live version's 0.60"));
  v = judge(config, measured(0.6, 1.09, {{0.6, 1.0}}));
  EXPECT_FALSE(v.passed);
  EXPECT_THAT(v.reason, HasSubstr("worse than the live version's 1.00x"));
  // A NaN perplexity never passes.
  EXPECT_FALSE(judge(config, measured(0.5, std::nan(""))).passed);
  // No held-out question (no statement with a topic): recall is not judged.
  GateMeasurement none = measured(0.0, 1.0, {{0.9, 1.0}});
  none.candidate.n_questions = 0;
  EXPECT_TRUE(judge(config, none).passed);
}

TEST(PublishGate, TheConfigReadsTheGateSectionAndNamesBadValues) {
  std::filesystem::path dir = testing::scratch_dir("publish_gate_config");
  auto write = [&](const std::string& text) {
    std::filesystem::path path = dir / "train.yaml";
    std::ofstream(path) << text;
    return path.string();
  };
  TrainConfig c = read_train_config(write("gate:\n  min_recall: 0.25\n  enabled: false\n  max_questions: 8\n"));
  EXPECT_DOUBLE_EQ(c.gate.min_recall, 0.25);
  EXPECT_FALSE(c.gate.enabled);
  EXPECT_EQ(c.gate.max_questions, 8);
  EXPECT_THAT(testing::error_of([&] { read_train_config(write("gate:\n  min_recall: 1.5\n")); }),
              HasSubstr("gate.min_recall must be 0..1"));
  EXPECT_THAT(testing::error_of([&] { read_train_config(write("gate:\n  recal: 0.5\n")); }),
              HasSubstr("unknown key gate.recal (line 2)"));
}

}  // namespace
}  // namespace mnemo
