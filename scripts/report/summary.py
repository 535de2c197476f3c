"""summary.py — the summary table that opens the report: per finding the claim, the paper's number, ours (with
the seed spread where seeds exist), the verdict and how far our scale is from the paper's.

The paper numbers are quoted from the papers (MEGABYTE arXiv 2305.07185, BLT arXiv 2412.09871, SpaceByte
arXiv 2404.14408, H-Net arXiv 2507.07955); none is computed here. The papers' scale: training FLOPs and parameters of the smallest
setting that backs the claim (MEGABYTE states bytes and sizes, not FLOPs: its FLOPs column uses the smallest
compute-controlled budget that includes MegaByte, SpaceByte's 1e18 grid). BLT's global-model ablation has no
paper number: its row gives the paper's design (a large global latent transformer between small local models;
the released sizes as in shared/reference/blt.md) and MEGABYTE's nearest measured ablation (Table 10)."""
from .common import bpb, get, sci

# H-Net states GFLOPs per byte (0.42-0.43 at L) and a crossover with BPE after ~30B bytes: at least this much.
HN = (3 * 0.42e9 * 30e9, "at least 0.42 GFLOPs/byte x 3 x 30B bytes (H-Net L)")
SB = (1e18, "SpaceByte's smallest grid budget (MegaByte included)")
BLT_F = (2e20, "the low end of BLT Fig. 6")
MB_M1 = {"text": "PG-19 1.000 vs 1.057", "code": "Code 0.411 vs 0.575", "audio": "3.477 vs 3.567",
         "images": "Image256 3.158 vs 3.801"}
ROB = {"antspeak": "45.6 -> 57.9", "drop": "53.8 -> 58.2", "randomcase": "55.3 -> 65.7",
       "repeat": "57.0 -> 66.6", "uppercase": "72.9 -> 77.3"}
# id: (paper number(s) as quoted, (FLOPs, what they are), (params, which model))
PAPER = {
    "M1": (lambda k: ("MEGABYTE vs Transformer bpb: " + MB_M1[k]) if k in MB_M1 else "no such data set in the paper",
           SB, (320e6, "Transformer 320M; MEGABYTE 758M + 262M")),
    "M3": (lambda k: "Image256 P=48/192/768: 3.178/3.158/3.186 (spread 0.028)", SB, (239e6, "125M global + 114M local")),
    "M4": (lambda k: "8 KB: MEGABYTE 1.3B+218M 93 s vs Transformer 350M 132 s", SB, (350e6, "Transformer 350M")),
    "T10-cross-patch": (lambda k: "arXiv without / with: 0.6781 / 0.6871", SB, None),
    "BLT-space": (lambda k: "8B task average: entropy 61.1 vs space 58.0 (T1); bpb only in plots", BLT_F, (1e9, "1B-8B")),
    "BLT-static": (lambda k: "Fig. 6: fixed patches (Megabyte++) trail; values only in plots", BLT_F, (1e9, "1B-8B")),
    "BLT-threshold": (lambda k: "8B: threshold 0.6 -> 0.1 at inference improves tasks (T1)", BLT_F, (8e9, "8B")),
    "BLT-BPE": (lambda k: "Fig. 6: BLT-Entropy matches or beats Llama 3 BPE; values only in plots", BLT_F, (1e9, "1B-8B")),
    "BLT-global": (lambda k: "not ablated in the paper; BLT §3 puts a large global latent transformer between small "
                             "local models (blt-1b: global 25 layers d=2048, encoder 1 and decoder 9 layers d=1024; "
                             "blt-7b: global 32 layers d=4096, local d=1280); MEGABYTE T10 without its global "
                             "model: arXiv 1.373 vs 0.6871 bpb", BLT_F, (1e9, "1B-8B")),
    "BLT-infer": (lambda k: "patch 8 vs ~4.4 B/token: close to 50% fewer inference FLOPs", BLT_F, (450e6, "450M-6.6B (T2)")),
    "SB-small": (lambda k: "1e19 FLOPs, PG-19: SentencePiece 0.989 vs best byte model 1.009", (1e19, "SpaceByte T1"),
                 None),
    "CUTE": (lambda k: "CUTE average: Llama 3 27.5 vs BLT 54.1 (8B)", BLT_F, (8e9, "8B")),
    "HNET-BPE": (lambda k: "FineWeb-Edu bpb, L: 1-stage 0.755 vs BPE 0.756; XL 0.728 vs 0.730", HN, (680e6, "1-stage L")),
    "HNET-byte": (lambda k: "FineWeb-Edu bpb, L: 1-stage 0.755 vs LlamaByte 0.859", HN, (680e6, "1-stage L")),
    "HNET-2stage": (lambda k: "FineWeb-Edu bpb, L: 2-stage 0.743 vs 1-stage 0.755", HN, (870e6, "2-stage L")),
}
for _k, _v in ROB.items():
    PAPER["ROB-" + _k] = (lambda k, v=_v: f"noised HellaSwag accuracy, Llama 3 -> BLT: {v} (8B)", BLT_F, (8e9, "8B"))


def seed_range(f, k):
    """' (seeds -0.010..+0.030, n=3)' for a finding over seeds, else ''."""
    g = f.get(k)
    return f" (seeds {min(g):+.3f}..{max(g):+.3f}, n={len(g)})" if g else ""


def ours(f):
    """Our number for a finding: the claimed winner's bpb lead (mean and min..max over seeds where seeds exist)."""
    if f.get("gap") is None and "ratio" not in f:
        return "-"
    if f.get("id") == "BLT-global":
        return f"{f['gap']:+.3f} bpb zeroed{seed_range(f, 'gaps')}; skipped {f['skip']:+.3f}{seed_range(f, 'skips')}" \
            if f.get("skip") is not None else f"{f['gap']:+.3f} bpb zeroed{seed_range(f, 'gaps')}"
    if f.get("gaps"):
        return f"{f['gap']:+.3f} bpb{seed_range(f, 'gaps')}"
    if f.get("id", "").startswith("M3"):
        return f"spread {f['gap']:.3f} bpb"
    if f.get("id") == "BLT-threshold":
        return f"{f['gap']:+.4f} bpb (sweep moves bpb {f['moved']:.4f})"
    if "ratio" in f:
        r = f.get("ratios")
        return f"{f['ratio']:.2f}x" + (" speed" if f["id"] == "M4" else " FLOPs/byte") + \
            (f" (seeds {min(r):.2f}..{max(r):.2f}, n={len(r)})" if r else "")
    if f.get("gap") is not None:
        return f"{f['gap']:+.3f} bpb" + (" (max over byte models)" if f["id"].startswith(("ROB", "CUTE")) else "")
    return "-"


def scale(f):
    """'FLOPs 2e4x, params 42x': how many times the paper's scale exceeds ours (the largest of the runs used)."""
    p = PAPER.get(f.get("id"))
    runs = [r for r in f["runs"] if get(r, "training", "flops")]
    if not p or not runs:
        return "-"
    fl = max(get(r, "training", "flops") for r in runs)
    pa = max(get(r, "flops", "counted_params", default=0) for r in runs)
    out = f"FLOPs {p[1][0] / fl:.0e}x".replace("e+0", "e")
    if p[2] and pa:
        out += f", params {p[2][0] / pa:.0f}x"
    return out


def rows(found):
    """[claim, paper, ours, verdict, flags, scale] for every finding with a paper number, in PAPER's order."""
    order = list(PAPER)
    fs = sorted([f for f in found if f.get("id") in PAPER], key=lambda f: order.index(f["id"]))
    return [[f["claim"], PAPER[f["id"]][0](f.get("kind")), ours(f), f.get("verdict", f["status"]),
             "; ".join(f.get("flags", [])) or "-", scale(f)] for f in fs]


def scale_lines(res):
    """The distance to the papers' scale, in words, from the records."""
    runs = [r for r in res["runs"] if get(r, "training", "flops")]
    if not runs:
        return ["no run has finished yet"]
    fl = [get(r, "training", "flops") for r in runs]
    pa = [get(r, "flops", "counted_params", default=0) for r in runs]
    ctx = sorted({get(r, "training", "context") for r in runs if r["model"] != "bpe"})
    by = [get(r, "training", "bytes", default=0) for r in runs]
    tf = [r for r in runs if r["model"] == "transformer" and get(r, "flops", "parts")]
    att = ""
    if tf:
        t = min(tf, key=lambda r: get(r, "training", "context"))
        a = sum(p.get("attention_flops", 0) for p in t["flops"]["parts"])
        att = (f"attention is {100 * a / t['flops']['forward_per_byte']:.0f}% of {t['name']}'s forward FLOPs per byte "
               f"at {get(t, 'training', 'context')} bytes of context (its record's flops.parts; the count grows "
               "linearly with the context, so at the papers' 8192 bytes it would be most of them). ")
    return [f"our runs: {sci(min(fl))}-{sci(max(fl))} training FLOPs, {min(pa) / 1e6:.1f}-{max(pa) / 1e6:.1f}M counted "
            f"parameters, {min(by) / 1e6:.2f}-{max(by) / 1e6:.2f} MB trained, byte contexts of "
            f"{'/'.join(map(str, ctx))} bytes",
            "the papers: MEGABYTE 250M (Image256) to 3B (ImageNet64) parameters, text models on 80B bytes at "
            "8192-byte contexts (audio 524,288); BLT 400M-8B parameters, 2e20-1.25e22 FLOPs in Fig. 6, 8k-16k-byte "
            "contexts; SpaceByte 1e18-1e19 FLOPs",
            f"so our budgets are {1e18 / max(fl):.0e}-{1e18 / min(fl):.0e} times below the smallest of those (1e18) "
            f"and our models {250e6 / max(pa):.0f}-{8e9 / min(pa):.0f} times smaller",
            att + "MEGABYTE's advantage (attention and feed-forward once per patch over long sequences) and BLT's "
            "large-global / small-local split need long contexts and large global models to show: a 'not "
            "reproduced at this scale' here mostly means 'not tested at the papers' scale'"]
