// The serving engine (serve/engine.h) on a tiny random Llama: every request
// gets what `mnemo generate` (generate()) gives it alone, whatever else shares
// its batch; budgets chunk long prompts without starving running streams;
// KV exhaustion preempts and recomputes; the adapter tiers hot-swap a new
// version, drop an erased user at once and fail only a corrupt adapter's
// requests. No test sleeps: they drive the engine's own step function.
#include "adapters/adapter_slots.h"
#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "model/base_model.h"
#include "model/error.h"
#include "model/generate.h"
#include "model/kv_cache.h"
#include "tokenizer/tokenizer.h"
#include "model/transformer.h"
#include "serve/engine.h"
#include "support/reference.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace mnemo {
namespace {

namespace fs = std::filesystem;

BaseModel tiny_model() { return open_base_model((testing::reference_dir() / "models" / "llama").string(), {}); }

// What a caller of the engine sees of one request.
struct Outcome {
  std::string streamed;
  std::optional<RequestEvent> final;
  std::vector<RequestState> states;
};

class Collector {
 public:
  RequestCallback callback() {
    return [this](const RequestEvent& event) {
      Outcome& outcome = outcomes_[event.id];
      outcome.streamed += event.text;
      outcome.states.push_back(event.state);
      if (event.final) {
        EXPECT_FALSE(outcome.final) << "two final events for request " << event.id;
        outcome.final = event;
      }
    };
  }
  Outcome& operator[](uint64_t id) { return outcomes_[id]; }

 private:
  std::map<uint64_t, Outcome> outcomes_;
};

class ServeEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = tiny_model();
    dir_ = testing::scratch_dir(std::string("serve_engine_") +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name());
    RegistryOptions options;
    options.mode = OpenMode::kCreate;
    options.actor = "tester";
    registry_ = Registry::open((dir_ / "registry").string(), options);
    registry_->init("tiny-llama", adapter_shapes_to_json(adapter_shapes(model_.transformer->config())));
  }

  LoraAdapter adapter_for(uint64_t seed, int64_t rank = 8) {
    LoraConfig config;
    config.rank = rank;
    config.alpha = 2.0 * rank;
    return make_random_adapter(config, model_.transformer->config(), seed, 0.3);
  }

  // Publishes `adapter` as the user's live version and returns its number.
  int64_t publish(const std::string& user, LoraAdapter adapter) {
    adapter.metadata[kMetaUser] = user;
    adapter.metadata[kMetaBaseFingerprint] = "tiny-llama";
    adapter.metadata[kMetaDataFingerprint] = "data-" + user;
    fs::path dir = dir_ / "adapters" / fmt::format("{}-{}", user, ++published_);
    write_peft_adapter(dir.string(), adapter);
    return registry_->publish(PublishRequest{dir.string(), "", "", true}).version;
  }

  EngineRequest request(const std::string& prompt, const std::string& user, int64_t max_tokens) {
    EngineRequest request;
    request.prompt = model_.tokenizer->encode(prompt);
    request.user = user;
    request.params.max_new_tokens = max_tokens;
    request.on_event = collector_.callback();
    return request;
  }

  // generate() alone, with `adapter` (or none) in slot 0.
  GenerationResult alone(const EngineRequest& request, const LoraAdapter* adapter) {
    GenerationRequest generation;
    generation.prompt = request.prompt;
    generation.params = request.params;
    if (generation.params.stop_token_ids.empty()) generation.params.stop_token_ids = model_.stop_token_ids;
    std::unique_ptr<AdapterSlots> slots;
    if (adapter) {
      slots = std::make_unique<AdapterSlots>(model_.transformer->config(), 1, model_.transformer->dtype(),
                                             model_.transformer->device());
      slots->load(0, *adapter);
      generation.adapter_slot = 0;
    }
    return generate(*model_.transformer, *model_.tokenizer, {generation}, {}, slots.get())[0];
  }

  EngineOptions options() {
    EngineOptions options;
    options.registry_poll_ms = 0;  // every step: the tests see registry changes at once
    options.adapters.scratch_dir = (dir_ / "loads").string();
    return options;
  }

  // Steps until `done` holds; while adapters load, waits for the engine's
  // event instead of sleeping.
  template <typename Done>
  void step_until(Engine& engine, Done done) {
    for (int idle = 0; !done(); ) {
      if (engine.step()) continue;
      ASSERT_LT(++idle, 600) << "the engine made no progress for a minute";
      engine.wait_for_event(100);
    }
  }

  void expect_same_as_alone(uint64_t id, const EngineRequest& request, const LoraAdapter* adapter,
                            const std::string& what) {
    Outcome& outcome = collector_[id];
    ASSERT_TRUE(outcome.final) << what << ": no final event";
    EXPECT_EQ(outcome.final->state, RequestState::Finished) << what << ": " << outcome.final->error;
    GenerationResult expected = alone(request, adapter);
    EXPECT_EQ(outcome.final->tokens, expected.tokens) << what;
    EXPECT_EQ(outcome.streamed, expected.text) << what;
    EXPECT_EQ(outcome.final->finish_reason, expected.finish_reason) << what;
  }

  BaseModel model_;
  fs::path dir_;
  std::unique_ptr<Registry> registry_;
  Collector collector_;
  int published_ = 0;
};

TEST(KvBlockPool, BlocksAreTakenAndReturnedExactly) {
  BaseModel model = tiny_model();
  KvBlockPool pool(model.transformer->config(), 4, 8, at::kFloat, at::kCPU);
  {
    SequenceCache a(pool), b(pool);
    EXPECT_TRUE(a.reserve(17));  // 3 blocks
    EXPECT_EQ(pool.free_blocks(), 1);
    EXPECT_FALSE(b.reserve(9));  // 2 blocks: refused, nothing taken
    EXPECT_EQ(pool.free_blocks(), 1);
    EXPECT_TRUE(b.reserve(8));
    EXPECT_EQ(pool.free_blocks(), 0);
    a.release();
    EXPECT_EQ(pool.free_blocks(), 3);
  }
  EXPECT_EQ(pool.free_blocks(), 4);  // b returned its block when destroyed
}

// Attention over a paged history reads exactly what a contiguous cache holds.
TEST(KvBlockPool, APagedCacheGivesTheLogitsOfAContiguousOne) {
  c10::InferenceMode guard;
  BaseModel model = tiny_model();
  const Transformer& transformer = *model.transformer;
  std::vector<int32_t> prompt = model.tokenizer->encode("The paged cache keeps tokens in blocks of a pool");
  KvBlockPool pool(transformer.config(), 16, 4, transformer.dtype(), transformer.device());
  SequenceCache filler(pool), paged(pool);
  ASSERT_TRUE(filler.reserve(9));  // the sequence's blocks are not the first ones, nor adjacent
  SequenceCache contiguous(transformer.config(), 4, transformer.dtype(), transformer.device());
  std::vector<std::vector<int32_t>> chunks = {{prompt.begin(), prompt.begin() + 5},
                                              {prompt.begin() + 5, prompt.end()},
                                              {42},
                                              {7}};
  for (const auto& chunk : chunks) {
    ASSERT_TRUE(paged.reserve(paged.length() + static_cast<int64_t>(chunk.size())));
    at::Tensor expected = transformer.forward({.tokens = {chunk}, .caches = {&contiguous}, .all_logits = true});
    at::Tensor actual = transformer.forward({.tokens = {chunk}, .caches = {&paged}, .all_logits = true});
    EXPECT_TRUE(at::allclose(actual, expected, 1e-5, 1e-5)) << (actual - expected).abs().max().item<float>();
  }
}

TEST_F(ServeEngineTest, EveryRequestGetsWhatItGetsAloneInAMixedBatch) {
  LoraAdapter alice = adapter_for(1), bob = adapter_for(2, 16), carol = adapter_for(3, 4);
  publish("alice", alice);
  publish("bob", bob);
  publish("carol", carol);
  Engine engine(model_, registry_.get(), options());
  std::vector<std::pair<EngineRequest, const LoraAdapter*>> requests = {
      {request("My sister is called", "alice", 12), &alice},
      {request("My sister is called", "bob", 12), &bob},
      {request("Once upon a time", "", 10), nullptr},
      {request("The weather today", "carol", 9), &carol},
      {request("The weather today", "dave", 9), nullptr},  // no adapter yet: the base model
      {request("x", "alice", 5), &alice}};
  requests[1].first.params.sampling = {.temperature = 0.9, .top_k = 20, .top_p = 0.9, .seed = 7};
  requests[2].first.params.stop_strings = {"e"};
  // Warm the slots first, so that all six start in one step (loads are
  // asynchronous: cold, the base-model requests would run ahead).
  for (const char* user : {"alice", "bob", "carol"}) engine.submit(request("warm", user, 1));
  engine.run_until_idle();
  std::vector<uint64_t> ids;
  for (auto& [request, adapter] : requests) ids.push_back(engine.submit(request));
  int64_t most_adapters_in_a_step = 0, most_sequences_in_a_step = 0;
  for (int idle = 0; engine.stats().finished < 9;) {
    StepStats stats;
    if (!engine.step(&stats)) {
      ASSERT_LT(++idle, 600) << "no progress for a minute";
      engine.wait_for_event(100);
    }
    most_adapters_in_a_step = std::max(most_adapters_in_a_step, stats.distinct_adapters);
    most_sequences_in_a_step = std::max(most_sequences_in_a_step, stats.sequences);
  }
  EXPECT_EQ(most_adapters_in_a_step, 3) << "alice's, bob's and carol's adapters in one forward";
  EXPECT_EQ(most_sequences_in_a_step, 6);
  for (size_t i = 0; i < requests.size(); ++i)
    expect_same_as_alone(ids[i], requests[i].first, requests[i].second, fmt::format("request {}", i));
  EXPECT_EQ(collector_[ids[0]].final->adapter_version, 1);
  EXPECT_FALSE(collector_[ids[2]].final->adapter_version) << "the base model served it";
  EXPECT_FALSE(collector_[ids[4]].final->adapter_version) << "dave has no adapter";
  EngineStats stats = engine.stats();
  EXPECT_EQ(stats.finished, 9);
  EXPECT_EQ(stats.kv_blocks_free, stats.kv_blocks_total);
  EXPECT_EQ(stats.adapters.slots_pinned, 0);
  EXPECT_EQ(stats.adapters.registry_loads, 3);
}

// A long prompt is prefilled in chunks of the step budget while a stream that
// already decodes gets its token in every step.
TEST_F(ServeEngineTest, ALongPromptIsChunkedAndNeverStallsARunningStream) {
  EngineOptions engine_options = options();
  engine_options.max_batch_tokens = 8;
  Engine engine(model_, registry_.get(), engine_options);
  EngineRequest streaming = request("Hello", "", 30);
  uint64_t first = engine.submit(streaming);
  StepStats stats;
  while (collector_[first].streamed.empty() && !collector_[first].final) ASSERT_TRUE(engine.step(&stats));
  std::string long_text;
  for (int i = 0; i < 12; ++i) long_text += "the quick brown fox jumps over the lazy dog ";
  EngineRequest long_prompt = request(long_text, "", 6);
  ASSERT_GT(long_prompt.prompt.size(), 40u);
  uint64_t second = engine.submit(long_prompt);
  int64_t prefill_steps = 0;
  while (!collector_[second].final || !collector_[first].final) {
    ASSERT_TRUE(engine.step(&stats));
    EXPECT_LE(stats.prefill_tokens + stats.decode_tokens, 8);
    if (stats.prefill_tokens > 0) {
      ++prefill_steps;
      if (!collector_[first].final) EXPECT_EQ(stats.decode_tokens, 1) << "the running stream was starved";
    }
  }
  EXPECT_GE(prefill_steps, static_cast<int64_t>(long_prompt.prompt.size()) / 8);
  expect_same_as_alone(first, streaming, nullptr, "the streaming request");
  expect_same_as_alone(second, long_prompt, nullptr, "the chunked request");
}

// KV blocks for about two sequences, four requests: the newest is preempted,
// recomputed later, and still gets exactly its own answer.
TEST_F(ServeEngineTest, RunningOutOfKvBlocksPreemptsAndRecomputesWithoutChangingAnswers) {
  LoraAdapter alice = adapter_for(11);
  publish("alice", alice);
  EngineOptions engine_options = options();
  engine_options.kv_block_tokens = 4;
  engine_options.kv_memory_bytes =
      14 * KvBlockPool::block_bytes(model_.transformer->config(), 4, model_.transformer->dtype());
  Engine engine(model_, registry_.get(), engine_options);
  engine.submit(request("warm", "alice", 1));  // alice's adapter in its slot: all four start together
  engine.run_until_idle();
  std::vector<std::pair<EngineRequest, const LoraAdapter*>> requests = {
      {request("One two three", "", 20), nullptr},
      {request("Four five six", "alice", 20), &alice},
      {request("Seven eight", "", 20), nullptr},
      {request("Nine ten", "alice", 20), &alice}};
  std::vector<uint64_t> ids;
  for (auto& [request, adapter] : requests) ids.push_back(engine.submit(request));
  engine.run_until_idle();
  EXPECT_GT(engine.stats().preemptions, 0);
  int64_t preempted_requests = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    expect_same_as_alone(ids[i], requests[i].first, requests[i].second, fmt::format("request {}", i));
    preempted_requests += collector_[ids[i]].final->timings.preemptions > 0;
  }
  EXPECT_GT(preempted_requests, 0);
  EXPECT_EQ(engine.stats().kv_blocks_free, engine.stats().kv_blocks_total);
}

TEST_F(ServeEngineTest, ACancelledRequestFreesItsBlocksAndSlotAndOthersGoOn) {
  LoraAdapter alice = adapter_for(5);
  publish("alice", alice);
  Engine engine(model_, registry_.get(), options());
  uint64_t doomed = engine.submit(request("Tell me a long story", "alice", 100));
  EngineRequest other = request("Tell me a long story", "", 12);
  uint64_t kept = engine.submit(other);
  step_until(engine, [&] { return collector_[doomed].streamed.size() >= 3; });
  engine.cancel(doomed);
  engine.step();
  ASSERT_TRUE(collector_[doomed].final);
  EXPECT_EQ(collector_[doomed].final->state, RequestState::Cancelled);
  EXPECT_EQ(engine.stats().adapters.slots_pinned, 0);
  engine.run_until_idle();
  expect_same_as_alone(kept, other, nullptr, "the other request");
  EXPECT_EQ(engine.stats().kv_blocks_free, engine.stats().kv_blocks_total);
  EXPECT_EQ(engine.stats().cancelled, 1);
}

// A version published while a request runs: that request finishes on the
// version it started with; the next one gets the new version.
TEST_F(ServeEngineTest, ANewVersionServesNewRequestsAndInFlightOnesFinishOnTheirs) {
  LoraAdapter first = adapter_for(21), second = adapter_for(22);
  publish("alice", first);
  Engine engine(model_, registry_.get(), options());
  EngineRequest before = request("What is my name", "alice", 16);
  uint64_t in_flight = engine.submit(before);
  step_until(engine, [&] { return !collector_[in_flight].streamed.empty(); });
  ASSERT_EQ(publish("alice", second), 2);
  EngineRequest after = request("What is my name", "alice", 16);
  uint64_t next = engine.submit(after);
  engine.run_until_idle();
  expect_same_as_alone(in_flight, before, &first, "the request in flight");
  expect_same_as_alone(next, after, &second, "the request after the publish");
  EXPECT_EQ(collector_[in_flight].final->adapter_version, 1);
  EXPECT_EQ(collector_[next].final->adapter_version, 2);
  EXPECT_NE(collector_[in_flight].final->tokens, collector_[next].final->tokens);
}

TEST_F(ServeEngineTest, AnErasedUserIsDroppedFromEveryTierAndTheirRequestsEnd) {
  publish("alice", adapter_for(31));
  LoraAdapter bob = adapter_for(32);
  publish("bob", bob);
  Engine engine(model_, registry_.get(), options());
  uint64_t alice_running = engine.submit(request("My dog is called", "alice", 50));
  EngineRequest bob_request = request("My dog is called", "bob", 12);
  uint64_t bob_running = engine.submit(bob_request);
  step_until(engine, [&] { return !collector_[alice_running].streamed.empty(); });
  registry_->erase("alice");
  engine.step();
  ASSERT_TRUE(collector_[alice_running].final);
  EXPECT_EQ(collector_[alice_running].final->state, RequestState::Failed);
  EXPECT_NE(collector_[alice_running].final->error.find("erased"), std::string::npos);
  engine.run_until_idle();
  expect_same_as_alone(bob_running, bob_request, &bob, "bob's request");
  // Alice's adapter is nowhere: only bob's slot and host copy remain.
  AdapterCacheStats stats = engine.stats().adapters;
  EXPECT_EQ(stats.slots_used, 1);
  // A new request from alice runs on the base model.
  EngineRequest later = request("My dog is called", "alice", 8);
  uint64_t after = engine.submit(later);
  engine.run_until_idle();
  expect_same_as_alone(after, later, nullptr, "alice after erasure");
  EXPECT_FALSE(collector_[after].final->adapter_version);
}

TEST_F(ServeEngineTest, ACorruptAdapterFailsOnlyItsOwnRequests) {
  LoraAdapter alice = adapter_for(41);
  publish("alice", alice);
  publish("bob", adapter_for(42));
  // Flip bytes in bob's stored weights: the registry's hash check refuses them.
  std::string weights = registry_->file_path("bob", {}, "adapter_model.safetensors");
  fs::permissions(weights, fs::perms::owner_write, fs::perm_options::add);
  {
    std::fstream file(weights, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(-16, std::ios::end);
    file.write("corrupted bytes!", 16);
  }
  Engine engine(model_, registry_.get(), options());
  uint64_t bob_id = engine.submit(request("Hello there", "bob", 8));
  EngineRequest alice_request = request("Hello there", "alice", 8);
  uint64_t alice_id = engine.submit(alice_request);
  engine.run_until_idle();
  ASSERT_TRUE(collector_[bob_id].final);
  EXPECT_EQ(collector_[bob_id].final->state, RequestState::Failed);
  EXPECT_NE(collector_[bob_id].final->error.find("bob"), std::string::npos) << collector_[bob_id].final->error;
  expect_same_as_alone(alice_id, alice_request, &alice, "alice's request");
}

// Two device slots for three users: slots are evicted least recently used,
// never while pinned, and every answer is still the user's own.
TEST_F(ServeEngineTest, MoreUsersThanSlotsTakeTurnsThroughTheLruTiers) {
  std::vector<LoraAdapter> adapters = {adapter_for(51), adapter_for(52), adapter_for(53)};
  std::vector<std::string> users = {"u1", "u2", "u3"};
  for (size_t i = 0; i < users.size(); ++i) publish(users[i], adapters[i]);
  EngineOptions engine_options = options();
  engine_options.adapters.device_slots = 2;
  Engine engine(model_, registry_.get(), engine_options);
  std::vector<std::pair<EngineRequest, size_t>> requests;
  for (size_t round = 0; round < 2; ++round)
    for (size_t i = 0; i < users.size(); ++i) requests.emplace_back(request("I live in", users[i], 6 + round), i);
  std::vector<uint64_t> ids;
  for (auto& [request, user] : requests) ids.push_back(engine.submit(request));
  engine.run_until_idle();
  for (size_t i = 0; i < requests.size(); ++i)
    expect_same_as_alone(ids[i], requests[i].first, &adapters[requests[i].second], fmt::format("request {}", i));
  AdapterCacheStats stats = engine.stats().adapters;
  EXPECT_GT(stats.slot_evictions, 0);
  EXPECT_EQ(stats.registry_loads, 3) << "the host tier kept every adapter; only slots were short";
  EXPECT_LE(stats.slots_used, 2);
}

TEST_F(ServeEngineTest, RequestsThatCanNeverRunAreRefusedAtSubmit) {
  Engine engine(model_, registry_.get(), options());
  EngineRequest empty = request("hi", "", 4);
  empty.prompt.clear();
  EXPECT_THROW(engine.submit(empty), Error);
  EXPECT_THROW(engine.submit(request("hi", "../etc", 4)), Error);
  EngineRequest bad_token = request("hi", "", 4);
  bad_token.prompt.push_back(model_.transformer->config().vocab_size);
  EXPECT_THROW(engine.submit(bad_token), Error);
  EngineRequest too_long = request("hi", "", 4);
  too_long.prompt.assign(300, 5);
  EXPECT_THROW(engine.submit(too_long), Error);
  EngineRequest bad_sampling = request("hi", "", 4);
  bad_sampling.params.sampling.top_p = 1.5;
  EXPECT_THROW(engine.submit(bad_sampling), Error);
  EXPECT_FALSE(engine.step()) << "nothing was queued";
}

// The engine's own thread: requests from another thread stream and finish.
TEST_F(ServeEngineTest, TheBackgroundLoopServesRequestsFromOtherThreads) {
  LoraAdapter alice = adapter_for(61);
  publish("alice", alice);
  std::mutex mutex;
  std::condition_variable done;
  std::map<uint64_t, RequestEvent> finals;
  Engine engine(model_, registry_.get(), options());  // last: it stops before what its callbacks use goes
  std::vector<EngineRequest> requests = {request("Good morning", "alice", 8), request("Good morning", "", 8)};
  for (auto& r : requests)
    r.on_event = [&](const RequestEvent& event) {
      if (!event.final) return;
      std::lock_guard lock(mutex);
      finals[event.id] = event;
      done.notify_all();
    };
  engine.start();
  std::vector<uint64_t> ids;
  for (auto& r : requests) ids.push_back(engine.submit(r));
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(done.wait_for(lock, std::chrono::seconds(120), [&] { return finals.size() == 2; }));
  }
  engine.stop();
  EXPECT_EQ(finals[ids[0]].tokens, alone(requests[0], &alice).tokens);
  EXPECT_EQ(finals[ids[1]].tokens, alone(requests[1], nullptr).tokens);
}

// A request for no tokens finishes at once, and the others in its step do not notice.
TEST_F(ServeEngineTest, ARequestForNoTokensFinishesWithoutDisturbingTheBatch) {
  Engine engine(model_, registry_.get(), options());
  EngineRequest nothing = request("Hello", "", 0);
  EngineRequest something = request("Hello", "", 6);
  uint64_t empty_id = engine.submit(nothing);
  uint64_t full_id = engine.submit(something);
  engine.run_until_idle();
  ASSERT_TRUE(collector_[empty_id].final);
  EXPECT_EQ(collector_[empty_id].final->state, RequestState::Finished);
  EXPECT_EQ(collector_[empty_id].final->completion_tokens, 0);
  expect_same_as_alone(full_id, something, nullptr, "the request beside it");
  EXPECT_EQ(engine.stats().kv_blocks_free, engine.stats().kv_blocks_total);
}

// The admin's unload: the user's requests end with the reason given, their
// adapter leaves every tier, and other users go on.
TEST_F(ServeEngineTest, EvictingAUserEndsTheirRequestsAndDropsTheirAdapter) {
  publish("alice", adapter_for(71));
  LoraAdapter bob = adapter_for(72);
  publish("bob", bob);
  Engine engine(model_, registry_.get(), options());
  uint64_t alice_id = engine.submit(request("Tell me", "alice", 40));
  EngineRequest bob_request = request("Tell me", "bob", 10);
  uint64_t bob_id = engine.submit(bob_request);
  step_until(engine, [&] { return !collector_[alice_id].streamed.empty(); });
  engine.evict_user("alice", "unloaded by the administrator");
  engine.step();
  ASSERT_TRUE(collector_[alice_id].final);
  EXPECT_EQ(collector_[alice_id].final->state, RequestState::Failed);
  EXPECT_EQ(collector_[alice_id].final->error, "unloaded by the administrator");
  engine.run_until_idle();
  expect_same_as_alone(bob_id, bob_request, &bob, "bob's request");
  EXPECT_EQ(engine.stats().adapters.slots_used, 1) << "only bob's adapter is left in a slot";
}

// Stopping the loop, or destroying the engine, ends every request with a final event.
TEST_F(ServeEngineTest, StoppingEndsEveryRequestWithAFinalEvent) {
  auto engine = std::make_unique<Engine>(model_, registry_.get(), options());
  uint64_t running = engine->submit(request("Count with me", "", 200));
  step_until(*engine, [&] { return !collector_[running].streamed.empty(); });
  uint64_t queued = engine->submit(request("Never started", "", 5));
  engine.reset();
  for (uint64_t id : {running, queued}) {
    ASSERT_TRUE(collector_[id].final) << "request " << id;
    EXPECT_EQ(collector_[id].final->state, RequestState::Cancelled);
  }
}

}  // namespace
}  // namespace mnemo
