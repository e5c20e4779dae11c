// The publish gate of `mnemo train --registry`: a newly trained adapter goes
// live only when it remembers its user and leaves the model the assistant it
// was, and is not worse than the version live now. Both are measured here on
// the spot:
//   recall     held-out questions built from the user's own statements (each
//              about a topic the user named, "my {topic}"), in wordings the
//              data builder never trains on (tested), answered greedily with
//              the adapter and nothing else in the prompt; a question counts
//              when the answer keeps one of the statement's specific words
//   retention  perplexity on the shipped generic text (eval/retention.h) with
//              the adapter, over the base model's
// An adapter that fails is kept in the registry as a rejected version with
// the reason, and the live version stays.
#pragma once

#include "trainer/train_config.h"
#include "trainer/user_statements.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mnemo {

struct BaseModel;
struct LoraAdapter;
class Registry;

// One held-out question: asked as `question`, answered right when the answer
// holds one of `expected` (whole words, any case).
struct GateQuestion {
  std::string question;
  std::vector<std::string> expected;
};

// At most `max_questions` questions from the current (not superseded)
// statements that name a topic and carry specific content, spread evenly over
// them, newest kept first when there are more. Deterministic.
std::vector<GateQuestion> gate_questions(const std::vector<UserStatement>& statements, int64_t max_questions);

// Every wording gate_questions uses ("{topic}" where the topic goes), for the
// test that the trainer never trains on one.
std::vector<std::string> gate_wordings();

struct GateScores {
  double recall = 0;           // fraction of the questions answered right
  int64_t n_questions = 0;
  double perplexity = 0;       // with the adapter
  double base_perplexity = 0;  // without
  double perplexity_ratio() const { return base_perplexity > 0 ? perplexity / base_perplexity : 0; }
};

// Scores `candidate` and, when given, `live` on the same questions and text
// (one batch of generations, both adapters in one set of slots).
struct GateMeasurement {
  GateScores candidate;
  std::optional<GateScores> live;
};
GateMeasurement measure_for_gate(const BaseModel& model, const GateConfig& config,
                                 const std::vector<GateQuestion>& questions, const LoraAdapter& candidate,
                                 const LoraAdapter* live);

struct GateVerdict {
  bool passed = true;
  std::string reason;  // why not, naming the number and the bound; empty when passed
};
// The thresholds and the comparison with live (when there is one).
GateVerdict judge(const GateConfig& config, const GateMeasurement& measurement);

// The whole gate for one newly trained adapter of `user`: reads their live
// version back from `registry` (none when there is none, or when it no
// longer fits the model: then nothing is compared), measures both, judges,
// and logs the result. `record` is what goes into the version's metrics.
struct GateOutcome {
  GateVerdict verdict;
  nlohmann::ordered_json record;
  double seconds = 0;  // measuring and judging
};
GateOutcome gate_new_adapter(const BaseModel& model, const GateConfig& config, Registry& registry,
                             const std::string& user, const std::vector<UserStatement>& statements,
                             const LoraAdapter& adapter);

}  // namespace mnemo
