// Helpers the commands share.
// SPDX-License-Identifier: Apache-2.0
#include "cli/commands/commands.hpp"

#include "core/error.hpp"
#include "core/secret.hpp"

#include <cerrno>
#include <cstdlib>

namespace ferry::cli {

std::optional<std::string> read_passphrase(const std::string& file) {
  if (!file.empty()) {
    // Refused when group or others may access it, like the key it unlocks.
    std::string text = core::read_secret_file(file, "passphrase file");
    return core::first_secret_line(text);
  }
  return core::take_secret_env("FERRY_KEY_PASSPHRASE");
}

std::optional<std::int64_t> source_date_epoch_env() {
  const char* text = std::getenv("SOURCE_DATE_EPOCH");
  if (!text || !*text) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < 0) {
    throw core::UsageError(std::string("SOURCE_DATE_EPOCH='") + text + "' is not a number of seconds since 1970",
                           "set it to a whole number such as $(git log -1 --format=%ct), or unset it");
  }
  return value;
}

const char* ferry_version() { return FERRY_VERSION; }

} // namespace ferry::cli
