#!/usr/bin/env python3
"""Draws the memory evaluation's chart: one panel per metric, one bar per condition.

Usage: eval_chart.py SUMMARY.json OUT.png   (mnemo eval run calls it)
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(sys.argv) == 2 else 2
    with open(sys.argv[1], encoding="utf-8") as f:
        summary = json.load(f)
    conditions = summary["conditions"]
    names = list(conditions)
    panels = [
        ("recall", "recall (higher is better)", True),
        ("update", "update accuracy (higher is better)", True),
        ("abstention", "abstention (higher is better)", True),
        ("leakage", "leakage (lower is better)", True),
        ("retention_ppl_ratio", "perplexity vs base (lower is better)", False),
        ("prompt_tokens", "prompt tokens per question", False),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (key, title, is_rate) in zip(axes.flat, panels):
        values = [conditions[n].get(key) for n in names]
        shown = [0 if v is None else (100 * v if is_rate else v) for v in values]
        bars = ax.bar(range(len(names)), shown, color=[colors[i % len(colors)] for i in range(len(names))])
        for bar, value in zip(bars, values):
            label = "n/a" if value is None else (f"{100 * value:.0f}%" if is_rate else f"{value:.2f}" if value < 10 else f"{value:.0f}")
            ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=20, fontsize=8)
        if is_rate:
            ax.set_ylim(0, 105)
            ax.set_ylabel("%")
    model = summary.get("model", {}).get("path", "")
    fig.suptitle(
        f"Memory evaluation: {summary.get('n_questions')} questions, {summary.get('n_users')} users\n"
        f"{model.split('/')[-1]}, commit {str(summary.get('commit', ''))[:12]}, {summary.get('date', '')}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
