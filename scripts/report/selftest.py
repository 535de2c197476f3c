"""selftest.py — checks of the report's accounting and verdicts over synthetic records (python3 -m
report.selftest, scripts/ on PYTHONPATH): the noise band from seed spreads, the warm-up flag, one robustness
verdict per noise kind, BLT's FLOPs with its entropy model, the BPE protocol flag, the image-row label and
H-Net's pairing by planned budget."""
import unittest

from .caveats import blt_accounting
from .findings import findings
from .noise import from_seed_runs
from .tables import label


def run(name, model, bpb, data="text", seed=1, steps=1000, warmup=100, **extra):
    entry = {"model": model, "data": [data], "budget": 1e13, "seed": seed, "config": {"model": model}}
    r = {"name": name, "model": model, "data": data, "config": {"model": model}, "entry": entry,
         "eval": {"bpb": bpb}, "training": {"flops": 1e13, "bytes": 1e6, "steps": steps, "context": 512},
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


if __name__ == "__main__":
    unittest.main()
