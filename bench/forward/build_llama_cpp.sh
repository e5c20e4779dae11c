#!/usr/bin/env bash
# Builds llama.cpp's own benchmark tools (llama-bench, llama-batched-bench,
# llama-quantize), CPU only, from the llama.cpp source vendored in the
# llama-cpp-python sdist on PyPI, once: later calls find them cached. Used by
# bench/forward/run.sh --llama-cpp; never by the default test run.
# Prints the directory that holds the tools.
# Usage: bench/forward/build_llama_cpp.sh [VERSION]   (default 0.3.36)
set -euo pipefail
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
version=${1:-0.3.36}
build_dir=${MNEMO_BUILD_DIR:-$root/build}
python=${MNEMO_PYTHON:-$root/.venv/bin/python}
cache=$build_dir/llama_cpp/$version
bin=$cache/build/bin
if [ -x "$bin/llama-bench" ] && [ -x "$bin/llama-batched-bench" ] && [ -x "$bin/llama-quantize" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$cache"
if [ ! -d "$cache/src" ]; then
  echo "llama.cpp: downloading the llama-cpp-python $version sdist from PyPI" >&2
  "$python" -m pip download "llama-cpp-python==$version" --no-binary :all: --no-deps -d "$cache" >&2
  tar xzf "$cache/llama_cpp_python-$version.tar.gz" -C "$cache"
  mv "$cache/llama_cpp_python-$version/vendor/llama.cpp" "$cache/src"
  rm -rf "$cache/llama_cpp_python-$version"
fi
echo "llama.cpp: building llama-bench, llama-batched-bench and llama-quantize (CPU, native; minutes)" >&2
cmake -S "$cache/src" -B "$cache/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=OFF >&2
cmake --build "$cache/build" --target llama-bench llama-batched-bench llama-quantize -j"$(nproc)" >&2
echo "$bin"
