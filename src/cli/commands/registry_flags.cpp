// Registry connection flags.
// SPDX-License-Identifier: Apache-2.0
#include "cli/commands/registry_flags.hpp"

#include "core/error.hpp"

#include <CLI/CLI.hpp>

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
}

registry::ClientOptions client_options(const RegistryFlags& flags) {
  registry::ClientOptions o;
  o.tls.ca_file = flags.ca_file;
  o.tls.cert_file = flags.cert_file;
  o.tls.key_file = flags.key_file;
  o.tls.insecure_skip_verify = flags.insecure_skip_tls_verify;
  o.tls.plain_http = flags.plain_http;
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
