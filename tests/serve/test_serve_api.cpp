// test_serve_api.cpp — the server's wire format without a server: UTF-8 hold-back in streams (a character
// split across pieces is never broken, invalid bytes become U+FFFD, the deltas add up to the whole), request
// validation naming the field (max_tokens up to 2^63 - 1 without overflow), the shapes of errors, choices and
// SSE events, and the request checks of guard.h (Host, Origin, constant-time keys, Content-Length).
#include <gtest/gtest.h>

#include "serve/api.h"
#include "serve/guard.h"
#include "serve/metrics.h"

using namespace bytelm::serve;
using json = nlohmann::json;

TEST(Utf8Stream, HoldsBackSplitCharactersAndReplacesInvalidBytes) {
  const std::string e_acute = "\xC3\xA9", euro = "\xE2\x82\xAC", emoji = "\xF0\x9F\x98\x80";
  // Every split of a valid text into two pieces gives the text back, each piece valid UTF-8.
  const std::string text = "a" + e_acute + euro + "b" + emoji;
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    Utf8Stream s;
    std::string first = s.push(text.substr(0, cut)), second = s.push(text.substr(cut)), end = s.flush();
    EXPECT_EQ(first + second + end, text) << cut;
    EXPECT_EQ(to_valid_utf8(first), first) << cut;
  }
  // Byte by byte, too.
  Utf8Stream s;
  std::string all;
  for (char c : text) all += s.push(std::string(1, c));
  EXPECT_EQ(all + s.flush(), text);
  // Invalid: a lone continuation byte, 0xFF, a truncated sequence followed by ASCII, overlong and surrogate.
  EXPECT_EQ(to_valid_utf8("a\x80z"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(to_valid_utf8("\xFF"), "\xEF\xBF\xBD");
  EXPECT_EQ(to_valid_utf8("\xE2\x82z"), "\xEF\xBF\xBDz");
  EXPECT_EQ(to_valid_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  Utf8Stream t;
  EXPECT_EQ(t.push("x\xE2\x82"), "x");      // held back: may still complete
  EXPECT_EQ(t.push("z"), "\xEF\xBF\xBDz");  // proved invalid by the next byte
  EXPECT_EQ(t.push("\xF0\x9F"), "");
  EXPECT_EQ(t.flush(), "\xEF\xBF\xBD");  // the stream ended inside a character
  EXPECT_EQ(incomplete_utf8_tail("ab\xF0\x9F\x98"), 3u);
  EXPECT_EQ(incomplete_utf8_tail("ab\xF0\x9F\x98\x80"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("\x80\x80"), 0u);
}

TEST(ParseCompletion, DefaultsBytesAndFieldNames) {
  CompletionRequest r = parse_completion(R"({"prompt": "hi"})", 64);
  EXPECT_EQ(r.prompt, "hi");
  EXPECT_EQ(r.max_bytes, 16);
  EXPECT_EQ(r.sampling.temperature, 1.0);
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.has_seed);
  r = parse_completion(R"({"prompt": [0, 255, 128], "max_tokens": 5, "stop": "x", "seed": 18446744073709551615,
                          "stream": true, "stream_options": {"include_usage": true}, "top_k": 3, "top_p": 0.5,
                          "model": "anything", "user": "extra fields are ignored"})",
                       64);
  EXPECT_EQ(r.prompt, std::string("\x00\xff\x80", 3));
  EXPECT_EQ(r.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(r.seed, 18446744073709551615ull);
  EXPECT_TRUE(r.stream && r.include_usage);
  EXPECT_EQ(r.sampling.top_k, 3);
  EXPECT_EQ(parse_completion(R"({"prompt": ["one string"]})", 64).prompt, "one string");
  auto param_of = [](const std::string& body) {
    try {
      parse_completion(body, 64);
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      return e.param.empty() ? std::string("(none)") : e.param;
    }
    return std::string("(accepted)");
  };
  EXPECT_EQ(param_of(R"({"prompt": "a", "max_tokens": 63})"), "max_tokens");  // 1 + 63 > 63 bytes of context
  EXPECT_EQ(param_of(R"({"prompt": "a", "max_tokens": 62})"), "(accepted)");
  EXPECT_EQ(param_of(json{{"prompt", std::string(64, 'a')}}.dump()), "prompt");
  EXPECT_EQ(param_of(R"({"prompt": ["a", "b"]})"), "prompt");
  EXPECT_EQ(param_of(R"({"prompt": "a", "temperature": 2.5})"), "temperature");
  EXPECT_EQ(param_of(R"({"prompt": "a", "top_k": -1})"), "top_k");
  EXPECT_EQ(param_of(R"({"prompt": "a", "min_p": 2})"), "min_p");
  EXPECT_EQ(param_of("not json"), "(none)");
}

TEST(Wire, ErrorChoiceAndEventShapes) {
  ApiError e = bad_request("nope", "top_p");
  EXPECT_EQ(e.body().dump(),
            R"({"error":{"code":null,"message":"nope","param":"top_p","type":"invalid_request_error"}})");
  CompletionRequest r;
  r.return_bytes = r.return_bits = true;
  Piece p{"a\xFF", {1.5f, 7.0f}};
  json c = choice_json(to_valid_utf8(p.bytes), p, r, nullptr);
  EXPECT_EQ(c["bytes"], json::array({97, 255}));
  EXPECT_EQ(c["bits"].size(), 2u);
  EXPECT_TRUE(c["finish_reason"].is_null());
  const std::string ev = sse_event(completion_json({"cmpl-1", 5, "m"}, json::array({c})));
  EXPECT_EQ(ev.rfind("data: {", 0), 0u);
  EXPECT_EQ(ev.substr(ev.size() - 2), "\n\n");
  EXPECT_EQ(ev.find('\n'), ev.size() - 2);  // one line of JSON
  EXPECT_EQ(json::parse(ev.substr(6))["choices"][0]["text"], "a\xEF\xBF\xBD");
  EXPECT_EQ(usage_json(3, 4)["total_tokens"], 7);
}

TEST(Metrics, PrometheusText) {
  Metrics m;
  m.request("/v1/completions", 200);
  m.request("/v1/completions", 200);
  m.request("/health", 503);
  m.generated(10);
  m.first_byte(0.03);
  m.first_byte(20);
  m.decode_step(3);
  const std::string t = m.render(2, 1, 4);
  EXPECT_NE(t.find("bytelm_requests_total{route=\"/v1/completions\",code=\"200\"} 2\n"), std::string::npos) << t;
  EXPECT_NE(t.find("bytelm_requests_total{route=\"/health\",code=\"503\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("bytelm_requests_processing 2\n"), std::string::npos);
  EXPECT_NE(t.find("bytelm_requests_queued 1\n"), std::string::npos);
  EXPECT_NE(t.find("bytelm_generated_bytes_total 10\n"), std::string::npos);
  EXPECT_NE(t.find("bytelm_generated_bytes_per_second 1\n"), std::string::npos);  // 10 bytes / 10 s window
  EXPECT_NE(t.find("bytelm_time_to_first_byte_seconds_bucket{le=\"0.025\"} 0\n"), std::string::npos);
  EXPECT_NE(t.find("bytelm_time_to_first_byte_seconds_bucket{le=\"0.05\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("bytelm_time_to_first_byte_seconds_bucket{le=\"10\"} 1\n"), std::string::npos);
  EXPECT_NE(t.find("bytelm_time_to_first_byte_seconds_bucket{le=\"+Inf\"} 2\n"), std::string::npos);
  EXPECT_NE(t.find("bytelm_time_to_first_byte_seconds_count 2\n"), std::string::npos);
  EXPECT_NE(t.find("# TYPE bytelm_time_to_first_byte_seconds histogram\n"), std::string::npos);
}

TEST(Guard, HostOriginKeysAndContentLength) {
  const std::vector<std::string> none, mine{"MyHost.example"};
  for (const char* h :
       {"", "127.0.0.1", "127.0.0.1:8080", "localhost", "LOCALHOST:1", "[::1]", "[::1]:8080", "10.1.2.3"})
    EXPECT_TRUE(host_allowed(h, "127.0.0.1", none)) << h;
  for (const char* h : {"evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil", ":80", "[::1"})
    EXPECT_FALSE(host_allowed(h, "127.0.0.1", none)) << h;
  EXPECT_TRUE(host_allowed("myhost.example:9", "0.0.0.0", mine));
  EXPECT_TRUE(host_allowed("box", "box", none));  // the listen host itself
  EXPECT_TRUE(host_allowed("[fe80::1]:80", "fe80::1", none));
  EXPECT_TRUE(host_allowed("anything", "127.0.0.1", {"*"}));
  EXPECT_EQ(host_name("[::1]:8080"), "[::1]");
  EXPECT_EQ(host_name("A.b:1"), "a.b");

  EXPECT_TRUE(origin_allowed("", "127.0.0.1:8080", ""));
  EXPECT_TRUE(origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080", ""));
  EXPECT_FALSE(origin_allowed("https://evil.example", "127.0.0.1:8080", ""));
  EXPECT_FALSE(origin_allowed("null", "127.0.0.1:8080", ""));
  EXPECT_FALSE(origin_allowed("http://127.0.0.1:8081", "127.0.0.1:8080", ""));
  EXPECT_TRUE(origin_allowed("https://app.example", "127.0.0.1:8080", "https://app.example"));
  EXPECT_TRUE(origin_allowed("https://evil.example", "127.0.0.1:8080", "*"));

  EXPECT_TRUE(equal_constant_time("sekret", "sekret"));
  EXPECT_FALSE(equal_constant_time("sekret", "sekreT"));
  EXPECT_FALSE(equal_constant_time("sekret", "sekret2"));
  EXPECT_FALSE(equal_constant_time("", "x"));
  EXPECT_TRUE(equal_constant_time("", ""));
  EXPECT_TRUE(bearer_matches("Bearer k2", {"k1", "k2"}));
  EXPECT_TRUE(bearer_matches("bearer k1", {"k1", "k2"}));
  EXPECT_FALSE(bearer_matches("Bearer k3", {"k1", "k2"}));
  EXPECT_FALSE(bearer_matches("k1", {"k1"}));
  EXPECT_FALSE(bearer_matches("Basic k1", {"k1"}));

  EXPECT_EQ(parse_content_length("0"), 0);
  EXPECT_EQ(parse_content_length("1048576"), 1048576);
  for (const char* v : {"", "-1", "+5", "1 2", "0x10", "99999999999999999999", "1e3"})
    EXPECT_EQ(parse_content_length(v), -1) << v;
}

TEST(Validation, HugeIntegersAreRefusedNamingTheField) {
  for (const char* v : {"9223372036854775807", "9223372036854775806", "4611686018427387904"}) {
    try {
      parse_completion(std::string(R"({"prompt": "abc", "max_tokens": )") + v + "}", 1024);
      ADD_FAILURE() << v << " accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
      EXPECT_EQ(e.param, "max_tokens") << v;
    }
  }
  EXPECT_EQ(parse_completion(R"({"prompt": "abc", "max_tokens": 1020})", 1024).max_bytes, 1020);
  for (const char* body :
       {R"({"prompt": "a", "n": 9223372036854775807})", R"({"prompt": "a", "n": -9223372036854775808})",
        R"({"prompt": "a", "top_k": 9223372036854775807})"}) {
    try {
      parse_completion(body, 1024);
      ADD_FAILURE() << body << " accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400) << body;
      EXPECT_FALSE(e.param.empty()) << body;
    }
  }
  // An error naming invalid UTF-8 (from a path or header) still serialises.
  ApiError e;
  e.message = "no route GET /\xff";
  EXPECT_NE(e.dump().find("\"message\""), std::string::npos);
}
