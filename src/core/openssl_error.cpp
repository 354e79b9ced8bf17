// OpenSSL error queue to text.
// SPDX-License-Identifier: Apache-2.0
#include "core/openssl_error.hpp"

#include <openssl/err.h>

namespace ferry::core {

std::string openssl_error_text() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    if (!text.empty()) text += "; ";
    text += buffer;
  }
  return text.empty() ? "no OpenSSL error recorded" : text;
}

} // namespace ferry::core
