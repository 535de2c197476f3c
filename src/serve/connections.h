// connections.h — the connection layer of `bytelm serve` under cpp-httplib's request parser. httplib 0.11
// gives every accepted connection a thread for its whole life and waits per recv only, so slow clients
// could hold every thread. Here one gate thread polls all connections until a request's head (and a small
// body) has arrived, and only then hands it to a worker, which runs httplib's parser and the route over a
// stream that enforces a wall-clock deadline for the whole request and a byte budget. Connections over
// --max-connections first evict the one that has waited longest for its request; answered connections
// return to the gate for their next request (keep-alive). Workers waiting for body bytes are capped so
// that some always stay free for requests that have arrived.
#pragma once
#include <httplib.h>

#include <cstdint>
#include <memory>

#include "serve/metrics.h"

namespace bytelm::serve {

struct ConnectionLimits {
  size_t max_connections = 256;   // open connections (gate + workers + closing)
  double request_timeout = 30;    // seconds from a request's first byte to its last
  double keep_alive_timeout = 5;  // idle seconds between requests before the connection is closed
  double write_timeout = 5;       // seconds one write may wait for the client to read
  size_t max_header_bytes = 65536;
  int64_t max_body_bytes = 1 << 20;
  size_t workers = 8;           // threads that run requests
  size_t reserved_workers = 8;  // workers that never wait for a slow body (min 1 may wait)
  size_t keep_alive_max = 100;
};

// Why the current request's read failed (for the status of the response, and metrics).
// Busy: too many workers already wait for request bytes (slow bodies); the rest stay free for others.
enum class ReadFailure { None, Timeout, TooLarge, Busy, Stopping };

class GuardedServer : public httplib::Server {
 public:
  explicit GuardedServer(Metrics& metrics);
  ~GuardedServer() override;
  void set_limits(const ConnectionLimits& limits);  // before listening

  // About the connection of the calling handler thread (false/None outside a request):
  static bool client_gone();  // the client closed its side (or the connection broke)
  static void close_after();  // close the connection after this response (its body was not read)
  static ReadFailure read_failure();

  struct Impl;
  // Runs httplib's parser and routes for one request (used by the workers).
  bool serve_request(httplib::Stream& strm, bool close_connection, bool& connection_closed);

 private:
  bool process_and_close_socket(socket_t sock) override;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bytelm::serve
