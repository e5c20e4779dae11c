// The key/value cache of one sequence: per layer, keys and values of every
// token seen so far, so that decode computes attention for the new token only.
//
// Two kinds of storage. A contiguous cache owns its tensors and grows by
// doubling (generate(), the trainer, the evaluation). A paged cache keeps its
// tokens in fixed-size blocks of a shared KvBlockPool (the serving engine): a
// pool of N blocks is all the KV memory there is, so memory, not the longest
// request, bounds a batch, and a finished sequence's blocks serve the next one
// with no fragmentation. Attention today reads a paged sequence's history
// gathered into one tensor per layer (a copy as large as what attention reads
// anyway); a paged-attention kernel that reads the blocks in place drops in
// behind the same append().

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace mnemo {

struct ModelConfig;

// Fixed-size blocks of KV memory shared by the sequences of a server. Per
// layer: keys and values [num_blocks · block_tokens, n_kv_heads, head_dim].
// Thread safety: none (the engine's step thread owns it).
class KvBlockPool {
 public:
  // REQUIRES: num_blocks ≥ 1, block_tokens ≥ 1.
  KvBlockPool(const ModelConfig& config, int64_t num_blocks, int64_t block_tokens, at::ScalarType dtype,
              at::Device device);
  // Bytes one block takes over all layers, keys and values.
  static int64_t block_bytes(const ModelConfig& config, int64_t block_tokens, at::ScalarType dtype);

  int64_t num_blocks() const { return num_blocks_; }
  int64_t block_tokens() const { return block_tokens_; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t blocks_for(int64_t n_tokens) const { return (n_tokens + block_tokens_ - 1) / block_tokens_; }

  // Takes `n` free blocks, or none and returns false when fewer are free.
  bool allocate(int64_t n, std::vector<int32_t>& blocks);
  // Returns blocks to the pool. REQUIRES: each was allocated and not yet released.
  void release(const std::vector<int32_t>& blocks);

  int64_t num_layers() const { return static_cast<int64_t>(keys_.size()); }
  at::Tensor& keys(int64_t layer) { return keys_[layer]; }
  at::Tensor& values(int64_t layer) { return values_[layer]; }

 private:
  int64_t num_blocks_;
  int64_t block_tokens_;
  std::vector<at::Tensor> keys_, values_;
  std::vector<int32_t> free_;      // a stack: the most recently freed block is reused first
  std::vector<bool> allocated_;
};

class SequenceCache {
 public:
  SequenceCache(SequenceCache&& other) noexcept;
  SequenceCache& operator=(SequenceCache&& other) noexcept;

  // Reserves room for `capacity_tokens`; it grows by doubling when a sequence
  // outgrows it, so the reserve is a hint, not a limit.
  SequenceCache(const ModelConfig& config, int64_t capacity_tokens, at::ScalarType dtype, at::Device device);
  // A paged cache in `pool`, holding no blocks yet. REQUIRES: the pool
  // outlives the cache; the cache returns its blocks when destroyed.
  explicit SequenceCache(KvBlockPool& pool);
  ~SequenceCache();

  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }

  // Appends keys/values [n_kv_heads, n_new, head_dim] for `layer` at positions
  // [length, length + n_new) and returns views of the whole history
  // [n_kv_heads, length + n_new, head_dim]. The length advances only through
  // commit(), once every layer has appended the same tokens.
  std::pair<at::Tensor, at::Tensor> append(int64_t layer, const at::Tensor& keys, const at::Tensor& values);
  void commit(int64_t n_new) { length_ += n_new; }
  // Forgets everything past `length` (for reuse of a prompt prefix).
  void truncate(int64_t length);

  // Paged caches only. Takes blocks from the pool so that `n_tokens` in all
  // fit; false (and nothing taken) when the pool has too few free blocks.
  // append() of tokens beyond the capacity of a paged cache is an error.
  bool reserve(int64_t n_tokens);
  // Empties the cache (length 0); a paged one returns every block to its
  // pool. (truncate() keeps a paged cache's blocks: they are reused.)
  void release();
  bool paged() const { return pool_ != nullptr; }
  KvBlockPool* pool() const { return pool_; }
  // Paged caches: the pool row of every position up to the capacity.
  const at::Tensor& rows() const { return rows_; }
  int64_t blocks_held() const { return static_cast<int64_t>(blocks_.size()); }
  // A deep copy of the first length() tokens with room for `capacity_tokens`
  // (at least length()): a shared prompt prefix computed once, then continued
  // by many sequences that never write into each other's memory.
  // Contiguous caches only.
  SequenceCache clone(int64_t capacity_tokens) const;

 private:
  SequenceCache() = default;
  void grow(int64_t needed);
  std::pair<at::Tensor, at::Tensor> append_paged(int64_t layer, const at::Tensor& keys, const at::Tensor& values);
  std::vector<at::Tensor> keys_, values_;  // contiguous: per layer [n_kv_heads, capacity, head_dim]
  int64_t length_ = 0;
  int64_t capacity_ = 0;
  // Paged: the pool, the blocks in order, and the pool row of every token
  // position up to the capacity (int64 on the pool's device, for index ops).
  KvBlockPool* pool_ = nullptr;
  std::vector<int32_t> blocks_;
  at::Tensor rows_;
};

// A batch whose caches are all paged in one pool, as one layer of attention
// sees it: the pool rows of every sequence's new tokens, and of its whole
// history (new tokens included), each concatenated in batch order. A layer
// then writes and gathers every sequence with one op each, where appending
// cache by cache costs four ops per sequence per layer (at 32 sequences,
// 18% of a decode step; bench/kv_cache).
struct PagedBatch {
  KvBlockPool* pool = nullptr;
  at::Tensor new_rows;                   // int64 [sum of new tokens]
  at::Tensor history_rows;               // int64 [sum of histories]
  std::vector<int64_t> history_lengths;  // per sequence: its past plus its new tokens
};

// None unless every cache is paged in one pool. Throws mnemo::Error when a
// paged cache has no room for its new tokens (reserve first).
std::optional<PagedBatch> paged_batch(const std::vector<SequenceCache*>& caches, const std::vector<int64_t>& n_new);

}  // namespace mnemo
