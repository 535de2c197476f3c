// extras.h — the measurements beside the runs: general-purpose compressors on the same held-out bytes
// (compressors.cpp), and robustness (robustness.cpp): bpb on noised text and CUTE-like character tasks.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bytelm::experiment {

struct Plan;
struct RunnerOptions;

// Bits per byte of `bytes` compressed by `command` (e.g. "gzip -9"), run on a temporary file.
double compressed_bpb(const std::string& command, const std::string& bytes);

// DIR/compressors.json: gzip -9, bzip2 -9 and xz -9e on each dataset's held-out bytes (plan eval settings).
void write_compressor_rows(const Plan& plan, const RunnerOptions& opt);

// Noise as in the BLT paper's robustness table: "uppercase" (every letter), "randomcase" (each letter's case
// drawn at random), "drop" (10% of characters dropped), "repeat" (20% of characters repeated 1-3 more times),
// "antspeak" (letters upper-cased and separated by spaces). Deterministic given the seed.
std::string add_noise(const std::string& text, const std::string& kind, uint64_t seed);

// A CUTE-like item: the question line's head ("spell apple =") and its answer (" a p p l e").
struct CuteItem {
  std::string question, answer;
};
// Items of one task for test words, each preceded by `shots` solved examples on other (train) words.
// Words: lower-case a-z, 3-10 letters, from the list; split into disjoint train and test halves by the seed.
std::vector<std::pair<std::string, std::string>> cute_prompts(const std::vector<std::string>& words,
                                                              const std::string& task, int64_t items, int64_t shots,
                                                              uint64_t seed);
CuteItem cute_item(const std::string& task, const std::string& word, std::mt19937_64& rng);
std::vector<std::string> read_words(const std::string& path);

// DIR/robustness/NAME.json for each robustness run: clean and noised bpb, CUTE-like accuracy and answer bpb.
void run_robustness(const Plan& plan, const RunnerOptions& opt);

}  // namespace bytelm::experiment
