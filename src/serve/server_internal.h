// server_internal.h — the state of a running `bytelm serve` shared by server.cpp (responses, life cycle)
// and routes.cpp (the routes and the checks every request passes before its route).
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "serve/api.h"
#include "serve/connections.h"
#include "serve/metrics.h"
#include "serve/model_host.h"
#include "serve/scheduler.h"
#include "serve/server.h"

namespace bytelm::serve {

enum class State { Loading, Ready, Draining };

struct Server {
  ServerOptions opt;
  Metrics metrics;
  GuardedServer http{metrics};
  std::atomic<State> state{State::Loading};
  ServedModel model;
  std::string model_name;
  std::unique_ptr<Scheduler> scheduler;
  std::atomic<int64_t> open_streams{0};

  void send_error(httplib::Response& res, const ApiError& e);
  ApiError unavailable() const;
  void check_key(const httplib::Request& req);  // throws ApiError 401
  void check_ready() const;                     // throws ApiError 503
  // Runs a route's body; ApiError becomes the OpenAI error object, anything else a 500.
  void guarded(httplib::Response& res, const std::function<void()>& body);
  // The request body through `reader`, at most --max-body bytes after any Content-Encoding is undone;
  // throws ApiError 413 past that, 408 when it does not arrive in time, 400 when it cannot be read.
  std::string read_body(const httplib::ContentReader& reader);
  CompletionIds new_ids() const;
  nlohmann::json choice(const std::string& text, const Piece& p, const CompletionRequest& req,
                        const char* finish) const;
  void complete(const CompletionRequest& req, httplib::Response& res);
  void stream(const CompletionRequest& req, httplib::Response& res);

  void routes();
  // Before routing (body not read yet): Host, Origin, body framing and size. Refusals answer here.
  httplib::Server::HandlerResponse pre_route(const httplib::Request& req, httplib::Response& res);
  // Statuses httplib sets itself (404, 400, 414, ...): the OpenAI error object; never throws.
  httplib::Server::HandlerResponse on_error(const httplib::Request& req, httplib::Response& res);
};

}  // namespace bytelm::serve
