// Chat examples as token sequences with a loss weight on every target: the
// example is rendered with the model's chat template (its default system
// prompt included, as the evaluation and the server ask), and each message's
// tokens carry its role's loss weight. An assistant turn's weight starts
// after the template's generation prompt ("<|im_start|>assistant\n") and
// includes the end-of-turn token, so the adapter learns to answer and stop.
#pragma once

#include "trainer/adapter_optimizer.h"
#include "trainer/training_data.h"

#include <cstdint>

namespace mnemo {

struct BaseModel;

// Tokens and weights of `example` for adapter `slot`. A sequence longer than
// `max_tokens` is cut to whole messages (at least the first exchange; a
// single message that is itself too long is cut at max_tokens). With
// example.kl_to_base the assistant turns get KL weights 1 as well.
// Throws mnemo::Error when the model has no chat template.
TrainingSequence tokenize_example(const BaseModel& model, const ChatExample& example, int32_t slot,
                                  int64_t max_tokens);

}  // namespace mnemo
