#!/usr/bin/env bash
# The one test command: installs what is missing, builds, and runs ctest
# (every label but `slow`; pass `-L slow` or any ctest flags to change that).
# Exits non-zero on any failure.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
start=$(date +%s)
scripts/setup.sh
scripts/build.sh
build_dir=${MNEMO_BUILD_DIR:-build}
if (($#)); then
  ctest --test-dir "$build_dir" --output-on-failure "$@"
else
  ctest --test-dir "$build_dir" --output-on-failure -LE slow -j2
fi
echo "test.sh: done in $(( $(date +%s) - start )) s"
