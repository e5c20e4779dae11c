// The serving engine's adapter tiers: device slots (AdapterSlots, the stacked
// tensors the multi-adapter ops index) ← a host LRU with a byte budget ← the
// registry on disk. An adapter is known by (user, version): a newly published
// version is a different adapter, so nothing cached for the old one is ever
// served for the new one.
//
// A miss in both tiers loads on a background thread (registry export with
// hash checks, PEFT read, shape check) while the engine keeps stepping; the
// engine picks finished loads up with collect_loads(). A slot is pinned while
// any sequence uses it, and only unpinned slots are evicted (least recently
// used first). A corrupt or missing adapter fails only its own key.
//
// Thread safety: every method except the loader's own work runs on the
// engine's step thread.
#pragma once

#include "adapters/adapter_slots.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace mnemo {

class Registry;

struct AdapterKey {
  std::string user;
  int64_t version = 0;
  auto operator<=>(const AdapterKey&) const = default;
};

struct AdapterCacheOptions {
  int64_t device_slots = 8;
  int64_t host_bytes = int64_t{1} << 30;
  int64_t rank_capacity = 16;  // slots grow past it when a larger rank arrives
  std::string scratch_dir;     // under which this cache makes its own directory for registry exports
                               // while loading (removed with the cache); "" = the system temp dir
};

struct AdapterCacheStats {
  int64_t slot_hits = 0;       // already in a slot
  int64_t host_hits = 0;       // copied from the host tier into a slot
  int64_t registry_loads = 0;  // read from the registry
  int64_t load_failures = 0;
  int64_t slot_evictions = 0;
  int64_t host_evictions = 0;
  int64_t host_bytes = 0;
  int64_t slots_used = 0;
  int64_t slots_pinned = 0;
  std::vector<double> registry_load_ms;  // background read time of recent registry loads (the last 512 to 1024)
  std::vector<double> slot_load_ms;      // host tier → slot copy time of recent ones
};

class AdapterCache {
 public:
  // `registry` may be null (no user has an adapter). `on_loaded` is called on
  // the loader thread after each load finishes, to wake the engine.
  AdapterCache(const ModelConfig& model_config, at::ScalarType dtype, at::Device device, Registry* registry,
               AdapterCacheOptions options, std::function<void()> on_loaded = {});
  ~AdapterCache();
  AdapterCache(const AdapterCache&) = delete;
  AdapterCache& operator=(const AdapterCache&) = delete;

  // The user's live version, or none when they have no adapter (or there is no registry).
  std::optional<int64_t> live_version(const std::string& user);

  enum class Status { Ready, Loading, NoFreeSlot, Failed };
  struct Acquired {
    Status status = Status::Loading;
    int32_t slot = -1;  // Ready: pinned for the caller until release()
    std::string error;  // Failed
  };
  // Pins the key's slot, bringing it there from the host tier when it is in
  // memory (a copy, here and now), else starting a background load (Loading).
  Acquired acquire(const AdapterKey& key);
  void release(int32_t slot);

  // Moves finished background loads into the host tier; returns the keys whose load failed.
  std::vector<std::pair<AdapterKey, std::string>> collect_loads();
  bool loads_in_flight() const;

  // Every tier forgets the user at once (erasure, unload). Pinned slots are
  // emptied as soon as their last pin goes; REQUIRES the engine to end their
  // sequences first when the memory must be gone now.
  void evict_user(const std::string& user);
  // Registry changes since the last poll: users whose live version moved
  // (value: the new live version, or none when erased).
  std::map<std::string, std::optional<int64_t>> poll_registry();

  const AdapterSlots& slots() const { return *slots_; }
  AdapterCacheStats stats() const;

 private:
  struct HostEntry {
    std::shared_ptr<const LoraAdapter> adapter;
    int64_t bytes = 0;
    uint64_t last_used = 0;
  };
  struct SlotEntry {
    std::optional<AdapterKey> key;
    int64_t pins = 0;
    uint64_t last_used = 0;
    bool doomed = false;  // evicted while pinned: empty it when unpinned
  };
  struct LoadResult {
    AdapterKey key;
    std::shared_ptr<const LoraAdapter> adapter;  // null on failure
    std::string error;
    double ms = 0;
  };

  void loader_loop();
  LoadResult load_from_registry(const AdapterKey& key);
  int32_t free_or_evictable_slot();
  void put_host(const AdapterKey& key, std::shared_ptr<const LoraAdapter> adapter);
  void empty_slot(int32_t slot);
  void forget(const std::string& user, std::optional<int64_t> keep);

  ModelConfig model_config_;
  Registry* registry_;
  AdapterCacheOptions options_;
  std::unique_ptr<AdapterSlots> slots_;
  std::vector<SlotEntry> slot_entries_;
  std::map<AdapterKey, int32_t> slot_of_;
  std::map<AdapterKey, HostEntry> host_;
  int64_t host_bytes_ = 0;
  uint64_t clock_ = 0;
  uint64_t registry_generation_ = 0;
  AdapterCacheStats stats_;
  std::map<AdapterKey, bool> requested_;  // loads queued or running

  // Shared with the loader thread.
  mutable std::mutex mutex_;
  std::condition_variable wake_loader_;
  std::deque<AdapterKey> to_load_;
  std::vector<LoadResult> loaded_;
  bool stopping_ = false;
  std::function<void()> on_loaded_;
  std::thread loader_;
};

}  // namespace mnemo
