// docker-registry on 127.0.0.1 for tests, and the skopeo helpers around it.
// SPDX-License-Identifier: Apache-2.0
#include "common/registry_fixture.hpp"

#include "common/token_server.hpp"

#include <doctest/doctest.h>
#include <httplib.h>
#include <openssl/evp.h>

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <netinet/in.h>
#include <poll.h>
#include <random>
#include <signal.h>
#include <spawn.h>
#include <string_view>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace ferry::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr auto k_start_timeout = 10s;
constexpr auto k_stop_timeout = 5s;
constexpr int k_start_attempts = 5;

// Closes a file descriptor it owns.
class Fd {
public:
  explicit Fd(int fd = -1) noexcept : m_fd(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const noexcept { return m_fd; }
  void reset() noexcept {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = -1;
  }

private:
  int m_fd;
};

class SpawnActions {
public:
  SpawnActions() { ::posix_spawn_file_actions_init(&m_actions); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  ~SpawnActions() { ::posix_spawn_file_actions_destroy(&m_actions); }
  posix_spawn_file_actions_t* get() noexcept { return &m_actions; }

private:
  posix_spawn_file_actions_t m_actions;
};

std::string join_command(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& word : argv) line += (line.empty() ? "" : " ") + shell_quote(word);
  return line;
}

// argv as the C array posix_spawn wants; the strings must outlive it.
std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// This process's environment without REGISTRY_* variables, which would override the
// registry's configuration file.
std::vector<std::string> registry_environment() {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string entry(*e);
    if (entry.rfind("REGISTRY_", 0) != 0) env.push_back(entry);
  }
  return env;
}

std::string random_hex(std::size_t bytes) {
  static const char digits[] = "0123456789abcdef";
  std::random_device device;
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) {
    const auto b = device() & 0xffu;
    out += digits[b >> 4];
    out += digits[b & 0xfu];
  }
  return out;
}

// A YAML double-quoted scalar.
std::string yaml_quote(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string sha256_hex(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  REQUIRE(EVP_Digest(bytes.data(), bytes.size(), md, &length, EVP_sha256(), nullptr) == 1);
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += digits[md[i] >> 4];
    out += digits[md[i] & 0xfu];
  }
  return out;
}

// A CA: EC P-256 key and self-signed certificate `name`.key / `name`.pem in `dir`.
void make_ca(const fs::path& dir, const std::string& name, const std::string& common_name) {
  must_run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            (dir / (name + ".key")).string(), "-out", (dir / (name + ".pem")).string(), "-days", "1", "-subj",
            "/CN=" + common_name, "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
            "keyUsage=critical,keyCertSign,cRLSign"});
}

// What a leaf certificate is for: a TLS server (SAN IP:127.0.0.1, DNS:localhost) or a TLS
// client (mutual TLS).
enum class CertUse { server, client };
// Valid from now for a day, or expired since 2020 (still correctly signed).
enum class Validity { current, expired };

// Signs `csr` with the CA `ca_name` in `dir` (openssl ca, which can backdate), writing `out`
// with the extensions of `use`.
void sign_certificate(const fs::path& dir, const std::string& ca_name, const fs::path& csr, const fs::path& out,
                      CertUse use, Validity validity) {
  const fs::path db = dir / (ca_name + "-db");
  fs::create_directories(db);
  write_file(db / "index.txt", "");
  write_file(db / "serial", "1000\n");
  write_file(dir / (ca_name + ".cnf"), "[ca]\n"
                                       "default_ca = test_ca\n"
                                       "[test_ca]\n"
                                       "database = " + (db / "index.txt").string() + "\n"
                                       "new_certs_dir = " + db.string() + "\n"
                                       "serial = " + (db / "serial").string() + "\n"
                                       "default_md = sha256\n"
                                       "policy = any_name\n"
                                       "unique_subject = no\n"
                                       "[any_name]\n"
                                       "commonName = supplied\n");
  const fs::path extensions = dir / (use == CertUse::server ? "server-ext.cnf" : "client-ext.cnf");
  write_file(extensions, use == CertUse::server ? "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
                                                  "basicConstraints = critical, CA:FALSE\n"
                                                  "keyUsage = critical, digitalSignature\n"
                                                  "extendedKeyUsage = serverAuth\n"
                                                : "basicConstraints = critical, CA:FALSE\n"
                                                  "keyUsage = critical, digitalSignature\n"
                                                  "extendedKeyUsage = clientAuth\n");
  std::vector<std::string> argv{"openssl", "ca", "-batch", "-notext", "-config", (dir / (ca_name + ".cnf")).string(),
                                "-cert", (dir / (ca_name + ".pem")).string(), "-keyfile",
                                (dir / (ca_name + ".key")).string(), "-in", csr.string(), "-out", out.string(),
                                "-extfile", extensions.string()};
  if (validity == Validity::expired) {
    argv.insert(argv.end(), {"-startdate", "20200101000000Z", "-enddate", "20200102000000Z"});
  } else {
    argv.insert(argv.end(), {"-days", "1"});
  }
  must_run(argv);
}

// A new EC P-256 key `key` (unencrypted PKCS#8 PEM) and a certificate request for it, `csr`.
void make_key_and_request(const fs::path& key, const fs::path& csr, const std::string& common_name) {
  must_run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            key.string(), "-out", csr.string(), "-subj", "/CN=" + common_name});
}

} // namespace

std::uint16_t free_local_port() {
  const Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE_MESSAGE(fd.get() >= 0, "socket(): " << std::string(std::strerror(errno)));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  REQUIRE_MESSAGE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0,
                  "bind(127.0.0.1:0): " << std::string(std::strerror(errno)));
  socklen_t length = sizeof address;
  REQUIRE_MESSAGE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) == 0,
                  "getsockname(): " << std::string(std::strerror(errno)));
  return ntohs(address.sin_port);
}

CommandResult run_command(const std::vector<std::string>& argv) {
  REQUIRE(!argv.empty());
  int out_pipe[2];
  int err_pipe[2];
  REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
  Fd out_read(out_pipe[0]);
  Fd out_write(out_pipe[1]);
  REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
  Fd err_read(err_pipe[0]);
  Fd err_write(err_pipe[1]);

  SpawnActions actions;
  ::posix_spawn_file_actions_addopen(actions.get(), 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(actions.get(), out_write.get(), 1);
  ::posix_spawn_file_actions_adddup2(actions.get(), err_write.get(), 2);
  std::vector<std::string> args = argv;
  std::vector<char*> c_args = c_strings(args);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, c_args[0], actions.get(), nullptr, c_args.data(), environ);
  out_write.reset();
  err_write.reset();
  if (rc != 0) return CommandResult{127, "", "cannot start " + argv[0] + ": " + std::string(std::strerror(rc))};

  CommandResult result;
  drain_pipes(out_read.get(), err_read.get(), result.out, result.err);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::string must_run(const std::vector<std::string>& argv) {
  const CommandResult r = run_command(argv);
  INFO("command: ", join_command(argv));
  INFO("stdout: ", r.out);
  INFO("stderr: ", r.err);
  REQUIRE(r.exit_code == 0);
  return r.out;
}

RegistryServer::RegistryServer(RegistryOptions options) : m_options(std::move(options)) {
  if (m_options.expired_cert || m_options.foreign_ca || m_options.mutual_tls) m_options.tls = true;
  REQUIRE_MESSAGE(!(m_options.htpasswd && m_options.token_auth),
                  "RegistryOptions: htpasswd and token_auth cannot be used together");
  fs::create_directories(dir() / "storage");
  if (m_options.tls) make_certificates();
  if (m_options.htpasswd) {
    write_file(dir() / "htpasswd", must_run({"htpasswd", "-Bbn", m_options.username, m_options.password}));
  }
  if (m_options.token_auth) {
    TokenServerOptions token_options;
    token_options.username = m_options.username;
    token_options.password = m_options.password;
    token_options.deny_push = m_options.token_deny_push;
    m_token_server = std::make_unique<TokenServer>(dir() / "token", token_options);
  }
  for (int attempt = 1; attempt <= k_start_attempts; ++attempt) {
    if (start() == Started::yes) return;
  }
  FAIL("docker-registry could not bind a free port on 127.0.0.1 in " << k_start_attempts << " attempts; log:\n"
                                                                    << log());
}

RegistryServer::~RegistryServer() {
  stop();
  if (current_test_failed() || std::uncaught_exceptions() > 0) {
    std::cerr << "docker-registry " << url() << " log (" << (dir() / "registry.log").string() << "):\n" << log();
    if (m_token_server) {
      std::cerr << "token requests to " << m_token_server->realm() << ":\n";
      for (const auto& request : m_token_server->requests()) {
        std::cerr << "  " << request.method << " user=" << request.user << " service=" << request.service
                  << " status=" << request.status << " scopes:";
        for (const auto& scope : request.scopes) std::cerr << " " << scope;
        std::cerr << " granted:";
        for (const auto& scope : request.granted) std::cerr << " " << scope;
        std::cerr << "\n";
      }
    }
  }
}

std::string RegistryServer::host() const { return "127.0.0.1:" + std::to_string(m_port); }

std::string RegistryServer::url() const { return (m_options.tls ? "https://" : "http://") + host(); }

std::string RegistryServer::docker_ref(const std::string& repo_tag) const {
  return "docker://" + host() + "/" + repo_tag;
}

std::string RegistryServer::log() const {
  try {
    return read_file(dir() / "registry.log");
  } catch (const std::exception& e) {
    return std::string("(no log: ") + e.what() + ")\n";
  }
}

TokenServer& RegistryServer::token_server() const {
  REQUIRE_MESSAGE(m_token_server, "token_server() needs RegistryOptions::token_auth");
  return *m_token_server;
}

std::vector<std::string> RegistryServer::skopeo_src_flags() const { return flags("--src-"); }
std::vector<std::string> RegistryServer::skopeo_dest_flags() const { return flags("--dest-"); }
std::vector<std::string> RegistryServer::skopeo_flags() const { return flags("--"); }

std::vector<std::string> RegistryServer::flags(const std::string& prefix) const {
  std::vector<std::string> out;
  if (m_options.tls) {
    out.insert(out.end(), {prefix + "cert-dir", m_cert_dir.string()});
  } else {
    out.push_back(prefix + "tls-verify=false");
  }
  if (m_options.htpasswd || m_options.token_auth) {
    out.insert(out.end(), {prefix + "creds", m_options.username + ":" + m_options.password});
  }
  return out;
}

// CA "ca" (what ca_file() names), and with foreign_ca a second one, "other-ca", that
// signs the server certificate instead. With mutual_tls a third, "client-ca", signs the
// client certificate.
void RegistryServer::make_certificates() {
  const fs::path pki = dir() / "pki";
  fs::create_directories(pki);
  make_ca(pki, "ca", "ferry test CA");
  m_ca_file = pki / "ca.pem";
  std::string signer = "ca";
  if (m_options.foreign_ca) {
    make_ca(pki, "other-ca", "ferry test other CA");
    signer = "other-ca";
  }
  m_server_key = pki / "server.key";
  m_server_cert = pki / "server.pem";
  make_key_and_request(m_server_key, pki / "server.csr", "localhost");
  sign_certificate(pki, signer, pki / "server.csr", m_server_cert, CertUse::server,
                   m_options.expired_cert ? Validity::expired : Validity::current);
  m_cert_dir = dir() / "skopeo-certs";
  fs::create_directories(m_cert_dir);
  fs::copy_file(m_ca_file, m_cert_dir / "ca.crt", fs::copy_options::overwrite_existing);
  if (m_options.mutual_tls) {
    make_ca(pki, "client-ca", "ferry test client CA");
    m_client_ca_file = pki / "client-ca.pem";
    m_client_key = pki / "client.key";
    m_client_cert = pki / "client.pem";
    make_key_and_request(m_client_key, pki / "client.csr", "ferry test client");
    sign_certificate(pki, "client-ca", pki / "client.csr", m_client_cert, CertUse::client, Validity::current);
    // skopeo (containers/image) pairs NAME.cert with NAME.key in its --cert-dir.
    fs::copy_file(m_client_cert, m_cert_dir / "client.cert", fs::copy_options::overwrite_existing);
    fs::copy_file(m_client_key, m_cert_dir / "client.key", fs::copy_options::overwrite_existing);
  }
}

void RegistryServer::write_config() {
  std::string yaml = "version: 0.1\n"
                     "log:\n"
                     "  level: info\n"
                     "  formatter: text\n"
                     "storage:\n"
                     "  filesystem:\n"
                     "    rootdirectory: " + yaml_quote((dir() / "storage").string()) + "\n"
                     "  delete:\n"
                     "    enabled: true\n"
                     "  maintenance:\n"
                     "    uploadpurging:\n"
                     "      enabled: false\n"
                     "http:\n"
                     "  addr: " + host() + "\n"
                     "  secret: " + random_hex(16) + "\n";
  if (m_options.tls) {
    yaml += "  tls:\n"
            "    certificate: " + yaml_quote(m_server_cert.string()) + "\n"
            "    key: " + yaml_quote(m_server_key.string()) + "\n";
    // distribution 2.8 turns a non-empty clientcas into tls.RequireAndVerifyClientCert.
    if (m_options.mutual_tls) {
      yaml += "    clientcas:\n"
              "      - " + yaml_quote(m_client_ca_file.string()) + "\n";
    }
  }
  if (m_options.htpasswd) {
    yaml += "auth:\n"
            "  htpasswd:\n"
            "    realm: ferry-test-registry\n"
            "    path: " + yaml_quote((dir() / "htpasswd").string()) + "\n";
  }
  if (m_token_server) {
    yaml += "auth:\n"
            "  token:\n"
            "    realm: " + yaml_quote(m_token_server->realm()) + "\n"
            "    service: " + yaml_quote(m_token_server->service()) + "\n"
            "    issuer: " + yaml_quote(m_token_server->issuer()) + "\n"
            "    rootcertbundle: " + yaml_quote(m_token_server->certificate().string()) + "\n";
  }
  write_file(dir() / "config.yml", yaml);
}

RegistryServer::Started RegistryServer::start() {
  const auto began = std::chrono::steady_clock::now();
  m_port = free_local_port();
  write_config();

  const fs::path log_path = dir() / "registry.log";
  std::error_code no_log; // the first attempt has none yet
  const auto log_size = fs::file_size(log_path, no_log);
  const std::size_t log_offset = no_log ? 0 : static_cast<std::size_t>(log_size);
  // Appended to, so the log of a failed attempt stays in front of the next one.
  Fd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  REQUIRE_MESSAGE(log_fd.get() >= 0, "cannot open " << log_path.string() << ": " << std::string(std::strerror(errno)));
  SpawnActions actions;
  ::posix_spawn_file_actions_addopen(actions.get(), 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(actions.get(), log_fd.get(), 1);
  ::posix_spawn_file_actions_adddup2(actions.get(), log_fd.get(), 2);
  std::vector<std::string> args{"docker-registry", "serve", (dir() / "config.yml").string()};
  std::vector<char*> c_args = c_strings(args);
  std::vector<std::string> env = registry_environment();
  std::vector<char*> c_env = c_strings(env);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, c_args[0], actions.get(), nullptr, c_args.data(), c_env.data());
  REQUIRE_MESSAGE(rc == 0, "cannot start docker-registry: " << std::string(std::strerror(rc))
                                << " (Debian package docker-registry, /usr/bin/docker-registry)");
  m_pid = pid;
  log_fd.reset();

  try {
    // With mutual_tls the registry refuses a handshake without the client certificate.
    httplib::Client client = m_options.mutual_tls
                                 ? httplib::Client(url(), m_client_cert.string(), m_client_key.string())
                                 : httplib::Client(url());
    client.set_connection_timeout(1, 0);
    client.set_read_timeout(2, 0);
    if (m_options.tls) {
      client.set_ca_cert_path(m_ca_file.string());
      // Only the normal TLS variant can be checked against the CA; the others exist to fail it.
      client.enable_server_certificate_verification(!m_options.expired_cert && !m_options.foreign_ca);
    }
    const auto deadline = began + k_start_timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
        m_pid = -1;
        const std::string text = log();
        // Only this attempt's part of the log counts.
        if (contains(std::string_view(text).substr(std::min(log_offset, text.size())), "address already in use")) {
          return Started::port_in_use;
        }
        const std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                                  : "was killed by signal " + std::to_string(WTERMSIG(status));
        FAIL("docker-registry " << how << " before answering GET " << url() << "/v2/; log:\n" << text);
      }
      const auto response = client.Get("/v2/");
      if (response && (response->status == 200 || response->status == 401)) {
        const auto elapsed = std::chrono::steady_clock::now() - began;
        m_startup_time = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed);
        return Started::yes;
      }
      std::this_thread::sleep_for(20ms);
    }
  } catch (...) {
    stop();
    throw;
  }
  stop();
  const auto timeout = std::chrono::duration_cast<std::chrono::seconds>(k_start_timeout);
  FAIL("docker-registry did not answer GET " << url() << "/v2/ with 200 or 401 within " << timeout.count()
                                             << " s; log:\n"
                                             << log());
  return Started::port_in_use; // not reached: FAIL throws
}

void RegistryServer::stop() noexcept {
  if (m_pid <= 0) return;
  ::kill(m_pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + k_stop_timeout;
  int status = 0;
  while (::waitpid(m_pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(m_pid, SIGKILL);
      while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  m_pid = -1;
}

void push_with_skopeo(const RegistryServer& server, const std::string& source, const std::string& repo_tag,
                      Platforms platforms) {
  std::vector<std::string> argv{"skopeo", "copy", "--quiet"};
  if (platforms == Platforms::all) argv.push_back("--all");
  const auto flags = server.skopeo_dest_flags();
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), {source, server.docker_ref(repo_tag)});
  must_run(argv);
}

std::string registry_digest(const RegistryServer& server, const std::string& repo_tag) {
  std::vector<std::string> argv{"skopeo", "inspect", "--raw"};
  const auto flags = server.skopeo_flags();
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back(server.docker_ref(repo_tag));
  return "sha256:" + sha256_hex(must_run(argv));
}

} // namespace ferry::test
