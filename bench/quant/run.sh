#!/usr/bin/env bash
# What int8/int4 base weights cost and save against float32, on one model,
# in one run: perplexity on the shipped generic text and greedy-token
# agreement on 16 chat prompts (bench_quant), weight bytes, and the peak
# resident memory of a whole `mnemo generate` process per setting, beside
# the floor every mnemo process pays (`mnemo --help`) and a run that fails on
# a bad adapter. Writes bench/results/quant_<model>.json and prints a table.
# Decode speed is bench/forward's (run.sh --quant --llama-cpp).
# Usage: bench/quant/run.sh [--model PATH (default: the default model's GGUF)] [--max-tokens N]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
model="" max_tokens=48
while (($#)); do
  case $1 in
    --model) model=$2; shift 2 ;;
    --max-tokens) max_tokens=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
build_dir=${MNEMO_BUILD_DIR:-build}
python=${MNEMO_PYTHON:-.venv/bin/python}
if [ -z "${MNEMO_SKIP_SETUP:-}" ]; then
  scripts/setup.sh
  scripts/build.sh bench_quant mnemo >/dev/null
fi
[ -n "$model" ] || model=$("$build_dir/mnemo" model default-path)
mnemo=$build_dir/mnemo
# Peak resident set of one command, in MB (its own process tree's maximum).
peak_mb() {
  "$python" -c '
import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)' "$@"
}
rows=()
echo "bench/quant: accuracy (bench_quant)" >&2
while IFS= read -r line; do rows+=("$line"); done < <("$build_dir/bench/bench_quant" --model "$model" --max-tokens "$max_tokens")
prompt="Write a short poem about the sea."
for q in none int8 int4; do
  echo "bench/quant: peak memory of mnemo generate --quant $q" >&2
  rows+=("{\"quant\": \"$q\", \"process\": \"mnemo generate --quant $q --max-tokens 64\", \
\"peak_rss_mb\": $(peak_mb "$mnemo" generate --model "$model" --quant $q --max-tokens 64 --chat --prompt "$prompt")}")
done
rows+=("{\"quant\": \"-\", \"process\": \"mnemo --help (libraries only)\", \"peak_rss_mb\": $(peak_mb "$mnemo" --help)}")
rows+=("{\"quant\": \"-\", \"process\": \"mnemo generate --adapter /nonexistent (fails)\", \
\"peak_rss_mb\": $(peak_mb "$mnemo" generate --model "$model" --adapter /nonexistent --prompt hi)}")
printf '%s\n' "${rows[@]}" | "$python" bench/write_results.py --name "quant_$(basename "$model" .gguf)" \
  --param model="$model" --param max_tokens="$max_tokens" --param threads="${OMP_NUM_THREADS:-$(nproc)}" \
  --columns quant,process,weight_mb,perplexity,completions_equal_to_float32,teacher_forced_token_agreement,peak_rss_mb
