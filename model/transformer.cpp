#include "model/transformer.h"

#include "kernels/quantized_linear_cpu.h"
#include "kernels/skinny_linear_cpu.h"
#include "model/error.h"
#include "model/kv_cache.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <numbers>

namespace mnemo {
namespace {

// As transformers' LlamaRMSNorm: normalise in float32, cast back, then scale,
// so bf16 results round the same way as the reference.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps) {
  at::Tensor x32 = x.to(at::kFloat);
  at::Tensor normed = x32 * at::rsqrt(x32.pow(2).mean(-1, true) + eps);
  return weight * normed.to(x.scalar_type());
}

at::Tensor rotate_half(const at::Tensor& x) {
  int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// RoPE frequencies as transformers computes them (ROPE_INIT_FUNCTIONS), with
// the "llama3" rescaling of long wavelengths when configured.
at::Tensor rope_frequencies(const ModelConfig& c) {
  at::Tensor inv_freq =
      1.0 / at::pow(c.rope_theta, at::arange(0, c.head_dim, 2, at::kLong).to(at::kFloat) / double(c.head_dim));
  if (!c.rope_scaling.llama3) return inv_freq;
  const RopeScaling& s = c.rope_scaling;
  double low_freq_wavelen = double(s.original_max_position_embeddings) / s.low_freq_factor;
  double high_freq_wavelen = double(s.original_max_position_embeddings) / s.high_freq_factor;
  at::Tensor wavelen = 2 * std::numbers::pi / inv_freq;
  at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv_freq / s.factor, inv_freq);
  at::Tensor smooth = (double(s.original_max_position_embeddings) / wavelen - s.low_freq_factor) /
                      (s.high_freq_factor - s.low_freq_factor);
  at::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
  at::Tensor is_medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
  return at::where(is_medium, smoothed, scaled);
}

// Int8/int4 weights go to their own kernel; a decode step's few rows on the
// CPU to the hand-written small-batch kernel (kernels/skinny_linear_cpu.h:
// MKL is slow at these shapes); the rest to at::linear.
at::Tensor dense(const at::Tensor& x, const at::Tensor& weight, WeightQuant quant, const at::Tensor& bias = {}) {
  if (quant != WeightQuant::kNone) {
    if (at::GradMode::is_enabled())
      fail("the model was loaded with {} weights, which are for inference: training needs float weights",
           weight_quant_name(quant));
    return quantized_linear_cpu(x, weight, quant, bias);
  }
  if (skinny_linear_applies(x, weight)) return skinny_linear_cpu(x, weight, bias);
  return bias.defined() ? at::linear(x, weight, bias) : at::linear(x, weight);
}

}  // namespace

Transformer::Transformer(ModelConfig config, ModelWeights weights)
    : config_(std::move(config)), weights_(std::move(weights)) {
  inv_freq_ = rope_frequencies(config_).to(weights_.embed_tokens.device());
}

// The norms' dtype: the projections' and embedding's is uint8 when quantized.
at::ScalarType Transformer::dtype() const { return weights_.final_norm.scalar_type(); }
at::Device Transformer::device() const { return weights_.embed_tokens.device(); }

at::Tensor Transformer::attention(int64_t layer, const at::Tensor& hidden,
                                  const std::vector<int64_t>& pasts, const ForwardBatch& batch, const at::Tensor& cos,
                                  const at::Tensor& sin, const LoraHook* lora, const LoraRouting& routing,
                                  const PagedBatch* paged) const {
  const LayerWeights& w = weights_.layers[layer];
  const ModelConfig& c = config_;
  auto project = [&](const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, LinearModule m) {
    at::Tensor y = dense(x, weight, weights_.quant, bias);
    if (lora) lora->apply(layer, m, x, y, routing);
    return y;
  };
  const int64_t n_tokens = hidden.size(0);
  at::Tensor q =
      project(hidden, w.q_proj, w.q_bias, LinearModule::Q).view({n_tokens, c.num_attention_heads, c.head_dim});
  at::Tensor k =
      project(hidden, w.k_proj, w.k_bias, LinearModule::K).view({n_tokens, c.num_key_value_heads, c.head_dim});
  at::Tensor v =
      project(hidden, w.v_proj, w.v_bias, LinearModule::V).view({n_tokens, c.num_key_value_heads, c.head_dim});
  if (c.qk_norm) {
    q = rms_norm(q, w.q_norm, c.rms_norm_eps);
    k = rms_norm(k, w.k_norm, c.rms_norm_eps);
  }
  // cos/sin: [T, 1, head_dim], one row per token's absolute position.
  q = q * cos + rotate_half(q) * sin;
  k = k * cos + rotate_half(k) * sin;

  // The batch split into its sequences (they lie in order from offset 0) and
  // their outputs joined by one cat. Under autograd, a narrow per sequence or
  // a copy into a view of one output tensor costs, in the backward, a
  // zero-filled gradient of the whole batch each: quadratic in sequences.
  const double scale = 1.0 / std::sqrt(double(c.head_dim));
  std::vector<at::Tensor> outputs;
  outputs.reserve(batch.tokens.size());
  std::vector<int64_t> lengths;
  for (const auto& tokens : batch.tokens) lengths.push_back(static_cast<int64_t>(tokens.size()));
  std::vector<at::Tensor> q_parts = q.split_with_sizes(lengths), k_parts = k.split_with_sizes(lengths),
                          v_parts = v.split_with_sizes(lengths);
  // Paged caches in one pool: every sequence's new keys and values written,
  // and every history gathered, by one op each (kv_cache.h: PagedBatch).
  std::vector<at::Tensor> paged_keys, paged_values;
  if (paged) {
    at::Tensor& pool_keys = paged->pool->keys(layer);
    at::Tensor& pool_values = paged->pool->values(layer);
    pool_keys.index_copy_(0, paged->new_rows, k);
    pool_values.index_copy_(0, paged->new_rows, v);
    paged_keys = pool_keys.index_select(0, paged->history_rows).split_with_sizes(paged->history_lengths);
    paged_values = pool_values.index_select(0, paged->history_rows).split_with_sizes(paged->history_lengths);
  }
  for (size_t s = 0; s < batch.tokens.size(); ++s) {
    const int64_t n_new = lengths[s];
    const int64_t past = pasts[s];
    auto [keys, values] =
        paged ? std::pair{paged_keys[s].transpose(0, 1), paged_values[s].transpose(0, 1)}
              : batch.caches[s]->append(layer, k_parts[s].transpose(0, 1), v_parts[s].transpose(0, 1));
    at::Tensor qs = q_parts[s].transpose(0, 1).unsqueeze(0);  // [1, H, n, D]
    const int64_t total = past + n_new;
    const bool windowed = c.sliding_window > 0 && total > c.sliding_window;
    at::Tensor result;
    if ((n_new == 1 || past == 0) && !windowed) {
      // Causal over the new tokens; a single new token sees everything.
      result = at::scaled_dot_product_attention(qs, keys.unsqueeze(0), values.unsqueeze(0), {}, 0.0,
                                                /*is_causal=*/n_new > 1, scale, /*enable_gqa=*/true);
    } else {
      // Chunked prefill over a cached past, or a sliding window: an explicit mask.
      at::Tensor query_pos = at::arange(past, total, at::TensorOptions().dtype(at::kLong).device(q.device()));
      at::Tensor key_pos = at::arange(0, total, query_pos.options());
      at::Tensor allowed = key_pos.unsqueeze(0) <= query_pos.unsqueeze(1);
      if (c.sliding_window > 0)
        allowed = allowed.logical_and(key_pos.unsqueeze(0) > query_pos.unsqueeze(1) - c.sliding_window);
      result = at::scaled_dot_product_attention(qs, keys.unsqueeze(0), values.unsqueeze(0), allowed, 0.0, false, scale,
                                                /*enable_gqa=*/true);
    }
    outputs.push_back(result.squeeze(0).transpose(0, 1));  // [n, H, D]
  }
  at::Tensor out = outputs.size() == 1 ? outputs[0].contiguous() : at::cat(outputs, 0);
  return project(out.view({n_tokens, c.num_attention_heads * c.head_dim}), w.o_proj, {}, LinearModule::O);
}

at::Tensor Transformer::mlp(int64_t layer, const at::Tensor& x, const LoraHook* lora,
                            const LoraRouting& routing) const {
  const LayerWeights& w = weights_.layers[layer];
  auto project = [&](const at::Tensor& input, const at::Tensor& weight, LinearModule m) {
    at::Tensor y = dense(input, weight, weights_.quant);
    if (lora) lora->apply(layer, m, input, y, routing);
    return y;
  };
  at::Tensor gated = at::silu(project(x, w.gate_proj, LinearModule::Gate)) * project(x, w.up_proj, LinearModule::Up);
  return project(gated, w.down_proj, LinearModule::Down);
}

at::Tensor Transformer::forward(const ForwardBatch& batch, const LoraHook* lora) const {
  const ModelConfig& c = config_;
  const size_t n_sequences = batch.tokens.size();
  MNEMO_CHECK(n_sequences > 0, "empty batch");
  MNEMO_CHECK(batch.caches.size() == n_sequences, "{} caches for {} sequences", batch.caches.size(), n_sequences);
  MNEMO_CHECK(batch.adapter_slots.empty() || batch.adapter_slots.size() == n_sequences,
              "{} adapter slots for {} sequences", batch.adapter_slots.size(), n_sequences);

  std::vector<int32_t> ids;
  std::vector<int64_t> positions, offsets, pasts;
  std::vector<int32_t> slots;
  for (size_t s = 0; s < n_sequences; ++s) {
    const auto& tokens = batch.tokens[s];
    if (tokens.empty()) fail("sequence {} of the batch has no new tokens", s);
    offsets.push_back(static_cast<int64_t>(ids.size()));
    pasts.push_back(batch.caches[s]->length());
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i] < 0 || tokens[i] >= c.vocab_size)
        fail("token id {} at position {} of sequence {} is outside the vocabulary (size {})", tokens[i], i, s,
             c.vocab_size);
      ids.push_back(tokens[i]);
      positions.push_back(pasts.back() + static_cast<int64_t>(i));
      slots.push_back(batch.adapter_slots.empty() ? -1 : batch.adapter_slots[s]);
    }
  }
  const at::Device device = this->device();
  auto on_device = [&](auto& vec, at::ScalarType type) {
    // A copy, on CPU too: the tensor must not alias a vector that goes out of scope.
    return at::from_blob(vec.data(), {static_cast<int64_t>(vec.size())}, at::TensorOptions().dtype(type))
        .to(device, type, /*non_blocking=*/false, /*copy=*/true);
  };
  at::Tensor token_ids = on_device(ids, at::kInt);
  at::Tensor position_ids = on_device(positions, at::kLong);
  LoraRouting routing;
  if (lora) {
    routing.token_slots = on_device(slots, at::kInt);
    if (ids.size() > n_sequences) {  // some sequence prefills: one segment per sequence
      std::vector<int32_t> seg_starts(offsets.begin(), offsets.end());
      seg_starts.push_back(static_cast<int32_t>(ids.size()));
      std::vector<int32_t> seg_slots(n_sequences, -1);
      if (!batch.adapter_slots.empty()) seg_slots = batch.adapter_slots;
      routing.seg_starts = on_device(seg_starts, at::kInt);
      routing.seg_slots = on_device(seg_slots, at::kInt);
    }
  }

  // RoPE angles in float32 as transformers does, cast to the model dtype.
  at::Tensor angles = position_ids.to(at::kFloat).unsqueeze(1) * inv_freq_.unsqueeze(0);
  at::Tensor embedded = at::cat({angles, angles}, -1);
  at::Tensor cos = embedded.cos().to(dtype()).unsqueeze(1);
  at::Tensor sin = embedded.sin().to(dtype()).unsqueeze(1);

  // The serving engine's paged caches, outside autograd: one write and one
  // gather per layer for the whole batch.
  std::optional<PagedBatch> paged;
  if (!at::GradMode::is_enabled()) {
    std::vector<int64_t> n_new;
    for (const auto& tokens : batch.tokens) n_new.push_back(static_cast<int64_t>(tokens.size()));
    paged = paged_batch(batch.caches, n_new);
  }
  at::Tensor hidden =
      weights_.quant == WeightQuant::kNone
          ? at::embedding(weights_.embed_tokens, token_ids.to(at::kLong))
          : dequantize_weight_rows(weights_.embed_tokens, weights_.embedding_quant, c.hidden_size, token_ids);
  for (int64_t layer = 0; layer < c.num_layers; ++layer) {
    const LayerWeights& w = weights_.layers[layer];
    hidden = hidden + attention(layer, rms_norm(hidden, w.input_norm, c.rms_norm_eps), pasts, batch, cos, sin,
                                lora, routing, paged ? &*paged : nullptr);
    hidden = hidden + mlp(layer, rms_norm(hidden, w.post_attention_norm, c.rms_norm_eps), lora, routing);
  }
  for (size_t s = 0; s < n_sequences; ++s) batch.caches[s]->commit(static_cast<int64_t>(batch.tokens[s].size()));

  if (!batch.logit_rows.empty()) {
    const int64_t n_tokens = static_cast<int64_t>(ids.size());
    for (size_t i = 0; i < batch.logit_rows.size(); ++i)
      if (batch.logit_rows[i] < 0 || batch.logit_rows[i] >= n_tokens)
        fail("logit row {} (entry {}) is outside the batch's {} new tokens", batch.logit_rows[i], i, n_tokens);
    std::vector<int64_t> rows = batch.logit_rows;
    hidden = hidden.index_select(0, on_device(rows, at::kLong));
  } else if (!batch.all_logits) {
    std::vector<int64_t> last;
    for (size_t s = 0; s < n_sequences; ++s)
      last.push_back(offsets[s] + static_cast<int64_t>(batch.tokens[s].size()) - 1);
    hidden = hidden.index_select(0, on_device(last, at::kLong));
  }
  hidden = rms_norm(hidden, weights_.final_norm, c.rms_norm_eps);
  return batch.final_hidden ? hidden : project_vocab(hidden);
}

at::Tensor Transformer::project_vocab(const at::Tensor& final_hidden) const {
  return dense(final_hidden, weights_.lm_head, weights_.embedding_quant).to(at::kFloat);
}

}  // namespace mnemo
