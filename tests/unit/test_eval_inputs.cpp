// The evaluation's input files: question files and interaction logs are
// validated line by line, and a bad line is reported as file:line with the
// field; logs are read from a file or a directory and kept oldest first.
#include "eval/interaction_log.h"
#include "eval/question.h"
#include "support/errors.h"
#include "support/reference.h"

#include <gtest/gtest.h>

#include <fstream>

namespace mnemo {
namespace {

using testing::error_of;

std::string write_file(const std::string& name, const std::string& text) {
  auto dir = testing::scratch_dir("eval_inputs_" + name);
  std::string path = (dir / name).string();
  std::ofstream(path) << text;
  return path;
}

TEST(QuestionFile, ReadsEveryKind) {
  std::string path = write_file("ok.jsonl",
                                R"({"user": "alice", "fact": "pet", "kind": "recall", "question": "Q?", "answers": ["Biscuit"]})"
                                "\n\n"
                                R"({"user": "alice", "fact": "home_city", "kind": "update", "question": "Q?", "answers": ["Porto"], "stale": ["Lyon"], "id": 7})"
                                "\n"
                                R"({"user": "bob", "fact": "diet", "kind": "abstain", "question": "Q?"})"
                                "\n");
  std::vector<Question> questions = read_questions(path);
  ASSERT_EQ(questions.size(), 3u);
  EXPECT_EQ(questions[0].answers, std::vector<std::string>{"Biscuit"});
  EXPECT_EQ(questions[1].kind, QuestionKind::Update);
  EXPECT_EQ(questions[1].stale, std::vector<std::string>{"Lyon"});
  EXPECT_EQ(questions[2].kind, QuestionKind::Abstain);
  EXPECT_TRUE(questions[2].answers.empty());
  EXPECT_EQ(parse_question(question_to_json(questions[1]), "x", 1).stale, questions[1].stale);
}

TEST(QuestionFile, BadLinesNameFileLineAndField) {
  struct Case {
    std::string line, expected;
  };
  const std::vector<Case> cases = {
      {R"({"user": "alice", "fact": "pet", "kind": "recall", "question": "Q?", "answers": ["x"]} trailing)",
       "not valid JSON"},
      {R"(["not", "an", "object"])", "must be a JSON object"},
      {R"({"fact": "pet", "kind": "recall", "question": "Q?", "answers": ["x"]})", "field \"user\" is missing"},
      {R"({"user": "al ice", "fact": "pet", "kind": "recall", "question": "Q?", "answers": ["x"]})", "field \"user\""},
      {R"({"user": "alice", "fact": "pet", "kind": "guess", "question": "Q?", "answers": ["x"]})",
       "must be recall, update or abstain"},
      {R"({"user": "alice", "fact": "pet", "kind": "recall", "question": "  ", "answers": ["x"]})",
       "field \"question\" is empty"},
      {R"({"user": "alice", "fact": "pet", "kind": "recall", "question": "Q?", "answers": []})",
       "needs at least one string in \"answers\""},
      {R"({"user": "alice", "fact": "pet", "kind": "recall", "question": "Q?", "answers": "x"})",
       "must be a list of strings"},
      {R"({"user": "alice", "fact": "pet", "kind": "recall", "question": "Q?", "answers": ["x", 3]})",
       "\"answers\"[1] must be a non-empty string"},
      {R"({"user": "alice", "fact": "pet", "kind": "update", "question": "Q?", "answers": ["x"]})",
       "needs the old value(s) in \"stale\""},
      {R"({"user": "alice", "fact": "pet", "kind": "recall", "question": "Q?", "answers": ["x"], "stale": ["y"]})",
       "only for update questions"},
      {R"({"user": "alice", "fact": "pet", "kind": "abstain", "question": "Q?", "answers": ["x"]})",
       "has no answers"},
  };
  for (const Case& c : cases) {
    std::string path = write_file("bad.jsonl",
                                  R"({"user": "alice", "fact": "pet", "kind": "recall", "question": "Q?", "answers": ["x"]})"
                                  "\n" + c.line + "\n");
    std::string error = error_of([&] { read_questions(path); });
    EXPECT_NE(error.find(path + ":2: "), std::string::npos) << error;
    EXPECT_NE(error.find(c.expected), std::string::npos) << "line: " << c.line << "\nerror: " << error;
  }
  EXPECT_NE(error_of([&] { read_questions(write_file("empty.jsonl", "\n\n")); }).find("holds no questions"),
            std::string::npos);
  EXPECT_NE(error_of([] { read_questions("/nonexistent/q.jsonl"); }).find("cannot open"), std::string::npos);
}

const char* kGoodRecord =
    R"({"user": "alice", "conversation_id": "c1", "timestamp": "2026-11-20T18:02:00Z", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})";

TEST(InteractionLogs, ReadsADirectoryOldestFirst) {
  auto dir = testing::scratch_dir("eval_inputs_logs");
  std::filesystem::create_directories(dir / "alice");
  std::ofstream(dir / "alice" / "a.jsonl")
      << R"({"user": "alice", "conversation_id": "late", "timestamp": "2026-11-21T00:00:00+02:00", "messages": [{"role": "user", "content": "b"}]})"
      << "\n"
      << kGoodRecord << "\n";
  std::ofstream(dir / "bob.jsonl")
      << R"({"user": "bob", "conversation_id": "c9", "timestamp": "2026-01-01T00:00:00.250Z", "messages": [{"role": "user", "content": "x"}]})"
      << "\n";
  std::ofstream(dir / "notes.txt") << "not a log";
  InteractionLogs logs = read_interaction_logs(dir.string());
  EXPECT_EQ(logs.n_records, 3);
  ASSERT_EQ(logs.by_user.at("alice").size(), 2u);
  EXPECT_EQ(logs.by_user.at("alice")[0].conversation_id, "c1");
  EXPECT_EQ(logs.by_user.at("alice")[1].conversation_id, "late");
  EXPECT_EQ(logs.by_user.at("alice")[1].timestamp_seconds - logs.by_user.at("alice")[0].timestamp_seconds,
            4 * 3600 - 2 * 60);  // 22:00+02:00 is 20:00Z, 3 h 58 min after 18:02Z
  EXPECT_EQ(logs.by_user.at("bob")[0].messages[0].content, "x");
}

TEST(InteractionLogs, BadRecordsFailOrAreCountedWhenSkipped) {
  struct Case {
    std::string line, expected;
  };
  const std::vector<Case> cases = {
      {"{not json", "not valid JSON"},
      {R"({"user": "a/b", "conversation_id": "c", "timestamp": "2026-11-20T18:02:00Z", "messages": [{"role": "user", "content": "x"}]})",
       "field \"user\""},
      {R"({"user": "a", "conversation_id": "", "timestamp": "2026-11-20T18:02:00Z", "messages": [{"role": "user", "content": "x"}]})",
       "\"conversation_id\" is empty"},
      {R"({"user": "a", "conversation_id": "c", "timestamp": "2026-11-20 18:02", "messages": [{"role": "user", "content": "x"}]})",
       "field \"timestamp\""},
      {R"({"user": "a", "conversation_id": "c", "timestamp": "2026-02-30T18:02:00Z", "messages": [{"role": "user", "content": "x"}]})",
       "out of range"},
      {R"({"user": "a", "conversation_id": "c", "timestamp": "2026-11-20T18:02:00", "messages": [{"role": "user", "content": "x"}]})",
       "needs a time zone"},
      {R"({"user": "a", "conversation_id": "c", "timestamp": "2026-11-20T18:02:00Z", "messages": []})",
       "non-empty list"},
      {R"({"user": "a", "conversation_id": "c", "timestamp": "2026-11-20T18:02:00Z", "messages": [{"role": "robot", "content": "x"}]})",
       "messages[0]: \"role\" must be system, user or assistant"},
      {R"({"user": "a", "conversation_id": "c", "timestamp": "2026-11-20T18:02:00Z", "messages": [{"role": "user", "content": 5}]})",
       "\"content\" must be a string"},
  };
  for (const Case& c : cases) {
    std::string path = write_file("bad.jsonl", std::string(kGoodRecord) + "\n" + c.line + "\n" + kGoodRecord + "\n");
    std::string error = error_of([&] { read_interaction_logs(path); });
    EXPECT_NE(error.find(path + ":2: "), std::string::npos) << error;
    EXPECT_NE(error.find(c.expected), std::string::npos) << "line: " << c.line << "\nerror: " << error;
    InteractionLogs skipped = read_interaction_logs(path, BadRecordPolicy::Skip);
    EXPECT_EQ(skipped.n_records, 2);
    EXPECT_EQ(skipped.n_skipped, 1);
    ASSERT_EQ(skipped.skipped.size(), 1u);
    EXPECT_NE(skipped.skipped[0].find(":2: "), std::string::npos);
  }
  EXPECT_NE(error_of([] { read_interaction_logs("/nonexistent/logs"); }).find("no such log file"), std::string::npos);
}

}  // namespace
}  // namespace mnemo
