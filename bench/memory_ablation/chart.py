#!/usr/bin/env python3
"""Draws the ablation's chart (one bar per recipe variant, one panel per
metric) with the memory evaluation's own chart code.

Usage: chart.py bench/results/memory_ablation_<split>.json OUT.png
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) == 2 else 2
    ablation = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    rows = ablation["results"]
    summary = {
        "conditions": {
            row["variant"]: {
                "recall": row["recall"],
                "update": row["update"],
                "abstention": row["abstention"],
                "leakage": row["leakage"],
                "retention_ppl_ratio": row["perplexity_ratio"],
                "prompt_tokens": None,
            }
            for row in rows
        },
        "n_questions": rows[0]["questions"] if rows else 0,
        "n_users": ablation["parameters"].get("users"),
        "model": {"path": ablation["parameters"].get("model", "")},
        "commit": ablation.get("commit", ""),
        "date": ablation.get("date", ""),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(summary, f)
    return subprocess.call([sys.executable, str(ROOT / "scripts" / "eval_chart.py"), f.name, sys.argv[2]])


if __name__ == "__main__":
    sys.exit(main())
