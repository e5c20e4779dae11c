// CUDA kernels of the multi-adapter LoRA ops: shrink (x·Aᵀ → v) and expand
// (y += s·v·Bᵀ), per token (BGMV) and per segment (SGMV), bf16/fp16 in, fp32
// accumulation. The contract is kernels/lora_ops.h; launchers in lora_cuda.h.
//
// Both ops are memory-bound by a wide margin: a rank-16 adapter at hidden 4096
// is 128 KiB per matrix, and a decode token does 2·16·4096 FLOPs on it — about
// 0.5 FLOP/byte. So the design goal is to stream each token's adapter slice
// from DRAM exactly once, with 16-byte loads, across enough SMs, and to do
// nothing else: no work past a slot's rank, no pass over y besides the fused
// read-add-write, and no host synchronization or allocation (graph capture).
//
// Two pairs of kernels, chosen by the slot map:
//   * segments (SGMV, prefill): the tiled kernels work on tiles of consecutive
//     tokens; a run of tokens that share a slot (a segment) reads the adapter
//     once for the whole run, the slot of a token found by binary search over
//     seg_starts.
//   * per-token slots (BGMV, decode): the decode kernels give every token its
//     own blocks, split along `in` (shrink) and `out` (expand), so a batch of
//     tokens with distinct adapters keeps every SM streaming (see "Decode").
#include "kernels/lora_cuda.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace mnemo::lora_cuda {
namespace {

constexpr int kMaxRank = 64;

// ---- Element conversion: 8 elements travel as one 16-byte uint4.

template <typename T>
struct Elem;

template <>
struct Elem<__nv_bfloat16> {
  static __device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
  static __device__ __forceinline__ __nv_bfloat16 from_float(float v) { return __float2bfloat16_rn(v); }
  static __device__ __forceinline__ void unpack8(const uint4& raw, float out[8]) {
    const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float2 f = __bfloat1622float2(pairs[i]);
      out[2 * i] = f.x;
      out[2 * i + 1] = f.y;
    }
  }
  static __device__ __forceinline__ uint4 pack8(const float in[8]) {
    uint4 raw;
    __nv_bfloat162* pairs = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) pairs[i] = __floats2bfloat162_rn(in[2 * i], in[2 * i + 1]);
    return raw;
  }
};

template <>
struct Elem<__half> {
  static __device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
  static __device__ __forceinline__ __half from_float(float v) { return __float2half_rn(v); }
  static __device__ __forceinline__ void unpack8(const uint4& raw, float out[8]) {
    const __half2* pairs = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float2 f = __half22float2(pairs[i]);
      out[2 * i] = f.x;
      out[2 * i + 1] = f.y;
    }
  }
  static __device__ __forceinline__ uint4 pack8(const float in[8]) {
    uint4 raw;
    __half2* pairs = reinterpret_cast<__half2*>(&raw);
#pragma unroll
    for (int i = 0; i < 4; ++i) pairs[i] = __floats2half2_rn(in[2 * i], in[2 * i + 1]);
    return raw;
  }
};

// Adapter weights are read once per run and never written: the read-only
// path. Activations may alias y in a caller's in-place use, so a plain load.
template <typename T>
__device__ __forceinline__ uint4 load_weights8(const T* p) {
  return __ldg(reinterpret_cast<const uint4*>(p));
}
template <typename T>
__device__ __forceinline__ uint4 load8(const T* p) {
  return *reinterpret_cast<const uint4*>(p);
}

// The slot of token t: per-token table, or the segment that holds t (the last
// i with seg_starts[i] ≤ t, empty segments skipped by construction); −1 outside
// every segment and for a slot value outside [0, n_slots), so a bad slot can
// never read past the stacks.
__device__ __forceinline__ int valid_slot(const SlotMap& map, int slot) {
  return (slot >= 0 && slot < map.n_slots) ? slot : -1;
}

__device__ __forceinline__ int slot_of(const SlotMap& map, int64_t t) {
  if (map.token_slots != nullptr) return valid_slot(map, map.token_slots[t]);
  int lo = 0, hi = static_cast<int>(map.n_segments) + 1;  // count of starts ≤ t
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (map.seg_starts[mid] <= t)
      lo = mid + 1;
    else
      hi = mid;
  }
  const int i = lo - 1;
  return (i >= 0 && i < map.n_segments) ? valid_slot(map, map.seg_slots[i]) : -1;
}

// A slot's rank, clamped to [0, r_max]. The CPU path rejects other values; the
// kernels cannot without a host synchronization, and unclamped a rank above
// r_max would read the next slot's rows, past the stack or past s_v (> 64),
// and a negative one would index B backwards in expand's scalar tail.
__device__ __forceinline__ int rank_of(const int32_t* ranks, int slot, int64_t r_max) {
  return slot < 0 ? 0 : static_cast<int>(max(int64_t{0}, min(static_cast<int64_t>(ranks[slot]), r_max)));
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// ---- Shrink, tiled (segments): v[t, j] = Σ_k x[t, k] · A[slot, j, k] for
// j < rank, else 0.
//
// Grid: x = tiles of kShrinkTokens tokens, y = groups of kShrinkRows rank rows.
// A rank row j of one adapter is `in` contiguous elements; kShrinkSplit warps
// split it along `in` (split-K inside the block, reduced in shared memory), so
// every warp instruction is 32 lanes × 16 B = 512 contiguous bytes of A. Each
// row of A is read once per run, shared by the run's tokens; the x rows (a few
// KiB) are re-read per rank row but from L1, since the block's warps stream
// the same x rows at the same time. Splitting rank rows over blockIdx.y
// spreads a run's rows over several SMs; blocks whose rows are all past the
// run's rank only write zeros.
constexpr int kShrinkTokens = 8;
constexpr int kShrinkRows = 4;   // rank rows per block
constexpr int kShrinkSplit = 2;  // warps per rank row (split-K)
constexpr int kShrinkThreads = 32 * kShrinkRows * kShrinkSplit;

template <typename T, bool kVector>
__global__ void __launch_bounds__(kShrinkThreads) lora_shrink_kernel(ShrinkArgs args) {
  __shared__ int s_slot[kShrinkTokens];
  __shared__ int s_rank[kShrinkTokens];
  __shared__ float s_partial[kShrinkRows][kShrinkSplit][kShrinkTokens];

  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kShrinkTokens;
  const int n_tile = static_cast<int>(min(static_cast<int64_t>(kShrinkTokens), args.n_tokens - t0));
  if (threadIdx.x < n_tile) {
    const int slot = slot_of(args.map, t0 + threadIdx.x);
    s_slot[threadIdx.x] = slot;
    s_rank[threadIdx.x] = rank_of(args.ranks, slot, args.r_max);
  }
  __syncthreads();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row_in_block = warp / kShrinkSplit, split = warp % kShrinkSplit;
  const int64_t row = static_cast<int64_t>(blockIdx.y) * kShrinkRows + row_in_block;
  const int64_t in = args.in_features;
  const T* x = static_cast<const T*>(args.x);
  const T* A = static_cast<const T*>(args.A);
  T* v = static_cast<T*>(args.v);

  // Every thread walks the same runs (shared data), so the barriers below are
  // reached by the whole block.
  for (int i = 0; i < n_tile;) {
    const int slot = s_slot[i];
    int j = i + 1;
    while (j < n_tile && s_slot[j] == slot) ++j;
    const int run = j - i;
    const int rank = s_rank[i];
    const bool active = row < rank;  // false for padding rows, rows ≥ r_max and slot −1

    float acc[kShrinkTokens];
#pragma unroll
    for (int u = 0; u < kShrinkTokens; ++u) acc[u] = 0.f;
    if (active) {
      const T* a_row = A + (static_cast<int64_t>(slot) * args.r_max + row) * in;
      const T* x_run = x + (t0 + i) * args.x_stride;
      if constexpr (kVector) {
        // Lane-interleaved 8-element chunks; the split warps take alternate
        // 256-element stripes so both stream contiguous 512-byte spans.
#pragma unroll 2
        for (int64_t k = (static_cast<int64_t>(split) * 32 + lane) * 8; k < in; k += kShrinkSplit * 32 * 8) {
          float a8[8];
          Elem<T>::unpack8(load_weights8(a_row + k), a8);
#pragma unroll
          for (int u = 0; u < kShrinkTokens; ++u) {
            if (u < run) {
              float x8[8];
              Elem<T>::unpack8(load8(x_run + u * args.x_stride + k), x8);
#pragma unroll
              for (int e = 0; e < 8; ++e) acc[u] = fmaf(a8[e], x8[e], acc[u]);
            }
          }
        }
      } else {
        // General path: any `in`, any alignment, scalar loads.
        for (int64_t k = static_cast<int64_t>(split) * 32 + lane; k < in; k += kShrinkSplit * 32) {
          const float a = Elem<T>::to_float(a_row[k]);
#pragma unroll
          for (int u = 0; u < kShrinkTokens; ++u)
            if (u < run) acc[u] = fmaf(a, Elem<T>::to_float(x_run[u * args.x_stride + k]), acc[u]);
        }
      }
#pragma unroll
      for (int u = 0; u < kShrinkTokens; ++u)
        if (u < run) acc[u] = warp_sum(acc[u]);
    }
    if (lane == 0) {
#pragma unroll
      for (int u = 0; u < kShrinkTokens; ++u) s_partial[row_in_block][split][u] = acc[u];
    }
    __syncthreads();
    // One thread per (row, token) writes v: the sum of the split partials, or
    // zero for padding columns and tokens without an adapter.
    if (split == 0 && lane < run && row < args.r_max) {
      float sum = 0.f;
#pragma unroll
      for (int s = 0; s < kShrinkSplit; ++s) sum += s_partial[row_in_block][s][lane];
      v[(t0 + i + lane) * args.v_stride + row] = Elem<T>::from_float(active ? sum : 0.f);
    }
    __syncthreads();  // s_partial is reused by the next run
    i = j;
  }
}

// ---- Expand, tiled (segments): y[t, o] += scale · Σ_{k<rank} v[t, k] · B[slot, o, k].
//
// Grid: x = tiles of kExpandTokens tokens, y = spans of kExpandThreads·8
// output columns. A thread owns 8 consecutive columns of y: one 16-byte load
// and one 16-byte store of y per token, coalesced across the warp (512 B), and
// the add fused into that store. Its 8 rows of B (B[slot, o..o+7, :rank]) are
// contiguous in memory — together the warp reads 256 whole rows, so every
// byte of the B slice is fetched from DRAM once per run; the per-instruction
// stride (8·r_max elements between lanes) is absorbed by L1, as a row's
// second 16-byte chunk sits in the sector the first one brought in. The v
// rows of the tile (≤ 64 values each) sit in shared memory as fp32, read as
// broadcasts. Runs of tokens with one slot reuse each B chunk from registers.
// Only rank columns are read: B's padding may hold anything.
constexpr int kExpandTokens = 4;
constexpr int kExpandThreads = 64;  // 512 columns per block: hidden 4096 at T=1 is 8 blocks
constexpr int kExpandColumns = 8;

template <typename T, bool kVector>
__global__ void __launch_bounds__(kExpandThreads) lora_expand_kernel(ExpandArgs args) {
  __shared__ int s_slot[kExpandTokens];
  __shared__ int s_rank[kExpandTokens];
  __shared__ float s_scale[kExpandTokens];
  __shared__ float s_v[kExpandTokens][kMaxRank];

  const int64_t t0 = static_cast<int64_t>(blockIdx.x) * kExpandTokens;
  const int n_tile = static_cast<int>(min(static_cast<int64_t>(kExpandTokens), args.n_tokens - t0));
  if (threadIdx.x < n_tile) {
    const int slot = slot_of(args.map, t0 + threadIdx.x);
    s_slot[threadIdx.x] = slot;
    s_rank[threadIdx.x] = rank_of(args.ranks, slot, args.r_max);
    s_scale[threadIdx.x] = slot < 0 ? 0.f : args.scales[slot];
  }
  __syncthreads();
  const T* v = static_cast<const T*>(args.v);
  for (int idx = threadIdx.x; idx < n_tile * kMaxRank; idx += kExpandThreads) {
    const int u = idx / kMaxRank, k = idx % kMaxRank;
    s_v[u][k] = k < s_rank[u] ? Elem<T>::to_float(v[(t0 + u) * args.v_stride + k]) : 0.f;
  }
  __syncthreads();

  const int64_t col0 = (static_cast<int64_t>(blockIdx.y) * kExpandThreads + threadIdx.x) * kExpandColumns;
  if (col0 >= args.out_features) return;  // no barrier below
  const T* B = static_cast<const T*>(args.B);
  T* y = static_cast<T*>(args.y);
  const int64_t r_max = args.r_max;

  for (int i = 0; i < n_tile;) {
    const int slot = s_slot[i];
    int j = i + 1;
    while (j < n_tile && s_slot[j] == slot) ++j;
    const int run = j - i;
    const int rank = s_rank[i];
    if (slot < 0 || rank == 0) {  // y untouched
      i = j;
      continue;
    }
    const float scale = s_scale[i];
    const T* b_rows = B + (static_cast<int64_t>(slot) * args.out_features + col0) * r_max;

    float acc[kExpandTokens][kExpandColumns];
#pragma unroll
    for (int u = 0; u < kExpandTokens; ++u)
#pragma unroll
      for (int c = 0; c < kExpandColumns; ++c) acc[u][c] = 0.f;

    if constexpr (kVector) {
      const int rank_vec = rank & ~7;  // whole 16-byte chunks; the tail is scalar
#pragma unroll
      for (int c = 0; c < kExpandColumns; ++c) {
        const T* b_row = b_rows + c * r_max;
        for (int k = 0; k < rank_vec; k += 8) {
          float b8[8];
          Elem<T>::unpack8(load_weights8(b_row + k), b8);
#pragma unroll
          for (int u = 0; u < kExpandTokens; ++u)
            if (u < run)
#pragma unroll
              for (int e = 0; e < 8; ++e) acc[u][c] = fmaf(b8[e], s_v[i + u][k + e], acc[u][c]);
        }
        for (int k = rank_vec; k < rank; ++k) {
          const float b = Elem<T>::to_float(b_row[k]);
#pragma unroll
          for (int u = 0; u < kExpandTokens; ++u)
            if (u < run) acc[u][c] = fmaf(b, s_v[i + u][k], acc[u][c]);
        }
      }
#pragma unroll
      for (int u = 0; u < kExpandTokens; ++u) {
        if (u < run) {
          T* y_ptr = y + (t0 + i + u) * args.y_stride + col0;
          float y8[8];
          Elem<T>::unpack8(load8(y_ptr), y8);
#pragma unroll
          for (int c = 0; c < 8; ++c) y8[c] = fmaf(scale, acc[u][c], y8[c]);
          *reinterpret_cast<uint4*>(y_ptr) = Elem<T>::pack8(y8);
        }
      }
    } else {
      // General path: any out/r_max/alignment; columns past `out` skipped.
#pragma unroll
      for (int c = 0; c < kExpandColumns; ++c) {
        if (col0 + c >= args.out_features) break;
        const T* b_row = b_rows + c * r_max;
        for (int k = 0; k < rank; ++k) {
          const float b = Elem<T>::to_float(b_row[k]);
#pragma unroll
          for (int u = 0; u < kExpandTokens; ++u)
            if (u < run) acc[u][c] = fmaf(b, s_v[i + u][k], acc[u][c]);
        }
      }
#pragma unroll
      for (int u = 0; u < kExpandTokens; ++u) {
        if (u >= run) continue;
        T* y_row = y + (t0 + i + u) * args.y_stride;
#pragma unroll
        for (int c = 0; c < kExpandColumns; ++c) {
          if (col0 + c >= args.out_features) break;
          y_row[col0 + c] = Elem<T>::from_float(Elem<T>::to_float(y_row[col0 + c]) + scale * acc[u][c]);
        }
      }
    }
    i = j;
  }
}

// ---- Decode (BGMV): one block per (token, slice of the adapter), no runs.
//
// The tiled kernels above were measured on an H200 at decode shape (64
// tokens, each its own rank-16 adapter, hidden 4096): 58 µs for 18 MB, 13x
// the copy time. Runs of one token leave them latency-bound: shrink had 32
// blocks (8 tokens × 4 row groups) each walking its 8 tokens one after the
// other with two barriers per token, and expand 128 blocks of 64 threads with
// a handful of loads in flight each. Here every token gets its own blocks and
// every thread issues all its adapter loads before it uses any, so the whole
// adapter slice of the batch is requested in about one memory round trip:
//   shrink: grid (T, r_max/4), 256 threads; a block owns 4 rank rows of one
//           token, its threads split `in` (8 elements each, 16-byte loads),
//           warp sums then one barrier. At 64 tokens, rank 16, in 4096: 256
//           blocks × 32 KiB of A, 10 loads of 16 B in flight per thread.
//   expand: grid (T, out/512), 256 threads; a block owns 512 rows of B[slot]
//           for one token. Each row's rank columns are 1–8 chunks of 16 B;
//           adjacent lanes take a row's chunks (a power-of-two group), so a
//           warp instruction reads whole consecutive rows — 512 contiguous
//           bytes when rank = r_max — and the group sums by shuffles. Row sums
//           go to shared memory; y is then read-added-written 16 B per thread.
//           At 64 tokens, rank 16, out 4096: 512 blocks × 16 KiB of B, 4 loads
//           of 16 B in flight per thread.
// At that shape both fit in one wave (registers allow 3 shrink or 4 expand
// blocks per SM: 396 and 528 on 132 SMs), so the time is the DRAM time of the
// bytes plus a few round trips (slot → rank → adapter, then the reduction):
// about 2.2 µs of DRAM time per kernel at ~4 TB/s, so some 3 µs each expected
// (an estimate, not yet measured when this was written).
// A token whose slot repeats re-reads the adapter, from L2: the tiled kernels
// shared it only within runs of consecutive tokens, rare in a decode batch.
constexpr int64_t kMaxGridX = 0x7fffffff, kMaxGridY = 65535;
constexpr int kDecodeThreads = 256;
constexpr int kDecodeShrinkRows = 4;    // rank rows per shrink block
constexpr int kDecodeExpandRows = 512;  // rows of B (columns of y) per expand block
constexpr int kDecodeExpandBatch = 4;   // B loads issued per thread before use
static_assert(kDecodeExpandRows % kDecodeThreads == 0 && kDecodeExpandRows <= 8 * kDecodeThreads,
              "expand: a pass covers whole rows, and one 16-byte chunk of y per thread covers the block");
static_assert(kMaxRank <= kDecodeThreads, "one thread per v element");

template <typename T, bool kVector>
__global__ void __launch_bounds__(kDecodeThreads) lora_shrink_decode_kernel(ShrinkArgs args) {
  constexpr int kRows = kDecodeShrinkRows;
  constexpr int kWarps = kDecodeThreads / 32;
  __shared__ float s_partial[kWarps][kRows];

  const int64_t t = blockIdx.x;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * kRows;
  // Every thread reads the same table entries (broadcast loads): no barrier.
  const int slot = valid_slot(args.map, args.map.token_slots[t]);
  const int rank = rank_of(args.ranks, slot, args.r_max);
  const int n_rows = static_cast<int>(max(int64_t{0}, min(static_cast<int64_t>(kRows), rank - row0)));
  T* v_row = static_cast<T*>(args.v) + t * args.v_stride;
  if (n_rows == 0) {  // padding columns, slot −1, rank 0: zeros; block-uniform exit
    if (threadIdx.x < kRows && row0 + threadIdx.x < args.r_max) v_row[row0 + threadIdx.x] = Elem<T>::from_float(0.f);
    return;
  }

  const int64_t in = args.in_features;
  const T* x_row = static_cast<const T*>(args.x) + t * args.x_stride;
  const T* a_rows = static_cast<const T*>(args.A) + (static_cast<int64_t>(slot) * args.r_max + row0) * in;
  float acc[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = 0.f;

  if constexpr (kVector) {
    // Two 2048-element stripes per step: at in = 4096 one step, all loads
    // (2 of x, 2·n_rows of A) in flight together. Rows ≥ n_rows (past the
    // rank) are never loaded.
    constexpr int kUnroll = 2;
    constexpr int64_t kStripe = kDecodeThreads * 8;
    for (int64_t k0 = static_cast<int64_t>(threadIdx.x) * 8; k0 < in; k0 += kUnroll * kStripe) {
      uint4 x_raw[kUnroll], a_raw[kUnroll][kRows];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t k = k0 + u * kStripe;
        x_raw[u] = make_uint4(0, 0, 0, 0);
#pragma unroll
        for (int r = 0; r < kRows; ++r) a_raw[u][r] = make_uint4(0, 0, 0, 0);
        if (k < in) {
          x_raw[u] = load8(x_row + k);
#pragma unroll
          for (int r = 0; r < kRows; ++r)
            if (r < n_rows) a_raw[u][r] = load_weights8(a_rows + r * in + k);
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (k0 + u * kStripe >= in) continue;
        float x8[8];
        Elem<T>::unpack8(x_raw[u], x8);
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          if (r < n_rows) {
            float a8[8];
            Elem<T>::unpack8(a_raw[u][r], a8);
#pragma unroll
            for (int e = 0; e < 8; ++e) acc[r] = fmaf(a8[e], x8[e], acc[r]);
          }
        }
      }
    }
  } else {
    // General path: any `in`, any alignment, scalar loads.
    for (int64_t k = threadIdx.x; k < in; k += kDecodeThreads) {
      const float xk = Elem<T>::to_float(x_row[k]);
#pragma unroll
      for (int r = 0; r < kRows; ++r)
        if (r < n_rows) acc[r] = fmaf(Elem<T>::to_float(a_rows[r * in + k]), xk, acc[r]);
    }
  }

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[r] = warp_sum(acc[r]);
  if (lane == 0) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) s_partial[warp][r] = acc[r];
  }
  __syncthreads();
  if (threadIdx.x < kRows && row0 + threadIdx.x < args.r_max) {
    const int r = threadIdx.x;
    float sum = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) sum += s_partial[w][r];
    v_row[row0 + r] = Elem<T>::from_float(r < n_rows ? sum : 0.f);
  }
}

// kVector: 16-byte loads of B (r_max % 8 == 0, B 16-byte aligned). y_vector
// (runtime, block-uniform): 16-byte read-add-write of y (out % 8 == 0,
// y_stride % 8 == 0, y 16-byte aligned).
template <typename T, bool kVector>
__global__ void __launch_bounds__(kDecodeThreads) lora_expand_decode_kernel(ExpandArgs args, bool y_vector) {
  constexpr int kRows = kDecodeExpandRows;
  __shared__ float s_v[kMaxRank];
  __shared__ float s_sum[kRows];

  const int64_t t = blockIdx.x;
  const int64_t o0 = static_cast<int64_t>(blockIdx.y) * kRows;
  const int n_out = static_cast<int>(min(static_cast<int64_t>(kRows), args.out_features - o0));  // > 0 by the grid
  T* y_row = static_cast<T*>(args.y) + t * args.y_stride + o0;
  const T* v_row = static_cast<const T*>(args.v) + t * args.v_stride;

  const int slot = valid_slot(args.map, args.map.token_slots[t]);
  // y and v do not depend on the slot: their loads go out with the table's.
  // (v's columns up to r_max are inside the tensor; those past the rank are
  // dropped below, so garbage or NaN there never reaches y.)
  const int y_col = threadIdx.x * 8;
  uint4 y_raw = make_uint4(0, 0, 0, 0);
  if (y_vector && y_col < n_out) y_raw = load8(y_row + y_col);
  const float v_k = threadIdx.x < args.r_max ? Elem<T>::to_float(v_row[threadIdx.x]) : 0.f;
  const int rank = rank_of(args.ranks, slot, args.r_max);
  if (rank == 0) return;  // slot −1 or a rank-0 adapter: y untouched; block-uniform
  const float scale = args.scales[slot];
  if (threadIdx.x < kMaxRank) s_v[threadIdx.x] = threadIdx.x < rank ? v_k : 0.f;
  __syncthreads();

  const T* b_rows = static_cast<const T*>(args.B) + (static_cast<int64_t>(slot) * args.out_features + o0) * args.r_max;
  const int64_t r_max = args.r_max;
  if constexpr (kVector) {
    // A row's rank columns are `chunks` 16-byte chunks, taken by a group of
    // `lanes` adjacent lanes (the next power of two; lanes past the rank idle).
    const int chunks = (rank + 7) / 8;  // 1..8
    const int lanes_log2 = chunks <= 1 ? 0 : chunks <= 2 ? 1 : chunks <= 4 ? 2 : 3;
    const int lanes = 1 << lanes_log2;
    const int k0 = (threadIdx.x & (lanes - 1)) * 8;
    const bool whole = k0 + 8 <= rank;  // else scalar loads of columns [k0, rank), if any
    float v8[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) v8[e] = s_v[k0 + e];  // zero past the rank
    const int rows_per_pass = kDecodeThreads >> lanes_log2;
    const int passes = kRows / rows_per_pass;  // 2, 4, 8, 16: uniform, so shuffles see every lane
    const int row_in_pass = threadIdx.x >> lanes_log2;
    for (int p0 = 0; p0 < passes; p0 += kDecodeExpandBatch) {
      uint4 raw[kDecodeExpandBatch];
#pragma unroll
      for (int u = 0; u < kDecodeExpandBatch; ++u) {
        const int row = (p0 + u) * rows_per_pass + row_in_pass;
        raw[u] = make_uint4(0, 0, 0, 0);
        if (whole && p0 + u < passes && row < n_out) raw[u] = load_weights8(b_rows + row * r_max + k0);
      }
#pragma unroll
      for (int u = 0; u < kDecodeExpandBatch; ++u) {
        if (p0 + u >= passes) break;
        const int row = (p0 + u) * rows_per_pass + row_in_pass;
        float dot = 0.f;
        if (row < n_out) {
          if (whole) {
            float b8[8];
            Elem<T>::unpack8(raw[u], b8);
#pragma unroll
            for (int e = 0; e < 8; ++e) dot = fmaf(b8[e], v8[e], dot);
          } else {
            const T* b_chunk = b_rows + row * r_max + k0;
#pragma unroll
            for (int e = 0; e < 8; ++e)
              if (k0 + e < rank) dot = fmaf(Elem<T>::to_float(b_chunk[e]), v8[e], dot);
          }
        }
        for (int offset = lanes >> 1; offset > 0; offset >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
        if ((threadIdx.x & (lanes - 1)) == 0) s_sum[(p0 + u) * rows_per_pass + row_in_pass] = dot;
      }
    }
  } else {
    // General path: any r_max/alignment; one thread per row, scalar loads.
    for (int row = threadIdx.x; row < kRows; row += kDecodeThreads) {
      float dot = 0.f;
      if (row < n_out) {
        const T* b_row = b_rows + row * r_max;
        for (int k = 0; k < rank; ++k) dot = fmaf(Elem<T>::to_float(b_row[k]), s_v[k], dot);
      }
      s_sum[row] = dot;
    }
  }
  __syncthreads();

  if (y_vector) {  // n_out is a multiple of 8 here
    if (y_col < n_out) {
      float y8[8];
      Elem<T>::unpack8(y_raw, y8);
#pragma unroll
      for (int e = 0; e < 8; ++e) y8[e] = fmaf(scale, s_sum[y_col + e], y8[e]);
      *reinterpret_cast<uint4*>(y_row + y_col) = Elem<T>::pack8(y8);
    }
  } else {
    for (int c = threadIdx.x; c < n_out; c += kDecodeThreads)
      y_row[c] = Elem<T>::from_float(fmaf(scale, s_sum[c], Elem<T>::to_float(y_row[c])));
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

const char* launch_status() {
  cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

template <typename T>
const char* shrink(const ShrinkArgs& args, cudaStream_t stream) {
  // 16-byte loads need every row start of x and A 16-byte aligned.
  const bool vector = args.in_features % 8 == 0 && args.x_stride % 8 == 0 && aligned16(args.x) && aligned16(args.A);
  if (args.map.token_slots != nullptr) {  // per-token slots (decode): no runs to share
    if (args.n_tokens > kMaxGridX) return "lora shrink: more than 2^31 - 1 tokens";
    dim3 grid(static_cast<unsigned>(args.n_tokens),
              static_cast<unsigned>((args.r_max + kDecodeShrinkRows - 1) / kDecodeShrinkRows));
    if (vector)
      lora_shrink_decode_kernel<T, true><<<grid, kDecodeThreads, 0, stream>>>(args);
    else
      lora_shrink_decode_kernel<T, false><<<grid, kDecodeThreads, 0, stream>>>(args);
    return launch_status();
  }
  dim3 grid(static_cast<unsigned>((args.n_tokens + kShrinkTokens - 1) / kShrinkTokens),
            static_cast<unsigned>((args.r_max + kShrinkRows - 1) / kShrinkRows));
  if (vector)
    lora_shrink_kernel<T, true><<<grid, kShrinkThreads, 0, stream>>>(args);
  else
    lora_shrink_kernel<T, false><<<grid, kShrinkThreads, 0, stream>>>(args);
  return launch_status();
}

template <typename T>
const char* expand(const ExpandArgs& args, cudaStream_t stream) {
  if (args.map.token_slots != nullptr) {  // per-token slots (decode): no runs to share
    const int64_t column_blocks = (args.out_features + kDecodeExpandRows - 1) / kDecodeExpandRows;
    if (args.n_tokens > kMaxGridX) return "lora expand: more than 2^31 - 1 tokens";
    if (column_blocks > kMaxGridY) return "lora expand: out_features above 65535 * 512";
    const bool b_vector = args.r_max % 8 == 0 && aligned16(args.B);
    const bool y_vector = args.out_features % 8 == 0 && args.y_stride % 8 == 0 && aligned16(args.y);
    dim3 grid(static_cast<unsigned>(args.n_tokens), static_cast<unsigned>(column_blocks));
    if (b_vector)
      lora_expand_decode_kernel<T, true><<<grid, kDecodeThreads, 0, stream>>>(args, y_vector);
    else
      lora_expand_decode_kernel<T, false><<<grid, kDecodeThreads, 0, stream>>>(args, y_vector);
    return launch_status();
  }
  const bool vector = args.out_features % 8 == 0 && args.r_max % 8 == 0 && args.y_stride % 8 == 0 &&
                      aligned16(args.y) && aligned16(args.B);
  const int64_t columns_per_block = static_cast<int64_t>(kExpandThreads) * kExpandColumns;
  dim3 grid(static_cast<unsigned>((args.n_tokens + kExpandTokens - 1) / kExpandTokens),
            static_cast<unsigned>((args.out_features + columns_per_block - 1) / columns_per_block));
  if (vector)
    lora_expand_kernel<T, true><<<grid, kExpandThreads, 0, stream>>>(args);
  else
    lora_expand_kernel<T, false><<<grid, kExpandThreads, 0, stream>>>(args);
  return launch_status();
}

}  // namespace

const char* launch_lora_shrink(const ShrinkArgs& args, void* stream) {
  if (args.n_tokens == 0 || args.r_max == 0) return nullptr;
  if (args.r_max > kMaxRank) return "lora shrink: r_max exceeds 64";
  if (args.map.n_slots <= 0) return "lora shrink: SlotMap.n_slots not set (every slot would read as none)";
  auto s = static_cast<cudaStream_t>(stream);
  return args.type == ElementType::Float16 ? shrink<__half>(args, s) : shrink<__nv_bfloat16>(args, s);
}

const char* launch_lora_expand(const ExpandArgs& args, void* stream) {
  if (args.n_tokens == 0 || args.r_max == 0 || args.out_features == 0) return nullptr;
  if (args.r_max > kMaxRank) return "lora expand: r_max exceeds 64";
  if (args.map.n_slots <= 0) return "lora expand: SlotMap.n_slots not set (every slot would read as none)";
  auto s = static_cast<cudaStream_t>(stream);
  return args.type == ElementType::Float16 ? expand<__half>(args, s) : expand<__nv_bfloat16>(args, s);
}

}  // namespace mnemo::lora_cuda
