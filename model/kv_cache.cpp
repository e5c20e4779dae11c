#include "model/kv_cache.h"

#include "model/config.h"
#include "model/error.h"

#include <ATen/ATen.h>

namespace mnemo {

KvBlockPool::KvBlockPool(const ModelConfig& config, int64_t num_blocks, int64_t block_tokens, at::ScalarType dtype,
                         at::Device device)
    : num_blocks_(num_blocks), block_tokens_(block_tokens), allocated_(static_cast<size_t>(num_blocks), false) {
  MNEMO_CHECK(num_blocks >= 1 && block_tokens >= 1, "a KV pool of {} blocks of {} tokens", num_blocks, block_tokens);
  auto options = at::TensorOptions().dtype(dtype).device(device);
  for (int64_t i = 0; i < config.num_layers; ++i) {
    keys_.push_back(at::zeros({num_blocks * block_tokens, config.num_key_value_heads, config.head_dim}, options));
    values_.push_back(at::zeros({num_blocks * block_tokens, config.num_key_value_heads, config.head_dim}, options));
  }
  free_.reserve(static_cast<size_t>(num_blocks));
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

int64_t KvBlockPool::block_bytes(const ModelConfig& config, int64_t block_tokens, at::ScalarType dtype) {
  return 2 * config.num_layers * block_tokens * config.num_key_value_heads * config.head_dim *
         static_cast<int64_t>(c10::elementSize(dtype));
}

bool KvBlockPool::allocate(int64_t n, std::vector<int32_t>& blocks) {
  if (n > free_blocks()) return false;
  for (int64_t i = 0; i < n; ++i) {
    int32_t block = free_.back();
    free_.pop_back();
    allocated_[static_cast<size_t>(block)] = true;
    blocks.push_back(block);
  }
  return true;
}

void KvBlockPool::release(const std::vector<int32_t>& blocks) {
  for (int32_t block : blocks) {
    MNEMO_CHECK(block >= 0 && block < num_blocks_ && allocated_[static_cast<size_t>(block)],
                "KV block {} released but not allocated", block);
    allocated_[static_cast<size_t>(block)] = false;
    free_.push_back(block);
  }
}

SequenceCache::SequenceCache(KvBlockPool& pool) : pool_(&pool) {}

SequenceCache::~SequenceCache() { release(); }

SequenceCache::SequenceCache(SequenceCache&& other) noexcept
    : keys_(std::move(other.keys_)),
      values_(std::move(other.values_)),
      length_(other.length_),
      capacity_(other.capacity_),
      pool_(std::exchange(other.pool_, nullptr)),
      blocks_(std::move(other.blocks_)),
      rows_(std::move(other.rows_)) {
  other.blocks_.clear();
  other.length_ = other.capacity_ = 0;
}

SequenceCache& SequenceCache::operator=(SequenceCache&& other) noexcept {
  if (this != &other) {
    release();
    keys_ = std::move(other.keys_);
    values_ = std::move(other.values_);
    length_ = std::exchange(other.length_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
    pool_ = std::exchange(other.pool_, nullptr);
    blocks_ = std::move(other.blocks_);
    other.blocks_.clear();
    rows_ = std::move(other.rows_);
  }
  return *this;
}

bool SequenceCache::reserve(int64_t n_tokens) {
  MNEMO_CHECK(pool_, "reserve() on a contiguous cache");
  const int64_t needed = pool_->blocks_for(n_tokens) - blocks_held();
  if (needed <= 0) return true;
  if (!pool_->allocate(needed, blocks_)) return false;
  capacity_ = blocks_held() * pool_->block_tokens();
  std::vector<int64_t> rows(static_cast<size_t>(capacity_));
  for (int64_t p = 0; p < capacity_; ++p)
    rows[static_cast<size_t>(p)] = int64_t{blocks_[static_cast<size_t>(p / pool_->block_tokens())]} *
                                       pool_->block_tokens() + p % pool_->block_tokens();
  rows_ = at::tensor(rows, at::TensorOptions().dtype(at::kLong)).to(pool_->keys(0).device());
  return true;
}

void SequenceCache::release() {
  if (pool_ && !blocks_.empty()) pool_->release(blocks_);
  blocks_.clear();
  length_ = 0;
  if (pool_) {
    rows_ = at::Tensor();
    capacity_ = 0;
  }
}

std::pair<at::Tensor, at::Tensor> SequenceCache::append_paged(int64_t layer, const at::Tensor& keys,
                                                              const at::Tensor& values) {
  const int64_t n_new = keys.size(1);
  MNEMO_CHECK(length_ + n_new <= capacity_, "a paged KV cache of {} tokens appended {} to {}: reserve first",
              capacity_, n_new, length_);
  at::Tensor& pool_keys = pool_->keys(layer);
  at::Tensor& pool_values = pool_->values(layer);
  at::Tensor new_rows = rows_.narrow(0, length_, n_new);
  pool_keys.index_copy_(0, new_rows, keys.transpose(0, 1));
  pool_values.index_copy_(0, new_rows, values.transpose(0, 1));
  at::Tensor history = rows_.narrow(0, 0, length_ + n_new);
  return {pool_keys.index_select(0, history).transpose(0, 1), pool_values.index_select(0, history).transpose(0, 1)};
}

SequenceCache::SequenceCache(const ModelConfig& config, int64_t capacity_tokens, at::ScalarType dtype,
                             at::Device device)
    : capacity_(std::max<int64_t>(capacity_tokens, 1)) {
  auto options = at::TensorOptions().dtype(dtype).device(device);
  for (int64_t i = 0; i < config.num_layers; ++i) {
    keys_.push_back(at::empty({config.num_key_value_heads, capacity_, config.head_dim}, options));
    values_.push_back(at::empty({config.num_key_value_heads, capacity_, config.head_dim}, options));
  }
}

void SequenceCache::grow(int64_t needed) {
  int64_t capacity = capacity_;
  while (capacity < needed) capacity *= 2;
  for (size_t i = 0; i < keys_.size(); ++i) {
    auto grow_one = [&](at::Tensor& t) {
      at::Tensor bigger = at::empty({t.size(0), capacity, t.size(2)}, t.options());
      bigger.narrow(1, 0, length_).copy_(t.narrow(1, 0, length_));
      t = bigger;
    };
    grow_one(keys_[i]);
    grow_one(values_[i]);
  }
  capacity_ = capacity;
}

std::pair<at::Tensor, at::Tensor> SequenceCache::append(int64_t layer, const at::Tensor& keys,
                                                        const at::Tensor& values) {
  if (pool_) {
    MNEMO_CHECK(layer >= 0 && layer < static_cast<int64_t>(pool_->num_layers()), "layer {} out of range", layer);
    return append_paged(layer, keys, values);
  }
  MNEMO_CHECK(layer >= 0 && layer < static_cast<int64_t>(keys_.size()), "layer {} out of range", layer);
  const int64_t n_new = keys.size(1);
  if (length_ + n_new > capacity_) grow(length_ + n_new);
  keys_[layer].narrow(1, length_, n_new).copy_(keys);
  values_[layer].narrow(1, length_, n_new).copy_(values);
  return {keys_[layer].narrow(1, 0, length_ + n_new), values_[layer].narrow(1, 0, length_ + n_new)};
}

SequenceCache SequenceCache::clone(int64_t capacity_tokens) const {
  MNEMO_CHECK(!pool_, "clone() of a paged cache");
  SequenceCache copy;
  copy.capacity_ = std::max<int64_t>({capacity_tokens, length_, 1});
  copy.length_ = length_;
  auto copy_one = [&](const at::Tensor& t) {
    at::Tensor fresh = at::empty({t.size(0), copy.capacity_, t.size(2)}, t.options());
    fresh.narrow(1, 0, length_).copy_(t.narrow(1, 0, length_));
    return fresh;
  };
  for (size_t i = 0; i < keys_.size(); ++i) {
    copy.keys_.push_back(copy_one(keys_[i]));
    copy.values_.push_back(copy_one(values_[i]));
  }
  return copy;
}

void SequenceCache::truncate(int64_t length) {
  MNEMO_CHECK(length >= 0 && length <= length_, "truncate to {} of a cache holding {}", length, length_);
  length_ = length;
}

std::optional<PagedBatch> paged_batch(const std::vector<SequenceCache*>& caches, const std::vector<int64_t>& n_new) {
  if (caches.empty() || !caches[0]->paged()) return std::nullopt;
  PagedBatch batch;
  batch.pool = caches[0]->pool();
  std::vector<at::Tensor> new_parts, history_parts;
  for (size_t s = 0; s < caches.size(); ++s) {
    const SequenceCache& cache = *caches[s];
    if (cache.pool() != batch.pool) return std::nullopt;
    const int64_t total = cache.length() + n_new[s];
    MNEMO_CHECK(total <= cache.capacity(), "a paged KV cache of {} tokens appended {} to {}: reserve first",
                cache.capacity(), n_new[s], cache.length());
    new_parts.push_back(cache.rows().narrow(0, cache.length(), n_new[s]));
    history_parts.push_back(cache.rows().narrow(0, 0, total));
    batch.history_lengths.push_back(total);
  }
  batch.new_rows = at::cat(new_parts);
  batch.history_rows = at::cat(history_parts);
  return batch;
}

}  // namespace mnemo
