// generate(): a batch of requests decodes together and each gets what it
// would get alone; stop strings cut the text (and are never streamed);
// streamed pieces add up to the final text; max tokens is honoured.
#include "model/base_model.h"
#include "model/transformer.h"
#include "model/error.h"
#include "model/generate.h"
#include "model/kv_cache.h"
#include "tokenizer/tokenizer.h"
#include "support/reference.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

namespace mnemo {
namespace {

BaseModel reference_model() {
  return open_base_model((testing::reference_dir() / "models" / "llama").string(), {});
}

GenerationRequest request_for(const BaseModel& model, const std::string& prompt, int64_t max_new_tokens) {
  GenerationRequest request;
  request.prompt = model.tokenizer->encode(prompt);
  request.params.max_new_tokens = max_new_tokens;
  return request;
}

TEST(Generate, ABatchGivesEachRequestWhatItGetsAlone) {
  BaseModel model = reference_model();
  std::vector<GenerationRequest> requests = {request_for(model, "The quick brown fox", 12),
                                             request_for(model, "Once upon a time", 20),
                                             request_for(model, "x", 5)};
  requests[1].params.sampling = {.temperature = 0.8, .top_k = 20, .top_p = 0.9, .seed = 1234};
  auto together = generate(*model.transformer, *model.tokenizer, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    auto alone = generate(*model.transformer, *model.tokenizer, {requests[i]});
    EXPECT_EQ(together[i].tokens, alone[0].tokens) << "request " << i;
    EXPECT_EQ(together[i].text, alone[0].text) << "request " << i;
    EXPECT_EQ(together[i].tokens.size(), static_cast<size_t>(requests[i].params.max_new_tokens));
    EXPECT_EQ(together[i].finish_reason, FinishReason::Length);
  }
}

// A history shared by many questions is prefilled once and copied: each
// request continues its own copy and gets exactly what it gets without one.
TEST(Generate, APrefixCacheGivesWhatTheWholePromptGives) {
  BaseModel model = reference_model();
  std::vector<int32_t> shared = model.tokenizer->encode("Once upon a time there was a small village by the sea");
  std::vector<GenerationRequest> requests;
  for (const char* ending : {" where", " and a", " in which lived"}) {
    GenerationRequest request = request_for(model, "", 10);
    request.prompt = shared;
    for (int32_t id : model.tokenizer->encode(ending, /*add_special_tokens=*/false)) request.prompt.push_back(id);
    requests.push_back(request);
  }
  auto without = generate(*model.transformer, *model.tokenizer, requests);

  SequenceCache prefix(model.transformer->config(), 4, model.transformer->dtype(), model.transformer->device());
  {
    c10::InferenceMode inference_mode;
    ForwardBatch batch;
    batch.tokens = {shared};
    batch.caches = {&prefix};
    model.transformer->forward(batch);
  }
  ASSERT_EQ(prefix.length(), static_cast<int64_t>(shared.size()));
  for (GenerationRequest& request : requests) request.prefix = &prefix;
  auto with = generate(*model.transformer, *model.tokenizer, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(with[i].tokens, without[i].tokens) << "request " << i;
    EXPECT_EQ(with[i].prompt_tokens, without[i].prompt_tokens);
  }
  EXPECT_EQ(prefix.length(), static_cast<int64_t>(shared.size()));  // never written to

  GenerationRequest whole = requests[0];
  whole.prompt = shared;  // nothing left to prefill
  EXPECT_THROW(generate(*model.transformer, *model.tokenizer, {whole}), Error);
}

TEST(Generate, AStopStringCutsTheTextAndIsNeverStreamed) {
  BaseModel model = reference_model();
  GenerationRequest request = request_for(model, "The quick brown fox", 24);
  std::string full = generate(*model.transformer, *model.tokenizer, {request})[0].text;
  ASSERT_GE(full.size(), 8u) << full;
  // A stop string from the middle of the unconstrained completion.
  std::string stop = full.substr(full.size() / 2, 3);
  size_t cut = full.find(stop);
  request.params.stop_strings = {stop};
  std::string streamed;
  auto result = generate(*model.transformer, *model.tokenizer, {request},
                         [&](size_t, std::string_view piece) { streamed += piece; });
  EXPECT_EQ(result[0].text, full.substr(0, cut));
  EXPECT_EQ(streamed, result[0].text);
  EXPECT_EQ(result[0].finish_reason, FinishReason::Stop);
}

TEST(Generate, StreamedPiecesAddUpToTheText) {
  BaseModel model = reference_model();
  GenerationRequest request = request_for(model, "Once upon a time", 30);
  std::string streamed;
  auto result = generate(*model.transformer, *model.tokenizer, {request},
                         [&](size_t, std::string_view piece) { streamed += piece; });
  EXPECT_EQ(streamed, result[0].text);
  EXPECT_EQ(result[0].text, model.tokenizer->decode(result[0].tokens, /*skip_special_tokens=*/true));
}

TEST(Generate, AStopTokenEndsTheRequestAndIsNotReturned) {
  BaseModel model = reference_model();
  GenerationRequest request = request_for(model, "The quick brown fox", 10);
  auto free_run = generate(*model.transformer, *model.tokenizer, {request})[0].tokens;
  ASSERT_GE(free_run.size(), 4u);
  request.params.stop_token_ids = {free_run[3]};
  auto stopped = generate(*model.transformer, *model.tokenizer, {request})[0];
  size_t first = std::find(free_run.begin(), free_run.end(), free_run[3]) - free_run.begin();
  EXPECT_EQ(stopped.tokens, std::vector<int32_t>(free_run.begin(), free_run.begin() + first));
  EXPECT_EQ(stopped.finish_reason, FinishReason::Stop);
}

TEST(Generate, APromptThatFillsTheContextIsRefused) {
  BaseModel model = reference_model();
  GenerationRequest request;
  request.prompt.assign(model.transformer->config().max_position_embeddings, 5);
  EXPECT_THROW(generate(*model.transformer, *model.tokenizer, {request}), Error);
}

}  // namespace
}  // namespace mnemo
