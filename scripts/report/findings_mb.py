"""findings_mb.py — MEGABYTE's claims (M1 lower bpb than a byte Transformer, M3 flat in the patch size,
M4 faster generation, Table 10's extensions) and the compressor yardstick, as findings (see findings.py).
Each comparison is labelled by out.tag (data kind; byte context and budget where the kind has several)."""
import math
import statistics

from .common import bpb, get, loaded, paired_rounds, same_budget, sci, seed, thr, verdict
from .findings import at, is_base_mb, mb_variant, pairs, same_context

# MEGABYTE Table 10 (compute-matched bpb; arXiv text / audio / ImageNet-256): with and without an extension.
MB_TABLE10 = {
    "cross-patch": ("without cross-patch attention 0.6781 / 3.481 / 3.259, with it 0.6871 / 3.477 / 3.158",
                    {"images": "helps"}),
    "conv": ("with the CNN encoder 0.6871 / 3.475 / 3.155, without it 0.6871 / 3.477 / 3.158", {}),
}


def mb_vs_tf(out, runs, over_seeds):
    """M1 per data kind, from one seed; kinds measured over several seeds are left to seeds.py."""
    ps = [(mb, tf) for mb, tf in pairs(runs, "megabyte", "transformer", is_base_mb) if mb["data"] not in over_seeds]
    for mb, tf in ps:
        d = bpb(tf) - bpb(mb)
        out.add(f"MEGABYTE has lower bpb than a byte Transformer at equal training FLOPs ({out.tag(mb, tf)})",
                "MEGABYTE T1-T5 (M1)",
                [f"{mb['name']} {bpb(mb):.4f} vs {tf['name']} {bpb(tf):.4f} bpb at {sci(get(mb, 'training', 'flops'))} "
                 f"/ {sci(get(tf, 'training', 'flops'))} FLOPs ({get(mb, 'training', 'bytes', default=0) / 1e6:.2f} / "
                 f"{get(tf, 'training', 'bytes', default=0) / 1e6:.2f} MB trained); one seed"],
                verdict(d, out.noise(mb["data"])), [mb, tf], id="M1", kind=mb["data"], where=out.tag(mb, tf), gap=d,
                lead="Transformer minus MEGABYTE bpb")
    if not ps and not over_seeds:
        out.add("MEGABYTE has lower bpb than a byte Transformer at equal training FLOPs", "MEGABYTE (M1)",
                ["needs a megabyte and a transformer run on the same data at the same budget"],
                "not testable in this experiment", id="M1")


def flat_in_p(out, runs):
    groups = {}
    for r in runs:
        if is_base_mb(r):
            groups.setdefault((r["data"], round(math.log10(get(r, "training", "flops", default=1)), 1),
                               get(r, "training", "context"), seed(r)), []).append(r)
    flat = [g for g in groups.values() if len({get(r, "config", "patch_size") for r in g}) > 1]
    for g in flat:
        spread = max(bpb(r) for r in g) - min(bpb(r) for r in g)
        n = out.noise(g[0]["data"])
        out.add(f"MEGABYTE's bpb is flat over the patch size ({out.tag(*g)})", "MEGABYTE T10/T12 (M3)",
                [", ".join(f"P={get(r, 'config', 'patch_size')}: {bpb(r):.4f}" for r in g) + f"; spread {spread:.3f} "
                 f"(flat means within the seed band, {thr(n)} bpb)" + at(*g)],
                flat_rule(spread, n), g, id="M3", kind=g[0]["data"], where=out.tag(*g), gap=spread, rule=flat_rule,
                lead="bpb spread over patch sizes")
    if not flat:
        out.add("MEGABYTE's bpb is flat over the patch size", "MEGABYTE (M3)", ["needs MEGABYTE runs with two patch sizes"],
                "not testable in this experiment", id="M3")


def flat_rule(spread, n):
    return "reproduced" if spread <= n else "not reproduced at this scale" if spread > 2 * n else \
        f"inconclusive (spread between 1 and 2 x the seed band {thr(n)} bpb)"


def speed(out, runs):
    gp = [(a, b) for a, b in pairs(runs, "megabyte", "transformer", is_base_mb) if a.get("generation") and b.get("generation")]
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
        out.add(f"MEGABYTE generates faster than a compute-matched Transformer ({out.tag(mb, tf)})",
                "MEGABYTE T5/T9 (M4)", [line], status, [mb, tf], id="M4", kind=mb["data"], where=out.tag(mb, tf),
                ratio=ratio)


def extensions(out, runs):
    """MEGABYTE's extensions against the main model on the same data at the same budget."""
    for v in runs:
        what = mb_variant(v)
        bases = [b for b in runs if is_base_mb(b) and b["data"] == v["data"] and same_budget(b, v)
                 and seed(b) == seed(v) and same_context(b, v)] if what else []
        if not bases:
            continue
        base = min(bases, key=lambda b: abs(get(b, "config", "patch_size", default=0) - get(v, "config", "patch_size", default=0)))
        gain, n = bpb(base) - bpb(v), out.noise(v["data"])  # gain > 0: the extension lowers bpb
        line = [f"{v['name']} ({what}) {bpb(v):.4f} vs {base['name']} {bpb(base):.4f} bpb" + at(v, base)]
        c = v["config"]
        single = "cross-patch" if c.get("cross_patch") and not c.get("conv_kernels") and not c.get("levels") else \
            "conv" if c.get("conv_kernels") and not c.get("cross_patch") and not c.get("levels") else None
        if single:  # the paper measured this extension alone
            paper, helps = MB_TABLE10[single]
            expected = helps.get(v["data"], "neutral")
            claim = (f"MEGABYTE's {single} extension {'lowers bpb' if expected == 'helps' else 'changes bpb little'} "
                     f"({out.tag(v, base)})")
            rule = None if expected == "helps" else neutral  # None: common.verdict (seeds.seed_verdict over seeds)
            out.add(claim, "MEGABYTE Table 10", line + [f"paper: {paper}"], (rule or verdict)(gain, n), [v, base],
                    id="T10-" + single,
                    kind=v["data"], where=out.tag(v, base), gap=gain, rule=rule, lead="bpb lowered by the extension")
        else:
            out.add(f"MEGABYTE with {what} against the main model ({out.tag(v, base)})", "bytelm extension (no paper number)",
                    line, measured(gain, n), [v, base], id="ext", kind=v["data"], where=out.tag(v, base), gap=gain,
                    rule=measured, lead="bpb lowered by the extension")


def neutral(gain, n):
    return "reproduced" if abs(gain) <= n else \
        f"not reproduced at this scale: it {'lowers' if gain > 0 else 'raises'} bpb by {abs(gain):.3f}"


def measured(gain, n):
    return f"measured: {'lower' if gain > 0 else 'higher'} by {abs(gain):.3f} bpb" if abs(gain) > n else \
        f"inconclusive (gap within {thr(n)} bpb)"


def add_all(out, runs, over_seeds):
    mb_vs_tf(out, runs, over_seeds)
    flat_in_p(out, runs)
    speed(out, runs)
    extensions(out, runs)


def yardsticks(out, runs, compressors):
    """The best model of each data kind against the best general-purpose compressor on the same bytes."""
    for kind in sorted({r["data"] for r in runs}):
        comp = [c for c in compressors if c["data"] == kind]
        rs = [r for r in runs if r["data"] == kind]
        if comp and rs:
            best = min(rs, key=bpb)
            c = min(comp, key=lambda c: c["bpb"])
            out.add(f"The best model beats the best general-purpose compressor ({kind})", "yardstick (not a paper claim)",
                    [f"{best['name']} {bpb(best):.4f} vs {c['compressor']} {c['bpb']:.4f} bpb on the same {c['bytes']} bytes"],
                    "yes" if bpb(best) < c["bpb"] else "no", [best], id="yardstick", kind=kind)
