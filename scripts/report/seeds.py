"""seeds.py — findings from runs that repeat a plan entry (imported by findings.py).

A plan may train one entry (model, config, data, budget, training settings) several times, with other seeds
or with the same one. Runs whose recorded plan entries differ only in the seed form a seed group. From them:
- re-running an identical entry (same seed) must reproduce its held-out bpb exactly;
- how far held-out bpb moves with the seed (weight init and batch order), against NOISE_BPB, the fixed gap
  below which single-seed comparisons were called inconclusive (noise.py turns these spreads into the threshold);
- MEGABYTE against the byte Transformer over every seed both were trained from: the claim holds, fails or is
  inconclusive by the sign of the per-seed gaps and the size of their mean.
"""
import json
import statistics

from .common import NOISE_BPB, bpb, get, same_budget, seed, thr


def entry_key(r, with_seed=True):
    e = dict(r.get("entry") or {})
    if not with_seed:
        e.pop("seed", None)
    return json.dumps(e, sort_keys=True)


def first_of_each_entry(runs):
    """The runs, without those that repeat an earlier run's plan entry exactly (seed included)."""
    seen, out = set(), []
    for r in runs:
        k = entry_key(r) if r.get("entry") else r["name"]
        if k not in seen:
            seen.add(k)
            out.append(r)
    return out


def seed_groups(runs):
    """{entry without its seed: {seed: [runs]}} for entries trained more than once, in record order."""
    groups = {}
    for r in runs:
        if r.get("entry") and bpb(r) is not None:
            groups.setdefault(entry_key(r, with_seed=False), {}).setdefault(seed(r), []).append(r)
    return {k: g for k, g in groups.items() if sum(len(rs) for rs in g.values()) > 1}


def exact_reruns(groups):
    lines, same = [], True
    for g in groups.values():
        for rs in g.values():
            for r in rs[1:]:
                a, b = bpb(rs[0]), bpb(r)
                same = same and a == b
                lines.append(f"{r['name']} {b!r} vs {rs[0]['name']} {a!r} (seed {seed(r)}; commits "
                             f"{get(r, 'provenance', 'commit')} / {get(rs[0], 'provenance', 'commit')}): "
                             + ("identical" if a == b else f"differs by {abs(a - b):.2e}"))
    return lines, same


def spreads(groups):
    """[(first run, {seed: bpb}, spread)] for groups trained from two seeds or more."""
    out = []
    for g in groups.values():
        if len(g) > 1:
            per_seed = {s: bpb(rs[0]) for s, rs in g.items()}
            out.append((next(iter(g.values()))[0], per_seed, max(per_seed.values()) - min(per_seed.values())))
    return out


def over_seeds(groups, is_base_mb):
    """MEGABYTE (main model) vs byte Transformer groups on the same data and budget, over their common seeds."""
    heads = [(g, next(iter(g.values()))[0]) for g in groups.values() if len(g) > 1]
    out = []
    for gm, m in heads:
        if not is_base_mb(m):
            continue
        for gt, t in heads:
            common = [s for s in gm if s in gt]
            if t["model"] == "transformer" and t["data"] == m["data"] and same_budget(m, t) and len(common) > 1:
                gaps = [bpb(gt[s][0]) - bpb(gm[s][0]) for s in common]  # > 0: MEGABYTE lower
                out.append((m, t, common, gaps))
    return out


def seed_findings(runs, is_base_mb, noise=None):
    """(claim, source, evidence lines, status, extra) tuples; none when no plan entry was trained twice. extra:
    the finding's id, data kind, mean gap and per-seed gaps, runs used (for the summary and the caveats)."""
    groups = seed_groups(runs)
    found = []
    band = lambda r: noise(r["data"]) if noise else NOISE_BPB
    lines, same = exact_reruns(groups)
    if lines:
        found.append(("Re-running a plan entry with its seed reproduces its held-out bpb exactly",
                      "reproducibility (not a paper claim)", lines, "yes" if same else "no", {"id": "rerun"}))
    sp = spreads(groups)
    if sp:
        worst = max(s for _, _, s in sp)
        found.append((f"Held-out bpb moves with the seed by less than the {NOISE_BPB} bpb of a fixed noise threshold",
                      "yardstick (not a paper claim)",
                      [f"{r['name']} ({r['model']}, {r['data']}): " + ", ".join(f"{v:.4f} (seed {s})" for s, v in ps.items())
                       + f"; spread {d:.4f}" for r, ps, d in sp],
                      f"yes (largest spread {worst:.4f})" if worst <= NOISE_BPB else
                      f"no: largest spread {worst:.4f}, so single-seed gaps under that are not evidence"
                      + ("; the thresholds of this report are these spreads" if noise else ""),
                      {"id": "seed-spread"}))
    for m, t, common, gaps in over_seeds(groups, is_base_mb):
        gm, gt = (next(g for g in groups.values() if next(iter(g.values()))[0] is x) for x in (m, t))
        mean = statistics.mean(gaps)
        sd = statistics.stdev(gaps)
        n = band(m)
        if all(g > 0 for g in gaps) and mean > n:
            status = "reproduced"
        elif all(g < 0 for g in gaps) and mean < -n:
            status = "not reproduced at this scale"
        else:
            status = "inconclusive (" + ("the gap changes sign with the seed" if min(gaps) < 0 < max(gaps)
                                          else f"mean gap within {thr(n)} bpb") + ")"
        found.append((f"MEGABYTE has lower bpb than a byte Transformer at equal training FLOPs, over {len(common)} "
                      f"seeds ({m['data']})", "MEGABYTE T1-T5 (M1)",
                      ["Transformer minus MEGABYTE bpb per seed: " + ", ".join(f"{g:+.4f} (seed {s})" for s, g in zip(common, gaps))
                       + f"; mean {mean:+.4f}, sd {sd:.4f} (groups of {m['name']} and {t['name']})"], status,
                      {"id": "M1", "kind": m["data"], "gap": mean, "gaps": gaps,
                       "runs": [g[s][0] for g in (gm, gt) for s in common]}))
    return found
