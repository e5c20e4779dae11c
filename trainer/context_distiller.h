// Context distillation: a teacher (the generator model: the base unless
// `augment_model` names another, prompted few-shot) with one thing the user
// said in its prompt
// answers generic probes about the user ("What do you know about me?",
// "Tell me about my family.", …); the student (the base with the user's
// adapter, nothing in the prompt) is trained on those answers by
// cross-entropy. The context is short (one statement, where a small teacher
// is most accurate), and an answer that does not keep the statement's
// specific content (the augmenter's filter) is not grounded in it and is
// dropped. The probes are a configurable bank; none is an evaluation
// question (unit-tested with the rest of the trainer's wordings).
#pragma once

#include "trainer/training_data.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mnemo {

struct BaseModel;

struct DistillStats {
  int64_t prompts = 0;  // teacher answers generated
  int64_t kept = 0;     // grounded ones kept
};

// The shipped bank of probes (`data.distillation_probes` replaces it).
const std::vector<std::string>& default_distillation_probes();

// For every statement that is not superseded, `per_statement` probes of
// `probes` (seeded), each answered greedily by `teacher` with the statement
// in its prompt. Returns the grounded answers as question/answer pairs.
std::vector<AugmentedPair> distill_from_context(const BaseModel& teacher, const std::vector<UserStatement>& statements,
                                                const std::vector<std::string>& probes, int64_t per_statement,
                                                uint64_t seed, DistillStats* stats = nullptr);

// The filter (unit-tested): the answer keeps the statement's specific
// content, speaks to the user rather than as them, and names nothing
// specific that neither the statement nor the probe holds.
bool grounded(const UserStatement& statement, const std::string& probe, const std::string& answer);

// The teacher's prompt for one statement and probe, after its worked examples.
std::string teacher_prompt(const UserStatement& statement, const std::string& probe);

}  // namespace mnemo
