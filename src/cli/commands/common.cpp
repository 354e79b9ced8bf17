// Helpers the commands share.
// SPDX-License-Identifier: Apache-2.0
#include "cli/commands/commands.hpp"

#include "core/fs.hpp"

#include <cstdlib>

namespace ferry::cli {

std::optional<std::string> read_passphrase(const std::string& file) {
  if (!file.empty()) {
    std::string text = core::read_file(file, 64 * 1024);
    if (auto newline = text.find_first_of("\r\n"); newline != std::string::npos) text.resize(newline);
    return text;
  }
  if (const char* env = std::getenv("FERRY_KEY_PASSPHRASE"); env && *env) return std::string(env);
  return std::nullopt;
}

const char* ferry_version() { return FERRY_VERSION; }

} // namespace ferry::cli
