// Helm HTTP chart repository for tests: cpp-httplib serving a directory, certificates
// made with the openssl CLI.
// SPDX-License-Identifier: Apache-2.0
#include "common/chart_repo_server.hpp"

#include "common/registry_fixture.hpp"

#include <doctest/doctest.h>
#include <httplib.h>
#include <openssl/evp.h>

#include <chrono>
#include <mutex>
#include <thread>

namespace ferry::test {

namespace fs = std::filesystem;

namespace {

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// A CA and a server certificate for 127.0.0.1 / localhost signed by it, in `dir`:
// ca.pem, server.pem, server.key.
void make_certificates(const fs::path& dir) {
  fs::create_directories(dir);
  must_run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            (dir / "ca.key").string(), "-out", (dir / "ca.pem").string(), "-days", "1", "-subj",
            "/CN=ferry test chart repository CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
            "keyUsage=critical,keyCertSign,cRLSign"});
  must_run({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            (dir / "server.key").string(), "-out", (dir / "server.csr").string(), "-subj", "/CN=localhost"});
  write_file(dir / "server-ext.cnf", "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
                                     "basicConstraints = critical, CA:FALSE\n"
                                     "keyUsage = critical, digitalSignature\n"
                                     "extendedKeyUsage = serverAuth\n");
  must_run({"openssl", "x509", "-req", "-in", (dir / "server.csr").string(), "-CA", (dir / "ca.pem").string(), "-CAkey",
            (dir / "ca.key").string(), "-set_serial", "4096", "-days", "1", "-sha256", "-extfile",
            (dir / "server-ext.cnf").string(), "-out", (dir / "server.pem").string()});
}

std::string content_type(const fs::path& path) {
  const std::string ext = path.extension().string();
  if (ext == ".yaml" || ext == ".yml") return "application/x-yaml";
  if (ext == ".tgz" || ext == ".gz") return "application/x-tar";
  return "application/octet-stream";
}

// The file under `root` that `path` ("/charts/x.tgz") names; empty when it names none.
fs::path resolve(const fs::path& root, const std::string& path) {
  if (path.empty() || path.front() != '/') return {};
  fs::path out = root;
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string part = path.substr(start, end - start);
    if (part == "..") return {};
    if (!part.empty() && part != ".") out /= part;
    start = end + 1;
  }
  std::error_code ec;
  if (!fs::is_regular_file(out, ec)) return {};
  return out;
}

} // namespace

struct ChartRepoServer::State {
  fs::path root;
  ChartRepoOptions options;
  TestDir dir; // certificates
  fs::path ca_file;
  std::unique_ptr<httplib::Server> server;
  std::uint16_t port = 0;
  std::thread thread;
  mutable std::mutex mutex; // guards requests
  std::vector<ChartRepoRequest> requests;

  void handle(const httplib::Request& request, httplib::Response& response) {
    ChartRepoRequest record{request.method, request.path, 0, request.has_header("Authorization")};
    if (options.basic_auth &&
        request.get_header_value("Authorization") != "Basic " + base64(options.username + ":" + options.password)) {
      response.status = 401;
      response.set_header("WWW-Authenticate", "Basic realm=\"ferry test charts\"");
      response.set_content("authentication required\n", "text/plain");
    } else if (const fs::path file = resolve(root, request.path); file.empty()) {
      response.status = 404;
      response.set_content("404 page not found\n", "text/plain");
    } else {
      response.status = 200;
      response.set_content(read_file(file), content_type(file).c_str());
    }
    record.status = response.status;
    const std::lock_guard lock(mutex);
    requests.push_back(std::move(record));
  }
};

ChartRepoServer::ChartRepoServer(fs::path root, ChartRepoOptions options) : m_state(std::make_unique<State>()) {
  State& state = *m_state;
  state.root = std::move(root);
  state.options = std::move(options);
  if (state.options.tls) {
    const fs::path pki = state.dir / "pki";
    make_certificates(pki);
    state.ca_file = pki / "ca.pem";
    state.server =
        std::make_unique<httplib::SSLServer>((pki / "server.pem").c_str(), (pki / "server.key").c_str());
  } else {
    state.server = std::make_unique<httplib::Server>();
  }
  REQUIRE_MESSAGE(state.server->is_valid(), "chart repository: cannot set up the server (TLS certificate?)");
  const auto handler = [&state](const httplib::Request& request, httplib::Response& response) {
    state.handle(request, response);
  };
  // GET routes answer HEAD as well in cpp-httplib.
  state.server->Get(R"(/.*)", handler);
  const int port = state.server->bind_to_any_port("127.0.0.1");
  REQUIRE_MESSAGE(port > 0, "chart repository: cannot bind 127.0.0.1");
  state.port = static_cast<std::uint16_t>(port);
  state.thread = std::thread([&state] { state.server->listen_after_bind(); });
  // Server::stop() does nothing before the loop runs, so the destructor must not come earlier.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!state.server->is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE_MESSAGE(state.server->is_running(), "chart repository: the accept loop did not start");
}

ChartRepoServer::~ChartRepoServer() {
  m_state->server->stop();
  if (m_state->thread.joinable()) m_state->thread.join();
}

std::uint16_t ChartRepoServer::port() const noexcept { return m_state->port; }

std::string ChartRepoServer::url() const {
  return std::string(m_state->options.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(m_state->port);
}

const fs::path& ChartRepoServer::ca_file() const noexcept { return m_state->ca_file; }

std::vector<ChartRepoRequest> ChartRepoServer::requests() const {
  const std::lock_guard lock(m_state->mutex);
  return m_state->requests;
}

bool ChartRepoServer::served(const std::string& path) const {
  for (const auto& r : requests()) {
    if (r.method == "GET" && r.path == path && r.status == 200) return true;
  }
  return false;
}

} // namespace ferry::test
