// The LoRA CUDA kernels (kernels/lora_cuda.cu, reached through the dispatching
// ops of kernels/lora_ops.h) against the CPU reference: random shapes, bf16 and
// fp16, mixed ranks (rank-0 slots too), slot patterns (all same, all distinct,
// with −1, unsorted), segments, strided, column-major and misaligned inputs,
// non-contiguous stacks and tables, poisoned padding, offsets past 2^31
// elements, and CUDA-graph capture + replay of both forms. Skips itself where
// there is no GPU or no CUDA build.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/lora_ops.h"
#include "support/gpu.h"

#if MNEMO_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace mnemo {
namespace {

#define SKIP_WITHOUT_GPU()                                                                     \
  do {                                                                                         \
    MNEMO_SKIP_UNLESS_GPU(lora_cuda_kernels_available(), "mnemo was built without CUDA kernels"); \
    MNEMO_SKIP_UNLESS_GPU(at::hasCUDA(), "no CUDA device on this machine: LoRA kernel tests skip"); \
  } while (0)

at::Tensor ints(const std::vector<int32_t>& values) {
  return at::tensor(at::ArrayRef<int32_t>(values), at::TensorOptions().dtype(at::kInt)).clone();
}
at::Tensor floats(const std::vector<float>& values) {
  return at::tensor(at::ArrayRef<float>(values), at::TensorOptions().dtype(at::kFloat)).clone();
}

enum class SlotPattern { AllSame, AllDistinct, WithBase, Unsorted };

struct Problem {
  int64_t T = 0, in = 0, out = 0, S = 0, r_max = 0;
  std::vector<int32_t> ranks, slots;
  std::vector<float> scales;
  at::Tensor x, A, B, y0;  // CPU, in the test dtype; A/B padding is NaN
};

Problem make_problem(std::mt19937& rng, at::ScalarType dtype, int64_t T, int64_t in, int64_t out, int64_t S,
                     int64_t r_max, bool mixed_ranks, SlotPattern pattern) {
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  Problem p{T, in, out, S, r_max};
  for (int64_t s = 0; s < S; ++s) {
    p.ranks.push_back(static_cast<int32_t>(mixed_ranks ? uniform(1, r_max) : r_max));
    p.scales.push_back(std::uniform_real_distribution<float>(0.25f, 2.0f)(rng));
  }
  if (mixed_ranks && S >= 3) p.ranks[1] = 0;  // a slot that targets nothing in this layer
  for (int64_t t = 0; t < T; ++t) {
    int32_t slot = 0;
    switch (pattern) {
      case SlotPattern::AllSame: slot = static_cast<int32_t>(S - 1); break;
      case SlotPattern::AllDistinct: slot = static_cast<int32_t>(t % S); break;
      case SlotPattern::WithBase: slot = static_cast<int32_t>(uniform(-1, S - 1)); break;
      case SlotPattern::Unsorted: slot = static_cast<int32_t>(uniform(0, S - 1)); break;
    }
    p.slots.push_back(slot);
  }
  if (pattern == SlotPattern::AllDistinct) std::shuffle(p.slots.begin(), p.slots.end(), rng);
  auto f = at::TensorOptions().dtype(at::kFloat);
  p.x = at::randn({T, in}, f).to(dtype);
  p.A = (at::randn({S, r_max, in}, f) / std::sqrt(static_cast<double>(in))).to(dtype);
  p.B = (at::randn({S, out, r_max}, f) / std::sqrt(static_cast<double>(r_max))).to(dtype);
  p.y0 = at::randn({T, out}, f).to(dtype);
  for (int64_t s = 0; s < S; ++s) {
    if (p.ranks[s] < r_max) {
      p.A.select(0, s).narrow(0, p.ranks[s], r_max - p.ranks[s]).fill_(std::numeric_limits<float>::quiet_NaN());
      p.B.select(0, s).narrow(1, p.ranks[s], r_max - p.ranks[s]).fill_(std::numeric_limits<float>::quiet_NaN());
    }
  }
  return p;
}

// The CPU reference in float32 on the same rounded inputs, with v rounded to
// the test dtype between the steps as the kernels do.
struct Reference {
  at::Tensor v, y;
};
Reference reference(const Problem& p, at::ScalarType dtype) {
  at::Tensor v = lora_shrink_cpu(p.x.to(at::kFloat), p.A.to(at::kFloat), ints(p.ranks), ints(p.slots));
  at::Tensor y = p.y0.to(at::kFloat);
  lora_expand_cpu(y, v.to(dtype).to(at::kFloat), p.B.to(at::kFloat), ints(p.ranks), floats(p.scales), ints(p.slots));
  return {v, y};
}

void expect_close(const at::Tensor& gpu, const at::Tensor& cpu, const std::string& what) {
  at::Tensor a = gpu.cpu().to(at::kFloat), e = cpu.to(at::kFloat);
  ASSERT_EQ(a.sizes(), e.sizes()) << what;
  EXPECT_TRUE(at::isfinite(a).all().item<bool>()) << what << ": non-finite values (padding read?)";
  EXPECT_TRUE(at::allclose(a, e, 2e-2, 2e-2)) << what << ": max error " << (a - e).abs().max().item<float>();
}

struct DeviceProblem {
  at::Tensor x, A, B, y, ranks, scales, slots;
};
DeviceProblem to_device(const Problem& p) {
  auto cuda = at::Device(at::kCUDA);
  return {p.x.to(cuda), p.A.to(cuda), p.B.to(cuda), p.y0.to(cuda), ints(p.ranks).to(cuda),
          floats(p.scales).to(cuda), ints(p.slots).to(cuda)};
}

void check_token_form(const Problem& p, at::ScalarType dtype, const std::string& what) {
  Reference ref = reference(p, dtype);
  DeviceProblem d = to_device(p);
  at::Tensor v = lora_shrink(d.x, d.A, d.ranks, d.slots);
  expect_close(v, ref.v, what + " v");
  lora_expand(d.y, v, d.B, d.ranks, d.scales, d.slots);
  expect_close(d.y, ref.y, what + " y");
  // Rows without an adapter (or with a rank-0 one) are untouched, bit for bit.
  for (int64_t t = 0; t < p.T; ++t)
    if (p.slots[t] < 0 || p.ranks[p.slots[t]] == 0)
      EXPECT_TRUE(at::equal(d.y.select(0, t).cpu(), p.y0.select(0, t))) << what << " token " << t;
}

TEST(LoraKernelsGpu, TokenSlotsMatchTheCpuReferenceOverShapesDtypesAndPatterns) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(42);
  at::manual_seed(42);
  struct Shape {
    int64_t T, in, out, S, r_max;
    bool mixed;
  };
  // The last three take general paths: odd in/out/r_max; in a multiple of 4
  // but not 8 with r_max 12 (expand general though out is a multiple of 8);
  // out a multiple of 4 but not 8 with shrink on its vector path.
  const std::vector<Shape> shapes = {
      {1, 4096, 4096, 4, 16, false}, {7, 2048, 2048, 8, 16, false}, {64, 4096, 11008, 64, 16, false},
      {33, 576, 1536, 5, 64, true},  {512, 2048, 512, 8, 16, true}, {5, 16384, 1024, 3, 32, true},
      {9, 1000, 333, 4, 12, true},   {3, 100, 17, 2, 5, true},      {17, 8, 24, 3, 8, false},
      {2, 520, 4104, 2, 64, true},   {5, 1023, 511, 3, 7, true},    {6, 2052, 2048, 4, 12, true},
      {11, 4096, 1004, 4, 24, true},
  };
  for (at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    for (const Shape& s : shapes) {
      for (SlotPattern pattern :
           {SlotPattern::AllSame, SlotPattern::AllDistinct, SlotPattern::WithBase, SlotPattern::Unsorted}) {
        Problem p = make_problem(rng, dtype, s.T, s.in, s.out, s.S, s.r_max, s.mixed, pattern);
        check_token_form(p, dtype,
                         std::string(c10::toString(dtype)) + " T=" + std::to_string(s.T) + " in=" +
                             std::to_string(s.in) + " out=" + std::to_string(s.out) + " pattern=" +
                             std::to_string(static_cast<int>(pattern)));
      }
    }
  }
}

// The per-token slots that segments describe (−1 outside every segment).
std::vector<int32_t> slots_of_segments(int64_t T, const std::vector<int32_t>& starts,
                                       const std::vector<int32_t>& seg_slots) {
  std::vector<int32_t> slots(static_cast<size_t>(T), -1);
  for (size_t i = 0; i < seg_slots.size(); ++i)
    for (int32_t t = starts[i]; t < starts[i + 1]; ++t) slots[t] = seg_slots[i];
  return slots;
}

TEST(LoraKernelsGpu, SegmentsMatchTheCpuReference) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(7);
  at::manual_seed(7);
  for (at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    for (int trial = 0; trial < 12; ++trial) {
      const int64_t T = std::uniform_int_distribution<int64_t>(1, 300)(rng);
      const int64_t in = trial % 3 == 0 ? 1000 : 2048, out = trial % 4 == 0 ? 77 : 4096;
      Problem p = make_problem(rng, dtype, T, in, out, 6, trial % 2 ? 16 : 64, trial % 2 == 0, SlotPattern::AllSame);
      // Segments with a leading gap, empty and base segments, a tail gap.
      std::vector<int32_t> starts{static_cast<int32_t>(std::min<int64_t>(T, 1))}, seg_slots;
      while (starts.back() < T - 1) {
        int32_t next = std::min<int32_t>(static_cast<int32_t>(T - 1),
                                         starts.back() + std::uniform_int_distribution<int32_t>(0, 70)(rng));
        seg_slots.push_back(std::uniform_int_distribution<int32_t>(-1, 5)(rng));
        starts.push_back(next);
      }
      p.slots = slots_of_segments(T, starts, seg_slots);
      Reference ref = reference(p, dtype);
      DeviceProblem d = to_device(p);
      at::Tensor d_starts = ints(starts).cuda(), d_seg_slots = ints(seg_slots).cuda();
      at::Tensor v = lora_shrink_segments(d.x, d.A, d.ranks, d_starts, d_seg_slots);
      expect_close(v, ref.v, "segments v trial " + std::to_string(trial));
      lora_expand_segments(d.y, v, d.B, d.ranks, d.scales, d_starts, d_seg_slots);
      expect_close(d.y, ref.y, "segments y trial " + std::to_string(trial));
    }
  }
}

// Where x, v and y sit in memory. Row views of a wider buffer (row stride
// cols + extra, first element at `offset`), whose other elements hold a
// sentinel (NaN for inputs: a read past a row shows up in the result), or a
// column-major tensor (which the dispatch copies).
struct Layout {
  const char* name;
  int64_t offset, extra;
  bool column_major;
};
const Layout kLayouts[] = {
    {"aligned rows (vector path)", 8, 8, false},
    {"odd row stride", 1, 1, false},
    {"misaligned base, aligned row stride", 1, 8, false},
    {"column-major", 0, 0, true},
};
constexpr float kSentinel = 7.0f;

struct Placed {
  at::Tensor buffer, view;
};
Placed place(const at::Tensor& t, const Layout& layout, float fill) {
  Placed p;
  if (layout.column_major) {
    p.view = at::empty({t.size(1), t.size(0)}, t.options()).t();
  } else {
    p.buffer = at::full({t.size(0), t.size(1) + layout.extra}, fill, t.options());
    p.view = p.buffer.narrow(1, layout.offset, t.size(1));
  }
  p.view.copy_(t);
  return p;
}
// Nothing outside the view was written.
void expect_outside_untouched(const Placed& p, const Layout& layout, const std::string& what) {
  if (layout.column_major) return;
  at::Tensor rest = p.buffer.clone();
  rest.narrow(1, layout.offset, p.view.size(1)).fill_(kSentinel);
  EXPECT_TRUE((rest == kSentinel).all().item<bool>()) << what << ": wrote outside the view";
}

TEST(LoraKernelsGpu, StridedMisalignedAndColumnMajorActivationsMatchTheReference) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(9);
  at::manual_seed(9);
  for (at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    Problem p = make_problem(rng, dtype, 37, 2048, 1024, 4, 16, true, SlotPattern::WithBase);
    Reference ref = reference(p, dtype);
    DeviceProblem d = to_device(p);
    for (const Layout& layout : kLayouts) {
      const std::string what = std::string(c10::toString(dtype)) + " " + layout.name;
      Placed x = place(d.x, layout, std::numeric_limits<float>::quiet_NaN());
      Placed y = place(d.y, layout, kSentinel);
      Placed v = place(at::zeros({p.T, p.r_max}, d.x.options()), layout, kSentinel);
      lora_shrink_out(v.view, x.view, d.A, d.ranks, d.slots);
      expect_close(v.view, ref.v, what + " v");
      expect_outside_untouched(v, layout, what + " v");
      lora_expand(y.view, v.view, d.B, d.ranks, d.scales, d.slots);
      expect_close(y.view, ref.y, what + " y");
      expect_outside_untouched(y, layout, what + " y");
    }
  }
}

TEST(LoraKernelsGpu, NonContiguousAndMisalignedStacksAndTablesMatchTheReference) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(11);
  at::manual_seed(11);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    Problem p = make_problem(rng, dtype, 29, 1024, 2048, 5, 16, true, SlotPattern::WithBase);
    Reference ref = reference(p, dtype);
    DeviceProblem d = to_device(p);
    // Slices of wider stacks (not contiguous; the rest is NaN) ...
    at::Tensor A_sliced = at::full({p.S, p.r_max, p.in + 8}, nan, d.A.options()).narrow(2, 0, p.in);
    at::Tensor B_sliced = at::full({p.S, p.out, p.r_max + 8}, nan, d.B.options()).narrow(2, 0, p.r_max);
    A_sliced.copy_(d.A);
    B_sliced.copy_(d.B);
    // ... and contiguous stacks one element past a 16-byte boundary, which
    // must not take the 16-byte-load path.
    at::Tensor A_shifted = at::empty({d.A.numel() + 1}, d.A.options()).narrow(0, 1, d.A.numel()).view(d.A.sizes());
    at::Tensor B_shifted = at::empty({d.B.numel() + 1}, d.B.options()).narrow(0, 1, d.B.numel()).view(d.B.sizes());
    A_shifted.copy_(d.A);
    B_shifted.copy_(d.B);
    // Every other element of a longer table.
    auto strided = [](const at::Tensor& t) {
      at::Tensor wide = at::empty({2 * t.size(0)}, t.options()).slice(0, 0, 2 * t.size(0), 2);
      wide.copy_(t);
      return wide;
    };
    const at::Tensor ranks = strided(d.ranks), scales = strided(d.scales), slots = strided(d.slots);
    const std::pair<at::Tensor, at::Tensor> stacks[] = {{A_sliced, B_sliced}, {A_shifted, B_shifted}};
    for (const auto& [A, B] : stacks) {
      const std::string what = std::string(c10::toString(dtype)) + (A.is_contiguous() ? " shifted" : " sliced");
      at::Tensor y = d.y.clone();
      at::Tensor v = lora_shrink(d.x, A, ranks, slots);
      expect_close(v, ref.v, what + " v");
      lora_expand(y, v, B, ranks, scales, slots);
      expect_close(y, ref.y, what + " y");
    }
  }
}

// A bad slot value (a server's bookkeeping bug) must not read past the stacks:
// on CUDA it means no adapter, for tokens and segments alike.
TEST(LoraKernelsGpu, OutOfRangeSlotsMeanNoAdapter) {
  SKIP_WITHOUT_GPU();
  at::manual_seed(4);
  auto o = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  at::Tensor x = at::randn({4, 512}, o);
  at::Tensor A = at::randn({2, 16, 512}, o);
  at::Tensor B = at::randn({2, 512, 16}, o);
  at::Tensor ranks = ints({16, 16}).cuda(), scales = floats({1, 1}).cuda();
  const at::Tensor y0 = at::randn({4, 512}, o);
  at::Tensor y = y0.clone();
  lora_apply(y, x, A, B, ranks, scales, ints({2, 0, 1000000, -7}).cuda());
  EXPECT_TRUE(y[0].equal(y0[0]) && y[2].equal(y0[2]) && y[3].equal(y0[3])) << "bad slots leave y untouched";
  EXPECT_FALSE(y[1].equal(y0[1])) << "the good slot still acts";
  at::Tensor v = lora_shrink(x, A, ranks, ints({2, 0, 1000000, -7}).cuda());
  EXPECT_EQ(v[0].abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(v[2].abs().sum().item<float>(), 0.0f);
  at::Tensor y_segments = y0.clone();
  lora_apply_segments(y_segments, x, A, B, ranks, scales, ints({0, 2, 4}).cuda(), ints({5, 1}).cuda());
  EXPECT_TRUE(y_segments.narrow(0, 0, 2).equal(y0.narrow(0, 0, 2)));
  EXPECT_FALSE(y_segments.narrow(0, 2, 2).equal(y0.narrow(0, 2, 2)));
}

TEST(LoraKernelsGpu, GradientsOnCudaGoThroughTheDifferentiablePath) {
  SKIP_WITHOUT_GPU();
  at::manual_seed(3);
  auto o = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  at::Tensor x = at::randn({6, 64}, o).requires_grad_(true);
  at::Tensor A = at::randn({3, 8, 64}, o).requires_grad_(true);
  at::Tensor B = at::randn({3, 32, 8}, o).requires_grad_(true);
  at::Tensor y = at::zeros({6, 32}, o);
  lora_apply(y, x, A, B, ints({8, 4, 2}).cuda(), floats({1, 1, 1}).cuda(), ints({0, 1, -1, 2, 0, 1}).cuda());
  y.sum().backward();
  ASSERT_TRUE(x.grad().defined() && A.grad().defined() && B.grad().defined());
  EXPECT_EQ(A.grad().select(0, 1).narrow(0, 4, 4).abs().sum().item<float>(), 0.0f);
}

#if MNEMO_WITH_CUDA
// Capture shrink + expand once with fixed buffers, then change the slots and
// activations in place and replay: the replay must follow the new contents
// (the kernels read the tables on the device, never on the host).
TEST(LoraKernelsGpu, CudaGraphCaptureAndReplayFollowNewSlotsAndInputs) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(5);
  at::manual_seed(5);
  const at::ScalarType dtype = at::kBFloat16;
  Problem p = make_problem(rng, dtype, 64, 4096, 4096, 16, 16, true, SlotPattern::WithBase);
  DeviceProblem d = to_device(p);
  at::Tensor v = at::empty({p.T, p.r_max}, d.x.options());
  at::Tensor y = d.y.clone();

  c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool();
  at::cuda::CUDAGraph graph;
  {
    c10::cuda::CUDAStreamGuard guard(stream);
    // Warm up outside the capture (first launches load the module).
    lora_shrink_out(v, d.x, d.A, d.ranks, d.slots);
    lora_expand(y, v, d.B, d.ranks, d.scales, d.slots);
    stream.synchronize();
    graph.capture_begin();
    lora_shrink_out(v, d.x, d.A, d.ranks, d.slots);
    lora_expand(y, v, d.B, d.ranks, d.scales, d.slots);
    graph.capture_end();
  }
  for (int round = 0; round < 4; ++round) {
    Problem q = make_problem(rng, dtype, p.T, p.in, p.out, p.S, p.r_max, true,
                             round % 2 ? SlotPattern::WithBase : SlotPattern::Unsorted);
    q.A = p.A;
    q.B = p.B;
    q.ranks = p.ranks;
    q.scales = p.scales;
    d.x.copy_(q.x.cuda());
    d.slots.copy_(ints(q.slots).cuda());
    y.copy_(q.y0.cuda());
    graph.replay();
    c10::cuda::device_synchronize();
    Reference ref = reference(q, dtype);
    expect_close(v, ref.v, "graph v round " + std::to_string(round));
    expect_close(y, ref.y, "graph y round " + std::to_string(round));
  }
}

// The segment form captured once with a fixed number of segments; each replay
// gets new boundaries (gaps, empty segments) and slots (−1 included).
TEST(LoraKernelsGpu, CudaGraphCaptureAndReplayFollowNewSegments) {
  SKIP_WITHOUT_GPU();
  std::mt19937 rng(13);
  at::manual_seed(13);
  const at::ScalarType dtype = at::kBFloat16;
  const int64_t n_segments = 5;
  Problem p = make_problem(rng, dtype, 96, 2048, 2048, 6, 32, true, SlotPattern::AllSame);
  auto draw_segments = [&](Problem& q, std::vector<int32_t>& starts, std::vector<int32_t>& seg_slots) {
    starts.clear();
    seg_slots.clear();
    for (int64_t i = 0; i <= n_segments; ++i)
      starts.push_back(static_cast<int32_t>(std::uniform_int_distribution<int64_t>(0, q.T)(rng)));
    std::sort(starts.begin(), starts.end());
    for (int64_t i = 0; i < n_segments; ++i)
      seg_slots.push_back(static_cast<int32_t>(std::uniform_int_distribution<int64_t>(-1, q.S - 1)(rng)));
    q.slots = slots_of_segments(q.T, starts, seg_slots);
  };
  std::vector<int32_t> starts, seg_slots;
  draw_segments(p, starts, seg_slots);
  DeviceProblem d = to_device(p);
  at::Tensor d_starts = ints(starts).cuda(), d_seg_slots = ints(seg_slots).cuda();
  at::Tensor v = at::empty({p.T, p.r_max}, d.x.options());
  at::Tensor y = d.y.clone();

  c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool();
  at::cuda::CUDAGraph graph;
  {
    c10::cuda::CUDAStreamGuard guard(stream);
    lora_shrink_segments_out(v, d.x, d.A, d.ranks, d_starts, d_seg_slots);
    lora_expand_segments(y, v, d.B, d.ranks, d.scales, d_starts, d_seg_slots);
    stream.synchronize();
    graph.capture_begin();
    lora_shrink_segments_out(v, d.x, d.A, d.ranks, d_starts, d_seg_slots);
    lora_expand_segments(y, v, d.B, d.ranks, d.scales, d_starts, d_seg_slots);
    graph.capture_end();
  }
  for (int round = 0; round < 4; ++round) {
    Problem q = make_problem(rng, dtype, p.T, p.in, p.out, p.S, p.r_max, true, SlotPattern::AllSame);
    q.A = p.A;
    q.B = p.B;
    q.ranks = p.ranks;
    q.scales = p.scales;
    draw_segments(q, starts, seg_slots);
    d.x.copy_(q.x.cuda());
    d_starts.copy_(ints(starts).cuda());
    d_seg_slots.copy_(ints(seg_slots).cuda());
    y.copy_(q.y0.cuda());
    graph.replay();
    c10::cuda::device_synchronize();
    Reference ref = reference(q, dtype);
    expect_close(v, ref.v, "graph segments v round " + std::to_string(round));
    expect_close(y, ref.y, "graph segments y round " + std::to_string(round));
  }
}

// Row offsets past 2^31 elements (x and y of 4 GiB each): the kernels' index
// arithmetic must be 64-bit, and more than 65535 token tiles must launch.
// Checked on the first and last tokens against the reference.
TEST(LoraKernelsGpu, TokenOffsetsPastTwoToThe31ElementsAreAddressed) {
  SKIP_WITHOUT_GPU();
  if (at::cuda::getCurrentDeviceProperties()->totalGlobalMem < (size_t{24} << 30))
    GTEST_SKIP() << "needs 24 GiB of GPU memory";
  std::mt19937 rng(17);
  at::manual_seed(17);
  const at::ScalarType dtype = at::kBFloat16;
  const int64_t in = 4096, out = 4096, S = 8, r_max = 16;
  const int64_t T = (int64_t{1} << 31) / in + 40;
  Problem p = make_problem(rng, dtype, 1, in, out, S, r_max, true, SlotPattern::Unsorted);
  std::vector<int32_t> slots(static_cast<size_t>(T));
  for (int32_t& slot : slots) slot = static_cast<int32_t>(std::uniform_int_distribution<int64_t>(-1, S - 1)(rng));
  const auto o = at::TensorOptions().device(at::kCUDA).dtype(dtype);
  at::Tensor x = at::randn({T, in}, o), y = at::randn({T, out}, o), v = at::empty({T, r_max}, o);
  const std::pair<int64_t, int64_t> checked[] = {{0, 24}, {T - 40, 40}};
  std::vector<at::Tensor> y_before;
  for (const auto& [start, count] : checked) y_before.push_back(y.narrow(0, start, count).cpu().clone());
  DeviceProblem d = to_device(p);
  at::Tensor d_slots = ints(slots).cuda();
  lora_shrink_out(v, x, d.A, d.ranks, d_slots);
  lora_expand(y, v, d.B, d.ranks, d.scales, d_slots);
  for (size_t i = 0; i < 2; ++i) {
    const auto& [start, count] = checked[i];
    Problem q = p;
    q.T = count;
    q.x = x.narrow(0, start, count).cpu();
    q.y0 = y_before[i];
    q.slots.assign(slots.begin() + start, slots.begin() + start + count);
    Reference ref = reference(q, dtype);
    expect_close(v.narrow(0, start, count), ref.v, "tokens from " + std::to_string(start) + " v");
    expect_close(y.narrow(0, start, count), ref.y, "tokens from " + std::to_string(start) + " y");
  }
}
#endif

}  // namespace
}  // namespace mnemo
