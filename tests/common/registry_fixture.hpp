// A real container registry for tests: Debian's docker-registry (distribution 2.8) started
// on 127.0.0.1 with a free port, in plain HTTP, TLS (own CA), mutual-TLS, basic-auth
// (htpasswd) or bearer-token (TokenServer) variants, plus skopeo helpers to seed it and
// read it back.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "common/test_dir.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ferry::test {

class TokenServer;

struct RegistryOptions {
  // HTTPS with a certificate for IP:127.0.0.1 and DNS:localhost, signed by a CA made for
  // this server (ca_file()).
  bool tls = false;
  // Implies tls: the server's certificate expired long ago (still signed by ca_file()).
  bool expired_cert = false;
  // Implies tls: the server's certificate is signed by a second CA; ca_file() is still
  // the first one, so clients that trust ca_file() must refuse the server.
  bool foreign_ca = false;
  // Implies tls: the registry requires a client certificate signed by a client CA made for
  // this server (http.tls.clientcas) and refuses a handshake without one. The fixture
  // makes that certificate (client_cert_file(), client_key_file(); extendedKeyUsage
  // clientAuth) and presents it itself (startup probe, skopeo flags).
  bool mutual_tls = false;
  // Basic authentication with username/password (bcrypt htpasswd file). distribution 2.8
  // accepts it over plain HTTP too, so it does not need tls.
  bool htpasswd = false;
  std::string username = "ferry";
  std::string password = "ferry-test-secret";
  // Bearer tokens from a TokenServer started with the registry (same username/password);
  // see token_server(). Not together with htpasswd.
  bool token_auth = false;
  // token_auth: the token server grants pull but never push (it can be changed later
  // with token_server().set_deny_push()).
  bool token_deny_push = false;
};

// Starts `docker-registry serve` on construction and waits until GET /v2/ answers (200 or
// 401), or fails the test with the server's log after about 10 s. The destructor stops it
// (SIGTERM, SIGKILL after 5 s) and prints its log to stderr when the test failed. Its
// configuration, storage, certificates and log live in dir(), a TestDir (kept when the
// test failed). Never copied or moved.
class RegistryServer {
public:
  explicit RegistryServer(RegistryOptions options = {});
  RegistryServer(const RegistryServer&) = delete;
  RegistryServer& operator=(const RegistryServer&) = delete;
  ~RegistryServer();

  const RegistryOptions& options() const noexcept { return m_options; }
  bool tls() const noexcept { return m_options.tls; }
  std::uint16_t port() const noexcept { return m_port; }
  // "127.0.0.1:PORT": the registry host part of an image reference.
  std::string host() const;
  // "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
  std::string url() const;
  // "docker://127.0.0.1:PORT/" + repo_tag, for skopeo.
  std::string docker_ref(const std::string& repo_tag) const;
  // PEM of the CA that signed the server certificate (of the first CA with foreign_ca);
  // empty path without tls.
  const std::filesystem::path& ca_file() const noexcept { return m_ca_file; }
  // A directory for skopeo's --cert-dir: ca.crt (a copy of ca_file()), and with mutual_tls
  // client.cert and client.key (copies of the client certificate and key); empty path
  // without tls.
  const std::filesystem::path& cert_dir() const noexcept { return m_cert_dir; }
  // PEM client certificate (EC P-256, signed by the client CA) and its unencrypted PKCS#8
  // key, for --cert-file / --key-file; empty paths without mutual_tls.
  const std::filesystem::path& client_cert_file() const noexcept { return m_client_cert; }
  const std::filesystem::path& client_key_file() const noexcept { return m_client_key; }
  // PEM of the CA the registry checks client certificates against; empty without mutual_tls.
  const std::filesystem::path& client_ca_file() const noexcept { return m_client_ca_file; }
  // Working directory: config.yml, storage/, certificates, registry.log.
  const std::filesystem::path& dir() const noexcept { return m_dir.path(); }
  // The server's log (stdout and stderr) so far.
  std::string log() const;
  // How long the last start took until /v2/ answered.
  std::chrono::milliseconds startup_time() const noexcept { return m_startup_time; }
  // The token server (token_auth only; fails the test otherwise).
  TokenServer& token_server() const;

  // skopeo flags to reach this registry as it is meant to be reached: --src-tls-verify=false
  // (plain HTTP) or --src-cert-dir DIR (tls; with mutual_tls it holds the client
  // certificate too), plus --src-creds USER:PASSWORD with
  // htpasswd or token_auth. The dest variant is the same with --dest-; skopeo_flags() has
  // the unprefixed flags of single-image commands (skopeo inspect, delete, list-tags).
  std::vector<std::string> skopeo_src_flags() const;
  std::vector<std::string> skopeo_dest_flags() const;
  std::vector<std::string> skopeo_flags() const;

private:
  enum class Started { yes, port_in_use };
  void make_certificates();
  void write_config();
  Started start();
  void stop() noexcept;
  std::vector<std::string> flags(const std::string& prefix) const;

  RegistryOptions m_options;
  TestDir m_dir;
  std::filesystem::path m_ca_file;
  std::filesystem::path m_cert_dir;
  std::filesystem::path m_server_cert;
  std::filesystem::path m_server_key;
  std::filesystem::path m_client_ca_file;
  std::filesystem::path m_client_cert;
  std::filesystem::path m_client_key;
  std::unique_ptr<TokenServer> m_token_server;
  std::uint16_t m_port = 0;
  int m_pid = -1;
  std::chrono::milliseconds m_startup_time{0};
};

// A port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed).
std::uint16_t free_local_port();

// What a command printed and how it ended (exit status, 128 + signal when killed).
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv[0] (found on PATH) with the arguments, no shell, standard input empty;
// collects stdout and stderr. A command that cannot start gives exit_code 127.
CommandResult run_command(const std::vector<std::string>& argv);
// Like run_command(), but a non-zero exit fails the test (REQUIRE) with the command and
// its output; returns stdout.
std::string must_run(const std::vector<std::string>& argv);

// Which images of an index skopeo copies: the one for this machine (skopeo's default) or all.
enum class Platforms { host, all };

// `skopeo copy [--all] FLAGS SOURCE docker://HOST/REPO_TAG`, SOURCE like "oci:DIR:TAG";
// Platforms::all copies every image of an index. Fails the test with skopeo's output on error.
void push_with_skopeo(const RegistryServer& server, const std::string& source, const std::string& repo_tag,
                      Platforms platforms = Platforms::host);

// The digest of the top-level manifest (or index) of `repo_tag` ("team/app:1.0" or
// "team/app@sha256:...") in the registry, as skopeo reads it back (`skopeo inspect --raw`,
// hashed). Fails the test on error.
std::string registry_digest(const RegistryServer& server, const std::string& repo_tag);

} // namespace ferry::test
