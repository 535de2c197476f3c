// http_client.h — a tiny blocking HTTP/1.1 client over a loopback socket for the server tests: whole
// responses (Content-Length or chunked), or a response read event by event with the option to hang up
// mid-stream, and raw bytes for malformed requests. No library: the tests see exactly what is on the wire.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace bytelm_test {

struct HttpResponse {
  int status = 0;                              // 0: no response (connection failed or timed out)
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

class HttpConnection {
 public:
  explicit HttpConnection(int port, int timeout_ms = 60000) : timeout_ms_(timeout_ms) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~HttpConnection() { hang_up(); }
  bool ok() const { return fd_ >= 0; }
  void shutdown_write() {
    if (fd_ >= 0) shutdown(fd_, SHUT_WR);
  }
  void hang_up() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  bool send_raw(const std::string& bytes) {
    size_t sent = 0;
    while (fd_ >= 0 && sent < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += size_t(n);
    }
    return sent == bytes.size();
  }
  void send_request(const std::string& method, const std::string& path, const std::string& body,
                    const std::vector<std::string>& headers = {}) {
    std::string r = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
    for (const auto& h : headers) r += h + "\r\n";
    if (method == "POST" || !body.empty())
      r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    send_raw(r + "\r\n" + body);
  }
  // Reads the status line and headers.
  bool read_head(HttpResponse& res) {
    for (;;) {
      size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        std::string head = buf_.substr(0, end);
        buf_.erase(0, end + 4);
        res.status = std::atoi(head.substr(head.find(' ') + 1, 3).c_str());
        size_t pos = head.find("\r\n");
        while (pos != std::string::npos) {
          size_t next = head.find("\r\n", pos + 2);
          std::string line = head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
          size_t colon = line.find(':');
          if (colon != std::string::npos) {
            std::string name = line.substr(0, colon), value = line.substr(colon + 1);
            std::transform(name.begin(), name.end(), name.begin(),
                           [](unsigned char c) { return char(std::tolower(c)); });
            value.erase(0, value.find_first_not_of(' '));
            res.headers[name] = value;
          }
          pos = next;
        }
        chunked_ = res.headers["transfer-encoding"] == "chunked";
        return true;
      }
      if (!fill()) return false;
    }
  }
  // Next piece of the body (a chunk, or whatever arrived for a Content-Length/close body); false at the end.
  bool read_body_piece(std::string& piece) {
    piece.clear();
    if (!chunked_) {
      if (buf_.empty() && !fill()) return false;
      piece.swap(buf_);
      return true;
    }
    for (;;) {
      size_t eol = buf_.find("\r\n");
      if (eol != std::string::npos) {
        const size_t n = std::stoul(buf_.substr(0, eol), nullptr, 16);
        if (n == 0) return false;
        if (buf_.size() >= eol + 2 + n + 2) {
          piece = buf_.substr(eol + 2, n);
          buf_.erase(0, eol + 2 + n + 2);
          return true;
        }
      }
      if (!fill()) return false;
    }
  }

 private:
  bool fill() {
    if (fd_ < 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms_) <= 0) return false;
    char tmp[65536];
    ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, size_t(n));
    return true;
  }
  int fd_ = -1;
  int timeout_ms_;
  std::string buf_;
  bool chunked_ = false;
};

inline HttpResponse http(int port, const std::string& method, const std::string& path, const std::string& body = "",
                         const std::vector<std::string>& headers = {}) {
  HttpConnection c(port);
  HttpResponse res;
  if (!c.ok()) return res;
  c.send_request(method, path, body, headers);
  if (!c.read_head(res)) return res;
  std::string piece;
  while (c.read_body_piece(piece)) res.body += piece;
  return res;
}

// Raw bytes on a fresh connection (optionally half-closed after them), then one response: its head and its
// body up to Content-Length, the last chunk, or the server closing. status 0: no response.
inline HttpResponse raw_http(int port, const std::string& bytes, int timeout_ms = 10000, bool half_close = false) {
  HttpConnection c(port, timeout_ms);
  HttpResponse res;
  if (!c.ok()) return res;
  c.send_raw(bytes);
  if (half_close) c.shutdown_write();
  if (!c.read_head(res)) return res;
  const size_t want = res.headers.count("content-length") ? std::stoul(res.headers["content-length"]) : size_t(-1);
  std::string piece;
  while (res.body.size() < want && c.read_body_piece(piece)) res.body += piece;
  return res;
}

// Reads a server-sent-event stream: on_event(data) for each "data: ..." event, until it returns false
// (then the connection is closed at once) or the stream ends. Returns the response head.
inline HttpResponse sse(int port, const std::string& body, const std::function<bool(const std::string&)>& on_event,
                        const std::vector<std::string>& headers = {}) {
  HttpConnection c(port);
  HttpResponse res;
  if (!c.ok()) return res;
  c.send_request("POST", "/v1/completions", body, headers);
  if (!c.read_head(res)) return res;
  std::string pending, piece;
  while (c.read_body_piece(piece)) {
    pending += piece;
    res.body += piece;
    size_t cut;
    while ((cut = pending.find("\n\n")) != std::string::npos) {
      std::string event = pending.substr(0, cut);
      pending.erase(0, cut + 2);
      if (event.rfind("data: ", 0) == 0 && !on_event(event.substr(6))) {
        c.hang_up();
        return res;
      }
    }
  }
  return res;
}

}  // namespace bytelm_test
