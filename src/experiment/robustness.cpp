// robustness.cpp — robustness measurements without further training: bpb on noised held-out text (the BLT
// paper's noise kinds) and CUTE-like character tasks (Edman et al. 2024) asked few-shot, as CUTE does, with
// words from a word list: exact match of the greedy answer and the answer's bits per byte (more sensitive for
// small models). Deviation from CUTE: one-line prompts ("spell apple = a p p l e") instead of English
// questions, six of its fourteen tasks, and letters only (no word-level tasks): tiny models cannot parse
// instructions; the character manipulations are what separate byte from subword models.
#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "data/corpus.h"
#include "experiment/extras.h"
#include "experiment/measure.h"
#include "experiment/plan.h"
#include "experiment/runner.h"
#include "generate/generate.h"
#include "generate/generate_tokens.h"
#include "io/atomic_file.h"
#include "model/checkpoint.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace bytelm::experiment {

using json = nlohmann::json;

std::string add_noise(const std::string& text, const std::string& kind, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::string out;
  out.reserve(text.size() * 2);
  for (unsigned char c : text) {
    const bool letter = std::isalpha(c);
    if (kind == "uppercase") {
      out += char(std::toupper(c));
    } else if (kind == "randomcase") {
      out += letter && u(rng) < 0.5 ? char(std::isupper(c) ? std::tolower(c) : std::toupper(c)) : char(c);
    } else if (kind == "drop") {
      if (u(rng) >= 0.1) out += char(c);
    } else if (kind == "repeat") {
      out += char(c);
      if (u(rng) < 0.2) out.append(size_t(1 + rng() % 3), char(c));
    } else if (kind == "antspeak") {
      if (letter) {
        out += char(std::toupper(c));
        out += ' ';
      } else if (c != ' ') {
        out += char(c);
      }
    } else {
      throw Error("unknown noise kind " + kind);
    }
  }
  return out;
}

std::vector<std::string> read_words(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot read the word list (install wamerican for /usr/share/dict/words)");
  std::vector<std::string> words;
  for (std::string w; std::getline(in, w);) {
    if (w.size() < 3 || w.size() > 10) continue;
    if (std::all_of(w.begin(), w.end(), [](char c) { return c >= 'a' && c <= 'z'; })) words.push_back(w);
  }
  if (words.size() < 20) throw Error(path + ": fewer than 20 plain lower-case words of 3-10 letters");
  return words;
}

CuteItem cute_item(const std::string& task, const std::string& w, std::mt19937_64& rng) {
  auto letter_not_in = [&](const std::string& s) {
    for (;;) {
      char c = char('a' + rng() % 26);
      if (s.find(c) == std::string::npos) return c;
    }
  };
  const char a = w[rng() % w.size()];
  if (task == "spell") {
    std::string s;
    for (char c : w) (s += ' ') += c;
    return {"spell " + w + " =", s};
  }
  if (task == "reverse") return {"reverse " + w + " =", " " + std::string(w.rbegin(), w.rend())};
  if (task == "substitute") {
    const char b = letter_not_in(w);
    std::string s = w;
    std::replace(s.begin(), s.end(), a, b);
    return {std::string("sub ") + a + " " + b + " " + w + " =", " " + s};
  }
  if (task == "swap") {  // swap the first occurrences of two different letters
    char b = a;
    for (int tries = 0; b == a && tries < 64; ++tries) b = w[rng() % w.size()];
    std::string s = w;
    const size_t i = s.find(a), j = s.find(b);
    std::swap(s[i], s[j]);
    return {std::string("swap ") + a + " " + b + " " + w + " =", " " + s};
  }
  if (task == "insert") {  // insert b after the first a
    const char b = letter_not_in(w);
    std::string s = w;
    s.insert(s.find(a) + 1, 1, b);
    return {std::string("ins ") + b + " " + a + " " + w + " =", " " + s};
  }
  if (task == "delete") {  // delete every a
    std::string s = w;
    s.erase(std::remove(s.begin(), s.end(), a), s.end());
    return {std::string("del ") + a + " " + w + " =", " " + s};
  }
  throw Error("unknown CUTE task " + task);
}

std::vector<std::pair<std::string, std::string>> cute_prompts(const std::vector<std::string>& words,
                                                              const std::string& task, int64_t items, int64_t shots,
                                                              uint64_t seed) {
  std::vector<std::string> w = words;
  std::mt19937_64 rng(seed);
  std::shuffle(w.begin(), w.end(), rng);
  const size_t half = w.size() / 2;  // [0, half) examples, [half, end) test words: disjoint
  std::vector<std::pair<std::string, std::string>> out;
  for (int64_t i = 0; i < items && half + size_t(i) < w.size(); ++i) {
    std::string prompt;
    for (int64_t s = 0; s < shots; ++s) {
      const CuteItem ex = cute_item(task, w[rng() % half], rng);
      prompt += ex.question + ex.answer + "\n";
    }
    const CuteItem q = cute_item(task, w[half + size_t(i)], rng);
    out.push_back({prompt + q.question, q.answer + "\n"});
  }
  return out;
}

namespace {

// Units (bytes, or tokens for bpe) that `text` takes in the model's context.
int64_t units(const Tokenizer* tok, const std::string& text) {
  return tok ? int64_t(encode_chunked(*tok, text).size()) + 1 : int64_t(text.size());
}

// The answer's nats given the prompt: nats(prompt + answer) - nats(prompt), each scored from the start
// state in one window (for every model the same definition; for the BPE baseline over canonical tokens).
json score_cute_task(LanguageModelImpl& model, const Tokenizer* tok, const std::vector<std::string>& words,
                     const std::string& task, const CuteSettings& s, uint64_t seed) {
  const int64_t T = model.config().context;
  int64_t correct = 0, n = 0, answer_bytes = 0, used_shots = s.shots;
  double nats = 0;
  // Fewer shots when the prompts do not fit the context (tiny models).
  std::vector<std::pair<std::string, std::string>> items;
  for (; used_shots >= 0; --used_shots) {
    items = cute_prompts(words, task, s.items, used_shots, seed);
    bool fits = true;
    for (const auto& [q, a] : items) fits = fits && units(tok, q + a) + 8 < T;
    if (fits) break;
  }
  if (used_shots < 0) return json{{"task", task}, {"error", "prompts do not fit the context"}};
  for (const auto& [q, a] : items) {
    nats += score_text(model, tok, q + a, T, 1) - score_text(model, tok, q, T, 1);
    answer_bytes += int64_t(a.size());
    GenerateOptions g;
    g.device = device_of(model);
    g.prompt = q;
    g.temperature = 0;
    g.max_bytes = int64_t(a.size()) + 2;
    g.stop = {"\n"};
    g.decode = "dynamic";
    const std::string out = tok ? generate_tokens(model, *tok, g, [](uint8_t) {}) : generate(model, g, [](uint8_t) {});
    correct += out == a;
    ++n;
  }
  return json{{"task", task},
              {"items", n},
              {"shots", used_shots},
              {"accuracy", double(correct) / double(n)},
              {"answer_bpb", nats / std::log(2.0) / double(answer_bytes)}};
}

}  // namespace

void run_robustness(const Plan& plan, const RunnerOptions& opt) {
  const auto& r = plan.robustness;
  std::vector<std::string> names = r.runs;
  if (names.empty())
    for (const auto& run : plan.runs)
      if (run.data == r.data && run.model != "entropy") names.push_back(run.name);
  std::filesystem::create_directories(opt.out + "/robustness");
  Corpus corpus(plan.datasets.at(r.data), plan.val_fraction);
  const std::string clean = held_out_bytes(corpus, r.max_bytes);
  const std::vector<std::string> words = r.cute ? read_words(r.cute_settings.words) : std::vector<std::string>{};
  const json settings{{"data", r.data},
                      {"noise", r.noise},
                      {"max_bytes", r.max_bytes},
                      {"cute", r.cute},
                      {"items", r.cute_settings.items},
                      {"shots", r.cute_settings.shots},
                      {"tasks", r.cute_settings.tasks},
                      {"seed", plan.seed}};
  for (const auto& name : names) {
    const PlanRun* run = find_run(plan, name);
    const std::string dir = opt.out + "/runs/" + name, path = opt.out + "/robustness/" + name + ".json";
    std::error_code ec;
    if (!std::filesystem::exists(dir + "/record.json", ec)) continue;  // not trained yet (--only)
    const json key{{"entry", run->entry}, {"settings", settings}};
    if (std::filesystem::exists(path, ec) && json::parse(read_file(path)).value("key", json()) == key) continue;
    auto model = load_for_inference(dir + "/train", opt.device, opt.threads);
    std::unique_ptr<Tokenizer> tok;
    if (model->reads_tokens())
      tok = std::make_unique<Tokenizer>(load_checkpoint_tokenizer(dir + "/train", model->config().vocab_size));
    const int64_t T = model->config().context;
    const int64_t stride = std::max<int64_t>(1, std::llround(plan.eval.stride_fraction * double(T)));
    auto bpb = [&](const std::string& text) {
      return score_text(*model, tok.get(), text, stride, plan.eval.batch) / std::log(2.0) / double(text.size());
    };
    json out{{"name", name}, {"model", model->config().model}, {"key", key}, {"provenance", provenance(opt.device)}};
    out["clean_bpb"] = bpb(clean);
    json noised = json::array();
    for (const auto& kind : r.noise) {
      const double v = bpb(add_noise(clean, kind, uint64_t(plan.seed)));
      noised.push_back({{"noise", kind}, {"bpb", v}, {"delta", v - out["clean_bpb"].get<double>()}});
    }
    out["noise"] = noised;
    json cute = json::array();
    for (const auto& task : r.cute_settings.tasks)
      if (r.cute) cute.push_back(score_cute_task(*model, tok.get(), words, task, r.cute_settings, uint64_t(plan.seed)));
    out["cute"] = cute;
    write_file_atomic(path, out.dump(2) + "\n");
    std::fprintf(stderr, "experiment: robustness of %s in %s\n", name.c_str(), path.c_str());
  }
}

}  // namespace bytelm::experiment
