// The lock digest of `helm dependency update`: Go's JSON of the dependencies, hashed.
// SPDX-License-Identifier: Apache-2.0
#include "chart/chart_lock.hpp"

#include "core/digest.hpp"

namespace ferry::chart {

namespace {

constexpr char k_hex[] = "0123456789abcdef";

// The length of the UTF-8 sequence at the start of `s` as Go's utf8.DecodeRuneInString
// accepts it (shortest form, no surrogates, at most U+10FFFF), with its code point;
// 0 when the first byte starts no valid sequence (Go then takes that byte as U+FFFD).
std::size_t utf8_sequence(std::string_view s, char32_t& code_point) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char first = byte(0);
  std::size_t length = 0;
  char32_t value = 0;
  unsigned char low = 0x80; // the range of the second byte, narrower after some leads
  unsigned char high = 0xbf;
  if (first >= 0xc2 && first <= 0xdf) {
    length = 2;
    value = first & 0x1f;
  } else if (first >= 0xe0 && first <= 0xef) {
    length = 3;
    value = first & 0x0f;
    if (first == 0xe0) low = 0xa0;  // no overlong forms
    if (first == 0xed) high = 0x9f; // no surrogates
  } else if (first >= 0xf0 && first <= 0xf4) {
    length = 4;
    value = first & 0x07;
    if (first == 0xf0) low = 0x90;  // no overlong forms
    if (first == 0xf4) high = 0x8f; // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() < length) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    const unsigned char c = byte(i);
    if (c < (i == 1 ? low : 0x80) || c > (i == 1 ? high : 0xbf)) return 0;
    value = (value << 6) | (c & 0x3f);
  }
  code_point = value;
  return length;
}

void append_string_field(std::string& out, const char* key, const std::string& value) {
  out += ",\"";
  out += key;
  out += "\":";
  out += go_json_string(value);
}

// One chart.Dependency as Go's json.Marshal writes it: fields in the struct's order,
// `omitempty` ones left out when empty.
void append_dependency(std::string& out, const ChartDependency& d) {
  out += "{\"name\":" + go_json_string(d.name);
  if (!d.version.empty()) append_string_field(out, "version", d.version);
  append_string_field(out, "repository", d.repository);
  if (!d.condition.empty()) append_string_field(out, "condition", d.condition);
  if (!d.tags.empty()) {
    out += ",\"tags\":[";
    for (std::size_t i = 0; i < d.tags.size(); ++i) out += (i ? "," : "") + go_json_string(d.tags[i]);
    out += ']';
  }
  if (d.enabled) out += ",\"enabled\":true";
  if (!d.import_values.empty()) out += ",\"import-values\":" + d.import_values;
  // Helm 3.10 has no export-values; the releases that have it put it here, and only
  // charts made with them can carry it.
  if (!d.export_values.empty()) out += ",\"export-values\":" + d.export_values;
  if (!d.alias.empty()) append_string_field(out, "alias", d.alias);
  out += '}';
}

void append_dependencies(std::string& out, const std::vector<ChartDependency>& list) {
  if (list.empty()) {
    out += "null";
    return;
  }
  out += '[';
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (i) out += ',';
    append_dependency(out, list[i]);
  }
  out += ']';
}

} // namespace

std::string go_json_string(std::string_view text) {
  std::string out = "\"";
  std::size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      switch (b) {
      case '"':
      case '\\':
        out += '\\';
        out += static_cast<char>(b);
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        // Go 1.22 writes \b and \f as such; Helm 3.10 was built with Go 1.18, which writes
        // them as \u0008 and \u000c like every other control character.
        if (b < 0x20 || b == '<' || b == '>' || b == '&') {
          out += "\\u00";
          out += k_hex[b >> 4];
          out += k_hex[b & 0xf];
        } else {
          out += static_cast<char>(b);
        }
      }
      ++i;
      continue;
    }
    char32_t code_point = 0;
    const std::size_t length = utf8_sequence(text.substr(i), code_point);
    if (length == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (code_point == 0x2028 || code_point == 0x2029) {
      out += code_point == 0x2028 ? "\\u2028" : "\\u2029";
    } else {
      out.append(text.substr(i, length));
    }
    i += length;
  }
  out += '"';
  return out;
}

std::string lock_digest(const std::vector<ChartDependency>& req, const std::vector<ChartDependency>& lock) {
  std::string json = "[";
  append_dependencies(json, req);
  json += ',';
  append_dependencies(json, lock);
  json += ']';
  return core::sha256_of(json).str();
}

std::string helm2_lock_digest(const std::vector<ChartDependency>& req) {
  std::string json = "{\"dependencies\":";
  append_dependencies(json, req);
  json += '}';
  return core::sha256_of(json).str();
}

bool lock_in_sync(const ChartMetadata& meta, const ChartLock& lock) {
  if (lock.digest == lock_digest(meta.dependencies, lock.dependencies)) return true;
  // pkg/downloader/manager.go Build: a Helm 2 digest is accepted for v1 charts only.
  return meta.api_version == "v1" && lock.digest == helm2_lock_digest(meta.dependencies);
}

} // namespace ferry::chart
