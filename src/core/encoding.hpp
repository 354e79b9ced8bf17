// Base64 (RFC 4648, padded) for signatures and Docker credentials.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ferry::core {

std::string base64_encode(std::string_view bytes);

// Strict decoding: the standard alphabet, padding required, no white space except one
// trailing newline. nullopt on anything else.
std::optional<std::string> base64_decode(std::string_view text);

} // namespace ferry::core
