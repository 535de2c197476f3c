// server.cpp — responses and the life of `bytelm serve` (see server.h): errors, keys, bodies, completions
// (whole or streamed) and run_server. Routes and the checks before them are in routes.cpp, connections
// in connections.cpp. HTTP threads parse, validate, queue and relay bytes; the scheduler's thread owns the
// model (scheduler.h).
#include "serve/server.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <thread>

#include "model/decode_weights.h"
#include "serve/guard.h"
#include "serve/server_internal.h"
#include "util/error.h"

namespace bytelm::serve {

using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Stops the listener thread. httplib's stop() does nothing until listen_after_bind() is running (the listener
// would then listen forever, e.g. when a checkpoint fails to load right after the bind), so wait for that or
// for the listener to have returned.
void stop_listening(httplib::Server& http, std::thread& listener, const std::atomic<bool>& returned) {
  while (!http.is_running() && !returned) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  http.stop();
  listener.join();
}
std::atomic<bool> g_signalled{false};
extern "C" void on_signal(int) { g_signalled = true; }  // async-signal-safe: a flag the main thread polls
}  // namespace

void Server::send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(e.dump(), "application/json");
  if (e.status == 503) res.set_header("Retry-After", "1");
  if (e.status == 401) res.set_header("WWW-Authenticate", "Bearer");
}

ApiError Server::unavailable() const {
  ApiError e;
  e.status = 503;
  e.type = "unavailable_error";
  e.message = state == State::Loading ? "Loading model" : "the server is shutting down";
  return e;
}

void Server::check_key(const httplib::Request& req) {
  if (opt.api_keys.empty()) return;
  ApiError e;
  e.status = 401;
  e.type = "authentication_error";
  // A key in the URL ends up in logs and histories: refused even next to a good header.
  for (const char* p : {"api_key", "key", "access_token"})
    if (req.has_param(p)) {
      e.message = "the API key goes in the Authorization header, never in the URL";
      metrics.refused("key_in_url");
      throw e;
    }
  const std::string auth = req.get_header_value("Authorization");
  if (bearer_matches(auth, opt.api_keys)) return;
  e.message = auth.empty() ? "missing API key: send 'Authorization: Bearer <key>'" : "invalid API key";
  metrics.refused("unauthorized");
  throw e;
}

void Server::check_ready() const {
  if (state != State::Ready) throw unavailable();
}

void Server::guarded(httplib::Response& res, const std::function<void()>& body) {
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

std::string Server::read_body(const httplib::ContentReader& reader) {
  std::string body;
  bool over = false;
  const bool ok = reader([&](const char* data, size_t n) {
    if (int64_t(body.size() + n) > opt.max_body_bytes) {
      over = true;
      return false;
    }
    body.append(data, n);
    return true;
  });
  if (ok) return body;
  GuardedServer::close_after();  // the rest of the body is still on the wire
  const ReadFailure f = GuardedServer::read_failure();
  ApiError e;
  if (over || f == ReadFailure::TooLarge) {
    e.status = 413;
    e.message = "the request body is larger than " + std::to_string(opt.max_body_bytes) + " bytes";
    if (over) metrics.refused("body_too_large");
  } else if (f == ReadFailure::Timeout) {
    e.status = 408;
    e.message = "the request body did not arrive within the request timeout";
  } else if (f == ReadFailure::Busy) {
    e = unavailable();
    e.message = "too many requests are sending their bodies slowly; retry";
  } else {
    e.message = "the request body could not be read (bad chunked or compressed framing)";
    metrics.refused("bad_body");
  }
  throw e;
}

CompletionIds Server::new_ids() const {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t salt = std::random_device{}();
  char buf[40];
  std::snprintf(buf, sizeof buf, "cmpl-%08llx%08llx", (unsigned long long)salt & 0xffffffffull,
                (unsigned long long)++counter);
  return {buf, int64_t(std::time(nullptr)), model_name};
}

json Server::choice(const std::string& text, const Piece& p, const CompletionRequest& req, const char* finish) const {
  // `bytes` is added whenever `text` is not exactly the piece's bytes, so output is never lost.
  CompletionRequest r = req;
  r.return_bytes = req.return_bytes || text != p.bytes;
  return choice_json(text, p, r, finish);
}

void Server::complete(const CompletionRequest& req, httplib::Response& res) {
  auto job = scheduler->submit(req);
  Piece all, p;
  bool gone = false;
  for (;;) {
    const bool finished = job->take(p, 100ms);
    all.bytes += p.bytes;
    all.bits.insert(all.bits.end(), p.bits.begin(), p.bits.end());
    all.top.insert(all.top.end(), p.top.begin(), p.top.end());
    if (finished) break;
    if (!gone && GuardedServer::client_gone()) {  // nobody to answer: free the row
      gone = true;
      job->cancel();
      metrics.refused("client_gone");
    }
  }
  if (gone) {  // nginx's 499 "client closed request": for the logs and metrics, nobody reads it
    GuardedServer::close_after();
    ApiError e;
    e.status = 499;
    e.message = "the client closed the connection before the completion finished";
    throw e;
  }
  if (!job->error().empty()) {
    ApiError e = unavailable();
    e.message = job->error();
    throw e;
  }
  const std::string reason = job->finish_reason();
  json body = completion_json(new_ids(), json::array({choice(to_valid_utf8(all.bytes), all, req, reason.c_str())}));
  body["usage"] = usage_json(int64_t(req.prompt.size()), job->generated());
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
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

int run_server(const ServerOptions& opt) {
  if (opt.parallel < 1) throw Error("--parallel must be >= 1");
  check_decode_weights(opt.decode_weights, opt.device, opt.precision);
  if (opt.max_queue < 0) throw Error("--max-queue must be >= 0");
  if (opt.prefill_chunk < 1) throw Error("--prefill-chunk must be >= 1");
  check_speculative_options(opt.spec);
  if (!opt.draft.empty() && (opt.decode == "static" || opt.decode == "graphs"))
    throw Error("--draft decodes rows at their own positions: not with --decode " + opt.decode);
  if (opt.port < 0 || opt.port > 65535) throw Error("--port must be in [0, 65535]");
  if (opt.max_body_bytes < 1) throw Error("--max-body must be >= 1");
  if (!(opt.shutdown_timeout >= 0)) throw Error("--shutdown-timeout must be >= 0");
  for (const auto& k : opt.api_keys)
    if (k.empty()) throw Error("--api-key must not be empty");
  if (opt.cors_origin.find_first_of("\r\n ") != std::string::npos)
    throw Error("--cors-origin must be one origin (e.g. https://example.org) or *");
  for (const auto& h : opt.allowed_hosts)
    if (h.empty() || h.find_first_of("\r\n /:") != std::string::npos)
      throw Error("--allowed-host must be a host name without port, e.g. myhost.example");
  if (opt.max_connections < 1) throw Error("--max-connections must be >= 1");
  if (!(opt.request_timeout > 0)) throw Error("--request-timeout must be > 0");
  signal(SIGPIPE, SIG_IGN);  // a client that closes mid-write must not kill the server
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);

  Server s;
  s.opt = opt;
  const std::string name = opt.ckpt.substr(0, opt.ckpt.find_last_not_of('/') + 1);
  s.model_name = name.substr(name.find_last_of('/') + 1);
  // Workers run one request at a time (connections wait in the gate in between): room for every row,
  // the queue, and a few more so /health and /metrics answer while all rows stream.
  ConnectionLimits limits;
  limits.workers = size_t(opt.parallel + opt.max_queue + 8);
  limits.max_connections = size_t(opt.max_connections);
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY && files.rlim_cur > 64)
    limits.max_connections = std::min<size_t>(limits.max_connections, size_t(files.rlim_cur - 64));
  limits.request_timeout = opt.request_timeout;
  limits.max_body_bytes = opt.max_body_bytes;
  s.http.set_limits(limits);
  s.http.set_payload_max_length(size_t(opt.max_body_bytes));
  s.http.set_keep_alive_max_count(limits.keep_alive_max);  // for the Keep-Alive header
  // Streamed pieces are small writes: without TCP_NODELAY a response's second write waits for the client's
  // delayed ACK (~40 ms). Accepted sockets inherit the option from the listening one.
  s.http.set_tcp_nodelay(true);
  socket_t listening = INVALID_SOCKET;
  s.http.set_socket_options([&listening](socket_t sock) {
    httplib::default_socket_options(sock);
    listening = sock;  // the last socket made is the one bound
  });
  s.routes();
  const int port =
      opt.port == 0 ? s.http.bind_to_any_port(opt.host) : (s.http.bind_to_port(opt.host, opt.port) ? opt.port : -1);
  if (port < 0) throw Error("cannot listen on " + opt.host + ":" + std::to_string(opt.port));
  // httplib 0.11 listens with a backlog of 5: more clients connecting at once overflow it, the kernel drops
  // their SYNs and they retry after a second. Listening again on the bound socket raises the backlog.
  if (listening != INVALID_SOCKET) ::listen(listening, SOMAXCONN);
  std::atomic<bool> returned{false};
  std::thread listener([&] {
    s.http.listen_after_bind();
    returned = true;
  });
  std::printf("bytelm serve: listening on http://%s:%d\n", opt.host.c_str(), port);
  std::fflush(stdout);

  // Test hook: a slow load, so the tests can see /health answer 503 while loading.
  if (const char* delay = std::getenv("BYTELM_SERVE_TEST_LOAD_DELAY_MS"))
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(delay)));
  SchedulerOptions so;
  try {
    s.model = open_model(opt.ckpt, opt.device, opt.threads);
    if (!opt.draft.empty()) so.draft = open_draft(s.model, opt.draft, opt.spec, opt.device, opt.threads);
  } catch (...) {
    stop_listening(s.http, listener, returned);
    throw;
  }
  static_cast<InferenceSettings&>(so) = opt;
  so.spec = opt.spec;
  so.parallel = opt.parallel;
  so.max_queue = opt.max_queue;
  so.prefill_chunk = opt.prefill_chunk;
  so.prefix_reuse = opt.prefix_reuse;
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
  stop_listening(s.http, listener, returned);
  s.scheduler.reset();
  std::printf("bytelm serve: stopped\n");
  std::fflush(stdout);
  return 0;
}

}  // namespace bytelm::serve
