// Adapter slots (see adapter_slots.h): stacked A/B per layer and module, and
// the LoraHook that applies them with the multi-adapter ops.
#include "adapters/adapter_slots.h"

#include "kernels/lora_cpu_per_token.h"

#include "kernels/lora_ops.h"
#include "model/error.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <vector>

namespace mnemo {

AdapterSlots::AdapterSlots(ModelConfig model_config, int64_t num_slots, at::ScalarType dtype, at::Device device,
                           int64_t rank_capacity)
    : model_config_(std::move(model_config)),
      num_slots_(num_slots),
      dtype_(dtype),
      device_(device),
      rank_capacity_(rank_capacity),
      stacks_(model_config_.num_layers),
      transposed_b_(model_config_.num_layers),
      slot_configs_(num_slots) {
  if (num_slots < 1) fail("adapter slots: need at least one slot, got {}", num_slots);
  if (rank_capacity < 0 || rank_capacity > kMaxLoraRank)
    fail("adapter slots: rank capacity {} is outside 0..{}", rank_capacity, kMaxLoraRank);
  for (auto& ranks : ranks_) ranks = at::zeros({num_slots}, at::TensorOptions().dtype(at::kInt).device(device));
  scales_ = at::zeros({num_slots}, at::TensorOptions().dtype(at::kFloat).device(device));
  for (auto& config : slot_configs_) config.rank = 0;
}

void AdapterSlots::ensure_module(LinearModule module) {
  int m = static_cast<int>(module);
  if (stacks_.empty() || stacks_[0][m].A.defined()) return;
  auto [out, in] = module_shape(model_config_, module);
  // Zeros, not empty: the ops never read padding, but an extract() or a
  // gradient norm over the whole stack should not see garbage.
  auto options = at::TensorOptions().dtype(dtype_).device(device_);
  for (auto& layer : stacks_) {
    layer[m].A = at::zeros({num_slots_, rank_capacity_, in}, options).requires_grad_(requires_grad_);
    layer[m].B = at::zeros({num_slots_, out, rank_capacity_}, options).requires_grad_(requires_grad_);
  }
  if (keeps_transposed())
    for (auto& layer : transposed_b_) layer[m] = at::zeros({num_slots_, rank_capacity_, out}, options);
}

bool AdapterSlots::keeps_transposed() const {
  return device_.is_cpu() && (dtype_ == at::kFloat || dtype_ == at::kBFloat16);
}

void AdapterSlots::rebuild_transposed() {
  if (!keeps_transposed()) return;
  at::NoGradGuard no_grad;
  for (size_t layer = 0; layer < stacks_.size(); ++layer)
    for (size_t m = 0; m < stacks_[layer].size(); ++m)
      if (stacks_[layer][m].B.defined())
        transposed_b_[layer][m] = stacks_[layer][m].B.detach().transpose(1, 2).contiguous();
}

void AdapterSlots::grow_rank(int64_t needed) {
  if (needed <= rank_capacity_) return;
  // A multiple of 8 keeps the CUDA kernels on their 16-byte vector path.
  const int64_t rank = std::min(kMaxLoraRank, (needed + 7) / 8 * 8);
  at::NoGradGuard no_grad;
  for (auto& layer : stacks_)
    for (LoraPair& stack : layer) {
      if (!stack.A.defined()) continue;
      at::Tensor a = at::zeros({num_slots_, rank, stack.A.size(2)}, stack.A.options().requires_grad(false));
      at::Tensor b = at::zeros({num_slots_, stack.B.size(1), rank}, stack.B.options().requires_grad(false));
      a.narrow(1, 0, rank_capacity_).copy_(stack.A);
      b.narrow(2, 0, rank_capacity_).copy_(stack.B);
      stack.A = a.requires_grad_(requires_grad_);
      stack.B = b.requires_grad_(requires_grad_);
    }
  rank_capacity_ = rank;
  rebuild_transposed();
}

void AdapterSlots::prepare_all_modules() {
  for (LinearModule module : kAllLinearModules) ensure_module(module);
}

// A float32 adapter into float32 CPU slots by plain copies: a swap from the
// host tier is some 600 small tensor copies (A, B and Bᵀ of every layer and
// module), and at ATen's few microseconds of dispatch each that, not the
// bytes, was its cost. False where this does not apply (the ATen copies do).
bool AdapterSlots::copy_on_cpu(LoraPair& stack, at::Tensor& transposed, int32_t slot, const LoraPair& pair) const {
  if (!device_.is_cpu() || dtype_ != at::kFloat || requires_grad_ || !transposed.defined()) return false;
  if (pair.A.scalar_type() != at::kFloat || pair.B.scalar_type() != at::kFloat || !pair.A.device().is_cpu() ||
      !pair.B.device().is_cpu() || !pair.A.is_contiguous() || !pair.B.is_contiguous())
    return false;
  if (!stack.A.is_contiguous() || !stack.B.is_contiguous() || !transposed.is_contiguous()) return false;
  const int64_t rank = pair.A.size(0), in = pair.A.size(1), out = pair.B.size(0), r_max = stack.A.size(1);
  const float* a = pair.A.const_data_ptr<float>();
  const float* b = pair.B.const_data_ptr<float>();
  float* a_slot = stack.A.mutable_data_ptr<float>() + slot * r_max * in;
  float* b_slot = stack.B.mutable_data_ptr<float>() + slot * out * r_max;
  float* bt_slot = transposed.mutable_data_ptr<float>() + slot * r_max * out;
  std::copy(a, a + rank * in, a_slot);
  for (int64_t o = 0; o < out; ++o) std::copy(b + o * rank, b + (o + 1) * rank, b_slot + o * r_max);
  for (int64_t j = 0; j < rank; ++j)
    for (int64_t o = 0; o < out; ++o) bt_slot[j * out + o] = b[o * rank + j];
  return true;
}

void AdapterSlots::load(int32_t slot, const LoraAdapter& adapter) {
  if (slot < 0 || slot >= num_slots_) fail("adapter slot {} is outside 0..{}", slot, num_slots_ - 1);
  validate_against(adapter, model_config_);
  const LoraConfig& config = adapter.config;
  grow_rank(config.rank);
  for (LinearModule module : config.target_modules) ensure_module(module);
  at::NoGradGuard no_grad;  // the copy into a leaf is not part of any graph
  for (int64_t layer = 0; layer < model_config_.num_layers; ++layer)
    for (LinearModule module : kAllLinearModules) {
      LoraPair& stack = stacks_[layer][static_cast<int>(module)];
      if (!stack.A.defined()) continue;
      if (!config.targets(module)) continue;  // its rank for this module is 0: the rows are never read
      const LoraPair& pair = adapter.pair(layer, module);
      at::Tensor& transposed = transposed_b_[layer][static_cast<int>(module)];
      if (copy_on_cpu(stack, transposed, slot, pair)) continue;
      stack.A[slot].narrow(0, 0, config.rank).copy_(pair.A);
      stack.B[slot].narrow(1, 0, config.rank).copy_(pair.B);
      if (keeps_transposed()) transposed[slot].narrow(0, 0, config.rank).copy_(pair.B.t());
    }
  for (LinearModule module : kAllLinearModules)
    ranks_[static_cast<int>(module)][slot].fill_(config.targets(module) ? config.rank : 0);
  scales_[slot].fill_(config.scale());
  slot_configs_[slot] = config;
}

void AdapterSlots::unload(int32_t slot) {
  if (slot < 0 || slot >= num_slots_) fail("adapter slot {} is outside 0..{}", slot, num_slots_ - 1);
  at::NoGradGuard no_grad;
  for (auto& ranks : ranks_) ranks[slot].fill_(0);
  scales_[slot].fill_(0.0);
  slot_configs_[slot] = LoraConfig{};
  slot_configs_[slot].rank = 0;
}

bool AdapterSlots::loaded(int32_t slot) const { return slot >= 0 && slot < num_slots_ && slot_configs_[slot].rank > 0; }

LoraAdapter AdapterSlots::extract(int32_t slot) const {
  if (!loaded(slot)) fail("adapter slot {} is empty", slot);
  LoraAdapter adapter;
  adapter.config = slot_configs_[slot];
  adapter.layers.resize(model_config_.num_layers);
  const int64_t rank = adapter.config.rank;
  for (int64_t layer = 0; layer < model_config_.num_layers; ++layer)
    for (LinearModule module : adapter.config.target_modules) {
      const LoraPair& stack = stacks_[layer][static_cast<int>(module)];
      LoraPair& pair = adapter.pair(layer, module);
      pair.A = stack.A.detach()[slot].narrow(0, 0, rank).to(at::kCPU, at::kFloat).contiguous().clone();
      pair.B = stack.B.detach()[slot].narrow(1, 0, rank).to(at::kCPU, at::kFloat).contiguous().clone();
    }
  return adapter;
}

void AdapterSlots::set_requires_grad(bool requires_grad) {
  if (requires_grad_ && !requires_grad) rebuild_transposed();  // trained B is what serves now
  requires_grad_ = requires_grad;
  for (auto& layer : stacks_)
    for (LoraPair& stack : layer)
      if (stack.A.defined()) {
        stack.A.requires_grad_(requires_grad);
        stack.B.requires_grad_(requires_grad);
      }
}

const at::Tensor& AdapterSlots::a_stack(int64_t layer, LinearModule module) const {
  MNEMO_CHECK(layer >= 0 && layer < model_config_.num_layers, "layer {}", layer);
  return stacks_[layer][static_cast<int>(module)].A;
}

const at::Tensor& AdapterSlots::b_stack(int64_t layer, LinearModule module) const {
  MNEMO_CHECK(layer >= 0 && layer < model_config_.num_layers, "layer {}", layer);
  return stacks_[layer][static_cast<int>(module)].B;
}

namespace {
// Whether a CPU decode batch is better served token by token: when its
// adapted tokens are few per distinct adapter. One adapter shared by many
// tokens is one GEMM at BLAS speed on the grouped path; a few tokens per
// adapter make that path a string of tiny GEMMs whose cost is calls, not
// bytes (bench/results/lora_cpu.json and serve_engine.json measure both).
bool few_tokens_per_adapter(const at::Tensor& token_slots) {
  at::Tensor table = token_slots.contiguous();
  const int32_t* slots = table.const_data_ptr<int32_t>();
  std::vector<int32_t> seen;
  int64_t adapted = 0;
  for (int64_t t = 0; t < table.numel(); ++t) {
    if (slots[t] < 0) continue;
    ++adapted;
    if (std::find(seen.begin(), seen.end(), slots[t]) == seen.end()) seen.push_back(slots[t]);
  }
  return adapted > 0 && adapted <= 4 * static_cast<int64_t>(seen.size());
}
}  // namespace

void AdapterSlots::apply(int64_t layer, LinearModule module, const at::Tensor& x, at::Tensor& y,
                         const LoraRouting& routing) const {
  MNEMO_CHECK(layer >= 0 && layer < model_config_.num_layers, "layer {}", layer);
  const LoraPair& stack = stacks_[layer][static_cast<int>(module)];
  if (!stack.A.defined() || rank_capacity_ == 0) return;  // no loaded adapter targets this module
  const at::Tensor& ranks = ranks_[static_cast<int>(module)];
  // Float32 slots on a bf16 (or fp16) base: training's master weights. The op
  // runs on a copy in the activations' dtype, as under torch.autocast; the
  // copy is differentiable, so the gradients reach the float32 weights.
  const bool cast = stack.A.scalar_type() != x.scalar_type();
  const at::Tensor a = cast ? stack.A.to(x.scalar_type()) : stack.A;
  const at::Tensor b = cast ? stack.B.to(x.scalar_type()) : stack.B;
  if (routing.seg_starts.defined())
    lora_apply_segments(y, x, a, b, ranks, scales_, routing.seg_starts, routing.seg_slots);
  else if (!cast && cpu_decode_path_ == CpuDecodePath::PerToken && keeps_transposed() && !requires_grad_ &&
           !(at::GradMode::is_enabled() && x.requires_grad()) && few_tokens_per_adapter(routing.token_slots))
    // A decode step on CPU: tokens of many adapters, a few each (kernels/lora_cpu_per_token.h).
    lora_apply_per_token_cpu(y, x, stack.A, transposed_b_[layer][static_cast<int>(module)], ranks, scales_,
                             routing.token_slots);
  else
    lora_apply(y, x, a, b, ranks, scales_, routing.token_slots);
}

}  // namespace mnemo
