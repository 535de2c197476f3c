"""findings.py — the Findings section of `bytelm experiment report` (imported by report (python3 -m report)).

Each paper claim becomes one finding: reproduced / not reproduced at this scale / inconclusive (a gap under
NOISE_BPB) / mixed / not testable in this experiment, with the numbers and the compute used. Comparisons pair
runs trained from the same seed; runs a plan repeats with other seeds add the findings of seeds.py.
"""
import math
import statistics

from .common import NOISE_BPB, bpb, fmt, get, loaded, paired_rounds, same_budget, sci, seed, verdict
from .seeds import first_of_each_entry, seed_findings


def pairs(runs, model_a, model_b, pred_a=lambda r: True, pred_b=lambda r: True):
    """(a, b) runs of the two models on the same data at the same budget, trained from the same seed."""
    out = []
    for a in runs:
        if a["model"] != model_a or not pred_a(a):
            continue
        for b in runs:
            if b is not a and b["model"] == model_b and pred_b(b) and a["data"] == b["data"] and same_budget(a, b) \
                    and seed(a) == seed(b):
                out.append((a, b))
    return out


def mb_variant(r):
    """MEGABYTE's section-2.3 extensions a run uses ("" = the paper's main model, or not a MEGABYTE)."""
    c = r.get("config", {}) if r["model"] == "megabyte" else {}
    parts = []
    if c.get("conv_kernels"):
        parts.append("conv encoder " + "/".join(map(str, c["conv_kernels"])))
    if c.get("cross_patch"):
        parts.append(f"cross-patch r={c['cross_patch']}")
    if c.get("levels"):
        parts.append(f"{len(c['levels']) + 2} levels")
    return ", ".join(parts)


def is_base_mb(r):
    return r["model"] == "megabyte" and not mb_variant(r)


# MEGABYTE Table 10 (compute-matched bpb; arXiv text / audio / ImageNet-256): with and without an extension.
MB_TABLE10 = {
    "cross-patch": ("without cross-patch attention 0.6781 / 3.481 / 3.259, with it 0.6871 / 3.477 / 3.158",
                    {"images": "helps"}),
    "conv": ("with the CNN encoder 0.6871 / 3.475 / 3.155, without it 0.6871 / 3.477 / 3.158", {}),
}


def at(*rs):
    """The compute behind a comparison: each run's training FLOPs and bytes trained."""
    return "; compute: " + ", ".join(f"{r['name']} {sci(get(r, 'training', 'flops'))} FLOPs / "
                                     f"{get(r, 'training', 'bytes', default=0) / 1e6:.2f} MB" for r in rs)


def findings(res):
    # A run that repeats another's plan entry exactly (seed included) is only a reproduction check.
    runs = first_of_each_entry([r for r in res["runs"] if r["model"] != "entropy"])
    rob = res.get("robustness", [])
    out = []

    def add(claim, source, lines, status):
        out.append({"claim": claim, "source": source, "status": status, "evidence": lines})

    # M1: MEGABYTE beats a byte Transformer at equal compute, per data kind.
    ps = pairs(runs, "megabyte", "transformer", is_base_mb)
    if ps:
        for mb, tf in ps:
            d = bpb(tf) - bpb(mb)
            add(f"MEGABYTE has lower bpb than a byte Transformer at equal training FLOPs ({mb['data']})",
                "MEGABYTE T1-T5 (M1)",
                [f"{mb['name']} {bpb(mb):.4f} vs {tf['name']} {bpb(tf):.4f} bpb at {sci(get(mb, 'training', 'flops'))} "
                 f"/ {sci(get(tf, 'training', 'flops'))} FLOPs ({get(mb, 'training', 'bytes', default=0) / 1e6:.2f} / "
                 f"{get(tf, 'training', 'bytes', default=0) / 1e6:.2f} MB trained)"], verdict(d))
    else:
        add("MEGABYTE has lower bpb than a byte Transformer at equal training FLOPs", "MEGABYTE (M1)",
            ["needs a megabyte and a transformer run on the same data at the same budget"], "not testable in this experiment")
    # M3: flat in patch size.
    groups = {}
    for r in runs:
        if is_base_mb(r):
            groups.setdefault((r["data"], round(math.log10(get(r, "training", "flops", default=1)), 1)), []).append(r)
    flat = [g for g in groups.values() if len({get(r, "config", "patch_size") for r in g}) > 1]
    if flat:
        for g in flat:
            spread = max(bpb(r) for r in g) - min(bpb(r) for r in g)
            add(f"MEGABYTE's bpb is flat over the patch size ({g[0]['data']})", "MEGABYTE T10/T12 (M3)",
                [", ".join(f"P={get(r, 'config', 'patch_size')}: {bpb(r):.4f}" for r in g) + f"; spread {spread:.3f}" + at(*g)],
                "reproduced" if spread <= 2.5 * NOISE_BPB else "not reproduced at this scale")
    else:
        add("MEGABYTE's bpb is flat over the patch size", "MEGABYTE (M3)", ["needs MEGABYTE runs with two patch sizes"],
            "not testable in this experiment")
    # M4: faster generation.
    gp = [(a, b) for a, b in pairs(runs, "megabyte", "transformer", is_base_mb) if a.get("generation") and b.get("generation")]
    if gp:
        for mb, tf in gp:
            g1, g2 = mb["generation"]["bytes_per_s"], tf["generation"]["bytes_per_s"]
            line = f"{mb['name']} {g1:.0f} vs {tf['name']} {g2:.0f} bytes/s (batch 1, CPU)"
            rounds = paired_rounds(mb, tf)
            ratio, mostly_faster, mostly_slower = (g1 / g2 if g2 > 0 else math.inf if g1 > 0 else 1.0), True, True
            if rounds:  # timed in the same interleaved rounds: compare round by round
                faster, ratio = sum(r > 1 for r in rounds), statistics.median(rounds)
                n = len(rounds)
                mostly_faster, mostly_slower = faster >= n - 1, faster <= 1
                line += (f", median of {n} interleaved rounds; MEGABYTE faster in {faster} of {n} rounds, median "
                         f"per-round ratio {ratio:.2f}")
            status = "reproduced" if ratio > 1.1 and mostly_faster else \
                "not reproduced at this scale" if ratio < 0.9 and mostly_slower else "inconclusive"
            loads = [loaded(r) for r in (mb, tf) if loaded(r)]
            if loads:
                status = f"inconclusive: timed on a shared machine ({loads[0]}); measured {status}"
            add(f"MEGABYTE generates faster than a compute-matched Transformer ({mb['data']})", "MEGABYTE T5/T9 (M4)",
                [line], status)
    # MEGABYTE's extensions against the main model on the same data at the same budget.
    for v in runs:
        what = mb_variant(v)
        bases = [b for b in runs if is_base_mb(b) and b["data"] == v["data"] and same_budget(b, v)
                 and seed(b) == seed(v)] if what else []
        if not bases:
            continue
        base = min(bases, key=lambda b: abs(get(b, "config", "patch_size", default=0) - get(v, "config", "patch_size", default=0)))
        gain = bpb(base) - bpb(v)  # > 0: the extension lowers bpb
        line = [f"{v['name']} ({what}) {bpb(v):.4f} vs {base['name']} {bpb(base):.4f} bpb" + at(v, base)]
        c = v["config"]
        single = "cross-patch" if c.get("cross_patch") and not c.get("conv_kernels") and not c.get("levels") else \
            "conv" if c.get("conv_kernels") and not c.get("cross_patch") and not c.get("levels") else None
        if single:  # the paper measured this extension alone
            paper, helps = MB_TABLE10[single]
            expected = helps.get(v["data"], "neutral")
            claim = f"MEGABYTE's {single} extension {'lowers bpb' if expected == 'helps' else 'changes bpb little'} ({v['data']})"
            if expected == "helps":
                status = verdict(gain)
            else:
                status = "reproduced" if abs(gain) <= NOISE_BPB else \
                    f"not reproduced at this scale: it {'lowers' if gain > 0 else 'raises'} bpb by {abs(gain):.3f}"
            add(claim, "MEGABYTE Table 10", line + [f"paper: {paper}"], status)
        else:
            add(f"MEGABYTE with {what} against the main model ({v['data']})", "bytelm extension (no paper number)",
                line, f"measured: {'lower' if gain > 0 else 'higher'} by {abs(gain):.3f} bpb"
                if abs(gain) > NOISE_BPB else f"inconclusive (gap within {NOISE_BPB} bpb)")
    # BLT entropy patching vs space and fixed-size (static) patching of the same BLT.
    mode = lambda m: lambda r: get(r, "patches", "mode") == m
    for other, what in (("space", "space"), ("static", "fixed-size (static)")):
        ps = pairs(runs, "blt", "blt", mode("entropy"), mode(other))
        for e, s in ps:
            add(f"BLT entropy patching beats {what} patching at equal training FLOPs ({e['data']})", "BLT Fig. 6",
                [f"{e['name']} {bpb(e):.4f} ({fmt(get(e, 'patches', 'mean_bytes_per_patch'), '.2f')} B/patch) vs "
                 f"{s['name']} {bpb(s):.4f} ({fmt(get(s, 'patches', 'mean_bytes_per_patch'), '.2f')} B/patch)" + at(e, s)],
                verdict(bpb(s) - bpb(e)))
        if not ps and other == "space":
            add("BLT entropy patching beats space patching", "BLT Fig. 6", ["needs BLT entropy and space runs"],
                "not testable in this experiment")
    # BLT: smaller patches at inference (a lower threshold) buy bpb with FLOPs.
    for r in runs:
        sw = [x for x in r.get("sweep", []) if "bpb" in x]
        if sw:
            small = min(sw, key=lambda x: x["mean_bytes_per_patch"])
            big = max(sw, key=lambda x: x["mean_bytes_per_patch"])
            add(f"Smaller BLT patches at inference (lower entropy threshold) lower the bpb ({r['name']})",
                "BLT T1 (threshold 0.6 -> 0.1 at inference); patch-size scaling",
                [f"{small['mean_bytes_per_patch']:.2f} B/patch: {small['bpb']:.4f} bpb at "
                 f"{sci(get(small, 'flops', 'forward_per_byte'))} FLOPs/byte; {big['mean_bytes_per_patch']:.2f} B/patch: "
                 f"{big['bpb']:.4f} at {sci(get(big, 'flops', 'forward_per_byte'))}; trained at "
                 f"{fmt(get(r, 'patches', 'mean_bytes_per_patch'), '.2f')} B/patch: {bpb(r):.4f}. A flat row means the "
                 "local models (with hash n-gram embeddings) carry the prediction and the global model adds little"],
                verdict(big["bpb"] - small["bpb"]))
    # BLT vs BPE at equal training FLOPs, and inference FLOPs.
    ps = pairs(runs, "blt", "bpe")
    if ps:
        for b, t in ps:
            add(f"BLT matches BPE bpb at equal training FLOPs ({b['data']}, {b['name']})", "BLT Fig. 1/6",
                [f"{b['name']} {bpb(b):.4f} vs {t['name']} {bpb(t):.4f} bpb" + at(b, t)],
                "reproduced" if bpb(b) <= bpb(t) + NOISE_BPB else "not reproduced at this scale")
            fb, fe = get(b, "flops", "forward_per_byte"), get(b, "flops", "with_entropy_model_per_byte")
            ft = get(t, "flops", "forward_per_byte")
            add(f"BLT needs fewer inference FLOPs per byte than BPE ({b['name']})", "BLT Table 2 / Fig. 1",
                [f"{b['name']} {sci(fb)} FLOPs/byte without its entropy model, {sci(fe)} with it; "
                 f"{t['name']} {sci(ft)} at {fmt(get(t, 'eval', 'bytes_per_token'), '.2f')} bytes/token"],
                ("reproduced" if fb < ft else "not reproduced at this scale") +
                ("" if not get(b, "flops", "entropy_model_per_byte") else
                 " (also with the entropy model)" if fe < ft else " (not once the entropy model is counted)" if fb < ft else ""))
    else:
        add("BLT matches BPE at equal training FLOPs with fewer inference FLOPs", "BLT Fig. 1/6",
            ["needs BLT and BPE runs on the same data at the same budget"], "not testable in this experiment")
    # SpaceByte / BLT small-budget expectation: the subword model leads at small budgets.
    for kind in sorted({r["data"] for r in runs}):
        rs = [r for r in runs if r["data"] == kind and bpb(r) is not None]
        bp = [r for r in rs if r["model"] == "bpe"]
        by = [r for r in rs if r["model"] != "bpe"]
        if bp and by:
            best_byte = min(by, key=bpb)
            add(f"At small budgets the subword (BPE) model has the lowest bpb ({kind})", "SpaceByte T1; BLT Fig. 1",
                [f"best BPE {min(map(bpb, bp)):.4f} vs best byte model {best_byte['name']} {bpb(best_byte):.4f}" +
                 at(min(bp, key=bpb), best_byte)],
                verdict(bpb(best_byte) - min(map(bpb, bp))))
    # Robustness: byte models degrade less on noised text; CUTE-like character tasks.
    byte_rob = [r for r in rob if r["model"] != "bpe" and r.get("noise")]
    bpe_rob = [r for r in rob if r["model"] == "bpe" and r.get("noise")]
    if byte_rob and bpe_rob:
        mean = lambda r: sum(n["delta"] for n in r["noise"]) / len(r["noise"])
        tb = bpe_rob[0]
        verdicts = {verdict(mean(tb) - mean(b)) for b in byte_rob}
        add("Byte models degrade less than BPE on noised text", "BLT Table 3",
            [f"mean bpb increase over {len(tb['noise'])} noise kinds: " +
             ", ".join(f"{r['name']} +{mean(r):.3f}" for r in byte_rob + [tb])],
            verdicts.pop() if len(verdicts) == 1 else "mixed: " + "; ".join(
                f"{b['name']} {verdict(mean(tb) - mean(b))}" for b in byte_rob))
        def cute_bpb(r):
            c = [x["answer_bpb"] for x in r.get("cute", []) if "answer_bpb" in x]
            return sum(c) / len(c) if c else None
        cb = [r for r in byte_rob if cute_bpb(r) is not None]
        ct = [r for r in bpe_rob if cute_bpb(r) is not None]
        if cb and ct:
            t = ct[0]
            acc = lambda r: sum(x.get("accuracy", 0) for x in r["cute"]) / len(r["cute"])
            verdicts = {verdict(cute_bpb(t) - cute_bpb(b)) for b in cb}
            add("Byte models handle character-level tasks better than BPE (CUTE)", "BLT Table 3 (CUTE)",
                ["mean answer bpb / exact match (few-shot, no fine-tuning): " +
                 ", ".join(f"{r['name']} {cute_bpb(r):.3f} / {100 * acc(r):.0f}%" for r in cb + [t])],
                verdicts.pop() if len(verdicts) == 1 else "mixed: " + "; ".join(
                    f"{b['name']} {verdict(cute_bpb(t) - cute_bpb(b))}" for b in cb))
    else:
        add("Byte models are more robust to noise and better at character tasks than BPE", "BLT Table 3",
            ["needs robustness measurements of a byte model and a BPE model"], "not testable in this experiment")
    # Seeds: how far bpb moves with the seed, exact reruns, MEGABYTE vs Transformer over every seed.
    for f in seed_findings(res["runs"], is_base_mb):
        add(*f)
    # Compressors as a yardstick.
    for kind in sorted({r["data"] for r in runs}):
        comp = [c for c in res.get("compressors", []) if c["data"] == kind]
        rs = [r for r in runs if r["data"] == kind]
        if comp and rs:
            best = min(rs, key=bpb)
            c = min(comp, key=lambda c: c["bpb"])
            add(f"The best model beats the best general-purpose compressor ({kind})", "yardstick (not a paper claim)",
                [f"{best['name']} {bpb(best):.4f} vs {c['compressor']} {c['bpb']:.4f} bpb on the same {c['bytes']} bytes"],
                "yes" if bpb(best) < c["bpb"] else "no")
    return out
