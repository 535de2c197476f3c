#!/usr/bin/env python3
"""compare_bench.py LABEL=FILE[,FILE...] ... — `bytelm bench` JSON lines of several builds (or settings) side
by side, as a Markdown table: per config, training bytes/s, MFU and peak RSS, batch-1 generation bytes/s
(cached and, where timed, uncached). Where a label has several files (rounds of the same bench, run
interleaved with the other labels), each figure is the median over the rounds' medians, and the spread
(min-max over rounds) follows in parentheses. The last column is the last label over the first."""
import json
import statistics
import sys


def rows_of(path):
    out = {}
    for line in open(path):
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        if r.get("bench") == "train":
            out[(r["config"], "train bytes/s")] = r["bytes_per_s"]
            out[(r["config"], "MFU %")] = 100 * r["mfu"]
            out[(r["config"], "train RSS MB")] = r["peak_rss_mb"]
        elif r.get("bench") == "generate" and r.get("batch", 1) == 1:
            key = "gen bytes/s" if r.get("cache", True) else "gen bytes/s, no cache"
            out[(r["config"], key)] = r["bytes_per_s"]
    return out


def cell(values):
    if not values:
        return "-"
    mid = statistics.median(values)
    return f"{mid:.1f}" if len(values) == 1 else f"{mid:.1f} ({min(values):.1f}-{max(values):.1f})"


def main():
    labels, runs = [], {}
    for arg in sys.argv[1:]:
        label, files = arg.split("=", 1)
        labels.append(label)
        runs[label] = [rows_of(f) for f in files.split(",")]
    keys = []
    for label in labels:
        for rounds in runs[label]:
            keys += [k for k in rounds if k not in keys]
    print("| config | figure | " + " | ".join(labels) + f" | {labels[-1]} / {labels[0]} |")
    print("|---|---|" + "---|" * (len(labels) + 1))
    for key in keys:
        values = {l: [r[key] for r in runs[l] if key in r] for l in labels}
        first, last = values[labels[0]], values[labels[-1]]
        ratio = f"{statistics.median(last) / statistics.median(first):.2f}" if first and last else "-"
        print(f"| {key[0]} | {key[1]} | " + " | ".join(cell(values[l]) for l in labels) + f" | {ratio} |")


if __name__ == "__main__":
    main()
