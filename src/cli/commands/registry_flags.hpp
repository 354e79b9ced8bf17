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
  std::string password_file; // --password-file FILE (mode 0600)
  int jobs = 4;
  std::string chunk_size; // "64M"; empty: the client's default
  std::string timeout;    // "60s", "2m"; empty: the client's default
  int retries = -1;       // attempts after the first; -1: the client's default
};

// Adds the flags to `cmd`; `what` says which registries they apply to ("source
// registries", "the target registry").
void add_registry_flags(CLI::App& cmd, RegistryFlags& flags, const char* what);

// ClientOptions from the flags. With --username the password (or token) comes from one
// line of standard input (--password-stdin), the first line of --password-file FILE, or
// else $FERRY_PASSWORD (removed from the environment once read); never from argv.
// UsageError for a username without a password, a password flag without a username,
// both flags, an empty password, or a password file group or others may access (with
// the chmod that fixes it).
registry::ClientOptions client_options(const RegistryFlags& flags);

} // namespace ferry::cli
