// Fuzz target: the registry response headers ferry interprets: WWW-Authenticate
// challenges (RFC 7235) first of all, then Retry-After, Link (tag list pages), Range and
// Content-Range, and the redaction of URLs before they reach a message.
// SPDX-License-Identifier: Apache-2.0
#include "core/error.hpp"
#include "registry/auth.hpp"
#include "registry/http.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace ferry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  try {
    if (const auto challenges = registry::parse_challenges(input)) {
      for (const auto& challenge : *challenges) {
        // Schemes and parameter names are promised lower-case: the client compares them so.
        if (challenge.scheme.empty() || registry::lower(challenge.scheme) != challenge.scheme) std::abort();
        for (const auto& [name, value] : challenge.params) {
          if (registry::lower(name) != name) std::abort();
        }
        (void)challenge.param("realm");
      }
    }
    (void)registry::parse_retry_after(input, 1700000000, std::chrono::seconds(300));
    (void)registry::parse_link_next(input);
    (void)registry::parse_upload_range(input);
    (void)registry::parse_content_range_start(input);
    (void)registry::redact_url(input);
    registry::ScopeSet scopes;
    (void)scopes.add(input);
  } catch (const core::Error&) {
  }
  return 0;
}
