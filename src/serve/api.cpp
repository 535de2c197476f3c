// api.cpp — request parsing/validation and OpenAI-shaped JSON for `bytelm serve` (see api.h).
#include "serve/api.h"

#include <cmath>

#include "util/text.h"

namespace bytelm::serve {

using json = nlohmann::json;

json ApiError::body() const {
  return json{{"error",
               {{"message", message},
                {"type", type},
                {"param", param.empty() ? json(nullptr) : json(param)},
                {"code", nullptr}}}};
}

std::string ApiError::dump() const { return body().dump(-1, ' ', false, json::error_handler_t::replace); }

ApiError bad_request(const std::string& message, const std::string& param) {
  ApiError e;
  e.message = message;
  e.param = param;
  return e;
}

namespace {

json parse_object(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) throw bad_request("the request body is not valid JSON (UTF-8)");
  if (!j.is_object()) throw bad_request("the request body must be a JSON object");
  return j;
}

// A string, or an array of byte values 0..255, as raw bytes.
std::string bytes_field(const json& v, const std::string& name) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) throw bad_request("'" + name + "' must be a string or an array of byte values 0..255", name);
  std::string out;
  for (const auto& b : v) {
    if (!b.is_number_integer() || b.get<int64_t>() < 0 || b.get<int64_t>() > 255)
      throw bad_request("'" + name + "' as an array holds byte values, integers 0..255", name);
    out.push_back(char(b.get<int64_t>()));
  }
  return out;
}

double number(const json& j, const char* name, double lo, double hi, double fallback) {
  if (!j.contains(name) || j[name].is_null()) return fallback;
  if (!j[name].is_number()) throw bad_request(std::string("'") + name + "' must be a number", name);
  const double x = j[name].get<double>();
  if (!(x >= lo && x <= hi))
    throw bad_request(std::string("'") + name + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
                      name);
  return x;
}

int64_t integer(const json& j, const char* name, int64_t lo, int64_t hi, int64_t fallback) {
  if (!j.contains(name) || j[name].is_null()) return fallback;
  if (!j[name].is_number_integer()) throw bad_request(std::string("'") + name + "' must be an integer", name);
  if (j[name].is_number_unsigned() && j[name].get<uint64_t>() > uint64_t(INT64_MAX))
    throw bad_request(std::string("'") + name + "' is out of range", name);
  const int64_t x = j[name].get<int64_t>();
  if (x < lo || x > hi)
    throw bad_request(std::string("'") + name + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
                      name);
  return x;
}

bool boolean(const json& j, const char* name) {
  if (!j.contains(name) || j[name].is_null()) return false;
  if (!j[name].is_boolean()) throw bad_request(std::string("'") + name + "' must be true or false", name);
  return j[name].get<bool>();
}

}  // namespace

CompletionRequest parse_completion(const std::string& body, int64_t context) {
  const json j = parse_object(body);
  CompletionRequest r;
  if (!j.contains("prompt")) throw bad_request("'prompt' is required", "prompt");
  const json& p = j["prompt"];
  // OpenAI also takes a list of prompts; a list of one string is accepted, batches of prompts are not.
  if (p.is_array() && p.size() == 1 && p[0].is_string())
    r.prompt = p[0].get<std::string>();
  else
    r.prompt = bytes_field(p, "prompt");
  if (int64_t(r.prompt.size()) > context - 1)
    throw bad_request("the prompt has " + std::to_string(r.prompt.size()) + " bytes; the model's context holds " +
                          std::to_string(context - 1),
                      "prompt");
  r.max_bytes = integer(j, "max_tokens", 0, INT64_MAX, 16);
  // Compared as room left, not as a sum: max_tokens may be as large as 2^63 - 1.
  if (r.max_bytes > context - 1 - int64_t(r.prompt.size()))
    throw bad_request("prompt (" + std::to_string(r.prompt.size()) + " bytes) + max_tokens (" +
                          std::to_string(r.max_bytes) + " bytes) exceed the model's context of " +
                          std::to_string(context - 1) + " bytes",
                      "max_tokens");
  r.sampling.temperature = number(j, "temperature", 0, 2, 1.0);
  r.sampling.top_k = integer(j, "top_k", 0, 256, 0);
  r.sampling.top_p = number(j, "top_p", 0, 1, 1.0);
  if (r.sampling.top_p <= 0) throw bad_request("'top_p' must be in (0, 1]", "top_p");
  r.sampling.min_p = number(j, "min_p", 0, 1, 0.0);
  if (j.contains("n") && !j["n"].is_null() && integer(j, "n", 1, 1, 1) != 1) throw bad_request("'n' must be 1", "n");
  if (j.contains("stop") && !j["stop"].is_null()) {
    const json& s = j["stop"];
    if (s.is_string()) {
      r.stop.push_back(s.get<std::string>());
    } else if (s.is_array() && s.size() <= 4) {
      for (const auto& x : s) {
        if (!x.is_string()) throw bad_request("'stop' must be a string or a list of up to 4 strings", "stop");
        r.stop.push_back(x.get<std::string>());
      }
    } else {
      throw bad_request("'stop' must be a string or a list of up to 4 strings", "stop");
    }
    for (const auto& x : r.stop)
      if (x.empty()) throw bad_request("'stop' strings must not be empty", "stop");
  }
  if (j.contains("seed") && !j["seed"].is_null()) {
    if (!j["seed"].is_number_integer()) throw bad_request("'seed' must be an integer", "seed");
    r.has_seed = true;
    r.seed = j["seed"].is_number_unsigned() ? j["seed"].get<uint64_t>() : uint64_t(j["seed"].get<int64_t>());
  }
  r.stream = boolean(j, "stream");
  if (j.contains("stream_options") && j["stream_options"].is_object())
    r.include_usage = boolean(j["stream_options"], "include_usage");
  r.return_bytes = boolean(j, "return_bytes");
  r.return_bits = boolean(j, "return_bits");
  if (j.contains("logprobs") && !j["logprobs"].is_null()) r.logprobs = integer(j, "logprobs", 0, 20, 0);
  return r;
}

std::string parse_score(const std::string& body, int64_t context) {
  const json j = parse_object(body);
  std::string bytes;
  if (j.contains("text"))
    bytes = bytes_field(j["text"], "text");
  else if (j.contains("bytes"))
    bytes = bytes_field(j["bytes"], "bytes");
  else
    throw bad_request("'text' (a string) or 'bytes' (byte values) is required", "text");
  if (bytes.empty()) throw bad_request("nothing to score: the text is empty", "text");
  if (int64_t(bytes.size()) > context)
    throw bad_request("the text has " + std::to_string(bytes.size()) + " bytes; the model scores at most " +
                          std::to_string(context) + " (its context) at once",
                      "text");
  return bytes;
}

namespace {
// Bytes a UTF-8 lead byte announces (0 = not a lead byte).
int sequence_length(uint8_t b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}
// Valid second byte for lead byte `lead` (the overlong/surrogate/range rules of RFC 3629).
bool valid_second(uint8_t lead, uint8_t b) {
  if (lead == 0xE0) return b >= 0xA0 && b <= 0xBF;
  if (lead == 0xED) return b >= 0x80 && b <= 0x9F;
  if (lead == 0xF0) return b >= 0x90 && b <= 0xBF;
  if (lead == 0xF4) return b >= 0x80 && b <= 0x8F;
  return b >= 0x80 && b <= 0xBF;
}
// Length of the valid sequence at s[i] (>= 1), or -k: the first k bytes are a maximal invalid or (at the
// end of s) incomplete prefix; incomplete is set when it is only cut short by the end of s.
int scan(const std::string& s, size_t i, bool* incomplete) {
  *incomplete = false;
  const uint8_t lead = uint8_t(s[i]);
  const int n = sequence_length(lead);
  if (n == 0) return -1;
  for (int k = 1; k < n; ++k) {
    if (i + k >= s.size()) {
      *incomplete = true;
      return -k;
    }
    const uint8_t b = uint8_t(s[i + k]);
    if (k == 1 ? !valid_second(lead, b) : (b < 0x80 || b > 0xBF)) return -k;
  }
  return n;
}
}  // namespace

size_t incomplete_utf8_tail(const std::string& s) {
  for (size_t back = 1; back <= 3 && back <= s.size(); ++back) {
    const size_t i = s.size() - back;
    if (sequence_length(uint8_t(s[i])) <= 1 && uint8_t(s[i]) < 0x80) return 0;
    if (sequence_length(uint8_t(s[i])) > 1) {
      bool incomplete = false;
      const int r = scan(s, i, &incomplete);
      return (r < 0 && incomplete) ? back : 0;
    }
  }
  return 0;
}

std::string to_valid_utf8(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    bool incomplete = false;
    const int r = scan(bytes, i, &incomplete);
    if (r > 0) {
      out.append(bytes, i, size_t(r));
      i += size_t(r);
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      i += size_t(-r);
    }
  }
  return out;
}

std::string Utf8Stream::push(const std::string& bytes) {
  pending_ += bytes;
  const size_t hold = incomplete_utf8_tail(pending_);
  std::string out = to_valid_utf8(pending_.substr(0, pending_.size() - hold));
  pending_ = pending_.substr(pending_.size() - hold);
  return out;
}

std::string Utf8Stream::flush() {
  std::string out = to_valid_utf8(pending_);
  pending_.clear();
  return out;
}

namespace {

// A byte as an OpenAI token string: ASCII as itself, other bytes as "bytes:\xNN" (OpenAI's form for tokens
// that are not whole characters).
std::string byte_token(uint8_t b) {
  if (b < 0x80) return std::string(1, char(b));
  static const char* hex = "0123456789abcdef";
  return std::string("bytes:\\x") + hex[b >> 4] + hex[b & 15];
}

// OpenAI's completions `logprobs` object for the piece's bytes: tokens, token_logprobs (natural log),
// top_logprobs (the N likeliest bytes per position) and text_offset (byte offsets in the completion).
json logprobs_json(const Piece& piece) {
  json tokens = json::array(), logps = json::array(), tops = json::array(), offsets = json::array();
  for (size_t i = 0; i < piece.bytes.size(); ++i) {
    const uint8_t b = uint8_t(piece.bytes[i]);
    tokens.push_back(byte_token(b));
    const float bits = i < piece.bits.size() ? piece.bits[i] : NAN;
    logps.push_back(std::isfinite(bits) ? json(-double(bits) * std::log(2.0)) : json(nullptr));
    json top = json::object();
    if (i < piece.top.size())
      for (const auto& [alt, lp] : piece.top[i]) top[byte_token(alt)] = lp;
    tops.push_back(top);
    offsets.push_back(piece.offset + int64_t(i));
  }
  return json{{"tokens", tokens}, {"token_logprobs", logps}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

}  // namespace

json choice_json(const std::string& text, const Piece& piece, const CompletionRequest& req, const char* finish_reason) {
  json c{{"index", 0},
         {"text", text},
         {"logprobs", req.logprobs >= 0 ? logprobs_json(piece) : json(nullptr)},
         {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)}};
  if (req.return_bytes) {
    std::vector<int> b(piece.bytes.begin(), piece.bytes.end());
    for (auto& x : b) x &= 0xff;
    c["bytes"] = b;
  }
  if (req.return_bits) c["bits"] = piece.bits;
  return c;
}

json usage_json(int64_t prompt_bytes, int64_t completion_bytes) {
  return json{{"prompt_tokens", prompt_bytes},
              {"completion_tokens", completion_bytes},
              {"total_tokens", prompt_bytes + completion_bytes}};
}

json completion_json(const CompletionIds& ids, json choices) {
  return json{{"id", ids.id},
              {"object", "text_completion"},
              {"created", ids.created},
              {"model", ids.model},
              {"choices", std::move(choices)}};
}

std::string sse_event(const json& j) {
  // Text fields are already valid UTF-8; replace guards against any slip rather than throwing mid-stream.
  return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

}  // namespace bytelm::serve
