// The key/value cache of one sequence: per layer, keys and values of every
// token seen so far, so that decode computes attention for the new token only.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace mnemo {

struct ModelConfig;

class SequenceCache {
 public:
  SequenceCache(SequenceCache&&) = default;
  SequenceCache& operator=(SequenceCache&&) = default;

  // Reserves room for `capacity_tokens`; it grows by doubling when a sequence
  // outgrows it, so the reserve is a hint, not a limit.
  SequenceCache(const ModelConfig& config, int64_t capacity_tokens, at::ScalarType dtype, at::Device device);

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
  // A deep copy of the first length() tokens with room for `capacity_tokens`
  // (at least length()): a shared prompt prefix computed once, then continued
  // by many sequences that never write into each other's memory.
  SequenceCache clone(int64_t capacity_tokens) const;

 private:
  SequenceCache() = default;
  void grow(int64_t needed);
  std::vector<at::Tensor> keys_, values_;  // per layer [n_kv_heads, capacity, head_dim]
  int64_t length_ = 0;
  int64_t capacity_ = 0;
};

}  // namespace mnemo
