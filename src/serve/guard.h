// guard.h — request checks of `bytelm serve` that need neither httplib nor torch: the Host allow-list
// (against DNS rebinding), the Origin check (against cross-site POSTs), constant-time key comparison, and
// strict parsing of Content-Length. Names compare case-insensitively; a Host may carry a port.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace bytelm::serve {

// The host part of a Host header value, lower-cased, without the port ("[::1]:8080" -> "[::1]").
std::string host_name(const std::string& host_header);

// A Host header is allowed when it is absent, an IP literal, "localhost", the listen host, or in `allowed`
// ("*" there allows any). A page served from any other name reached the server through DNS it controls.
bool host_allowed(const std::string& host_header, const std::string& listen_host,
                  const std::vector<std::string>& allowed);

// An Origin header is allowed when it is absent, names the server itself ("http://" + Host), or equals
// `cors_origin` (or that is "*").
bool origin_allowed(const std::string& origin, const std::string& host_header, const std::string& cors_origin);

// Equality in time that depends on the lengths only, not on where the strings differ.
bool equal_constant_time(const std::string& a, const std::string& b);

// True when `authorization` is "Bearer <k>" for one of `keys`; every key is compared, in constant time.
bool bearer_matches(const std::string& authorization, const std::vector<std::string>& keys);

// Content-Length as a number: 1 to 18 decimal digits, nothing else; -1 otherwise.
int64_t parse_content_length(const std::string& value);

}  // namespace bytelm::serve
