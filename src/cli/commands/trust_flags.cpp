// Trust flags shared by the commands that read a bundle.
// SPDX-License-Identifier: Apache-2.0
#include "cli/commands/trust_flags.hpp"

#include <CLI/CLI.hpp>

namespace ferry::cli {

void add_trust_flags(CLI::App& cmd, TrustFlags& flags, const char* pubkey_help) {
  cmd.add_option("--pubkey", flags.pubkeys, pubkey_help);
  cmd.add_flag("--insecure-skip-signature", flags.skip,
               "Do not check the signature (the bundle may have been rewritten by anyone); says so loudly");
}

TrustOptions trust_options(const TrustFlags& flags) {
  TrustOptions t;
  for (const auto& p : flags.pubkeys) t.pubkeys.emplace_back(p);
  t.insecure_skip_signature = flags.skip;
  return t;
}

} // namespace ferry::cli
