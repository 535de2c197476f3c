"""noise.py — the bpb gap below which the report calls a comparison inconclusive, set from measured seed
spreads instead of a fixed number.

With seed records (a plan that trains entries from several seeds, e.g. a seed check), a comparison measured
over seeds uses the larger seed spread (max - min held-out bpb over seeds) of the entries it compares
(for_runs); any other comparison of a data kind uses the largest spread of any entry of that kind, and a kind
the seeds do not cover the largest spread over all entries (one erratic model widens only these). Without
seed records: common.NOISE_BPB. A robustness delta (a difference of two bpbs of one model) has not had its own
seed spread measured, and uses the kind's threshold.
"""
from .common import NOISE_BPB
from .seeds import entry_key, seed_groups, spreads


class Noise:
    """Threshold per data kind: noise(kind) -> bpb; describe() says where it came from."""

    def __init__(self, default=NOISE_BPB, by_kind=None, source=None, rows=None, by_entry=None):
        self.default, self.by_kind, self.source, self.rows = default, by_kind or {}, source, rows or []
        self.by_entry = by_entry or {}

    def __call__(self, kind=None):
        return self.by_kind.get(kind, self.default)

    def for_runs(self, kind, runs):
        """The band of a comparison of `runs`: the largest measured seed spread of their entries, else the kind's."""
        measured = [self.by_entry[k] for k in (entry_key(r, with_seed=False) for r in runs if r.get("entry"))
                    if k in self.by_entry]
        return max(measured) if measured else self(kind)

    def describe(self):
        if not self.source:
            return f"gaps under {self.default} bpb are called inconclusive (a fixed threshold: no seed records)"
        kinds = ", ".join(f"{k} {v:.3f}" for k, v in sorted(self.by_kind.items()))
        return (f"gaps under the measured seed spread (max - min held-out bpb of one plan entry over its seeds) are "
                f"called inconclusive: over seeds, the larger spread of the two entries compared (given with each "
                f"finding); otherwise per data kind where the seed runs ({self.source}) cover it, the largest spread "
                f"of any entry ({kinds} bpb), else the largest spread of any entry, {self.default:.3f} bpb")


def from_seed_runs(runs, source):
    """A Noise from runs that repeat plan entries with other seeds (None when no entry has two seeds)."""
    sp = spreads(seed_groups(runs))
    if not sp:
        return None
    by_kind = {}
    for r, _, d in sp:
        by_kind[r["data"]] = max(by_kind.get(r["data"], 0.0), d)
    by_entry = {entry_key(r, with_seed=False): d for r, _, d in sp}
    return Noise(default=max(d for _, _, d in sp), by_kind=by_kind, source=source, rows=sp, by_entry=by_entry)
