#include "model/kv_cache.h"

#include "model/config.h"
#include "model/error.h"

#include <ATen/ATen.h>

namespace mnemo {

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
  MNEMO_CHECK(layer >= 0 && layer < static_cast<int64_t>(keys_.size()), "layer {} out of range", layer);
  const int64_t n_new = keys.size(1);
  if (length_ + n_new > capacity_) grow(length_ + n_new);
  keys_[layer].narrow(1, length_, n_new).copy_(keys);
  values_[layer].narrow(1, length_, n_new).copy_(values);
  return {keys_[layer].narrow(1, 0, length_ + n_new), values_[layer].narrow(1, 0, length_ + n_new)};
}

SequenceCache SequenceCache::clone(int64_t capacity_tokens) const {
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

}  // namespace mnemo
