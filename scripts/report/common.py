"""common.py — number formatting, record access and the shared tests of a comparison (noise
threshold, budget, seed, load, interleaved timing rounds),
used by report (python3 -m report), findings.py and seeds.py (the report of `bytelm experiment report`)."""
import math

NOISE_BPB = 0.02  # bpb gaps below this are reported as inconclusive (one seed per run unless a plan repeats them)


def thr(noise):
    """A noise threshold as text: 0.02 -> "0.02", 0.041664 -> "0.042"."""
    return f"{round(noise, 3):g}"


def verdict(better_by, noise=NOISE_BPB):
    """better_by: the claimed winner's bpb advantage (positive = claim holds); noise: the inconclusive band."""
    if better_by > noise:
        return "reproduced"
    if better_by < -noise:
        return "not reproduced at this scale"
    return f"inconclusive (gap within {thr(noise)} bpb)"


def fmt(v, spec=".3f"):
    """A number as text ("-" when missing or NaN); spec "e" gives two-decimal scientific notation."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and spec == "e":
        return f"{v:.2e}"
    return format(v, spec)


def sci(v):
    return "-" if v is None else f"{v:.2e}"


def get(d, *keys, default=None):
    """d[k1][k2]... or default when any level is missing."""
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def bpb(r):
    return get(r, "eval", "bpb")


def seed(r):
    """The seed a run was trained from (its plan entry's)."""
    return get(r, "entry", "seed", default=r.get("seed"))


def budget(r):
    """The training FLOPs a run was planned with (BLT and H-Net record their real FLOPs apart from the plan's)."""
    return get(r, "training", "budget") or get(r, "entry", "budget") or get(r, "training", "flops")


def flops_label(v):
    """1.5e13 -> "1.5e13", 2e13 -> "2e13"."""
    return f"{v:.2g}".replace("e+", "e")


def same_budget(a, b):
    fa, fb = get(a, "training", "flops"), get(b, "training", "flops")
    return fa and fb and abs(fa - fb) <= 0.1 * max(fa, fb)


def timing_provenance(r):
    """Where and when the run's generation was timed: its own provenance when it has one (e.g. after
    `experiment run --retime`), else the record's."""
    return get(r, "generation", "provenance") or r.get("provenance", {})


def loaded(r):
    """A note when the machine was busier than its cores when the run's generation was timed: timings unreliable."""
    prov = timing_provenance(r)
    try:
        load, cores = float(get(prov, "load_average_1min")), int(get(prov, "cores"))
    except (TypeError, ValueError):
        return None
    return f"load {load:.1f} on {cores} cores" if load > cores + 0.5 else None


def paired_rounds(a, b):
    """Per-round speed ratios a/b when both runs were retimed in the same interleaved rounds (`--retime`), else
    None. Pairing by round cancels the host's drift, which moves both alike within a round."""
    ga, gb = a.get("generation", {}), b.get("generation", {})
    sa, sb = ga.get("bytes_per_s_samples"), gb.get("bytes_per_s_samples")
    same_rounds = ga.get("retimed") and gb.get("retimed") and \
        get(ga, "provenance", "time_utc") == get(gb, "provenance", "time_utc")
    if not same_rounds or not sa or not sb or len(sa) != len(sb) or len(sa) < 5:
        return None
    return [x / y for x, y in zip(sa, sb) if y > 0]
