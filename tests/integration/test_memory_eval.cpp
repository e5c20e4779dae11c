// `mnemo eval` driven as a user would, on the default model: generate a
// benchmark, run the memory conditions, read summary.json and answers.jsonl.
// The history in the prompt must beat no memory; adapters from a directory
// and from a registry are scored, in shared batches exactly as alone; bad
// inputs fail with the file and line.
#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "model/base_model.h"
#include "model/default_model.h"
#include "model/model_loader.h"
#include "model/transformer.h"
#include "support/command.h"
#include "support/generated_users.h"
#include "support/json_files.h"
#include "support/reference.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::run_command;
using testing::read_json;
using testing::read_jsonl;
using testing::shell_quote;

std::string mnemo() { return testing::mnemo_command(); }

// Correct recall and update answers of one condition.
int64_t remembered(const std::vector<json>& answers, const std::string& condition) {
  int64_t n = 0;
  for (const json& a : answers)
    if (a["condition"] == condition && a["kind"] != "abstain" && a["correct"].get<bool>()) ++n;
  return n;
}

// Two users (test split, seed 1) for the adapter and input tests.
fs::path benchmark_dir() { return testing::generated_users("memory_eval_benchmark"); }

std::string run_args(const fs::path& benchmark, const fs::path& out) {
  return " eval run --logs " + shell_quote((benchmark / "logs").string()) + " --questions " +
         shell_quote((benchmark / "questions.jsonl").string()) + " --out " + shell_quote(out.string());
}
std::string run_args(const fs::path& out) { return run_args(benchmark_dir(), out); }

// Six users, not two: the default model (135M parameters) uses a history in
// its prompt poorly (7% recall on the 24-user baseline), and two users gave
// it 0 to 2 remembered answers (seeds 1-3), too few to tell from none.
TEST(MemoryEval, TheHistoryInThePromptBeatsNoMemory) {
  fs::path benchmark = testing::generated_users("memory_eval_benchmark6", 6), out = testing::scratch_dir("memory_eval_context");
  auto r = run_command(mnemo() + run_args(benchmark, out) + " --conditions none,context --no-retention 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::printf("%s\n", r.output.c_str());
  std::vector<json> answers = read_jsonl(out / "answers.jsonl");
  json summary = read_json(out / "summary.json");
  const int64_t n_questions = summary["n_questions"].get<int64_t>();
  EXPECT_EQ(static_cast<int64_t>(answers.size()), 2 * n_questions);
  EXPECT_EQ(summary["n_users"], 6);
  for (const char* condition : {"none", "context"})
    for (const char* field : {"recall", "update", "abstention", "leakage", "retention_ppl_ratio", "prompt_tokens",
                              "seconds", "by_fact"})
      EXPECT_TRUE(summary["conditions"][condition].contains(field)) << condition << "." << field;
  EXPECT_TRUE(summary["model"]["fingerprint"].get<std::string>().starts_with("sha256:"));
  // The history costs prefill: thousands of prompt tokens against a few dozen.
  EXPECT_GT(summary["conditions"]["context"]["prompt_tokens"].get<double>(),
            20 * summary["conditions"]["none"]["prompt_tokens"].get<double>());
  EXPECT_TRUE(fs::exists(out / "chart.png")) << "chart.png missing (matplotlib in .venv?)";

  // Measured when this test was written (90 questions, 78 about stated
  // facts): none 0, context 4 remembered. The bound leaves room for a greedy
  // answer flipping on another machine, never zero.
  const int64_t none = remembered(answers, "none"), context = remembered(answers, "context");
  std::printf("remembered: none %lld, context %lld\n", static_cast<long long>(none), static_cast<long long>(context));
  EXPECT_GE(context, 2);
  EXPECT_GT(context, none);
}

// Random adapters (they know nothing; they only change the model), written
// as PEFT directories for both users.
fs::path random_adapters() {
  static const fs::path dir = [] {
    fs::path d = testing::scratch_dir("memory_eval_adapters");
    BaseModel model = open_base_model(default_model_path(), {});
    LoraConfig config;
    config.rank = 8;
    config.alpha = 16;
    for (int user = 1; user <= 2; ++user) {
      LoraAdapter adapter = make_random_adapter(config, model.transformer->config(), 100 + user, /*std=*/0.02);
      adapter.metadata[kMetaUser] = "user0" + std::to_string(user);
      write_peft_adapter((d / ("user0" + std::to_string(user))).string(), adapter);
    }
    return d;
  }();
  return dir;
}

TEST(MemoryEval, AdaptersAreScoredInSharedBatchesExactlyAsAlone) {
  fs::path mixed = testing::scratch_dir("memory_eval_adapter_mixed"), alone = testing::scratch_dir("memory_eval_adapter_alone");
  const std::string adapters = " --adapters " + shell_quote(random_adapters().string()) + " --max-tokens 16 --no-chart";
  auto r = run_command(mnemo() + run_args(mixed) + " --conditions adapter,adapter+bm25" + adapters + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command(mnemo() + run_args(alone) + " --conditions adapter --batch-size 1 --no-retention" + adapters + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<json> in_batches = read_jsonl(mixed / "answers.jsonl"), one_by_one = read_jsonl(alone / "answers.jsonl");
  size_t compared = 0;
  for (const json& a : one_by_one)
    for (const json& b : in_batches)
      if (b["condition"] == "adapter" && b["user"] == a["user"] && b["question"] == a["question"]) {
        EXPECT_EQ(a["answer"], b["answer"]) << a["user"] << ": " << a["question"];
        ++compared;
      }
  EXPECT_EQ(compared, one_by_one.size());
  json summary = read_json(mixed / "summary.json");
  EXPECT_GT(summary["retention"]["base_ppl"].get<double>(), 1.0);
  // A random adapter makes generic text less likely: the retention ratio shows it.
  EXPECT_GT(summary["conditions"]["adapter"]["retention_ppl_ratio"].get<double>(), 1.0);
  EXPECT_EQ(summary["retention"]["adapter_ppl"].size(), 2u);
  EXPECT_GT(summary["conditions"]["adapter+bm25"]["prompt_tokens"].get<double>(),
            summary["conditions"]["adapter"]["prompt_tokens"].get<double>());
}

TEST(MemoryEval, ReadsEachUsersLiveAdapterFromARegistry) {
  fs::path registry = testing::scratch_dir("memory_eval_registry"), out = testing::scratch_dir("memory_eval_registry_out");
  {
    RegistryOptions options;
    options.mode = OpenMode::kCreate;
    Registry::open(registry.string(), options)
        ->init("test-base", adapter_shapes_to_json(adapter_shapes(read_model_config(default_model_path()))));
  }
  for (const char* user : {"user01", "user02"}) {
    auto r = run_command(mnemo() + " adapters --registry " + shell_quote(registry.string()) + " publish " +
                         shell_quote((random_adapters() / user).string()) + " --user " + user +
                         " --base-fingerprint test-base --live 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  auto r = run_command(mnemo() + run_args(out) + " --conditions adapter --users user02 --max-tokens 16 --no-chart "
                       "--no-retention --registry " + shell_quote(registry.string()) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<json> answers = read_jsonl(out / "answers.jsonl");
  ASSERT_FALSE(answers.empty());
  for (const json& a : answers) EXPECT_EQ(a["user"], "user02");
}

TEST(MemoryEval, BadInputsFailWithWhatAndWhere) {
  fs::path out = testing::scratch_dir("memory_eval_bad");
  auto r = run_command(mnemo() + run_args(out) + " --conditions adapter 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("need --adapters"), std::string::npos) << r.output;

  r = run_command(mnemo() + run_args(out) + " --conditions none,telepathy 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("unknown condition \"telepathy\""), std::string::npos) << r.output;

  fs::path questions = out / "questions.jsonl";
  std::ofstream(questions) << R"({"user": "user01", "fact": "pet", "kind": "recall", "question": "Q?", "answers": ["x"]})"
                           << "\n"
                           << R"({"user": "user01", "fact": "pet", "kind": "update", "question": "Q?", "answers": ["x"]})"
                           << "\n";
  r = run_command(mnemo() + " eval run --logs " + shell_quote((benchmark_dir() / "logs").string()) + " --questions " +
                  shell_quote(questions.string()) + " --out " + shell_quote(out.string()) + " 2>&1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find(questions.string() + ":2: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("stale"), std::string::npos) << r.output;

  r = run_command(mnemo() + " eval validate --questions " + shell_quote((benchmark_dir() / "questions.jsonl").string()) +
                  " --logs " + shell_quote((benchmark_dir() / "logs").string()) + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("valid"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace mnemo
