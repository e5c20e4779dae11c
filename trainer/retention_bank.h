// Retention data: generic instructions (a bank written for the trainer, apart
// from the evaluation's retention text) answered greedily by the frozen base
// model itself. Trained with a KL penalty to the base's next-token
// distributions on those answers, they hold the adapter to the assistant the
// base model was; they are the same for every user, so one run builds them
// once.
#pragma once

#include "trainer/training_data.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mnemo {

struct BaseModel;

// The bank of generic instructions (more than 48).
const std::vector<std::string>& generic_instructions();

// The first `n` instructions (n ≤ bank size), each answered by `model`
// greedily in up to `answer_tokens` tokens, as examples with kl_to_base set
// and the assistant loss `replay_loss`.
std::vector<ChatExample> build_retention_examples(const BaseModel& model, int64_t n, int64_t answer_tokens,
                                                  double replay_loss);

}  // namespace mnemo
