// A small HTTP/1.1 server for read-only APIs (`ferry serve`): GET and HEAD, keep-alive,
// optional TLS, bounded connections and timeouts. Requests with a body are refused.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/io.hpp"
#include "core/log.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::serve {

struct Request {
  std::string method; // as sent ("GET", "HEAD", …)
  std::string path;   // the target up to '?', not decoded
  std::string query;  // after '?', not decoded; empty when none
  std::string version; // "HTTP/1.1" or "HTTP/1.0"
  std::vector<std::pair<std::string, std::string>> headers; // names lower-case, values trimmed

  // The first header named `name` (lower-case), or nullptr.
  const std::string* header(std::string_view name) const;
  // The value of `key` in the query (first occurrence, percent-decoded), or nullopt.
  std::optional<std::string> query_value(std::string_view key) const;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers; // Content-Length is added by the server
  std::string body;                     // the body when `stream` is null
  std::unique_ptr<core::Source> stream; // else exactly `length` bytes from it
  std::uint64_t length = 0;
};

// Handles one request; called by several connection threads at once. Exceptions become
// a 500 response (or, once the body started, a closed connection) and a warning.
using Handler = std::function<Response(const Request&)>;

struct TlsFiles {
  std::filesystem::path certificate; // PEM chain, the server's certificate first
  std::filesystem::path key;         // PEM private key (refused when group or others can read it)
};

struct ServerOptions {
  std::string listen = "127.0.0.1:5000"; // HOST:PORT, [IPv6]:PORT or :PORT (every address); port 0 picks one
  std::optional<TlsFiles> tls;
  std::size_t max_connections = 64;      // further clients get 503 and are closed
  std::chrono::seconds idle_timeout{60}; // waiting for a request, and for a TLS handshake
  std::chrono::seconds head_timeout{30}; // to receive a request's head once it began
  std::chrono::seconds send_timeout{60}; // a client that stops reading
};

// Binds and listens in the constructor (UsageError for a malformed address, Error when the
// address cannot be bound, TLS files that do not load), serves in run().
class Server {
public:
  Server(ServerOptions options, Handler handler, core::LogSink& log);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // "https://127.0.0.1:41234" (the port actually bound).
  std::string url() const;
  std::uint16_t port() const noexcept;

  // Accepts and serves until stop(); then closes the connections still open and returns
  // once their threads ended.
  void run();
  // Makes run() return; async-signal-safe (a signal handler may call it).
  void stop() noexcept;

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

// The reason phrase of a status code ("Not Found").
std::string_view reason_phrase(int status);

// Parses a request head (up to and including the blank line). Returns nullopt and sets
// `status` (400, 414, 431, 501, 505) when it is malformed or not HTTP/1.x.
std::optional<Request> parse_request_head(std::string_view head, int& status);

} // namespace ferry::serve
