#!/usr/bin/env bash
# Training speed on the default model: seconds per user of Mnemo's trainer for
# N generated users, all in one batch against one after another, and peft +
# transformers training the same adapters on the same sequences with the same
# steps (bench/train/peft_train.py), in one run; writes
# bench/results/train.json and prints a table.
# Usage: bench/train/run.sh [--users N] [--steps N] [--threads N]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
users=8 steps=0 threads=2
while (($#)); do
  case $1 in
    --users) users=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
build_dir=${MNEMO_BUILD_DIR:-build}
if [ -z "${MNEMO_SKIP_BUILD:-}" ]; then
  scripts/setup.sh
  MNEMO_BUILD_DIR=$build_dir scripts/build.sh mnemo bench_train >/dev/null
fi
work=$build_dir/bench_train
mkdir -p "$work"
[ -f "$work/model/config.json" ] || "$build_dir/mnemo" model convert default "$work/model" >/dev/null
{
  "$build_dir/bench/bench_train" --users "$users" --steps "$steps" --threads "$threads" --batches "$work/batches.json"
  .venv/bin/python bench/train/peft_train.py --model "$work/model" --batches "$work/batches.json" --threads "$threads"
} | .venv/bin/python bench/write_results.py --name train --param model=SmolLM2-135M-Instruct \
    --param users="$users" --param threads="$threads" --param recipe="default (trainer/train_config.h)" \
    --param baseline="peft + transformers on the same sequences, one user after another" \
    --columns workload,users,steps,seconds,seconds_per_user,speedup
