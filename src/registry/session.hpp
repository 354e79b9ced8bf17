// One registry's HTTP side, under Client: requests and answers, the request loop with
// authentication, redirects and retries, and the failure messages. Private to
// registry/*.cpp (it includes curl).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "registry/auth.hpp"
#include "registry/client.hpp"
#include "registry/curl_easy.hpp"
#include "registry/http.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::registry {

inline constexpr std::size_t k_error_body_limit = 64u << 10; // enough for any registry error body

enum class Method { get, head, post, put, patch, del };
const char* method_name(Method method);

struct Header {
  std::string name; // lower-cased
  std::string value;
};

// What one HTTP exchange gave.
struct Response {
  CURLcode curl = CURLE_OK;
  std::string curl_error; // curl's error buffer when curl != CURLE_OK
  long status = 0;
  std::string reason; // the status line's reason phrase (HTTP/1.1 only)
  std::vector<Header> headers;
  std::string body; // a 2xx body without a sink, or the start of an error body
  bool body_over_limit = false;
  // A non-2xx body longer than k_error_body_limit: its start is in `body`, the rest was
  // never read (the connection was closed instead).
  bool error_body_cut = false;
  std::string redirect_url; // absolute, for 3xx answers

  // The first header called `name` (lower-case), or nullptr.
  const std::string* header(std::string_view name) const;
  std::vector<std::string> headers_named(std::string_view name) const;
};

// One HTTP exchange to make. Bodies stay in memory, so a request can be sent again.
struct Request {
  Method method = Method::get;
  std::string url;
  std::vector<std::string> headers;            // "Name: value"; never Authorization
  std::string authorization;                   // the Authorization value; set per hop by Session::execute
  std::string_view body;                       // POST/PUT/PATCH body (not owned)
  bool form = false;                           // the POST body is application/x-www-form-urlencoded
  std::size_t body_limit = k_error_body_limit; // a 2xx body kept in Response::body; more is an error
  core::Sink* sink = nullptr;                  // 2xx bodies stream here instead
  // Called once before the first byte of a 2xx body goes to `sink`; may throw to abort.
  std::function<void(const Response&)> on_body;
};

Request make_request(Method method, std::string url);

// The outcome of an exchange: its curl error, else its status (http.hpp's table).
Outcome classify(const Response& response);

// `location` (absolute, or relative to `base`) as an absolute URL; empty when malformed.
std::string resolve_url(const std::string& base, const std::string& location);

// What one client operation is, for token scopes and for messages.
enum class Access { pull, push };
enum class Retry {
  transient, // execute() retries transient failures itself (the request is idempotent)
  caller,    // execute() returns transient failures; the caller knows how to go on
};

struct Call {
  std::string what;       // "pulling manifest library/nginx:1.27": the message's subject
  std::string repository; // for hints
  ScopeSet scopes;
  Access access = Access::pull;
  Retry retry = Retry::transient;
  bool authenticate = true; // false for the token endpoint (its credentials are preset)
  std::string not_found_hint;
};

// Idle curl handles, kept so that connections (and TLS sessions) are reused; a call
// takes one (or a new one) and gives it back, so concurrent calls never share one.
class HandlePool {
public:
  CurlEasy acquire();
  void release(CurlEasy easy) noexcept;

private:
  static constexpr std::size_t k_max_idle = 32;
  std::mutex m_mutex;
  std::vector<CurlEasy> m_idle;
};

struct Authorization; // what one request carried (session.cpp)

// The connection side of one registry. Thread-safe: every exchange takes its own curl
// handle from the pool; the authentication state is guarded by auth_mutex, the token
// cache by its own lock, the counters are atomic.
struct Session {
  Session(std::string host_, ClientOptions options_, core::LogSink& log_);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  std::string host;
  std::string base; // "https://HOST", with Docker Hub's API host for docker.io
  std::string base_origin;
  ClientOptions options;
  core::LogSink& log;  // must be thread-safe: every thread logs through it
  std::string ca_path; // the host's CA bundle (system_ca_bundle()), or empty
  std::string ca_blob; // system trust + --ca-file, or empty to use ca_path
  HandlePool pool;

  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> retries{0};
  std::atomic<std::uint64_t> bytes_down{0};
  std::atomic<std::uint64_t> bytes_up{0};

  // Authentication: what the registry asked for, the credentials, the tokens.
  enum class Scheme { unknown, basic, bearer };
  std::mutex auth_mutex; // guards the fields up to `tokens`
  Scheme scheme = Scheme::unknown;
  std::string realm;
  std::string service;
  bool credentials_resolved = false;
  std::optional<Credentials> credentials;
  TokenCache tokens;                // thread-safe itself
  std::mutex token_mutex;           // one token request at a time (the others then find it cached)
  std::mutex secrets_mutex;         // guards `secrets`
  std::vector<std::string> secrets; // redacted from every message and log line

  // One exchange, as it went.
  Response perform(Request& request);
  // The request loop: authentication, redirects, retries (see session.cpp). Returns
  // successes and 404s (and transient failures with Retry::caller); throws a
  // core::RegistryError for everything else.
  Response execute(const Call& call, Request request);
  // Throws the core::RegistryError for `response`: message, URL, hint.
  [[noreturn]] void fail(const Call& call, const Request& request, const Response& response, int attempts = 1);
  std::string describe(const Response& response) const;
  std::string hint_for(Outcome outcome, const Call& call, const Response& response);
  // Logs the failure and sleeps: exponential backoff with full jitter, or Retry-After.
  void wait_before_retry(const Call& call, const Request& request, const Response& response, int attempt);
  // `text` without any secret this session knows.
  std::string scrub(std::string text);
  void add_secret(std::string secret);

  const std::optional<Credentials>& resolve_credentials(); // with auth_mutex held
  Authorization authorization_for(const Call& call);
  bool answer_challenge(const Call& call, const Response& response, const Authorization& sent);
  std::string fetch_token(const ScopeSet& scopes);

  // BASE/v2/REPOSITORY/REST
  std::string url(const std::string& repository, const std::string& rest) const {
    return base + "/v2/" + repository + "/" + rest;
  }
  // A Call for `repository` with the token scope `access` needs.
  Call call_for(std::string what, const std::string& repository, Access access) const;
  ClientStats stats() const;
};

} // namespace ferry::registry
