"""experiment_common.py — number formatting and record access shared by experiment_report.py and
experiment_findings.py (the report of `bytelm experiment report`)."""
import math

NOISE_BPB = 0.02  # bpb gaps below this are reported as inconclusive (one seed per run unless a plan repeats them)


def verdict(better_by):
    """better_by: the claimed winner's bpb advantage (positive = claim holds)."""
    if better_by > NOISE_BPB:
        return "reproduced"
    if better_by < -NOISE_BPB:
        return "not reproduced at this scale"
    return f"inconclusive (gap within {NOISE_BPB} bpb)"


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


def same_budget(a, b):
    fa, fb = get(a, "training", "flops"), get(b, "training", "flops")
    return fa and fb and abs(fa - fb) <= 0.1 * max(fa, fb)
