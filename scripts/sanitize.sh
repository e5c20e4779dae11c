#!/usr/bin/env bash
# Builds the tests with AddressSanitizer and UndefinedBehaviorSanitizer
# (-DMNEMO_SANITIZE=ON, in build-asan/) and runs them: the unit and integration
# labels by default, or the ctest arguments given. Exits non-zero on any test
# failure or sanitizer report. Slow: a second full build, and tests run 2-5x
# slower; run by hand or by the `slow`-labelled ctest `sanitizers`.
# Usage: scripts/sanitize.sh [CTEST ARGS…]   e.g. -R registry
set -euo pipefail
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^set -euo pipefail/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${MNEMO_SANITIZE_BUILD_DIR:-build-asan}
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMNEMO_SANITIZE=ON -DMNEMO_DISABLE_CUDA=ON
fi
if (($#)); then
  cmake --build "$build" -j"$(nproc)"
else
  # Only what the unit and integration tests run: the mnemo binary and their programs.
  targets=(mnemo test_fuzz_regressions)
  for source in tests/unit/test_*.cpp tests/integration/test_*.cpp; do targets+=("$(basename "$source" .cpp)"); done
  cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"
fi
# Leaks are not checked: LibTorch keeps allocations alive until exit by design.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
if (($#)); then
  ctest --test-dir "$build" --output-on-failure "$@"
else
  ctest --test-dir "$build" --output-on-failure -L "unit|integration" -j2
fi
