#!/usr/bin/python3
"""test_findings.py — the report's Findings over synthetic run records (scripts/report/findings.py and
scripts/report/seeds.py): comparisons pair runs of the same seed and the per-seed comparisons of a plan that
repeats its entries with other seeds become one finding over the seeds, an exact rerun is checked bit for bit
and kept out of the paper claims, the seed spread is measured against the noise threshold, and the
MEGABYTE-vs-Transformer verdict over seeds follows the sign of every per-seed gap; BLT entropy patching is
compared with space and with fixed-size (static) patching; generation speeds timed in the same interleaved rounds
are compared round by round.
Run: /usr/bin/python3 tests/experiment/test_findings.py SCRIPTS_DIR
"""
import sys
import unittest

sys.path.insert(0, sys.argv.pop(1) if len(sys.argv) > 1 else "scripts")
from report.findings import findings  # noqa: E402


def run(name, model, seed, bpb, data="code"):
    config = {"model": model, "patch_size": 8} if model == "megabyte" else {"model": model}
    entry = {"model": model, "config": config, "data": [data], "budget": 1.5e13, "seed": seed}
    return {"name": name, "model": model, "data": data, "config": config, "entry": entry,
            "eval": {"bpb": bpb}, "training": {"flops": 1.5e13, "bytes": 1e6}, "provenance": {"commit": "abc"}}


def by_claim(fs, text):
    return [f for f in fs if text in f["claim"]]


class SeedFindings(unittest.TestCase):
    def test_single_seed_plan_has_no_seed_findings(self):
        fs = findings({"runs": [run("tf", "transformer", 1, 2.0), run("mb", "megabyte", 1, 1.9)]})
        self.assertEqual(len(by_claim(fs, "at equal training FLOPs (code)")), 1)
        self.assertEqual(by_claim(fs, "at equal training FLOPs (code)")[0]["status"], "reproduced")
        self.assertFalse(by_claim(fs, "seed"))

    def test_pairs_only_runs_of_the_same_seed(self):
        runs = [run("tf1", "transformer", 1, 2.00), run("mb1", "megabyte", 1, 1.90),
                run("tf2", "transformer", 2, 2.01), run("mb2", "megabyte", 2, 1.95)]
        over = by_claim(findings({"runs": runs}), "at equal training FLOPs, over 2 seeds (code)")
        self.assertEqual(len(over), 1)  # one finding over the seeds, each seed's pair beneath
        per_seed = [e.split()[2] + "/" + e.split()[5] for e in over[0]["evidence"][1:]]
        self.assertEqual(per_seed, ["mb1/tf1", "mb2/tf2"])

    def test_over_seeds_verdicts(self):
        consistent = [run("tf1", "transformer", 1, 2.00), run("mb1", "megabyte", 1, 1.90),
                      run("tf2", "transformer", 2, 2.01), run("mb2", "megabyte", 2, 1.95)]
        f = by_claim(findings({"runs": consistent}), "over 2 seeds")
        self.assertEqual(len(f), 1)
        self.assertEqual(f[0]["status"], "reproduced")
        self.assertIn("+0.1000 (seed 1), +0.0600 (seed 2); mean +0.0800", f[0]["evidence"][0])
        mixed = consistent[:2] + [run("tf2", "transformer", 2, 2.00), run("mb2", "megabyte", 2, 2.05)]
        f = by_claim(findings({"runs": mixed}), "over 2 seeds")
        self.assertEqual(f[0]["status"], "inconclusive (the gap changes sign with the seed)")
        worse = [run("tf1", "transformer", 1, 1.80), run("mb1", "megabyte", 1, 1.90),
                 run("tf2", "transformer", 2, 1.81), run("mb2", "megabyte", 2, 1.95)]
        self.assertEqual(by_claim(findings({"runs": worse}), "over 2 seeds")[0]["status"], "not reproduced at this scale")

    def test_seed_spread_against_the_noise_threshold(self):
        small = [run("tf1", "transformer", 1, 2.000), run("tf2", "transformer", 2, 2.015)]
        f = by_claim(findings({"runs": small}), "moves with the seed")
        self.assertEqual(f[0]["status"], "yes (largest spread 0.0150)")
        big = [run("tf1", "transformer", 1, 2.00), run("tf2", "transformer", 2, 2.05), run("tf3", "transformer", 3, 1.99)]
        f = by_claim(findings({"runs": big}), "moves with the seed")
        self.assertTrue(f[0]["status"].startswith("no: largest spread 0.0600"), f[0]["status"])

    def test_exact_rerun_is_checked_and_kept_out_of_the_claims(self):
        runs = [run("tf", "transformer", 1, 2.0), run("mb", "megabyte", 1, 1.9), run("tf_again", "transformer", 1, 2.0)]
        fs = findings({"runs": runs})
        f = by_claim(fs, "reproduces its held-out bpb exactly")
        self.assertEqual(f[0]["status"], "yes")
        self.assertIn("tf_again 2.0 vs tf 2.0", f[0]["evidence"][0])
        self.assertEqual(len(by_claim(fs, "at equal training FLOPs (code)")), 1)  # tf_again not paired again
        runs[2] = run("tf_again", "transformer", 1, 2.0 + 1e-9)
        f = by_claim(findings({"runs": runs}), "reproduces its held-out bpb exactly")
        self.assertEqual(f[0]["status"], "no")
        self.assertIn("differs by 1.00e-09", f[0]["evidence"][0])


class SpeedFindings(unittest.TestCase):
    def timed(self, r, samples, when="2026-11-30T17:00:00Z"):
        r["generation"] = {"bytes_per_s": sorted(samples)[len(samples) // 2], "bytes_per_s_samples": samples,
                           "retimed": True, "provenance": {"time_utc": when, "load_average_1min": "1.0", "cores": 2}}
        return r

    def speed(self, runs):
        return by_claim(findings({"runs": runs}), "generates faster")[0]

    def test_rounds_are_compared_pairwise(self):
        tf = [1000, 800, 1200, 900, 1100, 1000, 850, 1150, 950]
        mb = [x * 1.2 for x in tf]
        f = self.speed([self.timed(run("mb", "megabyte", 1, 2.0), mb), self.timed(run("tf", "transformer", 1, 2.0), tf)])
        self.assertEqual(f["status"], "reproduced")
        self.assertIn("MEGABYTE faster in 9 of 9 rounds, median per-round ratio 1.20", f["evidence"][0])
        # The same medians, but MEGABYTE faster in only some rounds: the drift, not the model.
        mixed = [x * r for x, r in zip(tf, [1.5, 1.5, 1.5, 1.5, 1.2, 0.8, 0.8, 0.8, 0.8])]
        f = self.speed([self.timed(run("mb", "megabyte", 1, 2.0), mixed), self.timed(run("tf", "transformer", 1, 2.0), tf)])
        self.assertEqual(f["status"], "inconclusive")

    def test_runs_timed_apart_compare_medians(self):
        f = self.speed([self.timed(run("mb", "megabyte", 1, 2.0), [1300] * 9),
                        self.timed(run("tf", "transformer", 1, 2.0), [1000] * 9, when="2026-11-30T18:00:00Z")])
        self.assertEqual(f["status"], "reproduced")
        self.assertNotIn("rounds", f["evidence"][0])


class PatchingFindings(unittest.TestCase):
    def test_entropy_against_space_and_static(self):
        runs = []
        for mode, b in (("entropy", 1.70), ("space", 1.75), ("static", 1.69)):
            r = run("blt_" + mode, "blt", 1, b, data="text")
            r["entry"]["config"] = {"patching_mode": mode}
            r["patches"] = {"mode": mode, "mean_bytes_per_patch": 4.0}
            runs.append(r)
        fs = findings({"runs": runs})
        self.assertEqual(by_claim(fs, "beats space patching")[0]["status"], "reproduced")
        f = by_claim(fs, "beats fixed-size (static) patching")
        self.assertEqual(len(f), 1)
        self.assertEqual(f[0]["status"], "inconclusive (gap within 0.02 bpb)")
        self.assertIn("blt_entropy 1.7000 (4.00 B/patch) vs blt_static 1.6900", f[0]["evidence"][0])


if __name__ == "__main__":
    unittest.main()
