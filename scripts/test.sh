#!/usr/bin/env bash
# The one test command: installs what is missing, builds, and runs ctest
# (every label but `slow`; pass `-L slow` or any ctest flags to change that).
# Exits non-zero on any failure.
# Usage: scripts/test.sh [CTEST ARGS…]   e.g. -L slow, -R forward_parity
set -euo pipefail
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^set -euo pipefail/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; }
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
