// The grouped CPU reference of the multi-adapter LoRA ops (lora_ops.h).
//
// Why grouped: a per-token loop does T matrix-vector products that each stream
// the adapter's whole A (r×in) or B (out×r) from memory; grouping the tokens of
// one slot turns them into one GEMM that reads the adapter once and runs at
// BLAS speed. The cost is one gather of the group's rows (index_select) and one
// scatter (index_copy / index_add_), both linear in the activations.
//
// Everything here is built of differentiable ATen ops (index_select, matmul,
// narrow, constant_pad_nd, cat, index_copy, index_add_, add_), so autograd
// reaches x, A_stack, B_stack, v and y without a custom backward. The same code
// runs on CUDA tensors (the dispatcher's training path); only the slot, rank
// and scale tables are read to the host.
#include "kernels/lora_ops.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <string>
#include <vector>

namespace mnemo {
namespace lora_detail {

// Shared with lora_dispatch.cpp (declared there too): checks that cannot be
// turned off, with messages that name the tensor.
void check_shrink_args(const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks);
void check_expand_args(const at::Tensor& y, const at::Tensor& v, const at::Tensor& B_stack, const at::Tensor& ranks,
                       const at::Tensor& scales);
void check_token_slots(const at::Tensor& token_slots, int64_t n_tokens);
void check_segments(const at::Tensor& seg_starts, const at::Tensor& seg_slots);

constexpr int64_t kMaxRank = 64;

static void check_dtype(const at::Tensor& t, const char* name, at::ScalarType expected) {
  TORCH_CHECK(t.scalar_type() == expected, "lora: ", name, " has dtype ", t.scalar_type(), ", expected ", expected);
}

static void check_same_device(const at::Tensor& t, const char* name, const at::Tensor& x) {
  TORCH_CHECK(t.device() == x.device(), "lora: ", name, " is on ", t.device(), " but x is on ", x.device(),
              " (all LoRA tensors, including ranks/scales/slots, live on one device)");
}

void check_shrink_args(const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks) {
  TORCH_CHECK(x.defined() && A_stack.defined() && ranks.defined(), "lora shrink: undefined tensor");
  TORCH_CHECK(x.dim() == 2, "lora shrink: x must be [T, in], got ", x.sizes());
  TORCH_CHECK(A_stack.dim() == 3, "lora shrink: A_stack must be [S, r_max, in], got ", A_stack.sizes());
  TORCH_CHECK(A_stack.size(2) == x.size(1), "lora shrink: A_stack ", A_stack.sizes(), " does not match x ", x.sizes(),
              " (in)");
  TORCH_CHECK(A_stack.size(1) <= kMaxRank, "lora shrink: r_max ", A_stack.size(1), " exceeds ", kMaxRank);
  auto dt = x.scalar_type();
  TORCH_CHECK(dt == at::kFloat || dt == at::kBFloat16 || dt == at::kHalf,
              "lora shrink: x dtype must be float32, bfloat16 or float16, got ", dt);
  check_dtype(A_stack, "A_stack", dt);
  check_dtype(ranks, "ranks", at::kInt);
  TORCH_CHECK(ranks.dim() == 1 && ranks.size(0) == A_stack.size(0), "lora shrink: ranks must be [S=",
              A_stack.size(0), "], got ", ranks.sizes());
  check_same_device(A_stack, "A_stack", x);
  check_same_device(ranks, "ranks", x);
}

void check_expand_args(const at::Tensor& y, const at::Tensor& v, const at::Tensor& B_stack, const at::Tensor& ranks,
                       const at::Tensor& scales) {
  TORCH_CHECK(y.defined() && v.defined() && B_stack.defined() && ranks.defined() && scales.defined(),
              "lora expand: undefined tensor");
  TORCH_CHECK(y.dim() == 2, "lora expand: y must be [T, out], got ", y.sizes());
  TORCH_CHECK(v.dim() == 2 && v.size(0) == y.size(0), "lora expand: v must be [T=", y.size(0), ", r_max], got ",
              v.sizes());
  TORCH_CHECK(B_stack.dim() == 3, "lora expand: B_stack must be [S, out, r_max], got ", B_stack.sizes());
  TORCH_CHECK(B_stack.size(1) == y.size(1), "lora expand: B_stack ", B_stack.sizes(), " does not match y ", y.sizes(),
              " (out)");
  TORCH_CHECK(B_stack.size(2) == v.size(1), "lora expand: B_stack ", B_stack.sizes(), " does not match v ", v.sizes(),
              " (r_max)");
  TORCH_CHECK(B_stack.size(2) <= kMaxRank, "lora expand: r_max ", B_stack.size(2), " exceeds ", kMaxRank);
  auto dt = y.scalar_type();
  TORCH_CHECK(dt == at::kFloat || dt == at::kBFloat16 || dt == at::kHalf,
              "lora expand: y dtype must be float32, bfloat16 or float16, got ", dt);
  check_dtype(v, "v", dt);
  check_dtype(B_stack, "B_stack", dt);
  check_dtype(ranks, "ranks", at::kInt);
  check_dtype(scales, "scales", at::kFloat);
  const int64_t S = B_stack.size(0);
  TORCH_CHECK(ranks.dim() == 1 && ranks.size(0) == S, "lora expand: ranks must be [S=", S, "], got ", ranks.sizes());
  TORCH_CHECK(scales.dim() == 1 && scales.size(0) == S, "lora expand: scales must be [S=", S, "], got ",
              scales.sizes());
  check_same_device(v, "v", y);
  check_same_device(B_stack, "B_stack", y);
  check_same_device(ranks, "ranks", y);
  check_same_device(scales, "scales", y);
}

void check_token_slots(const at::Tensor& token_slots, int64_t n_tokens) {
  TORCH_CHECK(token_slots.defined(), "lora: token_slots is undefined");
  check_dtype(token_slots, "token_slots", at::kInt);
  TORCH_CHECK(token_slots.dim() == 1 && token_slots.size(0) == n_tokens, "lora: token_slots must be [T=", n_tokens,
              "], got ", token_slots.sizes());
}

void check_segments(const at::Tensor& seg_starts, const at::Tensor& seg_slots) {
  TORCH_CHECK(seg_starts.defined() && seg_slots.defined(), "lora: seg_starts/seg_slots undefined");
  check_dtype(seg_starts, "seg_starts", at::kInt);
  check_dtype(seg_slots, "seg_slots", at::kInt);
  TORCH_CHECK(seg_slots.dim() == 1, "lora: seg_slots must be [N], got ", seg_slots.sizes());
  TORCH_CHECK(seg_starts.dim() == 1 && seg_starts.size(0) == seg_slots.size(0) + 1,
              "lora: seg_starts must be [N+1=", seg_slots.size(0) + 1, "], got ", seg_starts.sizes());
}

}  // namespace lora_detail

namespace {

using namespace lora_detail;

// The small tables, read to the host once per call.
std::vector<int32_t> to_host_ints(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU).contiguous();
  const int32_t* p = c.data_ptr<int32_t>();
  return std::vector<int32_t>(p, p + c.numel());
}

std::vector<float> to_host_floats(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU).contiguous();
  const float* p = c.data_ptr<float>();
  return std::vector<float>(p, p + c.numel());
}

std::vector<int32_t> checked_ranks(const at::Tensor& ranks, int64_t r_max) {
  std::vector<int32_t> r = to_host_ints(ranks);
  for (size_t s = 0; s < r.size(); ++s)
    TORCH_CHECK(r[s] >= 0 && r[s] <= r_max, "lora: ranks[", s, "] = ", r[s], " is outside [0, r_max=", r_max, "]");
  return r;
}

// Tokens grouped by slot (a stable counting sort, so a group keeps token order
// and a batch that is all one slot is the identity permutation).
struct SlotGroups {
  struct Group {
    int32_t slot;
    int64_t offset;  // into `order`
    int64_t count;
  };
  std::vector<Group> groups;  // slots with ≥ 1 token, ascending slot
  at::Tensor order;           // int64 [n_active] token indices, on the tensors' device
  int64_t n_tokens = 0;
  int64_t n_active = 0;

  // The token indices of group g (a view of `order`).
  at::Tensor indices(const Group& g) const { return order.narrow(0, g.offset, g.count); }
  // Whether group g is every token in order (no gather/scatter needed).
  bool is_all(const Group& g) const { return g.count == n_tokens; }
};

SlotGroups group_tokens(const at::Tensor& token_slots, int64_t n_slots, const at::Device& device) {
  std::vector<int32_t> slots = to_host_ints(token_slots);
  SlotGroups out;
  out.n_tokens = static_cast<int64_t>(slots.size());
  std::vector<int64_t> counts(static_cast<size_t>(n_slots) + 1, 0);
  for (size_t t = 0; t < slots.size(); ++t) {
    int32_t s = slots[t];
    TORCH_CHECK(s >= -1 && s < n_slots, "lora: token_slots[", t, "] = ", s, " is outside [-1, S=", n_slots, ")");
    if (s >= 0) ++counts[static_cast<size_t>(s)];
  }
  std::vector<int64_t> next(static_cast<size_t>(n_slots), 0);
  int64_t offset = 0;
  for (int64_t s = 0; s < n_slots; ++s) {
    if (counts[s] == 0) continue;
    out.groups.push_back({static_cast<int32_t>(s), offset, counts[s]});
    next[s] = offset;
    offset += counts[s];
  }
  out.n_active = offset;
  at::Tensor order = at::empty({offset}, at::TensorOptions().dtype(at::kLong));
  int64_t* o = order.data_ptr<int64_t>();
  for (size_t t = 0; t < slots.size(); ++t)
    if (slots[t] >= 0) o[next[slots[t]]++] = static_cast<int64_t>(t);
  out.order = order.to(device);
  return out;
}

struct Segment {
  int64_t start, count;
  int32_t slot;
};

std::vector<Segment> read_segments(const at::Tensor& seg_starts, const at::Tensor& seg_slots, int64_t n_tokens,
                                   int64_t n_slots) {
  std::vector<int32_t> starts = to_host_ints(seg_starts);
  std::vector<int32_t> slots = to_host_ints(seg_slots);
  std::vector<Segment> out;
  for (size_t i = 0; i < slots.size(); ++i) {
    TORCH_CHECK(starts[i] >= 0 && starts[i] <= starts[i + 1] && starts[i + 1] <= n_tokens,
                "lora: segment ", i, " [", starts[i], ", ", starts[i + 1], ") is not a nondecreasing range in [0, T=",
                n_tokens, "]");
    TORCH_CHECK(slots[i] >= -1 && slots[i] < n_slots, "lora: seg_slots[", i, "] = ", slots[i],
                " is outside [-1, S=", n_slots, ")");
    out.push_back({starts[i], starts[i + 1] - starts[i], slots[i]});
  }
  return out;
}

// [0, T) cut into pieces in token order: the segments (empty ones dropped) and
// the gaps between them (slot -1), neighbours of one slot merged (a training
// batch holds each user's sequences side by side). Autograd-friendly: one
// split_with_sizes over these sizes has a backward of one cat, where a narrow
// per segment costs a zero-filled copy of the whole input's gradient each
// (quadratic in the number of segments; it made a batch of four users train
// slower per user than one user alone).
struct Pieces {
  std::vector<int64_t> sizes;
  std::vector<int32_t> slots;
};
Pieces pieces_of(const std::vector<Segment>& segments, int64_t n_tokens) {
  Pieces p;
  int64_t covered = 0;
  auto add = [&](int64_t count, int32_t slot) {
    if (count <= 0) return;
    if (!p.slots.empty() && p.slots.back() == slot) {  // adjacent segments of one slot: one GEMM
      p.sizes.back() += count;
    } else {
      p.sizes.push_back(count);
      p.slots.push_back(slot);
    }
  };
  for (const Segment& s : segments) {
    if (s.count == 0) continue;
    add(s.start - covered, -1);
    add(s.count, s.slot);
    covered = s.start + s.count;
  }
  add(n_tokens - covered, -1);
  return p;
}

// a · bᵀ. On CPU, bf16/fp16 GEMMs run in fp32: most CPUs have no native
// bf16 GEMM and LibTorch's fallback is several times slower than converting
// the operands (the adapter slice is r×in, small beside the GEMM); it also
// gives the kernels' numerics, fp32 accumulation with one rounding at the end.
// `.to()` is differentiable, so autograd is unchanged.
at::Tensor matmul_t(const at::Tensor& a, const at::Tensor& b) {
  if (a.is_cpu() && a.scalar_type() != at::kFloat)
    return at::matmul(a.to(at::kFloat), b.to(at::kFloat).t()).to(a.scalar_type());
  return at::matmul(a, b.t());
}

// The [r_max, in] / [out, r_max] matrix of each slot of a stack. Under
// autograd, one unbind per op: its backward is one stack of the slots'
// gradients, where a select per use has a backward that zero-fills a gradient
// of the whole stack each time (S uses × S slots). Outside autograd a select
// per use: many serving slots are cheaper not to unbind on every op.
class SlotMatrices {
 public:
  explicit SlotMatrices(const at::Tensor& stack) : stack_(stack) {
    if (at::GradMode::is_enabled() && stack.requires_grad()) unbound_ = stack.unbind(0);
  }
  at::Tensor operator[](int64_t slot) const {
    return unbound_.empty() ? stack_.select(0, slot) : unbound_[static_cast<size_t>(slot)];
  }

 private:
  const at::Tensor& stack_;
  std::vector<at::Tensor> unbound_;
};

// x_rows [n, in] · A[:rank, :]ᵀ (A one slot's [r_max, in]), zero-padded to [n, r_max].
at::Tensor shrink_rows(const at::Tensor& x_rows, const at::Tensor& A, int64_t rank) {
  const int64_t r_max = A.size(0);
  if (rank == 0) return at::zeros({x_rows.size(0), r_max}, x_rows.options());
  at::Tensor v = matmul_t(x_rows, A.narrow(0, 0, rank));
  if (rank < r_max) v = at::constant_pad_nd(v, {0, r_max - rank}, 0);
  return v;
}

// v_rows [n, r_max] → v_rows[:, :rank] · B[:, :rank]ᵀ  ([n, out], unscaled; B one slot's [out, r_max]).
at::Tensor expand_rows(const at::Tensor& v_rows, const at::Tensor& B, int64_t rank) {
  return matmul_t(v_rows.narrow(1, 0, rank), B.narrow(1, 0, rank));
}

}  // namespace

at::Tensor lora_shrink_cpu(const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks,
                           const at::Tensor& token_slots) {
  check_shrink_args(x, A_stack, ranks);
  check_token_slots(token_slots, x.size(0));
  check_same_device(token_slots, "token_slots", x);
  const int64_t T = x.size(0), r_max = A_stack.size(1);
  std::vector<int32_t> rank = checked_ranks(ranks, r_max);
  SlotGroups grouped = group_tokens(token_slots, A_stack.size(0), x.device());
  const SlotMatrices A(A_stack);

  if (grouped.groups.size() == 1 && grouped.is_all(grouped.groups[0])) {
    const auto& g = grouped.groups[0];
    return shrink_rows(x, A[g.slot], rank[g.slot]);
  }
  at::Tensor v = at::zeros({T, r_max}, x.options());
  if (grouped.n_active == 0) return v;
  std::vector<at::Tensor> pieces;
  pieces.reserve(grouped.groups.size());
  for (const auto& g : grouped.groups)
    pieces.push_back(shrink_rows(x.index_select(0, grouped.indices(g)), A[g.slot], rank[g.slot]));
  // One scatter of all groups; out-of-place index_copy so autograd sees a plain
  // function of the pieces.
  return v.index_copy(0, grouped.order, at::cat(pieces, 0));
}

void lora_shrink_out_cpu(at::Tensor& v, const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks,
                         const at::Tensor& token_slots) {
  at::Tensor result = lora_shrink_cpu(x, A_stack, ranks, token_slots);
  TORCH_CHECK(v.sizes() == result.sizes() && v.scalar_type() == result.scalar_type(), "lora shrink: v must be ",
              result.sizes(), " ", result.scalar_type(), ", got ", v.sizes(), " ", v.scalar_type());
  v.copy_(result);
}

void lora_expand_cpu(at::Tensor& y, const at::Tensor& v, const at::Tensor& B_stack, const at::Tensor& ranks,
                     const at::Tensor& scales, const at::Tensor& token_slots) {
  check_expand_args(y, v, B_stack, ranks, scales);
  check_token_slots(token_slots, y.size(0));
  check_same_device(token_slots, "token_slots", y);
  std::vector<int32_t> rank = checked_ranks(ranks, B_stack.size(2));
  std::vector<float> scale = to_host_floats(scales);
  SlotGroups grouped = group_tokens(token_slots, B_stack.size(0), y.device());
  const SlotMatrices B(B_stack);
  for (const auto& g : grouped.groups) {
    const int64_t r = rank[g.slot];
    if (r == 0) continue;
    if (grouped.is_all(g)) {
      y.add_(expand_rows(v, B[g.slot], r), scale[g.slot]);
    } else {
      at::Tensor idx = grouped.indices(g);
      // The scale rides on index_add_'s alpha: no extra pass over [n, out].
      y.index_add_(0, idx, expand_rows(v.index_select(0, idx), B[g.slot], r), scale[g.slot]);
    }
  }
}

at::Tensor lora_shrink_segments_cpu(const at::Tensor& x, const at::Tensor& A_stack, const at::Tensor& ranks,
                                    const at::Tensor& seg_starts, const at::Tensor& seg_slots) {
  check_shrink_args(x, A_stack, ranks);
  check_segments(seg_starts, seg_slots);
  check_same_device(seg_starts, "seg_starts", x);
  check_same_device(seg_slots, "seg_slots", x);
  const int64_t T = x.size(0), r_max = A_stack.size(1);
  std::vector<int32_t> rank = checked_ranks(ranks, r_max);
  std::vector<Segment> segments = read_segments(seg_starts, seg_slots, T, A_stack.size(0));

  // Contiguous pieces in token order (zero rows for gaps and base-model
  // segments), joined by one cat: segments need no gather.
  Pieces p = pieces_of(segments, T);
  if (p.sizes.empty()) return at::zeros({T, r_max}, x.options());
  const SlotMatrices A(A_stack);
  std::vector<at::Tensor> rows = x.split_with_sizes(p.sizes), pieces;
  for (size_t i = 0; i < rows.size(); ++i)
    pieces.push_back(p.slots[i] < 0 ? at::zeros({p.sizes[i], r_max}, x.options())
                                    : shrink_rows(rows[i], A[p.slots[i]], rank[p.slots[i]]));
  return pieces.size() == 1 ? pieces[0] : at::cat(pieces, 0);
}

void lora_shrink_segments_out_cpu(at::Tensor& v, const at::Tensor& x, const at::Tensor& A_stack,
                                  const at::Tensor& ranks, const at::Tensor& seg_starts,
                                  const at::Tensor& seg_slots) {
  at::Tensor result = lora_shrink_segments_cpu(x, A_stack, ranks, seg_starts, seg_slots);
  TORCH_CHECK(v.sizes() == result.sizes() && v.scalar_type() == result.scalar_type(), "lora shrink: v must be ",
              result.sizes(), " ", result.scalar_type(), ", got ", v.sizes(), " ", v.scalar_type());
  v.copy_(result);
}

void lora_expand_segments_cpu(at::Tensor& y, const at::Tensor& v, const at::Tensor& B_stack,
                              const at::Tensor& ranks, const at::Tensor& scales, const at::Tensor& seg_starts,
                              const at::Tensor& seg_slots) {
  check_expand_args(y, v, B_stack, ranks, scales);
  check_segments(seg_starts, seg_slots);
  check_same_device(seg_starts, "seg_starts", y);
  check_same_device(seg_slots, "seg_slots", y);
  std::vector<int32_t> rank = checked_ranks(ranks, B_stack.size(2));
  std::vector<float> scale = to_host_floats(scales);
  std::vector<Segment> segments = read_segments(seg_starts, seg_slots, y.size(0), B_stack.size(0));
  const bool recorded = at::GradMode::is_enabled() && (v.requires_grad() || B_stack.requires_grad());
  if (!recorded) {  // inference: add each segment's rows in place
    for (const Segment& s : segments) {
      if (s.slot < 0 || s.count == 0 || rank[s.slot] == 0) continue;
      at::Tensor delta = expand_rows(v.narrow(0, s.start, s.count), B_stack.select(0, s.slot), rank[s.slot]);
      if (s.count == y.size(0))
        y.add_(delta, scale[s.slot]);
      else
        y.narrow(0, s.start, s.count).add_(delta, scale[s.slot]);
    }
    return;
  }
  // Training: one add of the whole delta, joined by a cat, from one split of
  // v. An in-place add per segment into a view of y, like a narrow per
  // segment, costs a copy of a whole gradient per segment in the backward.
  Pieces p = pieces_of(segments, y.size(0));
  if (p.sizes.empty()) return;
  const SlotMatrices B(B_stack);
  std::vector<at::Tensor> rows = v.split_with_sizes(p.sizes), pieces;
  bool any = false;
  for (size_t i = 0; i < rows.size(); ++i) {
    const int32_t slot = p.slots[i];
    if (slot < 0 || rank[slot] == 0) {
      pieces.push_back(at::zeros({p.sizes[i], y.size(1)}, y.options()));
    } else {
      pieces.push_back(expand_rows(rows[i], B[slot], rank[slot]) * scale[slot]);
      any = true;
    }
  }
  if (any) y.add_(pieces.size() == 1 ? pieces[0] : at::cat(pieces, 0));
}

}  // namespace mnemo
