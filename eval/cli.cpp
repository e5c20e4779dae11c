#include "eval/cli.h"

#include "eval/benchmark_generator.h"
#include "eval/interaction_log.h"
#include "eval/memory_eval.h"
#include "eval/question.h"
#include "model/error.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <map>
#include <memory>

namespace mnemo {
namespace {

struct GenerateCommand {
  BenchmarkOptions options;
  std::string split = "test";
  std::string out;
};

void run_generate(const GenerateCommand& command) {
  BenchmarkOptions options = command.options;
  if (command.split == "dev") options.split = QuestionSplit::Dev;
  else if (command.split == "test") options.split = QuestionSplit::Test;
  else fail("--split must be dev or test, got \"{}\"", command.split);
  Benchmark benchmark = generate_benchmark(options);
  write_benchmark(benchmark, command.out);
  std::map<QuestionKind, int64_t> by_kind;
  for (const Question& question : benchmark.questions) ++by_kind[question.kind];
  int64_t turns = 0, conversations = 0;
  for (const GeneratedUser& user : benchmark.users) {
    conversations += static_cast<int64_t>(user.conversations.size());
    for (const LogRecord& record : user.conversations) turns += static_cast<int64_t>(record.messages.size());
  }
  std::printf("wrote %s/logs/ (%zu users, %lld conversations, %lld turns) and %s/questions.jsonl (%zu questions: "
              "%lld recall, %lld update, %lld abstain; %s split, seed %llu)\n",
              command.out.c_str(), benchmark.users.size(), static_cast<long long>(conversations),
              static_cast<long long>(turns), command.out.c_str(), benchmark.questions.size(),
              static_cast<long long>(by_kind[QuestionKind::Recall]), static_cast<long long>(by_kind[QuestionKind::Update]),
              static_cast<long long>(by_kind[QuestionKind::Abstain]), command.split.c_str(),
              static_cast<unsigned long long>(options.seed));
  if (benchmark.values_repeat)
    spdlog::warn("more users than some value pools hold: some values repeat across users (leakage ignores shared values)");
}

}  // namespace

void add_eval_commands(CLI::App& app) {
  CLI::App* eval = app.add_subcommand(
      "eval",
      "The personal-memory evaluation: generate a benchmark, validate question files, and measure\n"
      "recall, update accuracy, abstention, leakage and retention under each memory condition.");
  eval->require_subcommand(1);

  auto generate = std::make_shared<GenerateCommand>();
  CLI::App* generate_command = eval->add_subcommand(
      "generate",
      "Write a synthetic benchmark: DIR/logs/<user>.jsonl (interaction logs in which each user mentions\n"
      "personal facts in passing) and DIR/questions.jsonl (held-out questions in the split's wordings).");
  generate_command->add_option("--users", generate->options.n_users, "number of users")->capture_default_str();
  generate_command->add_option("--seed", generate->options.seed, "random seed (same seed, same files)")
      ->capture_default_str();
  generate_command->add_option("--split", generate->split,
                               "question wordings: dev (for tuning) or test (for reporting); disjoint pools")
      ->capture_default_str();
  generate_command->add_option("--conversations", generate->options.n_conversations, "conversations per user")
      ->capture_default_str();
  generate_command->add_option("--kinds", generate->options.n_kinds,
                               "fact kinds per user, stated or not (0 = all 15)")
      ->capture_default_str();
  generate_command->add_option("--unstated", generate->options.n_unstated,
                               "kinds per user never mentioned (asked as abstain questions)")
      ->capture_default_str();
  generate_command->add_option("--updates", generate->options.n_updates, "facts per user that change later")
      ->capture_default_str();
  generate_command->add_option("--out", generate->out, "output directory")->required();
  generate_command->callback([generate] { run_generate(*generate); });

  auto validate = std::make_shared<std::pair<std::string, std::string>>();
  CLI::App* validate_command = eval->add_subcommand(
      "validate", "Check a question file and/or interaction logs; prints counts, or the first error as file:line.");
  validate_command->add_option("--questions", validate->first, "question file (JSONL)");
  validate_command->add_option("--logs", validate->second, "log file or directory");
  validate_command->callback([validate] {
    if (validate->first.empty() && validate->second.empty()) fail("give --questions and/or --logs");
    if (!validate->first.empty()) {
      std::vector<Question> questions = read_questions(validate->first);
      std::printf("%s: %zu questions, valid\n", validate->first.c_str(), questions.size());
    }
    if (!validate->second.empty()) {
      InteractionLogs logs = read_interaction_logs(validate->second);
      std::printf("%s: %lld conversations of %zu users, valid\n", validate->second.c_str(),
                  static_cast<long long>(logs.n_records), logs.by_user.size());
    }
  });

  auto run = std::make_shared<EvalOptions>();
  auto conditions = std::make_shared<std::string>("none,context,bm25");
  CLI::App* run_command = eval->add_subcommand(
      "run",
      "Answer every question greedily in chat form under each condition and score the answers.\n"
      "Conditions: none (base model), context (the whole history as one block before the question),\n"
      "context-turns (the history as earlier chat turns), bm25 (the top-k log turns by BM25), adapter\n"
      "(the user's LoRA adapter, no history), adapter+bm25. Writes OUT/summary.json, OUT/answers.jsonl\n"
      "and OUT/chart.png, and prints a table.");
  run_command->add_option("--logs", run->logs, "interaction logs: a .jsonl file or a directory")->required();
  run_command->add_option("--questions", run->questions, "question file (JSONL)")->required();
  run_command->add_option("--conditions", *conditions, "comma-separated conditions")->capture_default_str();
  run_command->add_option("--out", run->out_dir, "output directory")->required();
  run_command->add_option("--model,-m", run->model, "base model (directory or .gguf); default: SmolLM2-135M-Instruct");
  run_command->add_option("--adapters", run->adapters_dir, "directory of PEFT adapters, one per user: DIR/<user>/");
  run_command->add_option("--registry", run->registry, "adapter registry: each user's live version");
  run_command->add_option("--users", run->users, "evaluate only these users (comma-separated)")->delimiter(',');
  run_command->add_option("--bm25-k", run->bm25_k, "log turns retrieved per question")->capture_default_str();
  run_command->add_option("--max-tokens", run->max_new_tokens, "most tokens per answer")->capture_default_str();
  run_command->add_option("--batch-size", run->batch_size, "questions per generation batch")->capture_default_str();
  run_command->add_option("--dtype", run->dtype, "float32, bfloat16 or float16")->capture_default_str();
  run_command->add_option("--device", run->device, "cpu or cuda[:N]")->capture_default_str();
  run_command->add_flag("!--no-retention", run->retention, "skip the perplexity measurement on the generic text");
  run_command->add_flag("!--no-chart", run->chart, "do not draw chart.png");
  run_command->add_option("--python", run->python, "Python with matplotlib for the chart (default: the project's .venv)");
  run_command->callback([run, conditions] {
    EvalOptions options = *run;
    options.conditions = parse_conditions(*conditions);
    run_memory_eval(options);
  });
}

}  // namespace mnemo
