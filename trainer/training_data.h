// The data builder: turns one user's conversations into the chat examples
// their adapter is trained on. Each part is switched and weighted in
// DataConfig (train_config.h):
//   conversation  the user's own conversations, loss on both sides, newer
//                 ones sampled more often; sentences a newer statement
//                 replaced are cut out
//   statement     a probe about the user ("What do you know about my dog?",
//                 "What have I told you about myself?") answered with what
//                 they said, in the second person; newer statements are
//                 drawn more often (recency_boost), so where an update was
//                 not recognised the newest value still weighs most
//   augmented     question/answer pairs and fact sentences a generator model
//                 wrote from one statement (augmenter.h)
//   distilled     a generic probe answered by a teacher with one statement
//                 in its prompt (context_distiller.h)
//   abstention    a probe about a topic the user never named, answered with
//                 not knowing
// Retention examples (the base's own answers to generic instructions) are
// shared by every user and built by retention_bank.h.
//
// Every probe and answer wording here is the trainer's own; the evaluation's
// questions are never read.
#pragma once

#include "eval/interaction_log.h"
#include "tokenizer/chat_template.h"
#include "trainer/train_config.h"
#include "trainer/user_statements.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace mnemo {

enum class ExampleSource { Conversation, Statement, Augmented, Distilled, Abstention, Retention };
const char* example_source_name(ExampleSource source);

struct ChatExample {
  ExampleSource source = ExampleSource::Conversation;
  std::vector<ChatMessage> messages;  // the default system prompt is the template's
  double sampling_weight = 1;         // relative chance of being drawn in a step
  double user_loss = 0;               // loss weight on user turns
  double assistant_loss = 1;          // loss weight on assistant turns
  bool kl_to_base = false;            // retention: KL to the frozen base on the assistant turn
};

// A generated question/answer pair or fact sentence (augmenter.h).
struct AugmentedPair {
  std::string question;  // empty for a fact sentence alone
  std::string answer;
  int64_t conversation = 0;    // of the statement it was written from (newer ones are drawn more often)
  bool states_change = false;  // that statement replaced an older value (data.change_weight)
};

struct UserData {
  std::string user;
  std::vector<UserStatement> statements;
  std::vector<ChatExample> examples;
  std::string data_fingerprint;  // of the conversations the data was built from
  int64_t n_superseded = 0;
  int64_t n_replaced_by_kind = 0;  // of those, found by mark_replaced_by_kind
  int64_t n_kept_current = 0;      // changes trained by their current part ("I moved to Porto")
  std::map<std::string, std::string> kinds;  // named thing → its kind, when labelled
  int64_t n_conversations = 0;
};

// Labels named things with their kind (augmenter.h's label_kinds over the
// generator): what the implicit updates of mark_replaced_by_kind need.
struct NamedThing {
  std::string thing;     // "Ford Bronco"
  std::string sentence;  // the statement that names it
};
using KindLabeler = std::function<std::map<std::string, std::string>(const std::vector<NamedThing>&)>;

// Builds every part but augmentation (which needs a model) and retention.
// With `label_kinds` (and config.implicit_updates), updates the text rules do
// not see are found too. Deterministic for a seed (and a deterministic
// labeler).
UserData build_user_data(const std::string& user, const std::vector<LogRecord>& conversations,
                         const DataConfig& config, const KindLabeler& label_kinds = {});

// Adds the generator's pairs for `statement` as augmented examples.
void add_augmented_examples(UserData& data, const std::vector<AugmentedPair>& pairs, const DataConfig& config);

// Adds the teacher's grounded answers (context_distiller.h) as distilled examples.
void add_distilled_examples(UserData& data, const std::vector<AugmentedPair>& pairs, const DataConfig& config);

// Scales the abstention examples' sampling weights down so that they hold at
// most `config.abstention_max_share` of the user's total; call it once every
// example is in. Returns the factor (1 when the share was within bounds, or
// when abstention is all there is).
double limit_abstention_share(UserData& data, const DataConfig& config);

// `mnemo train --dump-data DIR`: DIR/<user>.statements.jsonl (each statement,
// its named things and their kinds, whether superseded) and DIR/<user>.jsonl
// (every example with its source and sampling weight).
void dump_user_data(const std::string& dir, const UserData& data);

// Every question wording the data builder asks ("{topic}" where a topic is
// put in), for the test that none is an evaluation question.
std::vector<std::string> probe_wordings();

// "sha256:<hex>" over the user's conversations as read (ids, timestamps,
// roles, contents, in time order): two logs give the same fingerprint
// exactly when they hold the same conversations.
std::string data_fingerprint(const std::vector<LogRecord>& conversations);

}  // namespace mnemo
