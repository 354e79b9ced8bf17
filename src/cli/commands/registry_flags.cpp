// Registry connection flags.
// SPDX-License-Identifier: Apache-2.0
#include "cli/commands/registry_flags.hpp"

#include "core/error.hpp"
#include "core/secret.hpp"

#include <CLI/CLI.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>

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
  cmd.add_option("--password-file", flags.password_file,
                 "Read the password (or token) from the first line of this file (mode 0600); without either, "
                 "--username takes it from $FERRY_PASSWORD");
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

// The credentials --username names, the password from standard input, a file or the
// environment (see client_options in the header); nullopt without --username.
std::optional<registry::Credentials> credentials(const std::string& username, bool password_stdin,
                                                 const std::string& password_file) {
  // The password never comes from argv: every user of the machine can read it there
  // (ps, /proc/PID/cmdline).
  const std::string example = "echo \"$PASSWORD\" | ferry ... --username USER --password-stdin";
  if (password_stdin && !password_file.empty()) {
    throw core::UsageError("--password-stdin and --password-file exclude each other", "give one of them");
  }
  const bool password_flag = password_stdin || !password_file.empty();
  if (username.empty()) {
    if (password_flag) {
      throw core::UsageError(std::string(password_stdin ? "--password-stdin" : "--password-file") + " needs --username",
                             example);
    }
    // $FERRY_PASSWORD belongs to a --username; without one it is unused, but still kept
    // from the programs ferry runs.
    std::optional<std::string> unused = core::take_secret_env("FERRY_PASSWORD");
    core::wipe(unused);
    return std::nullopt; // docker/podman credentials, or anonymous
  }
  std::string password;
  const core::WipeOnExit wipe_password(password); // also when a check below throws
  if (password_stdin) {
    password = core::read_secret_line(STDIN_FILENO, "the password on standard input (--password-stdin)");
    if (password.empty()) throw core::UsageError("--password-stdin read an empty password from standard input");
  } else if (!password_file.empty()) {
    std::string text = core::read_secret_file(password_file, "password file");
    password = core::first_secret_line(text);
    if (password.empty()) {
      throw core::UsageError("password file " + password_file + " holds an empty first line",
                             "write the password (or token) on the file's first line");
    }
  } else if (std::optional<std::string> env = core::take_secret_env("FERRY_PASSWORD")) {
    password = std::move(*env);
    core::wipe(env); // a short string moves by copy: its old buffer still holds the bytes
  } else {
    throw core::UsageError("--username needs a password: --password-stdin, --password-file FILE or $FERRY_PASSWORD",
                           example);
  }
  return registry::Credentials{username, std::move(password), {}};
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
  o.credentials = credentials(flags.username, flags.password_stdin, flags.password_file);
  return o;
}

} // namespace ferry::cli
