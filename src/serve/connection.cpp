// connection.cpp — a client connection and its bounded stream (see connection.h).
#include "serve/connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "serve/api.h"
#include "serve/guard.h"

namespace bytelm::serve {

namespace {

constexpr int kSliceMs = 100;  // waits are cut in slices so that shutdown is seen soon

int millis_until(Clock::time_point t) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()).count();
  return int(std::max<int64_t>(0, std::min<int64_t>(left, kSliceMs)));
}

std::string lower(std::string s) {
  for (auto& ch : s) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// The value of header `name` (lower-case, with ':') in a lower-cased head, trimmed; empty when absent.
std::string header_value(const std::string& head, const std::string& name) {
  const size_t at = head.find("\r\n" + name);
  if (at == std::string::npos) return "";
  const size_t from = at + 2 + name.size(), end = head.find("\r\n", from);
  std::string v = head.substr(from, end - from);
  v.erase(0, v.find_first_not_of(" \t"));
  v.erase(v.find_last_not_of(" \t") + 1);
  return v;
}

void address(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  const int r = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len)
                     : getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  if (r != 0) return;
  char buf[INET6_ADDRSTRLEN] = {0};
  if (a.ss_family == AF_INET) {
    auto* s = reinterpret_cast<sockaddr_in*>(&a);
    inet_ntop(AF_INET, &s->sin_addr, buf, sizeof buf);
    port = ntohs(s->sin_port);
  } else if (a.ss_family == AF_INET6) {
    auto* s = reinterpret_cast<sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof buf);
    port = ntohs(s->sin6_port);
  }
  ip = buf;
}

}  // namespace

void Connection::start_request(Clock::time_point now, double request_timeout) {
  started = true;
  deadline = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(request_timeout));
}

void Connection::next_request() {
  buf.erase(0, pos);
  pos = scanned = 0;
  head_end = std::string::npos;
  want = 0;
  started = false;
  request_bytes = 0;
  failure = ReadFailure::None;
  since = Clock::now();
}

bool Connection::request_ready(size_t prebuffer, int64_t max_body) {
  if (head_end == std::string::npos) {
    const size_t from = std::max(pos, scanned >= 3 ? scanned - 3 : size_t(0));
    const size_t end = buf.find("\r\n\r\n", from);
    scanned = buf.size();
    if (end == std::string::npos) return false;
    head_end = end + 4;
    // Body bytes to wait for: min(Content-Length, prebuffer); other framings go to a worker at once.
    const std::string head = lower(buf.substr(pos, head_end - pos));
    const int64_t n = parse_content_length(header_value(head, "content-length:"));
    // A client that sent "Expect: 100-continue" waits for httplib's 100 before it sends the body.
    const bool framed = header_value(head, "transfer-encoding:").empty() && header_value(head, "expect:").empty() &&
                        n > 0 && n <= max_body;
    want = framed ? std::min(size_t(n), prebuffer) : 0;
  }
  return buf.size() - head_end >= want;
}

bool Connection::head_too_large(size_t limit) const {
  return head_end == std::string::npos ? buf.size() - pos > limit : head_end - pos > limit;
}

bool ConnectionStream::fill() {
  const int64_t budget = int64_t(limits_.max_header_bytes) + 4 * limits_.max_body_bytes + 65536;
  if (c_.request_bytes >= budget) {
    c_.failure = ReadFailure::TooLarge;
    return false;
  }
  for (;;) {
    if (stopping_ || Clock::now() >= c_.deadline) {
      c_.failure = stopping_ ? ReadFailure::Stopping : ReadFailure::Timeout;
      return false;
    }
    char tmp[16384];
    const ssize_t n = recv(c_.fd, tmp, sizeof tmp, MSG_DONTWAIT);
    if (n > 0) {
      c_.buf.append(tmp, size_t(n));
      c_.request_bytes += n;
      return true;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return false;
    if (!wait_readable()) return false;
  }
}

bool ConnectionStream::wait_readable() {
  // Only so many workers may wait for a client's bytes at once.
  const int64_t limit = std::max<int64_t>(1, int64_t(limits_.workers) - int64_t(limits_.reserved_workers));
  if (waiting_.fetch_add(1) >= limit) {
    --waiting_;
    c_.failure = ReadFailure::Busy;
    return false;
  }
  struct Release {
    std::atomic<int64_t>& n;
    ~Release() { --n; }
  } release{waiting_};
  for (;;) {
    if (stopping_) {
      c_.failure = ReadFailure::Stopping;
      return false;
    }
    if (Clock::now() >= c_.deadline) {
      c_.failure = ReadFailure::Timeout;
      return false;
    }
    pollfd p{c_.fd, POLLIN, 0};
    const int r = poll(&p, 1, std::max(1, millis_until(c_.deadline)));
    if (r < 0 && errno != EINTR) return false;
    if (r > 0) return true;
  }
}

ssize_t ConnectionStream::read(char* ptr, size_t size) {
  if (c_.pos >= c_.buf.size()) {
    c_.buf.clear();
    c_.pos = c_.scanned = 0;
    c_.head_end = std::string::npos;
    if (!fill()) return -1;
  }
  const size_t n = std::min(size, c_.buf.size() - c_.pos);
  std::memcpy(ptr, c_.buf.data() + c_.pos, n);
  c_.pos += n;
  return ssize_t(n);
}

ssize_t ConnectionStream::write(const char* ptr, size_t size) {
  const auto patience =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limits_.write_timeout));
  auto until = Clock::now() + patience;
  size_t done = 0;
  while (done < size) {
    if (stopping_) return -1;
    const ssize_t n = send(c_.fd, ptr + done, size - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += size_t(n);
      until = Clock::now() + patience;
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
    if (Clock::now() >= until) return -1;
    pollfd p{c_.fd, POLLOUT, 0};
    poll(&p, 1, std::max(1, millis_until(until)));
  }
  return ssize_t(size);
}

bool ConnectionStream::is_readable() const {
  if (c_.pos < c_.buf.size()) return true;
  pollfd p{c_.fd, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

bool ConnectionStream::is_writable() const {
  if (peer_closed(c_.fd)) return false;
  const auto until =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limits_.write_timeout));
  while (!stopping_) {
    pollfd p{c_.fd, POLLOUT, 0};
    if (poll(&p, 1, std::max(1, millis_until(until))) > 0) return (p.revents & (POLLERR | POLLHUP)) == 0;
    if (Clock::now() >= until) return false;
  }
  return false;
}

void ConnectionStream::get_remote_ip_and_port(std::string& ip, int& port) const { address(c_.fd, true, ip, port); }
void ConnectionStream::get_local_ip_and_port(std::string& ip, int& port) const { address(c_.fd, false, ip, port); }

bool peer_closed(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL)) return true;
  char c;
  return (p.revents & POLLIN) && recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

std::string canned_response(int status, const std::string& type, const std::string& message) {
  ApiError e;
  e.status = status;
  e.type = type;
  e.message = message;
  const std::string body = e.dump();
  const char* reason = status == 408   ? "Request Timeout"
                       : status == 431 ? "Request Header Fields Too Large"
                       : status == 503 ? "Service Unavailable"
                                       : "Error";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
         (status == 503 ? "\r\nRetry-After: 1" : "") + "\r\n\r\n" + body;
}

}  // namespace bytelm::serve
