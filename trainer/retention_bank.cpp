#include "trainer/retention_bank.h"

#include "model/base_model.h"
#include "model/error.h"
#include "model/generate.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>

namespace mnemo {

const std::vector<std::string>& generic_instructions() {
  // Written for the trainer: everyday requests of many kinds, no personal facts.
  static const std::vector<std::string> bank = {
      "Explain how a rainbow forms.",
      "Give me three tips for writing a clear email.",
      "What is the difference between weather and climate?",
      "Write a short poem about the ocean.",
      "How does a refrigerator keep food cold?",
      "Summarize the plot of a classic fairy tale in two sentences.",
      "What are some good habits for getting better sleep?",
      "Explain what a prime number is with an example.",
      "How do plants make their own food?",
      "Suggest a simple vegetarian dinner idea.",
      "What causes the seasons on Earth?",
      "Write a friendly message inviting a colleague to lunch.",
      "How do I convert Celsius to Fahrenheit?",
      "What is the purpose of a budget?",
      "Describe how a bicycle gear system works.",
      "Give me a quick warm-up routine before running.",
      "What is the water cycle?",
      "Explain the difference between a virus and a bacterium.",
      "How can I make my presentations more engaging?",
      "What is an algorithm, in simple words?",
      "List a few ways to reduce household waste.",
      "Why do leaves change color in autumn?",
      "How does compound interest work?",
      "Write a two-sentence story about a lost key.",
      "What should I consider when choosing a laptop?",
      "Explain what photosynthesis produces.",
      "How do vaccines help the immune system?",
      "Give me an idea for a weekend project at home.",
      "What is the capital of Japan, and what is it known for?",
      "How does a search engine find web pages?",
      "What are the main parts of a cell?",
      "Explain gravity to a ten-year-old.",
      "Suggest a polite way to decline an invitation.",
      "How do I boil an egg so the yolk stays soft?",
      "What is the difference between a list and a tuple in Python?",
      "Why is exercise good for mental health?",
      "Describe the taste of a lemon to someone who has never had one.",
      "What makes a good password?",
      "How do airplanes stay in the air?",
      "Write a haiku about morning coffee.",
      "What is inflation in economics?",
      "How can I learn new vocabulary faster?",
      "Explain what a black hole is.",
      "Give me a checklist for packing for a short trip.",
      "How does recycling plastic work?",
      "What is the role of the heart in the body?",
      "Explain the rules of tic-tac-toe.",
      "What are renewable energy sources?",
      "How do I politely ask for feedback at work?",
      "Why does bread rise?",
      "What is the difference between a comet and an asteroid?",
      "Give me a short motivational quote and explain it.",
      "How does a thermometer measure temperature?",
      "What are the benefits of reading every day?",
      "Explain what a spreadsheet is used for.",
      "How do bees make honey?",
  };
  return bank;
}

std::vector<ChatExample> build_retention_examples(const BaseModel& model, int64_t n, int64_t answer_tokens,
                                                  double replay_loss) {
  const std::vector<std::string>& bank = generic_instructions();
  n = std::min<int64_t>(n, static_cast<int64_t>(bank.size()));
  if (n <= 0) return {};
  at::NoGradGuard no_grad;
  std::vector<GenerationRequest> requests;
  for (int64_t i = 0; i < n; ++i) {
    GenerationRequest request;
    request.prompt = encode_chat(model, {{"user", bank[static_cast<size_t>(i)]}});
    request.params.max_new_tokens = answer_tokens;
    request.params.stop_token_ids = model.stop_token_ids;
    requests.push_back(std::move(request));
  }
  std::vector<ChatExample> examples;
  constexpr size_t kBatch = 16;
  for (size_t first = 0; first < requests.size(); first += kBatch) {
    std::vector<GenerationRequest> batch(requests.begin() + static_cast<std::ptrdiff_t>(first),
                                         requests.begin() + static_cast<std::ptrdiff_t>(std::min(requests.size(), first + kBatch)));
    std::vector<GenerationResult> results = generate(*model.transformer, *model.tokenizer, batch);
    for (size_t j = 0; j < results.size(); ++j) {
      ChatExample example;
      example.source = ExampleSource::Retention;
      example.messages = {{"user", bank[first + j]}, {"assistant", results[j].text}};
      example.user_loss = 0;
      example.assistant_loss = replay_loss;
      example.kl_to_base = true;
      examples.push_back(std::move(example));
    }
  }
  return examples;
}

}  // namespace mnemo
