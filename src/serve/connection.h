// connection.h — one client connection of `bytelm serve` (connections.h): its socket, the bytes received
// and not yet parsed, the deadline of the request in progress, and the httplib::Stream a worker reads the
// request through (bounded in time and bytes) and writes the response to.
#pragma once
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <string>

#include "serve/connections.h"

namespace bytelm::serve {

using Clock = std::chrono::steady_clock;

struct Connection {
  explicit Connection(int fd) : fd(fd), since(Clock::now()) {}
  int fd;
  std::string buf;                      // received, not yet consumed by the parser
  size_t pos = 0;                       // consumed bytes of buf
  size_t scanned = 0;                   // buf is searched for the end of the head from here
  size_t head_end = std::string::npos;  // offset in buf just past the head's blank line, once found
  size_t want = 0;                      // body bytes to receive before a worker takes the request
  Clock::time_point since;              // accepted, or its last response sent
  Clock::time_point deadline;           // the whole request must have arrived by then (set at its first byte)
  bool started = false;                 // a byte of the next request arrived
  int64_t request_bytes = 0;            // bytes read from the socket for the current request
  ReadFailure failure = ReadFailure::None;
  bool close = false;    // close after the current response
  bool closing = false;  // write side shut, discarding input until the client closes
  Clock::time_point closing_until;
  size_t served = 0;

  void start_request(Clock::time_point now, double request_timeout);
  // Drops consumed bytes and the state of the answered request; the next may already be in buf.
  void next_request();
  // True once buf holds a whole head and min(Content-Length, prebuffer) body bytes (at once for other
  // framings and for bodies over max_body, which are refused unread).
  bool request_ready(size_t prebuffer, int64_t max_body);
  // Bytes of an unfinished head past the limit (the head end not found in the first `limit` bytes).
  bool head_too_large(size_t limit) const;
};

// The stream a worker hands to httplib: reads come from buf, then from the socket until the request's
// deadline or byte budget; writes wait at most write_timeout per slice of progress.
class ConnectionStream : public httplib::Stream {
 public:
  // `waiting`: workers now waiting for request bytes, shared by all streams.
  ConnectionStream(Connection& c, const ConnectionLimits& limits, const std::atomic<bool>& stopping,
                   std::atomic<int64_t>& waiting)
      : c_(c), limits_(limits), stopping_(stopping), waiting_(waiting) {}
  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return c_.fd; }

 private:
  bool fill();
  bool wait_readable();  // until bytes, the deadline, shutdown; false sets c_.failure (or the socket broke)
  Connection& c_;
  const ConnectionLimits& limits_;
  const std::atomic<bool>& stopping_;
  std::atomic<int64_t>& waiting_;
};

// The peer closed its side or the socket broke (a pending request's bytes do not count as closed).
bool peer_closed(int fd);

// A whole HTTP response with a JSON error body and Connection: close, for refusals outside httplib.
std::string canned_response(int status, const std::string& type, const std::string& message);

}  // namespace bytelm::serve
