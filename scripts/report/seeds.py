"""seeds.py — findings from runs that repeat a plan entry (imported by findings.py).

A plan may train one entry (model, config, data, budget, training settings) several times, with other seeds
or with the same one. Runs whose recorded plan entries differ only in the seed form a seed group (the run's
name is not part of its recorded entry: text_tf, text_tf_seed1 and text_tf_seed2 are one group). From them:
- re-running an identical entry (same seed) must reproduce its held-out bpb exactly;
- how far held-out bpb moves with the seed (weight init and batch order), against NOISE_BPB, the fixed gap
  below which single-seed comparisons were called inconclusive (noise.py turns these spreads into the threshold);
- collapse: the per-seed findings of one comparison (same claim, runs from the same entries but for the seed)
  become one finding over the seeds: the mean lead with min..max, its verdict from the mean against the noise
  band (seed_verdict: inconclusive when the lead changes sign with the seed), each seed's numbers beneath;
- for a separate seed check (--seeds), MEGABYTE against the byte Transformer over every seed both were trained
  from, by the same rule.
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
            if t["model"] == "transformer" and t["data"] == m["data"] and same_budget(m, t) and len(common) > 1 \
                    and get(m, "training", "context") == get(t, "training", "context"):
                gaps = [bpb(gt[s][0]) - bpb(gm[s][0]) for s in common]  # > 0: MEGABYTE lower
                out.append((m, t, common, gaps))
    return out


def seed_verdict(gaps, n):
    """The verdict over seeds: the mean lead against the band n, inconclusive when the lead changes sign."""
    mean = statistics.mean(gaps)
    if all(g > 0 for g in gaps) and mean > n:
        return "reproduced"
    if all(g < 0 for g in gaps) and mean < -n:
        return "not reproduced at this scale"
    return "inconclusive (" + ("the gap changes sign with the seed" if min(gaps) < 0 < max(gaps)
                               else f"mean gap within {thr(n)} bpb") + ")"


def per_seed_line(lead, seeds, gaps, extra=""):
    sd = statistics.stdev(gaps) if len(gaps) > 1 else 0.0
    return (f"{lead} per seed: " + ", ".join(f"{g:+.4f} (seed {s})" for s, g in zip(seeds, gaps))
            + f"; mean {statistics.mean(gaps):+.4f}, sd {sd:.4f}{extra}")


def seed_findings(runs, is_base_mb, noise=None, tag=lambda r: r["data"], m1=True):
    """(claim, source, evidence lines, status, extra) tuples; none when no plan entry was trained twice. extra:
    the finding's id, data kind, mean gap and per-seed gaps, runs used (for the summary and the caveats).
    m1: MEGABYTE vs Transformer over seeds (for a separate seed check; a plan's own seeds go through collapse)."""
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
    for m, t, common, gaps in over_seeds(groups, is_base_mb) if m1 else []:
        gm, gt = (next(g for g in groups.values() if next(iter(g.values()))[0] is x) for x in (m, t))
        found.append((f"MEGABYTE has lower bpb than a byte Transformer at equal training FLOPs, over {len(common)} "
                      f"seeds ({tag(m)})", "MEGABYTE T1-T5 (M1)",
                      [per_seed_line("Transformer minus MEGABYTE bpb", common, gaps,
                                     f" (groups of {m['name']} and {t['name']})")], seed_verdict(gaps, band(m)),
                      {"id": "M1", "kind": m["data"], "where": tag(m), "gap": statistics.mean(gaps), "gaps": gaps,
                       "runs": [g[s][0] for g in (gm, gt) for s in common]}))
    return found


def seed_of(f):
    """The one seed all of a finding's runs were trained from (None when they differ or have no plan entry)."""
    ss = {seed(r) for r in f.get("runs", [])}
    return ss.pop() if len(ss) == 1 and all(r.get("entry") for r in f["runs"]) else None


def comparison(f):
    """What a finding compares, the seed left out: its id and key, or its runs' plan entries without seeds."""
    return f.get("id"), f.get("key") or tuple(entry_key(r, with_seed=False) for r in f["runs"])


def collapse(found, noise):
    """found with each comparison measured from several seeds (one finding per seed) replaced, where its first
    finding stood, by one finding over the seeds (over_seeds_finding)."""
    groups = {}
    for f in found:
        if f.get("id") and seed_of(f) is not None:
            groups.setdefault(comparison(f), []).append(f)
    many = {id(g[0]): g for g in groups.values() if len({seed_of(f) for f in g}) == len(g) > 1}
    dropped = {id(f) for g in many.values() for f in g[1:]}
    return [over_seeds_finding(many[id(f)], noise) if id(f) in many else f for f in found if id(f) not in dropped]


def mean_of(fs, k):
    vs = [f.get(k) for f in fs]
    return (statistics.mean(vs), vs) if all(v is not None for v in vs) else (None, None)


def over_seeds_finding(fs, noise):
    """One finding from the per-seed findings fs of one comparison: mean lead (gap) with the per-seed gaps,
    the verdict from the mean against the band (the finding's rule, else seed_verdict), or, without a bpb lead,
    the per-seed verdicts (one when they agree); the means of skip, ratio and moved too."""
    f0, seeds = fs[0], [seed_of(f) for f in fs]
    base, sep, paren = f0["claim"].rpartition(" (") if f0["claim"].endswith(")") else (f0["claim"], "", "")
    out = dict(f0, claim=f"{base}, over {len(fs)} seeds" + (f" ({paren}" if sep else ""),
               runs=[r for f in fs for r in f["runs"]], caveats=[c for f in fs for c in f["caveats"]])
    for k in ("skip", "ratio", "moved"):
        mean, vs = mean_of(fs, k)
        if mean is not None:
            out[k], out[k + "s"] = mean, vs
    # each seed's numbers (its first line), then the lines all seeds share (notes, the paper's numbers) once
    lines = [f"seed {s}: " + f["evidence"][0].removesuffix("; one seed") for s, f in zip(seeds, fs)] + f0["evidence"][1:]
    mean, gaps = mean_of(fs, "gap")
    if mean is None:
        statuses = [f["status"] for f in fs]
        out.update(evidence=lines, status=statuses[0] if len(set(statuses)) == 1 else
                   "mixed over seeds: " + "; ".join(f"seed {s}: {v}" for s, v in zip(seeds, statuses)))
        return out
    runs = [r for f in fs for r in f.get("runs", [])]
    n = noise.for_runs(f0.get("kind"), runs) if hasattr(noise, "for_runs") else noise(f0.get("kind"))
    rule = f0.get("rule")
    span = lambda vs: f", min..max {min(vs):+.4f}..{max(vs):+.4f}"
    skips = [per_seed_line("skipped minus intact bpb", seeds, out["skips"], span(out["skips"]))] \
        if "skips" in out else []
    out.update(gap=mean, gaps=gaps, band=n, status=rule(mean, n) if rule else seed_verdict(gaps, n),
               evidence=[per_seed_line(f0.get("lead", "the claimed winner's bpb lead"), seeds, gaps, span(gaps))]
               + skips + lines)
    return out
