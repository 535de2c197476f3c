// guard.cpp — Host, Origin and key checks of `bytelm serve` (see guard.h).
#include "serve/guard.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace bytelm::serve {

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ip_literal(const std::string& host) {
  unsigned char buf[16];
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    return inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), buf) == 1;
  return inet_pton(AF_INET, host.c_str(), buf) == 1;
}

// The listen host as a Host header names it: IPv6 addresses in brackets.
std::string as_host(const std::string& listen_host) {
  const std::string h = lower(listen_host);
  return h.find(':') != std::string::npos && h.front() != '[' ? "[" + h + "]" : h;
}

}  // namespace

std::string host_name(const std::string& host_header) {
  std::string h = lower(host_header);
  if (!h.empty() && h.front() == '[') {
    const size_t end = h.find(']');
    return end == std::string::npos ? h : h.substr(0, end + 1);
  }
  const size_t colon = h.find(':');
  return colon == std::string::npos ? h : h.substr(0, colon);
}

bool host_allowed(const std::string& host_header, const std::string& listen_host,
                  const std::vector<std::string>& allowed) {
  if (host_header.empty()) return true;
  const std::string h = host_name(host_header);
  if (h.empty()) return false;
  if (h == "localhost" || ip_literal(h) || h == as_host(listen_host)) return true;
  for (const auto& a : allowed)
    if (a == "*" || lower(a) == h) return true;
  return false;
}

bool origin_allowed(const std::string& origin, const std::string& host_header, const std::string& cors_origin) {
  if (origin.empty()) return true;
  const std::string o = lower(origin);
  if (!cors_origin.empty() && (cors_origin == "*" || lower(cors_origin) == o)) return true;
  return !host_header.empty() && o == "http://" + lower(host_header);
}

bool equal_constant_time(const std::string& a, const std::string& b) {
  volatile unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = diff | (x ^ y);
  }
  return diff == 0;
}

bool bearer_matches(const std::string& authorization, const std::vector<std::string>& keys) {
  const std::string scheme = "bearer ";
  if (authorization.size() < scheme.size() || lower(authorization.substr(0, scheme.size())) != scheme) return false;
  const std::string given = authorization.substr(scheme.size());
  bool ok = false;
  for (const auto& k : keys) ok = equal_constant_time(given, k) || ok;  // no early exit: every key is compared
  return ok;
}

int64_t parse_content_length(const std::string& value) {
  if (value.empty() || value.size() > 18) return -1;
  int64_t n = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace bytelm::serve
