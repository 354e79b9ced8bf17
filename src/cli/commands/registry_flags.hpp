// Registry connection flags shared by the commands that talk to registries; names follow
// helm and skopeo (--ca-file, --plain-http, --username, --password-stdin, ...).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "registry/client.hpp"

#include <string>

namespace CLI {
class App;
}

namespace ferry::cli {

struct RegistryFlags {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool insecure_skip_tls_verify = false;
  bool plain_http = false;
  std::string username;
  bool password_stdin = false;
  int jobs = 4;
  std::string chunk_size; // "64M"; empty: the client's default
  std::string timeout;    // "60s", "2m"; empty: the client's default
  int retries = -1;       // attempts after the first; -1: the client's default
};

// Adds the flags to `cmd`; `what` says which registries they apply to ("source
// registries", "the target registry").
void add_registry_flags(CLI::App& cmd, RegistryFlags& flags, const char* what);

// ClientOptions from the flags; the password is read from standard input (one line)
// when --password-stdin was given. UsageError for a username without a password.
registry::ClientOptions client_options(const RegistryFlags& flags);

} // namespace ferry::cli
