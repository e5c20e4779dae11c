// bench_lora_kernels: the multi-adapter LoRA CUDA kernels side by side with
// the ways one would otherwise write the op, measured in the same run:
//
//   ours        lora_shrink_out + lora_expand (BGMV kernels), plain launches
//   ours_graph  the same two launches captured once in a CUDA graph, replayed
//   ours_sgmv(_graph)  the segment forms (SGMV), when the distinct adapters'
//               tokens are contiguous: 8 adapters as 8 equal segments, the
//               prefill layout (tokens ≥ 8)
//   gather_bmm  LibTorch: gather each token's A/B (index_select), two bmm's
//   gather_bmm_graph  the same, graph-replayed
//   loop        one GEMM pair per distinct adapter (index_select/index_add_),
//               token groups precomputed outside the timing, as a scheduler would
//   dense       the base layer's GEMM y = x·Wᵀ, for scale
//   copy        a device-to-device copy, for the bandwidth ceiling
//
// Shapes: hidden 2048/4096/8192 (in = out), rank 16 or mixed ranks {8,16,32,64}
// (r_max 64), tokens 1–512, distinct adapters 1/8/64/per-token. The op's
// effective bandwidth counts the bytes it must move at least: x, v (write +
// read), y (read + write) and each distinct adapter's A and B rows up to its
// own rank; "of_copy" is that bandwidth over the copy's.
//
// Writes bench/results/lora_kernels.json (device, commit, date, parameters).
// Without a GPU (or a CUDA build) it says so and exits 0 without results.
//
// Ends with the targets, measured against this run's own baselines:
// decode at hidden 4096, rank 16, 64 tokens each with its own adapter, graph
// replay within 2x of the copy-bandwidth time of its bytes and ≥ 5x faster
// than gather + bmm; prefill (SGMV) at 512 tokens in 8 segments against the
// dense GEMM. Written to the JSON as "targets".
//
//   bench_lora_kernels [--out bench/results/lora_kernels.json] [--quick]
#include "bench/support/run_info.h"
#include "kernels/lora_ops.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#if MNEMO_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace {

#if MNEMO_WITH_CUDA

at::Tensor ints(const std::vector<int32_t>& values) {
  return at::tensor(at::ArrayRef<int32_t>(values), at::TensorOptions().dtype(at::kInt)).clone();
}

// Mean µs per call of `body` over `iterations` back-to-back calls on the
// current stream, best of 3 (CUDA events; the GPU is kept busy, so this is
// throughput including launch overhead when the op is launch-bound).
template <typename F>
double time_us(F&& body, int iterations) {
  for (int i = 0; i < 3; ++i) body();  // warm-up
  double best = 1e30;
  for (int trial = 0; trial < 3; ++trial) {
    at::cuda::CUDAEvent start(cudaEventDefault), stop(cudaEventDefault);
    auto stream = c10::cuda::getCurrentCUDAStream();
    start.record(stream);
    for (int i = 0; i < iterations; ++i) body();
    stop.record(stream);
    stop.synchronize();
    best = std::min<double>(best, start.elapsed_time(stop) * 1e3 / iterations);
  }
  return best;
}

// Captures `body` once on a side stream and times its replays.
template <typename F>
double time_graph_us(F&& body, int iterations) {
  c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool();
  c10::cuda::CUDAStreamGuard guard(stream);
  body();  // warm-up outside the capture
  stream.synchronize();
  at::cuda::CUDAGraph graph;
  graph.capture_begin();
  body();
  graph.capture_end();
  return time_us([&] { graph.replay(); }, iterations);
}

struct Row {
  int64_t hidden, tokens;
  std::string ranks, adapters;
  int64_t distinct;
  std::string method;
  double us, bytes;
};

int run(const std::string& out_path, bool quick) {
  const at::Device device(at::kCUDA);
  const auto* properties = at::cuda::getCurrentDeviceProperties();
  const std::string device_name = properties->name;
  const auto bf16 = at::TensorOptions().device(device).dtype(at::kBFloat16);
  const int iterations = quick ? 20 : 100;
  std::mt19937 rng(0);
  at::manual_seed(0);

  // The bandwidth ceiling: 256 MiB device-to-device, bytes read + written.
  double copy_gbs = 0;
  {
    const int64_t bytes = 256ll << 20;
    at::Tensor src = at::empty({bytes}, at::TensorOptions().device(device).dtype(at::kByte));
    at::Tensor dst = at::empty_like(src);
    const double us = time_us([&] { dst.copy_(src); }, 20);
    copy_gbs = 2.0 * bytes / (us * 1e-6) / 1e9;
  }
  std::printf("bench_lora_kernels on %s: device-to-device copy %.0f GB/s (read + write)\n", device_name.c_str(),
              copy_gbs);
  std::printf("%6s %6s %6s %9s %-17s %11s %9s %7s\n", "hidden", "tokens", "ranks", "adapters", "method", "us", "GB/s",
              "of_copy");

  std::vector<Row> rows;
  const std::vector<int64_t> hiddens = quick ? std::vector<int64_t>{4096} : std::vector<int64_t>{2048, 4096, 8192};
  const std::vector<int64_t> token_counts =
      quick ? std::vector<int64_t>{1, 64, 512} : std::vector<int64_t>{1, 8, 16, 64, 128, 256, 512};
  const std::vector<std::string> rank_modes{"16", "mixed"};
  const std::vector<std::string> adapter_modes{"1", "8", "64", "per-token"};

  for (int64_t hidden : hiddens) {
    at::Tensor W = at::randn({hidden, hidden}, bf16) * (1.0 / std::sqrt(static_cast<double>(hidden)));
    for (const std::string& rank_mode : rank_modes) {
      const int64_t r_max = rank_mode == "16" ? 16 : 64;
      const int64_t n_slots = 512;  // enough for per-token at 512 tokens
      std::vector<int32_t> rank_of(n_slots);
      const int32_t mixed[4] = {8, 16, 32, 64};
      for (int64_t s = 0; s < n_slots; ++s) rank_of[s] = rank_mode == "16" ? 16 : mixed[s % 4];
      at::Tensor A = at::randn({n_slots, r_max, hidden}, bf16) * (1.0 / std::sqrt(static_cast<double>(hidden)));
      at::Tensor B = at::randn({n_slots, hidden, r_max}, bf16) * 0.01;
      at::Tensor ranks = ints(rank_of).to(device);
      at::Tensor scales = at::full({n_slots}, 2.0f, at::TensorOptions().device(device).dtype(at::kFloat));
      // The gather+bmm baseline multiplies by r_max columns; zero the padding
      // so it computes the same function.
      for (int64_t s = 0; s < n_slots; ++s) {
        if (rank_of[s] < r_max) {
          A.select(0, s).narrow(0, rank_of[s], r_max - rank_of[s]).zero_();
          B.select(0, s).narrow(1, rank_of[s], r_max - rank_of[s]).zero_();
        }
      }
      for (int64_t tokens : token_counts) {
        at::Tensor x = at::randn({tokens, hidden}, bf16);
        at::Tensor y = at::zeros({tokens, hidden}, bf16);
        at::Tensor v = at::empty({tokens, r_max}, bf16);
        at::Tensor y_dense = at::empty({tokens, hidden}, bf16);
        const double dense_us = time_us([&] { at::matmul_out(y_dense, x, W.t()); }, iterations);
        for (const std::string& adapter_mode : adapter_modes) {
          const int64_t distinct =
              adapter_mode == "per-token" ? tokens : std::min<int64_t>(tokens, std::stoll(adapter_mode));
          if (adapter_mode != "1" && adapter_mode != "per-token" && distinct < std::stoll(adapter_mode)) continue;
          // Distinct adapters drawn from the stack, tokens assigned in shuffled order.
          std::vector<int32_t> pool(n_slots);
          for (int64_t s = 0; s < n_slots; ++s) pool[s] = static_cast<int32_t>(s);
          std::shuffle(pool.begin(), pool.end(), rng);
          std::vector<int32_t> slots(static_cast<size_t>(tokens));
          for (int64_t t = 0; t < tokens; ++t) slots[t] = pool[t % distinct];
          std::shuffle(slots.begin(), slots.end(), rng);
          at::Tensor token_slots = ints(slots).to(device);
          at::Tensor slot_index = token_slots.to(at::kLong);
          at::Tensor token_scales = scales.index_select(0, slot_index).to(at::kBFloat16).unsqueeze(1);

          // Minimal bytes: x, v written + read, y read + written, each
          // distinct adapter's A and B rows up to its own rank.
          double adapter_elements = 0;
          for (int64_t i = 0; i < distinct; ++i) adapter_elements += 2.0 * rank_of[pool[i]] * hidden;
          const double bytes =
              2.0 * (tokens * hidden + 2.0 * tokens * r_max + 2.0 * tokens * hidden + adapter_elements);

          auto ours = [&] {
            mnemo::lora_shrink_out(v, x, A, ranks, token_slots);
            mnemo::lora_expand(y, v, B, ranks, scales, token_slots);
          };
          auto gather_bmm = [&] {
            at::Tensor a = A.index_select(0, slot_index);      // [T, r_max, in]
            at::Tensor b = B.index_select(0, slot_index);      // [T, out, r_max]
            at::Tensor vt = at::bmm(a, x.unsqueeze(2));        // [T, r_max, 1]
            y.add_(at::bmm(b, vt).squeeze(2) * token_scales);  // [T, out]
          };
          // Token groups of the loop baseline, made once outside the timing.
          std::map<int32_t, std::vector<int64_t>> groups;
          for (int64_t t = 0; t < tokens; ++t) groups[slots[t]].push_back(t);
          std::vector<std::pair<int32_t, at::Tensor>> group_index;
          for (auto& [slot, idx] : groups)
            group_index.emplace_back(slot, at::tensor(at::ArrayRef<int64_t>(idx), at::kLong).to(device));
          auto loop = [&] {
            for (auto& [slot, idx] : group_index) {
              const int64_t r = rank_of[slot];
              at::Tensor xs = x.index_select(0, idx);
              at::Tensor vs = at::matmul(xs, A.select(0, slot).narrow(0, 0, r).t());
              y.index_add_(0, idx, at::matmul(vs, B.select(0, slot).narrow(1, 0, r).t()), 2.0);
            }
          };

          struct Method {
            const char* name;
            double us;
          };
          // The segment layout of the same adapters: 8 equal contiguous runs.
          const bool segmented = adapter_mode == "8" && tokens >= 8;
          std::vector<int32_t> starts, seg_slots;
          for (int64_t i = 0; segmented && i <= 8; ++i) starts.push_back(static_cast<int32_t>(tokens * i / 8));
          for (int64_t i = 0; segmented && i < 8; ++i) seg_slots.push_back(pool[i]);
          at::Tensor d_starts = segmented ? ints(starts).to(device) : at::Tensor();
          at::Tensor d_seg_slots = segmented ? ints(seg_slots).to(device) : at::Tensor();
          auto ours_sgmv = [&] {
            mnemo::lora_shrink_segments_out(v, x, A, ranks, d_starts, d_seg_slots);
            mnemo::lora_expand_segments(y, v, B, ranks, scales, d_starts, d_seg_slots);
          };

          std::vector<Method> methods = {
              {"ours", time_us(ours, iterations)},
              {"ours_graph", time_graph_us(ours, iterations)},
              {"gather_bmm", time_us(gather_bmm, iterations)},
              {"gather_bmm_graph", time_graph_us(gather_bmm, iterations)},
              {"loop", time_us(loop, std::max(3, iterations / static_cast<int>(std::max<int64_t>(1, distinct / 8))))},
              {"dense", dense_us},
          };
          if (segmented) {
            methods.push_back({"ours_sgmv", time_us(ours_sgmv, iterations)});
            methods.push_back({"ours_sgmv_graph", time_graph_us(ours_sgmv, iterations)});
          }
          const std::string ranks_label = rank_mode == "16" ? "16" : "mixed";
          for (const Method& m : methods) {
            const double gbs = bytes / (m.us * 1e-6) / 1e9;
            rows.push_back({hidden, tokens, ranks_label, adapter_mode, distinct, m.name, m.us, bytes});
            std::printf("%6lld %6lld %6s %9s %-17s %11.2f %9.1f %6.1f%%\n", static_cast<long long>(hidden),
                        static_cast<long long>(tokens), ranks_label.c_str(), adapter_mode.c_str(), m.name, m.us,
                        std::string(m.name) == "dense" ? 0.0 : gbs,
                        std::string(m.name) == "dense" ? 0.0 : 100.0 * gbs / copy_gbs);
          }
        }
      }
    }
  }

  // The targets, from this run's rows.
  auto find = [&](int64_t hidden, int64_t tokens, const char* adapters, const char* method) -> const Row* {
    for (const Row& r : rows)
      if (r.hidden == hidden && r.tokens == tokens && r.ranks == "16" && r.adapters == adapters && r.method == method)
        return &r;
    return nullptr;
  };
  nlohmann::json targets = nlohmann::json::object();
  const Row* decode = find(4096, 64, "per-token", "ours_graph");
  const Row* gather = find(4096, 64, "per-token", "gather_bmm");
  const Row* gather_graph = find(4096, 64, "per-token", "gather_bmm_graph");
  const Row* prefill = find(4096, 512, "8", "ours_sgmv_graph");
  const Row* prefill_dense = find(4096, 512, "8", "dense");
  if (decode && gather && gather_graph) {
    const double copy_time_us = decode->bytes / (copy_gbs * 1e9) * 1e6;
    const double over_copy = decode->us / copy_time_us;
    const double speedup = std::min(gather->us, gather_graph->us) / decode->us;
    std::printf(
        "\ntarget, decode (hidden 4096, rank 16, 64 tokens, 64 adapters, graph replay): %.2f us = %.2fx the "
        "copy time of its %.0f bytes (%.2f us; target <= 2x: %s); %.1fx faster than gather+bmm (target >= "
        "5x: %s)\n",
        decode->us, over_copy, decode->bytes, copy_time_us, over_copy <= 2.0 ? "met" : "NOT met", speedup,
        speedup >= 5.0 ? "met" : "NOT met");
    targets = {{"decode_us", decode->us},
               {"decode_copy_time_us", copy_time_us},
               {"decode_over_copy", over_copy},
               {"decode_speedup_over_gather_bmm", speedup}};
  }
  if (prefill && prefill_dense) {
    targets["prefill_sgmv_us"] = prefill->us;
    targets["prefill_dense_us"] = prefill_dense->us;
    std::printf(
        "prefill (hidden 4096, rank 16, 512 tokens in 8 segments, graph replay): %.2f us, %.1f%% of the "
        "dense base GEMM's %.2f us\n",
        prefill->us, 100.0 * prefill->us / prefill_dense->us, prefill_dense->us);
  }

  std::ofstream out(out_path);
  if (!out) {
    std::fprintf(stderr, "bench_lora_kernels: cannot write %s (run from the repository root or pass --out)\n",
                 out_path.c_str());
    return 1;
  }
  nlohmann::json document = mnemo::bench::run_info("lora_kernels", device_name);
  document["parameters"] = {
      {"dtype", "bfloat16"},  {"iterations", iterations},       {"layer", "in = out = hidden"},
      {"stacked_slots", 512}, {"mixed_ranks", {8, 16, 32, 64}}, {"statistic", "best of 3 means, us per call"},
      {"copy_gbs", copy_gbs}};
  document["targets"] = targets;
  document["results"] = nlohmann::json::array();
  for (const Row& r : rows) {
    const double gbs = r.bytes / (r.us * 1e-6) / 1e9;
    document["results"].push_back(
        {{"hidden", r.hidden},
         {"tokens", r.tokens},
         {"ranks", r.ranks},
         {"adapters", r.adapters},
         {"distinct", r.distinct},
         {"method", r.method},
         {"us", r.us},
         {"min_bytes", r.bytes},
         // The dense GEMM moves other bytes: no bandwidth for it.
         {"gbs", r.method == "dense" ? nlohmann::json() : nlohmann::json(gbs)},
         {"of_copy", r.method == "dense" ? nlohmann::json() : nlohmann::json(gbs / copy_gbs)}});
  }
  out << document.dump(2) << "\n";
  std::printf("wrote %s\n", out_path.c_str());
  return 0;
}

#endif  // MNEMO_WITH_CUDA

}  // namespace

int main(int argc, char** argv) {
  std::string out_path = "bench/results/lora_kernels.json";
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--out" && i + 1 < argc)
      out_path = argv[++i];
    else if (arg == "--quick")
      quick = true;
    else if (arg == "--help" || arg == "-h") {
      std::cout << "usage: bench_lora_kernels [--out PATH] [--quick]\n"
                   "The LoRA CUDA kernels against gather+bmm, a per-adapter GEMM loop, the dense GEMM and a\n"
                   "device-to-device copy, in one run; writes JSON (default bench/results/lora_kernels.json).\n"
                   "--quick: hidden 4096 and tokens 1/64/512 only.\n";
      return 0;
    } else {
      std::cerr << "usage: bench_lora_kernels [--out PATH] [--quick]\n";
      return 2;
    }
  }
#if MNEMO_WITH_CUDA
  if (!at::hasCUDA()) {
    std::printf("bench_lora_kernels: no CUDA device on this machine; nothing measured, no results written\n");
    return 0;
  }
  return run(out_path, quick);
#else
  (void)quick;
  std::printf("bench_lora_kernels: mnemo was built without CUDA kernels; nothing measured, no results written\n");
  return 0;
#endif
}
