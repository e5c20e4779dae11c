#include "serve/engine.h"

#include "adapters/registry.h"
#include "model/base_model.h"
#include "model/error.h"
#include "model/kv_cache.h"
#include "model/sampling.h"
#include "model/text_stream.h"
#include "tokenizer/tokenizer.h"
#include "model/transformer.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <set>

namespace mnemo {

using Clock = std::chrono::steady_clock;

namespace {
double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}
double now_ms() { return std::chrono::duration<double, std::milli>(Clock::now().time_since_epoch()).count(); }
}  // namespace

const char* state_name(RequestState state) {
  switch (state) {
    case RequestState::Waiting: return "waiting";
    case RequestState::LoadingAdapter: return "loading_adapter";
    case RequestState::Prefilling: return "prefilling";
    case RequestState::Decoding: return "decoding";
    case RequestState::Finished: return "finished";
    case RequestState::Cancelled: return "cancelled";
    case RequestState::Failed: return "failed";
  }
  return "unknown";
}

// One request's whole state, from submit to its final event.
struct Sequence {
  uint64_t id = 0;
  RequestState state = RequestState::Waiting;
  EngineRequest request;  // prompt rendered, stop ids filled in
  bool adapter_resolved = false;
  std::optional<AdapterKey> adapter;  // none: the base model
  int32_t slot = -1;                  // pinned in the adapter cache while ≥ 0
  std::unique_ptr<SequenceCache> cache;
  std::vector<int32_t> tokens;  // prompt, then every generated token (what a preempted one recomputes)
  int64_t computed = 0;         // tokens whose keys and values are in the cache
  int64_t feed = 0;             // tokens this step feeds
  Sampler sampler;
  TextStream stream;
  Clock::time_point submitted_at = Clock::now();
  std::optional<Clock::time_point> loading_since;
  Clock::time_point last_token_at;
  bool scheduled = false;
  bool produced = false;
  RequestTimings timings;

  Sequence(EngineRequest r, const Tokenizer& tokenizer, int64_t max_new_tokens)
      : request(std::move(r)),
        sampler(request.params.sampling),
        stream(tokenizer, request.params, max_new_tokens) {
    tokens = request.prompt;
  }
  bool ended() const {
    return state == RequestState::Finished || state == RequestState::Cancelled || state == RequestState::Failed;
  }
};

Engine::Engine(const BaseModel& model, Registry* registry, EngineOptions options)
    : model_(model), options_(std::move(options)) {
  const ModelConfig& config = model_.transformer->config();
  MNEMO_CHECK(options_.max_batch_tokens >= 1 && options_.max_sequences >= 1 && options_.kv_block_tokens >= 1,
              "engine budgets must be positive (tokens per step {}, sequences {}, block tokens {})",
              options_.max_batch_tokens, options_.max_sequences, options_.kv_block_tokens);
  const int64_t block_bytes =
      KvBlockPool::block_bytes(config, options_.kv_block_tokens, model_.transformer->dtype());
  const int64_t blocks = options_.kv_memory_bytes / block_bytes;
  if (blocks < 1)
    fail("engine: kv_memory_bytes {} holds no block of {} tokens ({} bytes)", options_.kv_memory_bytes,
         options_.kv_block_tokens, block_bytes);
  kv_pool_ = std::make_unique<KvBlockPool>(config, blocks, options_.kv_block_tokens, model_.transformer->dtype(),
                                           model_.transformer->device());
  max_context_tokens_ = std::min<int64_t>(config.max_position_embeddings, blocks * options_.kv_block_tokens);
  adapters_ = std::make_unique<AdapterCache>(config, model_.transformer->dtype(), model_.transformer->device(),
                                             registry, options_.adapters, [this] {
                                               {
                                                 std::lock_guard lock(mutex_);
                                                 loads_done_ = true;
                                               }
                                               wake_.notify_all();
                                             });
  stats_.kv_blocks_total = stats_.kv_blocks_free = blocks;
}

Engine::~Engine() {
  stop();
  // Every request gets its final event, even one the engine never ran.
  take_commands();
  for (auto& sequence : waiting_) finish(*sequence, RequestState::Cancelled);
  for (auto& sequence : running_) finish(*sequence, RequestState::Cancelled);
  // Sequences return their KV blocks to the pool: they go before it does.
  waiting_.clear();
  running_.clear();
  submitted_.clear();
  // The cache's loader thread wakes this engine through mutex_: it stops first.
  adapters_.reset();
}


uint64_t Engine::submit(EngineRequest request) {
  const ModelConfig& config = model_.transformer->config();
  if (request.prompt.empty() && !request.messages.empty()) request.prompt = encode_chat(model_, request.messages, ContentTokens::kText);
  if (request.prompt.empty()) fail("the prompt is empty");
  for (size_t i = 0; i < request.prompt.size(); ++i)
    if (request.prompt[i] < 0 || request.prompt[i] >= config.vocab_size)
      fail("prompt token {} is {}, outside the vocabulary of {}", i, request.prompt[i], config.vocab_size);
  validate(request.params.sampling);
  if (request.params.max_new_tokens < 0) fail("max tokens is {}; it must be ≥ 0", request.params.max_new_tokens);
  if (!request.user.empty()) validate_user_id(request.user);
  if (request.params.stop_token_ids.empty()) request.params.stop_token_ids = model_.stop_token_ids;
  const int64_t prompt_tokens = static_cast<int64_t>(request.prompt.size());
  if (prompt_tokens >= max_context_tokens_)
    fail("the prompt has {} tokens, but this server holds at most {} per sequence (model context {}, KV pool {})",
         prompt_tokens, max_context_tokens_, config.max_position_embeddings,
         kv_pool_->num_blocks() * kv_pool_->block_tokens());
  // A sequence alone always fits the pool, so preemption can always make room.
  const int64_t max_new_tokens = std::min(request.params.max_new_tokens, max_context_tokens_ - prompt_tokens);
  auto sequence = std::make_unique<Sequence>(std::move(request), *model_.tokenizer, max_new_tokens);
  std::lock_guard lock(mutex_);
  sequence->id = next_id_++;
  const uint64_t id = sequence->id;
  submitted_.push_back(std::move(sequence));
  wake_.notify_all();
  return id;
}

void Engine::cancel(uint64_t id) {
  std::lock_guard lock(mutex_);
  cancelled_.push_back(id);
  wake_.notify_all();
}

void Engine::evict_user(const std::string& user, const std::string& reason) {
  std::lock_guard lock(mutex_);
  evicted_.emplace_back(user, reason);
  wake_.notify_all();
}

void Engine::emit(Sequence& sequence, std::string text) {
  if (!sequence.request.on_event) return;
  RequestEvent event;
  event.id = sequence.id;
  event.state = sequence.state;
  event.text = std::move(text);
  if (sequence.adapter) event.adapter_version = sequence.adapter->version;
  try {
    sequence.request.on_event(event);
  } catch (const std::exception& e) {
    spdlog::warn("request {}: the event callback threw: {}", sequence.id, e.what());
  }
}

void Engine::finish(Sequence& sequence, RequestState state, const std::string& error) {
  if (sequence.ended()) return;
  if (sequence.slot >= 0) adapters_->release(sequence.slot);
  sequence.slot = -1;
  if (sequence.cache) sequence.cache->release();
  sequence.state = state;
  RequestEvent event;
  event.id = sequence.id;
  event.state = state;
  event.final = true;
  event.finish_reason = sequence.stream.finish_reason();
  event.error = error;
  event.prompt_tokens = static_cast<int64_t>(sequence.request.prompt.size());
  event.completion_tokens = static_cast<int64_t>(sequence.stream.tokens().size());
  event.tokens = sequence.stream.tokens();
  if (sequence.adapter) event.adapter_version = sequence.adapter->version;
  sequence.timings.total_ms = ms_between(sequence.submitted_at, Clock::now());
  event.timings = sequence.timings;
  {
    std::lock_guard lock(mutex_);
    if (state == RequestState::Finished) ++stats_.finished;
    if (state == RequestState::Cancelled) ++stats_.cancelled;
    if (state == RequestState::Failed) ++stats_.failed;
  }
  if (!sequence.request.on_event) return;
  try {
    sequence.request.on_event(event);
  } catch (const std::exception& e) {
    spdlog::warn("request {}: the event callback threw: {}", sequence.id, e.what());
  }
}

void Engine::take_commands() {
  std::vector<std::unique_ptr<Sequence>> submitted;
  std::vector<uint64_t> cancelled;
  std::vector<std::pair<std::string, std::string>> evicted;
  {
    std::lock_guard lock(mutex_);
    submitted.swap(submitted_);
    cancelled.swap(cancelled_);
    evicted.swap(evicted_);
    loads_done_ = false;
  }
  for (auto& sequence : submitted) waiting_.push_back(std::move(sequence));
  auto for_each_sequence = [&](auto&& action) {
    for (auto& sequence : waiting_) action(*sequence);
    for (auto& sequence : running_) action(*sequence);
  };
  for (uint64_t id : cancelled)
    for_each_sequence([&](Sequence& sequence) {
      if (sequence.id == id) finish(sequence, RequestState::Cancelled);
    });
  for (const auto& eviction : evicted) {  // not a structured binding: clang 14 cannot capture one
    const std::string& user = eviction.first;
    for_each_sequence([&](Sequence& sequence) {
      if (sequence.request.user == user) finish(sequence, RequestState::Failed, eviction.second);
    });
    adapters_->evict_user(user);
  }
  for (const auto& [key, error] : adapters_->collect_loads())
    for (auto& sequence : waiting_)
      if (sequence->adapter == key) finish(*sequence, RequestState::Failed, error);
}

void Engine::poll_registry() {
  const double now = now_ms();
  if (now - last_poll_ms_ < options_.registry_poll_ms) return;
  last_poll_ms_ = now;
  std::map<std::string, std::optional<int64_t>> moved;
  try {
    moved = adapters_->poll_registry();
  } catch (const std::exception& e) {
    spdlog::warn("registry poll failed (serving goes on with what is cached): {}", e.what());
    return;
  }
  for (const auto& [user, live] : moved) {
    if (!live) {
      // Erased: nothing of the user's memory may serve another token.
      for (auto& sequence : waiting_)
        if (sequence->request.user == user) finish(*sequence, RequestState::Failed, "the user's memory was erased");
      for (auto& sequence : running_)
        if (sequence->request.user == user) finish(*sequence, RequestState::Failed, "the user's memory was erased");
      adapters_->evict_user(user);
      continue;
    }
    // A new live version: requests not yet holding a slot take it; running ones finish on theirs.
    for (auto& sequence : waiting_)
      // One answer comes from one adapter: a request that already produced
      // tokens (preempted since) keeps the version it started with.
      if (sequence->request.user == user && sequence->slot < 0 && !sequence->produced)
        sequence->adapter_resolved = false;
  }
}

void Engine::preempt(Sequence& sequence) {
  sequence.cache->release();
  sequence.computed = 0;
  sequence.feed = 0;
  if (sequence.slot >= 0) adapters_->release(sequence.slot);
  sequence.slot = -1;
  sequence.state = RequestState::Waiting;
  ++sequence.timings.preemptions;
  auto it = std::find_if(running_.begin(), running_.end(), [&](const auto& s) { return s.get() == &sequence; });
  MNEMO_CHECK(it != running_.end(), "preempting request {} that is not running", sequence.id);
  waiting_.push_front(std::move(*it));
  running_.erase(it);
}

// Grows `sequence`'s blocks to hold n_tokens, preempting the newest running
// sequences until they fit. False when `sequence` itself was the one preempted.
bool Engine::reserve_or_preempt(Sequence& sequence, int64_t n_tokens, std::vector<Sequence*>& plan,
                                int64_t& preempted) {
  while (!sequence.cache->reserve(n_tokens)) {
    Sequence* victim = nullptr;
    for (auto& running : running_)
      if (!running->ended() && (!victim || running->id > victim->id)) victim = running.get();
    MNEMO_CHECK(victim, "no running sequence to preempt for request {}", sequence.id);
    plan.erase(std::remove(plan.begin(), plan.end(), victim), plan.end());
    preempt(*victim);
    ++preempted;
    if (victim == &sequence) return false;
  }
  return true;
}

void Engine::admit(std::vector<Sequence*>& plan, int64_t& tokens_left) {
  // Admission ends only waiting sequences, so the running count moves only by what it admits.
  int64_t live = 0;
  for (auto& running : running_) live += running->ended() ? 0 : 1;
  for (size_t i = 0; i < waiting_.size() && tokens_left > 0;) {
    if (live >= options_.max_sequences) break;
    Sequence& sequence = *waiting_[i];
    if (sequence.stream.done()) finish(sequence, RequestState::Finished);  // asked for no tokens at all
    if (sequence.ended()) {
      ++i;
      continue;
    }
    if (!sequence.adapter_resolved) {
      try {
        std::optional<int64_t> version = adapters_->live_version(sequence.request.user);
        sequence.adapter = version ? std::optional<AdapterKey>(AdapterKey{sequence.request.user, *version})
                                   : std::nullopt;
        sequence.adapter_resolved = true;
      } catch (const std::exception& e) {
        finish(sequence, RequestState::Failed, fmt::format("the registry could not be read: {}", e.what()));
        ++i;
        continue;
      }
    }
    if (sequence.adapter && sequence.slot < 0) {
      AdapterCache::Acquired acquired = adapters_->acquire(*sequence.adapter);
      if (acquired.status == AdapterCache::Status::Failed) {
        finish(sequence, RequestState::Failed, acquired.error);
        ++i;
        continue;
      }
      if (acquired.status != AdapterCache::Status::Ready) {
        // Loading in the background, or every slot pinned: the others go ahead.
        if (!sequence.loading_since) sequence.loading_since = Clock::now();
        sequence.state = RequestState::LoadingAdapter;
        ++i;
        continue;
      }
      sequence.slot = acquired.slot;
      if (sequence.loading_since)
        sequence.timings.adapter_load_ms += ms_between(*sequence.loading_since, Clock::now());
      sequence.loading_since.reset();
    }
    if (!sequence.cache) sequence.cache = std::make_unique<SequenceCache>(*kv_pool_);
    const int64_t remaining = static_cast<int64_t>(sequence.tokens.size()) - sequence.computed;
    const int64_t feed = std::min(remaining, tokens_left);
    // New work never preempts running work; the oldest waiting request goes first (no starvation).
    if (!sequence.cache->reserve(sequence.computed + feed)) break;
    sequence.state = RequestState::Prefilling;
    sequence.feed = feed;
    if (!sequence.scheduled) {
      sequence.scheduled = true;
      sequence.timings.queue_ms = ms_between(sequence.submitted_at, Clock::now());
    }
    tokens_left -= feed;
    plan.push_back(&sequence);
    running_.push_back(std::move(waiting_[i]));
    ++live;
    waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

// Samples the sequence's next token from its logits row, streams it, and
// finishes the sequence when it stops.
void Engine::take_token(Sequence& sequence, const at::Tensor& logits) {
  const int32_t token = sequence.sampler.sample(logits);
  const auto now = Clock::now();
  if (!sequence.produced) {
    sequence.produced = true;
    sequence.timings.first_token_ms = ms_between(sequence.submitted_at, now);
  } else {
    sequence.timings.inter_token_ms.push_back(static_cast<float>(ms_between(sequence.last_token_at, now)));
  }
  sequence.last_token_at = now;
  sequence.state = RequestState::Decoding;
  std::string piece = sequence.stream.accept(token);
  if (!sequence.stream.done()) sequence.tokens.push_back(token);
  emit(sequence, std::move(piece));
  if (sequence.stream.done()) finish(sequence, RequestState::Finished);
}

bool Engine::step(StepStats* step_stats) {
  c10::InferenceMode inference_mode;
  take_commands();
  poll_registry();

  std::vector<Sequence*> plan;
  int64_t tokens_left = options_.max_batch_tokens;
  int64_t preempted = 0;
  // Decodes first (one token each, oldest first), then prefill chunks of the
  // running sequences, then new admissions: a long prompt waits for budget,
  // never a stream that is already producing tokens.
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<Sequence*> candidates;
    for (auto& sequence : running_)
      if (!sequence->ended()) candidates.push_back(sequence.get());
    for (Sequence* sequence : candidates) {
      if (sequence->state == RequestState::Waiting) continue;  // preempted meanwhile
      const int64_t remaining = static_cast<int64_t>(sequence->tokens.size()) - sequence->computed;
      const bool decode = remaining == 1;
      if (decode != (pass == 0) || tokens_left <= 0) continue;
      const int64_t feed = std::min(remaining, tokens_left);
      if (!reserve_or_preempt(*sequence, sequence->computed + feed, plan, preempted)) continue;
      sequence->feed = feed;
      tokens_left -= feed;
      plan.push_back(sequence);
    }
  }
  // Preemption may have dropped planned sequences: give their tokens back.
  tokens_left = options_.max_batch_tokens;
  for (Sequence* sequence : plan) tokens_left -= sequence->feed;
  admit(plan, tokens_left);

  StepStats stats;
  stats.preempted = preempted;
  if (!plan.empty()) {
    ForwardBatch batch;
    std::vector<int64_t> logit_rows;
    std::vector<int64_t> logit_row_of(plan.size(), -1);
    std::set<int32_t> slots;
    bool any_adapter = false;
    int64_t row = 0;
    for (size_t i = 0; i < plan.size(); ++i) {
      Sequence& sequence = *plan[i];
      auto begin = sequence.tokens.begin() + sequence.computed;
      batch.tokens.emplace_back(begin, begin + sequence.feed);
      batch.caches.push_back(sequence.cache.get());
      batch.adapter_slots.push_back(sequence.slot);
      any_adapter = any_adapter || sequence.slot >= 0;
      if (sequence.slot >= 0) slots.insert(sequence.slot);
      row += sequence.feed;
      if (sequence.computed + sequence.feed == static_cast<int64_t>(sequence.tokens.size())) {
        logit_row_of[i] = static_cast<int64_t>(logit_rows.size());
        logit_rows.push_back(row - 1);
      }
      if (sequence.feed == 1 && sequence.produced) stats.decode_tokens += 1;
      else stats.prefill_tokens += sequence.feed;
    }
    stats.sequences = static_cast<int64_t>(plan.size());
    stats.distinct_adapters = static_cast<int64_t>(slots.size());
    // Only the rows that choose a next token need the vocabulary projection.
    if (!logit_rows.empty()) batch.logit_rows = logit_rows;
    const auto start = Clock::now();
    spdlog::debug("engine step: {} sequences, {} distinct adapters, {} prefill + {} decode tokens", stats.sequences,
                  stats.distinct_adapters, stats.prefill_tokens, stats.decode_tokens);
    at::Tensor logits;
    try {
      logits = model_.transformer->forward(batch, any_adapter ? &adapters_->slots() : nullptr);
    } catch (const std::exception& e) {
      // Inputs were checked at submit; whatever broke, the server stays up.
      spdlog::error("engine step failed for {} sequences: {}", plan.size(), e.what());
      for (Sequence* sequence : plan) finish(*sequence, RequestState::Failed, fmt::format("internal error: {}", e.what()));
      plan.clear();
    }
    stats.forward_ms = ms_between(start, Clock::now());
    for (size_t i = 0; i < plan.size(); ++i) {
      Sequence& sequence = *plan[i];
      sequence.computed += sequence.feed;
      sequence.feed = 0;
      if (logit_row_of[i] < 0 || logit_rows.empty()) continue;
      try {
        take_token(sequence, logits[logit_row_of[i]]);
      } catch (const std::exception& e) {
        // One request's failure (a callback, the sampler) ends that request only.
        finish(sequence, RequestState::Failed, fmt::format("internal error: {}", e.what()));
      }
    }
  }
  // Ended sequences leave both queues (their blocks and slots were freed in finish()).
  std::erase_if(running_, [](const auto& sequence) { return sequence->ended(); });
  std::erase_if(waiting_, [](const auto& sequence) { return sequence->ended(); });
  {
    std::lock_guard lock(mutex_);
    ++stats_.steps;
    stats_.prefill_tokens += stats.prefill_tokens;
    stats_.decode_tokens += stats.decode_tokens;
    stats_.preemptions += stats.preempted;
    stats_.waiting = static_cast<int64_t>(waiting_.size() + submitted_.size());
    stats_.running = static_cast<int64_t>(running_.size());
    stats_.kv_blocks_free = kv_pool_->free_blocks();
    stats_.adapters = adapters_->stats();
  }
  if (step_stats) *step_stats = stats;
  return !plan.empty() || stats.preempted > 0;
}

void Engine::run_until_idle() {
  while (true) {
    if (step()) continue;
    bool waiting;
    {
      std::lock_guard lock(mutex_);
      waiting = !waiting_.empty() || !submitted_.empty();
    }
    if (!waiting) return;
    // Only adapter loads stand between the waiting requests and a step.
    wait_for_event(200);
  }
}

void Engine::wait_for_event(double timeout_ms) {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, std::chrono::duration<double, std::milli>(timeout_ms), [&] {
    return stopping_ || loads_done_ || !submitted_.empty() || !cancelled_.empty() || !evicted_.empty();
  });
}

void Engine::start() {
  MNEMO_CHECK(!loop_.joinable(), "the engine loop is already running");
  stopping_ = false;
  loop_ = std::thread([this] {
    while (!stopping_) {
      bool worked = false;
      try {
        worked = step();
      } catch (const std::exception& e) {
        spdlog::error("engine step: {}", e.what());
      }
      if (!worked) wait_for_event(std::max(options_.registry_poll_ms, 1.0));
    }
  });
}

void Engine::stop() {
  if (!loop_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  loop_.join();
  take_commands();
  for (auto& sequence : waiting_) finish(*sequence, RequestState::Cancelled);
  for (auto& sequence : running_) finish(*sequence, RequestState::Cancelled);
  waiting_.clear();
  running_.clear();
}

EngineStats Engine::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace mnemo
