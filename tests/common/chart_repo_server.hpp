// A Helm HTTP chart repository for tests: a static file server (cpp-httplib) on
// 127.0.0.1 serving a directory that `helm package` and `helm repo index` filled, in plain
// HTTP or TLS (own CA), optionally requiring basic authentication.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "common/test_dir.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ferry::test {

struct ChartRepoOptions {
  // HTTPS with a certificate for IP:127.0.0.1 and DNS:localhost, signed by a CA made for
  // this server (ca_file()).
  bool tls = false;
  // Every request must carry `Authorization: Basic` with username:password (as an
  // htpasswd-protected web server wants); others get 401 with a Basic challenge.
  bool basic_auth = false;
  std::string username = "ferry";
  std::string password = "ferry-test-secret";
};

// One request as the server answered it.
struct ChartRepoRequest {
  std::string method;
  std::string path; // decoded, with the query removed
  int status = 0;
  bool had_credentials = false; // an Authorization header was sent
};

// Serves the regular files under `root` (GET and HEAD; "/index.yaml" is root/index.yaml)
// from construction to destruction, reading each file when it is asked for, so tests may
// change files while it runs. Paths with ".." and anything but regular files are 404.
// Never copied or moved.
class ChartRepoServer {
public:
  explicit ChartRepoServer(std::filesystem::path root, ChartRepoOptions options = {});
  ChartRepoServer(const ChartRepoServer&) = delete;
  ChartRepoServer& operator=(const ChartRepoServer&) = delete;
  ~ChartRepoServer();

  std::uint16_t port() const noexcept;
  // "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT", without a trailing slash.
  std::string url() const;
  // PEM of the CA that signed the server's certificate; empty path without tls.
  const std::filesystem::path& ca_file() const noexcept;
  // Every request so far, oldest first.
  std::vector<ChartRepoRequest> requests() const;
  // Whether a GET of `path` was answered with 200.
  bool served(const std::string& path) const;

private:
  struct State;
  std::unique_ptr<State> m_state;
};

} // namespace ferry::test
