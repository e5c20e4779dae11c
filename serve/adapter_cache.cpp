#include "serve/adapter_cache.h"

#include "adapters/lora_adapter.h"
#include "adapters/registry.h"
#include "adapters/sha256.h"
#include "model/error.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace mnemo {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string sha256_of_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read {}", path);
  Sha256 hash;
  std::vector<char> buffer(size_t{1} << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    hash.update(buffer.data(), static_cast<size_t>(in.gcount()));
  }
  return hash.hex();
}

// The timing lists keep the most recent samples only: a server runs for months.
void record_sample(std::vector<double>& samples, double ms) {
  constexpr size_t kKept = 1024;
  if (samples.size() >= kKept) samples.erase(samples.begin(), samples.begin() + kKept / 2);
  samples.push_back(ms);
}

int64_t adapter_bytes(const LoraAdapter& adapter) {
  int64_t bytes = 0;
  for (const auto& layer : adapter.layers)
    for (const LoraPair& pair : layer)
      if (pair.A.defined()) bytes += pair.A.nbytes() + pair.B.nbytes();
  return bytes;
}

}  // namespace

AdapterCache::AdapterCache(const ModelConfig& model_config, at::ScalarType dtype, at::Device device,
                           Registry* registry, AdapterCacheOptions options, std::function<void()> on_loaded)
    : model_config_(model_config),
      registry_(registry),
      options_(std::move(options)),
      on_loaded_(std::move(on_loaded)) {
  MNEMO_CHECK(options_.device_slots >= 1, "an adapter cache needs at least one device slot");
  slots_ = std::make_unique<AdapterSlots>(model_config_, options_.device_slots, dtype, device, options_.rank_capacity);
  slot_entries_.resize(static_cast<size_t>(options_.device_slots));
  // A directory of this cache's own inside the configured one (which may be
  // shared, or hold other things): only that is ever removed.
  static std::atomic<int> instances{0};
  fs::path parent = options_.scratch_dir.empty() ? fs::temp_directory_path() : fs::path(options_.scratch_dir);
  options_.scratch_dir =
      (parent / fmt::format("mnemo_adapter_loads_{}_{}", ::getpid(), instances.fetch_add(1))).string();
  if (registry_) registry_generation_ = registry_->generation();
  loader_ = std::thread([this] { loader_loop(); });
}

AdapterCache::~AdapterCache() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_loader_.notify_all();
  loader_.join();
  std::error_code ignored;
  fs::remove_all(options_.scratch_dir, ignored);
}

std::optional<int64_t> AdapterCache::live_version(const std::string& user) {
  if (!registry_ || user.empty()) return std::nullopt;
  return registry_->live_version(user);
}

void AdapterCache::loader_loop() {
  while (true) {
    AdapterKey key;
    {
      std::unique_lock lock(mutex_);
      wake_loader_.wait(lock, [&] { return stopping_ || !to_load_.empty(); });
      if (stopping_) return;
      key = to_load_.front();
      to_load_.pop_front();
    }
    spdlog::debug("adapter cache: loading {}@{} from the registry", key.user, key.version);
    LoadResult result = load_from_registry(key);
    spdlog::debug("adapter cache: loaded {}@{} in {:.1f} ms{}", key.user, key.version, result.ms,
                  result.adapter ? "" : " (failed)");
    {
      std::lock_guard lock(mutex_);
      loaded_.push_back(std::move(result));
    }
    if (on_loaded_) on_loaded_();
  }
}

// Runs on the loader thread. The version's files are read where the
// registry keeps them (immutable, content-addressed blobs), through links in
// a scratch directory, after each is hashed against its record: a corrupt
// adapter fails here, before it can reach a slot. No copy and no fsync, as
// an export for a user would need: this is a read.
AdapterCache::LoadResult AdapterCache::load_from_registry(const AdapterKey& key) {
  LoadResult result;
  result.key = key;
  const auto start = Clock::now();
  fs::path dir = fs::path(options_.scratch_dir) / (key.user + "@" + std::to_string(key.version));
  try {
    MNEMO_CHECK(registry_, "no registry to load {} from", key.user);
    std::error_code ignored;
    fs::remove_all(dir, ignored);
    fs::create_directories(dir);
    VersionRecord record = registry_->version(key.user, key.version);
    for (const FileRef& file : record.files) {
      const std::string path = registry_->file_path(key.user, key.version, file.name);
      const std::string actual = sha256_of_file(path);
      if (actual != file.sha256)
        fail("{} of {}@{} is corrupt: blob {} hashes to {}", file.name, key.user, key.version, file.sha256, actual);
      fs::create_symlink(fs::absolute(path), dir / file.name);
    }
    auto adapter = std::make_shared<LoraAdapter>(read_peft_adapter(dir.string()));
    validate_against(*adapter, model_config_);
    result.adapter = std::move(adapter);
  } catch (const std::exception& e) {
    result.error = fmt::format("the adapter of user {} (version {}) could not be loaded: {}", key.user,
                               key.version, e.what());
  }
  std::error_code ignored;
  fs::remove_all(dir, ignored);
  result.ms = ms_since(start);
  return result;
}

std::vector<std::pair<AdapterKey, std::string>> AdapterCache::collect_loads() {
  std::vector<LoadResult> done;
  {
    std::lock_guard lock(mutex_);
    done.swap(loaded_);
  }
  std::vector<std::pair<AdapterKey, std::string>> failures;
  for (LoadResult& result : done) {
    auto request = requested_.find(result.key);
    const bool wanted = request != requested_.end() && request->second;
    if (request != requested_.end()) requested_.erase(request);
    if (!wanted) continue;  // erased or superseded while it loaded: never kept
    if (!result.adapter) {
      ++stats_.load_failures;
      spdlog::warn("{}", result.error);
      failures.emplace_back(result.key, result.error);
      continue;
    }
    ++stats_.registry_loads;
    record_sample(stats_.registry_load_ms, result.ms);
    put_host(result.key, std::move(result.adapter));
  }
  return failures;
}

bool AdapterCache::loads_in_flight() const { return !requested_.empty(); }

void AdapterCache::put_host(const AdapterKey& key, std::shared_ptr<const LoraAdapter> adapter) {
  HostEntry entry{.adapter = adapter, .bytes = adapter_bytes(*adapter), .last_used = ++clock_};
  if (auto old = host_.find(key); old != host_.end()) {
    host_bytes_ -= old->second.bytes;
    host_.erase(old);
  }
  host_bytes_ += entry.bytes;
  host_.emplace(key, std::move(entry));
  // Least recently used first, never the one just added: an adapter larger
  // than the budget still serves its requests once.
  while (host_bytes_ > options_.host_bytes && host_.size() > 1) {
    auto victim = host_.end();
    for (auto it = host_.begin(); it != host_.end(); ++it)
      if (!(it->first == key) && (victim == host_.end() || it->second.last_used < victim->second.last_used))
        victim = it;
    host_bytes_ -= victim->second.bytes;
    host_.erase(victim);
    ++stats_.host_evictions;
  }
}

int32_t AdapterCache::free_or_evictable_slot() {
  int32_t best = -1;
  for (size_t i = 0; i < slot_entries_.size(); ++i) {
    const SlotEntry& entry = slot_entries_[i];
    if (!entry.key) return static_cast<int32_t>(i);
    if (entry.pins == 0 && (best < 0 || entry.last_used < slot_entries_[static_cast<size_t>(best)].last_used))
      best = static_cast<int32_t>(i);
  }
  return best;
}

void AdapterCache::empty_slot(int32_t slot) {
  SlotEntry& entry = slot_entries_[static_cast<size_t>(slot)];
  if (entry.key) {
    auto it = slot_of_.find(*entry.key);
    if (it != slot_of_.end() && it->second == slot) slot_of_.erase(it);
  }
  slots_->unload(slot);
  entry = SlotEntry{};
}

AdapterCache::Acquired AdapterCache::acquire(const AdapterKey& key) {
  if (auto it = slot_of_.find(key); it != slot_of_.end()) {
    SlotEntry& entry = slot_entries_[static_cast<size_t>(it->second)];
    ++entry.pins;
    entry.last_used = ++clock_;
    // The host copy of a hot adapter is recent too: it must not be the first to go.
    if (auto host = host_.find(key); host != host_.end()) host->second.last_used = clock_;
    ++stats_.slot_hits;
    return {Status::Ready, it->second, {}};
  }
  auto host = host_.find(key);
  if (host == host_.end()) {
    // A load already under way (even one that will be dropped because the
    // user was erased meanwhile: its bytes may be the old ones) is waited for;
    // the next acquire after it starts a fresh one.
    if (!requested_.count(key)) {
      requested_[key] = true;
      {
        std::lock_guard lock(mutex_);
        to_load_.push_back(key);
      }
      wake_loader_.notify_one();
    }
    return {Status::Loading, -1, {}};
  }
  int32_t slot = free_or_evictable_slot();
  if (slot < 0) return {Status::NoFreeSlot, -1, {}};
  if (slot_entries_[static_cast<size_t>(slot)].key) {
    empty_slot(slot);
    ++stats_.slot_evictions;
  }
  const auto start = Clock::now();
  spdlog::debug("adapter cache: {}@{} from the host tier into slot {}", key.user, key.version, slot);
  try {
    slots_->load(slot, *host->second.adapter);
  } catch (const std::exception& e) {
    // It fit when it was read; a slot refusing it is this adapter's fault only.
    host_bytes_ -= host->second.bytes;
    host_.erase(host);
    return {Status::Failed, -1, fmt::format("the adapter of user {} (version {}) does not fit a slot: {}", key.user,
                                            key.version, e.what())};
  }
  record_sample(stats_.slot_load_ms, ms_since(start));
  host->second.last_used = ++clock_;
  ++stats_.host_hits;
  slot_entries_[static_cast<size_t>(slot)] = SlotEntry{.key = key, .pins = 1, .last_used = clock_};
  slot_of_[key] = slot;
  return {Status::Ready, slot, {}};
}

void AdapterCache::release(int32_t slot) {
  SlotEntry& entry = slot_entries_.at(static_cast<size_t>(slot));
  MNEMO_CHECK(entry.pins > 0, "adapter slot {} released but not pinned", slot);
  if (--entry.pins == 0 && entry.doomed) empty_slot(slot);
}

// Every tier forgets the user's versions other than `keep` (none: all of them):
// loads under way are dropped when they land, host copies go now, and slots
// are emptied now or, while pinned, as soon as their last sequence ends.
void AdapterCache::forget(const std::string& user, std::optional<int64_t> keep) {
  auto forgotten = [&](const AdapterKey& key) { return key.user == user && (!keep || key.version != *keep); };
  for (auto& [key, wanted] : requested_)
    if (forgotten(key)) wanted = false;
  for (auto it = host_.begin(); it != host_.end();) {
    if (forgotten(it->first)) {
      host_bytes_ -= it->second.bytes;
      it = host_.erase(it);
    } else {
      ++it;
    }
  }
  for (size_t i = 0; i < slot_entries_.size(); ++i) {
    SlotEntry& entry = slot_entries_[i];
    if (!entry.key || !forgotten(*entry.key)) continue;
    if (entry.pins == 0) {
      empty_slot(static_cast<int32_t>(i));
    } else {
      entry.doomed = true;
      slot_of_.erase(*entry.key);  // nobody new pins it
    }
  }
}

void AdapterCache::evict_user(const std::string& user) { forget(user, std::nullopt); }

std::map<std::string, std::optional<int64_t>> AdapterCache::poll_registry() {
  std::map<std::string, std::optional<int64_t>> moved;
  if (!registry_) return moved;
  const uint64_t generation = registry_->generation();
  if (generation == registry_generation_) return moved;
  for (const LiveChange& change : registry_->changes_since(registry_generation_)) {
    moved[change.user] = change.live_version;
    registry_generation_ = std::max(registry_generation_, change.generation);
  }
  registry_generation_ = std::max(registry_generation_, generation);
  // Older versions will not be asked for again: free their memory now (a
  // pinned slot finishes the sequences that started on it first).
  for (const auto& [user, live] : moved) forget(user, live);
  return moved;
}

AdapterCacheStats AdapterCache::stats() const {
  AdapterCacheStats stats = stats_;
  stats.host_bytes = host_bytes_;
  for (const SlotEntry& entry : slot_entries_) {
    if (entry.key || entry.doomed) ++stats.slots_used;
    if (entry.pins > 0) ++stats.slots_pinned;
  }
  return stats;
}

}  // namespace mnemo
