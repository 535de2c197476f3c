// server.cpp — HTTP routes and the server's life of `bytelm serve` (see server.h). The only file that
// includes cpp-httplib (slow to compile). HTTP threads parse, validate, queue and relay bytes; the
// scheduler's thread owns the model (scheduler.h).
#include "serve/server.h"

#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <thread>

#include "model/decode_weights.h"
#include "serve/api.h"
#include "serve/metrics.h"
#include "serve/model_host.h"
#include "serve/scheduler.h"
#include "serve_page.h"  // kServePage: src/serve/page.html, embedded at build time
#include "util/error.h"

namespace bytelm::serve {

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

std::atomic<bool> g_signalled{false};
extern "C" void on_signal(int) { g_signalled = true; }  // async-signal-safe: a flag the main thread polls

enum class State { Loading, Ready, Draining };

struct Server {
  ServerOptions opt;
  httplib::Server http;
  Metrics metrics;
  std::atomic<State> state{State::Loading};
  ServedModel model;
  std::string model_name;
  std::unique_ptr<Scheduler> scheduler;
  std::atomic<int64_t> open_streams{0};

  void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    res.set_content(e.body().dump(), "application/json");
    if (e.status == 503) res.set_header("Retry-After", "1");
    if (e.status == 401) res.set_header("WWW-Authenticate", "Bearer");
  }

  ApiError unavailable() const {
    ApiError e;
    e.status = 503;
    e.type = "unavailable_error";
    e.message = state == State::Loading ? "Loading model" : "the server is shutting down";
    return e;
  }

  // Throws ApiError 401 unless the request carries one of the keys (when keys are set).
  void check_key(const httplib::Request& req) const {
    if (opt.api_keys.empty()) return;
    const std::string auth = req.get_header_value("Authorization");
    for (const auto& k : opt.api_keys)
      if (auth == "Bearer " + k) return;
    ApiError e;
    e.status = 401;
    e.type = "authentication_error";
    e.message = auth.empty() ? "missing API key: send 'Authorization: Bearer <key>'" : "invalid API key";
    throw e;
  }

  void check_ready() const {
    if (state != State::Ready) throw unavailable();
  }

  void check_body(const httplib::Request& req) const {
    if (int64_t(req.body.size()) > opt.max_body_bytes) {
      ApiError e;
      e.status = 413;
      e.message = "the request body is larger than " + std::to_string(opt.max_body_bytes) + " bytes";
      throw e;
    }
  }

  // Runs a route's body; ApiError becomes the OpenAI error object, anything else a 500.
  void guarded(httplib::Response& res, const std::function<void()>& body) {
    try {
      body();
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const std::exception& e) {
      ApiError err;
      err.status = 500;
      err.type = "server_error";
      err.message = e.what();
      send_error(res, err);
    }
  }

  CompletionIds new_ids() const {
    static std::atomic<uint64_t> counter{0};
    static const uint64_t salt = std::random_device{}();
    char buf[40];
    std::snprintf(buf, sizeof buf, "cmpl-%08llx%08llx", (unsigned long long)salt & 0xffffffffull,
                  (unsigned long long)++counter);
    return {buf, int64_t(std::time(nullptr)), model_name};
  }

  json choice(const std::string& text, const Piece& p, const CompletionRequest& req, const char* finish) const {
    // `bytes` is added whenever `text` is not exactly the piece's bytes, so output is never lost.
    CompletionRequest r = req;
    r.return_bytes = req.return_bytes || text != p.bytes;
    return choice_json(text, p, r, finish);
  }

  void complete(const CompletionRequest& req, httplib::Response& res);
  void stream(const CompletionRequest& req, httplib::Response& res);
  void routes();
};

void Server::complete(const CompletionRequest& req, httplib::Response& res) {
  auto job = scheduler->submit(req);
  Piece all, p;
  for (;;) {
    const bool finished = job->take(p, 100ms);
    all.bytes += p.bytes;
    all.bits.insert(all.bits.end(), p.bits.begin(), p.bits.end());
    if (finished) break;
  }
  if (!job->error().empty()) {
    ApiError e = unavailable();
    e.message = job->error();
    throw e;
  }
  const std::string reason = job->finish_reason();
  json body = completion_json(new_ids(), json::array({choice(to_valid_utf8(all.bytes), all, req, reason.c_str())}));
  body["usage"] = usage_json(int64_t(req.prompt.size()), job->generated());
  res.set_content(body.dump(), "application/json");
}

// Server-sent events: one chunk per batch of new bytes, a last chunk with finish_reason, [DONE]. A client
// that goes away cancels the job at the next poll (<= 50 ms) and frees its row.
void Server::stream(const CompletionRequest& req, httplib::Response& res) {
  struct Stream {
    std::shared_ptr<Job> job;
    Utf8Stream utf8;
    CompletionIds ids;
    bool ended = false;
  };
  auto s = std::make_shared<Stream>();
  s->job = scheduler->submit(req);
  s->ids = new_ids();
  ++open_streams;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("Connection", "close");
  auto provider = [this, s, req](size_t, httplib::DataSink& sink) {
    if (!sink.is_writable()) {
      s->job->cancel();
      return false;
    }
    Piece p;
    const bool finished = s->job->take(p, 50ms);
    std::string out;
    if (!p.bytes.empty()) {
      const std::string text = s->utf8.push(p.bytes);
      out += sse_event(completion_json(s->ids, json::array({choice(text, p, req, nullptr)})));
    }
    if (finished) {
      const std::string reason = s->job->finish_reason(), error = s->job->error();
      const std::string tail = s->utf8.flush();
      out += sse_event(completion_json(s->ids, json::array({choice(tail, Piece{}, req, reason.c_str())})));
      if (!error.empty()) {
        ApiError e = unavailable();
        e.message = error;
        out += sse_event(e.body());
      }
      if (req.include_usage) {
        json u = completion_json(s->ids, json::array());
        u["usage"] = usage_json(int64_t(req.prompt.size()), s->job->generated());
        out += sse_event(u);
      }
      out += "data: [DONE]\n\n";
    }
    if (!out.empty() && !sink.write(out.data(), out.size())) {
      s->job->cancel();
      return false;
    }
    if (finished) {
      s->ended = true;
      sink.done();
    }
    return true;
  };
  res.set_chunked_content_provider("text/event-stream", provider, [this, s](bool success) {
    if (!success || !s->ended) s->job->cancel();
    --open_streams;
  });
}

void Server::routes() {
  if (!opt.cors_origin.empty()) {
    // Cross-origin browser clients: every response names the allowed origin, and preflight requests
    // (OPTIONS, sent without credentials) are answered on every path without the API key.
    http.set_default_headers({{"Access-Control-Allow-Origin", opt.cors_origin}, {"Vary", "Origin"}});
    http.Options(".*", [](const httplib::Request&, httplib::Response& res) {
      res.status = 204;
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.set_header("Access-Control-Max-Age", "600");
    });
  }
  http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kServePage, "text/html; charset=utf-8");
  });
  auto health = [this](const httplib::Request&, httplib::Response& res) {
    if (state == State::Ready)
      res.set_content(R"({"status":"ok"})", "application/json");
    else
      send_error(res, unavailable());
  };
  http.Get("/health", health);
  http.Get("/v1/health", health);
  http.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      check_key(req);
      check_ready();
      json m{{"id", model_name},           {"object", "model"},    {"created", 0},
             {"owned_by", "bytelm"},       {"kind", model.kind},   {"context", model.context},
             {"parameters", model.params}, {"slots", opt.parallel}};
      res.set_content(json{{"object", "list"}, {"data", json::array({m})}}.dump(), "application/json");
    });
  });
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      check_key(req);
      check_body(req);
      check_ready();
      const CompletionRequest r = parse_completion(req.body, model.context);
      if (r.stream)
        stream(r, res);
      else
        complete(r, res);
    });
  });
  http.Post("/v1/score", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      check_key(req);
      check_body(req);
      check_ready();
      const std::string bytes = parse_score(req.body, model.context);
      json out;
      scheduler->run_on_engine([&] { out = score(model, bytes, opt.device); });
      res.set_content(out.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
    });
  });
  http.Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, [&] {
      check_key(req);
      const int64_t busy = scheduler ? scheduler->busy() : 0, queued = scheduler ? scheduler->queued() : 0;
      res.set_content(metrics.render(busy, queued, opt.parallel), "text/plain; version=0.0.4");
    });
  });
  // Known paths with the wrong method: 405 with Allow (cpp-httplib alone answers 404).
  auto wrong_method = [this](const char* allow) {
    return [this, allow](const httplib::Request& req, httplib::Response& res) {
      ApiError e;
      e.status = 405;
      e.message = req.method + " is not allowed on " + req.path + " (allowed: " + allow + ")";
      send_error(res, e);
      res.set_header("Allow", allow);
    };
  };
  for (const char* path : {"/v1/completions", "/v1/score"}) {
    http.Get(path, wrong_method("POST"));
    http.Put(path, wrong_method("POST"));
    http.Delete(path, wrong_method("POST"));
  }
  for (const char* path : {"/", "/health", "/v1/health", "/v1/models", "/metrics"}) {
    http.Post(path, wrong_method("GET"));
    http.Put(path, wrong_method("GET"));
    http.Delete(path, wrong_method("GET"));
  }
  // Statuses cpp-httplib sets itself (404 unknown path, 413 body too large, 400 malformed request): the
  // OpenAI error object, unless a route already wrote one.
  http.set_error_handler(
      httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        ApiError e;
        e.status = res.status;
        if (res.status == 404) {
          e.type = "not_found_error";
          e.message = "no route " + req.method + " " + req.path;
        } else if (res.status == 413) {
          e.message = "the request body is larger than " + std::to_string(opt.max_body_bytes) + " bytes";
        } else {
          e.type = res.status >= 500 ? "server_error" : "invalid_request_error";
          e.message = "HTTP " + std::to_string(res.status);
        }
        res.set_content(e.body().dump(), "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    static const char* known[] = {"/",         "/health", "/v1/health", "/v1/models", "/v1/completions",
                                  "/v1/score", "/metrics"};
    std::string route = "other";
    for (const char* k : known)
      if (req.path == k) route = k;
    metrics.request(route, res.status);
  });
}

}  // namespace

int run_server(const ServerOptions& opt) {
  if (opt.parallel < 1) throw Error("--parallel must be >= 1");
  check_decode_weights(opt.decode_weights, opt.device, opt.precision);
  if (opt.max_queue < 0) throw Error("--max-queue must be >= 0");
  if (opt.port < 0 || opt.port > 65535) throw Error("--port must be in [0, 65535]");
  if (opt.max_body_bytes < 1) throw Error("--max-body must be >= 1");
  if (!(opt.shutdown_timeout >= 0)) throw Error("--shutdown-timeout must be >= 0");
  for (const auto& k : opt.api_keys)
    if (k.empty()) throw Error("--api-key must not be empty");
  if (opt.cors_origin.find_first_of("\r\n ") != std::string::npos)
    throw Error("--cors-origin must be one origin (e.g. https://example.org) or *");
  signal(SIGPIPE, SIG_IGN);  // a client that closes mid-write must not kill the server
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);

  Server s;
  s.opt = opt;
  const std::string name = opt.ckpt.substr(0, opt.ckpt.find_last_not_of('/') + 1);
  s.model_name = name.substr(name.find_last_of('/') + 1);
  // A connection holds a pool thread for its whole life: room for every row, the queue, and a few more so
  // /health and /metrics answer while all rows stream.
  const size_t pool = size_t(opt.parallel + opt.max_queue + 8);
  s.http.new_task_queue = [pool] { return new httplib::ThreadPool(pool); };
  s.http.set_payload_max_length(size_t(opt.max_body_bytes));
  s.http.set_keep_alive_max_count(100);
  s.routes();
  const int port =
      opt.port == 0 ? s.http.bind_to_any_port(opt.host) : (s.http.bind_to_port(opt.host, opt.port) ? opt.port : -1);
  if (port < 0) throw Error("cannot listen on " + opt.host + ":" + std::to_string(opt.port));
  std::thread listener([&] { s.http.listen_after_bind(); });
  std::printf("bytelm serve: listening on http://%s:%d\n", opt.host.c_str(), port);
  std::fflush(stdout);

  // Test hook: a slow load, so the tests can see /health answer 503 while loading.
  if (const char* delay = std::getenv("BYTELM_SERVE_TEST_LOAD_DELAY_MS"))
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(delay)));
  try {
    s.model = open_model(opt.ckpt, opt.device, opt.threads);
  } catch (...) {
    s.http.stop();
    listener.join();
    throw;
  }
  SchedulerOptions so;
  static_cast<InferenceSettings&>(so) = opt;
  so.parallel = opt.parallel;
  so.max_queue = opt.max_queue;
  s.scheduler = std::make_unique<Scheduler>(s.model.model, s.model.tokenizer, so, s.metrics);
  s.state = State::Ready;
  std::printf("bytelm serve: %s (%s, context %lld bytes, %lld rows) ready\n", s.model_name.c_str(),
              s.model.kind.c_str(), (long long)s.model.context, (long long)opt.parallel);
  std::fflush(stdout);

  while (!g_signalled) std::this_thread::sleep_for(50ms);
  // Shutdown: refuse new work, let running and queued requests finish up to the deadline, cancel the rest
  // (their streams end with an error event and [DONE]), wait for the streams to flush, stop.
  s.state = State::Draining;
  s.scheduler->drain();
  std::printf("bytelm serve: shutting down\n");
  std::fflush(stdout);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(opt.shutdown_timeout);
  while (!s.scheduler->idle() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  s.scheduler->cancel_all("the server is shutting down");
  const auto flush_deadline = std::chrono::steady_clock::now() + 2s;
  while (s.open_streams > 0 && std::chrono::steady_clock::now() < flush_deadline) std::this_thread::sleep_for(10ms);
  s.http.stop();
  listener.join();
  s.scheduler.reset();
  std::printf("bytelm serve: stopped\n");
  std::fflush(stdout);
  return 0;
}

}  // namespace bytelm::serve
