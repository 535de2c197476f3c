// api.h — the OpenAI-shaped wire format of `bytelm serve`, torch-free: parsing and validating request
// bodies, the error object, completion objects (whole and streamed chunks), and the UTF-8 hold-back that
// keeps streamed `text` deltas valid UTF-8 whose concatenation equals the decoded whole.
// Byte models have no tokens: max_tokens and every *_tokens count in `usage` are bytes.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "generate/sampling.h"

namespace bytelm::serve {

// An HTTP error with the OpenAI error object {"error":{"message","type","param","code"}}.
struct ApiError {
  int status = 400;
  std::string type = "invalid_request_error";
  std::string message;
  std::string param;  // the offending field, empty = null
  nlohmann::json body() const;
  std::string dump() const;  // body() as one line; invalid UTF-8 (from a path, a header) becomes U+FFFD
};
ApiError bad_request(const std::string& message, const std::string& param = "");

// POST /v1/completions, validated. The prompt is raw bytes: a JSON string (UTF-8), or an array of byte
// values 0..255 (the only way to send bytes that are not UTF-8).
struct CompletionRequest {
  std::string prompt;
  int64_t max_bytes = 16;         // `max_tokens` (OpenAI's default 16), in bytes
  SamplingOptions sampling;       // temperature (default 1), top_k (0 = off), top_p (default 1), min_p
  std::vector<std::string> stop;  // up to 4; the returned text ends before the stop string
  bool has_seed = false;
  uint64_t seed = 0;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk with choices [] and usage
  bool return_bytes = false;   // bytelm extension: `bytes` (exact byte values) beside `text` in each choice
  bool return_bits = false;    // bytelm extension: `bits`, the surprisal -log2 p of each byte under the model
  int64_t logprobs = -1;       // OpenAI `logprobs` (0..20; -1 = null): each byte's log p and the N likeliest bytes
};
// Throws ApiError (400) naming the field. `context`: the model's context in bytes (prompt + max_tokens must
// fit in context - 1, the bytes one decoding window holds).
CompletionRequest parse_completion(const std::string& body, int64_t context);

// POST /v1/score: {"text": "..."} or {"bytes": [..]}: 1 .. context bytes.
std::string parse_score(const std::string& body, int64_t context);

// The pieces of a completion as the scheduler produces them.
struct Piece {
  std::string bytes;
  std::vector<float> bits;  // one per byte
  // With `logprobs` N: per byte, the N likeliest bytes and their natural-log probabilities, likeliest first.
  std::vector<std::vector<std::pair<uint8_t, float>>> top;
  int64_t offset = 0;  // the piece's first byte's offset in the completion
};

// UTF-8 text for streamed byte pieces: an incomplete UTF-8 sequence at the end is held back until the next
// piece completes it (or proves it invalid); invalid bytes become U+FFFD. flush() ends the stream.
class Utf8Stream {
 public:
  std::string push(const std::string& bytes);
  std::string flush();

 private:
  std::string pending_;
};
// Valid UTF-8 with every ill-formed sequence replaced by U+FFFD (one per maximal invalid prefix).
std::string to_valid_utf8(const std::string& bytes);
// Length of the longest suffix of `s` that is an incomplete but so far valid UTF-8 sequence (0..3).
size_t incomplete_utf8_tail(const std::string& s);

struct CompletionIds {
  std::string id;  // "cmpl-..."
  int64_t created = 0;
  std::string model;
};
nlohmann::json choice_json(const std::string& text, const Piece& piece, const CompletionRequest& req,
                           const char* finish_reason);
nlohmann::json usage_json(int64_t prompt_bytes, int64_t completion_bytes);
nlohmann::json completion_json(const CompletionIds& ids, nlohmann::json choices);
// One SSE event: "data: " + one-line JSON + "\n\n" (always valid UTF-8).
std::string sse_event(const nlohmann::json& j);

}  // namespace bytelm::serve
