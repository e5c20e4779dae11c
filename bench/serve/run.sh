#!/usr/bin/env bash
# Load test of `mnemo serve` over real HTTP (bench/serve/load.py): 1, 8 and 64
# concurrent streaming clients, each its own user and adapter, and all on the
# base model, in one run; then 1,000 connections held open at once against a
# server with a queue of 16 (every answer must be a 200 or a 429); writes
# bench/results/serve.json and prints a table.
# Usage: bench/serve/run.sh [--model PATH] [extra load.py args]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
model="" extra=()
while (($#)); do
  case $1 in
    --model) model=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done
build_dir=${MNEMO_BUILD_DIR:-build}
if [ -z "${MNEMO_SKIP_BUILD:-}" ]; then
  scripts/setup.sh
  MNEMO_BUILD_DIR=$build_dir scripts/build.sh mnemo >/dev/null
fi
[ -n "$model" ] || model=$("$build_dir/mnemo" model default-path)
.venv/bin/python bench/serve/load.py --mnemo "$build_dir/mnemo" --model "$model" "${extra[@]}" |
  .venv/bin/python bench/write_results.py --name serve --param model="$(basename "$model")" \
    --param transport="HTTP/1.1, server-sent events, httpx async clients" --param adapter_rank=16 \
    --param adapter_modules=q,k,v,o,gate,up,down --param baseline="the same clients on the base model" \
    --param held_connections_server="queue 16, the same registry; each connection sends one request once all are open" \
    --columns clients,users,requests,errors,ok,rejected_429,requests_per_s,output_tokens_per_s,ttft_ms_p50,ttft_ms_p99,itl_ms_p50,itl_ms_p99
