// The serving engine: continuous batching of many users' requests over one
// base model, each token routed to its own user's adapter slot.
//
// Each step admits waiting requests within the budgets (tokens per step,
// sequences, KV blocks, adapter slots) and runs one forward over a batch that
// mixes decode tokens and prefill chunks of different users. Decodes are
// scheduled first, so a long prompt (prefilled in chunks) never starves the
// streams already running. KV memory is a pool of fixed-size blocks
// (model/kv_cache.h); when it runs out, the newest running request is
// preempted, its blocks freed, and it is recomputed later: never failed for it.
//
// One thread owns the batch: step() (or the loop that start() runs) is the
// only place that touches sequences, the KV pool and the adapter slots.
// submit() and cancel() may be called from any thread; they hand work to the
// step thread through a queue. Adapters load on the adapter cache's own
// thread while steps go on.
#pragma once

#include "serve/adapter_cache.h"
#include "serve/request.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace at {
class Tensor;
}

namespace mnemo {

struct BaseModel;
class KvBlockPool;
struct Sequence;

struct EngineOptions {
  int64_t max_batch_tokens = 256;  // tokens in one forward (decode tokens + prefill chunks)
  int64_t max_sequences = 32;      // sequences running at once
  int64_t kv_block_tokens = 16;
  int64_t kv_memory_bytes = int64_t{256} << 20;  // the KV pool; its block count follows
  AdapterCacheOptions adapters;
  // How often the step loop asks the registry whether a version moved (0: every step).
  double registry_poll_ms = 200;
};

// What one step did (the HTTP layer exports these as metrics).
struct StepStats {
  int64_t sequences = 0;       // in the forward
  int64_t decode_tokens = 0;
  int64_t prefill_tokens = 0;
  int64_t distinct_adapters = 0;
  int64_t preempted = 0;
  double forward_ms = 0;
};

struct EngineStats {
  int64_t steps = 0;
  int64_t waiting = 0;   // queue depth, loading adapters included
  int64_t running = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_free = 0;
  int64_t prefill_tokens = 0;
  int64_t decode_tokens = 0;
  int64_t preemptions = 0;
  int64_t finished = 0, cancelled = 0, failed = 0;
  AdapterCacheStats adapters;
};

class Engine {
 public:
  // `registry` may be null: every request then runs on the base model. Both
  // must outlive the engine.
  Engine(const BaseModel& model, Registry* registry, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request and returns its id. Thread-safe. Throws mnemo::Error for
  // a request that can never run (empty prompt, one longer than the context
  // or the whole KV pool, bad sampling parameters, a malformed user id).
  uint64_t submit(EngineRequest request);
  // Ends a request wherever it is; its final event says Cancelled. Thread-safe;
  // an unknown or finished id is ignored.
  void cancel(uint64_t id);
  // Ends every request of `user` with an error and drops their adapter from
  // every tier (the admin's unload; erasure is also picked up from the registry).
  void evict_user(const std::string& user, const std::string& reason);

  // One engine step on the calling thread. Returns false when there was
  // nothing to do. REQUIRES: start() is not running.
  bool step(StepStats* stats = nullptr);
  // Blocks until something may make a step useful (a request arrives or is
  // cancelled, an adapter load finishes) or `timeout_ms` passes. For callers
  // that drive step() themselves, instead of sleeping.
  void wait_for_event(double timeout_ms);
  // Steps until no request is left; waits (without spinning) while the only
  // work is adapters loading. REQUIRES: start() is not running.
  void run_until_idle();
  // A thread that steps whenever there is work; stop() ends it (requests
  // still running are cancelled).
  void start();
  void stop();

  EngineStats stats() const;  // thread-safe
  const EngineOptions& options() const { return options_; }

 private:
  void take_commands();
  void poll_registry();
  void admit(std::vector<Sequence*>& plan, int64_t& tokens_left);
  bool reserve_or_preempt(Sequence& sequence, int64_t n_tokens, std::vector<Sequence*>& plan, int64_t& preempted);
  void preempt(Sequence& sequence);
  void finish(Sequence& sequence, RequestState state, const std::string& error = {});
  void emit(Sequence& sequence, std::string text);
  void take_token(Sequence& sequence, const at::Tensor& logits);
  void update_stats();

  const BaseModel& model_;
  EngineOptions options_;
  std::unique_ptr<KvBlockPool> kv_pool_;
  std::unique_ptr<AdapterCache> adapters_;
  int64_t max_context_tokens_ = 0;

  // Owned by the step thread.
  std::deque<std::unique_ptr<Sequence>> waiting_;  // arrival order (preempted ones go back to the front)
  std::vector<std::unique_ptr<Sequence>> running_; // admission order
  double last_poll_ms_ = -1e18;

  // Shared with submitting threads.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::unique_ptr<Sequence>> submitted_;
  std::vector<uint64_t> cancelled_;
  std::vector<std::pair<std::string, std::string>> evicted_;  // user, reason
  bool loads_done_ = false;
  uint64_t next_id_ = 1;
  EngineStats stats_;
  std::atomic<bool> stopping_{false};
  std::thread loop_;
};

}  // namespace mnemo
