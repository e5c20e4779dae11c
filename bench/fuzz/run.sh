#!/usr/bin/env bash
# Fuzzes every parser (tests/fuzz) with libFuzzer under AddressSanitizer and
# UndefinedBehaviorSanitizer, and writes what it did per target (executions,
# executions per second, corpus size, coverage features, crashes) to
# bench/results/fuzz.json. Builds the clang fuzz build in build-fuzz/ first
# (configured once; incremental after), seeds each corpus with
# bench/fuzz/make_corpus.py from the reference data, and runs two targets at a
# time. A crash leaves its input in build-fuzz/fuzz-work/<target>/: fix it and
# keep it in tests/fuzz/regressions/<target>/ (the default test run replays it).
# Usage: bench/fuzz/run.sh [--runs N] [--max-seconds S] [--smoke] [TARGET…]
#   --runs N         executions per target (default 1000000)
#   --max-seconds S  stop a target after S seconds if N is not reached (default 300)
#   --smoke          a few seconds per target, no results file (the `slow` ctest)
set -euo pipefail
[[ ${1:-} == -h || ${1:-} == --help ]] && { sed -n '2,/^set -euo pipefail/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
runs=1000000 max_seconds=300 smoke=0 targets=()
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --max-seconds) max_seconds=$2; shift 2 ;;
    --smoke) smoke=1 runs=100000000 max_seconds=5; shift ;;
    *) targets+=("$1"); shift ;;
  esac
done
build=${MNEMO_FUZZ_BUILD_DIR:-build-fuzz}
reference=${MNEMO_REFERENCE_DIR:-build/reference}
if [ ! -f "$build/build.ninja" ]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMNEMO_FUZZ=ON \
    -DMNEMO_DISABLE_CUDA=ON
fi
echo "fuzz: building the fuzz programs in $build (clang, ASan, UBSan)"
cmake --build "$build" -j"$(nproc)" --target fuzz_targets
if ((${#targets[@]} == 0)); then
  for program in "$build"/tests/fuzz/fuzz_*; do targets+=("$(basename "$program" | sed 's/^fuzz_//')"); done
fi
mkdir -p "$build/fuzz-work"
work=$(cd "$build/fuzz-work" && pwd)
[ -d "$reference" ] && reference=$(cd "$reference" && pwd)
python_bin=${MNEMO_PYTHON:-.venv/bin/python}
[ -x "$python_bin" ] || python_bin=python3
"$python_bin" bench/fuzz/make_corpus.py --out "$work/seeds" $([ -d "$reference" ] && echo --reference "$reference")

run_one() {  # TARGET: fuzzes it into $work/TARGET/, log in $work/TARGET.log
  local name=$1 dir="$work/$1"
  mkdir -p "$dir/corpus" "$dir/earlier"
  # Artifacts of earlier runs (kept as regressions already) are not this run's crashes.
  find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) \
    -exec mv -t "$dir/earlier" {} +
  local started=$(date +%s.%N)
  set +e
  ( cd "$dir" && MNEMO_REFERENCE_DIR="$reference" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
      UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      "$root/$build/tests/fuzz/fuzz_$name" corpus "$work/seeds/$name" -runs="$runs" \
      -max_total_time="$max_seconds" -max_len=65536 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
      -artifact_prefix="$dir/" ) > "$work/$name.log" 2>&1
  echo $? > "$work/$name.rc"
  set -e
  echo "$started $(date +%s.%N)" > "$work/$name.time"
  echo "fuzz: $name done (exit $(cat "$work/$name.rc"))"
}
export -f run_one
export work root build reference runs max_seconds
printf '%s\n' "${targets[@]}" | xargs -P 2 -I{} bash -c 'run_one {}'

failed=0
for name in "${targets[@]}"; do
  if [ "$(cat "$work/$name.rc")" != 0 ]; then
    failed=1
    echo "fuzz: $name FAILED: $(grep -m1 -E 'ERROR|violated|runtime error|deadly signal|timeout' "$work/$name.log" || tail -1 "$work/$name.log")"
  fi
done
((smoke)) && exit $failed

"$python_bin" - "$work" "$runs" "$max_seconds" "${targets[@]}" <<'PY'
import datetime, json, os, pathlib, platform, re, subprocess, sys
work, runs, max_seconds, targets = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
rows = []
for name in targets:
    log = (work / f"{name}.log").read_text(errors="replace")
    stat = lambda key: int(m.group(1)) if (m := re.search(rf"stat::{key}:\s+(\d+)", log)) else None
    last = [l for l in log.splitlines() if re.match(r"#\d+\s", l)]
    cov = re.search(r"cov: (\d+) ft: (\d+) corp: (\d+)", last[-1]) if last else None
    started, finished = map(float, (work / f"{name}.time").read_text().split())
    crashes = sorted(p.name for pattern in ("crash-*", "timeout-*", "oom-*") for p in (work / name).glob(pattern)
                     if p.stat().st_mtime >= started)  # this run's only
    rows.append({"target": name, "executions": stat("number_of_executed_units"),
                 "executions_per_s": stat("average_exec_per_sec"), "seconds": round(finished - started, 1),
                 "corpus_size": int(cov.group(3)) if cov else None, "coverage_edges": int(cov.group(1)) if cov else None,
                 "features": int(cov.group(2)) if cov else None, "peak_rss_mb": stat("peak_rss_mb"),
                 "exit_code": int((work / f"{name}.rc").read_text()), "crashes": crashes})
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
result = {"benchmark": "fuzz", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
          "commit": commit, "device": f"{cpu}, {os.cpu_count()} cores (2 targets at a time)",
          "parameters": {"runs": runs, "max_seconds": max_seconds, "max_len": 65536, "sanitizers": "address,undefined",
                         "compiler": "clang", "timeout_s": 10, "rss_limit_mb": 4096},
          "targets": rows}
pathlib.Path("bench/results").mkdir(parents=True, exist_ok=True)
pathlib.Path("bench/results/fuzz.json").write_text(json.dumps(result, indent=2) + "\n")
print(f"{'target':18} {'execs':>10} {'exec/s':>8} {'s':>6} {'corpus':>7} {'edges':>6} {'features':>8}  crashes")
for r in rows:
    print(f"{r['target']:18} {r['executions'] or 0:>10} {r['executions_per_s'] or 0:>8} {r['seconds']:>6} "
          f"{r['corpus_size'] or 0:>7} {r['coverage_edges'] or 0:>6} {r['features'] or 0:>8}  {len(r['crashes'])}")
print("written: bench/results/fuzz.json")
PY
exit $failed
