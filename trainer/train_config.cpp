#include "trainer/train_config.h"

#include "adapters/lora_adapter.h"
#include "model/error.h"

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <functional>
#include <map>

namespace mnemo {
namespace {

// One section's keys, each with the code that reads it into the config.
using Reader = std::function<void(const YAML::Node&)>;

template <typename T>
Reader field(T& target) {
  return [&target](const YAML::Node& node) { target = node.as<T>(); };
}

void read_section(const YAML::Node& section, const std::map<std::string, Reader>& readers, const std::string& source,
                  const std::string& prefix) {
  if (!section.IsMap()) fail("{}: {} must be a mapping", source, prefix.empty() ? "the file" : prefix);
  for (const auto& entry : section) {
    const std::string key = entry.first.as<std::string>();
    const std::string name = prefix.empty() ? key : prefix + "." + key;
    auto it = readers.find(key);
    if (it == readers.end()) fail("{}: unknown key {} (line {})", source, name, entry.first.Mark().line + 1);
    try {
      it->second(entry.second);
    } catch (const YAML::Exception&) {
      fail("{}: {} has a value of the wrong type (line {})", source, name, entry.second.Mark().line + 1);
    }
  }
}

}  // namespace

void validate_train_config(const TrainConfig& c, const std::string& source) {
  auto check = [&](bool ok, const char* field, const std::string& rule) {
    if (!ok) fail("{}: {} {}", source, field, rule);
  };
  check(c.rank >= 1 && c.rank <= kMaxLoraRank, "adapter.rank", fmt::format("must be 1..{}", kMaxLoraRank));
  check(std::isfinite(c.alpha) && c.alpha > 0, "adapter.alpha", "must be a positive number");
  check(!c.target_modules.empty(), "adapter.target_modules", "must name at least one module");
  for (const std::string& module : c.target_modules)
    check(parse_module_name(module).has_value(), "adapter.target_modules",
          fmt::format("names \"{}\"; expected q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj or down_proj", module));
  check(c.steps >= 1 && c.steps <= 100000, "schedule.steps", "must be 1..100000");
  check(c.examples_per_step >= 1 && c.examples_per_step <= 1024, "schedule.examples_per_step", "must be 1..1024");
  check(c.retention_per_step >= 0 && c.retention_per_step <= 1024, "schedule.retention_per_step", "must be 0..1024");
  check(c.users_per_batch >= 1 && c.users_per_batch <= 256, "schedule.users_per_batch", "must be 1..256");
  check(std::isfinite(c.learning_rate) && c.learning_rate > 0 && c.learning_rate < 1, "schedule.learning_rate",
        "must be in (0, 1)");
  check(c.warmup_steps >= 0, "schedule.warmup_steps", "must be >= 0");
  check(std::isfinite(c.weight_decay) && c.weight_decay >= 0, "schedule.weight_decay", "must be >= 0");
  check(std::isfinite(c.max_grad_norm) && c.max_grad_norm >= 0, "schedule.max_grad_norm", "must be >= 0");
  check(c.max_sequence_tokens >= 16 && c.max_sequence_tokens <= 8192, "schedule.max_sequence_tokens",
        "must be 16..8192");
  const DataConfig& d = c.data;
  for (auto [value, name] : {std::pair{d.conversations_weight, "data.conversations_weight"},
                             {d.user_turn_loss, "data.user_turn_loss"},
                             {d.assistant_turn_loss, "data.assistant_turn_loss"},
                             {d.recency_boost, "data.recency_boost"},
                             {d.change_weight, "data.change_weight"},
                             {d.statements_weight, "data.statements_weight"},
                             {d.augmentation_weight, "data.augmentation_weight"},
                             {d.abstention_weight, "data.abstention_weight"},
                             {d.name_probes_weight, "data.name_probes_weight"},
                             {d.kl_weight, "data.kl_weight"},
                             {d.replay_loss, "data.replay_loss"}})
    check(std::isfinite(value) && value >= 0, name, "must be a number >= 0");
  check(d.augment_samples >= 1 && d.augment_samples <= 16, "data.augment_samples", "must be 1..16");
  check(std::isfinite(d.augment_temperature) && d.augment_temperature > 0, "data.augment_temperature",
        "must be > 0");
  check(d.abstention_probes >= 0, "data.abstention_probes", "must be >= 0");
  check(std::isfinite(d.abstention_max_share) && d.abstention_max_share >= 0 && d.abstention_max_share < 1,
        "data.abstention_max_share", "must be 0 <= share < 1");
  check(d.distillation_per_statement >= 0 && d.distillation_per_statement <= 64, "data.distillation_per_statement",
        "must be 0..64");
  for (const std::string& probe : d.distillation_probes)
    check(!probe.empty(), "data.distillation_probes", "must not hold an empty probe");
  check(d.retention_prompts >= 0, "data.retention_prompts", "must be >= 0");
  check(d.retention_answer_tokens >= 1 && d.retention_answer_tokens <= 512, "data.retention_answer_tokens",
        "must be 1..512");
  check(c.dtype == "float32" || c.dtype == "bfloat16", "dtype", "must be float32 or bfloat16");
  check(c.shards >= 1 && c.shards <= 1000000, "job.shards", "must be 1..1000000");
  check(c.checkpoint_every >= 0, "job.checkpoint_every", "must be >= 0 (0: only when a user's training ends)");
  const GateConfig& g = c.gate;
  for (auto [value, name] : {std::pair{g.min_recall, "gate.min_recall"},
                             {g.recall_tolerance, "gate.recall_tolerance"}})
    check(std::isfinite(value) && value >= 0 && value <= 1, name, "must be 0..1");
  check(std::isfinite(g.max_perplexity_ratio) && g.max_perplexity_ratio > 0, "gate.max_perplexity_ratio",
        "must be a number > 0");
  check(std::isfinite(g.perplexity_tolerance) && g.perplexity_tolerance >= 0, "gate.perplexity_tolerance",
        "must be a number >= 0");
  check(g.max_questions >= 0 && g.max_questions <= 1024, "gate.max_questions", "must be 0..1024");
  check(g.answer_tokens >= 1 && g.answer_tokens <= 512, "gate.answer_tokens", "must be 1..512");
  check(g.retention_tokens >= 16 && g.retention_tokens <= 65536, "gate.retention_tokens", "must be 16..65536");
}

std::string train_config_json(const TrainConfig& c) {
  const DataConfig& d = c.data;
  return nlohmann::ordered_json{{"adapter", {{"rank", c.rank}, {"alpha", c.alpha}, {"target_modules", c.target_modules}}},
              {"schedule",
               {{"steps", c.steps},
                {"examples_per_step", c.examples_per_step},
                {"retention_per_step", c.retention_per_step},
                {"users_per_batch", c.users_per_batch},
                {"learning_rate", c.learning_rate},
                {"warmup_steps", c.warmup_steps},
                {"weight_decay", c.weight_decay},
                {"max_grad_norm", c.max_grad_norm},
                {"max_sequence_tokens", c.max_sequence_tokens},
                {"seed", c.seed}}},
              {"data",
               {{"seed", d.seed},
                {"conversations", d.conversations},
                {"conversations_weight", d.conversations_weight},
                {"user_turn_loss", d.user_turn_loss},
                {"assistant_turn_loss", d.assistant_turn_loss},
                {"recency_boost", d.recency_boost},
                {"change_weight", d.change_weight},
                {"implicit_updates", d.implicit_updates},
                {"statements", d.statements},
                {"statements_weight", d.statements_weight},
                {"augmentation", d.augmentation},
                {"augmentation_weight", d.augmentation_weight},
                {"augment_samples", d.augment_samples},
                {"augment_temperature", d.augment_temperature},
                {"augment_model", d.augment_model},
                {"augment_faithful", d.augment_faithful},
                {"distillation", d.distillation},
                {"distillation_weight", d.distillation_weight},
                {"distillation_per_statement", d.distillation_per_statement},
                {"distillation_probes", d.distillation_probes},
                {"abstention", d.abstention},
                {"abstention_weight", d.abstention_weight},
                {"abstention_probes", d.abstention_probes},
                {"abstention_max_share", d.abstention_max_share},
                {"abstention_own_words", d.abstention_own_words},
                {"abstention_statements", d.abstention_statements},
                {"ask_like_abstention", d.ask_like_abstention},
                {"abstention_subject_first", d.abstention_subject_first},
                {"name_probes_weight", d.name_probes_weight},
                {"retention", d.retention},
                {"retention_prompts", d.retention_prompts},
                {"retention_answer_tokens", d.retention_answer_tokens},
                {"kl_weight", d.kl_weight},
                {"replay_loss", d.replay_loss}}},
              {"gate",
               {{"enabled", c.gate.enabled},
                {"min_recall", c.gate.min_recall},
                {"max_perplexity_ratio", c.gate.max_perplexity_ratio},
                {"recall_tolerance", c.gate.recall_tolerance},
                {"perplexity_tolerance", c.gate.perplexity_tolerance},
                {"max_questions", c.gate.max_questions},
                {"answer_tokens", c.gate.answer_tokens},
                {"retention_tokens", c.gate.retention_tokens}}}}.dump();
}

TrainConfig read_train_config(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    fail("{}: cannot read the training config", path);
  } catch (const YAML::Exception& e) {
    fail("{}:{}: invalid YAML: {}", path, e.mark.line + 1, e.msg);
  }
  TrainConfig c;
  if (!root.IsNull()) {
    DataConfig& d = c.data;
    std::map<std::string, Reader> adapter = {
        {"rank", field(c.rank)}, {"alpha", field(c.alpha)}, {"target_modules", field(c.target_modules)}};
    std::map<std::string, Reader> schedule = {
        {"steps", field(c.steps)},
        {"examples_per_step", field(c.examples_per_step)},
        {"retention_per_step", field(c.retention_per_step)},
        {"users_per_batch", field(c.users_per_batch)},
        {"learning_rate", field(c.learning_rate)},
        {"warmup_steps", field(c.warmup_steps)},
        {"weight_decay", field(c.weight_decay)},
        {"max_grad_norm", field(c.max_grad_norm)},
        {"max_sequence_tokens", field(c.max_sequence_tokens)},
        {"seed", field(c.seed)}};
    std::map<std::string, Reader> data = {
        {"seed", field(d.seed)},
        {"conversations", field(d.conversations)},
        {"conversations_weight", field(d.conversations_weight)},
        {"user_turn_loss", field(d.user_turn_loss)},
        {"assistant_turn_loss", field(d.assistant_turn_loss)},
        {"recency_boost", field(d.recency_boost)},
        {"change_weight", field(d.change_weight)},
        {"implicit_updates", field(d.implicit_updates)},
        {"statements", field(d.statements)},
        {"statements_weight", field(d.statements_weight)},
        {"augmentation", field(d.augmentation)},
        {"augmentation_weight", field(d.augmentation_weight)},
        {"augment_samples", field(d.augment_samples)},
        {"augment_temperature", field(d.augment_temperature)},
        {"augment_model", field(d.augment_model)},
        {"augment_faithful", field(d.augment_faithful)},
        {"distillation", field(d.distillation)},
        {"distillation_weight", field(d.distillation_weight)},
        {"distillation_per_statement", field(d.distillation_per_statement)},
        {"distillation_probes", field(d.distillation_probes)},
        {"abstention", field(d.abstention)},
        {"abstention_weight", field(d.abstention_weight)},
        {"abstention_probes", field(d.abstention_probes)},
        {"abstention_max_share", field(d.abstention_max_share)},
        {"abstention_own_words", field(d.abstention_own_words)},
        {"abstention_statements", field(d.abstention_statements)},
        {"ask_like_abstention", field(d.ask_like_abstention)},
        {"abstention_subject_first", field(d.abstention_subject_first)},
        {"name_probes_weight", field(d.name_probes_weight)},
        {"retention", field(d.retention)},
        {"retention_prompts", field(d.retention_prompts)},
        {"retention_answer_tokens", field(d.retention_answer_tokens)},
        {"kl_weight", field(d.kl_weight)},
        {"replay_loss", field(d.replay_loss)}};
    std::map<std::string, Reader> job = {
        {"shards", field(c.shards)}, {"dir", field(c.job_dir)}, {"checkpoint_every", field(c.checkpoint_every)}};
    GateConfig& g = c.gate;
    std::map<std::string, Reader> gate = {{"enabled", field(g.enabled)},
                                          {"min_recall", field(g.min_recall)},
                                          {"max_perplexity_ratio", field(g.max_perplexity_ratio)},
                                          {"recall_tolerance", field(g.recall_tolerance)},
                                          {"perplexity_tolerance", field(g.perplexity_tolerance)},
                                          {"max_questions", field(g.max_questions)},
                                          {"answer_tokens", field(g.answer_tokens)},
                                          {"retention_tokens", field(g.retention_tokens)}};
    std::map<std::string, Reader> top = {
        {"model", field(c.model)},
        {"dtype", field(c.dtype)},
        {"device", field(c.device)},
        {"adapter", [&](const YAML::Node& n) { read_section(n, adapter, path, "adapter"); }},
        {"schedule", [&](const YAML::Node& n) { read_section(n, schedule, path, "schedule"); }},
        {"data", [&](const YAML::Node& n) { read_section(n, data, path, "data"); }},
        {"job", [&](const YAML::Node& n) { read_section(n, job, path, "job"); }},
        {"gate", [&](const YAML::Node& n) { read_section(n, gate, path, "gate"); }}};
    read_section(root, top, path, "");
  }
  validate_train_config(c, path);
  return c;
}

}  // namespace mnemo
