// test_serve_fuzz.cpp — a few hundred seeded mutations of valid requests to `bytelm serve` (byte flips,
// truncations, insertions, duplicated header lines, stray separators): each gets a 2xx/4xx answer or a
// closed connection, never a 5xx, and the server answers normally afterwards. Deterministic: fixed seed.
#include <random>

#include "common/fuzz_cases.h"
#include "serve/serve_harness.h"

using namespace bytelm_test;
using json = nlohmann::json;

namespace {

std::string request(const std::string& method, const std::string& path, const std::string& body = "",
                    const std::vector<std::string>& headers = {}) {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  for (const auto& h : headers) r += h + "\r\n";
  if (!body.empty() || method == "POST") r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  return r + "\r\n" + body;
}

}  // namespace

// Seeded mutations of valid requests: byte flips, truncations, insertions, duplicated header lines. Each gets
// a 2xx/4xx response or a closed connection; the server answers normally afterwards.
TEST_F(Serve, MutatedRequestsGetAnAnswerOrAClosedConnection) {
  auto s = start({"--parallel", "2", "--request-timeout", "2", "--max-body", "2048"});
  const std::string comp = R"({"prompt": "call", "max_tokens": 3, "seed": 1})";
  const std::vector<std::string> seeds{
      request("GET", "/health"),
      request("GET", "/v1/models"),
      request("GET", "/metrics", "", {"Accept: text/plain"}),
      request("POST", "/v1/completions", comp, {"Content-Type: application/json"}),
      request("POST", "/v1/completions", R"({"prompt": [1, 2, 255], "max_tokens": 2, "stream": true})"),
      request("POST", "/v1/score", R"({"text": "call me"})"),
      "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n" +
          std::string("2f\r\n") + R"({"prompt": "call me", "max_tokens": 2, "n": 1})" + "\r\n0\r\n\r\n",
      request("OPTIONS", "/v1/completions", "", {"Origin: http://127.0.0.1"})};
  std::mt19937 rng(20261203);
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  std::vector<std::string> cases;
  for (int i = 0; i < bytelm::testing::fuzz_cases(300); ++i) {
    std::string r = seeds[pick(seeds.size())];
    const int edits = 1 + int(pick(3));
    for (int e = 0; e < edits && !r.empty(); ++e) {
      switch (pick(5)) {
        case 0:  // flip a byte
          r[pick(r.size())] ^= char(1 << pick(8));
          break;
        case 1:  // truncate
          r.resize(pick(r.size()));
          break;
        case 2:  // insert random bytes
          r.insert(pick(r.size()), std::string(1 + pick(8), char(pick(256))));
          break;
        case 3: {  // duplicate a header line
          const size_t a = r.find("\r\n"), b = a == std::string::npos ? a : r.find("\r\n", a + 2);
          if (b != std::string::npos) r.insert(b, r.substr(a, b - a));
          break;
        }
        default:  // insert a line break or a separator
          r.insert(pick(r.size()), pick(2) ? "\r\n" : ":");
      }
    }
    cases.push_back(r);
  }
  std::atomic<int> answered{0}, closed{0}, bad{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t)
    clients.emplace_back([&, t] {
      for (size_t i = size_t(t); i < cases.size(); i += 6) {
        auto r = raw_http(s->port, cases[i], 15000, true);
        if (r.status == 0) {
          ++closed;
        } else if ((r.status >= 200 && r.status < 300) || (r.status >= 400 && r.status < 500)) {
          ++answered;
        } else {
          ++bad;
          ADD_FAILURE() << "status " << r.status << " for "
                        << json(cases[i]).dump(-1, ' ', true, json::error_handler_t::replace);
        }
      }
    });
  for (auto& c : clients) c.join();
  std::printf("mutated requests: %d answered, %d closed without an answer\n", answered.load(), closed.load());
  EXPECT_EQ(bad, 0);
  EXPECT_GT(answered, 150);                         // most mutations still parse far enough for an answer
  EXPECT_EQ(waitpid(s->pid, nullptr, WNOHANG), 0);  // still running
  EXPECT_EQ(http(s->port, "GET", "/health").status, 200);
  EXPECT_EQ(http(s->port, "POST", "/v1/completions", comp).status, 200);
  EXPECT_EQ(s->terminate(), 0);
}
