#include "eval/eval_report.h"

#include "eval/jsonl_file.h"
#include "model/error.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

namespace mnemo {
namespace {

namespace fs = std::filesystem;

std::string command_output(const std::string& command) {
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[256];
    while (std::fgets(buffer, sizeof buffer, pipe)) out += buffer;
    ::pclose(pipe);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The commit of the source tree this binary was built from ("-dirty" when it
// has uncommitted changes outside bench/results), MNEMO_COMMIT when set.
std::string source_commit() {
  if (const char* given = std::getenv("MNEMO_COMMIT"); given && *given) return given;
  const std::string git = "git -C " + shell_quote(MNEMO_SOURCE_DIR);
  std::string commit = command_output(git + " rev-parse HEAD 2>/dev/null");
  if (commit.empty()) return "unknown";
  if (!command_output(git + " status --porcelain --untracked-files=no -- ':/' ':/!bench/results' 2>/dev/null")
           .empty())
    commit += "-dirty";
  return commit;
}

std::string utc_now() {
  std::time_t now = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buffer;
}

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown cpu";
}

nlohmann::json rate(double value) { return value < 0 ? nlohmann::json() : nlohmann::json(value); }

std::string percent(double value) { return value < 0 ? "-" : fmt::format("{:.0f}%", 100 * value); }

std::string python_for_chart(const EvalOptions& options) {
  if (!options.python.empty()) return options.python;
  if (const char* python = std::getenv("MNEMO_PYTHON"); python && *python) return python;
  return std::string(MNEMO_SOURCE_DIR) + "/.venv/bin/python";
}

}  // namespace

ConditionMetrics metrics_of(const std::vector<const EvalAnswer*>& answers) {
  ConditionMetrics m;
  int64_t recall_right = 0, update_right = 0, abstain_right = 0, leaked = 0;
  for (const EvalAnswer* answer : answers) {
    ++m.n_answers;
    switch (answer->question->kind) {
      case QuestionKind::Recall: ++m.n_recall, recall_right += answer->score.correct; break;
      case QuestionKind::Update: ++m.n_update, update_right += answer->score.correct; break;
      case QuestionKind::Abstain: ++m.n_abstain, abstain_right += answer->score.correct; break;
    }
    leaked += !answer->score.leaked.empty();
    m.prompt_tokens += static_cast<double>(answer->prompt_tokens);
    m.seconds += answer->seconds;
    m.n_truncated += answer->dropped_conversations > 0;
  }
  auto fraction = [](int64_t right, int64_t n) { return n ? static_cast<double>(right) / n : -1.0; };
  m.recall = fraction(recall_right, m.n_recall);
  m.update = fraction(update_right, m.n_update);
  m.abstention = fraction(abstain_right, m.n_abstain);
  m.leakage = m.n_answers ? static_cast<double>(leaked) / m.n_answers : 0;
  if (m.n_answers) {
    m.prompt_tokens /= m.n_answers;
    m.seconds /= m.n_answers;
  }
  return m;
}

nlohmann::ordered_json write_eval_report(const ReportInputs& inputs, const std::vector<EvalAnswer>& answers,
                                 const RetentionReport& retention) {
  const EvalOptions& options = *inputs.options;
  std::error_code error;
  fs::create_directories(options.out_dir, error);
  if (error) fail("{}: cannot create the output directory: {}", options.out_dir, error.message());

  // answers.jsonl: every answer with its verdict.
  std::string lines;
  for (const EvalAnswer& answer : answers) {
    nlohmann::ordered_json row;
    row["condition"] = condition_name(answer.condition);
    row["user"] = answer.question->user;
    row["fact"] = answer.question->fact;
    row["kind"] = question_kind_name(answer.question->kind);
    row["question"] = answer.question->question;
    row["answers"] = answer.question->answers;
    if (answer.question->kind == QuestionKind::Update) row["stale"] = answer.question->stale;
    row["answer"] = answer.answer;
    row["correct"] = answer.score.correct;
    row["gave_stale"] = answer.score.gave_stale;
    row["said_not_knowing"] = answer.score.said_not_knowing;
    row["leaked"] = answer.score.leaked;
    row["prompt_tokens"] = answer.prompt_tokens;
    row["dropped_conversations"] = answer.dropped_conversations;
    row["seconds"] = answer.seconds;
    lines += row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  write_text_file(fs::path(options.out_dir) / "answers.jsonl", lines);

  double mean_ratio = 0;
  for (const auto& [user, ppl] : retention.adapter_ppl) mean_ratio += ppl / retention.base_ppl;
  if (!retention.adapter_ppl.empty()) mean_ratio /= static_cast<double>(retention.adapter_ppl.size());

  nlohmann::ordered_json summary;
  summary["benchmark"] = "memory_eval";
  summary["date"] = utc_now();
  summary["commit"] = source_commit();
  summary["device"] = {{"cpu", cpu_name()},
                       {"cpu_cores", std::thread::hardware_concurrency()},
                       {"device", options.device}};
  summary["model"] = {{"path", inputs.model_path}, {"fingerprint", inputs.model_fingerprint}, {"dtype", options.dtype}};
  std::vector<std::string> condition_names;
  for (Condition condition : options.conditions) condition_names.push_back(condition_name(condition));
  summary["parameters"] = {{"logs", options.logs},
                           {"questions", options.questions},
                           {"conditions", condition_names},
                           {"adapters", options.adapters_dir.empty() ? nlohmann::json() : nlohmann::json(options.adapters_dir)},
                           {"registry", options.registry.empty() ? nlohmann::json() : nlohmann::json(options.registry)},
                           {"users", inputs.users},
                           {"bm25_k", options.bm25_k},
                           {"max_new_tokens", options.max_new_tokens},
                           {"batch_size", options.batch_size},
                           {"decoding", "greedy"},
                           {"retention", options.retention}};
  summary["n_users"] = inputs.users.size();
  summary["n_questions"] = inputs.n_questions;
  summary["log_records_skipped"] = inputs.logs_skipped;
  summary["retention"] = {{"measured", retention.measured},
                          {"text_tokens", retention.n_tokens},
                          {"base_ppl", retention.measured ? nlohmann::json(retention.base_ppl) : nlohmann::json()},
                          {"adapter_ppl", retention.adapter_ppl}};

  std::set<std::string> facts;
  for (const EvalAnswer& answer : answers) facts.insert(answer.question->fact);
  nlohmann::ordered_json conditions = nlohmann::ordered_json::object();
  std::vector<std::vector<std::string>> table;
  for (Condition condition : options.conditions) {
    std::vector<const EvalAnswer*> of_condition;
    for (const EvalAnswer& answer : answers)
      if (answer.condition == condition) of_condition.push_back(&answer);
    ConditionMetrics m = metrics_of(of_condition);
    const bool adapter = uses_adapter(condition);
    nlohmann::json retention_ratio =
        !retention.measured ? nlohmann::json() : adapter ? nlohmann::json(mean_ratio) : nlohmann::json(1.0);
    nlohmann::ordered_json by_fact = nlohmann::ordered_json::object();
    for (const std::string& fact : facts) {
      std::vector<const EvalAnswer*> of_fact;
      for (const EvalAnswer* answer : of_condition)
        if (answer->question->fact == fact) of_fact.push_back(answer);
      ConditionMetrics f = metrics_of(of_fact);
      by_fact[fact] = {{"recall", rate(f.recall)},
                       {"update", rate(f.update)},
                       {"abstention", rate(f.abstention)},
                       {"leakage", f.leakage},
                       {"n", f.n_answers}};
    }
    conditions[condition_name(condition)] = {{"recall", rate(m.recall)},
                                             {"update", rate(m.update)},
                                             {"abstention", rate(m.abstention)},
                                             {"leakage", m.leakage},
                                             {"retention_ppl_ratio", retention_ratio},
                                             {"prompt_tokens", m.prompt_tokens},
                                             {"seconds", m.seconds},
                                             {"n", {{"recall", m.n_recall},
                                                    {"update", m.n_update},
                                                    {"abstain", m.n_abstain},
                                                    {"truncated_prompts", m.n_truncated}}},
                                             {"by_fact", by_fact}};
    table.push_back({condition_name(condition), percent(m.recall), percent(m.update), percent(m.abstention),
                     percent(m.leakage),
                     retention_ratio.is_null() ? "-" : fmt::format("{:.2f}", retention_ratio.get<double>()),
                     fmt::format("{:.0f}", m.prompt_tokens), fmt::format("{:.2f}", m.seconds)});
    if (m.n_truncated > 0)
      spdlog::warn("eval {}: {} of {} prompts dropped their oldest conversations to fit the model's context",
                   condition_name(condition), m.n_truncated, m.n_answers);
  }
  summary["conditions"] = conditions;
  summary["seconds_total"] = inputs.seconds_total;

  const fs::path summary_path = fs::path(options.out_dir) / "summary.json";
  write_text_file(summary_path, summary.dump(2) + "\n");

  // The table.
  const std::vector<std::string> header{"condition", "recall",  "update", "abstention",
                                        "leakage",   "ppl x", "prompt tok", "s/question"};
  std::vector<size_t> widths(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    widths[c] = header[c].size();
    for (const auto& row : table) widths[c] = std::max(widths[c], row[c].size());
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c)
      line += c == 0 ? fmt::format("{:<{}}", row[c], widths[c]) : fmt::format("  {:>{}}", row[c], widths[c]);
    std::printf("%s\n", line.c_str());
  };
  std::printf("\n%zu questions, %zu users, model %s\n", inputs.n_questions, inputs.users.size(),
              inputs.model_path.c_str());
  print_row(header);
  for (const auto& row : table) print_row(row);
  if (retention.measured)
    std::printf("retention: base perplexity %.2f on %lld tokens of generic text\n", retention.base_ppl,
                static_cast<long long>(retention.n_tokens));
  std::printf("answers: %s\nsummary: %s\n", (fs::path(options.out_dir) / "answers.jsonl").c_str(),
              summary_path.c_str());
  std::fflush(stdout);

  if (options.chart) {
    const std::string python = python_for_chart(options);
    const std::string script = std::string(MNEMO_SOURCE_DIR) + "/scripts/eval_chart.py";
    const fs::path chart = fs::path(options.out_dir) / "chart.png";
    const std::string command = shell_quote(python) + " " + shell_quote(script) + " " +
                                shell_quote(summary_path.string()) + " " + shell_quote(chart.string()) + " >&2";
    int status = std::system(command.c_str());
    if (status == 0 && fs::exists(chart))
      std::printf("chart: %s\n", chart.c_str());
    else
      spdlog::warn("eval: no chart ({} {} failed; it needs matplotlib, which scripts/setup.sh installs)", python,
                   script);
  }
  return summary;
}

}  // namespace mnemo
