// The misbehaving HTTP(S) server for network tests: plain sockets or OpenSSL, one thread
// per connection, one request per connection; upstream forwarding with cpp-httplib.
// SPDX-License-Identifier: Apache-2.0
#include "common/hostile_server.hpp"

#include "common/registry_fixture.hpp"
#include "common/test_dir.hpp"

#include <doctest/doctest.h>
#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <set>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace ferry::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t k_head_limit = 64 * 1024;
constexpr std::size_t k_body_limit = 64u << 20;
constexpr auto k_io_timeout = 30s;
constexpr auto k_settle_timeout = 5s;
constexpr auto k_accept_poll = 200ms;

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

const char* reason_phrase(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 206:
    return "Partial Content";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 307:
    return "Temporary Redirect";
  case 308:
    return "Permanent Redirect";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 404:
    return "Not Found";
  case 500:
    return "Internal Server Error";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  default:
    return "Status";
  }
}

// The OpenSSL error queue, drained, as one line.
std::string openssl_errors() {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    text += (text.empty() ? "" : "; ") + std::string(buffer);
  }
  return text.empty() ? std::string("no OpenSSL error") : text;
}

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const noexcept { SSL_free(ssl); }
};

} // namespace

std::optional<std::string> HostileRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return std::nullopt;
}

std::string HostileRequest::path() const { return target.substr(0, target.find('?')); }

std::optional<std::string> HostileAnswer::header(std::string_view name) const {
  const std::string wanted = lower(name);
  for (const auto& [key, value] : headers) {
    if (lower(key) == wanted) return value;
  }
  return std::nullopt;
}

void HostileAnswer::set_header(const std::string& name, const std::string& value) {
  remove_header(name);
  headers.emplace_back(name, value);
}

void HostileAnswer::remove_header(std::string_view name) {
  const std::string wanted = lower(name);
  std::erase_if(headers, [&](const auto& h) { return lower(h.first) == wanted; });
}

TestCa make_test_ca(const fs::path& dir, const std::string& name) {
  fs::create_directories(dir);
  TestCa ca{dir / (name + ".pem"), dir / (name + ".key")};
  must_run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            ca.key_file.string(), "-out", ca.cert_file.string(), "-days", "1", "-subj", "/CN=" + name, "-addext",
            "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
  return ca;
}

TlsIdentity make_server_identity(const fs::path& dir, const std::string& name, const TestCa& ca,
                                 const std::string& san) {
  fs::create_directories(dir);
  TlsIdentity id{dir / (name + ".pem"), dir / (name + ".key")};
  const fs::path csr = dir / (name + ".csr");
  const fs::path ext = dir / (name + ".ext");
  must_run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            id.key_file.string(), "-out", csr.string(), "-subj", "/CN=" + name});
  write_file(ext, "subjectAltName = " + san + "\nbasicConstraints = critical, CA:FALSE\n"
                  "keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n");
  must_run({"openssl", "x509", "-req", "-in", csr.string(), "-CA", ca.cert_file.string(), "-CAkey",
            ca.key_file.string(), "-CAcreateserial", "-out", id.cert_file.string(), "-days", "1", "-sha256",
            "-extfile", ext.string()});
  return id;
}

TlsIdentity make_self_signed_identity(const fs::path& dir, const std::string& name, const std::string& san) {
  fs::create_directories(dir);
  TlsIdentity id{dir / (name + ".pem"), dir / (name + ".key")};
  must_run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            id.key_file.string(), "-out", id.cert_file.string(), "-days", "1", "-subj", "/CN=" + name, "-addext",
            "subjectAltName=" + san, "-addext", "extendedKeyUsage=serverAuth"});
  return id;
}

// One accepted connection: the socket, its TLS session (or none) and a read buffer.
struct HostileExchange::Connection {
  int fd = -1;
  std::unique_ptr<SSL, SslFree> ssl;
  std::string buffer;

  bool fill() {
    char data[16384];
    for (;;) {
      int n = 0;
      if (ssl) {
        n = SSL_read(ssl.get(), data, sizeof data);
      } else {
        n = static_cast<int>(::recv(fd, data, sizeof data, 0));
        if (n < 0 && errno == EINTR) continue;
      }
      if (n <= 0) return false;
      buffer.append(data, static_cast<std::size_t>(n));
      return true;
    }
  }

  bool write(std::string_view bytes) {
    while (!bytes.empty()) {
      int n = 0;
      const int size = static_cast<int>(std::min<std::size_t>(bytes.size(), 1u << 20));
      if (ssl) {
        n = SSL_write(ssl.get(), bytes.data(), size);
      } else {
        n = static_cast<int>(::send(fd, bytes.data(), static_cast<std::size_t>(size), MSG_NOSIGNAL));
        if (n < 0 && errno == EINTR) continue;
      }
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  std::optional<std::string> read_line() {
    for (;;) {
      if (const auto end = buffer.find("\r\n"); end != std::string::npos) {
        std::string line = buffer.substr(0, end);
        buffer.erase(0, end + 2);
        return line;
      }
      if (buffer.size() > k_head_limit || !fill()) return std::nullopt;
    }
  }

  bool read_exact(std::string& out, std::uint64_t n) {
    while (buffer.size() < n) {
      if (!fill()) return false;
    }
    out.append(buffer, 0, static_cast<std::size_t>(n));
    buffer.erase(0, static_cast<std::size_t>(n));
    return true;
  }
};

struct HostileServer::State {
  HostileHandler handler;
  std::unique_ptr<SSL_CTX, SslCtxFree> tls;
  std::uint16_t port = 0;
  int listen_fd = -1;
  int wake[2] = {-1, -1};
  std::thread acceptor;

  mutable std::mutex mutex;
  mutable std::condition_variable changed; // stopping, or an exchange finished
  bool stopping = false;
  std::vector<HostileRequest> records;
  std::size_t active = 0;
  std::size_t accepted = 0;
  std::size_t tls_failures = 0;
  std::size_t plain_connections = 0;
  std::string last_tls_error;
  std::set<int> open_fds;
  std::map<std::uint64_t, std::thread> workers;
  std::vector<std::uint64_t> finished;
  std::uint64_t next_worker = 0;

  void accept_loop(HostileServer& server);
  void reap();
  void serve(HostileServer& server, int fd);
  std::optional<HostileRequest> read_request(HostileExchange::Connection& c);
  bool wait(std::chrono::milliseconds time) {
    std::unique_lock lock(mutex);
    return !changed.wait_for(lock, time, [this] { return stopping; });
  }
};

void HostileServer::State::accept_loop(HostileServer& server) {
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
    ++accepted;
    const std::uint64_t id = next_worker++;
    workers.emplace(id, std::thread([this, &server, fd, id] {
      serve(server, fd);
      std::lock_guard done(mutex);
      open_fds.erase(fd);
      ::close(fd);
      --active;
      finished.push_back(id);
      changed.notify_all();
    }));
  }
}

void HostileServer::State::reap() {
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

std::optional<HostileRequest> HostileServer::State::read_request(HostileExchange::Connection& c) {
  HostileRequest request;
  const auto first = c.read_line();
  if (!first) return std::nullopt;
  const auto space1 = first->find(' ');
  const auto space2 = first->find(' ', space1 == std::string::npos ? 0 : space1 + 1);
  if (space1 == std::string::npos || space2 == std::string::npos) return std::nullopt;
  request.method = first->substr(0, space1);
  request.target = first->substr(space1 + 1, space2 - space1 - 1);
  for (;;) {
    const auto line = c.read_line();
    if (!line) return std::nullopt;
    if (line->empty()) break;
    const auto colon = line->find(':');
    if (colon == std::string::npos || colon == 0) return std::nullopt;
    request.headers.emplace_back(lower(trim(std::string_view(*line).substr(0, colon))),
                                 std::string(trim(std::string_view(*line).substr(colon + 1))));
  }
  request.arrived = std::chrono::steady_clock::now();
  const auto te = request.header("transfer-encoding");
  const auto length = request.header("content-length");
  const bool chunked = te && lower(*te).find("chunked") != std::string::npos;
  if ((chunked || (length && length != "0")) && request.header("expect") &&
      lower(*request.header("expect")) == "100-continue") {
    if (!c.write("HTTP/1.1 100 Continue\r\n\r\n")) return std::nullopt;
  }
  if (chunked) {
    for (;;) {
      const auto size_line = c.read_line();
      if (!size_line) return std::nullopt;
      const auto size = to_number(trim(std::string_view(*size_line).substr(0, size_line->find(';'))), 16);
      if (!size || request.body.size() + *size > k_body_limit) return std::nullopt;
      if (*size == 0) break;
      if (!c.read_exact(request.body, *size)) return std::nullopt;
      const auto crlf = c.read_line();
      if (!crlf || !crlf->empty()) return std::nullopt;
    }
    for (;;) {
      const auto trailer = c.read_line();
      if (!trailer) return std::nullopt;
      if (trailer->empty()) break;
    }
  } else if (length) {
    const auto n = to_number(*length);
    if (!n || *n > k_body_limit || !c.read_exact(request.body, *n)) return std::nullopt;
  }
  return request;
}

void HostileServer::State::serve(HostileServer& server, int fd) {
  // OpenSSL writes to the socket with write(2): a client that went away must give EPIPE
  // here, not a SIGPIPE for the whole test program. A signal this thread raises
  // synchronously stays with it while blocked, and goes when the thread ends.
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(std::chrono::seconds(k_io_timeout).count());
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  HostileExchange::Connection connection;
  connection.fd = fd;
  if (tls) {
    unsigned char first = 0;
    ssize_t n = 0;
    do {
      n = ::recv(fd, &first, 1, MSG_PEEK);
    } while (n < 0 && errno == EINTR);
    if (n != 1) return;
    if (first != 0x16) { // not a TLS handshake record: a client trying plain HTTP
      std::lock_guard lock(mutex);
      ++plain_connections;
      return;
    }
    connection.ssl.reset(SSL_new(tls.get()));
    if (!connection.ssl || SSL_set_fd(connection.ssl.get(), fd) != 1 || SSL_accept(connection.ssl.get()) != 1) {
      const std::string reason = openssl_errors();
      std::lock_guard lock(mutex);
      ++tls_failures;
      last_tls_error = reason;
      return;
    }
  }
  try {
    auto request = read_request(connection);
    if (!request) return;
    {
      std::lock_guard lock(mutex);
      records.push_back(*request);
    }
    HostileExchange exchange(server, connection, std::move(*request));
    handler(exchange);
  } catch (...) {
    // An assertion that failed in a handler has been reported; the connection just ends.
  }
  if (connection.ssl) SSL_shutdown(connection.ssl.get());
  ERR_clear_error();
}

HostileAnswer HostileExchange::forward(const std::string& upstream, const HeaderList& extra) const {
  const auto colon = upstream.rfind(':');
  REQUIRE_MESSAGE(colon != std::string::npos, "HostileExchange::forward: no port in " << upstream);
  const int port = static_cast<int>(to_number(std::string_view(upstream).substr(colon + 1)).value_or(0));
  httplib::Client client(upstream.substr(0, colon), port);
  client.set_url_encode(false);
  client.set_follow_location(false);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(30, 0);
  client.set_write_timeout(30, 0);
  httplib::Request out;
  out.method = m_request.method;
  out.path = m_request.target;
  static const std::set<std::string> hop_by_hop = {"host",    "connection",        "keep-alive", "proxy-connection",
                                                   "te",      "trailer",           "upgrade",    "expect",
                                                   "content-length", "transfer-encoding"};
  const auto replaced = [&](const std::string& name) {
    return std::any_of(extra.begin(), extra.end(), [&](const auto& h) { return h.first == name; });
  };
  for (const auto& [name, value] : m_request.headers) {
    if (!hop_by_hop.count(name) && !replaced(name)) out.headers.emplace(name, value);
  }
  for (const auto& [name, value] : extra) out.headers.emplace(name, value);
  out.body = m_request.body;
  HostileAnswer answer;
  const httplib::Result result = client.send(out);
  if (!result) {
    answer.status = 502;
    answer.body = "upstream " + upstream + ": " + httplib::to_string(result.error());
    return answer;
  }
  answer.status = result->status;
  const std::string upstream_origin = "http://" + upstream;
  for (const auto& [name, value] : result->headers) {
    const std::string key = lower(name);
    if (key == "connection" || key == "keep-alive" || key == "transfer-encoding") continue;
    if (key == "content-length" && m_request.method != "HEAD") continue;
    std::string v = value;
    if (key == "location" && v.rfind(upstream_origin, 0) == 0) v = m_server.url() + v.substr(upstream_origin.size());
    answer.headers.emplace_back(name, v);
  }
  answer.body = result->body;
  return answer;
}

std::string HostileExchange::head_of(const HostileAnswer& answer) const {
  std::string head = "HTTP/1.1 " + std::to_string(answer.status) + " " + reason_phrase(answer.status) + "\r\n";
  const bool head_request = m_request.method == "HEAD";
  for (const auto& [name, value] : answer.headers) {
    const std::string key = lower(name);
    if (key == "connection" || key == "transfer-encoding") continue;
    if (key == "content-length" && !head_request) continue;
    head += name + ": " + value + "\r\n";
  }
  if (!head_request || !answer.header("content-length")) {
    head += "Content-Length: " + std::to_string(head_request ? 0 : answer.body.size()) + "\r\n";
  }
  return head + "Connection: close\r\n\r\n";
}

bool HostileExchange::send(const HostileAnswer& answer) {
  std::string bytes = head_of(answer);
  if (m_request.method != "HEAD") bytes += answer.body;
  return send_raw(bytes);
}

bool HostileExchange::send_raw(std::string_view bytes) { return m_connection.write(bytes); }

bool HostileExchange::trickle(std::string_view bytes, std::size_t step, std::chrono::milliseconds interval) {
  bool first = true;
  while (!bytes.empty()) {
    if (!first && !pause(interval)) return false;
    first = false;
    const std::size_t n = std::min(step == 0 ? std::size_t{1} : step, bytes.size());
    if (!m_connection.write(bytes.substr(0, n))) return false;
    bytes.remove_prefix(n);
  }
  return true;
}

bool HostileExchange::pause(std::chrono::milliseconds time) { return m_server.m_state->wait(time); }

HostileHandler forward_to(std::string upstream) {
  return [upstream = std::move(upstream)](HostileExchange& exchange) { exchange.send(exchange.forward(upstream)); };
}

HostileServer::HostileServer(HostileHandler handler, std::optional<TlsIdentity> tls)
    : m_state(std::make_unique<State>()) {
  State& s = *m_state;
  s.handler = std::move(handler);
  if (tls) {
    s.tls.reset(SSL_CTX_new(TLS_server_method()));
    REQUIRE_MESSAGE(s.tls, "SSL_CTX_new: " << openssl_errors());
    REQUIRE_MESSAGE(SSL_CTX_use_certificate_chain_file(s.tls.get(), tls->cert_file.c_str()) == 1,
                    "HostileServer: certificate " << tls->cert_file.string() << ": " << openssl_errors());
    REQUIRE_MESSAGE(SSL_CTX_use_PrivateKey_file(s.tls.get(), tls->key_file.c_str(), SSL_FILETYPE_PEM) == 1,
                    "HostileServer: key " << tls->key_file.string() << ": " << openssl_errors());
    REQUIRE_MESSAGE(SSL_CTX_check_private_key(s.tls.get()) == 1, "HostileServer: " << openssl_errors());
  }
  s.listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE_MESSAGE(s.listen_fd >= 0, "socket(): " << std::string(std::strerror(errno)));
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
    FAIL("HostileServer: cannot listen on 127.0.0.1: " << reason);
  }
  s.port = ntohs(address.sin_port);
  if (::pipe2(s.wake, O_CLOEXEC) != 0) {
    ::close(s.listen_fd);
    FAIL("HostileServer: pipe2(): " << std::string(std::strerror(errno)));
  }
  s.acceptor = std::thread([this] { m_state->accept_loop(*this); });
}

HostileServer::~HostileServer() {
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

std::uint16_t HostileServer::port() const noexcept { return m_state->port; }

std::string HostileServer::host() const { return "127.0.0.1:" + std::to_string(m_state->port); }

std::string HostileServer::url() const { return (m_state->tls ? "https://" : "http://") + host(); }

std::vector<HostileRequest> HostileServer::requests() const {
  std::unique_lock lock(m_state->mutex);
  m_state->changed.wait_for(lock, k_settle_timeout, [this] { return m_state->active == 0; });
  return m_state->records;
}

std::size_t HostileServer::count(const std::string& method, const std::string& part) const {
  std::size_t n = 0;
  for (const auto& r : requests()) {
    if ((method.empty() || r.method == method) && r.target.find(part) != std::string::npos) ++n;
  }
  return n;
}

std::size_t HostileServer::tls_failures() const {
  std::unique_lock lock(m_state->mutex);
  m_state->changed.wait_for(lock, k_settle_timeout, [this] { return m_state->active == 0; });
  return m_state->tls_failures;
}

std::size_t HostileServer::plain_connections() const {
  std::unique_lock lock(m_state->mutex);
  m_state->changed.wait_for(lock, k_settle_timeout, [this] { return m_state->active == 0; });
  return m_state->plain_connections;
}

std::string HostileServer::last_tls_error() const {
  std::lock_guard lock(m_state->mutex);
  return m_state->last_tls_error;
}

std::size_t HostileServer::connections() const {
  std::lock_guard lock(m_state->mutex);
  return m_state->accepted;
}

} // namespace ferry::test
