// routes.cpp — the routes of `bytelm serve` and what every request passes before its route: the Host
// and Origin checks, the framing and size of its body; and the error objects for statuses httplib sets
// itself. No handler lets an exception escape; error JSON replaces invalid UTF-8 (paths, headers).
#include <algorithm>
#include <map>

#include "serve/guard.h"
#include "serve/server_internal.h"
#include "serve_page.h"  // kServePage: src/serve/page.html, embedded at build time

namespace bytelm::serve {

using json = nlohmann::json;
using HR = httplib::Server::HandlerResponse;

namespace {

// Allowed methods of each route.
const std::map<std::string, std::string>& known_routes() {
  static const std::map<std::string, std::string> routes{
      {"/", "GET"},        {"/health", "GET"},    {"/v1/health", "GET"},      {"/v1/models", "GET"},
      {"/metrics", "GET"}, {"/v1/score", "POST"}, {"/v1/completions", "POST"}};
  return routes;
}

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

ApiError error(int status, const std::string& message, const std::string& type = "invalid_request_error") {
  ApiError e;
  e.status = status;
  e.type = type;
  e.message = message;
  return e;
}

}  // namespace

HR Server::pre_route(const httplib::Request& req, httplib::Response& res) {
  // A refusal: the error object, the connection closed after it (the body, if any, stays unread).
  auto refuse = [&](const ApiError& e, const char* reason) {
    metrics.refused(reason);
    send_error(res, e);
    GuardedServer::close_after();
    res.set_header("Connection", "close");
    return HR::Handled;
  };
  try {
    const std::string host = req.get_header_value("Host");
    if (req.get_header_value_count("Host") > 1 || !host_allowed(host, opt.host, opt.allowed_hosts))
      return refuse(
          error(403, "this server does not answer to Host '" + host + "' (see --allowed-host)", "permission_error"),
          "bad_host");
    const bool safe = req.method == "GET" || req.method == "HEAD" || req.method == "OPTIONS";
    if (!safe && !origin_allowed(req.get_header_value("Origin"), host, opt.cors_origin))
      return refuse(
          error(403,
                "requests from origin '" + req.get_header_value("Origin") + "' are not allowed (see --cors-origin)",
                "permission_error"),
          "bad_origin");
    const std::string te = lower(req.get_header_value("Transfer-Encoding"));
    const size_t cls = req.get_header_value_count("Content-Length");
    const int64_t cl = cls == 1 ? parse_content_length(req.get_header_value("Content-Length")) : 0;
    if (cls > 1 || cl < 0 || (!te.empty() && (cls > 0 || te != "chunked")))
      return refuse(error(400, "bad body framing: one Content-Length of digits, or Transfer-Encoding: chunked"),
                    "bad_framing");
    const auto route = known_routes().find(req.path);
    const bool api = route != known_routes().end() && route->second == "POST" && req.method == "POST";
    // httplib reads a body of these methods even without framing (until the client closes): refused.
    const bool unframed = cls == 0 && te.empty() && !safe && req.method != "OPTIONS";
    if (api && unframed) return refuse(error(411, "a request body needs a Content-Length"), "bad_framing");
    if ((cl > 0 || !te.empty() || unframed) && !api) {
      if (route == known_routes().end())
        return refuse(error(404, "no route " + req.method + " " + req.path, "not_found_error"), "body_not_allowed");
      if (req.method != route->second) res.set_header("Allow", route->second);
      return refuse(error(req.method == route->second ? 400 : 405,
                          req.method + " " + req.path + " takes no request body (allowed: " + route->second + ")"),
                    "body_not_allowed");
    }
    if (api && cl > opt.max_body_bytes)
      return refuse(error(413, "the request body is larger than " + std::to_string(opt.max_body_bytes) + " bytes"),
                    "body_too_large");
    const std::string ce = lower(req.get_header_value("Content-Encoding"));
    const bool known_ce = ce.empty() || ce == "identity" || ce == "gzip" || ce == "deflate" || ce == "br";
    if (!known_ce || (api && lower(req.get_header_value("Content-Type")).rfind("multipart/", 0) == 0))
      return refuse(error(415, "unsupported Content-Encoding or Content-Type of the body"), "unsupported_encoding");
    return HR::Unhandled;
  } catch (const std::exception&) {
    return refuse(error(400, "the request could not be checked"), "malformed");
  }
}

HR Server::on_error(const httplib::Request& req, httplib::Response& res) {
  try {
    if (!res.body.empty()) return HR::Unhandled;
    // httplib's own 400/408/413/414/431 can leave part of the request unread: the next bytes on the
    // connection would be parsed as a request of their own.
    if (res.status != 404 && res.status != 405) {
      GuardedServer::close_after();
      res.set_header("Connection", "close");
    }
    const ReadFailure f = GuardedServer::read_failure();
    if (f == ReadFailure::Timeout) res.status = 408;
    if (f == ReadFailure::TooLarge) res.status = 413;
    if (f == ReadFailure::Busy) res.status = 503;
    ApiError e;
    e.status = res.status;
    if (res.status == 404) {
      e.type = "not_found_error";
      e.message = "no route " + req.method + " " + req.path;
    } else if (res.status == 413) {
      e.message = "the request is larger than " + std::to_string(opt.max_body_bytes) + " bytes of body";
    } else if (res.status == 408) {
      e.message = "the request did not arrive within the request timeout";
    } else if (f == ReadFailure::Busy) {
      e.type = "unavailable_error";
      e.message = "too many requests are sending their bodies slowly";
    } else {
      e.type = res.status >= 500 ? "server_error" : "invalid_request_error";
      e.message = "HTTP " + std::to_string(res.status);
      if (res.status == 400 || res.status == 414) metrics.refused(res.status == 400 ? "malformed" : "uri_too_long");
    }
    res.set_content(e.dump(), "application/json");
  } catch (...) {
    res.set_content(R"({"error":{"message":"error","type":"server_error","param":null,"code":null}})",
                    "application/json");
  }
  return HR::Handled;
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
  http.set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) { return pre_route(req, res); });
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
      res.set_content(
          json{{"object", "list"}, {"data", json::array({m})}}.dump(-1, ' ', false, json::error_handler_t::replace),
          "application/json");
    });
  });
  // POST routes read their body themselves, bounded after decompression (read_body). A refusal before the
  // body is read closes the connection after the answer.
  auto post = [this](std::function<void(const httplib::Request&, httplib::Response&, const std::string&)> run) {
    return [this, run](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
      bool read = false;
      guarded(res, [&] {
        check_key(req);
        check_ready();
        const std::string body = read_body(reader);
        read = true;
        run(req, res, body);
      });
      if (!read) GuardedServer::close_after();
    };
  };
  http.Post("/v1/completions", post([this](const httplib::Request&, httplib::Response& res, const std::string& body) {
              const CompletionRequest r = parse_completion(body, model.context);
              if (r.logprobs >= 0 && model.tokenizer)
                throw bad_request("'logprobs' are per byte and need a byte model; this server runs the BPE baseline",
                                  "logprobs");
              if (r.stream)
                stream(r, res);
              else
                complete(r, res);
            }));
  http.Post("/v1/score", post([this](const httplib::Request&, httplib::Response& res, const std::string& body) {
              const std::string bytes = parse_score(body, model.context);
              json out;
              scheduler->run_on_engine([&] { out = score(model, bytes, opt.device); });
              res.set_content(out.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
            }));
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
      send_error(res, error(405, req.method + " is not allowed on " + req.path + " (allowed: " + allow + ")"));
      res.set_header("Allow", allow);
    };
  };
  for (const auto& [path, allow] : known_routes()) {
    const char* a = allow == "GET" ? "GET" : "POST";
    if (allow == "POST") http.Get(path, wrong_method(a));
    if (allow == "GET") http.Post(path, wrong_method(a));
    http.Put(path, wrong_method(a));
    http.Delete(path, wrong_method(a));
  }
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) { return on_error(req, res); }));
  http.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    send_error(res, error(500, "internal error while answering", "server_error"));
    GuardedServer::close_after();
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    try {
      metrics.request(known_routes().count(req.path) ? req.path : "other", res.status);
    } catch (...) {
    }
  });
}

}  // namespace bytelm::serve
