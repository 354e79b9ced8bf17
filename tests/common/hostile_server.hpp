// A deliberately misbehaving HTTP(S) server for network tests: it listens on 127.0.0.1,
// over plain HTTP or TLS with a certificate the test chooses (another CA, another name,
// self-signed), records every request with its headers, and lets a handler per test
// answer each one: forward it to a real registry, change the answer (another manifest,
// another Docker-Content-Digest, a redirect), or send it a byte at a time.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::test {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

// One request as the server read it.
struct HostileRequest {
  std::string method;
  std::string target;  // path and query
  HeaderList headers;  // names lower-case, in the order sent
  std::string body;    // decoded (chunked bodies are joined)
  std::chrono::steady_clock::time_point arrived;

  // The first header `name` (lower-case), or nullopt.
  std::optional<std::string> header(std::string_view name) const;
  // The target without its query.
  std::string path() const;
};

// An answer, whole. send() adds Content-Length and Connection: close.
struct HostileAnswer {
  int status = 200;
  HeaderList headers; // names as they are to be sent
  std::string body;

  // The first header `name` (any case), or nullopt.
  std::optional<std::string> header(std::string_view name) const;
  // Replaces every header `name` (any case) by one with `value`.
  void set_header(const std::string& name, const std::string& value);
  void remove_header(std::string_view name);
};

// A PEM certificate chain and its private key, for a TLS server.
struct TlsIdentity {
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
};

// A test CA made with the openssl CLI: EC P-256 key and self-signed certificate.
struct TestCa {
  std::filesystem::path cert_file;
  std::filesystem::path key_file;
};

// A new CA `name` in `dir` (NAME.pem, NAME.key), valid for a day.
TestCa make_test_ca(const std::filesystem::path& dir, const std::string& name);
// A TLS server certificate `name` in `dir` signed by `ca`, for the subjectAltName `san`
// ("IP:127.0.0.1, DNS:localhost"), valid for a day.
TlsIdentity make_server_identity(const std::filesystem::path& dir, const std::string& name, const TestCa& ca,
                                 const std::string& san);
// A self-signed TLS server certificate for `san`.
TlsIdentity make_self_signed_identity(const std::filesystem::path& dir, const std::string& name,
                                      const std::string& san);

class HostileServer;

// What a handler answers one request with. Every answer ends the connection.
class HostileExchange {
public:
  HostileExchange(const HostileExchange&) = delete;
  HostileExchange& operator=(const HostileExchange&) = delete;

  const HostileRequest& request() const noexcept { return m_request; }
  // The request sent on to `upstream` ("127.0.0.1:PORT", plain HTTP) with Host rewritten,
  // and its answer whole; a Location pointing at the upstream is rewritten to point at
  // this server. `extra` headers (lower-case names) replace the request's own of that
  // name. A failure to reach the upstream is a 502 answer.
  HostileAnswer forward(const std::string& upstream, const HeaderList& extra = {}) const;
  // Sends `answer` with Content-Length (for HEAD: the answer's own Content-Length if it
  // has one, and no body) and Connection: close. False when the client went away.
  bool send(const HostileAnswer& answer);
  // The status line and headers of `answer` as send() writes them (with the blank line).
  std::string head_of(const HostileAnswer& answer) const;
  // Sends `bytes` as they are.
  bool send_raw(std::string_view bytes);
  // Sends `bytes` `step` bytes at a time, waiting `interval` before each piece after the
  // first. Returns false as soon as the client went away or the server stops; true when
  // everything was sent.
  bool trickle(std::string_view bytes, std::size_t step, std::chrono::milliseconds interval);
  // Waits `time`, or less when the server stops; false when it stops.
  bool pause(std::chrono::milliseconds time);

private:
  friend class HostileServer;
  struct Connection;
  HostileExchange(HostileServer& server, Connection& connection, HostileRequest request)
      : m_server(server), m_connection(connection), m_request(std::move(request)) {}
  HostileServer& m_server;
  Connection& m_connection;
  HostileRequest m_request;
};

// Runs on the connection's thread, once per request; may block (the destructor wakes
// trickle() and pause(), and cuts the connection).
using HostileHandler = std::function<void(HostileExchange&)>;

// A handler that forwards every request to `upstream` unchanged.
HostileHandler forward_to(std::string upstream);

// Listens on 127.0.0.1 (a free port) from construction to destruction, one thread per
// connection, one request per connection. With `tls`, every connection must start with
// a TLS handshake; a connection that does not (plain HTTP) or whose handshake fails is
// counted and closed, unanswered. Never copied or moved.
class HostileServer {
public:
  explicit HostileServer(HostileHandler handler, std::optional<TlsIdentity> tls = std::nullopt);
  HostileServer(const HostileServer&) = delete;
  HostileServer& operator=(const HostileServer&) = delete;
  // Stops accepting, cuts open connections, wakes handlers and joins every thread.
  ~HostileServer();

  std::uint16_t port() const noexcept;
  // "127.0.0.1:PORT".
  std::string host() const;
  // "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
  std::string url() const;

  // Every request so far, in the order they arrived. Waits (up to 5 s) for exchanges
  // still under way, so the result is complete once the client has exited.
  std::vector<HostileRequest> requests() const;
  // How many recorded requests have `method` (empty: any) and contain `part` in their target.
  std::size_t count(const std::string& method, const std::string& part) const;
  // TLS only: connections whose handshake failed (the client refused the certificate),
  // connections that sent plain HTTP instead, and the last handshake error.
  std::size_t tls_failures() const;
  std::size_t plain_connections() const;
  std::string last_tls_error() const;
  // Every connection accepted.
  std::size_t connections() const;

private:
  friend class HostileExchange;
  struct State;
  std::unique_ptr<State> m_state;
};

} // namespace ferry::test
