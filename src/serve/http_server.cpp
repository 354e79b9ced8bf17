// The HTTP/1.1 transport of `ferry serve`: one thread per connection, at most
// max_connections of them; every wait bounded by a timeout.
// SPDX-License-Identifier: Apache-2.0
#include "serve/http_server.hpp"

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/openssl_error.hpp"
#include "core/secret.hpp"

#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <list>
#include <mutex>
#include <set>
#include <thread>

namespace ferry::serve {

namespace {

constexpr std::size_t k_max_head = 16 * 1024;
constexpr std::size_t k_max_headers = 100;
constexpr std::size_t k_max_target = 8 * 1024;
constexpr std::size_t k_send_chunk = 256 * 1024;

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      i += 2;
    } else if (text[i] == '+') {
      out += ' ';
    } else {
      out += text[i];
    }
  }
  return out;
}

// HOST:PORT, [V6]:PORT, :PORT.
std::pair<std::string, std::string> split_listen(const std::string& listen) {
  const auto bad = [&](const std::string& why) {
    return core::UsageError("--listen '" + listen + "' " + why,
                            "give HOST:PORT, for example 127.0.0.1:5000, 0.0.0.0:5000 (every IPv4 address) or "
                            "[::]:5000");
  };
  std::string host;
  std::string port;
  if (!listen.empty() && listen.front() == '[') {
    const auto close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') throw bad("is malformed");
    host = listen.substr(1, close - 1);
    port = listen.substr(close + 2);
  } else {
    const auto colon = listen.rfind(':');
    if (colon == std::string::npos) throw bad("has no port");
    host = listen.substr(0, colon);
    port = listen.substr(colon + 1);
    if (host.find(':') != std::string::npos) throw bad("needs brackets around an IPv6 address");
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    throw bad("has no valid port (0 to 65535)");
  }
  return {host.empty() ? "0.0.0.0" : host, port};
}

using SslCtx = std::unique_ptr<SSL_CTX, core::CDeleter<SSL_CTX_free>>;
using Ssl = std::unique_ptr<SSL, core::CDeleter<SSL_free>>;

SslCtx load_tls(const TlsFiles& files) {
  core::require_private_file(files.key, "TLS key (--key-file)");
  SslCtx ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) throw core::Error(core::ExitCode::failure, "cannot create a TLS context: " + core::openssl_error_text());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), files.certificate.c_str()) != 1) {
    throw core::UsageError("cannot load the TLS certificate " + core::display(files.certificate) + ": " +
                               core::openssl_error_text(),
                           "give --cert-file a PEM file: the server's certificate first, then its intermediates");
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), files.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw core::UsageError("cannot load the TLS key " + core::display(files.key) + ": " + core::openssl_error_text(),
                           "give --key-file the unencrypted PEM private key of the certificate");
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    throw core::UsageError("TLS key " + core::display(files.key) + " does not belong to certificate " +
                               core::display(files.certificate),
                           "give the key the certificate was issued for");
  }
  return ctx;
}

void set_timeout(int fd, int option, std::chrono::seconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count());
  setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
}

// One accepted connection, plain or TLS.
class Connection {
public:
  Connection(core::UniqueFd fd, SSL_CTX* tls) : m_fd(std::move(fd)) {
    if (tls) {
      m_ssl.reset(SSL_new(tls));
      if (!m_ssl || SSL_set_fd(m_ssl.get(), m_fd.get()) != 1) throw std::runtime_error(core::openssl_error_text());
    }
  }

  // False when the TLS handshake failed (a client that does not speak TLS, a timeout).
  bool handshake(std::string& error) {
    if (!m_ssl) return true;
    if (SSL_accept(m_ssl.get()) == 1) return true;
    error = core::openssl_error_text();
    return false;
  }

  // Waits up to `timeout` for something to read; false on timeout or a closed socket.
  bool wait_readable(std::chrono::milliseconds timeout) {
    if (m_ssl && SSL_pending(m_ssl.get()) > 0) return true;
    pollfd p{m_fd.get(), POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(0, timeout.count())));
    return r > 0;
  }

  // Bytes read; 0 at the end of the stream or on an error.
  std::size_t read(char* data, std::size_t size) {
    if (m_ssl) {
      const int n = SSL_read(m_ssl.get(), data, static_cast<int>(std::min<std::size_t>(size, 1 << 30)));
      return n > 0 ? static_cast<std::size_t>(n) : 0;
    }
    for (;;) {
      const ssize_t n = ::recv(m_fd.get(), data, size, 0);
      if (n < 0 && errno == EINTR) continue;
      return n > 0 ? static_cast<std::size_t>(n) : 0;
    }
  }

  // False when the client went away or stopped reading for the send timeout.
  bool write(const char* data, std::size_t size) {
    while (size > 0) {
      if (m_ssl) {
        const int n = SSL_write(m_ssl.get(), data, static_cast<int>(std::min<std::size_t>(size, 1 << 30)));
        if (n <= 0) return false;
        data += n;
        size -= static_cast<std::size_t>(n);
        continue;
      }
      const ssize_t n = ::send(m_fd.get(), data, size, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data += n;
      size -= static_cast<std::size_t>(n);
    }
    return true;
  }

  void close_notify() {
    if (m_ssl) SSL_shutdown(m_ssl.get());
  }

  int fd() const noexcept { return m_fd.get(); }

private:
  core::UniqueFd m_fd;
  Ssl m_ssl;
};

} // namespace

const std::string* Request::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return &value;
  }
  return nullptr;
}

std::optional<std::string> Request::query_value(std::string_view key) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    if (percent_decode(pair.substr(0, eq)) != key) continue;
    return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

std::string_view reason_phrase(int status) {
  switch (status) {
  case 200: return "OK";
  case 206: return "Partial Content";
  case 304: return "Not Modified";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 411: return "Length Required";
  case 413: return "Content Too Large";
  case 414: return "URI Too Long";
  case 416: return "Range Not Satisfiable";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 503: return "Service Unavailable";
  case 505: return "HTTP Version Not Supported";
  default: return "Unknown";
  }
}

std::optional<Request> parse_request_head(std::string_view head, int& status) {
  status = 400;
  if (head.size() > k_max_head) {
    status = 431;
    return std::nullopt;
  }
  Request request;
  auto next_line = [&head]() -> std::optional<std::string_view> {
    const auto end = head.find("\r\n");
    if (end == std::string_view::npos) return std::nullopt;
    const std::string_view line = head.substr(0, end);
    head.remove_prefix(end + 2);
    return line;
  };
  const auto first = next_line();
  if (!first) return std::nullopt;
  // METHOD SP TARGET SP HTTP/1.x
  const std::string_view line = *first;
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (method.empty() || !std::all_of(method.begin(), method.end(), is_token_char)) return std::nullopt;
  if (target.size() > k_max_target) {
    status = 414;
    return std::nullopt;
  }
  if (target.empty() || target.front() != '/') return std::nullopt;
  if (std::any_of(target.begin(), target.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; })) {
    return std::nullopt;
  }
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    status = version.substr(0, 5) == "HTTP/" ? 505 : 400;
    return std::nullopt;
  }
  request.method = std::string(method);
  request.version = std::string(version);
  const auto question = target.find('?');
  request.path = std::string(target.substr(0, question));
  if (question != std::string_view::npos) request.query = std::string(target.substr(question + 1));

  for (;;) {
    const auto header = next_line();
    if (!header) return std::nullopt;
    if (header->empty()) break;
    if (request.headers.size() >= k_max_headers) {
      status = 431;
      return std::nullopt;
    }
    const auto colon = header->find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    const std::string_view name = header->substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_token_char)) return std::nullopt; // also refuses obsolete folding
    const std::string_view value = trim(header->substr(colon + 1));
    if (std::any_of(value.begin(), value.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; })) {
      return std::nullopt;
    }
    request.headers.emplace_back(lower(name), std::string(value));
  }
  if (!head.empty()) return std::nullopt; // bytes after the blank line are not part of a head
  return request;
}

struct Server::Impl {
  ServerOptions options;
  Handler handler;
  core::LogSink& log;
  SslCtx tls;
  core::UniqueFd listener;
  core::UniqueFd wake_read;
  core::UniqueFd wake_write;
  std::uint16_t port = 0;
  std::string host;

  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::list<Worker> workers;
  std::mutex open_mutex;
  std::set<int> open_fds; // connections being served, for shutdown at stop
  std::atomic<bool> stopping{false};

  Impl(ServerOptions o, Handler h, core::LogSink& l) : options(std::move(o)), handler(std::move(h)), log(l) {}

  void listen_on() {
    const auto [name, service] = split_listen(options.listen);
    host = name;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (const int rc = ::getaddrinfo(name.c_str(), service.c_str(), &hints, &found); rc != 0) {
      throw core::UsageError("--listen '" + options.listen + "': cannot resolve " + name + ": " + gai_strerror(rc),
                             "give an IP address of this host, or 0.0.0.0 for all of them");
    }
    std::unique_ptr<addrinfo, core::CDeleter<freeaddrinfo>> list(found);
    int last_error = 0;
    for (const addrinfo* a = list.get(); a; a = a->ai_next) {
      core::UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
      if (!fd) {
        last_error = errno;
        continue;
      }
      const int on = 1;
      setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
      if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd.get(), 128) != 0) {
        last_error = errno;
        continue;
      }
      sockaddr_storage bound{};
      socklen_t length = sizeof bound;
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &length);
      port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
      listener = std::move(fd);
      return;
    }
    throw core::Error(core::ExitCode::failure,
                      "cannot listen on " + options.listen + ": " + core::errno_text(last_error),
                      last_error == EADDRINUSE ? "another program uses that port: stop it or pick another --listen port"
                      : last_error == EACCES   ? "ports below 1024 need privileges: pick a port above 1023"
                                               : "check that the address belongs to this host");
  }

  void send_simple(Connection& c, int status, std::string_view body, bool close) {
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) +
                       "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\n" + (close ? "Connection: close\r\n" : "") + "\r\n";
    head += body;
    c.write(head.data(), head.size());
  }

  // Serves one connection until the client closes it, a timeout, or an error.
  void serve_connection(Connection& c, const std::string& peer) {
    std::string handshake_error;
    if (!c.wait_readable(options.idle_timeout) || !c.handshake(handshake_error)) {
      if (!handshake_error.empty()) log.debug("serve: " + peer + ": TLS handshake failed: " + handshake_error);
      return;
    }
    std::string pending;
    char buffer[8192];
    while (!stopping) {
      // The head: idle_timeout until its first byte, then head_timeout for all of it.
      std::size_t end = pending.find("\r\n\r\n");
      auto started = std::chrono::steady_clock::now();
      bool begun = !pending.empty();
      while (end == std::string::npos) {
        if (pending.size() > k_max_head) {
          send_simple(c, 431, "request head too large\n", true);
          return;
        }
        using std::chrono::milliseconds;
        const milliseconds limit =
            begun ? options.head_timeout - std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started)
                  : milliseconds(options.idle_timeout);
        if (limit.count() <= 0 || !c.wait_readable(limit)) {
          if (begun) send_simple(c, 408, "request head not received in time\n", true);
          return;
        }
        const std::size_t n = c.read(buffer, sizeof buffer);
        if (n == 0) return;
        if (!begun) {
          begun = true;
          started = std::chrono::steady_clock::now();
        }
        pending.append(buffer, n);
        // A request starts with a method (letters): anything else (a TLS handshake sent to
        // a plain HTTP port, binary noise) is answered at once instead of waiting for a head.
        if (!std::isalpha(static_cast<unsigned char>(pending.front()))) {
          log.debug("serve: " + peer + ": not an HTTP request" +
                    (static_cast<unsigned char>(pending.front()) == 0x16 ? " (a TLS handshake: this server is plain HTTP)" : ""));
          send_simple(c, 400, "not an HTTP/1.1 request\n", true);
          return;
        }
        end = pending.find("\r\n\r\n", pending.size() > n + 3 ? pending.size() - n - 3 : 0);
      }
      const std::string head = pending.substr(0, end + 4);
      pending.erase(0, end + 4);

      int status = 400;
      const std::optional<Request> request = parse_request_head(head, status);
      if (!request) {
        send_simple(c, status, std::string(reason_phrase(status)) + "\n", true);
        return;
      }
      // No request here has a body; one that announces a body is refused and the
      // connection closed, so its bytes are never read as a next request.
      const std::string* length = request->header("content-length");
      const bool has_body = request->header("transfer-encoding") || (length && *length != "0");
      if (has_body) {
        send_simple(c, request->method == "GET" || request->method == "HEAD" ? 400 : 405,
                    "this server is read-only and takes no request bodies\n", true);
        log.debug("serve: " + peer + " " + request->method + " " + request->path + ": refused (request body)");
        return;
      }
      const std::string* connection = request->header("connection");
      const std::string connection_value = connection ? lower(*connection) : std::string();
      bool keep = request->version == "HTTP/1.1" ? connection_value.find("close") == std::string::npos
                                                 : connection_value.find("keep-alive") != std::string::npos;
      if (!respond(c, *request, keep, peer)) return;
      if (!keep) {
        c.close_notify();
        return;
      }
    }
  }

  // Writes the response; false when the connection must close.
  bool respond(Connection& c, const Request& request, bool& keep, const std::string& peer) {
    Response response;
    try {
      response = handler(request);
    } catch (const std::exception& e) {
      log.warning("serve: " + request.method + " " + request.path + " failed: " + e.what());
      response = Response{};
      response.status = 500;
      response.body = "internal error\n";
      keep = false;
    }
    const std::uint64_t length = response.stream ? response.length : response.body.size();
    std::string head = "HTTP/1.1 " + std::to_string(response.status) + " " + std::string(reason_phrase(response.status)) + "\r\n";
    for (const auto& [name, value] : response.headers) head += name + ": " + value + "\r\n";
    head += "Content-Length: " + std::to_string(length) + "\r\n";
    if (!keep) head += "Connection: close\r\n";
    head += "\r\n";
    const bool with_body = request.method != "HEAD";
    if (with_body && !response.stream) head += response.body;
    if (!c.write(head.data(), head.size())) return false;
    log.debug("serve: " + peer + " " + request.method + " " + request.path + (request.query.empty() ? "" : "?" + request.query) +
              " " + std::to_string(response.status) + " " + std::to_string(length) + " bytes");
    if (!with_body || !response.stream) return true;

    std::unique_ptr<char[]> chunk(new char[k_send_chunk]);
    std::uint64_t left = length;
    try {
      while (left > 0) {
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, k_send_chunk));
        const std::size_t n = response.stream->read(chunk.get(), want);
        if (n == 0) {
          throw core::IntegrityError("the content ended " + std::to_string(left) + " bytes early");
        }
        if (!c.write(chunk.get(), n)) return false; // the client went away
        left -= n;
      }
    } catch (const std::exception& e) {
      // Headers are out: closing the connection short of Content-Length is the only way
      // left to tell the client the body is not whole.
      log.warning("serve: " + request.method + " " + request.path + " stopped after " + std::to_string(length - left) +
                  " of " + std::to_string(length) + " bytes: " + e.what());
      return false;
    }
    return true;
  }

  void reap(bool all) {
    for (auto it = workers.begin(); it != workers.end();) {
      if (all || it->done->load()) {
        it->thread.join();
        it = workers.erase(it);
      } else {
        ++it;
      }
    }
  }

  void accept_one() {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    core::UniqueFd fd(::accept4(listener.get(), reinterpret_cast<sockaddr*>(&address), &length, SOCK_CLOEXEC));
    if (!fd) return; // the client left before accept, or too many open files (the next poll retries)
    char text[INET6_ADDRSTRLEN] = "?";
    std::uint16_t peer_port = 0;
    if (address.ss_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
      ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
      peer_port = ntohs(in->sin_port);
    } else if (address.ss_family == AF_INET6) {
      const auto* in = reinterpret_cast<const sockaddr_in6*>(&address);
      ::inet_ntop(AF_INET6, &in->sin6_addr, text, sizeof text);
      peer_port = ntohs(in->sin6_port);
    }
    const std::string peer = std::string(text) + ":" + std::to_string(peer_port);
    const int on = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    set_timeout(fd.get(), SO_RCVTIMEO, options.head_timeout);
    set_timeout(fd.get(), SO_SNDTIMEO, options.send_timeout);

    reap(false);
    if (workers.size() >= options.max_connections) {
      log.warning("serve: " + peer + " refused: " + std::to_string(options.max_connections) +
                  " connections are open already");
      if (!tls) {
        Connection c(std::move(fd), nullptr);
        send_simple(c, 503, "too many connections\n", true);
      }
      return;
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    auto connection = std::make_shared<Connection>(std::move(fd), tls.get());
    {
      std::lock_guard lock(open_mutex);
      open_fds.insert(connection->fd());
    }
    workers.push_back(Worker{std::thread([this, connection, done, peer] {
                               try {
                                 serve_connection(*connection, peer);
                               } catch (const std::exception& e) {
                                 log.warning("serve: connection from " + peer + " failed: " + e.what());
                               }
                               {
                                 std::lock_guard lock(open_mutex);
                                 open_fds.erase(connection->fd());
                               }
                               done->store(true);
                             }),
                             done});
  }
};

Server::Server(ServerOptions options, Handler handler, core::LogSink& log)
    : m_impl(std::make_unique<Impl>(std::move(options), std::move(handler), log)) {
  if (m_impl->options.tls) m_impl->tls = load_tls(*m_impl->options.tls);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw core::Error(core::ExitCode::failure, "cannot create a pipe: " + core::errno_text(errno));
  }
  m_impl->wake_read = core::UniqueFd(pipe_fds[0]);
  m_impl->wake_write = core::UniqueFd(pipe_fds[1]);
  m_impl->listen_on();
}

Server::~Server() {
  stop();
  std::lock_guard lock(m_impl->open_mutex);
  for (const int fd : m_impl->open_fds) ::shutdown(fd, SHUT_RDWR);
  // run() joins its threads before it returns; a Server that never ran has none.
}

std::uint16_t Server::port() const noexcept { return m_impl->port; }

std::string Server::url() const {
  std::string host = m_impl->host;
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return std::string(m_impl->tls ? "https://" : "http://") + host + ":" + std::to_string(m_impl->port);
}

void Server::stop() noexcept {
  m_impl->stopping.store(true);
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = ::write(m_impl->wake_write.get(), &byte, 1);
}

void Server::run() {
  Impl& s = *m_impl;
  while (!s.stopping) {
    pollfd fds[2] = {{s.listener.get(), POLLIN, 0}, {s.wake_read.get(), POLLIN, 0}};
    const int r = ::poll(fds, 2, 1000);
    if (r < 0 && errno != EINTR) throw core::Error(core::ExitCode::failure, "poll failed: " + core::errno_text(errno));
    if (s.stopping) break;
    if (r > 0 && (fds[0].revents & POLLIN)) s.accept_one();
    s.reap(false);
  }
  {
    std::lock_guard lock(s.open_mutex);
    for (const int fd : s.open_fds) ::shutdown(fd, SHUT_RDWR);
  }
  s.reap(true);
}

} // namespace ferry::serve
