"""python3 -m report SOURCE OUT_DIR [--no-plots] [--seeds RECORDS] [--samples DIR] [--title T] [--note N]
(with scripts/ on PYTHONPATH) — the report of `bytelm experiment report`.

SOURCE is the results.json that src/experiment/report.cpp gathers, or an experiment's records directory
(plan.json, runs/*/record.json ...: records.py reads it). --seeds names the records of a seed check: their
spread sets the noise band (noise.py) and their MEGABYTE-vs-Transformer pairs give that claim over seeds.
--samples copies the pictures and sounds of a directory into OUT_DIR/samples and shows them.
Writes OUT_DIR/README.md and OUT_DIR/index.html (self-contained apart from the PNGs and samples beside it):
a summary table first (claim, the paper's number, ours, verdict, distance to the paper's scale) with the
gaps per finding and, where a comparison was measured at several budgets, its gap against the budget, then the
findings with their caveats (caveats.py), BLT's training FLOPs with its entropy model, the figures (plots.py)
and the tables (tables.py). Every number comes from a record.
"""
import json
import os
import shutil
import sys

from . import tables as T
from .caveats import blt_accounting
from .common import get, sci
from .findings import findings, fixed_noise
from .noise import from_seed_runs
from .page import render
from .records import attach_from_source, gather, steps_and_warmup
from .summary import rows as summary_rows, scale_lines


BPE_FLAG = ("flag 'BPE: other eval protocol': BPE is scored over non-overlapping token windows, the byte models "
            "with sliding windows (stride half the context), which gives each scored byte more context and favours "
            "the byte models; re-scoring BPE the same way needs its checkpoint, which is not in the records")
SUMMARY_PICS = ("gaps.png", "gap_vs_budget.png")  # shown under the summary table, not among the figures
FLAGS = ["flag 'warm-up > 10%': a run warmed up for more than 10% of its steps (trainer.json; the share per run "
         "is in the schedules table), so it spent much of a short schedule at a low learning rate; every verdict "
         "using it carries the flag (generation speed excepted)",
         "flag 'undertrained': a run scores worse than every general-purpose compressor on its data while the "
         "run it is compared with does not",
         BPE_FLAG,
         "flag 'entropy model counted': BLT-entropy's budget with its entropy model's training and forward passes "
         "(see 'BLT's training FLOPs with its entropy model') no longer matches the other run's within 10%",
         "paper's scale / ours: the paper's training FLOPs and parameters over ours (the papers' sizes are "
         "listed under 'Distance to the papers' scale')"]


def parse(argv):
    opts, pos, i = {"plots": True}, [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--no-plots":
            opts["plots"] = False
        elif a in ("--seeds", "--samples", "--title", "--note") and i + 1 < len(argv):
            opts[a[2:]] = argv[i + 1]
            i += 1
        else:
            pos.append(a)
        i += 1
    if len(pos) != 2:
        sys.exit("usage: python3 -m report SOURCE(results.json or records dir) OUT_DIR [--no-plots] "
                 "[--seeds RECORDS] [--samples DIR] [--title T] [--note N]")
    return pos[0], pos[1], opts


def load(source, opts):
    if os.path.isdir(source):
        res = gather(source)
    else:
        with open(source) as f:
            res = attach_from_source(json.load(f))
    for k in ("title", "note"):
        if opts.get(k):
            res[k] = opts[k]
    if opts.get("seeds"):
        seed_runs = gather(opts["seeds"])["runs"]
        res["seed_runs"], res["seeds_dir"] = seed_runs, opts["seeds"]
        res["noise"] = from_seed_runs(seed_runs, opts["seeds"])
    else:  # a plan that repeats its own entries with other seeds sets its own band
        res["noise"] = from_seed_runs(res["runs"], "this plan's entries trained from several seeds")
    return res


def rel(out_dir, path):
    """path as seen from out_dir (how the report's text names the records)."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(out_dir)) if path else "-"


def samples(opts, out_dir):
    src = opts.get("samples")
    if not src:
        return []
    os.makedirs(os.path.join(out_dir, "samples"), exist_ok=True)
    out = []
    for f in sorted(os.listdir(src)):
        if f.endswith((".png", ".wav")):
            shutil.copyfile(os.path.join(src, f), os.path.join(out_dir, "samples", f))
            out.append("samples/" + f)
    return out


def name(path):
    return os.path.splitext(os.path.basename(path))[0]


def flag_notes(found):
    """FLAGS, the BPE protocol's only where a finding carries it (newer records score BPE with sliding windows)."""
    bpe = any("BPE: other eval protocol" in f["status"] for f in found)
    return [x for x in FLAGS if x != BPE_FLAG or bpe]


def left_open(found, res):
    """What the records cannot settle (needs training or evaluation again)."""
    flags = " ".join(f["status"] for f in found)
    out = []
    if "BPE: other eval protocol" in flags:
        out.append("BPE scored with sliding windows like the byte models (needs the BPE checkpoint)")
    if "warm-up" in flags:
        share = lambda r: (lambda s, w: w / s if s and w is not None else 0)(*steps_and_warmup(r))
        worst = max(res["runs"], key=share)
        out.append(f"the flagged runs trained again with a warm-up of at most 10% of their steps ({worst['name']} "
                   f"above all: {100 * share(worst):.0f}%)")
    if blt_accounting(res):
        out.append("BLT-entropy and BPE at equal FLOPs with the entropy model counted; a BLT without hash n-gram "
                   "embeddings, to tell the n-grams' share of BLT's lead from patching's")
    kinds = set((res.get("noise") or fixed_noise).by_kind)
    missing = sorted({r["data"] for r in res["runs"]} - kinds)
    if missing:
        out.append(f"seeds for {', '.join(missing)} (their noise band is borrowed from other kinds)")
    out.append("budgets and contexts near the papers' (1e18+ FLOPs, 8k+ bytes) for the claims that need them")
    return out


def sections(res, found, noise, pics, media, out_dir):
    runs = res["runs"]
    comp = res.get("compressors", [])
    acct = blt_accounting(res)
    kinds = sorted({r["data"] for r in runs if r["model"] != "entropy"})
    src = rel(out_dir, res.get("source_dir"))
    doc = [("h2", "Findings"), ("h3", "Summary"),
           ("p", "Verdicts on the papers' claims. Ours: the claimed winner's lead (> 0: the claim holds; bpb unless "
                 "marked), with min..max over seeds where seeds exist. Noise band: " + noise.describe() + "."),
           ("ul", flag_notes(found)),
           ("table", T.table(["claim", "paper", "ours", "verdict", "flags", "paper's scale / ours"],
                             summary_rows(found))),
           ("h3", "Distance to the papers' scale"), ("ul", scale_lines(res))]
    doc += [("img", n, c) for p in SUMMARY_PICS for n, c in pics if n == p]
    doc += [("h3", "Each finding, with its numbers"), ("findings", found)]
    if acct:
        doc += [("h2", "BLT's training FLOPs with its entropy model"),
                ("p", "The entropy model is trained once (its own run record's training FLOPs) and runs forward once "
                      "over every byte BLT trains on (its forward FLOPs per byte x the BLT run's bytes trained; "
                      "no backward pass). BLT's own count leaves both out."),
                ("table", T.accounting_table(res))]
    doc += [("h2", "Figures")] + [("img", n, c) for n, c in pics if n not in SUMMARY_PICS]
    if media:
        doc += [("h2", "Samples"), ("p", "Images: 8 held-out 16x16 images (left) and the model's completions of "
                                         "their bottom halves (right). Audio: 8 kHz, 8-bit; sampled at temperature 1.")]
        doc += [("audio", m, f"{name(m)}: 1 s of held-out speech, then 2 s written by {name(m)}") if m.endswith(".wav")
                else ("img", m, f"{name(m)}: held-out images (left), their bottom halves written by {name(m)} (right)")
                for m in media]
    doc += [("h2", "Runs per data kind (with the compressors on the same held-out bytes)")]
    for k in kinds:
        doc += [("h3", k), ("table", T.run_table(runs, comp, k, acct))]
    noise_t, cute_t = T.robustness_tables(res.get("robustness", []))
    doc += [("h2", "Entropy models"), ("table", T.entropy_table(runs)),
            ("h2", "Schedules (warm-up share from trainer.json)"), ("table", T.schedule_table(runs)),
            ("h2", "BLT threshold sweep at inference"), ("table", T.sweep_table(runs)),
            ("h2", "Generation speed"), ("table", T.generation_table(runs)),
            ("h2", "Robustness: noised text"), ("table", noise_t),
            ("h2", "Robustness: CUTE-like character tasks (few-shot)"), ("table", cute_t),
            ("h2", "Left open (needs training or evaluation again)"), ("ul", left_open(found, res)),
            ("h2", "Provenance"),
            ("p", f"Records: {src} (plan.json, runs/*/record.json, runs/*/train/trainer.json and metrics.jsonl, "
                  f"compressors.json, robustness/*.json)" + (f"; seed records: {rel(out_dir, res['seeds_dir'])}"
                                                             if res.get("seeds_dir") else "") +
                  f". Training FLOPs of every run together: {sci(sum(get(r, 'training', 'flops', default=0) for r in runs))}."),
            ("table", T.provenance_table(runs))]
    return doc


def main():
    source, out_dir, opts = parse(sys.argv[1:])
    os.makedirs(out_dir, exist_ok=True)
    res = load(source, opts)
    if res.get("seeds_dir"):
        res["noise"].source = rel(out_dir, res["seeds_dir"])  # named as seen from the report
    noise = res.get("noise") or fixed_noise
    found = findings(res)
    pics = []
    if opts["plots"]:
        from .plots import plots
        pics = plots(res, found, noise, out_dir)
    media = samples(opts, out_dir)
    title = res.get("title") or f"bytelm experiment: {res['plan'].get('name', 'plan')}"
    render(title, res.get("note"), sections(res, found, noise, pics, media, out_dir), out_dir)


if __name__ == "__main__":
    main()
