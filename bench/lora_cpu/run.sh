#!/usr/bin/env bash
# Whole-model forward time (prefill and one decode step) of a batch of 32
# sequences with 1, 8 and 32 distinct rank-16 LoRA adapters (all seven
# modules) against the same batch on the base model alone, in one run; writes
# bench/results/lora_cpu.json and prints a table.
# Usage: bench/lora_cpu/run.sh [--model DIR] [--threads N] [--dtype float32|bfloat16] [extra bench args]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
model="" threads=1 dtype=float32 extra=()
while (($#)); do
  case $1 in
    --model) model=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done
build_dir=${MNEMO_BUILD_DIR:-build}
if [ -z "${MNEMO_SKIP_BUILD:-}" ]; then
  scripts/setup.sh
  MNEMO_BUILD_DIR=$build_dir scripts/build.sh bench_lora_cpu >/dev/null
fi
if [ -z "$model" ]; then
  model=$build_dir/bench_models/llama_512x8
  [ -f "$model/config.json" ] || .venv/bin/python bench/forward/make_bench_model.py --out "$model"
fi
"$build_dir/bench/bench_lora_cpu" --model "$model" --threads "$threads" --dtype "$dtype" "${extra[@]}" |
  .venv/bin/python bench/write_results.py --name "lora_cpu" --param model="$(basename "$model")" \
    --param threads="$threads" --param dtype="$dtype" --param adapter_rank=16 \
    --param adapter_modules=q,k,v,o,gate,up,down --param baseline="same batch, no LoRA hook" \
    --param statistic="median ms" \
    --columns workload,adapters,cpu_decode_path,batch,tokens,ms,tokens_per_s,over_base
