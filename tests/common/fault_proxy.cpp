// The fault-injecting proxy for registry tests: plain sockets, one thread per connection,
// HTTP/1.1 with one exchange per connection (Connection: close both ways).
// SPDX-License-Identifier: Apache-2.0
#include "common/fault_proxy.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <regex>
#include <set>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace ferry::test {

namespace {

using namespace std::chrono_literals;

constexpr std::size_t k_head_limit = 64 * 1024;             // request or answer head
constexpr std::size_t k_piece = 64 * 1024;                  // bytes moved per send
constexpr std::uint64_t k_chunked_limit = 64ull << 20;      // decoded chunked bodies are held whole
constexpr auto k_io_timeout = 30s;                          // a silent peer: give up the exchange
constexpr auto k_settle_timeout = 5s;                       // requests() waiting for exchanges
constexpr auto k_accept_poll = 200ms;                       // how often the acceptor reaps threads

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim(std::string_view text) {
  const auto start = text.find_first_not_of(" \t");
  if (start == std::string_view::npos) return {};
  return text.substr(start, text.find_last_not_of(" \t") - start + 1);
}

std::optional<std::uint64_t> to_number(std::string_view text, int base = 10) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

using Headers = std::vector<std::pair<std::string, std::string>>;

const std::string* find_header(const Headers& headers, std::string_view lower_name) {
  for (const auto& [name, value] : headers) {
    if (lower(name) == lower_name) return &value;
  }
  return nullptr;
}

// A message head: the first line and the header fields with their names as sent.
struct Head {
  std::string first_line;
  Headers headers;
};

std::optional<Head> parse_head(const std::string& text) {
  Head head;
  std::size_t pos = 0;
  bool first = true;
  while (pos < text.size()) {
    std::size_t end = text.find("\r\n", pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line(text.data() + pos, end - pos);
    pos = end + 2;
    if (first) {
      head.first_line = std::string(line);
      first = false;
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    head.headers.emplace_back(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
  }
  if (head.first_line.empty()) return std::nullopt;
  return head;
}

// How a body is delimited (RFC 9112 section 6).
struct Framing {
  enum class Kind { none, length, chunked, until_close } kind = Kind::none;
  std::uint64_t length = 0;
};

std::optional<Framing> request_framing(const Headers& headers) {
  if (const std::string* te = find_header(headers, "transfer-encoding")) {
    if (lower(*te).find("chunked") != std::string::npos) return Framing{Framing::Kind::chunked, 0};
  }
  if (const std::string* length = find_header(headers, "content-length")) {
    const auto n = to_number(*length);
    if (!n) return std::nullopt;
    return Framing{*n > 0 ? Framing::Kind::length : Framing::Kind::none, *n};
  }
  return Framing{};
}

std::optional<Framing> answer_framing(const std::string& method, int status, const Headers& headers) {
  if (method == "HEAD" || status / 100 == 1 || status == 204 || status == 304) return Framing{};
  if (const std::string* te = find_header(headers, "transfer-encoding")) {
    if (lower(*te).find("chunked") != std::string::npos) return Framing{Framing::Kind::chunked, 0};
  }
  if (const std::string* length = find_header(headers, "content-length")) {
    const auto n = to_number(*length);
    if (!n) return std::nullopt;
    return Framing{Framing::Kind::length, *n};
  }
  return Framing{Framing::Kind::until_close, 0};
}

const char* reason_phrase(int status) {
  switch (status) {
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 408:
    return "Request Timeout";
  case 429:
    return "Too Many Requests";
  case 500:
    return "Internal Server Error";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  default:
    return "Error";
  }
}

// A connected socket with a read buffer: heads are read up to their blank line, the rest
// stays buffered for the body.
class Stream {
public:
  explicit Stream(int fd) noexcept : m_fd(fd) {}

  // The head up to (without) the blank line; nullopt at EOF, on error, past k_head_limit,
  // or when the first byte cannot start an HTTP message (a TLS ClientHello starts with 0x16).
  std::optional<std::string> read_head() {
    for (;;) {
      if (!m_buffer.empty() && (m_buffer[0] < 'A' || m_buffer[0] > 'Z')) return std::nullopt;
      if (const auto end = m_buffer.find("\r\n\r\n"); end != std::string::npos) {
        std::string head = m_buffer.substr(0, end);
        m_buffer.erase(0, end + 4);
        return head;
      }
      if (m_buffer.size() > k_head_limit || !fill()) return std::nullopt;
    }
  }

  // Up to `max` bytes, buffered ones first; empty at EOF or on error.
  std::string_view read_some(std::size_t max) {
    if (m_buffer.empty() && !fill()) return {};
    m_piece = m_buffer.substr(0, std::min(max, m_buffer.size()));
    m_buffer.erase(0, m_piece.size());
    return m_piece;
  }

  // One CRLF-terminated line without its CRLF (chunked framing).
  std::optional<std::string> read_line() {
    for (;;) {
      if (const auto end = m_buffer.find("\r\n"); end != std::string::npos) {
        std::string line = m_buffer.substr(0, end);
        m_buffer.erase(0, end + 2);
        return line;
      }
      if (m_buffer.size() > k_head_limit || !fill()) return std::nullopt;
    }
  }

  bool read_exact(std::string& out, std::uint64_t n) {
    while (n > 0) {
      const std::string_view piece = read_some(static_cast<std::size_t>(std::min<std::uint64_t>(n, k_piece)));
      if (piece.empty()) return false;
      out.append(piece);
      n -= piece.size();
    }
    return true;
  }

  bool write(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(m_fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

private:
  bool fill() {
    char buffer[k_piece];
    for (;;) {
      const ssize_t n = ::recv(m_fd, buffer, sizeof buffer, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      m_buffer.append(buffer, static_cast<std::size_t>(n));
      return true;
    }
  }

  int m_fd;
  std::string m_buffer;
  std::string m_piece;
};

// A chunked body, decoded whole (trailers dropped); nullopt when malformed or too large.
std::optional<std::string> read_chunked(Stream& in) {
  std::string body;
  for (;;) {
    const auto line = in.read_line();
    if (!line) return std::nullopt;
    const std::string_view size_text = trim(std::string_view(*line).substr(0, line->find(';')));
    const auto size = to_number(size_text, 16);
    if (!size || body.size() + *size > k_chunked_limit) return std::nullopt;
    if (*size == 0) break;
    if (!in.read_exact(body, *size)) return std::nullopt;
    const auto crlf = in.read_line();
    if (!crlf || !crlf->empty()) return std::nullopt;
  }
  for (;;) { // trailer fields, up to the blank line
    const auto line = in.read_line();
    if (!line) return std::nullopt;
    if (line->empty()) return body;
  }
}

// Passes answer body bytes on to the client, cutting or flipping a byte as the rule says.
class BodyWriter {
public:
  BodyWriter(Stream& to, Fault fault, std::uint64_t offset, std::optional<std::uint64_t> total)
      : m_to(to), m_fault(fault), m_offset(offset) {
    if (fault == Fault::corrupt && total) {
      m_offset = *total == 0 ? std::numeric_limits<std::uint64_t>::max() : std::min(offset, *total - 1);
    }
  }

  // False once nothing more may be sent: the cut is reached or the client went away.
  bool write(std::string_view piece) {
    bool cut = false;
    if (m_fault == Fault::cut && m_sent + piece.size() >= m_offset) {
      piece = piece.substr(0, static_cast<std::size_t>(m_offset - m_sent));
      cut = true;
    }
    if (m_fault == Fault::corrupt && m_offset >= m_sent && m_offset < m_sent + piece.size()) {
      m_copy.assign(piece);
      m_copy[static_cast<std::size_t>(m_offset - m_sent)] ^= 0x5a;
      piece = m_copy;
    }
    if (!m_to.write(piece)) return false;
    m_sent += piece.size();
    return !cut;
  }

  std::uint64_t sent() const noexcept { return m_sent; }

private:
  Stream& m_to;
  Fault m_fault;
  std::uint64_t m_offset;
  std::uint64_t m_sent = 0;
  std::string m_copy;
};

void set_timeouts(int fd) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(std::chrono::seconds(k_io_timeout).count());
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

std::string error_body(int status) {
  const char* code = status == 429 ? "TOOMANYREQUESTS" : status == 503 ? "UNAVAILABLE" : "UNKNOWN";
  return std::string(R"({"errors":[{"code":")") + code +
         R"(","message":"fault injected by the test proxy","detail":null}]})";
}

} // namespace

FaultRule fail_with(std::string method, std::string path, int status, int times) {
  FaultRule rule;
  rule.method = std::move(method);
  rule.path = std::move(path);
  rule.fault = Fault::status;
  rule.status = status;
  rule.times = times;
  return rule;
}

FaultRule rate_limit(std::string method, std::string path, std::chrono::seconds retry_after, int times) {
  FaultRule rule = fail_with(std::move(method), std::move(path), 429, times);
  rule.retry_after = std::to_string(retry_after.count());
  return rule;
}

FaultRule cut_after(std::string method, std::string path, std::uint64_t body_bytes, int times) {
  FaultRule rule = fail_with(std::move(method), std::move(path), 0, times);
  rule.fault = Fault::cut;
  rule.offset = body_bytes;
  return rule;
}

FaultRule stall_for(std::string method, std::string path, std::chrono::milliseconds stall, int times) {
  FaultRule rule = fail_with(std::move(method), std::move(path), 0, times);
  rule.fault = Fault::stall;
  rule.stall = stall;
  return rule;
}

FaultRule corrupt_at(std::string method, std::string path, std::uint64_t offset, int times) {
  FaultRule rule = fail_with(std::move(method), std::move(path), 0, times);
  rule.fault = Fault::corrupt;
  rule.offset = offset;
  return rule;
}

std::optional<std::string> ProxiedRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

struct FaultProxy::State {
  struct Rule {
    FaultRule rule;
    std::regex path;
    int used = 0;
  };

  std::string upstream_host;      // "127.0.0.1:PORT": the Host header upstream
  std::uint16_t upstream_port = 0;
  std::uint16_t port = 0;
  int listen_fd = -1;
  int wake[2] = {-1, -1};         // a byte written here wakes the acceptor
  std::thread acceptor;

  mutable std::mutex mutex;
  mutable std::condition_variable changed; // stopping, or an exchange finished
  bool stopping = false;
  std::vector<Rule> rules;
  std::vector<ProxiedRequest> records;
  std::uint64_t epoch = 0;        // bumped by clear_requests(): older indexes are stale
  std::size_t total_requests = 0;
  std::size_t max_requests = FaultProxy::k_max_requests;
  std::size_t active = 0;         // connections being served
  std::set<int> open_fds;         // shut down when stopping, so blocked calls return
  std::map<std::uint64_t, std::thread> workers;
  std::vector<std::uint64_t> finished;
  std::uint64_t next_worker = 0;

  void accept_loop();
  void reap();
  void serve(int client_fd);
  int connect_upstream();
  void close_fd(int fd);
  std::size_t record(ProxiedRequest request, std::uint64_t& record_epoch);
  void update(std::size_t index, std::uint64_t record_epoch, int status, Fault fault, std::uint64_t body_bytes);
  std::optional<FaultRule> match(const std::string& method, const std::string& target);
  bool wait_stall(std::chrono::milliseconds stall);
  bool wait_idle(std::unique_lock<std::mutex>& lock) const;
};

void FaultProxy::State::close_fd(int fd) {
  std::lock_guard lock(mutex);
  open_fds.erase(fd);
  ::close(fd);
}

void FaultProxy::State::accept_loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
    const int rc = ::poll(fds, 2, static_cast<int>(k_accept_poll.count()));
    reap();
    if (rc <= 0 || !(fds[0].revents & POLLIN)) {
      std::lock_guard lock(mutex);
      if (stopping) return;
      continue;
    }
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(mutex);
    if (stopping) {
      ::close(fd);
      return;
    }
    open_fds.insert(fd);
    ++active;
    const std::uint64_t id = next_worker++;
    workers.emplace(id, std::thread([this, fd, id] {
      serve(fd);
      close_fd(fd);
      std::lock_guard done(mutex);
      --active;
      finished.push_back(id);
      changed.notify_all();
    }));
  }
}

void FaultProxy::State::reap() {
  std::vector<std::thread> done;
  {
    std::lock_guard lock(mutex);
    for (const auto id : finished) {
      if (auto it = workers.find(id); it != workers.end()) {
        done.push_back(std::move(it->second));
        workers.erase(it);
      }
    }
    finished.clear();
  }
  for (auto& t : done) t.join();
}

int FaultProxy::State::connect_upstream() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  {
    std::lock_guard lock(mutex);
    open_fds.insert(fd);
    if (stopping) ::shutdown(fd, SHUT_RDWR);
  }
  set_timeouts(fd);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(upstream_port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    close_fd(fd);
    return -1;
  }
  return fd;
}

std::size_t FaultProxy::State::record(ProxiedRequest request, std::uint64_t& record_epoch) {
  std::lock_guard lock(mutex);
  record_epoch = epoch;
  records.push_back(std::move(request));
  return records.size() - 1;
}

void FaultProxy::State::update(std::size_t index, std::uint64_t record_epoch, int status, Fault fault,
                               std::uint64_t body_bytes) {
  std::lock_guard lock(mutex);
  if (record_epoch != epoch || index >= records.size()) return;
  records[index].status = status;
  records[index].fault = fault;
  records[index].body_bytes = body_bytes;
}

std::optional<FaultRule> FaultProxy::State::match(const std::string& method, const std::string& target) {
  std::lock_guard lock(mutex);
  for (auto& r : rules) {
    if (r.rule.times != k_every_time && r.used >= r.rule.times) continue;
    if (!r.rule.method.empty() && r.rule.method != method) continue;
    if (!std::regex_search(target, r.path)) continue;
    ++r.used;
    return r.rule;
  }
  return std::nullopt;
}

bool FaultProxy::State::wait_stall(std::chrono::milliseconds stall) {
  std::unique_lock lock(mutex);
  return !changed.wait_for(lock, stall, [this] { return stopping; });
}

bool FaultProxy::State::wait_idle(std::unique_lock<std::mutex>& lock) const {
  return changed.wait_for(lock, k_settle_timeout, [this] { return active == 0; });
}

// One exchange: read the request, apply the first matching rule, forward, relay the answer.
void FaultProxy::State::serve(int client_fd) {
  set_timeouts(client_fd);
  Stream client(client_fd);
  const auto head_text = client.read_head();
  if (!head_text) {
    // What Go's servers answer to a TLS handshake, so that clients trying HTTPS first
    // (skopeo with --tls-verify=false) fall back to plain HTTP at once.
    client.write("HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n");
    return;
  }
  const auto head = parse_head(*head_text);
  const auto first_space = head ? head->first_line.find(' ') : std::string::npos;
  const auto second_space = head ? head->first_line.find(' ', first_space + 1) : std::string::npos;
  const auto framing = head ? request_framing(head->headers) : std::nullopt;
  if (!head || second_space == std::string::npos || !framing) {
    client.write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return;
  }
  ProxiedRequest seen;
  seen.method = head->first_line.substr(0, first_space);
  seen.target = head->first_line.substr(first_space + 1, second_space - first_space - 1);
  for (const auto& [name, value] : head->headers) seen.headers.emplace_back(lower(name), value);
  seen.arrived = std::chrono::steady_clock::now();
  const std::string method = seen.method;
  const std::string target = seen.target;
  std::uint64_t record_epoch = 0;
  const std::size_t index = record(std::move(seen), record_epoch);

  bool over_limit = false;
  {
    std::lock_guard lock(mutex);
    over_limit = ++total_requests > max_requests;
  }
  std::optional<FaultRule> rule = match(method, target);
  if (over_limit) {
    rule = fail_with({}, {}, 400);
  }
  const Fault fault = rule ? rule->fault : Fault::none;

  // The client waits for 100 Continue before sending a body it announced with Expect
  // (curl does so for larger uploads); upstream gets no Expect.
  if (const std::string* expect = find_header(head->headers, "expect");
      expect && lower(*expect) == "100-continue" && framing->kind != Framing::Kind::none) {
    if (!client.write("HTTP/1.1 100 Continue\r\n\r\n")) return;
  }

  // The request body: a chunked one is decoded whole here; a sized one is streamed below.
  std::string chunked_body;
  if (framing->kind == Framing::Kind::chunked) {
    auto body = read_chunked(client);
    if (!body) return;
    chunked_body = std::move(*body);
  }

  // Bytes of a sized request body not yet read from the client.
  std::uint64_t body_left = framing->kind == Framing::Kind::length ? framing->length : 0;
  // Answers `status` itself, after reading what is left of the request body (so closing
  // the socket does not reset the connection before the client reads the answer).
  const auto answer_fault = [&](int status, const std::string& retry_after) {
    while (body_left > 0) {
      const auto piece = client.read_some(static_cast<std::size_t>(std::min<std::uint64_t>(body_left, k_piece)));
      if (piece.empty()) return;
      body_left -= piece.size();
    }
    const std::string body = error_body(status);
    std::string answer = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n" +
                         "Content-Type: application/json; charset=utf-8\r\n" +
                         "Content-Length: " + std::to_string(body.size()) + "\r\n";
    if (!retry_after.empty()) answer += "Retry-After: " + retry_after + "\r\n";
    answer += "Connection: close\r\n\r\n";
    const bool with_body = method != "HEAD";
    if (with_body) answer += body;
    update(index, record_epoch, status, rule ? rule->fault : Fault::none, with_body ? body.size() : 0);
    client.write(answer);
  };

  if (fault == Fault::status) {
    answer_fault(rule->status, rule->retry_after);
    return;
  }
  if (fault == Fault::stall && !wait_stall(rule->stall)) return;

  const int upstream_fd = connect_upstream();
  if (upstream_fd < 0) {
    answer_fault(502, {});
    return;
  }
  struct Closer {
    State& state;
    int fd;
    ~Closer() { state.close_fd(fd); }
  } closer{*this, upstream_fd};
  Stream upstream(upstream_fd);

  // Forward the request: hop-by-hop fields dropped, Host rewritten, the body's length restated.
  std::string request = head->first_line + "\r\n";
  static const std::set<std::string> dropped_request = {"host",    "connection", "keep-alive", "proxy-connection",
                                                        "te",      "trailer",    "upgrade",    "expect",
                                                        "transfer-encoding", "content-length"};
  for (const auto& [name, value] : head->headers) {
    if (!dropped_request.count(lower(name))) request += name + ": " + value + "\r\n";
  }
  request += "Host: " + upstream_host + "\r\n";
  if (framing->kind == Framing::Kind::length) {
    request += "Content-Length: " + std::to_string(framing->length) + "\r\n";
  } else if (framing->kind == Framing::Kind::chunked) {
    request += "Content-Length: " + std::to_string(chunked_body.size()) + "\r\n";
  } else if (find_header(head->headers, "content-length")) {
    request += "Content-Length: 0\r\n";
  }
  request += "Connection: close\r\n\r\n";
  if (!upstream.write(request)) return;
  if (framing->kind == Framing::Kind::chunked && !upstream.write(chunked_body)) return;
  while (body_left > 0) {
    const auto piece = client.read_some(static_cast<std::size_t>(std::min<std::uint64_t>(body_left, k_piece)));
    if (piece.empty() || !upstream.write(piece)) return;
    body_left -= piece.size();
  }

  // The answer's head (interim 1xx answers skipped).
  std::optional<Head> answer;
  int status = 0;
  for (;;) {
    const auto text = upstream.read_head();
    if (!text) {
      answer_fault(502, {});
      return;
    }
    answer = parse_head(*text);
    const auto space = answer ? answer->first_line.find(' ') : std::string::npos;
    const auto code = space == std::string::npos ? std::nullopt
                                                 : to_number(std::string_view(answer->first_line).substr(space + 1, 3));
    if (!code) {
      answer_fault(502, {});
      return;
    }
    status = static_cast<int>(*code);
    if (status / 100 != 1) break;
  }
  const auto body_framing = answer_framing(method, status, answer->headers);
  if (!body_framing) {
    answer_fault(502, {});
    return;
  }
  std::string decoded;
  if (body_framing->kind == Framing::Kind::chunked) {
    auto body = read_chunked(upstream);
    if (!body) {
      answer_fault(502, {});
      return;
    }
    decoded = std::move(*body);
  }

  std::string reply = answer->first_line + "\r\n";
  static const std::set<std::string> dropped_answer = {"connection", "keep-alive", "transfer-encoding"};
  const std::string upstream_origin = "http://" + upstream_host;
  const std::string proxy_origin = "http://127.0.0.1:" + std::to_string(port);
  for (const auto& [name, value] : answer->headers) {
    const std::string key = lower(name);
    if (dropped_answer.count(key)) continue;
    if (key == "content-length" && body_framing->kind == Framing::Kind::chunked) continue;
    std::string v = value;
    if (key == "location" && v.rfind(upstream_origin, 0) == 0 &&
        (v.size() == upstream_origin.size() || v[upstream_origin.size()] == '/')) {
      v = proxy_origin + v.substr(upstream_origin.size());
    }
    reply += name + ": " + v + "\r\n";
  }
  if (body_framing->kind == Framing::Kind::chunked) {
    reply += "Content-Length: " + std::to_string(decoded.size()) + "\r\n";
  }
  reply += "Connection: close\r\n\r\n";
  update(index, record_epoch, status, fault, 0);
  if (!client.write(reply)) return;

  std::optional<std::uint64_t> total;
  if (body_framing->kind == Framing::Kind::length) total = body_framing->length;
  if (body_framing->kind == Framing::Kind::chunked) total = decoded.size();
  BodyWriter writer(client, fault, rule ? rule->offset : 0, total);
  switch (body_framing->kind) {
  case Framing::Kind::none:
    break;
  case Framing::Kind::chunked:
    for (std::size_t pos = 0; pos < decoded.size(); pos += k_piece) {
      if (!writer.write(std::string_view(decoded).substr(pos, k_piece))) break;
    }
    break;
  case Framing::Kind::length:
    for (std::uint64_t left = body_framing->length; left > 0;) {
      const auto piece = upstream.read_some(static_cast<std::size_t>(std::min<std::uint64_t>(left, k_piece)));
      if (piece.empty() || !writer.write(piece)) break;
      left -= piece.size();
    }
    break;
  case Framing::Kind::until_close:
    for (;;) {
      const auto piece = upstream.read_some(k_piece);
      if (piece.empty() || !writer.write(piece)) break;
    }
    break;
  }
  update(index, record_epoch, status, fault, writer.sent());
}

FaultProxy::FaultProxy(const std::string& upstream) : m_state(std::make_unique<State>()) {
  State& s = *m_state;
  const auto colon = upstream.rfind(':');
  const std::string host = colon == std::string::npos ? std::string() : upstream.substr(0, colon);
  const std::uint64_t port =
      colon == std::string::npos ? 0 : to_number(std::string_view(upstream).substr(colon + 1)).value_or(0);
  REQUIRE_MESSAGE((host == "127.0.0.1" || host == "localhost"), "FaultProxy forwards to loopback only, not " << upstream);
  REQUIRE_MESSAGE((port > 0 && port < 65536), "FaultProxy: no port in " << upstream);
  s.upstream_host = upstream;
  s.upstream_port = static_cast<std::uint16_t>(port);

  s.listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE_MESSAGE(s.listen_fd >= 0, "socket(): " << std::string(std::strerror(errno)));
  const int yes = 1;
  ::setsockopt(s.listen_fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  const bool listening = ::bind(s.listen_fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0 &&
                         ::listen(s.listen_fd, 128) == 0 &&
                         ::getsockname(s.listen_fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  if (!listening) {
    const std::string reason = std::strerror(errno);
    ::close(s.listen_fd);
    FAIL("FaultProxy: cannot listen on 127.0.0.1: " << reason);
  }
  s.port = ntohs(address.sin_port);
  if (::pipe2(s.wake, O_CLOEXEC) != 0) {
    ::close(s.listen_fd);
    FAIL("FaultProxy: pipe2(): " << std::string(std::strerror(errno)));
  }
  s.acceptor = std::thread([&s] { s.accept_loop(); });
}

FaultProxy::~FaultProxy() {
  State& s = *m_state;
  {
    std::lock_guard lock(s.mutex);
    s.stopping = true;
    for (const int fd : s.open_fds) ::shutdown(fd, SHUT_RDWR);
  }
  s.changed.notify_all();
  const char byte = 0;
  (void)!::write(s.wake[1], &byte, 1);
  s.acceptor.join();
  std::map<std::uint64_t, std::thread> workers;
  {
    std::lock_guard lock(s.mutex);
    workers.swap(s.workers);
  }
  for (auto& [id, worker] : workers) worker.join();
  ::close(s.listen_fd);
  ::close(s.wake[0]);
  ::close(s.wake[1]);
}

std::uint16_t FaultProxy::port() const noexcept { return m_state->port; }

std::string FaultProxy::host() const { return "127.0.0.1:" + std::to_string(m_state->port); }

std::string FaultProxy::url() const { return "http://" + host(); }

void FaultProxy::add_rule(FaultRule rule) {
  std::regex path;
  try {
    path = std::regex(rule.path, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    FAIL("FaultProxy: invalid path pattern \"" << rule.path << "\": " << e.what());
  }
  std::lock_guard lock(m_state->mutex);
  m_state->rules.push_back(State::Rule{std::move(rule), std::move(path), 0});
}

void FaultProxy::clear_rules() {
  std::lock_guard lock(m_state->mutex);
  m_state->rules.clear();
}

std::vector<ProxiedRequest> FaultProxy::requests() const {
  std::unique_lock lock(m_state->mutex);
  m_state->wait_idle(lock);
  return m_state->records;
}

std::size_t FaultProxy::count(const std::string& method, const std::string& path, std::optional<Fault> fault) const {
  const std::regex pattern(path, std::regex::ECMAScript);
  std::size_t n = 0;
  for (const auto& r : requests()) {
    if ((method.empty() || r.method == method) && std::regex_search(r.target, pattern) && (!fault || r.fault == *fault)) {
      ++n;
    }
  }
  return n;
}

void FaultProxy::clear_requests() {
  std::unique_lock lock(m_state->mutex);
  m_state->wait_idle(lock);
  m_state->records.clear();
  ++m_state->epoch;
}

void FaultProxy::set_request_limit(std::size_t limit) {
  std::lock_guard lock(m_state->mutex);
  m_state->max_requests = limit;
}

} // namespace ferry::test
