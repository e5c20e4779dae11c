// Private: the plain-C++ launchers of the LoRA CUDA kernels (lora_cuda.cu).
//
// Raw pointers and sizes only, so the .cu never parses LibTorch; the tensor
// checks live in lora_dispatch.cpp. Strides are in elements. All pointers are
// device pointers; the launch is asynchronous on `stream` (a cudaStream_t), it
// allocates nothing and never synchronizes, so it can be captured in a graph.
#pragma once

#include <cstdint>

namespace mnemo::lora_cuda {

enum class ElementType : int { BFloat16 = 0, Float16 = 1 };

// Which token uses which slot: token_slots (BGMV) when non-null, else segments
// (SGMV): seg_starts [n_segments + 1], seg_slots [n_segments]. A slot value
// outside [0, n_slots) means no adapter (no host check is possible in a kernel).
struct SlotMap {
  const int32_t* token_slots = nullptr;
  const int32_t* seg_starts = nullptr;
  const int32_t* seg_slots = nullptr;
  int64_t n_segments = 0;
  int64_t n_slots = 0;  // slots in the stacks
};

struct ShrinkArgs {
  const void* x = nullptr;  // [n_tokens, in_features], row stride x_stride, unit column stride
  int64_t x_stride = 0;
  const void* A = nullptr;  // [n_slots, r_max, in_features], contiguous
  void* v = nullptr;        // [n_tokens, r_max], row stride v_stride, unit column stride
  int64_t v_stride = 0;
  const int32_t* ranks = nullptr;  // [n_slots]
  SlotMap map;
  int64_t n_tokens = 0, in_features = 0, r_max = 0;
  ElementType type = ElementType::BFloat16;
};

struct ExpandArgs {
  void* y = nullptr;  // [n_tokens, out_features], row stride y_stride, unit column stride
  int64_t y_stride = 0;
  const void* v = nullptr;  // [n_tokens, r_max], row stride v_stride, unit column stride
  int64_t v_stride = 0;
  const void* B = nullptr;  // [n_slots, out_features, r_max], contiguous
  const int32_t* ranks = nullptr;  // [n_slots]
  const float* scales = nullptr;   // [n_slots]
  SlotMap map;
  int64_t n_tokens = 0, out_features = 0, r_max = 0;
  ElementType type = ElementType::BFloat16;
};

// nullptr on success, else the CUDA error string of the launch.
const char* launch_lora_shrink(const ShrinkArgs& args, void* stream);
const char* launch_lora_expand(const ExpandArgs& args, void* stream);

}  // namespace mnemo::lora_cuda
