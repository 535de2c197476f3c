"""caveats.py — what a verdict must carry besides its numbers (applied by findings.py to every finding):
- warm-up: a run whose warm-up exceeds records.WARMUP_SHARE of its steps (trainer.json) spent much of a short
  schedule at a low learning rate; every verdict that uses it is flagged (generation speed excepted: it does
  not depend on training); a run worse than every compressor on its data is flagged as undertrained;
- protocol: older records score BPE over non-overlapping token windows (eval.sliding false), byte models with
  sliding windows (each scored byte sees at least context - stride bytes), which favours the byte models; every
  verdict with such a BPE run says so (protocol_line says it in full). Newer records score BPE with sliding
  windows too (eval.sliding true, eval.stride_unit "tokens") and carry no such flag;
- entropy model: BLT's entropy model is trained apart and runs over every byte BLT trains on; a comparison
  at equal training FLOPs that includes it is flagged when the totals no longer match (blt_accounting).
"""
from .common import get, sci, seed
from .records import steps_and_warmup, warmup_flag

BUDGET_CLAIMS = {"BLT-space", "BLT-static", "BLT-BPE", "SB-small"}  # compared at equal training FLOPs
TRAINING_FREE = {"M4"}  # generation speed depends on the architecture, not on how the weights were trained


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


def warmup_short(runs):
    """'images_tf 50%, images_mb12 26%' for the flagged runs among `runs` (runs of one model, data and share,
    e.g. the seeds of an entry, once: 'code_tf 43% (x3)')."""
    seen = {}
    for r in runs:
        if warmup_flag(r):
            steps, warm = steps_and_warmup(r)
            key = (r["model"], r["data"], f"{100 * warm / steps:.0f}%")
            seen.setdefault(key, []).append(r["name"])
    return ", ".join(f"{names[0]} {k[2]}" + (f" (x{len(names)})" if len(names) > 1 else "") for k, names in seen.items())


def undertrained(runs, compressors):
    """(name, caveat) for a run scoring worse than every compressor on its data kind while another run of the
    comparison does not: the comparison sets a model that has barely learned against one that has."""
    worse = []
    for r in runs:
        comp = [c for c in compressors if c["data"] == r["data"]]
        worst = max(comp, key=lambda c: c["bpb"]) if comp else None
        if worst and get(r, "eval", "bpb") is not None:
            worse.append((r, worst, get(r, "eval", "bpb") > worst["bpb"]))
    if all(w for _, _, w in worse):
        return []
    return [(r["name"], f"{r['name']} scores worse than every compressor ({get(r, 'eval', 'bpb'):.4f} vs "
                        f"{c['compressor']} {c['bpb']:.4f}) while the run it is compared with does not: undertrained")
            for r, c, w in worse if w]


def other_protocol(r):
    """A BPE run scored over non-overlapping token windows (older records), unlike the byte models."""
    return r["model"] == "bpe" and not get(r, "eval", "sliding")


def entropy_flags(f, acct):
    """Caveat lines and flags for a BLT run with an entropy model in a comparison at equal training FLOPs (the
    run it is compared with: the other run of its seed, for a finding over seeds)."""
    lines, flags = [], []
    for r in f["runs"]:
        a, others = acct.get(r["name"]), [o for o in f["runs"] if o is not r and seed(o) == seed(r)]
        if a and others:
            o = others[0]
            ratio = a["total"] / get(o, "training", "flops")
            lines.append(f"{r['name']} with its entropy model counted: {sci(a['total'])} training FLOPs, "
                         f"{ratio:.2f} x {o['name']}'s {sci(get(o, 'training', 'flops'))}")
            if abs(ratio - 1) > 0.1:
                flags.append(f"entropy model counted: {ratio:.2f}x the budget")
    return lines, flags


def apply(found, res):
    """Sets each finding's flags (short, also appended to its status in brackets) and caveat lines; keeps
    the bare verdict in f["verdict"]."""
    acct = blt_accounting(res)
    for f in found:
        flags, f["verdict"] = [], f["status"]
        trained = f.get("id") not in TRAINING_FREE
        warm = warmup_short(f["runs"]) if trained else ""
        if warm:
            flags.append("warm-up > 10%: " + warm)
        for name, line in undertrained(f["runs"], res.get("compressors", [])) if trained else []:
            f["caveats"].append(line)
            flags.append(f"undertrained: {name}")
        if any(other_protocol(r) for r in f["runs"]):
            flags.append("BPE: other eval protocol")
        if f.get("id") in BUDGET_CLAIMS:
            lines, fl = entropy_flags(f, acct)
            f["caveats"] += lines
            flags += fl
        f["flags"] = flags = list(dict.fromkeys(flags))
        if flags:
            f["status"] += " [" + "; ".join(flags) + "]"
