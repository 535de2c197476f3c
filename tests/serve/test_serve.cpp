// test_serve.cpp — `bytelm serve` over loopback: health and models, stream == non-stream for a fixed seed
// (bytes exact, also when not UTF-8), 4 concurrent streams == their solo outputs, stop strings, per-byte
// bits of a stream == /v1/score of the same text (cached decoding vs full forward), a client that hangs
// up frees its row, every error status with the OpenAI error object, bad bodies never crash it, /metrics,
// and SIGTERM (stream ends with an error event and [DONE], exit 0).
#include <cmath>
#include <future>
#include <random>

#include "serve/serve_harness.h"

using namespace bytelm_test;
using json = nlohmann::json;

namespace {

std::string completion(const std::string& prompt, int max_tokens, uint64_t seed, bool stream, json extra = {}) {
  json j{{"prompt", prompt}, {"max_tokens", max_tokens}, {"seed", seed}, {"stream", stream}, {"temperature", 1.0}};
  for (auto& [k, v] : extra.items()) j[k] = v;
  return j.dump();
}

// The OpenAI error object with the given status and type.
void expect_error(const HttpResponse& r, int status, const std::string& type, const std::string& what = "") {
  EXPECT_EQ(r.status, status) << what << ": " << r.body;
  auto j = json::parse(r.body, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << what << ": " << r.body;
  ASSERT_TRUE(j.contains("error")) << what << ": " << r.body;
  EXPECT_EQ(j["error"]["type"], type) << what;
  EXPECT_TRUE(j["error"]["message"].is_string()) << what;
  EXPECT_TRUE(j["error"].contains("param") && j["error"].contains("code")) << what;
}

double metric(int port, const std::string& name) {
  const std::string body = http(port, "GET", "/metrics").body;
  size_t at = body.find("\n" + name + " ");
  return at == std::string::npos ? NAN : std::atof(body.c_str() + at + name.size() + 2);
}

}  // namespace

TEST_F(Serve, HealthModelsAndStreamEqualsNonStream) {
  auto s = start({"--parallel", "4"});
  auto h = http(s->port, "GET", "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(json::parse(h.body)["status"], "ok");
  EXPECT_EQ(h.headers.count("access-control-allow-origin"), 0u);  // no CORS unless asked for
  auto m = json::parse(http(s->port, "GET", "/v1/models").body);
  EXPECT_EQ(m["object"], "list");
  EXPECT_EQ(m["data"][0]["id"], "ckpt");
  EXPECT_EQ(m["data"][0]["context"], 1024);
  auto page = http(s->port, "GET", "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("/v1/completions"), std::string::npos);

  // Non-streaming: the OpenAI shape; an untrained model's bytes are rarely UTF-8, so `bytes` carries them.
  auto r = http(s->port, "POST", "/v1/completions", completion("call me", 80, 7, false));
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  const auto& c = j["choices"][0];
  EXPECT_EQ(c["finish_reason"], "length");
  const std::string whole = choice_bytes(c);
  EXPECT_EQ(whole.size(), 80u);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 7);
  EXPECT_EQ(j["usage"]["completion_tokens"], 80);
  EXPECT_EQ(j["usage"]["total_tokens"], 87);

  // Streaming, same seed: the same bytes; text deltas are valid UTF-8 (json::parse would throw) and add up
  // to the whole text; finish_reason only on the last chunk; [DONE] last.
  auto events =
      sse_events(s->port, completion("call me", 80, 7, true, {{"stream_options", {{"include_usage", true}}}}));
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  Streamed st = collect(events);
  EXPECT_TRUE(st.done);
  EXPECT_FALSE(st.error);
  EXPECT_EQ(st.bytes, whole);
  EXPECT_EQ(st.text, c["text"].get<std::string>());
  EXPECT_EQ(st.finish_reason, "length");
  auto usage = json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 80);

  // Prompt as byte values (not UTF-8), max_tokens 0.
  r = http(s->port, "POST", "/v1/completions", R"({"prompt": [255, 0, 200], "max_tokens": 0})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["usage"]["prompt_tokens"], 3);
  EXPECT_EQ(json::parse(r.body)["choices"][0]["text"], "");
  EXPECT_EQ(s->terminate(), 0);
}

TEST_F(Serve, ConcurrentStreamsEqualTheirSoloOutputs) {
  auto s = start({"--parallel", "4"});
  const std::vector<std::string> prompts{"call", "me ishmael", "", "some years ago - never mind how long"};
  std::vector<std::string> solo;
  for (size_t i = 0; i < prompts.size(); ++i) {
    Streamed st = collect(sse_events(s->port, completion(prompts[i], 150, 100 + i, true)));
    ASSERT_TRUE(st.done);
    solo.push_back(st.bytes);
    EXPECT_EQ(st.bytes.size(), 150u);
  }
  const double restarts_before = metric(s->port, "bytelm_batch_restarts_total");
  std::vector<std::future<Streamed>> together;
  for (size_t i = 0; i < prompts.size(); ++i)
    together.push_back(std::async(std::launch::async, [&, i] {
      return collect(sse_events(s->port, completion(prompts[i], 150, 100 + i, true)));
    }));
  for (size_t i = 0; i < prompts.size(); ++i) {
    Streamed st = together[i].get();
    EXPECT_TRUE(st.done);
    EXPECT_EQ(st.bytes, solo[i]) << "stream " << i << " differs when decoded beside the others";
  }
  // They were decoded together (more than one row per step on average), each at its own position: MEGABYTE
  // has row decoding, so nobody's join restarted the batch.
  EXPECT_EQ(metric(s->port, "bytelm_batch_restarts_total"), restarts_before);
  EXPECT_GT(metric(s->port, "bytelm_decode_step_rows_total"), metric(s->port, "bytelm_decode_steps_total"));
  // A prompt that starts with another request's text reuses its cached prefix; its bytes are unchanged.
  const double hits = metric(s->port, "bytelm_prefix_hits_total");
  const std::string longer = prompts[3] + " - having little";
  Streamed reused = collect(sse_events(s->port, completion(longer, 40, 7, true)));
  EXPECT_GE(metric(s->port, "bytelm_prefix_hits_total"), hits + 1);
  EXPECT_GE(metric(s->port, "bytelm_prefix_reused_bytes_total"), double(prompts[3].size() - 4));
  auto fresh = start({"--parallel", "1", "--no-prefix-reuse"});
  EXPECT_EQ(collect(sse_events(fresh->port, completion(longer, 40, 7, true))).bytes, reused.bytes);
  EXPECT_EQ(metric(fresh->port, "bytelm_prefix_hits_total"), 0);
  EXPECT_EQ(fresh->terminate(), 0);
  EXPECT_EQ(s->terminate(), 0);
}

TEST_F(Serve, StopStringsAndBitsMatchScore) {
  auto s = start();
  // Greedy, with the surprisal of each byte: it equals /v1/score's full forward over the same text.
  auto r =
      http(s->port, "POST", "/v1/completions",
           completion("call me ", 40, 1, false, {{"temperature", 0}, {"return_bits", true}, {"return_bytes", true}}));
  ASSERT_EQ(r.status, 200) << r.body;
  auto c = json::parse(r.body)["choices"][0];
  const std::string out = choice_bytes(c);
  ASSERT_EQ(out.size(), 40u);
  std::vector<int> all;
  for (char ch : std::string("call me ") + out) all.push_back(uint8_t(ch));
  auto sc = http(s->port, "POST", "/v1/score", json{{"bytes", all}}.dump());
  ASSERT_EQ(sc.status, 200) << sc.body;
  auto score = json::parse(sc.body);
  ASSERT_EQ(score["bits"].size(), all.size());
  double total = 0;
  for (size_t i = 0; i < 40; ++i) {
    EXPECT_NEAR(c["bits"][i].get<double>(), score["bits"][8 + i].get<double>(), 2e-3) << "byte " << i;
    total += score["bits"][8 + i].get<double>();
  }
  EXPECT_GT(total, 0);
  EXPECT_NEAR(score["bits_per_byte"].get<double>() * double(all.size()), score["total_bits"].get<double>(), 1e-3);

  // A stop string: the text ends before it, finish_reason "stop", streamed and not.
  // The first two ASCII bytes in a row past byte 5 (JSON strings hold UTF-8 only), else one ASCII byte.
  std::string stop;
  for (size_t i = 5; i + 1 < out.size() && stop.empty(); ++i)
    if (uint8_t(out[i]) < 0x80 && uint8_t(out[i + 1]) < 0x80) stop = out.substr(i, 2);
  for (size_t i = 5; i < out.size() && stop.empty(); ++i)
    if (uint8_t(out[i]) < 0x80) stop = out.substr(i, 1);
  ASSERT_FALSE(stop.empty()) << "no ASCII byte in the output to stop at";
  const size_t cut = out.find(stop);
  json extra{{"temperature", 0}, {"stop", json::array({stop, "never-there"})}};
  r = http(s->port, "POST", "/v1/completions", completion("call me ", 40, 1, false, extra));
  c = json::parse(r.body)["choices"][0];
  EXPECT_EQ(choice_bytes(c), out.substr(0, cut));
  EXPECT_EQ(c["finish_reason"], "stop");
  Streamed st = collect(sse_events(s->port, completion("call me ", 40, 1, true, extra)));
  EXPECT_EQ(st.bytes, out.substr(0, cut));
  EXPECT_EQ(st.finish_reason, "stop");
  EXPECT_EQ(s->terminate(), 0);
}

TEST_F(Serve, LogprobsGiveEachByteAndItsLikeliestAlternatives) {
  auto s = start();
  const json extra{{"temperature", 0}, {"logprobs", 3}, {"return_bits", true}, {"return_bytes", true}};
  auto r = http(s->port, "POST", "/v1/completions", completion("call me ", 24, 1, false, extra));
  ASSERT_EQ(r.status, 200) << r.body;
  const auto c = json::parse(r.body)["choices"][0];
  const std::string out = choice_bytes(c);
  const auto& lp = c["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    const double chosen = lp["token_logprobs"][i].get<double>();
    EXPECT_NEAR(chosen, -c["bits"][i].get<double>() * std::log(2.0), 1e-5) << i;
    EXPECT_EQ(lp["text_offset"][i].get<int64_t>(), int64_t(i));
    const auto& top = lp["top_logprobs"][i];
    ASSERT_EQ(top.size(), 3u) << i;
    double best = -1e9, mass = 0;
    for (const auto& [tok, v] : top.items()) {
      best = std::max(best, v.get<double>());
      mass += std::exp(v.get<double>());
    }
    EXPECT_NEAR(chosen, best, 1e-6) << "greedy picks the likeliest byte, " << i;
    EXPECT_LE(mass, 1.0 + 1e-5);
    const uint8_t b = uint8_t(out[i]);
    if (b < 0x80) EXPECT_EQ(lp["tokens"][i], std::string(1, char(b)));
    if (b < 0x80) EXPECT_TRUE(top.contains(std::string(1, char(b)))) << i;
  }
  // Streamed: the chunks' logprobs add up to the same bytes at consecutive offsets.
  json tokens = json::array(), offsets = json::array();
  for (const auto& e : sse_events(s->port, completion("call me ", 24, 1, true, extra))) {
    if (e == "[DONE]") continue;
    const json chunk = json::parse(e);
    for (const auto& ch : chunk["choices"]) {
      if (!ch.contains("logprobs") || ch["logprobs"].is_null()) continue;
      for (const auto& t : ch["logprobs"]["tokens"]) tokens.push_back(t);
      for (const auto& o : ch["logprobs"]["text_offset"]) offsets.push_back(o);
    }
  }
  EXPECT_EQ(tokens, lp["tokens"]);
  EXPECT_EQ(offsets, lp["text_offset"]);
  // Out of range: 400 naming the field.
  r = http(s->port, "POST", "/v1/completions", completion("call me ", 4, 1, false, {{"logprobs", 21}}));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "logprobs") << r.body;
  EXPECT_EQ(s->terminate(), 0);
}

TEST_F(Serve, DisconnectFreesTheRowAndFullQueueGets503) {
  auto s = start({"--parallel", "1", "--max-queue", "0"});
  std::promise<void> first, checked;
  std::thread client([&] {
    sse(s->port, completion("x", 1000, 3, true), [&](const std::string&) {
      first.set_value();
      checked.get_future().wait();  // hang up once the test has seen the 503 below
      return false;
    });
  });
  first.get_future().wait();
  // The only row is busy and nothing may wait: 503 with Retry-After and the error object.
  auto busy = http(s->port, "POST", "/v1/completions", completion("y", 5, 1, false));
  expect_error(busy, 503, "unavailable_error", "queue full");
  EXPECT_FALSE(busy.headers["retry-after"].empty());
  checked.set_value();
  client.join();  // hung up after the first event, long before 1000 bytes
  // The row is freed: /metrics shows it and a new request is served.
  bool freed = false;
  for (int i = 0; i < 200 && !freed; ++i) {
    freed = metric(s->port, "bytelm_requests_processing") == 0;
    if (!freed) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_TRUE(freed);
  EXPECT_LT(metric(s->port, "bytelm_generated_bytes_total"), 1000);
  auto r = http(s->port, "POST", "/v1/completions", completion("y", 5, 1, false));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(s->terminate(), 0);
}

TEST_F(Serve, ErrorsAreOpenAIObjectsAndBadBodiesNeverCrash) {
  auto s = start({"--api-key", "sekret", "--max-body", "2000"});
  const std::vector<std::string> auth{"Authorization: Bearer sekret"};
  auto post = [&](const std::string& body) { return http(s->port, "POST", "/v1/completions", body, auth); };
  // 401: missing or wrong key; /health and the page stay public.
  auto r = http(s->port, "POST", "/v1/completions", completion("a", 2, 1, false));
  expect_error(r, 401, "authentication_error", "no key");
  EXPECT_EQ(r.headers["www-authenticate"], "Bearer");
  expect_error(http(s->port, "POST", "/v1/completions", completion("a", 2, 1, false), {"Authorization: Bearer nope"}),
               401, "authentication_error", "wrong key");
  expect_error(http(s->port, "GET", "/v1/models"), 401, "authentication_error", "models without key");
  EXPECT_EQ(http(s->port, "GET", "/health").status, 200);
  EXPECT_EQ(http(s->port, "GET", "/").status, 200);
  EXPECT_EQ(post(completion("a", 2, 1, false)).status, 200);
  // 400: the prompt does not fit the context, byte values out of range, and many bad bodies.
  r = post(completion(std::string(1023, 'a'), 1, 1, false));
  expect_error(r, 400, "invalid_request_error", "long prompt");
  EXPECT_EQ(json::parse(r.body)["error"]["param"], "max_tokens");
  r = post(json{{"prompt", std::string(2500, 'a')}}.dump());
  expect_error(r, 413, "invalid_request_error", "body over --max-body");
  const std::vector<std::pair<std::string, std::string>> bad{
      {"", ""},
      {"{", ""},
      {"[1,2]", ""},
      {"null", ""},
      {"\"x\"", ""},
      {R"({"prompt": "a", "max_tokens": "9"})", "max_tokens"},
      {R"({"prompt": 5})", "prompt"},
      {R"({"prompt": [256]})", "prompt"},
      {R"({"prompt": [-1]})", "prompt"},
      {R"({"prompt": [1.5]})", "prompt"},
      {R"({"prompt": {"a": 1}})", "prompt"},
      {R"({"max_tokens": 3})", "prompt"},
      {R"({"prompt": "a", "temperature": -1})", "temperature"},
      {R"({"prompt": "a", "temperature": "hot"})", "temperature"},
      {R"({"prompt": "a", "top_p": 0})", "top_p"},
      {R"({"prompt": "a", "top_k": 1e999})", ""},
      {R"({"prompt": "a", "max_tokens": -1})", "max_tokens"},
      {R"({"prompt": "a", "max_tokens": 1e30})", "max_tokens"},
      {R"({"prompt": "a", "max_tokens": 18446744073709551615})", "max_tokens"},
      {R"({"prompt": "a", "stop": 3})", "stop"},
      {R"({"prompt": "a", "stop": ["a","b","c","d","e"]})", "stop"},
      {R"({"prompt": "a", "stop": [""]})", "stop"},
      {R"({"prompt": "a", "stream": "yes"})", "stream"},
      {R"({"prompt": "a", "seed": "1"})", "seed"},
      {R"({"prompt": "a", "n": 2})", "n"},
      {"{\"prompt\": \"\xff\xfe\"}", ""},
      {R"({"prompt": "\ud800"})", ""},
      {std::string("{\"prompt\": \"a\0b\"}", 17), ""}};
  for (const auto& [body, param] : bad) {
    r = post(body);
    expect_error(r, 400, "invalid_request_error", body);
    if (!param.empty() && r.status == 400) {
      EXPECT_EQ(json::parse(r.body)["error"]["param"], param) << body;
    }
  }
  expect_error(http(s->port, "POST", "/v1/score", R"({"text": ""})", auth), 400, "invalid_request_error",
               "empty score");
  expect_error(http(s->port, "POST", "/v1/score", R"({"text": 3})", auth), 400, "invalid_request_error", "score type");
  // 404 and 405 (with Allow), also as error objects.
  expect_error(http(s->port, "GET", "/v2/nothing"), 404, "not_found_error", "unknown path");
  r = http(s->port, "GET", "/v1/completions");
  expect_error(r, 405, "invalid_request_error", "GET completions");
  EXPECT_EQ(r.headers["allow"], "POST");
  // Malformed HTTP on a raw socket: the server answers (or closes) and keeps serving.
  {
    HttpConnection c(s->port, 1000);
    c.send_raw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{");
    HttpResponse raw;
    c.read_head(raw);
  }
  {
    HttpConnection c(s->port, 1000);
    c.send_raw("GARBAGE\r\n\r\n");
    HttpResponse raw;
    c.read_head(raw);
  }
  EXPECT_EQ(http(s->port, "GET", "/health").status, 200);
  EXPECT_EQ(post(completion("a", 2, 1, false)).status, 200);
  // /metrics: Prometheus text with the counters of what happened above.
  auto met = http(s->port, "GET", "/metrics", "", auth);
  EXPECT_EQ(met.status, 200);
  EXPECT_NE(met.headers["content-type"].find("text/plain"), std::string::npos);
  EXPECT_NE(met.body.find("# TYPE bytelm_requests_total counter"), std::string::npos);
  EXPECT_NE(met.body.find("bytelm_requests_total{route=\"/v1/completions\",code=\"401\"} 2"), std::string::npos)
      << met.body;
  EXPECT_NE(met.body.find("bytelm_time_to_first_byte_seconds_bucket{le=\"+Inf\"}"), std::string::npos);
  EXPECT_EQ(s->terminate(), 0);
}

TEST_F(Serve, HealthIs503WhileLoadingAndSigtermEndsStreamsCleanly) {
  // While the model loads (made slow by the test hook), /health answers 503 "Loading model".
  setenv("BYTELM_SERVE_TEST_LOAD_DELAY_MS", "1500", 1);
  auto s = start({"--shutdown-timeout", "0"}, false);
  unsetenv("BYTELM_SERVE_TEST_LOAD_DELAY_MS");
  auto h = http(s->port, "GET", "/health");
  expect_error(h, 503, "unavailable_error", "loading");
  EXPECT_NE(h.body.find("Loading model"), std::string::npos);
  expect_error(http(s->port, "POST", "/v1/completions", completion("a", 2, 1, false)), 503, "unavailable_error",
               "loading");
  for (int i = 0; i < 1200 && http(s->port, "GET", "/health").status != 200; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // SIGTERM mid-stream with --shutdown-timeout 0: the stream is cancelled, ends with an error event and
  // [DONE]; the server exits 0 and stops listening.
  std::vector<std::string> events;
  std::thread client([&] {
    sse(s->port, completion("x", 1000, 3, true), [&](const std::string& e) {
      events.push_back(e);
      if (events.size() == 1) kill(s->pid, SIGTERM);
      return true;
    });
  });
  client.join();
  Streamed st = collect(events);
  EXPECT_TRUE(st.done);
  EXPECT_TRUE(st.error);
  EXPECT_LT(st.bytes.size(), 1000u);
  EXPECT_EQ(st.finish_reason, "cancelled");
  EXPECT_EQ(s->wait_exit(30), 0) << slurp(s->err);
  EXPECT_EQ(http(s->port, "GET", "/health").status, 0);  // nobody listens
  EXPECT_NE(slurp(s->out).find("stopped"), std::string::npos);
}

// --cors-origin: preflight answered without the key, every response (errors too) names the origin.
TEST_F(Serve, CorsOriginAnswersPreflightAndLabelsResponses) {
  const std::string origin = "https://app.example";
  auto s = start({"--cors-origin", origin, "--api-key", "k1"});
  auto pre = http(s->port, "OPTIONS", "/v1/completions", "",
                  {"Origin: " + origin, "Access-Control-Request-Method: POST",
                   "Access-Control-Request-Headers: authorization, content-type"});
  EXPECT_EQ(pre.status, 204);
  EXPECT_EQ(pre.headers["access-control-allow-origin"], origin);
  EXPECT_NE(pre.headers["access-control-allow-methods"].find("POST"), std::string::npos);
  EXPECT_NE(pre.headers["access-control-allow-headers"].find("Authorization"), std::string::npos);
  auto h = http(s->port, "GET", "/health", "", {"Origin: " + origin});
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.headers["access-control-allow-origin"], origin);
  auto denied = http(s->port, "POST", "/v1/completions", completion("a", 4, 1, false), {"Origin: " + origin});
  EXPECT_EQ(denied.status, 401);
  EXPECT_EQ(denied.headers["access-control-allow-origin"], origin);  // the page can read why
  auto ok = http(s->port, "POST", "/v1/completions", completion("a", 4, 1, false),
                 {"Origin: " + origin, "Authorization: Bearer k1"});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.headers["access-control-allow-origin"], origin);
  EXPECT_EQ(s->terminate(), 0);
}

TEST_F(Serve, BadFlagsAndCheckpointsFailOnOneLine) {
  Result r = run({"serve"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--ckpt is required"), std::string::npos);
  r = run({"serve", "--ckpt", dir_ + "/nope", "--port", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.rfind("bytelm: error: ", 0), 0u) << r.err;
  r = run({"serve", "--ckpt", dir_ + "/ckpt", "--parallel", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--parallel"), std::string::npos);
  r = run({"serve", "--ckpt", dir_ + "/ckpt", "--cors-origin", "https://a.example https://b.example"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--cors-origin"), std::string::npos);
  for (const std::vector<std::string> bad : {std::vector<std::string>{"--max-connections", "0"},
                                             {"--request-timeout", "0"},
                                             {"--allowed-host", "a.example:80"}}) {
    std::vector<std::string> args{"serve", "--ckpt", dir_ + "/ckpt"};
    args.insert(args.end(), bad.begin(), bad.end());
    r = run(args);
    EXPECT_EQ(r.code, 2) << bad[0];
    EXPECT_NE(r.err.find(bad[0]), std::string::npos) << r.err;
  }
  r = run({"serve", "--ckpt", dir_ + "/ckpt", "--decode-weights", "int8"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--decode-weights"), std::string::npos);
}

// Any model bytelm trains: a Transformer, a BLT (entropy model + BLT) and an H-Net, 2 steps each, context 64.
// Concurrent streams equal their solo outputs with each; BLT's /v1/score adds entropies and patch starts,
// H-Net's the chunk starts it learned.
TEST_F(Serve, TransformerBltAndHnetBatchLikeSolo) {
  const std::vector<std::string> common{"--data", dir_ + "/corpus", "--steps", "2", "--batch", "2", "--threads",
                                        "1",      "--peak-flops",   "1e11"};
  auto train = [&](std::vector<std::string> args) {
    args.insert(args.end(), common.begin(), common.end());
    Result r = run(args);
    ASSERT_EQ(r.code, 0) << r.err;
  };
  train({"train", "--model", "transformer", "--config", "tiny", "--out", dir_ + "/tf"});
  train({"train", "--model", "entropy", "--config", "tiny", "--out", dir_ + "/ent"});
  train({"train", "--model", "blt", "--config", "tiny", "--entropy-model", dir_ + "/ent", "--out", dir_ + "/blt"});
  train({"train", "--model", "hnet", "--config", "tiny", "--out", dir_ + "/hnet"});
  for (const std::string name : {"tf", "blt", "hnet"}) {
    auto s = start({"--parallel", "3"}, true, dir_ + "/" + name);
    const std::vector<std::string> prompts{"call me", "", "some years ago"};
    std::vector<std::string> solo;
    for (size_t i = 0; i < prompts.size(); ++i) {
      Streamed st = collect(sse_events(s->port, completion(prompts[i], 40, 9 + i, true)));
      EXPECT_TRUE(st.done) << name;
      solo.push_back(st.bytes);
      auto r = http(s->port, "POST", "/v1/completions", completion(prompts[i], 40, 9 + i, false));
      EXPECT_EQ(choice_bytes(json::parse(r.body)["choices"][0]), st.bytes) << name << " stream != non-stream";
    }
    std::vector<std::future<Streamed>> together;
    for (size_t i = 0; i < prompts.size(); ++i)
      together.push_back(std::async(std::launch::async, [&, i] {
        return collect(sse_events(s->port, completion(prompts[i], 40, 9 + i, true)));
      }));
    for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(together[i].get().bytes, solo[i]) << name << " stream " << i;
    auto sc = json::parse(http(s->port, "POST", "/v1/score", R"({"text": "call me ishmael"})").body);
    EXPECT_EQ(sc["bits"].size(), 15u) << name;
    EXPECT_EQ(sc.contains("patch_starts"), name != "tf") << sc.dump();
    if (name != "tf") EXPECT_EQ(sc["patch_starts"][0], 0);  // byte 0 always starts a patch
    if (name == "blt") EXPECT_EQ(sc["entropies"].size(), 15u);
    if (name == "hnet") EXPECT_EQ(sc["patching"], "learned");
    EXPECT_EQ(s->terminate(), 0) << name;
  }
}

// The BPE baseline's requests are batched like the byte models' (over tokens): streams together equal their
// solo outputs, and a stream equals its non-streamed twin.
TEST_F(Serve, BpeRequestsBatchLikeSolo) {
  std::mt19937 rng(11);
  std::vector<std::string> words{"call", "me", "ishmael", "some", "years", "ago"};
  while (words.size() < 300) {  // enough words for the tiny preset's 512 pieces
    std::string w;
    for (uint32_t k = 0, len = 2 + rng() % 7; k < len; ++k) w += char('a' + rng() % 26);
    words.push_back(w);
  }
  std::string text;
  while (text.size() < 60000) text += words[rng() % words.size()] + (rng() % 8 ? " " : ".\n");
  fs::create_directories(dir_ + "/bpe_corpus");
  write(dir_ + "/bpe_corpus/a.txt", text);
  Result r = run({"tokenizer", "train", "--data", dir_ + "/bpe_corpus", "--vocab", "512", "--out", dir_ + "/bpe_tok"});
  if (r.code != 0 && r.err.find("bytelm_spm.so") != std::string::npos) GTEST_SKIP() << "built without SentencePiece";
  ASSERT_EQ(r.code, 0) << r.err;
  r = run({"train", "--model", "bpe", "--config", "tiny", "--tokenizer", dir_ + "/bpe_tok", "--data",
           dir_ + "/bpe_corpus", "--out", dir_ + "/bpe", "--steps", "2", "--batch", "2", "--threads", "1",
           "--peak-flops", "1e11"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto s = start({"--parallel", "3"}, true, dir_ + "/bpe");
  const std::vector<std::string> prompts{"call me", "", "some"};  // + 20 bytes: within the 31 the API allows
  std::vector<std::string> solo;
  for (size_t i = 0; i < prompts.size(); ++i) {
    Streamed st = collect(sse_events(s->port, completion(prompts[i], 20, 9 + i, true)));
    EXPECT_TRUE(st.done) << slurp(s->err);
    EXPECT_EQ(st.bytes.size(), 20u);
    solo.push_back(st.bytes);
    auto res = http(s->port, "POST", "/v1/completions", completion(prompts[i], 20, 9 + i, false));
    EXPECT_EQ(choice_bytes(json::parse(res.body)["choices"][0]), st.bytes) << "stream != non-stream";
  }
  std::vector<std::future<Streamed>> together;
  for (size_t i = 0; i < prompts.size(); ++i)
    together.push_back(std::async(
        std::launch::async, [&, i] { return collect(sse_events(s->port, completion(prompts[i], 20, 9 + i, true))); }));
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(together[i].get().bytes, solo[i]) << "stream " << i;
  EXPECT_EQ(s->terminate(), 0);
}

// serve --draft: requests decoded speculatively give greedy the bytes of plain decoding; a model drafting for
// itself has every drafted byte accepted at temperature 0, which /metrics shows; bad drafts are one line.
TEST_F(Serve, DraftDecodingEqualsPlainGreedyAndCountsAcceptance) {
  const std::string body = completion("call me", 60, 5, false, {{"temperature", 0.0}});
  const std::vector<std::string> prompts{"Ishmael", "some years ago", "x"};  // decoded together below
  auto plain = start();
  const std::string want =
      choice_bytes(json::parse(http(plain->port, "POST", "/v1/completions", body).body)["choices"][0]);
  std::vector<std::string> want_each;
  for (const auto& p : prompts)
    want_each.push_back(choice_bytes(
        json::parse(http(plain->port, "POST", "/v1/completions", completion(p, 40, 1, false, {{"temperature", 0.0}}))
                        .body)["choices"][0]));
  EXPECT_EQ(plain->terminate(), 0);
  EXPECT_EQ(want.size(), 60u);
  auto s = start({"--draft", dir_ + "/ckpt", "--draft-max", "4", "--draft-p-min", "0"});
  EXPECT_EQ(choice_bytes(json::parse(http(s->port, "POST", "/v1/completions", body).body)["choices"][0]), want);
  std::vector<std::string> got(prompts.size());  // concurrent requests: speculative rounds batched
  std::vector<std::thread> clients;
  for (size_t i = 0; i < prompts.size(); ++i)
    clients.emplace_back([&, i] {
      auto res = http(s->port, "POST", "/v1/completions", completion(prompts[i], 40, 1, false, {{"temperature", 0.0}}));
      got[i] = choice_bytes(json::parse(res.body)["choices"][0]);
    });
  for (auto& c : clients) c.join();
  EXPECT_EQ(got, want_each);
  Streamed st = collect(sse_events(s->port, completion("call me", 60, 5, true, {{"temperature", 0.0}})));
  EXPECT_EQ(st.bytes, want);
  // The counts land once a request's decoding returns, just after its last byte went out.
  for (int i = 0; i < 100 && metric(s->port, "bytelm_draft_bytes_total") == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GT(metric(s->port, "bytelm_draft_bytes_total"), 0);
  EXPECT_EQ(metric(s->port, "bytelm_draft_accepted_bytes_total"), metric(s->port, "bytelm_draft_bytes_total"));
  EXPECT_EQ(metric(s->port, "bytelm_draft_acceptance_ratio"), 1.0);
  EXPECT_EQ(s->terminate(), 0);
  Result r = run({"serve", "--ckpt", dir_ + "/ckpt", "--port", "0", "--draft", "self"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--draft self"), std::string::npos) << r.err;
  r = run({"serve", "--ckpt", dir_ + "/ckpt", "--draft", dir_ + "/ckpt", "--draft-max", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--draft-max"), std::string::npos) << r.err;
}

TEST_F(Serve, SigtermLetsRunningStreamsFinish) {
  auto s = start({"--shutdown-timeout", "60"});
  std::vector<std::string> events;
  int health_during_drain = 0, new_request_during_drain = 0;
  std::thread client([&] {
    sse(s->port, completion("x", 1000, 3, true), [&](const std::string& e) {
      events.push_back(e);
      if (events.size() == 1) {
        kill(s->pid, SIGTERM);
        // Draining: /health says 503 and new completions are refused, while this stream goes on.
        for (int i = 0; i < 100 && health_during_drain != 503; ++i) {
          health_during_drain = http(s->port, "GET", "/health").status;
          if (health_during_drain != 503) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        new_request_during_drain = http(s->port, "POST", "/v1/completions", completion("y", 5, 1, false)).status;
      }
      return true;
    });
  });
  client.join();
  EXPECT_EQ(health_during_drain, 503);
  EXPECT_EQ(new_request_during_drain, 503);
  Streamed st = collect(events);
  EXPECT_TRUE(st.done);
  EXPECT_FALSE(st.error);
  EXPECT_EQ(st.bytes.size(), 1000u);  // finished, not cut
  EXPECT_EQ(st.finish_reason, "length");
  EXPECT_EQ(s->wait_exit(30), 0) << slurp(s->err);
}
