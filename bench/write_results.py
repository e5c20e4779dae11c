#!/usr/bin/env python3
"""Collects a benchmark's JSON lines from stdin, adds device, commit, date and
parameters, writes bench/results/<name>.json and prints a table."""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def device_description():
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        gpu = ""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cpu_cores": os.cpu_count(), "gpu": gpu or None}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--param", action="append", default=[], help="key=value, recorded as a parameter")
    parser.add_argument("--columns", default="", help="comma-separated fields for the printed table")
    args = parser.parse_args()
    rows = [json.loads(line) for line in sys.stdin if line.strip()]
    if not rows:
        sys.exit(f"write_results: no result rows on stdin for {args.name}; nothing written")
    # MNEMO_COMMIT when set (a copy of the tree without .git, e.g. on the GPU
    # machine), else HEAD. Dirty: a change to anything but the results
    # themselves (an earlier benchmark of the same session writes there).
    commit = os.environ.get("MNEMO_COMMIT") or subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    status = ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results"]
    dirty = not os.environ.get("MNEMO_COMMIT") and subprocess.run(
        status, cwd=ROOT, capture_output=True, text=True).stdout.strip() != ""
    document = {
        "benchmark": args.name,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit + ("-dirty" if dirty else ""),
        "device": device_description(),
        "parameters": dict(p.split("=", 1) for p in args.param),
        "results": rows,
    }
    out = ROOT / "bench" / "results" / f"{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    columns = [c for c in args.columns.split(",") if c] or sorted({k for row in rows for k in row})
    widths = [max(len(c), *(len(fmt(row.get(c))) for row in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in rows:
        print("  ".join(fmt(row.get(c)).ljust(w) for c, w in zip(columns, widths)))
    print(f"written to {out.relative_to(ROOT)}")


def fmt(value):
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.4g}"
    return "" if value is None else str(value)


if __name__ == "__main__":
    main()
