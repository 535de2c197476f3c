"""caveats.py — what a verdict must carry besides its numbers (applied by findings.py to every finding):
- warm-up: a run whose warm-up exceeds records.WARMUP_SHARE of its steps (trainer.json) spent much of a short
  schedule at a low learning rate; every verdict that uses it is flagged;
- protocol: BPE is scored over non-overlapping token windows, byte models with sliding windows (each scored
  byte sees at least context - stride bytes), which favours the byte models; every verdict with a BPE run says
  so (re-scoring needs the checkpoints, which are not in the records);
- entropy model: BLT's entropy model is trained apart and runs over every byte BLT trains on; a comparison
  at equal training FLOPs that includes it is flagged when the totals no longer match (blt_accounting).
"""
from .common import get, sci
from .records import warmup_flag

BUDGET_CLAIMS = {"BLT-space", "BLT-static", "BLT-BPE", "SB-small"}  # compared at equal training FLOPs


def blt_accounting(res):
    """{BLT run name: FLOPs} for BLT runs with an entropy model: own training FLOPs, the entropy model's training
    FLOPs (its run record), its forward passes during BLT training (its forward FLOPs per byte x the bytes the
    BLT run trained on: one forward per byte, no backward), and the total."""
    by_name = {r["name"]: r for r in res["runs"]}
    out = {}
    for r in res["runs"]:
        ent = by_name.get(r.get("entropy_model") or "")
        if r["model"] != "blt" or not ent:
            continue
        per_byte = get(ent, "flops", "forward_per_byte")
        own, trained = get(r, "training", "flops"), get(r, "training", "bytes")
        e_train, e_fwd = get(ent, "training", "flops"), per_byte * trained
        out[r["name"]] = {"own": own, "entropy_model": ent["name"], "entropy_training": e_train,
                          "entropy_forward_per_byte": per_byte, "bytes": trained, "entropy_forward": e_fwd,
                          "total": own + e_train + e_fwd}
    return out


def protocol_line(bpe, byte_runs):
    ctx = {get(r, "training", "context") for r in byte_runs}
    stride = {get(r, "eval", "stride") for r in byte_runs}
    return (f"protocols differ: {bpe['name']} is scored over non-overlapping windows of "
            f"{get(bpe, 'training', 'context')} tokens, the byte models with sliding windows (context "
            f"{'/'.join(map(str, sorted(ctx)))} bytes, stride {'/'.join(map(str, sorted(stride)))}), which gives "
            "every scored byte more context and favours the byte models; re-scoring BPE with sliding windows "
            "needs the checkpoints, which are not in the records")


def apply(found, res):
    acct = blt_accounting(res)
    for f in found:
        flags = []
        warm = [w for w in (warmup_flag(r) for r in f["runs"]) if w]
        if warm:
            f["caveats"].append("warm-up over 10% of the steps: " + "; ".join(warm))
            flags.append("warm-up > 10% of steps: " + ", ".join(w.split()[0] for w in warm))
        bpe = [r for r in f["runs"] if r["model"] == "bpe"]
        if bpe:
            f["caveats"].append(protocol_line(bpe[0], [r for r in f["runs"] if r["model"] != "bpe"]))
            flags.append("BPE scored with another protocol")
        if f.get("id") in BUDGET_CLAIMS:
            for r in f["runs"]:
                a = acct.get(r["name"])
                others = [o for o in f["runs"] if o is not r]
                if a and others:
                    o = others[0]
                    ratio = a["total"] / get(o, "training", "flops")
                    f["caveats"].append(f"{r['name']} with its entropy model counted: {sci(a['total'])} training "
                                        f"FLOPs, {ratio:.2f} x {o['name']}'s {sci(get(o, 'training', 'flops'))}")
                    if abs(ratio - 1) > 0.1:
                        flags.append(f"not compute-matched once {r['name']}'s entropy model is counted ({ratio:.2f}x)")
        f["flags"] = flags
        if flags:
            f["status"] += " [" + "; ".join(flags) + "]"
