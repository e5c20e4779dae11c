#!/usr/bin/env bash
# The ablation that chooses the trainer's defaults: the same generated users
# trained with each recipe variant (configs/train.yaml with some keys
# changed) and asked their questions with the `adapter` condition of
# `mnemo eval`, one variant after another in one run. Tune on the dev split
# (the default); report on the test split. Writes
# bench/results/memory_ablation_<split>.json (and .png) and prints a table.
# Usage: bench/memory_ablation/run.sh [--split dev|test] [--users N] [--seed N]
#          [--variants a,b,...] [--threads N] [--resume] [--results NAME]
# --results names the JSON and chart in bench/results/ (default
# memory_ablation_<split>).
# --resume keeps the rows of variants an earlier, interrupted run of the same
# work directory measured (each row records when it was measured).
# Variants: conversations (the user's conversations only), statements (+ the
# statements said back under probes), augmented (+ the generator's rewrites
# and question/answer pairs), default (+ abstention and KL retention: the
# shipped recipe), all_modules (the default on all seven modules),
# attention (the default on q, k, v, o only), no_retention (the default
# without the KL anchor), no_implicit_updates (the default without the
# generator's kinds), abstention_x2 (twice the abstention probes and
# weight), change_x2 / no_change_weight (statements that replaced an older
# value, and the pairs written from them, drawn twice as often as the
# default draws them / as often as the others), steps_x2 (twice the training
# steps), faithful / own_words / ask_like_abstention / statements_abstention
# / subject_first (data.augment_faithful, abstention_own_words,
# ask_like_abstention, abstention_statements, abstention_subject_first
# on), name_probes (name_probes_weight as abstention_weight), distillation (+ context
# distillation), replay (+ cross-entropy on the base's own answers beside
# the KL, replay_loss 1), rank8 / rank32 (LoRA rank 8 or 32, alpha twice the
# rank so the scale stays 2). A variant joins others with "+"
# (steps_x2+abstention_x2).
set -euo pipefail
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
split=dev users=6 seed="" threads=2 resume=0 results=""
variants=conversations,statements,augmented,default,all_modules
while (($#)); do
  case $1 in
    --split) split=$2; shift 2 ;;
    --users) users=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --variants) variants=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --resume) resume=1; shift ;;
    --results) results=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$results" ] || results=memory_ablation_$split
[ -n "$seed" ] || seed=$([ "$split" = test ] && echo 1 || echo 2)
build_dir=${MNEMO_BUILD_DIR:-build}
if [ -z "${MNEMO_SKIP_BUILD:-}" ]; then
  scripts/setup.sh
  MNEMO_BUILD_DIR=$build_dir scripts/build.sh mnemo >/dev/null
fi
work=${MNEMO_ABLATION_DIR:-$build_dir/bench_memory_ablation}
mkdir -p "$work"
"$build_dir/mnemo" eval generate --users 24 --seed "$seed" --split "$split" --out "$work/users" >/dev/null
user_list=$(seq -f 'user%02g' 1 "$users" | paste -sd,)

variant_config() {  # NAME OUT: configs/train.yaml with the variant's keys changed
  .venv/bin/python - "$1" "$2" <<'PY'
import sys, yaml
name, out = sys.argv[1], sys.argv[2]
config = yaml.safe_load(open("configs/train.yaml"))
data, adapter = config["data"], config["adapter"]
parts = {"conversations": False, "statements": False, "augmentation": False, "abstention": False, "retention": False}
for name in name.split("+"):
    if name == "conversations":
        data.update(parts, conversations=True)
    elif name == "statements":
        data.update(parts, conversations=True, statements=True)
    elif name == "augmented":
        data.update(parts, conversations=True, statements=True, augmentation=True)
    elif name == "all_modules":
        adapter["target_modules"] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    elif name == "attention":
        adapter["target_modules"] = ["q_proj", "k_proj", "v_proj", "o_proj"]
    elif name == "no_retention":
        data["retention"] = False
    elif name == "no_implicit_updates":
        data["implicit_updates"] = False
    elif name == "abstention_x2":
        data["abstention_probes"] *= 2
        data["abstention_weight"] *= 2
    elif name == "change_x2":
        data["change_weight"] *= 2
    elif name == "no_change_weight":
        data["change_weight"] = 1.0
    elif name == "steps_x2":
        config["schedule"]["steps"] *= 2
    elif name == "faithful":
        data["augment_faithful"] = True
    elif name == "own_words":
        data["abstention_own_words"] = True
    elif name == "statements_abstention":
        data["abstention_statements"] = True
    elif name == "ask_like_abstention":
        data["ask_like_abstention"] = True
    elif name == "subject_first":
        data["abstention_subject_first"] = True
    elif name == "name_probes":
        data["name_probes_weight"] = data["abstention_weight"]
    elif name == "distillation":
        data["distillation"] = True
    elif name == "replay":
        data["replay_loss"] = 1.0
    elif name in ("rank8", "rank32"):
        adapter["rank"] = int(name[4:])
        adapter["alpha"] = 2 * adapter["rank"]
    elif name != "default":
        sys.exit(f"unknown variant {name}")
if not data["retention"]:
    config["schedule"]["retention_per_step"] = 0
yaml.safe_dump(config, open(out, "w"), sort_keys=False)
PY
}

run_variant() {  # NAME: train, evaluate; prints its JSON row
  local name=$1 dir=$work/$1
  rm -rf "$dir"
  mkdir -p "$dir"
  variant_config "$name" "$dir/train.yaml"
  local started ended
  started=$(date +%s.%N)
  OMP_NUM_THREADS=$threads "$build_dir/mnemo" train --logs "$work/users/logs" --users "$user_list" \
    --out "$dir/adapters" --config "$dir/train.yaml" --summary "$dir/train_summary.json" > "$dir/train.log" 2>&1
  ended=$(date +%s.%N)
  OMP_NUM_THREADS=$threads "$build_dir/mnemo" eval run --logs "$work/users/logs" \
    --questions "$work/users/questions.jsonl" --users "$user_list" --conditions adapter \
    --adapters "$dir/adapters" --out "$dir/eval" --no-chart > "$dir/eval.log" 2>&1
  .venv/bin/python - "$name" "$dir" "$started" "$ended" "$users" <<'PY'
import datetime, json, sys
name, d, started, ended, users = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
c = json.load(open(f"{d}/eval/summary.json"))["conditions"]["adapter"]
config = open(f"{d}/train.yaml").read()
row = {"variant": name, "users": users, "questions": sum(v for k, v in c["n"].items() if k != "truncated_prompts"),
       "recall": round(c["recall"], 3), "update": round(c["update"], 3), "abstention": round(c["abstention"], 3),
       "leakage": round(c["leakage"], 3), "perplexity_ratio": round(c["retention_ppl_ratio"], 3),
       "train_seconds_per_user": round((float(ended) - float(started)) / users, 1),
       "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "config": config}
print(json.dumps(row))
PY
}

# Rows are kept as they come, so a run cut short still shows what it measured.
[ "$resume" = 1 ] && [ -f "$work/rows.jsonl" ] || : > "$work/rows.jsonl"
for name in ${variants//,/ }; do
  if grep -q "\"variant\": \"$name\"" "$work/rows.jsonl"; then
    echo "ablation: $name (kept from the earlier run)" >&2
    grep "\"variant\": \"$name\"" "$work/rows.jsonl"
    continue
  fi
  echo "ablation: $name" >&2
  run_variant "$name" | tee -a "$work/rows.jsonl"
done | .venv/bin/python bench/write_results.py --name "$results" --param model=SmolLM2-135M-Instruct \
    --param split="$split" --param seed="$seed" --param users="$users" --param threads="$threads" \
    --param condition="adapter (the user's adapter, the question alone)" \
    --param baseline="the variants are each other's baselines; none/context/bm25 in bench/results/memory_eval*.json" \
    --columns variant,recall,update,abstention,leakage,perplexity_ratio,train_seconds_per_user
.venv/bin/python bench/memory_ablation/chart.py "bench/results/$results.json" "bench/results/$results.png"
