// token_training.cpp — the BPE baseline's tokenizer for a training run (see token_training.h).
#include "train/token_training.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "util/error.h"

namespace bytelm {

std::string tokenizer_path(const std::string& dir_or_file) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir_or_file, ec)) return dir_or_file + "/" + kTokenizerFile;
  return dir_or_file;
}

Tokenizer run_tokenizer(const TrainOptions& opt, const Corpus& corpus, int64_t vocab) {
  Tokenizer tok;
  if (opt.resume) {
    tok = Tokenizer::load(opt.out + "/" + kTokenizerFile);
  } else if (!opt.tokenizer.empty()) {
    tok = Tokenizer::load(tokenizer_path(opt.tokenizer));
  } else {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::string> texts;
    for (const auto& f : corpus.files(Split::Train))
      texts.emplace_back(reinterpret_cast<const char*>(f.data), size_t(f.size));
    TokenizerTrainOptions o;
    o.type = opt.tokenizer_type;
    o.vocab = vocab;
    o.threads = opt.threads > 0 ? opt.threads : 2;
    tok = Tokenizer::train(texts, o);
    std::fprintf(stderr, "bytelm: trained a %s tokenizer of %lld pieces on the training split (%.1fs)\n",
                 opt.tokenizer_type.c_str(), (long long)vocab,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  if (tok.vocab_size() != vocab)
    throw Error("the tokenizer has " + std::to_string(tok.vocab_size()) + " pieces but the config's vocab_size is " +
                std::to_string(vocab) + " (train one with --vocab " + std::to_string(vocab) + ", or omit --tokenizer)");
  return tok;
}

}  // namespace bytelm
