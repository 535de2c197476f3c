"""selftest.py — checks of the report's accounting and verdicts over synthetic records (python3 -m
report.selftest, scripts/ on PYTHONPATH; no matplotlib needed): the noise band from seed spreads, the warm-up
flag, one robustness verdict per noise kind, BLT's FLOPs with its entropy model, the BPE protocol flag (only on
BPE scored without sliding windows), the image-row label, H-Net's pairing by planned budget, BLT's global-model
ablation verdicts, comparisons over seeds (plan entries that differ only in name and seed), labels that tell
contexts and budgets apart, and the numbers behind the gap-against-budget plot."""
import unittest

from .caveats import blt_accounting
from .findings import findings
from .noise import from_seed_runs
from .plots import budget_series
from .tables import label


def run(name, model, bpb, data="text", seed=1, steps=1000, warmup=100, budget=1e13, context=512, **extra):
    entry = {"model": model, "data": [data], "budget": budget, "seed": seed, "config": {"model": model}}
    r = {"name": name, "model": model, "data": data, "config": {"model": model}, "entry": entry,
         "eval": {"bpb": bpb}, "training": {"flops": budget, "bytes": 1e6, "steps": steps, "context": context},
         "trainer": {"steps": steps, "warmup": warmup}, "flops": {"forward_per_byte": 1e6, "counted_params": 1e6}}
    r.update(extra)
    return r


class Revised(unittest.TestCase):
    def test_noise_band_from_seed_spread(self):
        seeds = [run("a1", "transformer", 2.00, "code", 1), run("a2", "transformer", 2.05, "code", 2),
                 run("b1", "transformer", 3.00, "audio", 1), run("b2", "transformer", 3.01, "audio", 2)]
        n = from_seed_runs(seeds, "seeds")
        self.assertAlmostEqual(n("code"), 0.05)
        self.assertAlmostEqual(n("audio"), 0.01)
        self.assertAlmostEqual(n("text"), 0.05)  # not covered: the largest spread
        mb = dict(run("mb", "megabyte", 1.97), config={"model": "megabyte", "patch_size": 8})
        fs = findings({"runs": [run("tf", "transformer", 2.0), mb], "noise": n})
        self.assertEqual(fs[0]["status"], "inconclusive (gap within 0.05 bpb)")

    def test_warmup_flag_on_every_verdict_using_the_run(self):
        mb = dict(run("mb", "megabyte", 1.5, steps=136, warmup=68), config={"model": "megabyte", "patch_size": 8})
        f = findings({"runs": [run("tf", "transformer", 2.0), mb]})[0]
        self.assertIn("warm-up > 10%: mb 50%", f["status"])
        self.assertTrue(f["status"].startswith("reproduced"))

    def test_robustness_per_noise_kind(self):
        rob = [{"name": "tf", "model": "transformer", "noise": [{"noise": "up", "delta": 1.0}, {"noise": "drop", "delta": 2.0}]},
               {"name": "bpe", "model": "bpe", "noise": [{"noise": "up", "delta": 1.5}, {"noise": "drop", "delta": 1.0}]}]
        fs = findings({"runs": [run("tf", "transformer", 2.0), run("bpe", "bpe", 1.9)], "robustness": rob})
        by = {f["claim"].split(": ")[-1]: f for f in fs if "noised text" in f["claim"]}
        self.assertTrue(by["up"]["status"].startswith("reproduced"))
        self.assertTrue(by["drop"]["status"].startswith("not reproduced"))
        self.assertIn("BPE: other eval protocol", by["up"]["status"])

    def test_blt_flops_with_entropy_model(self):
        ent = run("ent", "entropy", 2.5, training={"flops": 2e12, "bytes": 1e6, "steps": 10})
        ent["flops"]["forward_per_byte"] = 3e5
        blt = run("blt", "blt", 1.8, entropy_model="ent")
        a = blt_accounting({"runs": [ent, blt]})["blt"]
        self.assertAlmostEqual(a["entropy_forward"], 3e5 * 1e6)
        self.assertAlmostEqual(a["total"], 1e13 + 2e12 + 3e11)

    def test_hnet_paired_by_planned_budget(self):
        # H-Net's real FLOPs follow its chunks (30% over the plan here); it still pairs by the planned budget.
        tr = lambda flops: {"flops": flops, "budget": 1e13, "bytes": 1e6, "steps": 1000, "context": 512}
        h = run("h", "hnet", 2.0, config={"model": "hnet", "stages": [{}]}, seed=1, training=tr(1.3e13),
                patches={"mean_bytes_per_patch": 4.5, "starts_at_whitespace": 0.6, "bytes_whitespace": 0.18,
                         "starts_at_word_start": 0.1, "bytes_word_start": 0.17, "windows": 16})
        h2 = run("h2", "hnet", 1.9, config={"model": "hnet", "stages": [{}, {}]}, seed=1, training=tr(1.2e13))
        h2["entry"]["config"] = "hnet_2stage"  # another plan entry, not a repeat of h
        t = run("t", "transformer", 2.2, seed=1, training=tr(1e13))
        b = run("b", "bpe", 2.01, seed=1, training=tr(1e13))
        fs = {f.get("id"): f for f in findings({"runs": [h, h2, t, b]})}
        self.assertEqual(fs["HNET-byte"]["status"], "reproduced")
        self.assertTrue(fs["HNET-BPE"]["status"].startswith("reproduced (matches"))
        self.assertEqual(fs["HNET-2stage"]["status"], "reproduced")
        self.assertIn("1.30e+13 FLOPs", fs["HNET-byte"]["evidence"][0])

    def test_image_row_label(self):
        r = dict(run("im", "megabyte", 4.0, "images"), config={"model": "megabyte", "patch_size": 12})
        r["training"]["context"] = 768
        self.assertIn("P=12 = a quarter of a 48-byte image row", label(r))


def mb(name, bpb, **kw):
    return dict(run(name, "megabyte", bpb, **kw), config={"model": "megabyte", "patch_size": 8})


def blt(name, bpb, zeroed, skipped, **kw):
    return run(name, "blt", bpb, global_ablation={"zeroed_bpb": zeroed, "skipped_bpb": skipped},
               patches={"mode": "space", "mean_bytes_per_patch": 5.0}, **kw)


def by_id(fs, fid):
    return [f for f in fs if f.get("id") == fid]


class Evidence(unittest.TestCase):
    """The second round of evidence: sliding-window BPE, BLT's global-model ablation, seeds and budgets."""

    def test_bpe_flag_only_without_sliding_windows(self):
        old, new = run("bpe", "bpe", 1.9), run("bpe", "bpe", 1.9)
        old["eval"]["sliding"] = False
        new["eval"].update(sliding=True, stride_unit="tokens")
        for bpe, flagged in ((old, True), (new, False)):
            f = by_id(findings({"runs": [run("tf", "transformer", 2.0), bpe]}), "SB-small")[0]
            self.assertEqual("BPE: other eval protocol" in f["status"], flagged)

    def test_global_ablation_verdicts(self):
        fs = findings({"runs": [blt("a", 2.0, 2.30, 2.05), blt("b", 2.0, 2.01, 2.00, data="code")]})
        a, b = by_id(fs, "BLT-global")
        self.assertEqual(a["status"], "reproduced")
        self.assertIn("skipped 2.0500 (+0.0500), zeroed 2.3000 (+0.3000)", a["evidence"][0])
        self.assertEqual(b["status"], "inconclusive (gap within 0.02 bpb)")
        self.assertAlmostEqual(a["skip"], 0.05)

    def seeded(self, budget=1e13):
        """Transformer, MEGABYTE, BPE and BLT from three seeds: entries that differ only in name and seed."""
        out = []
        for i, (s, d) in enumerate(((1234, 0.0), (1, 0.01), (2, -0.01))):
            sfx, kw = f"_{budget:.0e}" + ("" if s == 1234 else f"_seed{s}"), dict(seed=s, budget=budget)
            out += [run("tf" + sfx, "transformer", 2.1 + d, **kw), mb("mb" + sfx, 2.0 + i * 0.03, **kw),
                    run("bpe" + sfx, "bpe", 1.9 + d, **kw), blt("blt" + sfx, 1.95 + d, 2.4, 2.0, **kw)]
        return out

    def test_comparisons_over_seeds(self):
        fs = findings({"runs": self.seeded()})
        m1 = by_id(fs, "M1")
        self.assertEqual(len(m1), 1)  # the three per-seed comparisons become one
        self.assertIn("over 3 seeds", m1[0]["claim"])
        for got, want in zip(m1[0]["gaps"], (0.10, 0.08, 0.03)):  # transformer minus MEGABYTE per seed
            self.assertAlmostEqual(got, want)
        self.assertAlmostEqual(m1[0]["gap"], 0.07)
        self.assertEqual(m1[0]["status"], "reproduced")  # every seed ahead and the mean above 0.02
        for fid in ("BLT-BPE", "SB-small", "BLT-global", "BLT-infer"):
            f = by_id(fs, fid)
            self.assertEqual(len(f), 1, fid)
            self.assertIn("over 3 seeds", f[0]["claim"])
        self.assertEqual(len(by_id(fs, "SB-small")[0]["gaps"]), 3)
        self.assertTrue(by_id(fs, "BLT-BPE")[0]["status"].startswith("not reproduced"))  # BLT 0.05 behind BPE
        g = by_id(fs, "BLT-global")[0]
        self.assertAlmostEqual(g["skip"], (0.05 + 0.04 + 0.06) / 3)
        self.assertIn("skipped minus intact bpb per seed", g["evidence"][1])

    def test_seed_groups_keep_entries_apart(self):
        # text_tf (seed 1234), text_tf_seed1 and text_tf_seed2 are one group; another budget is another group.
        n = from_seed_runs(self.seeded() + self.seeded(3e13), "plan")
        self.assertEqual(len(n.rows), 8)
        self.assertAlmostEqual(n("text"), 0.06)  # MEGABYTE: 2.00, 2.03, 2.06

    def test_labels_tell_budgets_and_contexts_apart(self):
        runs = self.seeded() + self.seeded(3e13) + [run("t2k", "transformer", 2.0, budget=2e13, context=2048),
                                                    mb("m2k", 1.9, budget=2e13, context=2048)]
        claims = sorted(f["claim"] for f in by_id(findings({"runs": runs}), "M1"))
        self.assertEqual([c[c.index("(") + 1:-1] for c in claims],
                         ["text, 2048-byte windows, 2e13 FLOPs", "text, 512-byte windows, 1e13 FLOPs",
                          "text, 512-byte windows, 3e13 FLOPs"])
        one = findings({"runs": [run("tf", "transformer", 2.0), mb("mb", 1.9)]})
        self.assertTrue(by_id(one, "M1")[0]["claim"].endswith("FLOPs (text)"))  # one context, one budget

    def test_gap_against_budget(self):
        series = budget_series(findings({"runs": self.seeded() + self.seeded(3e13)}))
        kind, pts = series["M1 text 512-byte: megabyte P=8 vs transformer"]
        self.assertEqual([p[0] for p in pts], [1e13, 3e13])
        budget, lead, lo, hi = pts[0]
        self.assertAlmostEqual(lead, 0.07)
        self.assertAlmostEqual(lo, 0.03)
        self.assertAlmostEqual(hi, 0.1)
        self.assertIn("SB-small text: best BPE vs best byte model", series)
        self.assertIn("BLT-global text 512-byte: blt space", series)
        self.assertFalse(budget_series(findings({"runs": self.seeded()})))  # one budget: no line


if __name__ == "__main__":
    unittest.main()
