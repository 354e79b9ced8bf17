// The registry client's HTTP rules that need no connection: how statuses are
// classified, Retry-After, Link and Range headers, registry error bodies, manifest
// media types. Private to registry/ (unit-tested directly).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::registry {

// How one HTTP exchange ended, as far as retrying and messages are concerned.
enum class Outcome {
  success,      // 2xx
  redirect,     // 301/302/303/307/308: follow Location
  not_found,    // 404: an outcome the caller may expect (absent blob, unknown tag)
  unauthorized, // 401: authenticate, or the credentials were refused
  forbidden,    // 403: authenticated, but not allowed
  too_large,    // 413: a proxy or the registry limits the body size
  transient,    // worth another attempt: connection trouble, 408, 429, 5xx gateway errors
  tls,          // TLS handshake or verification: the operator must fix trust or scheme
  unreachable,  // the host name does not resolve
  failed,       // anything else: 400, 405, 416, other 4xx, protocol errors
};

// The status rows of the classification table (curl errors are classified in client.cpp).
Outcome classify_status(long status);

// A Retry-After value (delta-seconds or an HTTP date, RFC 9110 §10.2.3) as a wait from
// `now`, at most `cap`; nullopt when the value is unreadable.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, std::time_t now,
                                                      std::chrono::seconds cap);

// The target of the rel="next" link in a Link header (RFC 8288), as written (possibly
// relative); nullopt when there is none.
std::optional<std::string> parse_link_next(std::string_view link);

// The number of bytes an upload session holds, from its "Range: 0-END" header. The
// distribution registry writes "0-0" both for no bytes and for one byte; ferry reads it
// as no bytes (chunks are large, and resending a byte is refused, never corrupting).
std::optional<std::uint64_t> parse_upload_range(std::string_view range);

// The first byte of a "Content-Range: bytes FIRST-LAST/TOTAL" response header.
std::optional<std::uint64_t> parse_content_range_start(std::string_view value);

// The registry's error body {"errors":[{"code","message","detail"}]} as one line:
// "MANIFEST_UNKNOWN: manifest unknown (detail …); …". Empty when the body is not one.
std::string registry_error_text(std::string_view body);

// Whether `media_type` is a Docker schema 1 manifest (v1+json, v1+prettyjws).
bool is_schema1(std::string_view media_type);

// The media type of a manifest: its Content-Type without parameters, or the document's
// own mediaType when the Content-Type is generic (application/json…) or absent, or the
// OCI type its shape implies (manifests -> index, config -> manifest). Schema 1 (by
// type or schemaVersion) is a core::RegistryError naming `what`, with a hint to convert
// the image; so is a document with no recognisable type.
std::string manifest_media_type(std::string_view content_type, std::string_view bytes, const std::string& what);

// ASCII lower case (header names, schemes, hosts).
std::string lower(std::string_view text);
// `text` without leading and trailing spaces, tabs and line ends.
std::string_view trim(std::string_view text);

// RFC 3986 percent-encoding of everything but unreserved characters.
std::string percent_encode(std::string_view text);

// `url` with "name=value" (already encoded) added to its query, with '?' or '&'.
std::string append_query(std::string url, std::string_view param);

} // namespace ferry::registry
