// A fault-injecting HTTP proxy for registry tests: it listens on 127.0.0.1 in front of a
// plain-HTTP registry (RegistryServer), forwards every request and answer, and applies
// rules (an error status, a connection cut mid-body, a stall, a flipped body byte) to the
// first N requests matching a method and a path pattern. Every request is recorded.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::test {

// What the proxy does to a request.
enum class Fault {
  none,    // forward the request and the answer untouched
  status,  // answer FaultRule::status (and Retry-After) at once; upstream never sees the request
  cut,     // forward, but close the connection after FaultRule::offset bytes of the answer's
           // body (a body no longer than that passes whole)
  stall,   // wait FaultRule::stall, then forward
  corrupt, // forward, with the answer's body byte at FaultRule::offset (the last one if the
           // body is shorter) flipped
};

// FaultRule::times for a rule that never runs out.
inline constexpr int k_every_time = -1;

// One rule. A request matches when its method equals `method` (empty: any method) and the
// ECMAScript regular expression `path` is found in its target (path and query, as the
// client sent it). The functions below build the usual ones; designated initialisers
// work too (every field has a default):
//   proxy.add_rule(fail_with("GET", "/manifests/", 503, 2));
//   proxy.add_rule({.method = "GET", .path = "/manifests/", .status = 503, .times = 2});
struct FaultRule {
  std::string method{};
  std::string path{};
  Fault fault = Fault::status;
  int status = 500;                   // Fault::status: 500, 502, 503, 429, ...
  std::string retry_after{};          // Fault::status: a Retry-After value ("1"); empty: no header
  std::uint64_t offset = 0;           // Fault::cut: body bytes sent before the cut; Fault::corrupt: byte flipped
  std::chrono::milliseconds stall{0}; // Fault::stall
  int times = 1;                      // applied to the first `times` matching requests; k_every_time: all
};

// Answer `status` (500, 502, 503, ...) to the first `times` matching requests.
FaultRule fail_with(std::string method, std::string path, int status, int times = 1);
// Answer 429 with Retry-After: `retry_after` to the first `times` matching requests.
FaultRule rate_limit(std::string method, std::string path, std::chrono::seconds retry_after, int times = 1);
// Forward, but end the connection after `body_bytes` bytes of the answer's body.
FaultRule cut_after(std::string method, std::string path, std::uint64_t body_bytes, int times = 1);
// Wait `stall`, then forward.
FaultRule stall_for(std::string method, std::string path, std::chrono::milliseconds stall, int times = 1);
// Forward, with the answer's body byte at `offset` flipped (the last one if the body is shorter).
FaultRule corrupt_at(std::string method, std::string path, std::uint64_t offset, int times = 1);

// One request as the proxy saw it, and what it answered.
struct ProxiedRequest {
  std::string method;
  std::string target;                                       // path and query
  std::vector<std::pair<std::string, std::string>> headers; // the client's, names lower-case, in order
  std::chrono::steady_clock::time_point arrived;            // when its head had been read
  int status = 0;            // status sent to the client; 0 when none was sent
  Fault fault = Fault::none; // the rule applied
  std::uint64_t body_bytes = 0; // answer body bytes sent to the client

  // The first header `name` (lower-case), or nullopt.
  std::optional<std::string> header(std::string_view name) const;
};

// Listens on 127.0.0.1 (a free port) from construction to destruction, one thread per
// connection. Requests are forwarded to `upstream` over plain HTTP with Host rewritten;
// a Location header pointing at the upstream is rewritten to point at the proxy.
// Bodies are streamed both ways (chunked ones are decoded and sent with a length);
// every answer ends its connection (Connection: close). Only loopback upstreams are
// accepted, and after k_max_requests requests every further one gets 400, so a client
// looping on faults stops. Never copied or moved.
class FaultProxy {
public:
  static constexpr std::size_t k_max_requests = 2000;

  // `upstream` is "127.0.0.1:PORT" or "localhost:PORT" (RegistryServer::host() of a
  // server without TLS); anything else, or a failure to listen, fails the test.
  explicit FaultProxy(const std::string& upstream);
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;
  // Stops accepting, cuts open connections (and stalls) and joins every thread.
  ~FaultProxy();

  std::uint16_t port() const noexcept;
  // "127.0.0.1:PORT": the registry host to give the client.
  std::string host() const;
  // "http://127.0.0.1:PORT".
  std::string url() const;

  // Rules are tried in the order added; the first that matches and has uses left applies
  // (and uses one up when the request arrives). An invalid `path` fails the test.
  void add_rule(FaultRule rule);
  void clear_rules();

  // Every request so far, in the order they arrived. Waits (up to 5 s) for exchanges
  // still under way, so the result is complete once the client has exited.
  std::vector<ProxiedRequest> requests() const;
  // How many recorded requests match `method` (empty: any) and the regular expression
  // `path`, and, when given, got `fault`.
  std::size_t count(const std::string& method, const std::string& path,
                    std::optional<Fault> fault = std::nullopt) const;
  void clear_requests();
  // Raises (or lowers) k_max_requests for a test that needs more, e.g. a load test.
  void set_request_limit(std::size_t limit);

private:
  struct State;
  std::unique_ptr<State> m_state;
};

} // namespace ferry::test
