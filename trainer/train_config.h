// The trainer's configuration: what data each user's adapter is trained on,
// how, and how it is written. One plain struct, read once from YAML
// (configs/train.yaml) and validated; every field has the default that the
// measurements in trainer/README.md chose.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mnemo {

struct DataConfig {
  uint64_t seed = 1;
  // The user's own conversations, with the loss on what both sides say.
  bool conversations = true;
  double conversations_weight = 1.0;   // sampling weight of one conversation
  double user_turn_loss = 1.0;         // loss weight of user tokens (that is where the facts are)
  double assistant_turn_loss = 0.3;    // loss weight of assistant tokens
  double recency_boost = 1.0;          // newest conversation weighs 1 + this; oldest 1
  // A statement that replaced an older value ("I moved to Porto" after "I
  // live in Lyon"; "since I started the paleo diet") and the pairs written
  // from it weigh this many times more: the newest value of a changed fact
  // (2 against 1: updates 8 of 12 against 3 of 12 on the dev split).
  double change_weight = 2.0;
  // Updates the text rules cannot link ("my new Ford Bronco" after "I drive a
  // Honda Civic"): the generator labels each named thing's kind, and a new
  // city, employer, job, car or diet replaces the old (statement_changes.h).
  bool implicit_updates = true;
  // The user's first-person statements said back in the second person, as
  // answers to probes about the user ("What do you know about my dog?").
  bool statements = true;
  double statements_weight = 2.0;
  // Question/answer pairs and fact sentences written by a generator model
  // from each statement (few-shot), kept only when they keep its content.
  bool augmentation = true;
  double augmentation_weight = 2.0;
  int64_t augment_samples = 2;       // generations per statement: 1 greedy, the rest sampled
  double augment_temperature = 0.7;
  std::string augment_model;         // "" = the base model
  // Also drop generated pairs untrue to their statement (true_to_statement in
  // augmenter.h: the user's voice, a denial, an added name or number, a
  // question about what the statement does not talk about). Off: measured on
  // the dev split with the two switches below (README, recipe v7 data), it
  // did not beat v6 beyond the noise.
  bool augment_faithful = false;
  // Context distillation (context_distiller.h): the generator with one
  // statement in its prompt answers generic probes; the adapter learns the
  // grounded answers with nothing in the prompt.
  bool distillation = false;
  double distillation_weight = 2.0;
  int64_t distillation_per_statement = 2;     // probes asked per statement
  std::vector<std::string> distillation_probes;  // empty = the shipped bank
  // "You haven't told me" answers to probes about topics the user never named.
  bool abstention = true;
  // 80 × 1.5 with 64 steps: abstention 33% at the recall of 40 × 0.75 with 32
  // steps, which 80 × 1.5 with 32 steps cost (README: the dev-split ablation).
  double abstention_weight = 1.5;   // per probe
  int64_t abstention_probes = 80;   // per user; every topic never named once before any twice
  // The most of a user's sampling weight abstention may hold: a user who said
  // little gets proportionally less, so the adapter is not taught mostly to
  // not know (the 18 generated dev and test users hold 30-37%, below it).
  double abstention_max_share = 0.4;
  // A topic counts as mentioned only by the user's own words: a named
  // topic's word in their turns, a common-word topic's (job, diet, ...) in a
  // sentence of theirs that is not a question. Off: any message of the
  // conversation, the assistant's included, so a user who asked "How do
  // vaccines work?" is never probed about a job.
  bool abstention_own_words = false;
  // A common-word topic (job, diet, car, ...) counts as mentioned only in a
  // sentence where the user states something about themselves ("I drive a
  // Bronco."), not in their questions and requests nor the assistant's
  // words; named topics (sister, cat) count anywhere, as by default. Adds
  // the topics no log passes the whole-log test for: home city, hobby,
  // favorite food, employer; and asks the topics "my {topic}" does not fit
  // for their value too ("What am I by profession?"). Wins over
  // abstention_own_words.
  bool abstention_statements = false;
  // Statement probes also ask about a topic the abstention probes ask about,
  // in their wordings ("What's my rabbit's name again?"), answered with the
  // name when the statement puts one with the topic.
  bool ask_like_abstention = false;
  // Abstention answers name the topic before they say not knowing ("Your
  // cat is something you haven't told me about, so I don't know."), the way
  // a known fact is said ("Your dog is called Rex."): the answer is decided
  // at the word after the topic, where the MLP that holds the user's facts
  // reads the topic, not at the first word ("You haven't ..." against "You
  // have ...") before the topic is said.
  bool abstention_subject_first = false;
  // Each name the user gave a pet or a person the abstention probes ask
  // about is also asked in every one of their name wordings ("What's my
  // parrot's name again?" → "Your parrot is called Barnaby."), each drawn
  // with this weight (0: off); the abstention probes ask ~40 topics by
  // name and a user names a handful, so the wording alone otherwise says
  // "I don't know".
  double name_probes_weight = 0.0;
  // Retention: the base model's own answers to generic instructions, trained
  // with a KL penalty to the frozen base's distributions (and, with
  // replay_loss > 0, cross-entropy on them too).
  bool retention = true;
  int64_t retention_prompts = 48;   // from the shipped generic-instruction bank
  int64_t retention_answer_tokens = 48;
  double kl_weight = 1.0;
  double replay_loss = 0.0;
};

// The publish gate of `mnemo train --registry` (publish_gate.h): a new
// adapter goes live only when it passes these and is not worse than live.
struct GateConfig {
  bool enabled = true;
  double min_recall = 0.0;             // of the held-out questions built from the user's statements
  double max_perplexity_ratio = 1.10;  // adapter / base on the shipped generic text
  // Not worse than live: recall >= live's - recall_tolerance - 1/questions (one
  // answer is noise), and the perplexity ratio <= live's + perplexity_tolerance.
  double recall_tolerance = 0.1;
  double perplexity_tolerance = 0.05;
  int64_t max_questions = 16;
  int64_t answer_tokens = 32;
  int64_t retention_tokens = 512;  // of the shipped text
};

struct TrainConfig {
  DataConfig data;
  GateConfig gate;
  // The adapter.
  int64_t rank = 16;
  double alpha = 32;
  std::vector<std::string> target_modules = {"gate_proj", "up_proj", "down_proj"};
  // The schedule.
  int64_t steps = 64;
  int64_t examples_per_step = 8;     // per user
  int64_t retention_per_step = 2;    // KL sequences per user per step
  int64_t users_per_batch = 1;       // users trained together in one batch (1 on a CPU: bench/train)
  double learning_rate = 2e-3;
  int64_t warmup_steps = 3;
  double weight_decay = 0.0;
  double max_grad_norm = 1.0;
  int64_t max_sequence_tokens = 384;  // longer conversations are cut at a turn boundary
  uint64_t seed = 1;
  // The model.
  std::string model;  // "" = the default model
  std::string dtype = "float32";
  std::string device = "cpu";
  // The job: how many shards split the users, for a Kubernetes Indexed Job
  // (JOB_COMPLETION_INDEX gives a shard's index; Slurm arrays and --shard
  // carry their own count).
  int64_t shards = 1;
  // Where the job keeps its state so that a killed run resumes (train_job.h);
  // "" = --job-dir's, else none. Training checkpoints every this many steps.
  std::string job_dir;
  int64_t checkpoint_every = 8;
};

// Reads `path` (YAML). Unknown keys and values of the wrong type or out of
// range fail with the file and the key. A missing file fails.
TrainConfig read_train_config(const std::string& path);
// The whole config as JSON (recorded as the recipe in every adapter and job).
std::string train_config_json(const TrainConfig& config);
// Checks ranges; throws mnemo::Error naming the field.
void validate_train_config(const TrainConfig& config, const std::string& source);

}  // namespace mnemo
