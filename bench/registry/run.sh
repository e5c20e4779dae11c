#!/usr/bin/env bash
# Runs bench_registry at 100,000 users and writes bench/results/registry.json.
# Usage: bench/registry/run.sh [build-dir] [extra bench_registry flags…]
set -euo pipefail
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^set -euo pipefail/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; }
cd "$(dirname "$0")/../.."
build=${1:-build}
shift || true
cmake --build "$build" --target bench_registry -j2
"$build/bench/bench_registry" --users 100000 --out bench/results/registry.json "$@"
