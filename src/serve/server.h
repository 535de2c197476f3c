// server.h — `bytelm serve`: an OpenAI-style HTTP server over one checkpoint (cpp-httplib).
// Endpoints: GET / (the page), GET /health, GET /v1/models, POST /v1/completions (JSON or SSE stream),
// POST /v1/score, GET /metrics. Errors are OpenAI error objects. Hardened against hostile clients on the
// network (docs/reliability-server.md): Host/Origin checks, deadlines and bounds per connection and body.
// SIGTERM/SIGINT: stop taking requests, let running ones finish for up to --shutdown-timeout seconds, cancel the rest,
// exit 0.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "generate/speculative.h"
#include "util/inference.h"

namespace bytelm::serve {

// The inference settings (util/inference.h: device, precision, decode weights, threads of the model) and
// the server's own.
struct ServerOptions : InferenceSettings {
  std::string ckpt;
  std::string host = "127.0.0.1";
  int port = 8080;                         // 0 = any free port (printed)
  int64_t parallel = 4;                    // rows decoded together
  int64_t max_queue = 16;                  // requests waiting for a row before 503
  int64_t prefill_chunk = 64;              // prompt bytes a joining request feeds per step
  bool prefix_reuse = true;                // start from a prefix another row's cache holds
  std::vector<std::string> api_keys;       // empty = no key needed
  int64_t max_body_bytes = 1 << 20;        // larger request bodies get 413
  double shutdown_timeout = 10;            // seconds running requests may take to finish after SIGTERM
  std::string cors_origin;                 // non-empty: browsers on this origin ("*" = any) may call the API
  std::vector<std::string> allowed_hosts;  // Host names accepted besides IP literals, localhost, --host
  int64_t max_connections = 256;           // open connections; more evict the slowest waiting one
  double request_timeout = 30;             // seconds for a whole request (head and body) to arrive
  std::string draft;                       // speculative decoding: a draft checkpoint, or "self" (BLT)
  SpeculativeOptions spec;                 // --draft-max, --draft-p-min
};

// Throws Error for bad options or a checkpoint that does not load; returns 0 after a clean shutdown.
int run_server(const ServerOptions& opt);

}  // namespace bytelm::serve
