// Registry authentication pieces without HTTP: WWW-Authenticate parsing (RFC 7235),
// credentials from docker/podman files and credential helpers, token scopes and the
// token cache, and redaction of secrets in text meant for people. Private to registry/.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/log.hpp"
#include "registry/client.hpp"

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::registry {

// One challenge of a WWW-Authenticate field: `Bearer realm="…",service="…"`.
struct Challenge {
  std::string scheme;                        // lower-cased: "basic", "bearer"
  std::map<std::string, std::string> params; // names lower-cased, values unquoted
  std::string token68;                       // the rare `Scheme token68` form

  // The parameter's value, or an empty string when absent.
  std::string param(const std::string& name) const;
};

// Parses one WWW-Authenticate field value (RFC 7235 §4.1), which may list several
// challenges: `Basic realm="x", Bearer realm="y",scope="a,b"`. Schemes and parameter
// names are case-insensitive; values are tokens or quoted strings with backslash
// escapes. nullopt when the value is malformed (unterminated quote, a parameter
// without a value, a repeated parameter, text between parameters without a comma).
std::optional<std::vector<Challenge>> parse_challenges(std::string_view field);

// Where credentials are looked up. from_process() reads the real environment; tests
// pass their own paths.
struct AuthEnvironment {
  std::string registry_auth_file; // $REGISTRY_AUTH_FILE (podman/skopeo), or empty
  std::string docker_config;      // $DOCKER_CONFIG (a directory holding config.json), or empty
  std::string home;               // $HOME: ~/.docker/config.json
  std::string path;               // $PATH: where docker-credential-* helpers are found

  static AuthEnvironment from_process();
};

// The credentials file that applies: $REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json,
// else ~/.docker/config.json; the first that exists wins. nullopt when none exists.
std::optional<std::filesystem::path> find_auth_file(const AuthEnvironment& env);

// Credentials for registry `host` ("quay.io", "localhost:5000", "docker.io") from the
// file find_auth_file() picks: its credHelpers entry for the host, else its credsStore,
// else its `auths` entry ("auth" = base64 of user:password, or "username"/"password",
// or "identitytoken"). Keys match as a bare host, "https://host" or "https://host/v1/";
// docker.io also matches "https://index.docker.io/v1/", "index.docker.io" and
// "registry-1.docker.io". A helper prints {"Username","Secret"}; the user name
// "<token>" makes Secret an identity token. nullopt when nothing applies (anonymous).
// A file whose `auths` hold a secret is refused (UsageError, "chmod 600 FILE") when group
// or others may access it. A malformed file is a UsageError naming the file and the key,
// never the content; a
// helper that fails (other than "credentials not found") is a RegistryError. A missing
// helper program is logged as a warning and treated as "no credentials".
std::optional<Credentials> find_credentials(std::string_view host, const AuthEnvironment& env, core::LogSink& log);

// Token scopes of the distribution token spec: resource ("repository:library/nginx")
// to actions ("pull", "push").
class ScopeSet {
public:
  // Adds "repository:NAME:pull,push"; false (and nothing added) when malformed.
  bool add(std::string_view scope);
  void add(const std::string& resource, std::initializer_list<std::string_view> actions);
  void merge(const ScopeSet& other);
  // Whether every action of `other` is in this set.
  bool covers(const ScopeSet& other) const;
  bool empty() const noexcept { return m_scopes.empty(); }
  // One "type:name:action,action" per resource, sorted: the `scope` request parameters.
  std::vector<std::string> strings() const;

private:
  std::map<std::string, std::set<std::string>> m_scopes;
};

// Bearer tokens by the scopes they were granted for; thread-safe. A cached token serves
// any request whose scopes it covers, until `usable_until`.
class TokenCache {
public:
  using Clock = std::chrono::steady_clock;

  std::optional<std::string> find(const ScopeSet& wanted, Clock::time_point now) const;
  void store(const ScopeSet& scopes, std::string token, Clock::time_point usable_until);
  // Drops `token` (the registry answered it with 401 invalid_token).
  void forget(std::string_view token);

private:
  struct Entry {
    ScopeSet scopes;
    std::string token;
    Clock::time_point usable_until;
  };
  mutable std::mutex m_mutex;
  std::vector<Entry> m_entries;
};

// A token endpoint's answer: {"token"|"access_token", "expires_in", "issued_at"}.
struct TokenAnswer {
  std::string token;
  std::chrono::seconds expires_in{60}; // the token spec's default, and its minimum
};
// nullopt when the body is not JSON or holds no token.
std::optional<TokenAnswer> parse_token_answer(std::string_view body);

// `url` fit for messages and logs: user-info removed, and every query value replaced by
// "REDACTED" except those of harmless parameters (digest, mount, from, n, last, service,
// scope); presigned redirect URLs carry signatures and tokens in their queries.
std::string redact_url(std::string_view url);

// `text` with every occurrence of each non-empty secret replaced by "***".
std::string redact_secrets(std::string text, const std::vector<std::string>& secrets);

} // namespace ferry::registry
