// An OCI distribution (v1.1) client: pull and push manifests and blobs. No curl types
// here; curl_easy.hpp is private to registry/*.cpp.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/digest.hpp"
#include "core/io.hpp"
#include "core/log.hpp"
#include "core/secret.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::registry {

// "HOST[:PORT][/PREFIX]" as operators write a registry location (--registry, --mirror):
// the host and the repository prefix, without slashes at either end of the prefix.
struct Location {
  std::string host;
  std::string prefix; // may be empty
  // Splits `text`; the caller checks what it needs (no scheme, non-empty host).
  static Location split(std::string_view text);
};

// TLS settings for one registry (and its token endpoint).
struct TlsOptions {
  std::filesystem::path ca_file;   // extra trust anchors (PEM); empty: system trust only
  std::filesystem::path cert_file; // client certificate for mTLS (PEM)
  std::filesystem::path key_file;  // its private key (PEM)
  bool insecure_skip_verify = false;
  bool plain_http = false;         // http:// instead of https://
};

// A username and password (or an identity token, used as a refresh token in the
// bearer flow). Never printed, logged or put into a message. Every copy overwrites its
// secrets when it is destroyed (no move constructor: a moved short string would leave
// them behind in the source).
struct Credentials {
  std::string username;
  std::string password;
  std::string identity_token;

  ~Credentials() {
    core::wipe(password);
    core::wipe(identity_token);
  }
};

struct ClientOptions {
  TlsOptions tls;
  // Explicit credentials (--username/--password-stdin). When absent, credentials come
  // from $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json, ~/.docker/config.json
  // (auths: auth / username+password / identitytoken; credHelpers and credsStore via
  // docker-credential-*), in that order; none found means anonymous.
  std::optional<Credentials> credentials;
  int max_attempts = 6;                               // per request, first try included
  std::chrono::milliseconds initial_backoff{200};     // doubled each retry, with jitter
  std::chrono::seconds connect_timeout{15};
  // A transfer that moves less than 1 KiB/s for this long is aborted (and retried). Answer
  // headers count as nothing moved, so headers that do not arrive whole within this time
  // abort the request too, however fast they trickle; non-2xx bodies are read up to 64 KiB.
  std::chrono::seconds stall_timeout{60};
  // Blobs larger than this are uploaded in PATCH chunks of this size (for proxies with
  // body-size limits); smaller ones in one PUT.
  std::uint64_t chunk_size = 64ull << 20;
  std::string user_agent = "ferry";
  // Tags per page asked of the registry by list_tags (the `n` parameter); 0 leaves the
  // page size to the registry. list_tags follows the Link header across pages either way.
  std::uint32_t tags_page_size = 0;
};

// What a manifest request returned: the exact bytes, their media type (Content-Type)
// and digest (computed here, and checked against Docker-Content-Digest when sent).
struct ManifestData {
  std::string bytes;
  std::string media_type;
  core::Digest digest;
  std::uint64_t size = 0; // bytes.size(); for head_manifest (no bytes) the Content-Length
};

// Transfer counters, for summaries and tests.
struct ClientStats {
  std::uint64_t requests = 0;
  std::uint64_t retries = 0;
  std::uint64_t bytes_down = 0;
  std::uint64_t bytes_up = 0;
};

// hash: push_blob hashes what it reads and refuses to complete an upload whose content
// does not match the digest. trusted: the caller verifies the same bytes itself (the
// bundle reader does, before it lets the upload finish) and the registry checks the
// digest when the upload completes; the second hash is skipped.
enum class ContentCheck { hash, trusted };

// One registry host ("quay.io", "localhost:5000"). Thread-safe: concurrent calls each
// use their own connection from a pool (so -j N transfers run in parallel); tokens are
// shared. Every failure is a core::RegistryError naming the URL (without credentials),
// repository, digest or tag, the HTTP status and the registry's error code/message,
// after bounded retries for transient failures (connection errors, 5xx, 429 with
// Retry-After). A digest mismatch is a core::IntegrityError.
class Client {
public:
  Client(std::string host, ClientOptions options, core::LogSink& log);
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client();

  const std::string& host() const noexcept;
  // "https://HOST" or "http://HOST"; for messages.
  std::string endpoint() const;

  // --- plain resources (Helm chart repositories: index.yaml, chart archives) ---
  // GET `url` (absolute, on this client's host) and return its body, at most `limit`
  // bytes (more is a RegistryError). Same TLS options, authentication (as the server
  // challenges: basic with the client's credentials, or bearer), redirects (credentials
  // never sent to another host) and retries as the registry calls. `what` is the
  // message's subject ("fetching index.yaml of https://charts.example.com/"); a 404 is a
  // RegistryError with `not_found_hint`.
  std::string get_url(const std::string& url, std::size_t limit, const std::string& what,
                      const std::string& not_found_hint = {});

  // --- checks (ferry doctor) ---
  // GET /v2/ (authenticating as the registry asks): reachability, TLS and credentials.
  // RegistryError naming the cause otherwise.
  void ping();
  // Opens an upload session in `repository` and cancels it: proves push permission
  // without storing anything. RegistryError (denied, not found, ...) otherwise.
  void probe_push(const std::string& repository);

  // --- pull ---
  // GET /v2/REPO/manifests/REF with Accept for OCI index/manifest and Docker manifest
  // list/v2. The bytes are kept exactly. With a digest REF the content must hash to it.
  // Schema 1 manifests are refused with a clear error. Not found: RegistryError.
  ManifestData get_manifest(const std::string& repository, const std::string& reference);
  // HEAD of a manifest: its digest, media type and size, or nullopt when absent. `bytes`
  // stays empty, unless the registry's answer lacked a digest, a specific media type or
  // a size: then the manifest is fetched with GET and returned whole.
  std::optional<ManifestData> head_manifest(const std::string& repository, const std::string& reference);
  // GET /v2/REPO/blobs/DIGEST streamed into `out`; `size` bytes expected. The digest is
  // checked before the call returns (IntegrityError otherwise). More bytes than `size`
  // stop the transfer at once (IntegrityError); fewer in a complete answer too. On any
  // exception `out` may hold part or all of the bytes, unverified: the caller discards
  // them. Interrupted transfers resume with Range where the registry allows it (each
  // byte reaches `out` once); a registry that ignores Range fails the call. An attempt
  // that delivered at least 1 MiB (or the rest) before it broke starts the count of
  // attempts over; smaller ones use up max_attempts like any failure. Redirects
  // are followed without credentials. Exceptions thrown by `out` pass through as they are.
  void get_blob(const std::string& repository, const core::Digest& digest, std::uint64_t size, core::Sink& out);

  // --- push ---
  bool blob_exists(const std::string& repository, const core::Digest& digest);
  // Cross-repository mount (POST ?mount=&from=); true when the registry mounted it.
  bool mount_blob(const std::string& repository, const core::Digest& digest, const std::string& from_repository);
  // Uploads `size` bytes from `body` as blob `digest` (monolithic, or chunked above
  // chunk_size). `body` is read once, front to back; at most chunk_size bytes of it are
  // held in memory at a time, so every request can be sent again: a failed monolithic
  // PUT is retried in a new upload session, a broken PATCH resumes from the offset the
  // session reports. The content is hashed on the way and must match `digest` before
  // the upload is committed (IntegrityError otherwise; so is a body shorter than `size`);
  // the registry checks it again.
  void push_blob(const std::string& repository, const core::Digest& digest, std::uint64_t size, core::Source& body,
                 ContentCheck check = ContentCheck::hash);
  // PUT a manifest by tag or digest; the registry's Docker-Content-Digest must equal
  // the digest of `bytes` (IntegrityError otherwise).
  void put_manifest(const std::string& repository, const std::string& reference, const std::string& media_type,
                    const std::string& bytes);
  // All tags, across pages (Link: rel="next"); an unknown repository has none (empty).
  std::vector<std::string> list_tags(const std::string& repository);
  // The registry's catalog (GET /v2/_catalog, token scope registry:catalog:*), across
  // pages (Link: rel="next"; page size as for list_tags). RegistryError when the registry
  // has no catalog (404) or refuses it, with a hint to name the repositories instead.
  std::vector<std::string> list_repositories();

  ClientStats stats() const;

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace ferry::registry
