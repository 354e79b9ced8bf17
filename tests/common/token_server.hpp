// A bearer-token server for registry tests (the "realm" of Docker's token authentication):
// it checks basic credentials and hands out ES256 JWTs that distribution 2.8 accepts,
// and records every request so tests can assert which scopes a client asked for.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ferry::test {

struct TokenServerOptions {
  std::string username = "ferry";
  std::string password = "ferry-test-secret";
  std::string service = "ferry-test-registry";   // the registry's auth.token.service (JWT "aud")
  std::string issuer = "ferry-test-issuer";      // the registry's auth.token.issuer (JWT "iss")
  bool deny_push = false;                        // grant pull (and delete) but never push
  std::chrono::seconds lifetime{300};            // token lifetime ("expires_in")
};

// One request to the token endpoint, as the client sent it and as it was answered.
struct TokenRequest {
  std::string method;                 // "GET", or "POST" (OAuth2 form, grant_type=password)
  std::string service;                // the service parameter
  std::vector<std::string> scopes;    // each scope parameter, e.g. "repository:team/app:pull,push"
  std::string user;                   // the user name the client sent; empty without credentials
  int status = 0;                     // 200 (token issued), 400 or 401
  std::vector<std::string> granted;   // scopes in the token, e.g. "repository:team/app:pull"
};

// Listens on 127.0.0.1 (free port, plain HTTP) from construction to destruction:
//   GET  /token?service=S&scope=repository:NAME:ACTIONS[&scope=...]  with basic credentials
//   POST /token  form: grant_type=password, username, password, service, scope (space-separated)
// answer 200 {"token", "access_token", "expires_in", "issued_at"} or 401 with a Basic
// challenge. The token is a JWT signed with ES256 by a self-signed P-256 certificate
// (certificate(), the registry's rootcertbundle) that it carries in its "x5c" header.
// Actions granted are those asked for (pull, push, delete, *), minus push with deny_push.
// Never copied or moved.
class TokenServer {
public:
  // Writes its key and certificate into `dir` (created) with the openssl CLI.
  explicit TokenServer(const std::filesystem::path& dir, TokenServerOptions options = {});
  TokenServer(const TokenServer&) = delete;
  TokenServer& operator=(const TokenServer&) = delete;
  ~TokenServer();

  std::uint16_t port() const noexcept;
  // "http://127.0.0.1:PORT/token": the registry's auth.token.realm.
  std::string realm() const;
  const std::string& service() const noexcept;
  const std::string& issuer() const noexcept;
  // PEM of the signing certificate: the registry's auth.token.rootcertbundle.
  const std::filesystem::path& certificate() const noexcept;

  void set_deny_push(bool deny);
  // Every request so far, oldest first.
  std::vector<TokenRequest> requests() const;
  // Whether some request asked for a scope naming `repository` with `action`
  // (e.g. "team/app", "push"), whatever the other actions in that scope.
  bool requested(const std::string& repository, const std::string& action) const;
  void clear_requests();

private:
  struct State;
  std::unique_ptr<State> m_state;
};

} // namespace ferry::test
