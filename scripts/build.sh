#!/usr/bin/env bash
# Configures (once) and builds Mnemo into build/ (incremental; ccache when
# present). Arguments, if any, name the targets to build (default: all).
# Usage: scripts/build.sh [TARGET…]   (MNEMO_BUILD_DIR overrides build/)
set -euo pipefail
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^set -euo pipefail/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build_dir=${MNEMO_BUILD_DIR:-build}
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build_dir" -j"$(nproc)" ${1:+--target "$@"}
