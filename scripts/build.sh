#!/usr/bin/env bash
# Configures (once) and builds Mnemo into build/ (incremental; ccache when
# present). Arguments, if any, name the targets to build (default: all).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build_dir=${MNEMO_BUILD_DIR:-build}
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build_dir" -j"$(nproc)" ${1:+--target "$@"}
