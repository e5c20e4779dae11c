#!/usr/bin/env bash
# The nightly job's throughput on this machine, default model and recipe:
# users/hour of a whole `mnemo train` run into a registry (model loading,
# data building with the augmenter, training, the publish gate, publishing)
# for N generated users, and how its time divides between those phases. Two
# runs side by side on the same users: the job as operators run it (with a
# job directory: per-user records and training checkpoints every
# job.checkpoint_every steps, for resuming after a kill) and the same job
# without one (the baseline: what resumability costs). Writes
# bench/results/train_job.json and prints a table.
# Usage: bench/train_job/run.sh [--users N] [--steps N] [--threads N] [--config FILE]
set -euo pipefail
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
users=4 steps=0 threads=2 config=configs/train.yaml
while (($#)); do
  case $1 in
    --users) users=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
build_dir=${MNEMO_BUILD_DIR:-build}
if [ -z "${MNEMO_SKIP_BUILD:-}" ]; then
  scripts/setup.sh
  MNEMO_BUILD_DIR=$build_dir scripts/build.sh mnemo >/dev/null
fi
work=$build_dir/bench_train_job
rm -rf "$work"
mkdir -p "$work"
"$build_dir/mnemo" eval generate --users "$users" --seed 1 --out "$work/users" >/dev/null
step_flag=()
((steps > 0)) && step_flag=(--steps "$steps")

run_variant() {  # NAME [EXTRA FLAGS…]: one whole job; prints its JSON row
  local name=$1
  shift
  local started ended
  started=$(date +%s.%N)
  OMP_NUM_THREADS=$threads "$build_dir/mnemo" train --logs "$work/users/logs" --registry "$work/$name/registry" \
    --config "$config" "${step_flag[@]}" --summary "$work/$name/summary.json" "$@" > "$work/$name.log" 2>&1
  ended=$(date +%s.%N)
  .venv/bin/python - "$name" "$work/$name/summary.json" "$started" "$ended" <<'PY'
import json, sys
name, path, started, ended = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
summary = json.load(open(path))
wall = ended - started
s = summary["seconds"]
users = sum(1 for u in summary["users"] if u["state"] in ("published", "rejected"))
steps = max((u.get("metrics", {}).get("steps", 0) for u in summary["users"]), default=0)
row = {"workload": name, "users": users, "steps": steps, "wall_seconds": round(wall, 1),
       "users_per_hour": round(users / wall * 3600, 1), "seconds_per_user": round(wall / max(users, 1), 1)}
for phase in ("load", "data", "train", "gate", "publish"):
    row[f"{phase}_seconds"] = round(s.get(phase, 0.0), 1)
    row[f"{phase}_share"] = round(s.get(phase, 0.0) / wall, 3)
row["other_seconds"] = round(wall - sum(s.get(p, 0.0) for p in ("load", "data", "train", "gate", "publish")), 1)
print(json.dumps(row))
PY
}

mkdir -p "$work/job" "$work/no_job_dir"
{
  run_variant job --job-dir "$work/job/state"
  run_variant no_job_dir
} | .venv/bin/python bench/write_results.py --name train_job --param model=SmolLM2-135M-Instruct \
    --param users="$users" --param threads="$threads" --param config="$config" \
    --param steps="$([ "$steps" -gt 0 ] && echo "$steps" || echo "the config's")" \
    --param baseline="the same job without --job-dir (no records, no checkpoints)" \
    --columns workload,users,wall_seconds,users_per_hour,load_seconds,data_seconds,train_seconds,gate_seconds,publish_seconds
