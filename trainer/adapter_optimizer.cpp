#include "trainer/adapter_optimizer.h"

#include "adapters/adapter_slots.h"
#include "model/error.h"
#include "model/kv_cache.h"
#include "model/transformer.h"

#include <ATen/ATen.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <limits>
#include <numbers>

namespace mnemo {

struct AdapterOptimizer::State {
  const Transformer* model;
  AdapterSlots* slots;
  OptimizerConfig config;
  std::vector<at::Tensor> parameters;  // every A and B stack
  std::unique_ptr<torch::optim::AdamW> adamw;
  TeacherCache* teacher_cache = nullptr;
  int64_t steps = 0;
};

AdapterOptimizer::AdapterOptimizer(const Transformer& model, AdapterSlots& slots, OptimizerConfig config,
                                   TeacherCache* teacher_cache)
    : state_(std::make_unique<State>()) {
  state_->model = &model;
  state_->teacher_cache = teacher_cache;
  state_->slots = &slots;
  state_->config = config;
  slots.set_requires_grad(true);
  for (int64_t layer = 0; layer < model.config().num_layers; ++layer)
    for (LinearModule module : kAllLinearModules) {
      const at::Tensor& a = slots.a_stack(layer, module);
      if (!a.defined()) continue;
      MNEMO_CHECK(a.scalar_type() == at::kFloat, "adapter training needs float32 slots");
      state_->parameters.push_back(a);
      state_->parameters.push_back(slots.b_stack(layer, module));
    }
  MNEMO_CHECK(!state_->parameters.empty(), "no adapter is loaded in the slots to train");
  torch::optim::AdamWOptions options(config.learning_rate);
  options.betas({config.beta1, config.beta2}).eps(config.epsilon).weight_decay(config.weight_decay);
  state_->adamw = std::make_unique<torch::optim::AdamW>(state_->parameters, options);
}

AdapterOptimizer::~AdapterOptimizer() = default;

int64_t AdapterOptimizer::steps_taken() const { return state_->steps; }

double AdapterOptimizer::learning_rate_at(int64_t step) const {
  const OptimizerConfig& c = state_->config;
  if (step < c.warmup_steps) return c.learning_rate * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  if (c.total_steps <= c.warmup_steps) return c.learning_rate;
  double progress = static_cast<double>(step - c.warmup_steps) / static_cast<double>(c.total_steps - c.warmup_steps);
  progress = std::min(progress, 1.0);
  return c.learning_rate * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

namespace {

// The AdamW state of `parameter`, created (zero moments, step 0) when the
// optimizer has taken no step yet: the same that AdamW::step creates.
torch::optim::AdamWParamState& adamw_state(torch::optim::AdamW& adamw, const at::Tensor& parameter) {
  auto& states = adamw.state();
  auto found = states.find(parameter.unsafeGetTensorImpl());
  if (found == states.end()) {
    auto state = std::make_unique<torch::optim::AdamWParamState>();
    state->step(0);
    state->exp_avg(at::zeros_like(parameter, at::MemoryFormat::Preserve));
    state->exp_avg_sq(at::zeros_like(parameter, at::MemoryFormat::Preserve));
    found = states.emplace(parameter.unsafeGetTensorImpl(), std::move(state)).first;
  }
  return static_cast<torch::optim::AdamWParamState&>(*found->second);
}

// The base's final hidden states at `sequence`'s KL positions, from the
// cache (run alone and kept on first use). Throws when the key is the cache's
// for other tokens.
at::Tensor cached_teacher(const Transformer& model, TeacherCache& cache, const TrainingSequence& sequence,
                          const std::vector<int64_t>& kl_positions, size_t index) {
  const size_t key = static_cast<size_t>(sequence.teacher_key);
  if (key >= cache.by_key.size()) cache.by_key.resize(key + 1);
  TeacherCache::Entry& entry = cache.by_key[key];
  if (entry.hidden.defined()) {
    if (entry.tokens != sequence.tokens || entry.kl_weights != sequence.kl_weights)
      fail("training step: sequence {} has teacher key {}, which the cache holds for another sequence", index, key);
    return entry.hidden;
  }
  at::NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(sequence.tokens.size());
  SequenceCache kv(model.config(), n, model.dtype(), model.device());
  ForwardBatch one;
  one.tokens = {sequence.tokens};
  one.caches = {&kv};
  one.final_hidden = true;
  one.logit_rows = kl_positions;
  entry.tokens = sequence.tokens;
  entry.kl_weights = sequence.kl_weights;
  entry.hidden = model.forward(one);
  ++cache.forwards;
  return entry.hidden;
}

}  // namespace

SlotMoments AdapterOptimizer::moments(int32_t slot) const {
  State& s = *state_;
  MNEMO_CHECK(slot >= 0 && slot < s.slots->num_slots(), "moments of slot {} of {}", slot, s.slots->num_slots());
  SlotMoments moments;
  for (const at::Tensor& parameter : s.parameters) {
    torch::optim::AdamWParamState& state = adamw_state(*s.adamw, parameter);
    moments.exp_avg.push_back(state.exp_avg()[slot].detach().to(at::kCPU).clone());
    moments.exp_avg_sq.push_back(state.exp_avg_sq()[slot].detach().to(at::kCPU).clone());
  }
  return moments;
}

void AdapterOptimizer::restore(int64_t steps_taken, const std::vector<SlotMoments>& by_slot) {
  State& s = *state_;
  MNEMO_CHECK(s.steps == 0, "restore after {} steps", s.steps);
  if (steps_taken < 0) fail("training checkpoint: {} steps taken", steps_taken);
  if (static_cast<int64_t>(by_slot.size()) > s.slots->num_slots())
    fail("training checkpoint: moments of {} slots for {} slots", by_slot.size(), s.slots->num_slots());
  at::NoGradGuard no_grad;
  for (size_t p = 0; p < s.parameters.size(); ++p) {
    torch::optim::AdamWParamState& state = adamw_state(*s.adamw, s.parameters[p]);
    state.step(steps_taken);
    for (size_t slot = 0; slot < by_slot.size(); ++slot) {
      const SlotMoments& moments = by_slot[slot];
      if (moments.exp_avg.empty() && moments.exp_avg_sq.empty()) continue;
      if (moments.exp_avg.size() != s.parameters.size() || moments.exp_avg_sq.size() != s.parameters.size())
        fail("training checkpoint: slot {} has moments of {}/{} parameters; the adapters have {}", slot,
             moments.exp_avg.size(), moments.exp_avg_sq.size(), s.parameters.size());
      at::Tensor exp_avg = state.exp_avg()[static_cast<int64_t>(slot)];
      at::Tensor exp_avg_sq = state.exp_avg_sq()[static_cast<int64_t>(slot)];
      if (!moments.exp_avg[p].sizes().equals(exp_avg.sizes()) || !moments.exp_avg_sq[p].sizes().equals(exp_avg.sizes()))
        fail("training checkpoint: slot {} parameter {} has moments of shape [{}], the adapter's is [{}]", slot, p,
             fmt::join(moments.exp_avg[p].sizes(), ", "), fmt::join(exp_avg.sizes(), ", "));
      exp_avg.copy_(moments.exp_avg[p]);
      exp_avg_sq.copy_(moments.exp_avg_sq[p]);
    }
  }
  s.steps = steps_taken;
}

StepResult AdapterOptimizer::step(const std::vector<TrainingSequence>& batch) {
  State& s = *state_;
  const int64_t n_slots = s.slots->num_slots();
  if (batch.empty()) fail("training step: the batch is empty");
  ForwardBatch forward;
  std::vector<std::unique_ptr<SequenceCache>> caches;
  std::vector<int64_t> targets, slot_of_target;
  std::vector<float> weights;
  std::vector<int64_t> rows;  // logit row of each target
  // KL-to-base positions: the teacher runs the same sequences without adapters.
  ForwardBatch teacher;
  teacher.final_hidden = true;
  std::vector<std::unique_ptr<SequenceCache>> teacher_caches;
  std::vector<int64_t> kl_rows, kl_slots;
  std::vector<float> kl_weights;
  // The base's final hidden states at each KL sequence's positions, in batch
  // order: from the teacher cache, or (undefined here) from one batched
  // forward of the sequences it does not keep, batched_rows positions each.
  std::vector<at::Tensor> teacher_pieces;
  std::vector<int64_t> batched_rows;
  int64_t offset = 0, teacher_offset = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    const TrainingSequence& sequence = batch[i];
    const int64_t n = static_cast<int64_t>(sequence.tokens.size());
    if (n < 2) fail("training step: sequence {} has {} tokens; it needs at least 2", i, n);
    if (static_cast<int64_t>(sequence.target_weights.size()) != n - 1)
      fail("training step: sequence {} has {} target weights for {} tokens (needs {})", i,
           sequence.target_weights.size(), n, n - 1);
    if (sequence.slot < 0 || sequence.slot >= n_slots || !s.slots->loaded(sequence.slot))
      fail("training step: sequence {} names slot {}, which holds no adapter", i, sequence.slot);
    if (!sequence.kl_weights.empty()) {
      if (static_cast<int64_t>(sequence.kl_weights.size()) != n - 1)
        fail("training step: sequence {} has {} KL weights for {} tokens (needs {} or none)", i,
             sequence.kl_weights.size(), n, n - 1);
      std::vector<int64_t> kl_positions;
      for (int64_t t = 0; t + 1 < n; ++t)
        if (sequence.kl_weights[t] > 0) {
          kl_positions.push_back(t);
          kl_rows.push_back(offset + t);
          kl_slots.push_back(sequence.slot);
          kl_weights.push_back(sequence.kl_weights[t]);
        }
      if (!kl_positions.empty() && s.teacher_cache && sequence.teacher_key >= 0) {
        teacher_pieces.push_back(cached_teacher(*s.model, *s.teacher_cache, sequence, kl_positions, i));
      } else if (!kl_positions.empty()) {
        teacher_caches.push_back(
            std::make_unique<SequenceCache>(s.model->config(), n, s.model->dtype(), s.model->device()));
        teacher.tokens.push_back(sequence.tokens);
        teacher.caches.push_back(teacher_caches.back().get());
        for (int64_t t : kl_positions) teacher.logit_rows.push_back(teacher_offset + t);
        teacher_pieces.push_back({});  // filled by the batched teacher below
        batched_rows.push_back(static_cast<int64_t>(kl_positions.size()));
        teacher_offset += n;
      }
    }
    caches.push_back(std::make_unique<SequenceCache>(s.model->config(), n, s.model->dtype(), s.model->device()));
    forward.tokens.push_back(sequence.tokens);
    forward.caches.push_back(caches.back().get());
    forward.adapter_slots.push_back(sequence.slot);
    for (int64_t t = 0; t + 1 < n; ++t) {
      // Only weighted targets: a [rows, vocab] log-softmax is the step's largest
      // tensor, and prompts and retention sequences carry no cross-entropy.
      if (sequence.target_weights[t] == 0) continue;
      rows.push_back(offset + t);
      targets.push_back(sequence.tokens[t + 1]);
      weights.push_back(sequence.target_weights[t]);
      slot_of_target.push_back(sequence.slot);
    }
    offset += n;
  }

  // Logits of only the rows that carry a loss or a KL term, each once: the
  // student's rows are the loss rows followed by the KL rows not among them.
  std::vector<int64_t> kl_logit_rows;  // row of each KL target among the student's logits
  {
    std::vector<int64_t> row_of(static_cast<size_t>(offset), -1);
    for (size_t i = 0; i < rows.size(); ++i) row_of[static_cast<size_t>(rows[i])] = static_cast<int64_t>(i);
    forward.logit_rows = rows;
    for (int64_t row : kl_rows) {
      int64_t& at_row = row_of[static_cast<size_t>(row)];
      if (at_row < 0) {
        at_row = static_cast<int64_t>(forward.logit_rows.size());
        forward.logit_rows.push_back(row);
      }
      kl_logit_rows.push_back(at_row);
    }
  }
  if (forward.logit_rows.empty()) fail("training step: no token of the batch carries a loss or a KL weight");
  at::Tensor logits = s.model->forward(forward, s.slots);  // [logit rows, vocab] float32
  const at::Device device = logits.device();
  auto long_tensor = [&](const std::vector<int64_t>& v) { return at::tensor(v, at::kLong).to(device); };
  const int64_t n_loss_rows = static_cast<int64_t>(rows.size());
  at::Tensor log_probs = at::log_softmax(logits.narrow(0, 0, n_loss_rows), -1);
  at::Tensor token_loss = -log_probs.gather(1, long_tensor(targets).unsqueeze(1)).squeeze(1);
  at::Tensor weight = at::tensor(weights, at::kFloat).to(device);
  at::Tensor slot_index = long_tensor(slot_of_target);
  // Per slot: sum of weighted losses over the sum of weights; the loss is the
  // sum over slots, so each user's gradient is its own mean's gradient.
  at::Tensor loss_sum = at::zeros({n_slots}, logits.options()).index_add(0, slot_index, token_loss * weight);
  at::Tensor weight_sum = at::zeros({n_slots}, logits.options()).index_add(0, slot_index, weight);
  at::Tensor present = weight_sum > 0;
  at::Tensor per_slot = at::where(present, loss_sum / weight_sum.clamp_min(1e-12), at::zeros_like(loss_sum));
  at::Tensor kl_per_slot, kl_present;
  if (!kl_rows.empty()) {
    at::Tensor teacher_log_probs;
    {
      at::NoGradGuard no_grad;
      // No LoRA: the frozen base; its rows are the KL rows, in order.
      if (!teacher.tokens.empty()) {
        std::vector<at::Tensor> batched = s.model->forward(teacher).split_with_sizes(batched_rows);
        size_t next = 0;
        for (at::Tensor& piece : teacher_pieces)
          if (!piece.defined()) piece = batched[next++];
      }
      at::Tensor hidden = teacher_pieces.size() == 1 ? teacher_pieces[0] : at::cat(teacher_pieces, 0);
      teacher_log_probs = at::log_softmax(s.model->project_vocab(hidden), -1);
    }
    at::Tensor student_log_probs = at::log_softmax(logits.index_select(0, long_tensor(kl_logit_rows)), -1);
    at::Tensor kl = (teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)).sum(-1);
    at::Tensor w = at::tensor(kl_weights, at::kFloat).to(device);
    at::Tensor kl_slot_index = long_tensor(kl_slots);
    at::Tensor kl_sum = at::zeros({n_slots}, logits.options()).index_add(0, kl_slot_index, kl * w);
    at::Tensor kl_weight_sum = at::zeros({n_slots}, logits.options()).index_add(0, kl_slot_index, w);
    kl_present = kl_weight_sum > 0;
    kl_per_slot = at::where(kl_present, kl_sum / kl_weight_sum.clamp_min(1e-12), at::zeros_like(kl_sum));
    per_slot = per_slot + s.config.kl_weight * kl_per_slot;
  }

  s.adamw->zero_grad();
  per_slot.sum().backward();

  if (s.config.max_grad_norm > 0) {
    at::NoGradGuard no_grad;
    at::Tensor squared = at::zeros({n_slots}, at::kDouble);
    for (const at::Tensor& p : s.parameters)
      if (p.grad().defined()) squared += p.grad().to(at::kDouble).pow(2).flatten(1).sum(1).cpu();
    at::Tensor coefficient = (s.config.max_grad_norm / (squared.sqrt() + 1e-6)).clamp_max(1.0);
    for (const at::Tensor& p : s.parameters)
      if (p.grad().defined()) {
        std::vector<int64_t> shape(static_cast<size_t>(p.dim()), 1);
        shape[0] = n_slots;
        p.grad().mul_(coefficient.to(p.grad().scalar_type()).to(device).view(shape));
      }
  }

  StepResult result;
  result.learning_rate = learning_rate_at(s.steps);
  for (auto& group : s.adamw->param_groups())
    static_cast<torch::optim::AdamWOptions&>(group.options()).lr(result.learning_rate);
  s.adamw->step();
  ++s.steps;

  const double nan = std::numeric_limits<double>::quiet_NaN();
  at::Tensor losses = (loss_sum / weight_sum.clamp_min(1e-12)).detach().cpu(), has = present.cpu();
  for (int64_t slot = 0; slot < n_slots; ++slot)
    result.loss_by_slot.push_back(has[slot].item<bool>() ? losses[slot].item<double>() : nan);
  result.kl_by_slot.assign(static_cast<size_t>(n_slots), nan);
  if (kl_per_slot.defined()) {
    at::Tensor kls = kl_per_slot.detach().cpu(), kl_has = kl_present.cpu();
    for (int64_t slot = 0; slot < n_slots; ++slot)
      if (kl_has[slot].item<bool>()) result.kl_by_slot[static_cast<size_t>(slot)] = kls[slot].item<double>();
  }
  return result;
}

}  // namespace mnemo
