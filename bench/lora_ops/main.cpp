// bench_lora_ops: the CPU multi-adapter LoRA op (kernels/lora_ops.h) against
// the dense base GEMM of the same layer — what the offline/CI engine pays for
// per-user memory on top of the base model.
//
// For a square linear (in = out = hidden, like q_proj/o_proj), rank 16, fp32 and
// bf16: forward time of lora_apply (shrink + expand, tokens grouped by slot)
// with 1, 8 and 32 distinct adapters (tokens assigned to adapters in shuffled
// order, as a decode batch arrives), beside y = x·Wᵀ. Prints a table and
// writes JSON (device, commit, date, parameters, results).
//
//   bench_lora_ops [--out bench/results/lora_ops_cpu.json] [--min-seconds 0.3] [--threads N]
#include "bench/support/run_info.h"
#include "kernels/lora_ops.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace {

// Median of repeated timings (ms); at least 3 repetitions and `min_seconds` in all.
template <typename F>
double time_ms(F&& body, double min_seconds) {
  body();  // warm-up
  std::vector<double> samples;
  double total = 0;
  while (samples.size() < 3 || total < min_seconds) {
    auto start = std::chrono::steady_clock::now();
    body();
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    samples.push_back(seconds * 1e3);
    total += seconds;
    if (samples.size() >= 200) break;
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

at::Tensor ints(const std::vector<int32_t>& values) {
  return at::tensor(at::ArrayRef<int32_t>(values), at::TensorOptions().dtype(at::kInt)).clone();
}

struct Row {
  std::string dtype;
  int64_t hidden, tokens, adapters;
  double lora_ms, dense_ms;
};

}  // namespace

int main(int argc, char** argv) {
  std::string out_path = "bench/results/lora_ops_cpu.json";
  double min_seconds = 0.3;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--out" && i + 1 < argc)
      out_path = argv[++i];
    else if (arg == "--min-seconds" && i + 1 < argc)
      min_seconds = std::atof(argv[++i]);
    else if (arg == "--threads" && i + 1 < argc)
      at::set_num_threads(std::atoi(argv[++i]));  // 1 gives steadier numbers on a shared machine
    else if (arg == "--help" || arg == "-h") {
      std::cout << "usage: bench_lora_ops [--out PATH] [--min-seconds S] [--threads N]\n"
                   "The CPU multi-adapter LoRA op against the dense GEMM of the same layer (fp32 and bf16,\n"
                   "1/8/32 adapters); writes JSON (default bench/results/lora_ops_cpu.json).\n";
      return 0;
    } else {
      std::cerr << "usage: bench_lora_ops [--out PATH] [--min-seconds S] [--threads N]\n";
      return 2;
    }
  }
  at::manual_seed(0);
  std::mt19937 rng(0);
  const int64_t rank = 16, n_slots = 32;
  const std::vector<int64_t> hiddens{576, 2048}, token_counts{64, 512}, adapter_counts{1, 8, 32};
  std::vector<Row> rows;

  std::printf("bench_lora_ops: %s, %d threads, rank %lld, %lld stacked slots\n", mnemo::bench::cpu_name().c_str(),
              at::get_num_threads(), static_cast<long long>(rank), static_cast<long long>(n_slots));
  std::printf("%-9s %7s %7s %9s %12s %12s %9s\n", "dtype", "hidden", "tokens", "adapters", "lora_ms", "dense_ms",
              "lora/gemm");
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    auto options = at::TensorOptions().dtype(dtype);
    for (int64_t hidden : hiddens) {
      at::Tensor W = (at::randn({hidden, hidden}) / std::sqrt(static_cast<double>(hidden))).to(options);
      at::Tensor A = (at::randn({n_slots, rank, hidden}) / std::sqrt(static_cast<double>(hidden))).to(options);
      at::Tensor B = (at::randn({n_slots, hidden, rank}) * 0.01).to(options);
      at::Tensor ranks = at::full({n_slots}, rank, at::TensorOptions().dtype(at::kInt));
      at::Tensor scales = at::full({n_slots}, 2.0f, at::TensorOptions().dtype(at::kFloat));
      for (int64_t tokens : token_counts) {
        at::Tensor x = at::randn({tokens, hidden}).to(options);
        at::Tensor y = at::zeros({tokens, hidden}, options);
        const double dense_ms = time_ms([&] { at::matmul_out(y, x, W.t()); }, min_seconds);
        for (int64_t adapters : adapter_counts) {
          std::vector<int32_t> slots(static_cast<size_t>(tokens));
          for (int64_t t = 0; t < tokens; ++t) slots[t] = static_cast<int32_t>(t % adapters);
          std::shuffle(slots.begin(), slots.end(), rng);
          at::Tensor token_slots = ints(slots);
          const double lora_ms =
              time_ms([&] { mnemo::lora_apply(y, x, A, B, ranks, scales, token_slots); }, min_seconds);
          rows.push_back({c10::toString(dtype), hidden, tokens, adapters, lora_ms, dense_ms});
          std::printf("%-9s %7lld %7lld %9lld %12.3f %12.3f %9.3f\n", c10::toString(dtype),
                      static_cast<long long>(hidden), static_cast<long long>(tokens), static_cast<long long>(adapters),
                      lora_ms, dense_ms, lora_ms / dense_ms);
        }
      }
    }
  }

  std::ofstream out(out_path);
  if (!out) {
    std::fprintf(stderr, "bench_lora_ops: cannot write %s (run from the repository root or pass --out)\n",
                 out_path.c_str());
    return 1;
  }
  nlohmann::json document = mnemo::bench::run_info("lora_ops_cpu");
  document["parameters"] = {{"threads", at::get_num_threads()},
                            {"rank", rank},
                            {"stacked_slots", n_slots},
                            {"layer", "square linear in = out = hidden"},
                            {"op", "lora_apply (shrink + expand), token slots shuffled"},
                            {"baseline", "at::matmul_out(y, x, W^T)"},
                            {"statistic", "median ms"},
                            {"min_seconds", min_seconds}};
  document["results"] = nlohmann::json::array();
  for (const Row& r : rows)
    document["results"].push_back({{"dtype", r.dtype},
                                   {"hidden", r.hidden},
                                   {"tokens", r.tokens},
                                   {"adapters", r.adapters},
                                   {"lora_ms", r.lora_ms},
                                   {"dense_gemm_ms", r.dense_ms},
                                   {"lora_over_dense", r.lora_ms / r.dense_ms}});
  out << document.dump(2) << "\n";
  std::printf("wrote %s\n", out_path.c_str());
  return 0;
}
