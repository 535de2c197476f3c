// serve.cpp — `bytelm serve`: an OpenAI-style HTTP server over one checkpoint (src/serve/server.h).
#include <memory>

#include "cli/commands.h"
#include "util/error.h"
#if BYTELM_SERVE
#include "serve/server.h"
#endif

namespace bytelm::cli {

Command add_serve(CLI::App& app) {
  auto o = std::make_shared<serve::ServerOptions>();
  auto* s =
      app.add_subcommand("serve", "Serve a checkpoint over HTTP: OpenAI-style completions (streamed), scores, a page");
  s->add_option("--ckpt", o->ckpt, "Checkpoint directory (required)");
  s->add_option("--host", o->host, "Address to listen on (loopback by default)");
  s->add_option("--port", o->port, "TCP port (0 = any free port, printed on stdout)");
  s->add_option("--parallel", o->parallel, "Requests decoded together in one batched step per byte (rows)");
  s->add_option("--max-queue", o->max_queue, "Requests that may wait for a free row; more get 503 + Retry-After");
  s->add_option("--prefill-chunk", o->prefill_chunk,
                "Prompt bytes a joining request feeds per step while the others decode (models with row positions)");
  add_draft_flags(s, &o->draft, &o->spec, "every running request then does one speculative round per step, the rounds batched");
  s->add_flag("!--no-prefix-reuse", o->prefix_reuse,
              "Prefill every prompt in full (default: start from a prefix another row's cache holds)");
  s->add_option("--api-key", o->api_keys, "Require 'Authorization: Bearer KEY' on /v1/* and /metrics; repeatable")
      ->take_all();
  s->add_option("--cors-origin", o->cors_origin,
                "Let browser pages on this origin call the API (e.g. https://example.org, or * for any): CORS "
                "headers on every response, OPTIONS preflight answered (default: same-origin only)");
  s->add_option("--allowed-host", o->allowed_hosts,
                "Host names the server answers to besides IP addresses, localhost and --host (others: 403, "
                "against DNS rebinding); * = any; repeatable")
      ->take_all();
  s->add_option("--max-body", o->max_body_bytes,
                "Largest request body in bytes, also after gzip/deflate/br is undone (larger: 413)");
  s->add_option("--max-connections", o->max_connections,
                "Open connections at most; a new one beyond closes the one waiting longest for its request");
  s->add_option("--request-timeout", o->request_timeout,
                "Seconds a client has to send a whole request, head and body, from its first byte (else 408)");
  s->add_option("--shutdown-timeout", o->shutdown_timeout,
                "On SIGTERM: seconds running requests may take to finish before they are cancelled");
  add_inference_flags(s, o.get(), kDeviceFlags | kDecodeWeights);
  return {s, [o] {
            if (o->ckpt.empty()) throw Error("--ckpt is required");
#if BYTELM_SERVE
            return serve::run_server(*o);
#else
            throw Error("this bytelm was built without cpp-httplib (Debian: libcpp-httplib-dev): no server");
#endif
          }};
}

}  // namespace bytelm::cli
