"""tables.py — the report's tables (imported by report (python3 -m report)): runs per data kind with the
compressors, entropy models, BLT's training FLOPs with and without its entropy model, schedules (warm-up
share), BLT's threshold sweep, generation speed, robustness, and run labels."""
import math

from .caveats import blt_accounting
from .common import fmt, get, sci, timing_provenance
from .findings import mb_variant
from .records import steps_and_warmup, warmup_flag


def table(headers, rows):
    return {"headers": headers, "rows": rows}


def image_row(run):
    """' = a quarter of a 48-byte image row' for a MEGABYTE on square RGB images whose context is one image."""
    ctx, p = get(run, "training", "context"), get(run, "config", "patch_size")
    side = math.isqrt(ctx // 3) if ctx and ctx % 3 == 0 else 0
    if run["data"] != "images" or not p or side * side * 3 != ctx:
        return ""
    row = 3 * side
    frac = {1: "all of", 2: "half of", 4: "a quarter of"}.get(row // p) if row % p == 0 else None
    return f" = {frac or f'{p}/{row} of'} a {row}-byte image row"


def label(run):
    cfg = run.get("config", {})
    extra = ""
    if run["model"] == "megabyte":
        extra = f" P={cfg.get('patch_size')}{image_row(run)}" + (f", {mb_variant(run)}" if mb_variant(run) else "")
    elif run["model"] == "blt":
        extra = f" {get(run, 'patches', 'mode', default='')} {fmt(get(run, 'patches', 'mean_bytes_per_patch'), '.2f')} B/patch"
    elif run["model"] == "hnet":
        extra = f" {fmt(get(run, 'patches', 'mean_bytes_per_patch'), '.2f')} B/chunk"
    return f"{run['name']} ({run['model']}{extra})"


def run_table(runs, compressors, kind, acct):
    rows = []
    for r in runs:
        if r["data"] != kind or r["model"] == "entropy":
            continue
        fl = r.get("flops", {})
        with_ent = fl.get("with_entropy_model_per_byte") if fl.get("entropy_model_per_byte") else None
        total = acct.get(r["name"], {}).get("total")
        rows.append([label(r), fmt(get(r, "eval", "bpb"), ".4f"), sci(get(r, "training", "flops")), sci(total),
                     f"{get(r, 'training', 'bytes', default=0) / 1e6:.2f}", sci(fl.get("forward_per_byte")),
                     sci(with_ent), f"{fl.get('counted_params', 0) / 1e6:.2f}",
                     ("sliding" if get(r, "eval", "sliding") else "non-overlapping") +
                     (" (stride in tokens)" if get(r, "eval", "stride_unit") == "tokens" else "")])
    for c in compressors:
        if c["data"] == kind:
            rows.append([c["compressor"] + " (compressor)", fmt(c["bpb"], ".4f")] + ["-"] * 6 + ["whole held-out bytes"])
    return table(["run", "held-out bpb", "training FLOPs", "+ entropy model", "MB trained", "infer FLOPs/byte",
                  "+ entropy model", "params (M)", "eval windows"], rows)


def entropy_table(runs):
    rows = [[r["name"], r["data"], fmt(get(r, "eval", "bpb"), ".4f"), sci(get(r, "training", "flops")),
             sci(get(r, "flops", "forward_per_byte"))] for r in runs if r["model"] == "entropy"]
    return table(["entropy model", "data", "held-out bpb", "training FLOPs", "forward FLOPs/byte"], rows)


def accounting_table(res):
    rows = [[name, sci(a["own"]), f"{a['entropy_model']}: {sci(a['entropy_training'])}",
             f"{sci(a['entropy_forward_per_byte'])} x {a['bytes'] / 1e6:.2f} MB = {sci(a['entropy_forward'])}",
             sci(a["total"]), f"{a['total'] / a['own']:.2f}x"] for name, a in blt_accounting(res).items()]
    return table(["BLT run", "training FLOPs (own)", "entropy model's training", "entropy forwards during training",
                  "total", "total / own"], rows)


def schedule_table(runs):
    rows = []
    for r in runs:
        steps, warm = steps_and_warmup(r)
        rows.append([r["name"], steps, warm, f"{100 * warm / steps:.0f}%" if steps and warm is not None else "-",
                     "flagged" if warmup_flag(r) else "", fmt(get(r, "training", "bytes", default=0) / 1e6, ".2f")])
    return table(["run", "steps", "warm-up steps", "warm-up share", "> 10%", "MB trained"], rows)


def generation_table(runs):
    rows = []
    for r in runs:
        g = r.get("generation")
        if g:
            spread = f" ({g['bytes_per_s_min']:.0f}-{g['bytes_per_s_max']:.0f})" if "bytes_per_s_min" in g else ""
            prov = timing_provenance(r)
            rows.append([label(r), r["data"], fmt(g["bytes_per_s"], ".0f") + spread, fmt(g["seconds_per_8kb"], ".1f"),
                         f"{prov.get('load_average_1min', '-')}" + (" (retimed)" if g.get("retimed") else ""),
                         prov.get("commit", "-")])
    return table(["run", "data", "bytes/s (batch 1; median (min-max))", "s per 8 KB", "load when timed",
                  "commit when timed"], rows)


def sweep_table(runs):
    rows = []
    for r in runs:
        for s in r.get("sweep", []):
            if "error" in s:
                rows.append([r["name"], fmt(s["target_bytes_per_patch"], ".1f"), "-", "-", "-", "-", s["error"][:60]])
            else:
                rows.append([r["name"], fmt(s["target_bytes_per_patch"], ".1f"), fmt(s["threshold"], ".3f"),
                             fmt(s["mean_bytes_per_patch"], ".2f"), fmt(s["bpb"], ".4f"),
                             sci(get(s, "flops", "forward_per_byte")), sci(get(s, "flops", "with_entropy_model_per_byte"))])
    return table(["run", "target B/patch", "threshold (nats)", "measured B/patch", "bpb", "infer FLOPs/byte",
                  "+ entropy model"], rows)


def ordered(rob, list_key, key):
    seen = []
    for r in rob:
        for n in r.get(list_key, []):
            if n[key] not in seen:
                seen.append(n[key])
    return seen


def robustness_tables(rob):
    kinds = ordered(rob, "noise", "noise")
    nrows = []
    for r in rob:
        d = {n["noise"]: n["delta"] for n in r.get("noise", [])}
        nrows.append([r["name"] + f" ({r['model']})", fmt(r.get("clean_bpb"), ".4f")] +
                     [("+" if d.get(k, 0) >= 0 else "") + fmt(d.get(k), ".3f") for k in kinds])
    tasks = ordered(rob, "cute", "task")
    crows = []
    for r in rob:
        d = {c["task"]: c for c in r.get("cute", [])}
        crows.append([r["name"] + f" ({r['model']})"] + [
            "-" if "accuracy" not in d.get(t, {}) else f"{100 * d[t]['accuracy']:.0f}% / {d[t]['answer_bpb']:.2f}"
            for t in tasks])
    return (table(["run", "clean bpb"] + [f"{k} (delta bpb)" for k in kinds], nrows),
            table(["run"] + [f"{t} (exact match / answer bpb)" for t in tasks], crows))


def provenance_table(runs):
    rows = [[r["name"], get(r, "provenance", "commit", default="-"), get(r, "provenance", "time_utc", default="-"),
             get(r, "provenance", "load_average_1min", default="-"), fmt(get(r, "training", "seconds", default=0) / 60, ".1f")]
            for r in runs]
    return table(["run", "commit (training)", "recorded (UTC)", "load (1 min)", "training minutes"], rows)
