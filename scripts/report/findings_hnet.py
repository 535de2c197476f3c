"""findings_hnet.py — H-Net's claims (one stage matches a BPE Transformer and beats a byte Transformer at
matched compute; two stages beat one) and where its learned chunks start, as findings (see findings.py).
H-Net's training FLOPs are planned at its target chunk size and recorded at the chunks it made, so its runs are
paired with the others by their planned budget; each line states both runs' real FLOPs. Labels by out.tag."""
from .common import bpb, fmt, get, verdict
from .findings import at


def same_plan_budget(a, b):
    return a["data"] == b["data"] and get(a, "training", "budget") == get(b, "training", "budget") \
        and a.get("seed") == b.get("seed")


def stages(r):
    return len(get(r, "config", "stages", default=[]) or [])


def matches(gap, n):
    status = verdict(gap, n)
    return "reproduced (matches within the noise band)" if status.startswith("inconclusive") else status


def versus(out, runs, other_model, claim, fid):
    """One-stage H-Net against `other_model` at the same planned budget."""
    found = False
    for h in [r for r in runs if r["model"] == "hnet" and stages(r) == 1]:
        for o in [r for r in runs if r["model"] == other_model and same_plan_budget(h, r)]:
            gap = bpb(o) - bpb(h)  # positive: H-Net ahead
            rule = matches if fid == "HNET-BPE" else None
            out.add(f"{claim} ({out.tag(h, o)})", "H-Net Table 2",
                    [f"{h['name']} {bpb(h):.4f} ({fmt(get(h, 'patches', 'mean_bytes_per_patch'), '.2f')} B/chunk) vs "
                     f"{o['name']} {bpb(o):.4f} bpb" + at(h, o)],
                    (rule or verdict)(gap, out.noise(h["data"])), [h, o], id=fid, kind=h["data"], where=out.tag(h, o),
                    gap=gap, rule=rule, lead=f"{other_model} minus H-Net bpb")
            found = True
    if not found:
        out.add(claim, "H-Net Table 2", [f"needs a one-stage hnet and a {other_model} run at the same budget"],
                "not testable in this experiment", id=fid)


def two_stages(out, runs):
    for two in [r for r in runs if r["model"] == "hnet" and stages(r) == 2]:
        for one in [r for r in runs if r["model"] == "hnet" and stages(r) == 1 and same_plan_budget(two, r)]:
            gap = bpb(one) - bpb(two)
            out.add(f"Two H-Net stages beat one at matched compute ({out.tag(two, one)})", "H-Net Table 2",
                    [f"{two['name']} {bpb(two):.4f} ({fmt(get(two, 'patches', 'mean_bytes_per_patch'), '.2f')} B/chunk) "
                     f"vs {one['name']} {bpb(one):.4f}" + at(two, one)],
                    verdict(gap, out.noise(two["data"])), [two, one], id="HNET-2stage", kind=two["data"],
                    where=out.tag(two, one), gap=gap, lead="one-stage minus two-stage bpb")


def boundaries(out, runs):
    """Where the learned chunks start, against how common such bytes are (descriptive: no verdict)."""
    for h in [r for r in runs if r["model"] == "hnet" and get(r, "patches", "starts_at_whitespace") is not None]:
        p = h["patches"]
        out.add(f"Where {h['name']}'s chunks start ({h['data']})", "H-Net §4 (boundaries mostly after spaces)",
                [f"{100 * p['starts_at_whitespace']:.0f}% of chunk starts are at whitespace ({100 * p['bytes_whitespace']:.0f}% "
                 f"of all bytes), {100 * p['starts_at_word_start']:.0f}% at the first letter of a word "
                 f"({100 * p['bytes_word_start']:.0f}% of all bytes); {p['mean_bytes_per_patch']:.2f} bytes per chunk "
                 f"on {p.get('windows', '?')} held-out windows ({p.get('describe', '')})"],
                "measured", [h], kind=h["data"])


def add_all(out, runs):
    versus(out, runs, "bpe", "One-stage H-Net matches a BPE Transformer at matched compute", "HNET-BPE")
    versus(out, runs, "transformer", "One-stage H-Net beats the byte Transformer at matched compute", "HNET-byte")
    two_stages(out, runs)
    boundaries(out, runs)
