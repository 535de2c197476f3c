"""experiment_common.py — number formatting and record access shared by experiment_report.py and
experiment_findings.py (the report of `bytelm experiment report`)."""
import math


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
