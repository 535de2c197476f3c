// tokenizer.cpp — `bytelm tokenizer`: train the BPE baseline's SentencePiece tokenizer on files (`train`), or
// check one on files (`stats`: bytes per token, and that every file round-trips to its exact bytes).
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "data/corpus.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace bytelm::cli {

namespace {

struct TokenizerCli {
  std::vector<std::string> data;
  std::string out;        // train: output directory (tokenizer.model inside)
  std::string tokenizer;  // stats: directory or .model file
  TokenizerTrainOptions train;
  double val_fraction = 0;  // train: hold out the tail of each file as `bytelm train` would (0 = use all)
  bool json = false;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run_train_tokenizer(const TokenizerCli& c) {
  if (c.data.empty()) throw Error("--data is required");
  if (c.out.empty()) throw Error("--out is required");
  if (c.val_fraction < 0 || c.val_fraction >= 1) throw Error("--val-fraction must be in [0, 1)");
  const auto t0 = std::chrono::steady_clock::now();
  Corpus corpus(c.data, c.val_fraction);
  std::vector<std::string> texts;
  for (const auto& f : corpus.files(Split::Train))
    texts.emplace_back(reinterpret_cast<const char*>(f.data), size_t(f.size));
  const Tokenizer tok = Tokenizer::train(texts, c.train);
  std::error_code ec;
  std::filesystem::create_directories(c.out, ec);
  if (ec) throw Error(c.out + ": cannot create the directory (" + ec.message() + ")");
  tok.save(c.out + "/" + kTokenizerFile);
  std::fprintf(stderr, "bytelm: %s tokenizer of %lld pieces trained on %lld bytes in %.1fs: %s/%s\n",
               c.train.type.c_str(), (long long)tok.vocab_size(), (long long)corpus.size(Split::Train),
               seconds_since(t0), c.out.c_str(), kTokenizerFile);
  return 0;
}

int run_stats(const TokenizerCli& c) {
  if (c.data.empty()) throw Error("--data is required");
  if (c.tokenizer.empty()) throw Error("--tokenizer is required");
  std::error_code ec;
  const bool dir = std::filesystem::is_directory(c.tokenizer, ec);
  const Tokenizer tok = Tokenizer::load(dir ? c.tokenizer + "/" + kTokenizerFile : c.tokenizer);
  const auto t0 = std::chrono::steady_clock::now();
  Corpus corpus(c.data, 0.0);
  int64_t bytes = 0, tokens = 0, failed = 0;
  std::string first_failed;
  for (const auto& f : corpus.files(Split::All)) {
    const auto ids = tok.encode(f.data, f.size);
    const std::string back = tok.decode(ids);
    if (back.size() != size_t(f.size) ||
        back.compare(0, back.size(), reinterpret_cast<const char*>(f.data), size_t(f.size)) != 0) {
      if (failed++ == 0) first_failed = f.path;
    }
    bytes += f.size;
    tokens += int64_t(ids.size());
  }
  const double secs = seconds_since(t0);
  if (c.json) {
    nlohmann::json j{{"tokenizer", c.tokenizer},
                     {"vocab_size", tok.vocab_size()},
                     {"files", corpus.num_files()},
                     {"bytes", bytes},
                     {"tokens", tokens},
                     {"bytes_per_token", double(bytes) / double(std::max<int64_t>(1, tokens))},
                     {"round_trip_failures", failed},
                     {"seconds", secs}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%lld files, %lld bytes -> %lld tokens: %.3f bytes per token; round trip %s (%.1fs)\n",
                (long long)corpus.num_files(), (long long)bytes, (long long)tokens,
                double(bytes) / double(std::max<int64_t>(1, tokens)), failed ? "FAILED" : "exact on every file", secs);
  }
  if (failed) throw Error(std::to_string(failed) + " files do not round-trip, the first " + first_failed, 1);
  return 0;
}

}  // namespace

Command add_tokenizer(CLI::App& app) {
  auto c = std::make_shared<TokenizerCli>();
  auto* t = app.add_subcommand("tokenizer", "Subword tokenizer of the BPE baseline (--model bpe): train, stats");
  t->require_subcommand(1);
  auto* tr = t->add_subcommand("train", "Train a lossless SentencePiece tokenizer (byte fallback, no normalisation)");
  tr->add_option("--data", c->data, "Files or directories of training bytes")->expected(1, -1);
  tr->add_option("--out", c->out, "Output directory (writes tokenizer.model)");
  tr->add_option("--vocab", c->train.vocab, "Pieces in all (259 are bytes and specials)");
  tr->add_option("--type", c->train.type, "bpe | unigram")->check(CLI::IsMember({"bpe", "unigram"}));
  tr->add_option("--val-fraction", c->val_fraction,
                 "Leave out the tail of each file, as `bytelm train --val-fraction` holds it out (0 = use everything)");
  tr->add_option("--max-bytes", c->train.max_bytes, "Train on at most this many bytes (the first ones)");
  tr->add_option("--threads", c->train.threads, "Training threads")->check(CLI::PositiveNumber);
  auto* st = t->add_subcommand("stats", "Bytes per token on files, and a check that each round-trips exactly");
  st->add_option("--tokenizer", c->tokenizer, "Tokenizer directory or .model file");
  st->add_option("--data", c->data, "Files or directories")->expected(1, -1);
  st->add_flag("--json", c->json, "Print one JSON object");
  return {t, [c, tr] { return *tr ? run_train_tokenizer(*c) : run_stats(*c); }};
}

}  // namespace bytelm::cli
