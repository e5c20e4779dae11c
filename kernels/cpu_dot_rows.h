// The inner loop the hand-written CPU linear kernels share
// (skinny_linear_cpu.cpp, quantized_linear_cpu.cpp): dot products of a few
// rows of x with a few rows of W, both float32 and contiguous, compiled for
// AVX-512, AVX2+FMA and the baseline and chosen at load time (GCC function
// multiversioning; MNEMO_CPU_CLONES).
#pragma once

#include <cstdint>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MNEMO_CPU_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
#else
#define MNEMO_CPU_CLONES
#endif

namespace mnemo {

// y[i · ldy + j] = x[i] · w[j] for i < m and j < n, where x holds m rows and w
// n rows, each of k floats one after another. Each row of w is read once and
// multiplied with every row of x (which stays in cache), four rows of w at a
// time with one accumulator each, so the multiply-adds do not wait on one
// another. Sums in float32 in a fixed order.
void dot_rows(const float* x, int64_t m, int64_t k, const float* w, int64_t n, float* y, int64_t ldy);

}  // namespace mnemo
