// test_serve_hostile.cpp — `bytelm serve` against hostile clients on loopback: malformed paths, methods and
// headers never crash it; bodies over --max-body (chunked, gzip bombs, lying Content-Length) get 413 without
// being buffered (resident memory checked); slow clients neither starve /health nor hold SIGTERM; Host and
// Origin checks; keys never from the URL; an abandoned completion frees its row. (Mutated requests:
// test_serve_fuzz.cpp, same binary.)
#include <zlib.h>

#include <atomic>
#include <fstream>
#include <future>

#include "serve/serve_harness.h"

using namespace bytelm_test;
using json = nlohmann::json;

namespace {

const std::string kKey = "sekret";

// The OpenAI error object with this status.
void expect_error(const HttpResponse& r, int status, const std::string& what) {
  EXPECT_EQ(r.status, status) << what << ": " << r.body;
  auto j = json::parse(r.body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << what << ": " << r.body;
  EXPECT_TRUE(!j.is_discarded() && j.contains("error")) << what << ": " << r.body;
}

std::string request(const std::string& method, const std::string& path, const std::string& body = "",
                    const std::vector<std::string>& headers = {}, const std::string& host = "127.0.0.1") {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n";
  for (const auto& h : headers) r += h + "\r\n";
  if (!body.empty() || method == "POST") r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

int64_t rss_kb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  return -1;
}

double metric(int port, const std::string& name) {
  const std::string body = http(port, "GET", "/metrics", "", {"Authorization: Bearer " + kKey}).body;
  size_t at = body.find("\n" + name + " ");
  return at == std::string::npos ? 0 : std::atof(body.c_str() + at + name.size() + 2);
}

std::string gzip(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = uInt(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

bool alive(pid_t pid) { return waitpid(pid, nullptr, WNOHANG) == 0; }

}  // namespace

TEST_F(Serve, MalformedPathsMethodsAndHeadersNeverCrash) {
  for (const bool keyed : {false, true}) {
    auto s = start(keyed ? std::vector<std::string>{"--api-key", kKey} : std::vector<std::string>{});
    for (const char* path : {"/%ff", "/%00", "/%c3%28", "/v1/%ff%fe/x", "/%", "/%zz", "/\x01"}) {
      auto r = raw_http(s->port, request("GET", path));
      EXPECT_TRUE(r.status == 404 || r.status == 400) << path << ": " << r.status;
      EXPECT_FALSE(json::parse(r.body, nullptr, false).is_discarded()) << path << ": " << r.body;
    }
    expect_error(raw_http(s->port, request("GET", "/" + std::string(9000, 'a'))), 414, "long path");
    auto huge = raw_http(s->port, request("GET", "/" + std::string(70000, 'a')));
    EXPECT_TRUE(huge.status == 431 || huge.status == 0) << huge.status;
    expect_error(raw_http(s->port, "FOO /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"), 400, "bad method");
    expect_error(raw_http(s->port, "GET /health HTTP/7.0\r\nHost: 127.0.0.1\r\n\r\n"), 400, "bad version");
    expect_error(raw_http(s->port, request("GET", "/health", "", {"X-Big: " + std::string(10000, 'b')})), 400,
                 "long header line");
    std::vector<std::string> many;
    for (int i = 0; i < 3000; ++i) many.push_back("X-H" + std::to_string(i) + ": " + std::string(20, 'h'));
    auto m = raw_http(s->port, request("GET", "/health", "", many));
    EXPECT_TRUE(m.status == 431 || m.status == 0) << m.status;
    for (const auto& h : std::vector<std::string>{"Content-Length: -5", "Content-Length: 1x", "Transfer-Encoding: gzip",
                                                  "Content-Length: 2\r\nContent-Length: 2",
                                                  "Content-Length: 2\r\nTransfer-Encoding: chunked"})
      expect_error(raw_http(s->port, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + h + "\r\n\r\n{}"), 400,
                   h);
    expect_error(raw_http(s->port, request("PUT", "/v1/completions")), 405, "PUT");
    expect_error(raw_http(s->port, request("POST", "/health", "{}")), 405, "POST /health with a body");
    expect_error(raw_http(s->port, request("POST", "/v2/x", "{}")), 404, "POST to nowhere with a body");
    const std::vector<std::string> auth{"Authorization: Bearer " + kKey};
    for (const std::string& body :
         std::vector<std::string>{"{", "\xff\xfe", "[]", std::string("{\"prompt\": \"a\0\"}", 15)})
      expect_error(raw_http(s->port, request("POST", "/v1/completions", body, auth)), 400, "bad json");
    auto r = raw_http(
        s->port, request("POST", "/v1/completions", R"({"prompt": "a", "max_tokens": 9223372036854775807})", auth));
    expect_error(r, 400, "max_tokens 2^63-1");
    EXPECT_EQ(json::parse(r.body)["error"]["param"], "max_tokens");
    EXPECT_EQ(http(s->port, "GET", "/health").status, 200);
    EXPECT_TRUE(alive(s->pid));
    EXPECT_EQ(s->terminate(), 0);
  }
}

TEST_F(Serve, BodiesOverTheLimitAreRefusedWhileTheyStream) {
  auto s = start({"--max-body", "4096", "--api-key", kKey});
  const std::vector<std::string> auth{"Authorization: Bearer " + kKey};
  const int64_t before = rss_kb(s->pid);
  // A lying Content-Length: refused at once, nothing read.
  expect_error(raw_http(s->port,
                        "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999999\r\n"
                        "Authorization: Bearer " +
                            kKey + "\r\n\r\n{"),
               413, "huge Content-Length");
  // 64 MB chunked, sent while the server answers: 413 after --max-body bytes, the rest never buffered.
  {
    HttpConnection c(s->port, 20000);
    c.send_raw("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + kKey +
               "\r\nTransfer-Encoding: chunked\r\n\r\n");
    const std::string chunk = "10000\r\n" + std::string(65536, 'a') + "\r\n";
    for (int i = 0; i < 1024 && c.send_raw(chunk); ++i) {
    }
    HttpResponse r;
    if (c.read_head(r)) EXPECT_EQ(r.status, 413);
  }
  // A gzip bomb: 64 MB of zeros in ~64 KB; inflated only up to --max-body.
  const std::string bomb = gzip(std::string(64 << 20, '\0'));
  ASSERT_LT(bomb.size(), 200000u);
  auto r = raw_http(s->port, request("POST", "/v1/completions", bomb, {auth[0], "Content-Encoding: gzip"}));
  expect_error(r, 413, "gzip bomb");
  // A small gzip body is inflated and served.
  r = raw_http(s->port, request("POST", "/v1/completions", gzip(R"({"prompt": "a", "max_tokens": 2})"),
                                {auth[0], "Content-Encoding: gzip"}));
  EXPECT_EQ(r.status, 200) << r.body;
  expect_error(raw_http(s->port, request("POST", "/v1/completions", "{}", {auth[0], "Content-Encoding: zstd"})), 415,
               "zstd");
  // Expect: 100-continue (curl, for bodies over 1 KB): the 100 comes before the body is sent.
  {
    HttpConnection c(s->port, 5000);
    const std::string body = R"({"prompt": "a", "max_tokens": 2})";
    c.send_raw("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + auth[0] +
               "\r\nExpect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
    HttpResponse cont, done;
    ASSERT_TRUE(c.read_head(cont));
    EXPECT_EQ(cont.status, 100);
    c.send_raw(body);
    ASSERT_TRUE(c.read_head(done));
    EXPECT_EQ(done.status, 200);
  }
  const int64_t after = rss_kb(s->pid);
  EXPECT_LT(after - before, 32 * 1024) << "RSS grew from " << before << " kB to " << after << " kB";
  EXPECT_GE(metric(s->port, "bytelm_refused_total{reason=\"body_too_large\"}"), 2);
  EXPECT_EQ(http(s->port, "GET", "/health").status, 200);
  EXPECT_EQ(s->terminate(), 0);
}

TEST_F(Serve, SlowClientsNeitherStarveHealthNorHoldShutdown) {
  auto s = start({"--parallel", "1", "--max-queue", "0", "--request-timeout", "3", "--max-connections", "30",
                  "--shutdown-timeout", "1"});
  // Under the connection cap: a head that stops, and a body sent slowly, get 408 after --request-timeout.
  auto timed_out = [&](const std::string& start, const std::string& more) {
    HttpConnection c(s->port, 100);  // reads wait 100 ms: a byte goes out between tries
    c.send_raw(start);
    HttpResponse r;
    for (int i = 0; i < 200 && !c.read_head(r); ++i) c.send_raw(more);
    return r.status;
  };
  auto slow_head = std::async(std::launch::async, timed_out, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n", "");
  auto slow_body =
      std::async(std::launch::async, timed_out,
                 "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n", "x");
  EXPECT_EQ(slow_head.get(), 408);
  EXPECT_EQ(slow_body.get(), 408);
  EXPECT_EQ(metric(s->port, "bytelm_refused_total{reason=\"request_timeout\"}"), 2);
  // Bodies over 64 KiB that arrive fast, then stall: one worker (of 9, 8 kept free) waits for them, the
  // others get 503 at once; /health is not delayed.
  std::vector<std::future<int>> stalled;
  for (int i = 0; i < 3; ++i)
    stalled.push_back(std::async(
        std::launch::async, timed_out,
        "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 200000\r\n\r\n" + std::string(70000, ' '),
        " "));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(http(s->port, "GET", "/health").status, 200);
  std::map<int, int> statuses;
  for (auto& f : stalled) ++statuses[f.get()];
  EXPECT_EQ(statuses[503], 2);
  EXPECT_EQ(statuses[408], 1);
  EXPECT_EQ(metric(s->port, "bytelm_refused_total{reason=\"slow_bodies\"}"), 2);
  // 40 connections sending a head a byte at a time (more than the workers, and than --max-connections).
  std::atomic<bool> done{false};
  std::vector<std::thread> slow;
  for (int i = 0; i < 40; ++i)
    slow.emplace_back([&] {
      while (!done) {
        HttpConnection c(s->port, 1000);
        const std::string head = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
        for (size_t k = 0; !done && c.send_raw(std::string(1, head[k % head.size()])); ++k)
          std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    });
  std::this_thread::sleep_for(std::chrono::seconds(1));
  for (int i = 0; i < 10; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(http(s->port, "GET", "/health").status, 200) << "try " << i;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_GT(metric(s->port, "bytelm_refused_total{reason=\"evicted\"}"), 0);
  // SIGTERM while they keep coming: the server stops within --shutdown-timeout plus a little.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(s->terminate(30), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  done = true;
  for (auto& t : slow) t.join();
}

TEST_F(Serve, HostOriginAndKeyChecks) {
  auto s = start({"--api-key", kKey, "--allowed-host", "myhost.example"});
  const std::string port = std::to_string(s->port), auth = "Authorization: Bearer " + kKey;
  for (const std::string& host :
       std::vector<std::string>{"evil.example", "evil.example:" + port, "127.0.0.1.evil.example"}) {
    auto r = raw_http(s->port, request("GET", "/health", "", {}, host));
    expect_error(r, 403, host);
  }
  for (const std::string& host :
       std::vector<std::string>{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port, "myhost.example:" + port})
    EXPECT_EQ(raw_http(s->port, request("GET", "/health", "", {}, host)).status, 200) << host;
  const std::string body = R"({"prompt": "a", "max_tokens": 2})";
  auto cross = raw_http(s->port, request("POST", "/v1/completions", body, {auth, "Origin: https://evil.example"}));
  expect_error(cross, 403, "cross-site POST");
  auto same = raw_http(s->port, request("POST", "/v1/completions", body, {auth, "Origin: http://127.0.0.1:" + port},
                                        "127.0.0.1:" + port));
  EXPECT_EQ(same.status, 200) << same.body;
  // The key is never taken from the URL, even next to a good header.
  expect_error(raw_http(s->port, request("GET", "/v1/models?api_key=" + kKey)), 401, "key in URL");
  expect_error(raw_http(s->port, request("GET", "/v1/models?key=" + kKey, "", {auth})), 401, "key in URL + header");
  EXPECT_EQ(raw_http(s->port, request("GET", "/v1/models", "", {auth})).status, 200);
  auto met = http(s->port, "GET", "/metrics", "", {auth}).body;
  for (const char* reason : {"bad_host", "bad_origin", "key_in_url"})
    EXPECT_NE(met.find("bytelm_refused_total{reason=\"" + std::string(reason) + "\"}"), std::string::npos) << reason;
  EXPECT_EQ(s->terminate(), 0);
}

TEST_F(Serve, AbandonedCompletionIsCancelled) {
  auto s = start({"--parallel", "1", "--api-key", kKey});
  {
    HttpConnection c(s->port);
    c.send_request("POST", "/v1/completions", R"({"prompt": "x", "max_tokens": 1000})",
                   {"Authorization: Bearer " + kKey});
    for (int i = 0; i < 400 && metric(s->port, "bytelm_generated_bytes_total") == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }  // hangs up mid-decode
  bool freed = false;
  for (int i = 0; i < 400 && !freed; ++i) {
    freed = metric(s->port, "bytelm_refused_total{reason=\"client_gone\"}") == 1 &&
            metric(s->port, "bytelm_requests_processing") == 0;
    if (!freed) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_TRUE(freed);
  EXPECT_LT(metric(s->port, "bytelm_generated_bytes_total"), 1000);
  EXPECT_EQ(s->terminate(), 0);
}
