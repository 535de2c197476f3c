// token_training.h — what a BPE-baseline run (--model bpe) adds to training: its tokenizer (given, resumed,
// or trained on the training split as the run's first step) and its corpus in tokens.
#pragma once
#include <memory>

#include "data/token_corpus.h"
#include "tokenizer/tokenizer.h"
#include "train/train_options.h"

namespace bytelm {

// The run's tokenizer: on --resume the one in --out; else --tokenizer (a directory holding tokenizer.model,
// or the file); else one trained on the training split (--tokenizer-type, `vocab` pieces). Its vocabulary
// must be the config's vocab_size. Throws Error.
Tokenizer run_tokenizer(const TrainOptions& opt, const Corpus& corpus, int64_t vocab);

// A tokenizer path as given on the command line: a directory means its tokenizer.model.
std::string tokenizer_path(const std::string& dir_or_file);

}  // namespace bytelm
