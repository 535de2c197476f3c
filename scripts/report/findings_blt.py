"""findings_blt.py — BLT's claims (entropy patching beats space and fixed-size patching; smaller patches at
inference; BLT matches BPE at equal training FLOPs with fewer inference FLOPs), BLT's latent global transformer
ablated at evaluation (record["global_ablation"]: skipped and zeroed against intact), the small-budget subword
expectation (SpaceByte; per data kind, budget and seed), and robustness to noised text (per noise kind) and
CUTE-like character tasks against BPE, as findings (see findings.py)."""
from .common import bpb, budget, fmt, get, same_budget, sci, seed, verdict
from .findings import at, pairs


def patching(out, runs):
    """BLT entropy patching vs space and fixed-size (static) patching of the same BLT."""
    mode = lambda m: lambda r: get(r, "patches", "mode") == m
    for other, what in (("space", "space"), ("static", "fixed-size (static)")):
        ps = pairs(runs, "blt", "blt", mode("entropy"), mode(other))
        for e, s in ps:
            out.add(f"BLT entropy patching beats {what} patching at equal training FLOPs ({out.tag(e, s)})", "BLT Fig. 6",
                    [f"{e['name']} {bpb(e):.4f} ({fmt(get(e, 'patches', 'mean_bytes_per_patch'), '.2f')} B/patch) vs "
                     f"{s['name']} {bpb(s):.4f} ({fmt(get(s, 'patches', 'mean_bytes_per_patch'), '.2f')} B/patch)" + at(e, s)],
                    verdict(bpb(s) - bpb(e), out.noise(e["data"])), [e, s], id="BLT-" + other, kind=e["data"],
                    where=out.tag(e, s), gap=bpb(s) - bpb(e), lead=f"{other} minus entropy bpb")
        if not ps and other == "space":
            out.add("BLT entropy patching beats space patching", "BLT Fig. 6", ["needs BLT entropy and space runs"],
                    "not testable in this experiment", id="BLT-space")


def threshold_sweep(out, runs):
    """Smaller patches at inference (a lower threshold) buy bpb with FLOPs."""
    for r in runs:
        sw = [x for x in r.get("sweep", []) if "bpb" in x]
        if not sw:
            continue
        small = min(sw, key=lambda x: x["mean_bytes_per_patch"])
        big = max(sw, key=lambda x: x["mean_bytes_per_patch"])
        moved = max(x["bpb"] for x in sw) - min(x["bpb"] for x in sw)
        out.add(f"Smaller BLT patches at inference (lower entropy threshold) lower the bpb ({r['name']})",
                "BLT T1 (threshold 0.6 -> 0.1 at inference); patch-size scaling",
                [f"{small['mean_bytes_per_patch']:.2f} B/patch: {small['bpb']:.4f} bpb at "
                 f"{sci(get(small, 'flops', 'forward_per_byte'))} FLOPs/byte; {big['mean_bytes_per_patch']:.2f} B/patch: "
                 f"{big['bpb']:.4f} at {sci(get(big, 'flops', 'forward_per_byte'))}; trained at "
                 f"{fmt(get(r, 'patches', 'mean_bytes_per_patch'), '.2f')} B/patch: {bpb(r):.4f}. Over the {len(sw)} "
                 f"thresholds bpb moves by {moved:.4f}: the patch boundaries, and with them the global model's "
                 "share of the work, barely matter here; the local models (with hash n-gram embeddings) carry "
                 "the prediction"],
                verdict(big["bpb"] - small["bpb"], out.noise(r["data"])), [r], id="BLT-threshold", kind=r["data"],
                where=out.tag(r), gap=big["bpb"] - small["bpb"], moved=moved,
                lead="bpb at the largest minus the smallest patches")


def matches(gap, n):
    """BLT matches BPE: reproduced unless BLT trails by more than the band (gap: BPE minus BLT bpb)."""
    return "reproduced" if gap >= -n else "not reproduced at this scale"


def blt_vs_bpe(out, runs):
    ps = pairs(runs, "blt", "bpe")
    for b, t in ps:
        sw = [x["bpb"] for x in b.get("sweep", []) if "bpb" in x]
        why = (f"; the threshold sweep moves {b['name']}'s bpb by {max(sw) - min(sw):.4f}, so the lead is not "
               "shown to come from patching (a BLT without hash n-gram embeddings was not trained)") if sw else ""
        out.add(f"BLT matches BPE bpb at equal training FLOPs ({out.tag(b, t)}, {b['name']})", "BLT Fig. 1/6",
                [f"{b['name']} {bpb(b):.4f} vs {t['name']} {bpb(t):.4f} bpb" + at(b, t) + why],
                matches(bpb(t) - bpb(b), out.noise(b["data"])), [b, t], id="BLT-BPE", kind=b["data"],
                where=out.tag(b, t), gap=bpb(t) - bpb(b), rule=matches, lead="BPE minus BLT bpb")
        fb, fe = get(b, "flops", "forward_per_byte"), get(b, "flops", "with_entropy_model_per_byte")
        ft = get(t, "flops", "forward_per_byte")
        out.add(f"BLT needs fewer inference FLOPs per byte than BPE ({b['name']})", "BLT Table 2 / Fig. 1",
                [f"{b['name']} {sci(fb)} FLOPs/byte without its entropy model, {sci(fe)} with it; "
                 f"{t['name']} {sci(ft)} at {fmt(get(t, 'eval', 'bytes_per_token'), '.2f')} bytes/token"],
                ("reproduced" if fb < ft else "not reproduced at this scale") +
                ("" if not get(b, "flops", "entropy_model_per_byte") else
                 " (also with the entropy model)" if fe < ft else " (not once the entropy model is counted)" if fb < ft else ""),
                [b, t], id="BLT-infer", kind=b["data"], where=out.tag(b, t), ratio=(fe or fb) / ft)
    if not ps:
        out.add("BLT matches BPE at equal training FLOPs with fewer inference FLOPs", "BLT Fig. 1/6",
                ["needs BLT and BPE runs on the same data at the same budget"], "not testable in this experiment",
                id="BLT-BPE")


def small_budget(out, runs):
    """SpaceByte / BLT small-budget expectation: the subword model leads at small budgets (per data kind, budget
    and seed: the best BPE against the best byte model trained with the same budget and seed)."""
    rs = [r for r in runs if bpb(r) is not None]
    done = []
    for r0 in rs:
        if any(same_budget(r0, d) and r0["data"] == d["data"] and seed(r0) == seed(d) for d in done):
            continue
        done.append(r0)
        g = [r for r in rs if r["data"] == r0["data"] and same_budget(r, r0) and seed(r) == seed(r0)]
        bp, by = [r for r in g if r["model"] == "bpe"], [r for r in g if r["model"] != "bpe"]
        if bp and by:
            best_byte, best_bpe = min(by, key=bpb), min(bp, key=bpb)
            kind, gap = r0["data"], bpb(best_byte) - bpb(best_bpe)
            out.add(f"At small budgets the subword (BPE) model has the lowest bpb ({out.tag(best_bpe, best_byte)})",
                    "SpaceByte T1; BLT Fig. 1",
                    [f"best BPE {bpb(best_bpe):.4f} vs best byte model {best_byte['name']} {bpb(best_byte):.4f}" +
                     at(best_bpe, best_byte)],
                    verdict(gap, out.noise(kind)), [best_bpe, best_byte], id="SB-small", kind=kind,
                    where=out.tag(best_bpe, best_byte), gap=gap, key=(kind, f"{budget(best_bpe):.2g}"),
                    lead="best byte model minus best BPE bpb")


def global_ablation(out, runs):
    """BLT's latent global transformer ablated at evaluation: skipped (each patch keeps the encoder's summary of
    its own bytes but sees no other patch) and zeroed (the decoder gets no patch information). The verdict:
    zeroed minus intact bpb against the noise band."""
    for r in runs:
        a = r.get("global_ablation") or {}
        if r["model"] != "blt" or a.get("zeroed_bpb") is None or bpb(r) is None:
            continue
        zero = a["zeroed_bpb"] - bpb(r)
        skip = a["skipped_bpb"] - bpb(r) if a.get("skipped_bpb") is not None else None
        out.add(f"BLT's latent global transformer carries part of the prediction ({out.tag(r)}, {r['name']})",
                "BLT §3 (no ablation in the paper)",
                [f"{r['name']} intact {bpb(r):.4f}, global model skipped {fmt(a.get('skipped_bpb'), '.4f')} "
                 f"({fmt(skip, '+.4f')}), zeroed {a['zeroed_bpb']:.4f} ({zero:+.4f}) bpb",
                 "skipped: each patch keeps the encoder's summary of its own bytes but sees no other patch; zeroed: "
                 "the decoder gets no patch information, so only the local encoder/decoder with hash n-gram "
                 "embeddings predicts; the verdict is zeroed minus intact against the noise band"],
                verdict(zero, out.noise(r["data"])), [r], id="BLT-global", kind=r["data"], where=out.tag(r),
                gap=zero, skip=skip, lead="zeroed minus intact bpb")


def combined(verdicts):
    """One status from verdicts {who: verdict}: the verdict when all agree, else who per verdict ("mixed: ...")."""
    vs = set(verdicts.values())
    if len(vs) == 1:
        return vs.pop()
    short = lambda v: v.split(" (")[0].replace(" at this scale", "")
    groups = {}
    for n, v in verdicts.items():
        groups.setdefault(short(v), []).append(n)
    return "mixed: " + "; ".join(f"{v}: {', '.join(ns)}" for v, ns in groups.items())


def robustness(out, runs, rob):
    """Per noise kind: each byte model's bpb increase against BPE's (one verdict per kind, no mean over kinds)."""
    byte_rob = [r for r in rob if r["model"] != "bpe" and r.get("noise")]
    bpe_rob = [r for r in rob if r["model"] == "bpe" and r.get("noise")]
    if not (byte_rob and bpe_rob):
        out.add("Byte models are more robust to noise and better at character tasks than BPE", "BLT Table 3",
                ["needs robustness measurements of a byte model and a BPE model"], "not testable in this experiment",
                id="ROB")
        return
    tb = bpe_rob[0]
    by_name = {r["name"]: r for r in runs}
    used = [by_name[r["name"]] for r in byte_rob + [tb] if r["name"] in by_name]
    n = out.noise(rob[0].get("data", "text"))
    for k in [x["noise"] for x in tb["noise"]]:
        delta = lambda r: next((x["delta"] for x in r["noise"] if x["noise"] == k), None)
        bs = [b for b in byte_rob if delta(b) is not None]
        verdicts = {b["name"]: verdict(delta(tb) - delta(b), n) for b in bs}
        out.add(f"Byte models degrade less than BPE on noised text: {k}", "BLT Table 3",
                [f"bpb increase over clean text: " + ", ".join(f"{r['name']} +{delta(r):.3f}" for r in bs + [tb])],
                combined(verdicts), used, id="ROB-" + k, kind="text", gap=max(delta(tb) - delta(b) for b in bs))
    cute(out, byte_rob, bpe_rob, used, n)


def cute(out, byte_rob, bpe_rob, used, n):
    def cute_bpb(r):
        c = [x["answer_bpb"] for x in r.get("cute", []) if "answer_bpb" in x]
        return sum(c) / len(c) if c else None
    cb = [r for r in byte_rob if cute_bpb(r) is not None]
    ct = [r for r in bpe_rob if cute_bpb(r) is not None]
    if cb and ct:
        t = ct[0]
        acc = lambda r: sum(x.get("accuracy", 0) for x in r["cute"]) / len(r["cute"])
        verdicts = {b["name"]: verdict(cute_bpb(t) - cute_bpb(b), n) for b in cb}
        out.add("Byte models handle character-level tasks better than BPE (CUTE)", "BLT Table 3 (CUTE)",
                ["mean answer bpb / exact match (few-shot, no fine-tuning): " +
                 ", ".join(f"{r['name']} {cute_bpb(r):.3f} / {100 * acc(r):.0f}%" for r in cb + [t])],
                combined(verdicts), used, id="CUTE", kind="text", gap=max(cute_bpb(t) - cute_bpb(b) for b in cb))


def add_all(out, runs, res):
    patching(out, runs)
    threshold_sweep(out, runs)
    blt_vs_bpe(out, runs)
    global_ablation(out, runs)
    small_budget(out, runs)
    robustness(out, runs, res.get("robustness", []))
