"""python3 -m report RESULTS.json OUT_DIR [--no-plots] (with scripts/ on PYTHONPATH) — the report of
`bytelm experiment report`.

Reads the gathered records (runs, compressor rows, robustness) and writes OUT_DIR/README.md (Markdown) and
OUT_DIR/index.html (one self-contained page: inline style, no scripts or fonts from elsewhere) with PNG plots
beside them, drawn with matplotlib (Debian's python3-matplotlib). Every number shown comes from a record;
the Findings section states each paper claim as tested (with its verdict) or not testable in this experiment.
Differences under NOISE_BPB are called inconclusive: one seed per run, so gaps that small are not evidence;
where a plan repeats a run with other seeds the Findings say how far bpb moved (seeds.py).
"""
import html
import json
import os
import sys

from .common import NOISE_BPB, bpb, fmt, get, sci, timing_provenance
from .findings import findings, mb_variant


def label(run):
    cfg = run.get("config", {})
    extra = ""
    if run["model"] == "megabyte":
        extra = f" P={cfg.get('patch_size')}" + (f", {mb_variant(run)}" if mb_variant(run) else "")
    elif run["model"] == "blt":
        extra = f" {get(run, 'patches', 'mode', default='')} {fmt(get(run, 'patches', 'mean_bytes_per_patch'), '.2f')} B/patch"
    return f"{run['name']} ({run['model']}{extra})"


# ---------------------------------------------------------------------------------------------- tables

def table(headers, rows):
    return {"headers": headers, "rows": rows}


def run_table(runs, compressors, kind):
    rows = []
    for r in runs:
        if r["data"] != kind or r["model"] == "entropy":
            continue
        fl = r.get("flops", {})
        with_ent = fl.get("with_entropy_model_per_byte") if fl.get("entropy_model_per_byte") else None
        rows.append([label(r), fmt(get(r, "eval", "bpb"), ".4f"), sci(get(r, "training", "flops")),
                     f"{get(r, 'training', 'bytes', default=0) / 1e6:.2f}", sci(fl.get("forward_per_byte")),
                     sci(with_ent), f"{fl.get('counted_params', 0) / 1e6:.2f}",
                     fmt(get(r, "training", "bytes_per_s"), ".0f"), fmt(get(r, "generation", "bytes_per_s"), ".0f")])
    for c in compressors:
        if c["data"] == kind:
            rows.append([c["compressor"] + " (compressor)", fmt(c["bpb"], ".4f"), "-", "-", "-", "-", "-", "-", "-"])
    return table(["run", "held-out bpb", "training FLOPs", "MB trained", "infer FLOPs/byte",
                  "+ entropy model", "params (M)", "train bytes/s", "gen bytes/s"], rows)


def entropy_table(runs):
    rows = []
    for r in runs:
        if r["model"] == "entropy":
            rows.append([r["name"], r["data"], fmt(get(r, "eval", "bpb"), ".4f"), sci(get(r, "training", "flops")),
                         sci(get(r, "flops", "forward_per_byte"))])
    return table(["entropy model", "data", "held-out bpb", "training FLOPs (counted apart)", "FLOPs/byte"], rows)


def generation_table(runs):
    rows = []
    for r in runs:
        g = r.get("generation")
        if g:
            spread = f" ({g['bytes_per_s_min']:.0f}-{g['bytes_per_s_max']:.0f})" if "bytes_per_s_min" in g else ""
            prov = timing_provenance(r)
            rows.append([label(r), r["data"], fmt(g["bytes_per_s"], ".0f") + spread, fmt(g["seconds_per_8kb"], ".1f"),
                         fmt(get(r, "eval", "bpb"), ".4f"), f"{prov.get('load_average_1min', '-')}"
                         + (" (retimed)" if g.get("retimed") else "")])
    return table(["run", "data", "bytes/s (batch 1; median (min-max) of the timed runs)", "s per 8 KB",
                  "held-out bpb", "load when timed"], rows)


def sweep_table(runs):
    rows = []
    for r in runs:
        for s in r.get("sweep", []):
            if "error" in s:
                rows.append([r["name"], fmt(s["target_bytes_per_patch"], ".1f"), "-", "-", "-", "-", s["error"][:60]])
            else:
                rows.append([r["name"], fmt(s["target_bytes_per_patch"], ".1f"), fmt(s["threshold"], ".3f"),
                             fmt(s["mean_bytes_per_patch"], ".2f"), fmt(s["bpb"], ".4f"),
                             sci(get(s, "flops", "forward_per_byte")),
                             sci(get(s, "flops", "with_entropy_model_per_byte"))])
    return table(["run", "target B/patch", "threshold (nats)", "measured B/patch", "bpb",
                  "infer FLOPs/byte", "+ entropy model"], rows)


def robustness_tables(rob):
    noise_kinds = []
    for r in rob:
        for n in r.get("noise", []):
            if n["noise"] not in noise_kinds:
                noise_kinds.append(n["noise"])
    nrows = []
    for r in rob:
        d = {n["noise"]: n["delta"] for n in r.get("noise", [])}
        nrows.append([r["name"] + f" ({r['model']})", fmt(r.get("clean_bpb"), ".4f")] +
                     [("+" if d.get(k, 0) >= 0 else "") + fmt(d.get(k), ".3f") for k in noise_kinds])
    tasks = []
    for r in rob:
        for c in r.get("cute", []):
            if c["task"] not in tasks:
                tasks.append(c["task"])
    crows = []
    for r in rob:
        d = {c["task"]: c for c in r.get("cute", [])}
        cells = []
        for t in tasks:
            c = d.get(t, {})
            cells.append("-" if "accuracy" not in c else f"{100 * c['accuracy']:.0f}% / {c['answer_bpb']:.2f}")
        crows.append([r["name"] + f" ({r['model']})"] + cells)
    return (table(["run", "clean bpb"] + [f"{k} (delta bpb)" for k in noise_kinds], nrows),
            table(["run"] + [f"{t} (exact match / answer bpb)" for t in tasks], crows))


# ---------------------------------------------------------------------------------------------- plots

def plots(res, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = [r for r in res["runs"] if r["model"] != "entropy"]
    files = []
    colors = {"transformer": "tab:blue", "megabyte": "tab:orange", "blt": "tab:green", "bpe": "tab:red"}
    for kind in sorted({r["data"] for r in runs}):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        mine = [r for r in runs if r["data"] == kind]
        for i, r in enumerate(mine):
            c = get(r, "training", "curve", default=[])
            col = f"C{i % 10}"  # one colour per run (two BLTs must not look alike)
            if c:
                ax.plot([p["flops"] for p in c], [p["val_bpb"] for p in c], "-", color=col, alpha=0.6, lw=1)
            ax.plot([get(r, "training", "flops")], [bpb(r)], "*", ms=11, color=col, label=label(r))
        ends = [bpb(r) for r in mine if bpb(r) is not None]
        if ends:  # early points of a run can sit far above everything else; keep the end points readable
            ax.set_ylim(min(ends + [c["bpb"] for c in res.get("compressors", []) if c["data"] == kind]) - 0.3,
                        max(ends) + 2.0)
        for comp in res.get("compressors", []):
            if comp["data"] == kind:
                ax.axhline(comp["bpb"], ls=":", color="gray", lw=0.8)
                ax.annotate(comp["compressor"], (ax.get_xlim()[0], comp["bpb"]), fontsize=7, color="gray", va="bottom")
        ax.set_xscale("log")
        ax.set_xlabel("training FLOPs (3 x forward, per the models' own counts)")
        ax.set_ylabel("bits per byte")
        ax.set_title(f"{kind}: bpb vs training FLOPs")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.text(0.01, 0.01, "lines: training's validation windows during a cosine schedule; stars: held-out bpb at "
                 "the end (trained to budget)", fontsize=6)
        name = f"bpb_vs_training_flops_{kind}.png"
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        fig.savefig(os.path.join(out_dir, name), dpi=110)
        plt.close(fig)
        files.append((name, f"{kind}: bits per byte against training FLOPs"))
    # bpb vs inference FLOPs per byte.
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in runs:
        f0, f1 = get(r, "flops", "forward_per_byte"), get(r, "flops", "with_entropy_model_per_byte")
        col = colors.get(r["model"], "gray")
        ax.plot([f0], [bpb(r)], "o", color=col)
        ax.annotate(f"{r['name']} [{r['data']}]", (f0, bpb(r)), fontsize=7)
        if get(r, "flops", "entropy_model_per_byte"):
            ax.plot([f0, f1], [bpb(r), bpb(r)], "--", color=col, lw=0.8)
            ax.plot([f1], [bpb(r)], "o", mfc="none", color=col)
        for s in r.get("sweep", []):
            if "bpb" in s:
                ax.plot([get(s, "flops", "forward_per_byte")], [s["bpb"]], "x", color=col)
    ax.set_xscale("log")
    ax.set_xlabel("inference FLOPs per byte (open circle: BLT with its entropy model; x: threshold sweep)")
    ax.set_ylabel("held-out bits per byte")
    ax.set_title("bpb vs inference FLOPs per byte (lower left is better)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "bpb_vs_inference_flops.png"), dpi=110)
    plt.close(fig)
    files.append(("bpb_vs_inference_flops.png", "bits per byte against inference FLOPs per byte"))
    # Patch size sweep: BLT thresholds and MEGABYTE patch sizes.
    pts = [(r, s) for r in runs for s in r.get("sweep", []) if "bpb" in s]
    mbs = [r for r in runs if r["model"] == "megabyte"]
    if pts or mbs:
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.8))
        for r in {id(r): r for r, _ in pts}.values():
            ss = sorted([s for rr, s in pts if rr is r], key=lambda s: s["mean_bytes_per_patch"])
            ax[0].plot([s["mean_bytes_per_patch"] for s in ss], [s["bpb"] for s in ss], "o-", label=f"{r['name']} (thresholds)")
            ax[1].plot([s["threshold"] for s in ss], [s["mean_bytes_per_patch"] for s in ss], "o-", label=r["name"])
        for r in mbs:
            ax[0].plot([r["config"]["patch_size"]], [bpb(r)], "s", label=f"{r['name']} (MEGABYTE P)")
        for r in runs:
            if r["model"] == "blt":
                ax[0].plot([get(r, "patches", "mean_bytes_per_patch")], [bpb(r)], "*", ms=10, label=f"{r['name']} (trained)")
        ax[0].set_xlabel("mean bytes per patch")
        ax[0].set_ylabel("held-out bpb")
        ax[0].set_title("patch size sweep")
        ax[0].legend(fontsize=6)
        ax[1].set_xlabel("entropy threshold (nats)")
        ax[1].set_ylabel("mean bytes per patch")
        ax[1].set_title("threshold calibration")
        for a in ax:
            a.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "patch_size_sweep.png"), dpi=110)
        plt.close(fig)
        files.append(("patch_size_sweep.png", "BLT threshold sweep and MEGABYTE patch sizes"))
    rob = res.get("robustness", [])
    if rob and any(r.get("noise") for r in rob):
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        kinds = [n["noise"] for n in rob[0].get("noise", [])]
        w = 0.8 / max(1, len(rob))
        for i, r in enumerate(rob):
            d = {n["noise"]: n["delta"] for n in r.get("noise", [])}
            ax.bar([k + i * w for k in range(len(kinds))], [d.get(k, 0) for k in kinds], w, label=f"{r['name']} ({r['model']})")
        ax.set_xticks([k + 0.4 - w / 2 for k in range(len(kinds))])
        ax.set_xticklabels(kinds)
        ax.set_ylabel("bpb increase over clean text")
        ax.set_title("robustness to noised text")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "robustness_noise.png"), dpi=110)
        plt.close(fig)
        files.append(("robustness_noise.png", "bpb increase on noised text"))
    return files


# ---------------------------------------------------------------------------------------------- output

def md_table(t):
    if not t["rows"]:
        return "_(none)_\n"
    lines = ["| " + " | ".join(t["headers"]) + " |", "|" + "---|" * len(t["headers"])]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in t["rows"]]
    return "\n".join(lines) + "\n"


def html_table(t):
    if not t["rows"]:
        return "<p><em>(none)</em></p>"
    h = "".join(f"<th>{html.escape(x)}</th>" for x in t["headers"])
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in t["rows"])
    return f"<table><thead><tr>{h}</tr></thead><tbody>{rows}</tbody></table>"


def provenance_lines(res):
    runs = res["runs"]
    commits = sorted({get(r, "provenance", "commit", default="?") for r in runs})
    cpus = sorted({f"{get(r, 'provenance', 'cpu')} ({get(r, 'provenance', 'cores')} cores)" for r in runs})
    loads = [get(r, "provenance", "load_average_1min") for r in runs]
    times = sorted(get(r, "provenance", "time_utc", default="") for r in runs)
    total = sum(get(r, "training", "flops", default=0) for r in runs)
    secs = sum(get(r, "training", "seconds", default=0) for r in runs)
    lines = [f"plan: {res['plan'].get('name')}{' (--quick)' if res['plan'].get('quick') else ''}; "
             f"{len(runs)} runs recorded" + (f", pending: {', '.join(res['pending'])}" if res.get("pending") else ""),
             f"commit(s): {', '.join(commits)}; machine: {'; '.join(cpus)}; CPU only",
             f"load average (1 min) when each run was recorded: {', '.join(str(x) for x in loads)} "
             "(a load above the core count means the machine was shared and the timings are pessimistic)",
             f"compute: {total:.3g} training FLOPs in {secs / 60:.1f} min of training; records written "
             f"{times[0]} .. {times[-1]}",
             f"experiment directory: {res.get('source_dir')} (every number below is in its runs/*/record.json)"]
    return lines


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.exit("usage: report (python3 -m report) RESULTS.json OUT_DIR [--no-plots]")
    res = json.load(open(args[0]))
    out_dir = args[1]
    os.makedirs(out_dir, exist_ok=True)
    runs = res["runs"]
    comp = res.get("compressors", [])
    title = res.get("title") or f"bytelm experiment: {res['plan'].get('name', 'plan')}"
    kinds = sorted({r["data"] for r in runs if r["model"] != "entropy"})
    fnd = findings(res)
    pics = [] if "--no-plots" in sys.argv else plots(res, out_dir)
    noise_t, cute_t = robustness_tables(res.get("robustness", []))
    sections = [("Per data kind: compute-matched runs and compressors", [(k, run_table(runs, comp, k)) for k in kinds]),
                ("Entropy models (BLT's patchers; training cost counted apart)", [("", entropy_table(runs))]),
                ("BLT threshold sweep at inference", [("", sweep_table(runs))]),
                ("Generation speed", [("", generation_table(runs))]),
                ("Robustness: noised text", [("", noise_t)]),
                ("Robustness: CUTE-like character tasks (few-shot)", [("", cute_t)])]
    prov = provenance_lines(res)
    conv = ("FLOPs follow one convention for every model: forward = 2 x matmul parameters + attention "
            "(4 x context x width per layer and byte, no causal halving), embeddings free, output head counted; "
            "training = 3 x forward. BLT's entropy model is counted apart (its training in its own row, its "
            "inference as '+ entropy model'). BPE: per token over the measured bytes per token. Held-out bpb: "
            "the same held-out bytes for every model of a data kind and for the compressors; byte models with "
            "sliding windows, BPE over consecutive token windows of its canonical segmentation. Gaps under "
            f"{NOISE_BPB} bpb are called inconclusive (one seed per run; where a plan repeats runs with other "
            "seeds, the Findings give the spread).")
    # Markdown
    md = [f"# {title}\n"]
    if res.get("note"):
        md.append(f"> {res['note']}\n")
    md.append("## Findings\n")
    for f in fnd:
        md.append(f"- **{f['claim']}** ({f['source']}): **{f['status']}**. " + "; ".join(f["evidence"]))
    md.append("\n## Provenance\n")
    md += [f"- {l}" for l in prov]
    md.append(f"\n{conv}\n")
    for name, cap in pics:
        md.append(f"![{cap}]({name})\n")
    for head, tabs in sections:
        md.append(f"## {head}\n")
        for sub, t in tabs:
            if sub:
                md.append(f"### {sub}\n")
            md.append(md_table(t))
    with open(os.path.join(out_dir, "README.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    # HTML (self-contained apart from the PNGs beside it)
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}td:first-child,th:first-child{text-align:left}"
             "th{background:#f3f3f3}.note{background:#fff6d6;padding:.6em 1em;border-left:4px solid #e0b000}"
             "img{max-width:100%;border:1px solid #eee;margin:.5em 0}li{margin:.3em 0}")
    h = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
         f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>"]
    if res.get("note"):
        h.append(f"<p class='note'>{html.escape(res['note'])}</p>")
    h.append("<h2>Findings</h2><ul>")
    for f in fnd:
        h.append(f"<li><b>{html.escape(f['claim'])}</b> ({html.escape(f['source'])}): <b>{html.escape(f['status'])}</b>. "
                 f"{html.escape('; '.join(f['evidence']))}</li>")
    h.append("</ul><h2>Provenance</h2><ul>" + "".join(f"<li>{html.escape(l)}</li>" for l in prov) + "</ul>")
    h.append(f"<p>{html.escape(conv)}</p>")
    for name, cap in pics:
        h.append(f"<figure><img src='{html.escape(name)}' alt='{html.escape(cap)}'><figcaption>{html.escape(cap)}"
                 "</figcaption></figure>")
    for head, tabs in sections:
        h.append(f"<h2>{html.escape(head)}</h2>")
        for sub, t in tabs:
            if sub:
                h.append(f"<h3>{html.escape(sub)}</h3>")
            h.append(html_table(t))
    h.append("</body></html>")
    with open(os.path.join(out_dir, "index.html"), "w") as f:
        f.write("\n".join(h) + "\n")


if __name__ == "__main__":
    main()
