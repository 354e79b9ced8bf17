// Registry connection flags.
// SPDX-License-Identifier: Apache-2.0
#include "cli/commands/registry_flags.hpp"

#include "core/error.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>

namespace ferry::cli {

void add_registry_flags(CLI::App& cmd, RegistryFlags& flags, const char* what) {
  const std::string of = std::string(" (") + what + ")";
  cmd.add_option("--ca-file", flags.ca_file, "Trust this CA bundle (PEM) in addition to the system's" + of);
  cmd.add_option("--cert-file", flags.cert_file, "Client certificate for mutual TLS (PEM)" + of);
  cmd.add_option("--key-file", flags.key_file, "Private key of --cert-file (PEM)" + of);
  cmd.add_flag("--insecure-skip-tls-verify", flags.insecure_skip_tls_verify,
               "Do not verify TLS certificates (lab use only)" + of);
  cmd.add_flag("--plain-http", flags.plain_http, "Use plain HTTP instead of HTTPS" + of);
  cmd.add_option("--username", flags.username, "Registry user name" + of + "; else docker/podman credentials are used");
  cmd.add_flag("--password-stdin", flags.password_stdin, "Read the password (or token) from standard input");
  cmd.add_option("-j,--jobs", flags.jobs, "Parallel blob transfers (default 4)");
  cmd.add_option("--chunk-size", flags.chunk_size,
                 "Upload blobs larger than this in chunks of this size, e.g. 1M for proxies with body limits (default: "
                 "8M for push, 64M otherwise)");
  cmd.add_option("--timeout", flags.timeout,
                 "Give up on a request that cannot connect or moves no data for this long, then retry it, e.g. 30s or "
                 "2m (default 60s)");
  cmd.add_option("--retries", flags.retries,
                 "Retries of a failed request (connection errors, timeouts, 5xx, 429) before ferry gives up (default 5)");
}

namespace {

// "90", "90s", "2m", "1h" -> seconds; at least 1 s (curl's low-speed check counts whole
// seconds).
std::chrono::seconds parse_timeout(const std::string& text) {
  std::size_t used = 0;
  unsigned long long value = 0;
  try {
    value = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string suffix = text.substr(used);
  const unsigned long long unit = suffix.empty() || suffix == "s" ? 1 : suffix == "m" ? 60 : suffix == "h" ? 3600 : 0;
  if (used == 0 || unit == 0 || value == 0 || value > 24 * 3600 / unit) {
    throw core::UsageError("--timeout '" + text + "' is not a duration between 1s and 24h",
                           "use a number of seconds with s, m or h, e.g. --timeout 30s");
  }
  return std::chrono::seconds(value * unit);
}

} // namespace

registry::ClientOptions client_options(const RegistryFlags& flags) {
  registry::ClientOptions o;
  o.tls.ca_file = flags.ca_file;
  o.tls.cert_file = flags.cert_file;
  o.tls.key_file = flags.key_file;
  o.tls.insecure_skip_verify = flags.insecure_skip_tls_verify;
  o.tls.plain_http = flags.plain_http;
  if (!flags.chunk_size.empty()) {
    // K/M/G suffixes (powers of 1024), at least 64 KiB (a PATCH below that helps no one).
    std::size_t used = 0;
    unsigned long long value = 0;
    try {
      value = std::stoull(flags.chunk_size, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    const std::string suffix = flags.chunk_size.substr(used);
    const unsigned long long unit = suffix.empty() ? 1 : suffix == "K" ? 1ull << 10 : suffix == "M" ? 1ull << 20
                                                       : suffix == "G" ? 1ull << 30 : 0;
    if (used == 0 || unit == 0 || value * unit < (64ull << 10)) {
      throw core::UsageError("--chunk-size '" + flags.chunk_size + "' is not a size of at least 64K",
                             "use a number with K, M or G, e.g. --chunk-size 1M");
    }
    o.chunk_size = value * unit;
  }
  if (!flags.timeout.empty()) {
    o.stall_timeout = parse_timeout(flags.timeout);
    o.connect_timeout = std::min(o.connect_timeout, o.stall_timeout);
  }
  if (flags.retries != -1) {
    if (flags.retries < 0 || flags.retries > 100) {
      throw core::UsageError("--retries " + std::to_string(flags.retries) + " is not between 0 and 100");
    }
    o.max_attempts = flags.retries + 1;
  }
  if (!flags.cert_file.empty() != !flags.key_file.empty()) {
    throw core::UsageError("--cert-file and --key-file go together", "give both, or neither");
  }
  if (!flags.username.empty() || flags.password_stdin) {
    if (flags.username.empty() || !flags.password_stdin) {
      throw core::UsageError("--username needs --password-stdin (and the other way round)",
                             "echo \"$PASSWORD\" | ferry ... --username USER --password-stdin");
    }
    std::string password;
    std::getline(std::cin, password);
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) throw core::UsageError("--password-stdin read an empty password from standard input");
    o.credentials = registry::Credentials{flags.username, std::move(password), {}};
  }
  return o;
}

} // namespace ferry::cli
