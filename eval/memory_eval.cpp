#include "eval/memory_eval.h"

#include "adapters/adapter_slots.h"
#include "adapters/base_fingerprint.h"
#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "eval/bm25_index.h"
#include "eval/eval_report.h"
#include "eval/retention.h"
#include "model/base_model.h"
#include "model/default_model.h"
#include "model/error.h"
#include "model/generate.h"
#include "model/kv_cache.h"
#include "tokenizer/tokenizer.h"
#include "model/transformer.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr Condition kAllConditions[] = {Condition::None,    Condition::Context, Condition::ContextTurns,
                                        Condition::Bm25,    Condition::Adapter, Condition::AdapterBm25};

// The words around the memory in a prompt. One wording for every condition,
// so conditions differ only in the memory they carry.
constexpr const char* kHistoryIntro = "Here are my earlier conversations with you, oldest first.\n\n";
constexpr const char* kSnippetsIntro = "Here are notes from my earlier conversations with you.\n\n";
constexpr const char* kQuestionLead = "\n\nNow my question: ";

std::string date_of(const LogRecord& record) { return record.timestamp.substr(0, 10); }

std::string history_block(const std::vector<LogRecord>& records, size_t first) {
  std::string block;
  for (size_t r = first; r < records.size(); ++r) {
    block += "[" + date_of(records[r]) + "]\n";
    for (const ChatMessage& message : records[r].messages) {
      if (message.role == "system") continue;
      block += (message.role == "user" ? "User: " : "Assistant: ") + message.content + "\n";
    }
    block += "\n";
  }
  while (!block.empty() && block.back() == '\n') block.pop_back();
  return block;
}

// One user's history and its retrieval index.
struct UserMemory {
  const std::vector<LogRecord>* records = nullptr;
  std::unique_ptr<Bm25Index> index;
  std::vector<std::pair<size_t, size_t>> turn_of;  // index position -> (record, message)
};

UserMemory build_memory(const std::vector<LogRecord>* records) {
  UserMemory memory;
  memory.records = records;
  memory.index = std::make_unique<Bm25Index>();
  if (!records) return memory;
  for (size_t r = 0; r < records->size(); ++r)
    for (size_t m = 0; m < (*records)[r].messages.size(); ++m) {
      if ((*records)[r].messages[m].role == "system") continue;
      memory.index->add((*records)[r].messages[m].content);
      memory.turn_of.emplace_back(r, m);
    }
  return memory;
}

std::string retrieved_block(const UserMemory& memory, const std::string& question, int64_t k) {
  std::vector<RetrievedTurn> turns = memory.index->search(question, k);
  // Oldest first, like the history, so a newer statement comes after an older one.
  std::sort(turns.begin(), turns.end(), [](const auto& a, const auto& b) { return a.position < b.position; });
  std::string block;
  for (const RetrievedTurn& turn : turns) {
    auto [r, m] = memory.turn_of.at(static_cast<size_t>(turn.position));
    const LogRecord& record = (*memory.records)[r];
    block += "[" + date_of(record) + "] " + (record.messages[m].role == "user" ? "User: " : "Assistant: ") +
             record.messages[m].content + "\n";
  }
  while (!block.empty() && block.back() == '\n') block.pop_back();
  return block;
}

// A question made into a prompt under one condition.
struct Work {
  size_t answer = 0;  // index into the answers
  std::vector<int32_t> prompt;
  int32_t slot = -1;
  int64_t dropped_conversations = 0;
};

class PromptBuilder {
 public:
  PromptBuilder(const BaseModel& model, const EvalOptions& options) : model_(model), options_(options) {}

  Work build(Condition condition, const Question& question, const UserMemory& memory) const {
    Work work;
    const int64_t room = model_.transformer->config().max_position_embeddings - options_.max_new_tokens;
    const std::vector<LogRecord> none;
    const std::vector<LogRecord>& records = memory.records ? *memory.records : none;
    auto encode = [&](const std::string& content) { return encode_chat(model_, {{"user", content}}); };
    switch (condition) {
      case Condition::None:
      case Condition::Adapter:
        work.prompt = encode(question.question);
        break;
      case Condition::Context:
        for (size_t first = 0;; ++first) {
          work.prompt = encode(first < records.size()
                                   ? kHistoryIntro + history_block(records, first) + kQuestionLead + question.question
                                   : question.question);
          work.dropped_conversations = static_cast<int64_t>(first);
          if (static_cast<int64_t>(work.prompt.size()) <= room || first >= records.size()) break;
        }
        break;
      case Condition::ContextTurns:
        for (size_t first = 0;; ++first) {
          std::vector<ChatMessage> messages;
          for (size_t r = first; r < records.size(); ++r)
            for (const ChatMessage& message : records[r].messages)
              if (message.role != "system") messages.push_back(message);
          messages.push_back({"user", question.question});
          work.prompt = encode_chat(model_, messages);
          work.dropped_conversations = static_cast<int64_t>(first);
          if (static_cast<int64_t>(work.prompt.size()) <= room || first >= records.size()) break;
        }
        break;
      case Condition::Bm25:
      case Condition::AdapterBm25: {
        std::string block = retrieved_block(memory, question.question, options_.bm25_k);
        work.prompt = encode(block.empty() ? question.question
                                           : kSnippetsIntro + block + kQuestionLead + question.question);
        break;
      }
    }
    return work;
  }

 private:
  const BaseModel& model_;
  const EvalOptions& options_;
};

// Every evaluated user's adapter in one set of slots, so questions of
// different users run in one batch, each with its own adapter.
struct LoadedAdapters {
  std::unique_ptr<AdapterSlots> slots;
  std::map<std::string, int32_t> slot_of;
};

LoadedAdapters load_adapters(const EvalOptions& options, const BaseModel& model, const std::string& model_fingerprint,
                             const std::vector<std::string>& users) {
  LoadedAdapters loaded;
  const Transformer& transformer = *model.transformer;
  loaded.slots = std::make_unique<AdapterSlots>(transformer.config(), static_cast<int64_t>(users.size()),
                                                transformer.dtype(), transformer.device());
  std::unique_ptr<Registry> registry;
  fs::path export_root;
  struct RemoveOnExit {  // the exported copies go, whatever happens
    fs::path* path;
    ~RemoveOnExit() {
      std::error_code ignored;
      if (!path->empty()) fs::remove_all(*path, ignored);
    }
  } remove_on_exit{&export_root};
  if (!options.registry.empty()) {
    registry = Registry::open(options.registry, {});
    // The same weights in another file format (GGUF, or converted to a
    // directory) have another fingerprint, so a mismatch is said, not refused.
    if (std::optional<std::string> base = registry->base_fingerprint(); base && *base != model_fingerprint)
      spdlog::warn("registry {} holds adapters for base model {}, but {} is {}", options.registry, *base, model.path,
                   model_fingerprint);
    export_root = fs::temp_directory_path() / fmt::format("mnemo-eval-{}", ::getpid());
    fs::remove_all(export_root);
  }
  for (size_t u = 0; u < users.size(); ++u) {
    const std::string& user = users[u];
    std::string dir;
    if (registry) {
      if (!registry->live_version(user))
        fail("registry {}: user {} has no live adapter (use --users to evaluate a subset)", options.registry, user);
      dir = (export_root / user).string();
      registry->export_version(user, dir);
    } else {
      dir = (fs::path(options.adapters_dir) / user).string();
      if (!fs::is_directory(dir))
        fail("{}: no adapter for user {} (expected a PEFT directory; use --users to evaluate a subset)", dir, user);
    }
    LoraAdapter adapter = read_peft_adapter(dir);
    try {
      validate_against(adapter, transformer.config());
    } catch (const Error& e) {
      fail("adapter {} of user {} does not fit the model {}: {}", dir, user, model.path, e.what());
    }
    loaded.slots->load(static_cast<int32_t>(u), adapter);
    loaded.slot_of[user] = static_cast<int32_t>(u);
  }
  return loaded;
}

std::vector<int32_t> common_prefix(const std::vector<const Work*>& works) {
  std::vector<int32_t> prefix = works.front()->prompt;
  for (const Work* work : works) {
    size_t n = 0;
    while (n < prefix.size() && n < work->prompt.size() && prefix[n] == work->prompt[n]) ++n;
    prefix.resize(n);
  }
  size_t shortest = prefix.size() + 1;
  for (const Work* work : works) shortest = std::min(shortest, work->prompt.size());
  if (prefix.size() >= shortest) prefix.resize(shortest - 1);  // every prompt keeps a token to prefill
  return prefix;
}

// A progress line: redrawn in place on a terminal, a log line every 15 s otherwise.
class Progress {
 public:
  Progress(std::string label, size_t total) : label_(std::move(label)), total_(total), tty_(::isatty(2)) {}
  void update(size_t done) {
    auto now = Clock::now();
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double eta = done ? elapsed / done * (total_ - done) : 0;
    std::string line = fmt::format("eval {}: {}/{} questions, {:.1f} s/question, {:.0f} s left", label_, done, total_,
                                   done ? elapsed / done : 0.0, eta);
    if (tty_) {
      std::fprintf(stderr, "\r%-90s", line.c_str());
      if (done == total_) std::fputc('\n', stderr);
    } else if (done == total_ || now - last_ > std::chrono::seconds(15)) {
      spdlog::info("{}", line);
      last_ = now;
    }
  }

 private:
  std::string label_;
  size_t total_;
  bool tty_;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_ = Clock::now();
};

}  // namespace

const char* condition_name(Condition condition) {
  switch (condition) {
    case Condition::None: return "none";
    case Condition::Context: return "context";
    case Condition::ContextTurns: return "context-turns";
    case Condition::Bm25: return "bm25";
    case Condition::Adapter: return "adapter";
    case Condition::AdapterBm25: return "adapter+bm25";
  }
  return "?";
}

std::vector<Condition> parse_conditions(const std::string& list) {
  std::vector<Condition> conditions;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    std::string name = list.substr(start, end == std::string::npos ? std::string::npos : end - start);
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    bool known = false;
    for (Condition condition : kAllConditions)
      if (name == condition_name(condition)) {
        if (std::find(conditions.begin(), conditions.end(), condition) == conditions.end())
          conditions.push_back(condition);
        known = true;
      }
    if (!known)
      fail("--conditions: unknown condition \"{}\" (known: none, context, context-turns, bm25, adapter, adapter+bm25)",
           name);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return conditions;
}

bool uses_adapter(Condition condition) {
  return condition == Condition::Adapter || condition == Condition::AdapterBm25;
}

nlohmann::ordered_json run_memory_eval(const EvalOptions& options) {
  const auto started = Clock::now();
  if (options.conditions.empty()) fail("--conditions: name at least one condition");
  if (options.batch_size < 1) fail("--batch-size must be at least 1, got {}", options.batch_size);
  if (options.max_new_tokens < 1) fail("--max-tokens must be at least 1, got {}", options.max_new_tokens);
  const bool needs_adapters = std::any_of(options.conditions.begin(), options.conditions.end(), uses_adapter);
  if (needs_adapters && options.adapters_dir.empty() && options.registry.empty())
    fail("the adapter conditions need --adapters DIR (DIR/<user>/ PEFT adapters) or --registry DIR");
  if (!options.adapters_dir.empty() && !options.registry.empty())
    fail("give --adapters or --registry, not both");

  // Inputs: every question is validated before any model work starts.
  std::vector<Question> all_questions = read_questions(options.questions);
  std::vector<Question> questions;
  std::set<std::string> wanted(options.users.begin(), options.users.end());
  std::set<std::string> users_with_questions;
  for (const Question& question : all_questions) {
    users_with_questions.insert(question.user);
    if (wanted.empty() || wanted.contains(question.user)) questions.push_back(question);
  }
  for (const std::string& user : wanted)
    if (!users_with_questions.contains(user)) fail("--users: {} has no questions in {}", user, options.questions);
  std::vector<std::string> users;
  for (const Question& question : questions)
    if (std::find(users.begin(), users.end(), question.user) == users.end()) users.push_back(question.user);
  // Leakage and abstention look for every user's values, evaluated or not.
  const FactValueOwners owners(all_questions);

  InteractionLogs logs = read_interaction_logs(options.logs);
  std::map<std::string, UserMemory> memories;
  for (const std::string& user : users) {
    auto it = logs.by_user.find(user);
    if (it == logs.by_user.end()) spdlog::warn("eval: user {} has questions but no logs in {}", user, options.logs);
    memories.emplace(user, build_memory(it == logs.by_user.end() ? nullptr : &it->second));
  }

  const std::string model_path = options.model.empty() ? default_model_path() : options.model;
  LoadOptions load;
  load.dtype = options.dtype;
  load.device = options.device;
  BaseModel model = open_base_model(model_path, load);
  if (!model.chat_template) fail("{}: the evaluation asks in chat form, but the model has no chat template", model_path);
  const std::string model_fingerprint = base_model_fingerprint(model_path);
  LoadedAdapters adapters;
  if (needs_adapters || (options.retention && (!options.adapters_dir.empty() || !options.registry.empty())))
    adapters = load_adapters(options, model, model_fingerprint, users);

  PromptBuilder builder(model, options);
  std::vector<EvalAnswer> answers;
  for (Condition condition : options.conditions) {
    const bool adapter = uses_adapter(condition);
    const bool shares_history = condition == Condition::Context || condition == Condition::ContextTurns;
    std::vector<Work> works;
    for (const Question& question : questions) {
      Work work = builder.build(condition, question, memories.at(question.user));
      work.slot = adapter ? adapters.slot_of.at(question.user) : -1;
      work.answer = answers.size();
      EvalAnswer answer;
      answer.condition = condition;
      answer.question = &question;
      answer.prompt_tokens = static_cast<int64_t>(work.prompt.size());
      answer.dropped_conversations = work.dropped_conversations;
      answers.push_back(std::move(answer));
      works.push_back(std::move(work));
    }

    // Batches: questions in file order; under the history conditions one
    // user's questions at a time, so their shared history is prefilled once
    // (a copy of its KV cache per question). Adapter batches mix users.
    Progress progress(condition_name(condition), works.size());
    size_t done = 0;
    for (size_t begin = 0; begin < works.size();) {
      size_t end = begin;
      while (end < works.size() && static_cast<int64_t>(end - begin) < options.batch_size &&
             (!shares_history || answers[works[end].answer].question->user ==
                                     answers[works[begin].answer].question->user))
        ++end;
      const auto batch_start = Clock::now();
      std::vector<const Work*> batch;
      for (size_t w = begin; w < end; ++w) batch.push_back(&works[w]);
      std::unique_ptr<SequenceCache> prefix;
      std::vector<int32_t> shared = shares_history ? common_prefix(batch) : std::vector<int32_t>{};
      if (shared.size() >= 16) {
        c10::InferenceMode inference_mode;
        prefix = std::make_unique<SequenceCache>(model.transformer->config(), static_cast<int64_t>(shared.size()),
                                                 model.transformer->dtype(), model.transformer->device());
        ForwardBatch forward;
        forward.tokens = {shared};
        forward.caches = {prefix.get()};
        forward.adapter_slots = {batch.front()->slot};
        model.transformer->forward(forward, adapters.slots.get());
      }
      std::vector<GenerationRequest> requests;
      for (const Work* work : batch) {
        GenerationRequest request;
        request.prompt = work->prompt;
        request.params.max_new_tokens = options.max_new_tokens;
        request.params.stop_token_ids = model.stop_token_ids;
        request.adapter_slot = work->slot;
        request.prefix = prefix.get();
        requests.push_back(std::move(request));
      }
      std::vector<GenerationResult> results =
          generate(*model.transformer, *model.tokenizer, requests, {}, adapter ? adapters.slots.get() : nullptr);
      const double seconds = std::chrono::duration<double>(Clock::now() - batch_start).count();
      for (size_t i = 0; i < batch.size(); ++i) {
        EvalAnswer& answer = answers[batch[i]->answer];
        answer.answer = results[i].text;
        answer.score = score_answer(*answer.question, answer.answer, owners);
        answer.seconds = seconds / static_cast<double>(batch.size());
      }
      done += batch.size();
      progress.update(done);
      begin = end;
    }
  }

  RetentionReport retention;
  if (options.retention) {
    const auto retention_start = Clock::now();
    std::vector<int32_t> tokens = model.tokenizer->encode(retention_text(), /*add_special_tokens=*/true);
    std::vector<int32_t> slots{-1};
    for (const std::string& user : users)
      if (adapters.slot_of.contains(user)) slots.push_back(adapters.slot_of.at(user));
    std::vector<double> ppl = perplexities(*model.transformer, tokens, slots, adapters.slots.get());
    retention.measured = true;
    retention.n_tokens = static_cast<int64_t>(tokens.size());
    retention.base_ppl = ppl[0];
    size_t next = 1;
    for (const std::string& user : users)
      if (adapters.slot_of.contains(user)) retention.adapter_ppl[user] = ppl[next++];
    spdlog::info("eval retention: {} tokens, base perplexity {:.2f}{} ({:.1f} s)", tokens.size(), retention.base_ppl,
                 retention.adapter_ppl.empty() ? "" : fmt::format(", {} adapters", retention.adapter_ppl.size()),
                 std::chrono::duration<double>(Clock::now() - retention_start).count());
  }

  ReportInputs report;
  report.options = &options;
  report.model_path = model_path;
  report.model_fingerprint = model_fingerprint;
  report.users = users;
  report.n_questions = questions.size();
  report.logs_skipped = logs.n_skipped;
  report.seconds_total = std::chrono::duration<double>(Clock::now() - started).count();
  return write_eval_report(report, answers, retention);
}

}  // namespace mnemo
