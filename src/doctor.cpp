// Registry pre-flight checks.
// SPDX-License-Identifier: Apache-2.0
#include "doctor.hpp"

#include "core/digest.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <random>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace ferry {

namespace fs = std::filesystem;
using Status = DoctorCheck::Status;

namespace {

struct HostPort {
  std::string host;
  std::string port;
};

HostPort split_host(const std::string& host, bool plain_http) {
  HostPort hp{host, plain_http ? "80" : "443"};
  if (!host.empty() && host.front() == '[') { // [::1]:5000
    const auto close = host.find(']');
    hp.host = host.substr(1, close - 1);
    if (close + 1 < host.size() && host[close + 1] == ':') hp.port = host.substr(close + 2);
    return hp;
  }
  if (const auto colon = host.rfind(':'); colon != std::string::npos) {
    hp.host = host.substr(0, colon);
    hp.port = host.substr(colon + 1);
  }
  if (hp.host == "docker.io") hp.host = "registry-1.docker.io";
  return hp;
}

struct AddrInfoFree {
  void operator()(addrinfo* a) const noexcept { freeaddrinfo(a); }
};
using AddrInfo = std::unique_ptr<addrinfo, AddrInfoFree>;

// Connects to any of the addresses within `timeout`; "" on success, else the reason.
std::string try_connect(const addrinfo* list, std::chrono::milliseconds timeout) {
  std::string last = "no address";
  for (const addrinfo* a = list; a; a = a->ai_next) {
    core::UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol));
    if (!fd) continue;
    if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) == 0) return "";
    if (errno != EINPROGRESS) {
      last = core::errno_text(errno);
      continue;
    }
    pollfd p{fd.get(), POLLOUT, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (ready == 0) {
      last = "no answer within " + std::to_string(timeout.count() / 1000) + " s";
      continue;
    }
    int error = 0;
    socklen_t length = sizeof error;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
    if (error == 0) return "";
    last = core::errno_text(error);
  }
  return last;
}

std::string first_line(const core::Error& e) {
  std::string text = e.what();
  if (!e.hint().empty()) text += " (" + e.hint() + ")";
  return text;
}

} // namespace

std::vector<DoctorCheck> run_doctor(const DoctorOptions& options, core::LogSink& log) {
  std::vector<DoctorCheck> checks;
  auto add = [&](std::string name, Status status, std::string detail, std::string fix = {}) {
    checks.push_back(DoctorCheck{std::move(name), status, std::move(detail), std::move(fix)});
    return status != Status::failed;
  };
  const HostPort hp = split_host(options.target.host, options.client.tls.plain_http);

  // 1. DNS.
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* raw = nullptr;
  const int resolved = ::getaddrinfo(hp.host.c_str(), hp.port.c_str(), &hints, &raw);
  AddrInfo addresses(raw);
  bool ok = add("dns", resolved == 0 ? Status::ok : Status::failed,
                resolved == 0 ? hp.host + " resolves" : hp.host + ": " + gai_strerror(resolved),
                "check the registry's name, /etc/hosts or the DNS server of this host");

  // 2. TCP.
  if (ok) {
    const std::string reason = try_connect(addresses.get(), std::chrono::seconds(5));
    ok = add("tcp", reason.empty() ? Status::ok : Status::failed,
             reason.empty() ? "connected to " + hp.host + ":" + hp.port : hp.host + ":" + hp.port + ": " + reason,
             "check that the registry listens on that port and that no firewall blocks it"
             " (is the port right? --plain-http uses 80 by default, HTTPS 443)");
  } else {
    add("tcp", Status::skipped, "needs dns");
  }

  registry::ClientOptions client_options = options.client;
  client_options.chunk_size = options.probe_size + 1; // the probe goes as one request
  client_options.max_attempts = 2;
  registry::Client client(options.target.host, client_options, log);

  // 3. API: TLS chain, token endpoint, credentials.
  if (ok) {
    try {
      client.ping();
      add("api", Status::ok, client.endpoint() + "/v2/ answers" +
                                 (options.client.tls.plain_http ? " (plain HTTP)" : ", TLS certificate trusted") +
                                 ", authentication accepted");
    } catch (const core::Error& e) {
      // The error's own hint is the most specific fix there is.
      ok = add("api", Status::failed, e.what(),
               !e.hint().empty() ? e.hint()
                                 : "a TLS problem needs --ca-file CA.pem (or --insecure-skip-tls-verify in a lab), "
                                   "a registry that wants client certificates --cert-file and --key-file; a 401 "
                                   "needs --username with --password-stdin or a docker login");
    }
  } else {
    add("api", Status::skipped, "needs tcp");
  }

  // 4. Push permission, without storing anything.
  const std::string repo = options.target.prefix.empty() ? "ferry-doctor" : options.target.prefix + "/ferry-doctor";
  if (ok) {
    try {
      client.probe_push(repo);
      add("push", Status::ok, "may push to " + options.target.host + "/" + repo);
    } catch (const core::Error& e) {
      ok = add("push", Status::failed, first_line(e),
               "grant the user push rights on " + options.target.str() + "/* (for token auth: the push action in "
               "the token server's access rules)");
    }
  } else {
    add("push", Status::skipped, "needs api");
  }

  // 5. Body size: one upload of probe_size bytes in a single request.
  std::optional<core::Digest> probe;
  if (ok) {
    std::string bytes(options.probe_size, '\0');
    std::mt19937_64 random(std::random_device{}());
    for (auto& c : bytes) c = static_cast<char>(random());
    const core::Digest digest = core::sha256_of(bytes);
    try {
      core::StringSource source(bytes);
      client.push_blob(repo, digest, bytes.size(), source);
      probe = digest;
      add("body-size", Status::ok, "a " + std::to_string(options.probe_size >> 20) + " MiB upload in one request passed");
    } catch (const core::Error& e) {
      add("body-size", Status::warning, first_line(e),
          "a proxy in front of the registry limits request bodies: raise its limit (nginx: "
          "client_max_body_size 0;) or push with --chunk-size 1M");
    }
  } else {
    add("body-size", Status::skipped, "needs push");
  }

  // 6. Cross-repository mounts (shared layers move once).
  if (probe) {
    try {
      const bool mounted = client.mount_blob(repo + "-mount", *probe, repo);
      add("mount", mounted ? Status::ok : Status::warning,
          mounted ? "cross-repository mounts work" : "the registry does not mount blobs across repositories",
          "no action needed: shared layers are then uploaded once per repository (slower, same result)");
    } catch (const core::Error& e) {
      add("mount", Status::warning, first_line(e), "shared layers will be uploaded once per repository");
    }
  } else {
    add("mount", Status::skipped, "needs body-size");
  }

  // 7. Free disk where ferry keeps its state.
  fs::path dir = options.state_dir.empty() ? default_state_dir() : options.state_dir;
  while (!dir.empty() && !fs::exists(dir) && dir != dir.parent_path()) dir = dir.parent_path();
  struct statvfs st {};
  if (!dir.empty() && ::statvfs(dir.c_str(), &st) == 0) {
    const std::uint64_t free_bytes = static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize;
    add("disk", free_bytes >= (1ull << 30) ? Status::ok : Status::warning,
        std::to_string(free_bytes >> 20) + " MiB free in " + core::display(dir),
        "free space there or give --state-dir on another file system (push needs little: its journal)");
  } else {
    add("disk", Status::warning, "cannot read free space of " + core::display(dir), "check --state-dir");
  }
  return checks;
}

} // namespace ferry
