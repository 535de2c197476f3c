"""noise.py — the bpb gap below which the report calls a comparison inconclusive, set from measured seed
spreads instead of a fixed number.

With seed records (a plan that trains entries from several seeds, e.g. a seed check), the threshold for a
data kind is the largest spread (max - min held-out bpb over seeds) of any entry of that kind; a kind the
seeds do not cover takes the largest spread over all entries. Without seed records: common.NOISE_BPB.
The spread is that of one model's bpb; a gap between two models, or a robustness delta (a difference of two
bpbs of one model), has not had its own seed spread measured, and uses the same threshold.
"""
from .common import NOISE_BPB
from .seeds import seed_groups, spreads


class Noise:
    """Threshold per data kind: noise(kind) -> bpb; describe() says where it came from."""

    def __init__(self, default=NOISE_BPB, by_kind=None, source=None, rows=None):
        self.default, self.by_kind, self.source, self.rows = default, by_kind or {}, source, rows or []

    def __call__(self, kind=None):
        return self.by_kind.get(kind, self.default)

    def describe(self):
        if not self.source:
            return f"gaps under {self.default} bpb are called inconclusive (a fixed threshold: no seed records)"
        kinds = ", ".join(f"{k} {v:.3f}" for k, v in sorted(self.by_kind.items()))
        return (f"gaps under the measured seed spread (max - min held-out bpb of one plan entry over its seeds) are "
                f"called inconclusive: per data kind where the seed runs ({self.source}) cover it ({kinds} bpb), else "
                f"the largest spread of any entry, {self.default:.3f} bpb")


def from_seed_runs(runs, source):
    """A Noise from runs that repeat plan entries with other seeds (None when no entry has two seeds)."""
    sp = spreads(seed_groups(runs))
    if not sp:
        return None
    by_kind = {}
    for r, _, d in sp:
        by_kind[r["data"]] = max(by_kind.get(r["data"], 0.0), d)
    return Noise(default=max(d for _, _, d in sp), by_kind=by_kind, source=source, rows=sp)
