"""findings.py — the Findings section of `bytelm experiment report` (imported by report (python3 -m report)).

Each paper claim becomes one finding: reproduced / not reproduced at this scale / inconclusive (a gap inside
the noise band) / mixed / not testable in this experiment, with the numbers and the compute used.
Comparisons pair runs trained from the same seed (and, for two byte models, at the same context). A claim's
label names the data kind, and also the byte context and the budget when the experiment has that kind at
several (Scope: "(text, 2048-byte windows, 2e13 FLOPs)"), so repeated comparisons stay apart. The noise band
is res["noise"] (noise.py: the measured seed spread per data kind) or common.NOISE_BPB. Runs a plan repeats
with other seeds (plan entries that differ only in name and seed) give one finding per comparison over the
seeds (seeds.collapse: mean and min..max of the lead, verdict from the mean against the band), and the
findings of seeds.py (exact reruns, seed spread); a MEGABYTE-vs-Transformer claim measured over a separate
seed check's seeds (res["seed_runs"]) replaces the single-seed one of that data kind. caveats.py then flags
each verdict whose runs warmed up too long, compare BPE under another evaluation protocol, or leave an entropy
model uncounted. The claims themselves are in findings_mb.py (MEGABYTE), findings_blt.py (BLT, BPE, noise,
BLT's global-model ablation) and findings_hnet.py (H-Net).
"""
from .common import budget, flops_label, get, same_budget, sci, seed
from .noise import Noise
from .seeds import collapse, first_of_each_entry, seed_findings


def context(r):
    return get(r, "training", "context")


class Scope:
    """Which data kinds an experiment has at several byte contexts or budgets; tag(*runs) labels a comparison."""

    def __init__(self, runs):
        self.contexts, self.budgets = {}, {}
        for r in runs:
            if r["model"] == "entropy":
                continue
            self.budgets.setdefault(r["data"], set()).add(float(f"{budget(r) or 0:.3g}"))
            if r["model"] != "bpe":  # BPE's context counts tokens
                self.contexts.setdefault(r["data"], set()).add(context(r))

    def __call__(self, *rs):
        """"text", or "text, 2048-byte windows, 2e13 FLOPs" where the kind has several contexts or budgets."""
        kind, parts = rs[0]["data"], [rs[0]["data"]]
        ctx = sorted({context(r) for r in rs if r["model"] != "bpe" and context(r)})
        if len(self.contexts.get(kind, ())) > 1 and ctx:
            parts.append("/".join(map(str, ctx)) + "-byte windows")
        if len(self.budgets.get(kind, ())) > 1 and budget(rs[0]):
            parts.append(flops_label(budget(rs[0])) + " FLOPs")
        return ", ".join(parts)


class Findings(list):
    """The list of findings, with add() and the noise band per data kind."""

    def __init__(self, noise, scope=None):
        super().__init__()
        self.noise, self.scope = noise, scope or Scope([])

    def tag(self, *rs):
        return self.scope(*rs)

    def add(self, claim, source, lines, status, runs=(), **extra):
        """extra: id (the claim's key in summary.PAPER), kind (data), where (its label: kind, and context and
        budget where needed), gap (the claimed winner's bpb lead), lead (what the gap is, for the line over
        seeds), rule (gap, band -> status where the verdict is not common.verdict), key (the comparison across
        seeds where its runs do not say it)."""
        self.append({"claim": claim, "source": source, "status": status, "evidence": list(lines),
                     "runs": list(runs), "caveats": [], **extra})


def pairs(runs, model_a, model_b, pred_a=lambda r: True, pred_b=lambda r: True):
    """(a, b) runs of the two models on the same data at the same budget, trained from the same seed (two
    byte models also at the same context)."""
    out = []
    for a in runs:
        if a["model"] != model_a or not pred_a(a):
            continue
        for b in runs:
            if b is not a and b["model"] == model_b and pred_b(b) and a["data"] == b["data"] and same_budget(a, b) \
                    and seed(a) == seed(b) and same_context(a, b):
                out.append((a, b))
    return out


def same_context(a, b):
    return "bpe" in (a["model"], b["model"]) or context(a) == context(b)


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
    out = Findings(res.get("noise") or fixed_noise, Scope(runs))
    seeded = seed_findings(res.get("seed_runs") or res["runs"], is_base_mb, res.get("noise"), out.tag,
                           m1=bool(res.get("seed_runs")))
    # A separate seed check's M1 over seeds replaces the single-seed M1 of its kinds (the seed check repeats it).
    over_seeds = {f[4].get("kind") for f in seeded if f[4].get("id") == "M1"}
    findings_mb.add_all(out, runs, over_seeds)
    findings_blt.add_all(out, runs, res)
    findings_hnet.add_all(out, runs)
    out[:] = collapse(out, out.noise)  # one finding per comparison the plan repeats with other seeds
    for claim, source, lines, status, extra in seeded:
        out.add(claim, source, lines, status, **extra)
    findings_mb.yardsticks(out, runs, res.get("compressors", []))
    caveats.apply(out, res)
    return out
