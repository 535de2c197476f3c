// test_experiment_command.cpp — `bytelm experiment run|report` end to end on the committed quick plan
// (configs/experiments/quick.json) with its data swapped for a generated text: every architecture trains to its
// FLOPs budget and is recorded; a second run skips what is done; an interrupted run (--exit-after) resumes and
// reproduces the uninterrupted run's held-out bpb exactly; --retime re-measures only generation speed; the
// report writes HTML + Markdown; bad plans fail with one line.
#include "cli/cli_harness.h"

namespace bytelm_test {

namespace {

using json = nlohmann::json;

// ~120 KB of pseudo-English (words of 1-3 syllables drawn by a seeded LCG, so a 512-piece BPE finds enough
// merges), in 4 files, and a small word list for the CUTE-like tasks.
void write_text(const std::string& dir) {
  fs::create_directories(dir);
  const char* syllables[] = {"the", "wha", "le",   "sea",  "ship", "cap",  "tain", "ah",  "ab",
                             "and", "of",  "in",   "whi",  "te",   "bo",   "at",   "har", "poon",
                             "sai", "lor", "deck", "wind", "o",    "cean", "was",  "his"};
  uint64_t s = 12345;
  auto next = [&s](uint64_t n) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (s >> 33) % n;
  };
  for (int f = 0; f < 4; ++f) {
    std::string text;
    while (text.size() < 30000) {
      for (uint64_t k = 0, n = 1 + next(3); k < n; ++k) text += syllables[next(26)];
      text += next(9) == 0 ? ".\n" : next(7) == 0 ? ", " : " ";
    }
    write(dir + "/part" + std::to_string(f) + ".txt", text);
  }
  std::string list;
  for (const char* w :
       {"apple", "table", "chair", "river", "stone", "plant", "house", "light", "green", "music", "paper", "water",
        "sound", "cloud", "night", "bread", "horse", "dream", "glass", "smile", "ocean", "piano", "tiger", "lemon"})
    list += std::string(w) + "\n";
  write(dir + "/../words.txt", list);
}

// The quick plan with its text dataset and word list replaced.
std::string quick_plan(const std::string& dir) {
  json plan = json::parse(slurp(std::string(BYTELM_SOURCE_DIR) + "/configs/experiments/quick.json"));
  plan["datasets"]["text"] = {dir + "/text"};
  plan["robustness"]["cute"]["words"] = dir + "/words.txt";
  const std::string path = dir + "/plan.json";
  write(path, plan.dump(1));
  return path;
}

json record(const std::string& out, const std::string& run) {
  return json::parse(slurp(out + "/runs/" + run + "/record.json"));
}

}  // namespace

TEST_F(Cli, ExperimentQuickPlanEndToEnd) {
  const std::string d = dir_ + "/exp";
  write_text(d + "/text");
  const std::string plan = quick_plan(d), out = d + "/out";
  Result r = run({"experiment", "run", plan, "--out", out, "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  const json plan_json = json::parse(slurp(plan));
  for (const auto& run_entry : plan_json["runs"]) {
    const std::string name = run_entry["name"];
    ASSERT_TRUE(fs::exists(out + "/runs/" + name + "/record.json")) << name << "\n" << r.err;
    const json rec = record(out, name);
    // Trained to the budget: steps x FLOPs per step within one step of the budget (BLT: the planned FLOPs;
    // what its patches really cost is recorded beside them and checked below).
    const json& tr = rec["training"];
    const double budget = run_entry["budget"],
                 planned = tr.contains("planned_flops") ? tr["planned_flops"] : tr["flops"];
    EXPECT_NEAR(planned, budget, budget / double(tr["steps"].get<int64_t>()) / 2 + 1) << name;
    // Warm-up is at most 10% of the steps, whatever the plan asks.
    const json trainer = json::parse(slurp(out + "/runs/" + name + "/train/trainer.json"));
    EXPECT_LE(trainer["warmup"].get<int64_t>() * 10, trainer["steps"].get<int64_t>()) << name;
    EXPECT_GT(rec["eval"]["bpb"].get<double>(), 0.5) << name;
    EXPECT_LT(rec["eval"]["bpb"].get<double>(), 8.5) << name;
    EXPECT_EQ(rec["seed"], 1234);
    EXPECT_FALSE(rec["provenance"]["commit"].get<std::string>().empty());
    EXPECT_GT(rec["flops"]["forward_per_byte"].get<double>(), 0) << name;
    EXPECT_FALSE(rec["training"]["curve"].empty()) << name;
  }
  // Every model was scored with sliding windows (BPE over tokens); BLT with and without its entropy model,
  // and with its global model skipped and zeroed.
  EXPECT_TRUE(record(out, "tf")["eval"]["sliding"].get<bool>());
  const json bpe = record(out, "bpe");
  EXPECT_GT(bpe["eval"]["bytes_per_token"].get<double>(), 1.0);
  EXPECT_TRUE(bpe["eval"]["sliding"].get<bool>());
  EXPECT_EQ(bpe["eval"]["stride_unit"], "tokens");
  const json blt = record(out, "blt_entropy");
  for (const char* key : {"skipped_bpb", "zeroed_bpb"}) {
    EXPECT_GT(blt["global_ablation"][key].get<double>(), 0.5) << key;
    EXPECT_NE(blt["global_ablation"][key].get<double>(), blt["eval"]["bpb"].get<double>()) << key;
  }
  EXPECT_GT(blt["flops"]["entropy_model_per_byte"].get<double>(), 0);
  EXPECT_GT(blt["flops"]["with_entropy_model_per_byte"].get<double>(), blt["flops"]["forward_per_byte"].get<double>());
  EXPECT_NEAR(blt["patches"]["mean_bytes_per_patch"].get<double>(), 3.0, 1.5);
  EXPECT_EQ(blt["sweep"].size(), 2u);
  // BLT's training FLOPs follow the patches training made (logged per interval), not the planned size.
  const json& btr = blt["training"];
  EXPECT_NEAR(btr["mean_bytes_per_patch"].get<double>(), 3.0, 1.5);
  EXPECT_NEAR(btr["flops"].get<double>(), btr["planned_flops"].get<double>(), 0.3 * btr["planned_flops"].get<double>());
  EXPECT_NE(slurp(out + "/runs/blt_entropy/train/metrics.jsonl").find("\"mean_bytes_per_patch\""), std::string::npos);
  EXPECT_EQ(record(out, "blt_space")["patches"]["mode"], "space");
  // H-Net: planned at its target chunk size, its training FLOPs counted at the chunks it really made, and
  // where its chunks start.
  const json hnet = record(out, "hnet");
  EXPECT_EQ(hnet["patches"]["mode"], "learned");
  EXPECT_GT(hnet["patches"]["mean_bytes_per_patch"].get<double>(), 1.0);
  EXPECT_GE(hnet["patches"]["starts_at_whitespace"].get<double>(), 0.0);
  EXPECT_GT(hnet["training"]["mean_bytes_per_patch"].get<double>(), 1.0);
  EXPECT_GT(hnet["training"]["flops"].get<double>(), 0.0);
  // Compressors on the same held-out bytes: all three rows, each with the held-out byte count of the runs.
  const json comp = json::parse(slurp(out + "/compressors.json"))["rows"];
  ASSERT_EQ(comp.size(), 3u);
  EXPECT_EQ(comp[0]["bytes"], record(out, "tf")["eval"]["bytes"]);
  // Robustness: noised bpb for each kind and the CUTE-like tasks, for the listed runs.
  const json rob = json::parse(slurp(out + "/robustness/bpe.json"));
  EXPECT_EQ(rob["noise"].size(), 5u);
  EXPECT_EQ(rob["cute"].size(), 3u);
  EXPECT_TRUE(fs::exists(out + "/robustness/tf.json"));

  // Again: every run is done and skipped; the records stay as they were.
  const std::string before = slurp(out + "/runs/tf/record.json");
  r = run({"experiment", "run", plan, "--out", out, "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("run tf is done"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(out + "/runs/tf/record.json"), before);

  // Interrupted after step 3, then resumed: the same held-out bpb, bit for bit, as the uninterrupted run.
  const std::string out2 = d + "/out2";
  r = run({"experiment", "run", plan, "--out", out2, "--only", "tf", "--exit-after", "3", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(fs::exists(out2 + "/runs/tf/record.json"));
  r = run({"experiment", "run", plan, "--out", out2, "--only", "tf", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(record(out2, "tf")["eval"]["bpb"].get<double>(), record(out, "tf")["eval"]["bpb"].get<double>());
  EXPECT_EQ(record(out2, "tf")["training"]["steps"], record(out, "tf")["training"]["steps"]);

  // --retime: only the generation speed is measured again (9 interleaved rounds, with the load when timed); the
  // first timing is kept beside it, nothing else in the record changes, and nothing trains.
  const json first = record(out2, "tf");
  EXPECT_EQ(first["generation"]["samples"], 3);
  const std::string plan_before = slurp(out2 + "/plan.json");
  r = run({"experiment", "run", plan, "--out", out2, "--retime", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("run tf: generation"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("run mb is not done; not retimed"), std::string::npos) << r.err;
  json again = record(out2, "tf");
  EXPECT_TRUE(again["generation"]["retimed"].get<bool>());
  EXPECT_EQ(again["generation"]["first_timing"], first["generation"]);
  EXPECT_GT(again["generation"]["bytes_per_s"].get<double>(), 0);
  EXPECT_TRUE(again["generation"]["provenance"].contains("load_average_1min"));
  EXPECT_EQ(again["generation"]["samples"], 9);  // one timing per interleaved round
  again["generation"] = first["generation"];
  EXPECT_EQ(again, first);
  r = run({"experiment", "run", plan, "--out", out2, "--retime", "--only", "tf", "--threads", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(record(out2, "tf")["generation"]["first_timing"], first["generation"]);  // still the first one
  EXPECT_EQ(slurp(out2 + "/plan.json"), plan_before);
  EXPECT_FALSE(fs::exists(out2 + "/runs/mb"));

  // A changed plan entry is refused rather than mixed with the old run.
  json changed = json::parse(slurp(plan));
  changed["runs"][1]["budget"] = 2e10;
  write(d + "/changed.json", changed.dump());
  expect_bad({"experiment", "run", d + "/changed.json", "--out", out, "--only", "tf"}, "changed in the plan");

  // The report: Markdown with Findings first, a self-contained HTML page, plots beside it.
  const std::string rep = d + "/report";
  const bool plots =
      fs::exists("/usr/bin/python3") && std::system("/usr/bin/python3 -c 'import matplotlib' 2>/dev/null") == 0;
  std::vector<std::string> args{"experiment", "report", out, "--out", rep, "--note", "test report"};
  if (!plots) args.push_back("--no-plots");
  r = run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string md = slurp(rep + "/README.md"), page = slurp(rep + "/index.html");
  EXPECT_EQ(md.find("## Findings"), md.find("##"));
  EXPECT_NE(md.find("gzip -9"), std::string::npos);
  EXPECT_NE(md.find("MEGABYTE has lower bpb than a byte Transformer"), std::string::npos);
  EXPECT_NE(md.find("MEGABYTE's cross-patch extension"), std::string::npos);  // mb_xpatch against mb
  EXPECT_EQ(page.find("http"), std::string::npos);                            // nothing fetched from elsewhere
  if (plots) {
    EXPECT_TRUE(fs::exists(rep + "/bpb_vs_training_flops_text.png"));
    EXPECT_TRUE(fs::exists(rep + "/bpb_vs_inference_flops.png"));
    EXPECT_NE(page.find("<img src='bpb_vs_inference_flops.png'"), std::string::npos);
  }
  fs::remove_all(d);
}

TEST_F(Cli, ExperimentBadInput) {
  const std::string d = dir_ + "/exp_bad";
  fs::create_directories(d);
  expect_bad({"experiment", "run", d + "/missing.json", "--out", d + "/o"}, "missing.json");
  write(d + "/broken.json", "{\"runs\": [");
  expect_bad({"experiment", "run", d + "/broken.json", "--out", d + "/o"}, "invalid JSON");
  write(d + "/typo.json", R"({"datasets": {"t": ["x"]}, "runs": [{"name": "a", "model": "transformer",
      "config": "tf_tiny", "data": "t", "budget": 1e9, "budgte": 2}]})");
  expect_bad({"experiment", "run", d + "/typo.json", "--out", d + "/o"}, "unknown key \"budgte\"");
  write(d + "/nodata.json", R"({"datasets": {"t": ["x"]}, "runs": [{"name": "a", "model": "transformer",
      "config": "tf_tiny", "data": "u", "budget": 1e9}]})");
  expect_bad({"experiment", "run", d + "/nodata.json", "--out", d + "/o"}, "names no dataset");
  write(d + "/ent.json", R"({"datasets": {"t": ["x"]}, "runs": [{"name": "a", "model": "blt",
      "config": "blt_tiny", "data": "t", "budget": 1e9, "entropy_model": "zz"}]})");
  expect_bad({"experiment", "run", d + "/ent.json", "--out", d + "/o"}, "entropy_model");
  write(d + "/dep.json", R"({"datasets": {"t": ["x"]}, "runs": [{"name": "e", "model": "entropy",
      "config": "ent_tiny", "data": "t", "budget": 1e9}, {"name": "b", "model": "blt", "config": "blt_tiny",
      "data": "t", "budget": 1e9, "entropy_model": "e"}]})");
  expect_bad({"experiment", "run", d + "/dep.json", "--out", d + "/o", "--only", "b"}, "needs its entropy model");
  expect_bad({"experiment", "report", d + "/nothing", "--out", d + "/r"}, "no such experiment directory");
  expect_bad({"experiment", "run", d + "/typo.json"}, "--out");
}

}  // namespace bytelm_test
