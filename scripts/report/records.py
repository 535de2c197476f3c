"""records.py — reading an experiment's records directory (plan.json, runs/*/record.json, runs/*/train/
trainer.json and metrics.jsonl, compressors.json, robustness/*.json) into the results dict the report uses:
the same shape as src/experiment/report.cpp's gather_results, plus each run's trainer settings ("trainer")
and logged training steps ("metrics"). Also the warm-up share of a run's steps, from trainer.json."""
import glob
import json
import os


def load_json(path):
    with open(path) as f:
        return json.load(f)


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def attach_train_files(run, run_dir):
    """Adds run["trainer"] (trainer.json) and run["metrics"] (metrics.jsonl rows) when the files exist."""
    t = os.path.join(run_dir, "train", "trainer.json")
    if os.path.exists(t):
        run["trainer"] = load_json(t)
    run["metrics"] = load_jsonl(os.path.join(run_dir, "train", "metrics.jsonl"))
    return run


def gather(records):
    """The results dict of an experiment directory (or a published report's records/)."""
    plan = load_json(os.path.join(records, "plan.json"))
    res = {"plan": plan, "runs": [], "robustness": [], "pending": [], "source_dir": records}
    for entry in plan.get("runs", []):
        d = os.path.join(records, "runs", entry["name"])
        if os.path.exists(os.path.join(d, "record.json")):
            res["runs"].append(attach_train_files(load_json(os.path.join(d, "record.json")), d))
        else:
            res["pending"].append(entry["name"])
    comp = os.path.join(records, "compressors.json")
    if os.path.exists(comp):
        res["compressors"] = load_json(comp)["rows"]
    for f in sorted(glob.glob(os.path.join(records, "robustness", "*.json"))):
        res["robustness"].append(load_json(f))
    return res


def attach_from_source(res):
    """For a results.json made by `bytelm experiment report`: trainer.json and metrics.jsonl from its
    source_dir when that directory still exists."""
    src = res.get("source_dir")
    for r in res["runs"]:
        if src and "trainer" not in r:
            attach_train_files(r, os.path.join(src, "runs", r["name"]))
    return res


def steps_and_warmup(run):
    """(steps, warm-up steps) the run trained with: trainer.json first (the warm-up there is the one used),
    else the record's steps and its plan entry's warm-up."""
    t = run.get("trainer") or {}
    steps = t.get("steps") or (run.get("training") or {}).get("steps")
    warm = t.get("warmup", ((run.get("entry") or {}).get("train") or {}).get("warmup"))
    return steps, warm


WARMUP_SHARE = 0.10  # a run warming up longer than this share of its steps is flagged on every verdict using it


def warmup_flag(run):
    """"NAME warm-up W of S steps (P%)" when the warm-up exceeds WARMUP_SHARE of the steps, else None."""
    steps, warm = steps_and_warmup(run)
    if not steps or warm is None or warm <= WARMUP_SHARE * steps:
        return None
    return f"{run['name']} warmed up for {warm} of its {steps} steps ({100 * min(warm, steps) / steps:.0f}%)"
