"""plots.py — the report's figures (matplotlib, Agg): per data kind the learning curves against bytes seen with
the compressors as labelled lines (the seeds of one plan entry in one colour); the claimed winner's bpb lead
per finding with seed error bars and the noise band; for comparisons measured at several budgets, that lead
against the budget (budget_series has its numbers); bpb against inference FLOPs per byte; BLT's threshold
sweep and MEGABYTE's patch sizes; the bpb increase per noise kind. Each function adds (file name, caption)
pairs to `files`; matplotlib is imported only by plots()."""
import os

from .common import bpb, budget, flops_label, get, seed
from .findings import mb_variant
from .seeds import entry_key
from .tables import label

COLORS = {"transformer": "tab:blue", "megabyte": "tab:orange", "blt": "tab:green", "bpe": "tab:red", "hnet": "tab:purple"}
BPB_IDS = ("M1", "BLT-space", "BLT-static", "BLT-BPE", "SB-small", "T10-cross-patch", "ROB-", "ext", "BLT-global")


def save(fig, out_dir, name, caption, files):
    fig.savefig(os.path.join(out_dir, name), dpi=110, bbox_inches="tight")  # legends beside the axes included
    import matplotlib.pyplot as plt
    plt.close(fig)
    files.append((name, caption))


def bytes_at(run, step):
    """Bytes trained after `step` steps (the run's bytes per step: training.bytes / training.steps)."""
    return step * get(run, "training", "bytes") / get(run, "training", "steps")


def entry_of(r):
    """The run's plan entry without its seed (its name where the record has no entry)."""
    return entry_key(r, with_seed=False) if r.get("entry") else r["name"]


def repeats(g):
    """' (3 seeds)' or ' (4 runs, 3 seeds)' for the runs g of one plan entry ('' for one run)."""
    n = len({seed(r) for r in g})
    return "" if len(g) == 1 else f" ({n} seeds)" if n == len(g) else f" ({len(g)} runs, {n} seeds)"


def curve_panel(ax, res, mine, kind, x_of, end_x):
    """One panel of learning curves: faint training batches, validation points, held-out star, compressors."""
    from .caveats import blt_accounting
    acct = blt_accounting(res)
    groups = list(dict.fromkeys(entry_of(r) for r in mine))  # the seeds of an entry: one colour
    for r in mine:
        g = [x for x in mine if entry_of(x) == entry_of(r)]
        col = f"C{groups.index(entry_of(r)) % 10}"
        name = label(r) + repeats(g) if g[0] is r else "_nolegend_"
        m = [x for x in r.get("metrics", []) if "bpb" in x and x.get("step")]
        if m:
            ax.plot([x_of(r, x["step"]) for x in m], [x["bpb"] for x in m], "-", color=col, alpha=0.25, lw=0.8)
        c = get(r, "training", "curve", default=[])
        ax.plot([x_of(r, p["step"]) for p in c], [p["val_bpb"] for p in c], "o-", ms=3, color=col, lw=1.2)
        ax.plot([end_x(r)], [bpb(r)], "*", ms=11, color=col, label=name)
        if end_x is flops_of and r["name"] in acct:  # the same end point with the entropy model counted
            ax.plot([acct[r["name"]]["total"]], [bpb(r)], "*", ms=11, mfc="none", color=col)
    comps = [c for c in res.get("compressors", []) if c["data"] == kind]
    top = max([bpb(r) + 1.5 for r in mine] + [c["bpb"] + 0.2 for c in comps])  # every compressor line in view
    ax.set_ylim(min([bpb(r) for r in mine] + [c["bpb"] for c in comps]) - 0.3, top)
    ax.set_xscale("log")
    for c in comps:
        ax.axhline(c["bpb"], ls=":", color="gray", lw=0.9)
        ax.text(0.01, c["bpb"], f"{c['compressor']} {c['bpb']:.2f}", transform=ax.get_yaxis_transform(),
                fontsize=7, color="dimgray", va="bottom", ha="left")
    ax.grid(alpha=0.3)


def flops_of(run):
    return get(run, "training", "flops")


def learning_curves(plt, res, out_dir, files):
    """Per data kind: bpb against bytes seen (left) and training FLOPs (right; open star: BLT with its entropy
    model's training and forward passes counted). The file keeps the name bpb_vs_training_flops_KIND.png."""
    runs = [r for r in res["runs"] if r["model"] != "entropy" and get(r, "training", "steps")]
    for kind in sorted({r["data"] for r in runs}):
        fig, ax = plt.subplots(1, 2, figsize=(12, 4.4), sharey=True)
        mine = [r for r in runs if r["data"] == kind]
        curve_panel(ax[0], res, mine, kind, bytes_at, lambda r: get(r, "training", "bytes"))
        per_step = lambda r, step: step * get(r, "training", "flops") / get(r, "training", "steps")
        curve_panel(ax[1], res, mine, kind, per_step, flops_of)
        ax[0].set(xlabel="bytes seen in training", ylabel="bits per byte", title=f"{kind}: learning curves by bytes seen")
        ax[1].set(xlabel="training FLOPs (open star: BLT with its entropy model counted)",
                  title=f"{kind}: the same curves by training FLOPs")
        ax[1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        seeded = len({entry_of(r) for r in mine}) < len(mine)
        comps = any(c["data"] == kind for c in res.get("compressors", []))
        fig.text(0.01, 0.01, ("the seeds of one plan entry share a colour" if seeded else "one run per plan entry") +
                 " (cosine schedule): learning curves, not a scaling law. Faint: training batches; dots: validation "
                 "windows; star: held-out bpb (sliding windows)" + ("; dotted: compressors" if comps else ""), fontsize=7)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        save(fig, out_dir, f"bpb_vs_training_flops_{kind}.png", f"{kind}: learning curves against bytes seen and "
             "training FLOPs, compressors as dotted lines", files)


def short(f):
    """A short row label: the claim's id, label (data kind; context and budget where needed) and runs
    ('M1 text: text_mb8 vs text_tf')."""
    where = f.get("where", f.get("kind", ""))
    if f.get("gaps"):
        return f"{f['id']} {where}: {len(f['gaps'])} seeds"
    names = [r["name"] for r in f["runs"]]
    if f["id"].startswith("ROB-"):
        return f"noise {f['id'][4:]}: best byte model vs BPE"
    return f"{f['id']} {where}: " + " vs ".join(names[:2])


def series_label(f):
    """A comparison without its budget and seed: 'M1 text 512-byte: megabyte P=8 vs transformer'."""
    if f["id"] == "SB-small":
        return f"SB-small {f['kind']}: best BPE vs best byte model"
    rs = [r for r in f["runs"] if seed(r) == seed(f["runs"][0])]  # one seed's runs
    what = lambda r: " ".join(x for x in (r["model"], f"P={get(r, 'config', 'patch_size')}" if r["model"] == "megabyte"
                                          else get(r, "patches", "mode") if r["model"] == "blt" else "",
                                          mb_variant(r)) if x)
    ctx = sorted({get(r, "training", "context") for r in rs if r["model"] != "bpe"})
    return f"{f['id']} {f['kind']}" + (f" {'/'.join(map(str, ctx))}-byte" if ctx else "") + ": " + \
        " vs ".join(what(r) for r in rs)


def budget_series(found):
    """{label: (kind, [(budget, lead, min, max)] by budget)} for each comparison measured at two budgets or more
    (min and max over seeds; the lead itself where one seed)."""
    out = {}
    for f in found:
        if f.get("gap") is None or not f.get("id", "").startswith(BPB_IDS) or not f.get("runs") or not f.get("kind"):
            continue
        g = f.get("gaps") or [f["gap"]]
        out.setdefault(series_label(f), (f["kind"], []))[1].append((budget(f["runs"][0]), f["gap"], min(g), max(g)))
    return {k: (kind, sorted(pts)) for k, (kind, pts) in out.items() if len({p[0] for p in pts}) > 1}


def gap_vs_budget(plt, found, noise, out_dir, files):
    series = budget_series(found)
    if not series:
        return
    fig, ax = plt.subplots(figsize=(8, 4.6))
    n = max(noise(kind) for kind, _ in series.values())
    ax.axhspan(-n, n, color="0.9", lw=0, label=f"noise band +-{n:.3f} bpb")
    ax.axhline(0, color="k", lw=0.7)
    budgets = sorted({p[0] for _, pts in series.values() for p in pts})
    for i, (name, (kind, pts)) in enumerate(series.items()):
        shift = 1 + 0.025 * (i - (len(series) - 1) / 2)  # side by side, so the error bars do not overlap
        ax.errorbar([p[0] * shift for p in pts], [p[1] for p in pts], fmt="o-", capsize=3, label=name,
                    yerr=[[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]])
    ax.set_xscale("log")
    ax.set_xlim(budgets[0] / 1.6, budgets[-1] * 1.6)
    ax.set_xticks(budgets)
    ax.set_xticklabels([flops_label(b) for b in budgets])
    ax.minorticks_off()
    ax.set(xlabel="training FLOPs (planned budget)", ylabel="the claimed winner's lead (bpb; > 0: the claim holds)",
           title="lead against the training budget (mean and min..max over seeds)")
    ax.legend(fontsize=6, loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, out_dir, "gap_vs_budget.png", "the claimed winner's bpb lead against the training budget, per comparison "
         "measured at two budgets or more: mean and min..max over seeds, noise band grey", files)


def gaps(plt, found, noise, out_dir, files):
    fs = [f for f in found if f.get("gap") is not None and f.get("id", "").startswith(BPB_IDS)]
    if not fs:
        return
    fig, ax = plt.subplots(figsize=(8.5, 0.3 * len(fs) + 1.5))
    for i, f in enumerate(fs):
        n = f.get("band", noise(f.get("kind")))
        ax.add_patch(plt.Rectangle((-n, i - 0.4), 2 * n, 0.8, color="0.88", lw=0))
        g = f.get("gaps")
        if g:
            ax.errorbar([f["gap"]], [i], xerr=[[f["gap"] - min(g)], [max(g) - f["gap"]]], fmt="o", color="k", capsize=3)
        else:
            ax.plot([f["gap"]], [i], "o", color="tab:blue")
    ax.set_yticks(range(len(fs)))
    ax.set_yticklabels([short(f) for f in fs], fontsize=7)
    ax.axvline(0, color="k", lw=0.6)
    ax.set_xscale("symlog", linthresh=0.1, linscale=2)
    ticks = [-0.2, -0.1, -0.05, 0, 0.05, 0.1, 0.2, 0.5, 1]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks], fontsize=7)
    ax.set_xlabel("the claimed winner's bpb lead (> 0: the claim holds); grey: noise band")
    ax.set_title("bpb gap per finding (black: mean and min..max over seeds)", fontsize=10)
    ax.invert_yaxis()
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    save(fig, out_dir, "gaps.png", "the claimed winner's bpb lead per finding, seed error bars and noise band", files)


def inference(plt, res, out_dir, files):
    runs = [r for r in res["runs"] if r["model"] != "entropy"]
    if not runs:
        return
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    kind = "text" if any(r["data"] == "text" for r in runs) else runs[0]["data"]  # bpb compares within one kind
    for r in [r for r in runs if r["data"] == kind]:
        f0, f1 = get(r, "flops", "forward_per_byte"), get(r, "flops", "with_entropy_model_per_byte")
        col = COLORS.get(r["model"], "gray")
        ax.plot([f0], [bpb(r)], "o", color=col)
        ax.annotate(f"{r['name']}", (f0, bpb(r)), fontsize=6)
        if get(r, "flops", "entropy_model_per_byte"):
            ax.plot([f0, f1], [bpb(r), bpb(r)], "--", color=col, lw=0.8)
            ax.plot([f1], [bpb(r)], "o", mfc="none", color=col)
        for s in r.get("sweep", []):
            if "bpb" in s:
                ax.plot([get(s, "flops", "forward_per_byte")], [s["bpb"]], "x", color=col)
    ax.set_xscale("log")
    ax.set_xlabel("inference FLOPs per byte (open circle: BLT with its entropy model; x: threshold sweep)")
    ax.set_ylabel("held-out bits per byte")
    ax.set_title(f"{kind}: bpb vs inference FLOPs per byte (lower left is better)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, out_dir, "bpb_vs_inference_flops.png", f"{kind}: bits per byte against inference FLOPs per byte", files)


def patch_sweep(plt, res, out_dir, files):
    runs = [r for r in res["runs"] if r["model"] != "entropy"]
    pts = [(r, s) for r in runs for s in r.get("sweep", []) if "bpb" in s]
    mbs = [r for r in runs if r["model"] == "megabyte" and r["data"] == "text"]
    if not (pts or mbs):
        return
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.8))
    for r in {id(r): r for r, _ in pts}.values():
        ss = sorted([s for rr, s in pts if rr is r], key=lambda s: s["mean_bytes_per_patch"])
        ax[0].plot([s["mean_bytes_per_patch"] for s in ss], [s["bpb"] for s in ss], "o-", label=f"{r['name']} (thresholds)")
        ax[1].plot([s["threshold"] for s in ss], [s["mean_bytes_per_patch"] for s in ss], "o-", label=r["name"])
    for r in mbs:
        ax[0].plot([r["config"]["patch_size"]], [bpb(r)], "s", label=label(r))
    for r in runs:
        if r["model"] == "blt":
            ax[0].plot([get(r, "patches", "mean_bytes_per_patch")], [bpb(r)], "*", ms=10, label=f"{r['name']} (trained)")
    ax[0].set(xlabel="mean bytes per patch", ylabel="held-out bpb", title="patch size (text)")
    ax[0].legend(fontsize=5)
    ax[1].set(xlabel="entropy threshold (nats)", ylabel="mean bytes per patch", title="threshold calibration")
    for a in ax:
        a.grid(alpha=0.3)
    fig.tight_layout()
    save(fig, out_dir, "patch_size_sweep.png", "BLT threshold sweep and MEGABYTE patch sizes (text)", files)


def robustness(plt, res, noise, out_dir, files):
    rob = [r for r in res.get("robustness", []) if r.get("noise")]
    if not rob:
        return
    fig, ax = plt.subplots(figsize=(6.8, 3.8))
    kinds = [n["noise"] for n in rob[0]["noise"]]
    w = 0.8 / len(rob)
    for i, r in enumerate(rob):
        d = {n["noise"]: n["delta"] for n in r["noise"]}
        ax.bar([k + i * w for k in range(len(kinds))], [d.get(k, 0) for k in kinds], w, label=f"{r['name']} ({r['model']})",
               color=COLORS.get(r["model"]), alpha=0.5 + 0.5 * (i % 2))
    ax.set_xticks([k + 0.4 - w / 2 for k in range(len(kinds))])
    ax.set_xticklabels(kinds)
    ax.set_ylabel("bpb increase over clean text")
    ax.set_title(f"robustness per noise kind (one seed each; verdict band +-{noise('text'):.3f} bpb)", fontsize=10)
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    save(fig, out_dir, "robustness_noise.png", "bpb increase per noise kind (one verdict per kind)", files)


def plots(res, found, noise, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    files = []
    gaps(plt, found, noise, out_dir, files)
    gap_vs_budget(plt, found, noise, out_dir, files)
    learning_curves(plt, res, out_dir, files)
    inference(plt, res, out_dir, files)
    patch_sweep(plt, res, out_dir, files)
    robustness(plt, res, noise, out_dir, files)
    return files
