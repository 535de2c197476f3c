// generate_tokens.h — generation with the BPE baseline: prompt bytes in, bytes streamed out, like the byte
// models. The prompt is encoded by the tokenizer; each sampled token's bytes are streamed as soon as they are
// complete (a token that ends inside a UTF-8 character is streamed as its bytes; only an escape of a non-UTF-8
// byte split across tokens waits for its end). Special pieces are never sampled; --max-bytes counts bytes.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "generate/generate.h"

namespace bytelm {

class Tokenizer;

constexpr int64_t kTokenControlIds = 3;  // <unk> <s> </s>: ids 0-2, never sampled

std::string generate_tokens(LanguageModelImpl& model, const Tokenizer& tokenizer, const GenerateOptions& opt,
                            const std::function<void(uint8_t)>& sink);
// Prompts decoded together by a BatchDecoder, row i with seed opt.seed + i: each equals generate_tokens() alone.
std::vector<std::string> generate_tokens_batch(LanguageModelImpl& model, const Tokenizer& tokenizer,
                                               const std::vector<std::string>& prompts, const GenerateOptions& opt);

}  // namespace bytelm
