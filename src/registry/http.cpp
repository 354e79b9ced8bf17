// HTTP rules of the registry client: the status table, header parsers, error bodies,
// manifest media types.
// SPDX-License-Identifier: Apache-2.0
#include "registry/http.hpp"

#include "core/error.hpp"
#include "oci/media_types.hpp"

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>

namespace ferry::registry {

namespace {

using nlohmann::json;

std::optional<std::uint64_t> to_number(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

} // namespace

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c); });
  return out;
}

std::string_view trim(std::string_view text) {
  const std::size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) return {};
  const std::size_t end = text.find_last_not_of(" \t\r\n");
  return text.substr(start, end - start + 1);
}

Outcome classify_status(long status) {
  // Success: 200 OK, 201 Created (push), 202 Accepted (upload session), 204 (upload
  // status), 206 Partial Content (resumed blob).
  if (status >= 200 && status < 300) return Outcome::success;
  switch (status) {
  // Blob storage behind S3/GCS answers GET blob with a redirect to a presigned URL.
  case 301:
  case 302:
  case 303:
  case 307:
  case 308:
    return Outcome::redirect;
  // Authentication wanted, or the credentials were refused.
  case 401:
    return Outcome::unauthorized;
  // Authenticated but not permitted (no push right, or the repository is private).
  case 403:
    return Outcome::forbidden;
  // Unknown blob, manifest, tag, repository or upload session.
  case 404:
    return Outcome::not_found;
  // A proxy (nginx client_max_body_size) or the registry limits request bodies.
  case 413:
    return Outcome::too_large;
  // The server gave up waiting for the request: send it again.
  case 408:
  // Rate limited (Docker Hub): wait as Retry-After says.
  case 429:
  // Registry or storage backend trouble, or a proxy in front of it: usually passes.
  case 500:
  case 502:
  case 503:
  case 504:
    return Outcome::transient;
  // 400 (bad digest, bad manifest), 405 (operation unsupported or read-only registry),
  // 409, 416 (bad Content-Range), 501 and the rest: sending it again will not help.
  default:
    return Outcome::failed;
  }
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, std::time_t now,
                                                      std::chrono::seconds cap) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (auto seconds = to_number(value)) {
    return std::chrono::seconds(std::min<std::uint64_t>(*seconds, static_cast<std::uint64_t>(cap.count())));
  }
  const std::string date(value);
  const std::time_t when = curl_getdate(date.c_str(), nullptr);
  if (when < 0) return std::nullopt;
  const std::int64_t wait = std::max<std::int64_t>(0, static_cast<std::int64_t>(when) - static_cast<std::int64_t>(now));
  return std::chrono::seconds(std::min<std::int64_t>(wait, cap.count()));
}

std::optional<std::string> parse_link_next(std::string_view link) {
  // link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param ), comma-separated
  std::size_t pos = 0;
  while (pos < link.size()) {
    const std::size_t open = link.find('<', pos);
    if (open == std::string_view::npos) return std::nullopt;
    const std::size_t close = link.find('>', open);
    if (close == std::string_view::npos) return std::nullopt;
    const std::string_view target = link.substr(open + 1, close - open - 1);
    // The parameters run to the next link-value (a comma outside quotes).
    std::size_t end = close + 1;
    bool quoted = false;
    while (end < link.size() && (quoted || link[end] != ',')) {
      if (link[end] == '"') quoted = !quoted;
      ++end;
    }
    std::string_view params = link.substr(close + 1, end - close - 1);
    while (!params.empty()) {
      const std::size_t semi = params.find(';');
      std::string_view param = trim(params.substr(0, semi));
      params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
      const std::size_t eq = param.find('=');
      if (eq == std::string_view::npos || lower(trim(param.substr(0, eq))) != "rel") continue;
      std::string_view rel = trim(param.substr(eq + 1));
      if (rel.size() >= 2 && rel.front() == '"' && rel.back() == '"') rel = rel.substr(1, rel.size() - 2);
      // rel may list several relation types separated by spaces.
      std::size_t start = 0;
      while (start < rel.size()) {
        std::size_t space = rel.find(' ', start);
        if (space == std::string_view::npos) space = rel.size();
        if (lower(rel.substr(start, space - start)) == "next") return std::string(target);
        start = space + 1;
      }
    }
    pos = end + 1;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> parse_upload_range(std::string_view range) {
  range = trim(range);
  if (range.rfind("bytes=", 0) == 0) range.remove_prefix(6);
  const std::size_t dash = range.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto first = to_number(range.substr(0, dash));
  const auto last = to_number(range.substr(dash + 1));
  if (!first || !last || *first != 0) return std::nullopt;
  return *last == 0 ? 0 : *last + 1;
}

std::optional<std::uint64_t> parse_content_range_start(std::string_view value) {
  value = trim(value);
  if (lower(value.substr(0, 6)) != "bytes ") return std::nullopt;
  value.remove_prefix(6);
  const std::size_t dash = value.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  return to_number(trim(value.substr(0, dash)));
}

std::string registry_error_text(std::string_view body) {
  json doc;
  try {
    doc = json::parse(body);
  } catch (const json::exception&) {
    return {};
  }
  if (!doc.is_object()) return {};
  auto errors = doc.find("errors");
  if (errors == doc.end() || !errors->is_array()) return {};
  std::string text;
  for (const auto& error : *errors) {
    if (!error.is_object()) continue;
    std::string one;
    if (auto code = error.find("code"); code != error.end() && code->is_string()) one = code->get<std::string>();
    if (auto message = error.find("message"); message != error.end() && message->is_string()) {
      if (!one.empty()) one += ": ";
      one += message->get<std::string>();
    }
    if (auto detail = error.find("detail"); detail != error.end() && !detail->is_null()) {
      std::string d = detail->is_string() ? detail->get<std::string>() : detail->dump();
      if (d.size() > 200) d = d.substr(0, 200) + "…";
      if (!d.empty()) one += " (detail " + d + ")";
    }
    if (one.empty()) continue;
    if (!text.empty()) text += "; ";
    text += one;
  }
  return text;
}

bool is_schema1(std::string_view media_type) {
  return media_type == oci::media_type::docker_manifest_v1 || media_type == oci::media_type::docker_manifest_v1_signed;
}

std::string manifest_media_type(std::string_view content_type, std::string_view bytes, const std::string& what) {
  std::string type = lower(trim(content_type.substr(0, content_type.find(';'))));
  json doc;
  try {
    doc = json::parse(bytes);
  } catch (const json::exception&) {
    doc = nullptr;
  }
  std::string declared;
  bool schema1 = is_schema1(type);
  if (doc.is_object()) {
    if (auto it = doc.find("mediaType"); it != doc.end() && it->is_string()) declared = it->get<std::string>();
    if (auto it = doc.find("schemaVersion"); it != doc.end() && it->is_number_integer() && it->get<int>() == 1) {
      schema1 = true;
    }
  }
  if (schema1 || is_schema1(declared)) {
    throw core::RegistryError(what + " is a Docker schema 1 manifest, which ferry does not handle",
                              "convert the image to schema 2 first, e.g. `skopeo copy --format v2s2 docker://IMAGE "
                              "docker://NEW-IMAGE`, and refer to the converted image");
  }
  const bool generic = type.empty() || type == "application/json" || type == "text/plain" ||
                       type == "application/octet-stream" || type == "binary/octet-stream";
  if (!generic) return type;
  if (!declared.empty()) return declared;
  if (doc.is_object()) {
    if (auto it = doc.find("manifests"); it != doc.end() && it->is_array()) {
      return std::string(oci::media_type::oci_index);
    }
    if (auto it = doc.find("config"); it != doc.end() && it->is_object()) {
      return std::string(oci::media_type::oci_manifest);
    }
  }
  throw core::RegistryError(what + " has no recognisable media type (Content-Type \"" + std::string(content_type) +
                            "\", no mediaType in the document)");
}

std::string percent_encode(std::string_view text) {
  static constexpr char k_hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += k_hex[c >> 4];
      out += k_hex[c & 15];
    }
  }
  return out;
}

std::string append_query(std::string url, std::string_view param) {
  const std::size_t hash = url.find('#');
  if (hash != std::string::npos) url.resize(hash);
  if (url.find('?') == std::string::npos) {
    url += '?';
  } else if (url.back() != '?' && url.back() != '&') {
    url += '&';
  }
  url.append(param);
  return url;
}

} // namespace ferry::registry
