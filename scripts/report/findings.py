"""findings.py — the Findings section of `bytelm experiment report` (imported by report (python3 -m report)).

Each paper claim becomes one finding: reproduced / not reproduced at this scale / inconclusive (a gap inside
the noise band) / mixed / not testable in this experiment, with the numbers and the compute used.
Comparisons pair runs trained from the same seed. The noise band is res["noise"] (noise.py: the measured
seed spread per data kind) or common.NOISE_BPB. Runs a plan repeats with other seeds, or the runs of a
separate seed check in res["seed_runs"], add the findings of seeds.py; a MEGABYTE-vs-Transformer claim
measured over a separate seed check's seeds replaces the single-seed one of that data kind. caveats.py then flags each verdict
whose runs warmed up too long, compare BPE under another evaluation protocol, or leave an entropy model
uncounted. The claims themselves are in findings_mb.py (MEGABYTE) and findings_blt.py (BLT, BPE, noise).
"""
from .common import get, same_budget, sci, seed
from .noise import Noise
from .seeds import first_of_each_entry, seed_findings


class Findings(list):
    """The list of findings, with add() and the noise band per data kind."""

    def __init__(self, noise):
        super().__init__()
        self.noise = noise

    def add(self, claim, source, lines, status, runs=(), **extra):
        """extra: id (the claim's key in summary.PAPER), kind (data), gap (the claimed winner's bpb lead)."""
        self.append({"claim": claim, "source": source, "status": status, "evidence": list(lines),
                     "runs": list(runs), "caveats": [], **extra})


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


def at(*rs):
    """The compute behind a comparison: each run's training FLOPs and bytes trained."""
    return "; compute: " + ", ".join(f"{r['name']} {sci(get(r, 'training', 'flops'))} FLOPs / "
                                     f"{get(r, 'training', 'bytes', default=0) / 1e6:.2f} MB" for r in rs)


fixed_noise = Noise()  # common.NOISE_BPB for every data kind


def findings(res):
    """The findings of a results dict (see the module docstring)."""
    from . import caveats, findings_blt, findings_hnet, findings_mb
    # A run that repeats another's plan entry exactly (seed included) is only a reproduction check.
    runs = first_of_each_entry([r for r in res["runs"] if r["model"] != "entropy"])
    out = Findings(res.get("noise") or fixed_noise)
    seeded = [f for f in seed_findings(res.get("seed_runs") or res["runs"], is_base_mb, res.get("noise"))]
    # A separate seed check's M1 over seeds replaces the single-seed M1 of its kinds (the seed check repeats it).
    over_seeds = {f[4].get("kind") for f in seeded if f[4].get("id") == "M1"} if res.get("seed_runs") else set()
    findings_mb.add_all(out, runs, over_seeds)
    findings_blt.add_all(out, runs, res)
    findings_hnet.add_all(out, runs)
    for claim, source, lines, status, extra in seeded:
        out.add(claim, source, lines, status, **extra)
    findings_mb.yardsticks(out, runs, res.get("compressors", []))
    caveats.apply(out, res)
    return out
