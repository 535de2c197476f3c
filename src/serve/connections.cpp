// connections.cpp — the gate thread, the workers and admission of `bytelm serve` (see connections.h).
#include "serve/connections.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "serve/connection.h"

namespace bytelm::serve {

namespace {

constexpr size_t kPrebuffer = 65536;   // body bytes the gate collects before a worker takes the request
constexpr double kClosingSeconds = 1;  // after a refusal, input is discarded this long so the reply arrives
thread_local Connection* t_conn = nullptr;

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// httplib's task queue, bypassed: the listener's job for a new socket (process_and_close_socket) runs at
// once on the listener thread, where it only hands the socket to the gate.
class InlineQueue : public httplib::TaskQueue {
 public:
  explicit InlineQueue(std::function<void()> on_shutdown) : on_shutdown_(std::move(on_shutdown)) {}
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override { on_shutdown_(); }

 private:
  std::function<void()> on_shutdown_;
};

}  // namespace

struct GuardedServer::Impl {
  using Conn = std::shared_ptr<Connection>;
  Impl(GuardedServer& s, Metrics& m) : server(s), metrics(m) {}
  GuardedServer& server;
  Metrics& metrics;
  ConnectionLimits limits;
  std::atomic<bool> stopping{false};
  int wake_fd = -1;
  std::mutex mu;
  std::condition_variable ready_cv;
  std::vector<Conn> incoming;  // accepted or answered connections, for the gate (mu)
  std::deque<Conn> ready;      // requests whose head arrived, for the workers (mu)
  std::vector<Conn> waiting;   // the gate's own
  std::atomic<int64_t> open{0};
  std::atomic<int64_t> waiting_for_bytes{0};  // workers waiting for a client's bytes (ConnectionStream)
  std::thread gate;
  std::vector<std::thread> workers;

  void start() {
    if (gate.joinable() || stopping) return;
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    gate = std::thread([this] { gate_loop(); });
    for (size_t i = 0; i < std::max<size_t>(1, limits.workers); ++i) workers.emplace_back([this] { worker_loop(); });
  }

  void stop() {
    stopping = true;
    wake();
    ready_cv.notify_all();
    if (gate.joinable()) gate.join();
    for (auto& w : workers)
      if (w.joinable()) w.join();
    workers.clear();
    std::lock_guard<std::mutex> lock(mu);
    for (auto& c : incoming) close_now(*c);
    for (auto& c : ready) close_now(*c);
    incoming.clear();
    ready.clear();
    if (wake_fd >= 0) ::close(wake_fd);
    wake_fd = -1;
  }

  void wake() {
    if (wake_fd < 0) return;
    const uint64_t one = 1;
    (void)!::write(wake_fd, &one, sizeof one);
  }

  void accept(int fd) {
    ++open;
    if (stopping) return close_now(*std::make_shared<Connection>(fd));
    hand_to_gate(std::make_shared<Connection>(fd));
  }

  void hand_to_gate(Conn c) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!stopping) {
        incoming.push_back(std::move(c));
        c = nullptr;
      }
    }
    if (c) close_now(*c);
    wake();
  }

  void close_now(Connection& c) {
    if (c.fd < 0) return;
    ::close(c.fd);
    c.fd = -1;
    --open;
  }

  // Refuses the request in progress: a JSON error, the write side shut, input discarded for a while.
  void refuse(Connection& c, int status, const std::string& type, const std::string& message, const char* reason) {
    metrics.refused(reason);
    const std::string r = canned_response(status, type, message);
    (void)!send(c.fd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    start_closing(c);
  }

  void start_closing(Connection& c) {
    shutdown(c.fd, SHUT_WR);
    c.closing = true;
    c.closing_until = Clock::now() + seconds(kClosingSeconds);
  }

  // Over --max-connections: close connections that wait (closing ones first, then the longest waiting)
  // until the count fits; `fresh` are the connections accepted this round (refused with 503, not evicted).
  void enforce_cap(const std::vector<Connection*>& fresh) {
    while (open > int64_t(limits.max_connections) && !waiting.empty()) {
      auto victim = std::min_element(waiting.begin(), waiting.end(), [](const Conn& a, const Conn& b) {
        return a->closing != b->closing ? a->closing : a->since < b->since;
      });
      Connection& v = **victim;
      if (!v.closing) {
        if (std::find(fresh.begin(), fresh.end(), &v) != fresh.end()) {
          refuse(v, 503, "unavailable_error", "too many open connections", "too_many_connections");
        } else if (v.started) {
          refuse(v, 408, "invalid_request_error", "the request took too long to arrive", "evicted");
        } else {
          metrics.refused("evicted");  // idle between requests: closed without a word
        }
      }
      close_now(v);
      waiting.erase(victim);
    }
  }

  // One connection after poll: read what came, then ready (true), keep waiting, or closed (fd < 0).
  bool step(Connection& c, short revents, Clock::time_point now) {
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
      char tmp[16384];
      const ssize_t n = recv(c.fd, tmp, sizeof tmp, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        close_now(c);
        return false;
      }
      if (n > 0 && !c.closing) {
        if (!c.started) c.start_request(now, limits.request_timeout);
        c.buf.append(tmp, size_t(n));
        c.request_bytes += n;
      }
    }
    if (c.closing) {
      if (now >= c.closing_until) close_now(c);
      return false;
    }
    if (!c.started) {
      if (now >= c.since + seconds(limits.keep_alive_timeout)) close_now(c);
      return false;
    }
    const bool ready_now = c.request_ready(kPrebuffer, limits.max_body_bytes);
    if (c.head_too_large(limits.max_header_bytes)) {
      refuse(c, 431, "invalid_request_error",
             "the request head is larger than " + std::to_string(limits.max_header_bytes) + " bytes",
             "header_too_large");
    } else if (ready_now) {
      return true;
    } else if (now >= c.deadline) {
      refuse(c, 408, "invalid_request_error", "the request did not arrive within the request timeout",
             "request_timeout");
    }
    return false;
  }

  int poll_timeout_ms(Clock::time_point now) const {
    Clock::time_point next = now + std::chrono::seconds(1);
    for (const auto& c : waiting)
      next = std::min(next, c->closing   ? c->closing_until
                            : c->started ? c->deadline
                                         : c->since + seconds(limits.keep_alive_timeout));
    return int(std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1));
  }

  void gate_loop() {
    std::vector<pollfd> fds;
    while (!stopping) {
      std::vector<Conn> in;
      {
        std::lock_guard<std::mutex> lock(mu);
        in.swap(incoming);
      }
      std::vector<Connection*> fresh;
      for (auto& c : in) {
        if (c->served == 0 && !c->started) fresh.push_back(c.get());
        waiting.push_back(std::move(c));
      }
      enforce_cap(fresh);
      fds.assign(1, pollfd{wake_fd, POLLIN, 0});
      for (const auto& c : waiting)
        fds.push_back(
            pollfd{c->fd, short(c->started && c->request_ready(kPrebuffer, limits.max_body_bytes) ? 0 : POLLIN), 0});
      const bool any_ready = std::any_of(fds.begin() + 1, fds.end(), [](const pollfd& p) { return p.events == 0; });
      poll(fds.data(), fds.size(), any_ready ? 0 : poll_timeout_ms(Clock::now()));
      uint64_t drained;
      while (::read(wake_fd, &drained, sizeof drained) > 0) {
      }
      const auto now = Clock::now();
      std::vector<Conn> keep;
      for (size_t i = 0; i < waiting.size(); ++i) {
        Conn& c = waiting[i];
        if (step(*c, fds[i + 1].revents, now)) {
          std::lock_guard<std::mutex> lock(mu);
          ready.push_back(std::move(c));
          ready_cv.notify_one();
        } else if (c->fd >= 0) {
          keep.push_back(std::move(c));
        }
      }
      waiting.swap(keep);
    }
    for (auto& c : waiting) close_now(*c);
    waiting.clear();
  }

  void worker_loop() {
    for (;;) {
      Conn c;
      {
        std::unique_lock<std::mutex> lock(mu);
        ready_cv.wait(lock, [&] { return stopping || !ready.empty(); });
        if (stopping) return;
        c = std::move(ready.front());
        ready.pop_front();
      }
      serve(*c);
      if (c->close) {
        start_closing(*c);
      } else {
        c->next_request();
        if (!c->buf.empty()) c->start_request(Clock::now(), limits.request_timeout);
      }
      hand_to_gate(std::move(c));
    }
  }

  // One request on a worker: httplib parses it (through the bounded stream) and runs the route.
  void serve(Connection& c) {
    t_conn = &c;
    ConnectionStream strm(c, limits, stopping, waiting_for_bytes);
    const bool last = stopping || ++c.served >= limits.keep_alive_max;
    bool closed = false, ok = false;
    try {
      ok = server.serve_request(strm, last, closed);
    } catch (...) {
      ok = false;  // a throw past the handlers (e.g. while writing): the connection is dropped
    }
    t_conn = nullptr;
    if (c.failure == ReadFailure::Timeout) metrics.refused("request_timeout");
    if (c.failure == ReadFailure::TooLarge) metrics.refused("body_too_large");
    if (c.failure == ReadFailure::Busy) metrics.refused("slow_bodies");
    if (!ok || closed || last || c.failure != ReadFailure::None) c.close = true;
  }
};

GuardedServer::GuardedServer(Metrics& metrics) : impl_(std::make_unique<Impl>(*this, metrics)) {
  new_task_queue = [this] {
    impl_->start();
    return new InlineQueue([this] { impl_->stop(); });
  };
}

GuardedServer::~GuardedServer() { impl_->stop(); }

void GuardedServer::set_limits(const ConnectionLimits& limits) { impl_->limits = limits; }

bool GuardedServer::process_and_close_socket(socket_t sock) {
  impl_->accept(sock);
  return true;
}

bool GuardedServer::serve_request(httplib::Stream& strm, bool close_connection, bool& connection_closed) {
  return process_request(strm, close_connection, connection_closed, nullptr);
}

bool GuardedServer::client_gone() { return t_conn && peer_closed(t_conn->fd); }

void GuardedServer::close_after() {
  if (t_conn) t_conn->close = true;
}

ReadFailure GuardedServer::read_failure() { return t_conn ? t_conn->failure : ReadFailure::None; }

}  // namespace bytelm::serve
