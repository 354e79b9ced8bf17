// Trust flags shared by the commands that read a bundle (--pubkey, --insecure-skip-signature).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "unpack.hpp"

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace ferry::cli {

struct TrustFlags {
  std::vector<std::string> pubkeys;
  bool skip = false;
};

void add_trust_flags(CLI::App& cmd, TrustFlags& flags, const char* pubkey_help);
TrustOptions trust_options(const TrustFlags& flags);

} // namespace ferry::cli
