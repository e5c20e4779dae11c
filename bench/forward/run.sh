#!/usr/bin/env bash
# Prefill and decode tokens/s of mnemo against transformers on the same
# model, same machine, same run, batch 1 and 8; writes
# bench/results/forward_<model>_<device>[_<dtype> unless float32].json and
# prints a table.
# Usage: bench/forward/run.sh [--model DIR|default] [--device cpu|cuda] [--dtype float32|bfloat16] [--rounds N]
#                             [--llama-cpp [--gguf FILE]] [--quant]
# --model default converts the default model (SmolLM2-135M-Instruct GGUF) to
# a Hugging Face directory first, so both sides run the same dequantized weights.
# Each of --rounds (3) runs both implementations in turn (best of 3 inside), so
# a shared machine's drift reaches both; the best prefill and decode are kept.
# --llama-cpp adds llama.cpp's own tools to every round (llama-bench at batch
# 1, llama-batched-bench at 8; built once by bench/forward/build_llama_cpp.sh)
# on the GGUF file (--gguf, or the default model's with --model default),
# dequantized to F32 (the weights mnemo runs) and in the file's own type.
# --quant (CPU) adds mnemo with int8 and int4 weights (--quant of bench_forward)
# and, with --llama-cpp, llama.cpp on the file requantized to Q8_0.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
model="" device=cpu dtype=float32 prompt=128 decode=32 rounds=3 llama_cpp=0 gguf="" quant=0
while (($#)); do
  case $1 in
    --model) model=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --dtype) dtype=$2; shift 2 ;;
    --prompt-tokens) prompt=$2; shift 2 ;;
    --decode-tokens) decode=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --llama-cpp) llama_cpp=1; shift ;;
    --gguf) gguf=$2; shift 2 ;;
    --quant) quant=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
# MNEMO_SKIP_SETUP=1 with MNEMO_BUILD_DIR and MNEMO_PYTHON: use a build and a
# Python made elsewhere (scripts/gpu_build.sh on the GPU machine, offline).
build_dir=${MNEMO_BUILD_DIR:-build}
python=${MNEMO_PYTHON:-.venv/bin/python}
if [ -z "${MNEMO_SKIP_SETUP:-}" ]; then
  scripts/setup.sh
  scripts/build.sh bench_forward mnemo >/dev/null
fi
if [ "$model" = default ]; then
  [ -n "$gguf" ] || gguf=$("$build_dir/mnemo" model default-path)
  model=$build_dir/bench_models/smollm2_135m
  [ -f "$model/config.json" ] || MNEMO_PYTHON=$python "$build_dir/mnemo" model convert default "$model"
elif [ -z "$model" ]; then
  model=$build_dir/bench_models/llama_512x8
  [ -f "$model/config.json" ] || "$python" bench/forward/make_bench_model.py --out "$model"
fi
name=$(basename "$model")
threads=${OMP_NUM_THREADS:-$(nproc)}
if ((llama_cpp)); then
  [ -n "$gguf" ] || { echo "--llama-cpp needs --gguf FILE (or --model default)" >&2; exit 2; }
  llama_bin=$(bench/forward/build_llama_cpp.sh)
  gguf_type=$(basename "$gguf" | sed -n 's/.*\.\([A-Z0-9_]*\)\.gguf$/\1/p')
  gguf_f32=$build_dir/bench_models/$(basename "$gguf" .gguf).F32.gguf
  [ -f "$gguf_f32" ] || "$llama_bin/llama-quantize" --allow-requantize "$gguf" "$gguf_f32" F32 >&2
  llama_weights=("F32 $gguf_f32" "${gguf_type:-file} $gguf")
  if ((quant)) && [ "$gguf_type" != Q8_0 ]; then
    gguf_q8=$build_dir/bench_models/$(basename "$gguf" .gguf).Q8_0.gguf
    [ -f "$gguf_q8" ] || "$llama_bin/llama-quantize" --allow-requantize "$gguf_f32" "$gguf_q8" Q8_0 >&2
    llama_weights+=("Q8_0 $gguf_q8")
  fi
fi
suffix="" results=() failed=0
[ "$dtype" = float32 ] || suffix="_$dtype"
for ((round = 1; round <= rounds; round++)); do
  for batch in 1 8; do
    echo "bench/forward: $name round $round/$rounds batch $batch: mnemo" >&2
    results+=("$("$build_dir/bench/bench_forward" --model "$model" --batch $batch --prompt-tokens $prompt \
                 --decode-tokens $decode --dtype $dtype --device $device)")
    if [ "$device" = cpu ]; then  # the small-batch kernel's baseline: MKL for every product
      results+=("$("$build_dir/bench/bench_forward" --model "$model" --batch $batch --prompt-tokens $prompt \
                   --decode-tokens $decode --dtype $dtype --device $device --no-skinny-linear)")
      if ((quant)); then
        for q in int8 int4; do
          echo "bench/forward: $name round $round/$rounds batch $batch: mnemo $q" >&2
          results+=("$("$build_dir/bench/bench_forward" --model "$model" --batch $batch --prompt-tokens $prompt \
                       --decode-tokens $decode --device $device --quant $q)")
        done
      fi
    fi
    echo "bench/forward: $name round $round/$rounds batch $batch: transformers" >&2
    # Its loading chatter goes to a log; a failure says where and keeps mnemo's rows.
    log=$build_dir/bench_forward_transformers.log
    if row=$("$python" bench/forward/transformers_forward.py --model "$model" --batch $batch \
               --prompt-tokens $prompt --decode-tokens $decode --dtype $dtype --device $device 2>"$log"); then
      results+=("$row")
    else
      echo "bench/forward: transformers failed (see $log)" >&2
      failed=1
    fi
    if ((llama_cpp)); then
      for weights in "${llama_weights[@]}"; do
        set -- $weights
        echo "bench/forward: $name round $round/$rounds batch $batch: llama.cpp $1" >&2
        results+=("$("$python" bench/forward/llama_cpp_forward.py --bin "$llama_bin" --gguf "$2" --label "$1" \
                     --batch $batch --prompt-tokens $prompt --decode-tokens $decode --threads "$threads")")
      done
    fi
  done
done
# One row per (implementation, batch): the best prefill and the best decode
# over the rounds.
printf '%s\n' "${results[@]}" | "$python" -c '
import json, sys
best = {}
for line in sys.stdin:
    row = json.loads(line)
    key = (row["implementation"], row["batch"])
    if key not in best:
        best[key] = dict(row, rounds=0)
    kept = best[key]
    kept["rounds"] += 1
    for phase, tokens in (("prefill", row["batch"] * row["prompt_tokens"]), ("decode", row["batch"] * row["decode_tokens"])):
        kept[phase + "_s"] = min(kept[phase + "_s"], row[phase + "_s"])
        kept[phase + "_tokens_per_s"] = tokens / kept[phase + "_s"]
for key in sorted(best, key=lambda k: (k[1], k[0])):
    print(json.dumps(best[key]))
' | "$python" bench/write_results.py --name "forward_${name}_${device}${suffix}" \
  --param model="$model" --param dtype=$dtype --param prompt_tokens=$prompt --param decode_tokens=$decode \
  --param rounds=$rounds --param statistic="best over rounds x 3 repeats, implementations interleaved" \
  --columns implementation,batch,prefill_tokens_per_s,decode_tokens_per_s
exit $failed
