// Helm chart archives: reading a .tgz (Chart.yaml, config blob), packaging a directory.
// SPDX-License-Identifier: Apache-2.0
#include "chart/chart_archive.hpp"

#include "chart/chart_lock.hpp"
#include "core/c_handle.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/io.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <clocale>
#include <fnmatch.h>
#include <locale.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string_view>
#include <system_error>

namespace ferry::chart {

namespace fs = std::filesystem;
using core::UsageError;

namespace {

using ArchiveReader = std::unique_ptr<archive, core::CDeleter<archive_read_free>>;
using ArchiveWriter = std::unique_ptr<archive, core::CDeleter<archive_write_free>>;
using ArchiveEntry = std::unique_ptr<archive_entry, core::CDeleter<archive_entry_free>>;

// Helm reads at most 5 MiB of Chart.yaml (loader.MaxDecompressedFileSize); so do we.
constexpr std::size_t k_max_chart_yaml_size = 5u << 20;
// Bound on the unpacked size of a chart (sum of its entries), against gzip bombs: what
// we read or skip while scanning an archive, and what we read while packaging one.
constexpr std::uint64_t k_max_unpacked_size = 4ull * k_max_chart_size;
// Chart.yaml is converted to JSON by walking it: bounds for hostile documents (yaml-cpp
// keeps aliases shared, and a recursive alias makes a cycle).
constexpr int k_max_yaml_depth = 64;
constexpr std::size_t k_max_yaml_nodes = 100000;

// libarchive converts path names with the calling thread's locale: in the C locale
// version 3.6 refuses any non-ASCII name (and crashes on names given as UTF-8). Charts
// carry UTF-8 names (Go's archive/tar writes them so), so archives are read and written
// under C.UTF-8, for this thread only, which also makes the bytes independent of the
// caller's locale. Where C.UTF-8 does not exist the thread's locale stays in force.
class Utf8Locale {
public:
  Utf8Locale() : m_locale(::newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t{})) {
    if (m_locale) m_previous = ::uselocale(m_locale);
  }
  Utf8Locale(const Utf8Locale&) = delete;
  Utf8Locale& operator=(const Utf8Locale&) = delete;
  ~Utf8Locale() {
    if (!m_locale) return;
    ::uselocale(m_previous);
    ::freelocale(m_locale);
  }

private:
  locale_t m_locale;
  locale_t m_previous{};
};

std::string archive_error(archive* a) {
  const char* text = archive_error_string(a);
  std::string out = text ? text : "unknown libarchive error";
  if (const int err = archive_errno(a); err > 0) out += " (errno " + std::to_string(err) + ")";
  return out;
}

// --- Chart.yaml ----------------------------------------------------------------------

// Plain (untagged, unquoted) YAML booleans as the core schema spells them.
bool is_plain_bool(const YAML::Node& node, bool& value) {
  if (node.Tag() != "?") return false;
  const std::string& s = node.Scalar();
  if (s == "true" || s == "True" || s == "TRUE") {
    value = true;
    return true;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    value = false;
    return true;
  }
  return false;
}

// Chart.yaml as JSON: maps -> objects, sequences -> arrays, plain true/false -> booleans,
// null -> null, every other scalar -> its text. Every Chart.yaml field is a string or a
// boolean (`deprecated`), so strings never turn into numbers ("1.10" stays "1.10").
nlohmann::json yaml_to_json(const YAML::Node& node, const std::string& what, int depth, std::size_t& budget) {
  if (depth > k_max_yaml_depth || budget == 0) {
    throw UsageError(what + " is nested too deeply or too large (recursive YAML alias?)");
  }
  --budget;
  switch (node.Type()) {
  case YAML::NodeType::Map: {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& item : node) {
      if (!item.first.IsScalar()) {
        throw UsageError(what + ":" + std::to_string(item.first.Mark().line + 1) + ": map keys must be strings");
      }
      const std::string& key = item.first.Scalar();
      if (out.contains(key)) {
        throw UsageError(what + ":" + std::to_string(item.first.Mark().line + 1) + ": duplicate key '" + key + "'");
      }
      out[key] = yaml_to_json(item.second, what, depth + 1, budget);
    }
    return out;
  }
  case YAML::NodeType::Sequence: {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& item : node) out.push_back(yaml_to_json(item, what, depth + 1, budget));
    return out;
  }
  case YAML::NodeType::Scalar: {
    bool value = false;
    if (is_plain_bool(node, value)) return value;
    return node.Scalar();
  }
  case YAML::NodeType::Null:
  case YAML::NodeType::Undefined:
    break;
  }
  return nullptr;
}

// A string field of Chart.yaml; empty when absent or null.
std::string string_field(const YAML::Node& root, const char* key, const std::string& what) {
  const YAML::Node value = root[key];
  if (!value.IsDefined() || value.IsNull()) return {};
  if (!value.IsScalar()) {
    throw UsageError(what + ":" + std::to_string(value.Mark().line + 1) + ": '" + key + "' must be a string");
  }
  return value.Scalar();
}

// --- dependencies as Helm reads them ----------------------------------------------------
//
// Helm reads Chart.yaml, requirements.yaml and lock files with sigs.k8s.io/yaml: go-yaml
// v2 resolves each plain scalar by YAML 1.1 (yes/no/on/off are booleans, 010 is octal),
// the result goes through JSON into Go structs, and a number or boolean meeting a string
// field becomes Go's text of it (strconv.FormatFloat(v, 'g', -1, 32) for floats). What
// the lock digest hashes is that text, so ferry reads the same.

// The shortest decimal digits of `v` that read back as the same value (as float when
// `as_float`), and the exponent of the first digit: 1.1 -> "11", 0.
struct ShortestDigits {
  bool negative = false;
  std::string digits;
  int exponent = 0;
};

ShortestDigits shortest_digits(double v, bool as_float) {
  char buffer[64];
  const std::to_chars_result r = as_float ? std::to_chars(buffer, buffer + sizeof buffer, static_cast<float>(v),
                                                          std::chars_format::scientific)
                                          : std::to_chars(buffer, buffer + sizeof buffer, v, std::chars_format::scientific);
  const std::string_view text(buffer, static_cast<std::size_t>(r.ptr - buffer));
  ShortestDigits out;
  std::size_t i = 0;
  if (text[i] == '-') {
    out.negative = true;
    ++i;
  }
  const std::size_t e = text.find('e');
  for (; i < e; ++i) {
    if (text[i] != '.') out.digits += text[i];
  }
  int exponent = 0;
  std::from_chars(text.data() + e + (text[e + 1] == '+' ? 2 : 1), text.data() + text.size(), exponent);
  out.exponent = exponent;
  return out;
}

// Go's %e and %f of shortest digits (strconv's fmtE and fmtF).
std::string go_format_e(const ShortestDigits& d) {
  std::string out = d.negative ? "-" : "";
  out += d.digits[0];
  if (d.digits.size() > 1) out += "." + d.digits.substr(1);
  out += d.exponent < 0 ? "e-" : "e+";
  const int magnitude = d.exponent < 0 ? -d.exponent : d.exponent;
  if (magnitude < 10) out += '0';
  out += std::to_string(magnitude);
  return out;
}

std::string go_format_f(const ShortestDigits& d) {
  std::string out = d.negative ? "-" : "";
  const int point = d.exponent + 1; // digits before the decimal point
  const int count = static_cast<int>(d.digits.size());
  const auto digit = [&](int k) { return k >= 0 && k < count ? d.digits[static_cast<std::size_t>(k)] : '0'; };
  if (point > 0) {
    for (int k = 0; k < point; ++k) out += digit(k);
  } else {
    out += '0';
  }
  if (count > point) {
    out += '.';
    for (int k = point; k < count; ++k) out += digit(k);
  }
  return out;
}

std::string go_special_float(double v) {
  if (std::isnan(v)) return "NaN";
  return v > 0 ? "+Inf" : "-Inf";
}

// strconv.FormatFloat(v, 'g', -1, 32).
std::string go_format_float32(double v) {
  if (!std::isfinite(v) || !std::isfinite(static_cast<float>(v))) return go_special_float(v);
  const ShortestDigits d = shortest_digits(v, true);
  return d.exponent < -4 || d.exponent >= 6 ? go_format_e(d) : go_format_f(d);
}

// A float64 as Go's encoding/json writes it: %f between 1e-6 and 1e21, else %e with a
// one-digit negative exponent unpadded (1e-07 -> 1e-7).
std::string go_json_number(double v) {
  const ShortestDigits d = shortest_digits(v, false);
  const double magnitude = std::fabs(v);
  if (magnitude == 0 || (magnitude >= 1e-6 && magnitude < 1e21)) return go_format_f(d);
  std::string out = go_format_e(d);
  const std::size_t n = out.size();
  if (n >= 4 && out[n - 4] == 'e' && out[n - 3] == '-' && out[n - 2] == '0') out.erase(n - 2, 1);
  return out;
}

// What go-yaml v2 makes of a plain scalar.
struct PlainScalar {
  enum class Kind { null, boolean, integer, floating, string } kind = Kind::string;
  bool boolean = false;
  std::string integer; // decimal text
  double floating = 0;
};

// Go's strconv.ParseInt/ParseUint with base 0 (0x, 0o, 0b, a leading 0 for octal) on
// `text`, as decimal text; nullopt when it is no integer or out of range.
std::optional<std::string> go_parse_int(std::string_view text) {
  const bool signed_text = !text.empty() && (text.front() == '+' || text.front() == '-');
  const bool negative = signed_text && text.front() == '-';
  if (signed_text) text.remove_prefix(1);
  int base = 10;
  if (text.size() > 1 && text[0] == '0') {
    const char p = static_cast<char>(std::tolower(static_cast<unsigned char>(text[1])));
    if (p == 'x' || p == 'o' || p == 'b') {
      base = p == 'x' ? 16 : p == 'o' ? 8 : 2;
      text.remove_prefix(2);
    } else {
      base = 8;
      text.remove_prefix(1);
    }
  }
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  constexpr std::uint64_t k_min_magnitude = std::uint64_t{1} << 63; // of INT64_MIN
  // ParseUint takes what ParseInt cannot, but no sign.
  if (!negative) return signed_text && value >= k_min_magnitude ? std::nullopt : std::optional(std::to_string(value));
  if (value > k_min_magnitude) return std::nullopt;
  return value == 0 ? std::string("0") : "-" + std::to_string(value);
}

// go-yaml v2's yamlStyleFloat: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
bool yaml_style_float(std::string_view s) {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  } else {
    if (!digits()) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      digits();
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

PlainScalar resolve_plain(const std::string& text) {
  PlainScalar out;
  using Kind = PlainScalar::Kind;
  static const std::map<std::string_view, int> k_words = {
      {"y", 1},     {"Y", 1},     {"yes", 1},   {"Yes", 1},   {"YES", 1},   {"true", 1},   {"True", 1},
      {"TRUE", 1},  {"on", 1},    {"On", 1},    {"ON", 1},    {"n", 0},     {"N", 0},      {"no", 0},
      {"No", 0},    {"NO", 0},    {"false", 0}, {"False", 0}, {"FALSE", 0}, {"off", 0},    {"Off", 0},
      {"OFF", 0},   {"", -1},     {"~", -1},    {"null", -1}, {"Null", -1}, {"NULL", -1},
  };
  if (const auto it = k_words.find(text); it != k_words.end()) {
    out.kind = it->second < 0 ? Kind::null : Kind::boolean;
    out.boolean = it->second == 1;
    return out;
  }
  for (const char* nan : {".nan", ".NaN", ".NAN"}) {
    if (text == nan) {
      out.kind = Kind::floating;
      out.floating = std::numeric_limits<double>::quiet_NaN();
      return out;
    }
  }
  for (const std::string sign : {"", "+", "-"}) {
    for (const char* inf : {".inf", ".Inf", ".INF"}) {
      if (text == sign + inf) {
        out.kind = Kind::floating;
        out.floating = sign == "-" ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
        return out;
      }
    }
  }
  const char first = text.front();
  if (first == '.') {
    if (yaml_style_float(text)) {
      out.kind = Kind::floating;
      out.floating = std::strtod(text.c_str(), nullptr);
    }
    return out;
  }
  if (!(first >= '0' && first <= '9') && first != '+' && first != '-') return out;
  std::string plain = text;
  plain.erase(std::remove(plain.begin(), plain.end(), '_'), plain.end());
  if (auto integer = go_parse_int(plain)) {
    out.kind = Kind::integer;
    out.integer = std::move(*integer);
  } else if (yaml_style_float(plain)) {
    out.kind = Kind::floating;
    out.floating = std::strtod(plain.c_str(), nullptr);
  }
  return out;
}

// A scalar as a Go string field gets it: a plain number or boolean as Go's text of it,
// null as "", anything else as written.
std::string go_string_of(const YAML::Node& node) {
  if (node.IsNull()) return {};
  if (node.Tag() != "?") return node.Scalar();
  const PlainScalar resolved = resolve_plain(node.Scalar());
  switch (resolved.kind) {
  case PlainScalar::Kind::null:
    return {};
  case PlainScalar::Kind::boolean:
    return resolved.boolean ? "true" : "false";
  case PlainScalar::Kind::integer:
    return resolved.integer;
  case PlainScalar::Kind::floating:
    return go_format_float32(resolved.floating);
  case PlainScalar::Kind::string:
    break;
  }
  return node.Scalar();
}

// A YAML value as Go's json.Marshal writes it after it went through JSON into an
// interface{}: numbers as float64, map keys sorted.
std::string go_json_of(const YAML::Node& node, const std::string& what, int depth, std::size_t& budget) {
  if (depth > k_max_yaml_depth || budget == 0) {
    throw UsageError(what + " is nested too deeply or too large (recursive YAML alias?)");
  }
  --budget;
  switch (node.Type()) {
  case YAML::NodeType::Map: {
    std::map<std::string, std::string> items; // Go sorts map keys by their bytes
    for (const auto& item : node) {
      if (!item.first.IsScalar() && !item.first.IsNull()) {
        throw UsageError(what + ":" + std::to_string(item.first.Mark().line + 1) + ": map keys must be strings");
      }
      items[go_string_of(item.first)] = go_json_of(item.second, what, depth + 1, budget);
    }
    std::string out = "{";
    for (const auto& [key, value] : items) out += (out.size() > 1 ? "," : "") + go_json_string(key) + ":" + value;
    return out + "}";
  }
  case YAML::NodeType::Sequence: {
    std::string out = "[";
    for (const auto& item : node) out += (out.size() > 1 ? "," : "") + go_json_of(item, what, depth + 1, budget);
    return out + "]";
  }
  case YAML::NodeType::Scalar: {
    if (node.Tag() != "?") return go_json_string(node.Scalar());
    const PlainScalar resolved = resolve_plain(node.Scalar());
    switch (resolved.kind) {
    case PlainScalar::Kind::null:
      return "null";
    case PlainScalar::Kind::boolean:
      return resolved.boolean ? "true" : "false";
    case PlainScalar::Kind::integer:
      return go_json_number(std::strtod(resolved.integer.c_str(), nullptr));
    case PlainScalar::Kind::floating:
      if (!std::isfinite(resolved.floating)) {
        throw UsageError(what + ":" + std::to_string(node.Mark().line + 1) + ": '" + node.Scalar() +
                         "' cannot be held in JSON, which Helm reads the chart as");
      }
      return go_json_number(resolved.floating);
    case PlainScalar::Kind::string:
      break;
    }
    return go_json_string(node.Scalar());
  }
  case YAML::NodeType::Null:
  case YAML::NodeType::Undefined:
    break;
  }
  return "null";
}

// Helm's sanitizeString (Dependency.Validate), for ASCII and the C1 range: white space
// becomes ' ', other control characters go.
std::string sanitized(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r') {
      out += ' ';
    } else if (c < 0x20 || c == 0x7f) {
      continue;
    } else if (c == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0xa0) {
      const auto second = static_cast<unsigned char>(text[++i]);
      if (second == 0x85 || second == 0xa0) out += ' '; // NEL and NO-BREAK SPACE are white space
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

enum class DependencySource { chart, lock }; // Chart.yaml or requirements.yaml; a lock

std::string dependency_string(const YAML::Node& item, const char* key, const std::string& what) {
  const YAML::Node value = item[key];
  if (!value.IsDefined() || value.IsNull()) return {};
  if (!value.IsScalar()) {
    throw UsageError(what + ":" + std::to_string(value.Mark().line + 1) + ": '" + key + "' must be a string");
  }
  return go_string_of(value);
}

// `import-values` / `export-values`: a list of anything, as Go's JSON; "" for none.
std::string dependency_values(const YAML::Node& item, const char* key, const std::string& what) {
  const YAML::Node value = item[key];
  if (!value.IsDefined() || value.IsNull()) return {};
  if (!value.IsSequence()) {
    throw UsageError(what + ":" + std::to_string(value.Mark().line + 1) + ": '" + key + "' must be a list");
  }
  if (value.size() == 0) return {};
  std::size_t budget = k_max_yaml_nodes;
  return go_json_of(value, what, 0, budget);
}

ChartDependency parse_dependency(const YAML::Node& item, const std::string& what, DependencySource source) {
  const std::string where = what + ":" + std::to_string(item.Mark().line + 1);
  if (!item.IsMap()) throw UsageError(where + ": an item of 'dependencies' must be a map");
  ChartDependency d;
  d.name = dependency_string(item, "name", what);
  d.version = dependency_string(item, "version", what);
  d.repository = dependency_string(item, "repository", what);
  d.alias = dependency_string(item, "alias", what);
  d.condition = dependency_string(item, "condition", what);
  if (const YAML::Node tags = item["tags"]; tags.IsDefined() && !tags.IsNull()) {
    if (!tags.IsSequence()) {
      throw UsageError(what + ":" + std::to_string(tags.Mark().line + 1) + ": 'tags' must be a list of strings");
    }
    for (const auto& tag : tags) {
      if (!tag.IsScalar() && !tag.IsNull()) {
        throw UsageError(what + ":" + std::to_string(tag.Mark().line + 1) + ": 'tags' must be a list of strings");
      }
      d.tags.push_back(go_string_of(tag));
    }
  }
  if (const YAML::Node enabled = item["enabled"]; enabled.IsDefined() && !enabled.IsNull()) {
    const bool plain = enabled.IsScalar() && enabled.Tag() == "?";
    const PlainScalar resolved = plain ? resolve_plain(enabled.Scalar()) : PlainScalar{};
    if (resolved.kind != PlainScalar::Kind::boolean) {
      throw UsageError(what + ":" + std::to_string(enabled.Mark().line + 1) + ": 'enabled' must be true or false");
    }
    d.enabled = resolved.boolean;
  }
  d.import_values = dependency_values(item, "import-values", what);
  d.export_values = dependency_values(item, "export-values", what);
  if (source == DependencySource::lock) return d;

  // Helm's loader validates what Chart.yaml and requirements.yaml declare (not the lock).
  d.name = sanitized(d.name);
  d.version = sanitized(d.version);
  d.repository = sanitized(d.repository);
  d.condition = sanitized(d.condition);
  for (auto& tag : d.tags) tag = sanitized(tag);
  if (d.name.empty()) throw UsageError(where + ": a dependency has no 'name'");
  if (d.name == "." || d.name == ".." || d.name.find_first_of("/\\") != std::string::npos) {
    throw UsageError(where + ": dependency name '" + d.name + "' is not a valid chart name");
  }
  // Helm's aliasNameFormat: ^[a-zA-Z0-9_-]+$
  if (!d.alias.empty() && !std::all_of(d.alias.begin(), d.alias.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
      })) {
    throw UsageError(where + ": dependency " + d.name + " has disallowed characters in the alias '" + d.alias + "'",
                     "an alias holds letters, digits, '_' and '-' only (as Helm requires)");
  }
  return d;
}

// The list under `dependencies:` of `root` (a map); empty when absent or null.
std::vector<ChartDependency> parse_dependencies(const YAML::Node& root, const std::string& what, DependencySource source) {
  std::vector<ChartDependency> out;
  const YAML::Node dependencies = root["dependencies"];
  if (!dependencies.IsDefined() || dependencies.IsNull()) return out;
  if (!dependencies.IsSequence()) {
    throw UsageError(what + ":" + std::to_string(dependencies.Mark().line + 1) + ": 'dependencies' must be a list");
  }
  for (const auto& item : dependencies) out.push_back(parse_dependency(item, what, source));
  return out;
}

// Parses Chart.yaml; `what` names it in messages ("x.tgz: mychart/Chart.yaml").
ChartMetadata parse_chart_yaml(const std::string& text, const std::string& what) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw UsageError(what + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                     ": YAML syntax error: " + e.msg);
  }
  if (!root.IsMap()) throw UsageError(what + " is not a YAML map of chart metadata");

  ChartMetadata meta;
  std::size_t budget = k_max_yaml_nodes;
  try {
    meta.config_json = yaml_to_json(root, what, 0, budget).dump();
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(what + " cannot be converted to JSON: " + e.what(), "Chart.yaml must be UTF-8 text");
  }
  meta.api_version = string_field(root, "apiVersion", what);
  // Helm 2 accepted charts without apiVersion, and Helm 3's loader takes them as v1.
  if (meta.api_version.empty()) meta.api_version = "v1";
  meta.name = string_field(root, "name", what);
  meta.version = string_field(root, "version", what);
  meta.app_version = string_field(root, "appVersion", what);
  meta.description = string_field(root, "description", what);
  meta.type = string_field(root, "type", what);
  if (meta.name.empty()) throw UsageError(what + " has no 'name'", "Chart.yaml must give the chart's name and version");
  if (meta.version.empty()) {
    throw UsageError(what + " has no 'version'", "Chart.yaml must give the chart's name and version");
  }
  if (meta.name == "." || meta.name == ".." || meta.name.find_first_of("/\\") != std::string::npos) {
    throw UsageError(what + ": chart name '" + meta.name + "' is not a valid directory name");
  }
  meta.dependencies = parse_dependencies(root, what, DependencySource::chart);
  const YAML::Node annotations = root["annotations"];
  if (annotations.IsDefined() && !annotations.IsNull()) {
    if (!annotations.IsMap()) {
      throw UsageError(what + ":" + std::to_string(annotations.Mark().line + 1) + ": 'annotations' must be a map");
    }
    for (const auto& item : annotations) {
      if (!item.second.IsScalar() && !item.second.IsNull()) {
        throw UsageError(what + ":" + std::to_string(item.second.Mark().line + 1) + ": annotation '" +
                         item.first.Scalar() + "' must be a string");
      }
      meta.annotations[item.first.Scalar()] = item.second.IsScalar() ? item.second.Scalar() : std::string();
    }
  }
  return meta;
}

// Helm's loader reads requirements.yaml into the chart's metadata, whatever its
// apiVersion: its `dependencies:` (when it has that key) replace Chart.yaml's, and so
// they do in the config blob `helm push` writes. `what` names the file in messages.
void apply_requirements(ChartMetadata& meta, const std::string& text, const std::string& what) {
  if (text.size() > k_max_chart_yaml_size) {
    throw UsageError(what + " is larger than " + std::to_string(k_max_chart_yaml_size >> 20) + " MiB");
  }
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw UsageError(what + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                     ": YAML syntax error: " + e.msg);
  }
  if (root.IsNull()) return;
  if (!root.IsMap()) throw UsageError(what + " is not a YAML map of dependencies");
  const YAML::Node dependencies = root["dependencies"];
  if (!dependencies.IsDefined()) return;
  meta.dependencies = parse_dependencies(root, what, DependencySource::chart);
  meta.dependencies_file = "requirements.yaml";
  nlohmann::json config = nlohmann::json::parse(meta.config_json);
  if (dependencies.IsNull() || (dependencies.IsSequence() && dependencies.size() == 0)) {
    config.erase("dependencies"); // `omitempty` in Helm's Metadata
    meta.config_json = config.dump();
  } else {
    std::size_t budget = k_max_yaml_nodes;
    try {
      config["dependencies"] = yaml_to_json(dependencies, what, 0, budget);
      meta.config_json = config.dump(); // where text that is not UTF-8 is found
    } catch (const nlohmann::json::exception& e) {
      throw UsageError(what + " cannot be converted to JSON: " + e.what(), "requirements.yaml must be UTF-8 text");
    }
  }
}

// Reads at most `limit` bytes of `path`; more is a UsageError naming it.
std::string read_limited(const fs::path& path, std::size_t limit, std::string_view what) {
  core::FileSource source(path);
  try {
    return core::read_all(source, limit, core::display(path));
  } catch (const core::IntegrityError&) {
    throw UsageError(std::string(what) + " " + core::display(path) + " is larger than the limit of " +
                     std::to_string(limit >> 20) + " MiB");
  }
}

// --- reading --------------------------------------------------------------------------

// Splits a tar entry path into components; refuses absolute paths, "..", "." and empty
// components (a trailing '/' of a directory entry is allowed).
std::vector<std::string> split_entry_path(const std::string& path, const std::string& shown) {
  if (path.empty()) throw UsageError(shown + " has an entry with an empty path");
  if (path.front() == '/') throw UsageError(shown + ": entry '" + path + "' has an absolute path");
  std::string_view rest = path;
  if (rest.back() == '/') rest.remove_suffix(1);
  std::vector<std::string> parts;
  while (true) {
    const std::size_t slash = rest.find('/');
    const std::string_view part = rest.substr(0, slash);
    if (part == "..") throw UsageError(shown + ": entry '" + path + "' has a '..' component");
    if (part.empty() || part == ".") {
      throw UsageError(shown + ": entry '" + path + "' is not a normalised relative path",
                       "`helm package` writes entries as CHART/FILE, without '.' or empty components");
    }
    parts.emplace_back(part);
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return parts;
}

std::string read_entry_data(archive* a, std::size_t size, const std::string& what) {
  std::string data(size, '\0');
  std::size_t done = 0;
  while (done < size) {
    const la_ssize_t n = archive_read_data(a, data.data() + done, size - done);
    if (n < 0) throw UsageError("reading " + what + ": " + archive_error(a));
    if (n == 0) throw UsageError(what + " ended after " + std::to_string(done) + " of " + std::to_string(size) + " bytes");
    done += static_cast<std::size_t>(n);
  }
  return data;
}

// One regular file of a chart archive, as scan_chart_archive() meets it.
struct ScannedFile {
  std::string entry_path; // as in the tar ("mychart/templates/x.yaml")
  std::string rel;        // below the top directory ("templates/x.yaml")
  std::uint64_t size = 0;
  bool executable = false;
  std::function<std::string()> read; // its data; call at most once, before the next file
};

// Walks a chart archive (gzip tar, one top directory) with every check that
// read_chart_archive() promises, handing each regular file to `on_file`. Returns the
// name of the top directory.
std::string scan_chart_archive(const std::string& bytes, const std::string& shown,
                               const std::function<void(const ScannedFile&)>& on_file) {
  if (bytes.size() < 2 || static_cast<unsigned char>(bytes[0]) != 0x1f || static_cast<unsigned char>(bytes[1]) != 0x8b) {
    throw UsageError(shown + " is not a gzip-compressed chart archive", "give a .tgz written by `helm package` or a chart directory");
  }
  if (bytes.size() > k_max_chart_size) {
    throw UsageError(shown + " is larger than the limit of " + std::to_string(k_max_chart_size >> 20) + " MiB");
  }

  const Utf8Locale utf8_locale;
  ArchiveReader reader(archive_read_new());
  if (!reader) throw core::Error(core::ExitCode::failure, "archive_read_new failed");
  archive* a = reader.get();
  if (archive_read_support_filter_gzip(a) != ARCHIVE_OK || archive_read_support_format_tar(a) != ARCHIVE_OK ||
      archive_read_open_memory(a, bytes.data(), bytes.size()) != ARCHIVE_OK) {
    throw UsageError(shown + " is not a valid chart archive: " + archive_error(a));
  }

  std::string top;
  std::uint64_t unpacked = 0;
  while (true) {
    archive_entry* entry = nullptr;
    const int r = archive_read_next_header(a, &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) throw UsageError(shown + " is not a valid chart archive: " + archive_error(a));
    const char* raw_path = archive_entry_pathname_utf8(entry);
    if (!raw_path) raw_path = archive_entry_pathname(entry);
    const std::string path = raw_path ? raw_path : "";
    const std::vector<std::string> parts = split_entry_path(path, shown);
    if (top.empty()) {
      top = parts.front();
    } else if (parts.front() != top) {
      throw UsageError(shown + " has more than one top-level directory ('" + top + "' and '" + parts.front() + "')",
                       "a chart archive holds exactly one directory named after the chart");
    }
    const mode_t type = archive_entry_filetype(entry);
    if (type == AE_IFDIR) continue;
    if (type != AE_IFREG || archive_entry_hardlink(entry) != nullptr) {
      throw UsageError(shown + ": entry '" + path + "' is not a regular file or directory (links are not allowed in charts)");
    }
    if (parts.size() == 1) {
      throw UsageError(shown + ": entry '" + path + "' is not inside a chart directory",
                       "a chart archive holds exactly one directory named after the chart");
    }
    const la_int64_t size = archive_entry_size(entry);
    if (size < 0) throw UsageError(shown + ": entry '" + path + "' has no size");
    unpacked += static_cast<std::uint64_t>(size);
    if (unpacked > k_max_unpacked_size) {
      throw UsageError(shown + " unpacks to more than " + std::to_string(k_max_unpacked_size >> 20) + " MiB");
    }
    std::string rel = parts[1];
    for (std::size_t i = 2; i < parts.size(); ++i) rel += "/" + parts[i];
    ScannedFile file;
    file.entry_path = path;
    file.rel = std::move(rel);
    file.size = static_cast<std::uint64_t>(size);
    file.executable = (archive_entry_perm(entry) & 0111) != 0;
    file.read = [a, &file, &shown] {
      return read_entry_data(a, static_cast<std::size_t>(file.size), shown + ": " + file.entry_path);
    };
    on_file(file);
  }
  if (top.empty()) throw UsageError(shown + " is an empty archive");
  return top;
}

// --- packaging ------------------------------------------------------------------------

// One .helmignore pattern, interpreted as Helm's pkg/ignore/rules.go does: a trailing
// '/' matches directories only; a pattern with a '/' (a leading one is dropped) matches
// the whole relative path, one without matches the base name; globs are those of Go's
// filepath.Match, which fnmatch(FNM_PATHNAME) implements ('*' and '?' never match '/').
struct IgnoreRule {
  std::string glob;
  bool directories_only = false;
  bool whole_path = false;
};

// True when `glob` is well-formed for filepath.Match: brackets closed, no dangling '\'.
bool valid_glob(std::string_view glob) {
  for (std::size_t i = 0; i < glob.size(); ++i) {
    if (glob[i] == '\\') {
      if (++i == glob.size()) return false;
    } else if (glob[i] == '[') {
      std::size_t j = i + 1;
      if (j < glob.size() && (glob[j] == '^' || glob[j] == '!')) ++j;
      if (j < glob.size() && glob[j] == ']') ++j; // a leading ']' is a member
      while (j < glob.size() && glob[j] != ']') {
        if (glob[j] == '\\') ++j;
        ++j;
      }
      if (j >= glob.size()) return false;
      i = j;
    }
  }
  return true;
}

class HelmIgnore {
public:
  // Helm always adds this rule (ignore.AddDefaults): hidden files under templates/.
  HelmIgnore() { m_rules.push_back({.glob = "templates/.?*", .directories_only = false, .whole_path = true}); }

  void parse(const std::string& text, const std::string& shown) {
    std::size_t start = 0;
    int line_number = 0;
    while (start <= text.size()) {
      std::size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string line = text.substr(start, end - start);
      start = end + 1;
      ++line_number;
      const auto first = line.find_first_not_of(" \t\r\f\v");
      if (first == std::string::npos) continue;
      line = line.substr(first, line.find_last_not_of(" \t\r\f\v") - first + 1);
      if (line.front() == '#') continue;
      const std::string where = shown + ":" + std::to_string(line_number) + ": ";
      if (line.front() == '!') {
        throw UsageError(where + "negated pattern '" + line + "' is not supported",
                         "list only what to leave out of the chart; a '!' rule cannot bring files back");
      }
      if (line.find("**") != std::string::npos) {
        throw UsageError(where + "pattern '" + line + "' uses '**', which .helmignore does not support");
      }
      if (!valid_glob(line)) throw UsageError(where + "pattern '" + line + "' is malformed (unclosed '[' or trailing '\\')");
      IgnoreRule rule;
      if (line.back() == '/') {
        rule.directories_only = true;
        line.pop_back();
      }
      if (!line.empty() && line.front() == '/') {
        rule.whole_path = true;
        line.erase(0, 1);
      } else {
        rule.whole_path = line.find('/') != std::string::npos;
      }
      if (line.empty()) continue; // "/" alone: Helm never ignores the chart root
      rule.glob = std::move(line);
      m_rules.push_back(std::move(rule));
    }
  }

  bool ignored(const std::string& rel, bool is_directory) const {
    const std::size_t slash = rel.rfind('/');
    const std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
    for (const auto& rule : m_rules) {
      if (rule.directories_only && !is_directory) continue;
      const std::string& subject = rule.whole_path ? rel : base;
      if (::fnmatch(rule.glob.c_str(), subject.c_str(), FNM_PATHNAME) == 0) return true;
    }
    return false;
  }

private:
  std::vector<IgnoreRule> m_rules;
};

struct ChartFile {
  std::string rel;  // relative path with '/' separators
  fs::path path;    // on disk (possibly through a symlink inside the chart)
  bool executable = false;
};

bool is_within(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

class ChartWalker {
public:
  ChartWalker(const fs::path& dir, const HelmIgnore& rules, std::vector<ChartFile>& out)
      : m_dir(dir), m_shown(core::display(dir)), m_rules(rules), m_out(out) {
    std::error_code ec;
    m_root = fs::canonical(dir, ec);
    if (ec) throw UsageError("cannot resolve chart directory " + m_shown + ": " + ec.message());
  }

  void walk() { walk_directory(m_dir, m_root, ""); }

private:
  void walk_directory(const fs::path& dir, const fs::path& canonical, const std::string& prefix) {
    m_stack.push_back(canonical);
    std::vector<fs::directory_entry> entries;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(*it);
    if (ec) throw core::Error(core::ExitCode::failure, "cannot list " + core::display(dir) + ": " + ec.message());
    for (const auto& entry : entries) {
      const std::string name = entry.path().filename().string();
      const std::string rel = prefix.empty() ? name : prefix + "/" + name;
      visit(entry.path(), rel);
    }
    m_stack.pop_back();
  }

  void visit(const fs::path& path, const std::string& rel) {
    std::error_code ec;
    const fs::file_status link_status = fs::symlink_status(path, ec);
    if (ec) throw core::Error(core::ExitCode::failure, "cannot stat " + core::display(path) + ": " + ec.message());
    fs::path target;
    if (fs::is_symlink(link_status)) {
      target = fs::canonical(path, ec);
      if (ec) {
        if (m_rules.ignored(rel, false)) return;
        throw UsageError("symlink " + rel + " in chart " + m_shown + " points to a missing file",
                         "remove it or list it in .helmignore");
      }
    } else {
      target = m_stack.back() / path.filename();
    }
    const fs::file_status status = fs::status(path, ec);
    if (ec) throw core::Error(core::ExitCode::failure, "cannot stat " + core::display(path) + ": " + ec.message());
    const bool is_directory = fs::is_directory(status);
    if (m_rules.ignored(rel, is_directory)) return;
    if (fs::is_symlink(link_status) && !is_within(target, m_root)) {
      throw UsageError("symlink " + rel + " in chart " + m_shown + " points outside the chart, to " + target.string(),
                       "copy the file into the chart directory or list the link in .helmignore");
    }
    if (is_directory) {
      if (std::find(m_stack.begin(), m_stack.end(), target) != m_stack.end()) {
        throw UsageError("symlink " + rel + " in chart " + m_shown + " makes a loop (it points to " + target.string() + ")");
      }
      walk_directory(path, target, rel);
      return;
    }
    if (!fs::is_regular_file(status)) {
      throw UsageError("cannot package " + rel + " in chart " + m_shown + ": not a regular file or directory");
    }
    const fs::perms perms = status.permissions();
    const bool executable = (perms & (fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec)) != fs::perms::none;
    m_out.push_back({.rel = rel, .path = path, .executable = executable});
  }

  fs::path m_dir;
  std::string m_shown;
  fs::path m_root;
  const HelmIgnore& m_rules;
  std::vector<ChartFile>& m_out;
  std::vector<fs::path> m_stack; // canonical directories being walked, against loops
};

// Collects libarchive's output in memory, refusing to grow past k_max_chart_size.
struct ArchiveOutput {
  std::string bytes;
  bool too_large = false;
};

la_ssize_t write_callback(archive* a, void* client, const void* buffer, size_t length) {
  auto* out = static_cast<ArchiveOutput*>(client);
  if (out->bytes.size() + length > k_max_chart_size) {
    out->too_large = true;
    archive_set_error(a, EFBIG, "chart archive larger than the limit");
    return -1;
  }
  out->bytes.append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

// Writes chart entries the reproducible way (see package_chart_directory) into memory.
class ChartArchiveWriter {
public:
  ChartArchiveWriter(std::string shown, std::int64_t mtime)
      : m_shown(std::move(shown)), m_mtime(mtime), m_writer(archive_write_new()) {
    if (!m_writer) throw core::Error(core::ExitCode::failure, "archive_write_new failed");
    archive* a = m_writer.get();
    // pax_restricted writes plain ustar headers and adds pax records only for what ustar
    // cannot hold (long paths). The gzip header gets no timestamp (libarchive never writes
    // the original file name), and the last block is not padded, so the same files give
    // the same bytes whenever they are packaged.
    if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK || archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
        archive_write_set_filter_option(a, "gzip", "timestamp", nullptr) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK ||
        archive_write_open(a, &m_output, nullptr, write_callback, nullptr) != ARCHIVE_OK) {
      throw core::Error(core::ExitCode::failure,
                        "cannot set up the archive writer for chart " + m_shown + ": " + archive_error(a));
    }
  }
  ChartArchiveWriter(const ChartArchiveWriter&) = delete; // libarchive's callback points at m_output
  ChartArchiveWriter& operator=(const ChartArchiveWriter&) = delete;

  // One regular file; `entry_path` includes the top directory ("mychart/values.yaml").
  void add(const std::string& entry_path, const std::string& content, bool executable) {
    m_unpacked += content.size();
    if (m_unpacked > k_max_unpacked_size) {
      throw UsageError("chart " + m_shown + " holds more than " + std::to_string(k_max_unpacked_size >> 20) + " MiB of files",
                       "list large files that the chart does not need in .helmignore");
    }
    archive* a = m_writer.get();
    ArchiveEntry entry(archive_entry_new());
    if (!entry) throw core::Error(core::ExitCode::failure, "archive_entry_new failed");
    archive_entry_set_pathname(entry.get(), entry_path.c_str());
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), executable ? 0755 : 0644);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(content.size()));
    archive_entry_set_mtime(entry.get(), static_cast<time_t>(m_mtime), 0);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    if (archive_write_header(a, entry.get()) < ARCHIVE_OK) fail("writing chart entry " + entry_path);
    if (!content.empty() &&
        archive_write_data(a, content.data(), content.size()) != static_cast<la_ssize_t>(content.size())) {
      fail("writing chart entry " + entry_path);
    }
  }

  std::string finish() {
    if (archive_write_close(m_writer.get()) != ARCHIVE_OK) fail("finishing chart archive " + m_shown);
    return std::move(m_output.bytes);
  }

private:
  [[noreturn]] void fail(const std::string& doing) {
    if (m_output.too_large) {
      throw UsageError("chart " + m_shown + " packages to more than " + std::to_string(k_max_chart_size >> 20) + " MiB");
    }
    throw core::Error(core::ExitCode::failure, doing + ": " + archive_error(m_writer.get()));
  }

  std::string m_shown;
  std::int64_t m_mtime;
  std::uint64_t m_unpacked = 0;
  ArchiveOutput m_output;
  const Utf8Locale m_utf8_locale; // before the writer: in force while it writes
  ArchiveWriter m_writer;
};

} // namespace

PackagedChart read_chart_archive(std::string bytes, const std::string& display) {
  PackagedChart chart;
  chart.archive = std::move(bytes);
  std::string chart_yaml;
  bool have_chart_yaml = false;
  std::optional<std::string> requirements_yaml;
  const std::string top = scan_chart_archive(chart.archive, display, [&](const ScannedFile& file) {
    if (file.rel != "Chart.yaml" && file.rel != "requirements.yaml") return;
    const bool is_chart_yaml = file.rel == "Chart.yaml";
    if (is_chart_yaml ? have_chart_yaml : requirements_yaml.has_value()) {
      throw UsageError(display + " holds " + file.entry_path + " twice");
    }
    if (file.size > k_max_chart_yaml_size) {
      throw UsageError(display + ": " + file.entry_path + " is larger than " + std::to_string(k_max_chart_yaml_size >> 20) +
                       " MiB");
    }
    if (is_chart_yaml) {
      chart_yaml = file.read();
      have_chart_yaml = true;
    } else {
      requirements_yaml = file.read();
    }
  });
  if (!have_chart_yaml) {
    throw UsageError(display + " has no " + top + "/Chart.yaml", "is it a Helm chart archive? `helm package DIR` writes one");
  }
  chart.metadata = parse_chart_yaml(chart_yaml, display + ": " + top + "/Chart.yaml");
  if (requirements_yaml) apply_requirements(chart.metadata, *requirements_yaml, display + ": " + top + "/requirements.yaml");
  if (chart.metadata.name != top) {
    throw UsageError(display + ": top directory '" + top + "' does not match the chart name '" + chart.metadata.name +
                     "' in " + top + "/Chart.yaml");
  }
  return chart;
}

PackagedChart read_chart_archive(const fs::path& tgz) {
  return read_chart_archive(read_limited(tgz, k_max_chart_size, "chart archive"), core::display(tgz));
}

std::vector<ArchiveFile> read_chart_files(const std::string& archive, const std::string& display) {
  std::vector<ArchiveFile> files;
  scan_chart_archive(archive, display, [&](const ScannedFile& file) {
    files.push_back(ArchiveFile{.path = file.rel, .data = file.read(), .executable = file.executable});
  });
  return files;
}

ChartMetadata parse_chart_metadata(const std::string& chart_yaml, const std::string& what) {
  if (chart_yaml.size() > k_max_chart_yaml_size) {
    throw UsageError(what + " is larger than " + std::to_string(k_max_chart_yaml_size >> 20) + " MiB");
  }
  return parse_chart_yaml(chart_yaml, what);
}

ChartMetadata read_chart_metadata(const std::vector<ArchiveFile>& files, const std::string& display) {
  const auto find = [&](const char* path) {
    const auto it = std::find_if(files.begin(), files.end(), [&](const ArchiveFile& f) { return f.path == path; });
    return it == files.end() ? nullptr : &*it;
  };
  const ArchiveFile* chart_yaml = find("Chart.yaml");
  if (!chart_yaml) {
    throw UsageError(display + " has no Chart.yaml", "a chart directory holds Chart.yaml, values.yaml and templates/");
  }
  ChartMetadata meta = parse_chart_metadata(chart_yaml->data, display + ": Chart.yaml");
  if (const ArchiveFile* requirements = find("requirements.yaml")) {
    apply_requirements(meta, requirements->data, display + ": requirements.yaml");
  }
  return meta;
}

ChartLock parse_chart_lock(const std::string& text, const std::string& file, const std::string& what) {
  const char* hint = "regenerate it with `helm dependency update`";
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw UsageError(what + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                         ": YAML syntax error: " + e.msg,
                     hint);
  }
  if (!root.IsMap()) throw UsageError(what + " is not a YAML map", hint);
  ChartLock lock;
  lock.file = file;
  const YAML::Node digest = root["digest"];
  if (digest.IsDefined() && !digest.IsNull()) {
    if (!digest.IsScalar()) {
      throw UsageError(what + ":" + std::to_string(digest.Mark().line + 1) + ": 'digest' must be a string", hint);
    }
    lock.digest = go_string_of(digest);
  }
  lock.dependencies = parse_dependencies(root, what, DependencySource::lock);
  return lock;
}

std::optional<ChartLock> find_chart_lock(const std::vector<ArchiveFile>& files, const std::string& display) {
  // Helm's LoadFiles sets the lock from each of the two files it meets, so the last wins.
  const ArchiveFile* chosen = nullptr;
  for (const auto& file : files) {
    if (file.path == "Chart.lock" || file.path == "requirements.lock") chosen = &file;
  }
  if (!chosen) return std::nullopt;
  return parse_chart_lock(chosen->data, chosen->path, display + ": " + chosen->path);
}

std::string write_chart_archive(const std::string& name, std::vector<ArchiveFile> files, std::int64_t mtime,
                                const std::string& display) {
  std::sort(files.begin(), files.end(), [](const ArchiveFile& x, const ArchiveFile& y) { return x.path < y.path; });
  for (std::size_t i = 1; i < files.size(); ++i) {
    if (files[i].path == files[i - 1].path) throw UsageError("chart " + display + " would hold " + files[i].path + " twice");
  }
  ChartArchiveWriter writer(display, mtime);
  for (const auto& file : files) {
    split_entry_path(file.path, display); // the same path rules as for reading
    writer.add(name + "/" + file.path, file.data, file.executable);
  }
  return writer.finish();
}

PackagedChart package_chart_directory(const fs::path& dir, std::int64_t mtime) {
  const std::string shown = core::display(dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw UsageError(shown + " is not a directory");
  if (!fs::is_regular_file(dir / "Chart.yaml", ec)) throw UsageError(shown + " is not a chart directory (no Chart.yaml)");

  PackagedChart chart;
  const fs::path chart_yaml_path = dir / "Chart.yaml";
  chart.metadata = parse_chart_yaml(read_limited(chart_yaml_path, k_max_chart_yaml_size, "Chart.yaml"),
                                    core::display(chart_yaml_path));

  HelmIgnore rules;
  const fs::path ignore_path = dir / ".helmignore";
  if (fs::is_regular_file(ignore_path, ec)) {
    rules.parse(read_limited(ignore_path, 1u << 20, ".helmignore"), core::display(ignore_path));
  }

  std::vector<ChartFile> files;
  ChartWalker(dir, rules, files).walk();
  std::sort(files.begin(), files.end(), [](const ChartFile& x, const ChartFile& y) { return x.rel < y.rel; });
  if (std::none_of(files.begin(), files.end(), [](const ChartFile& f) { return f.rel == "Chart.yaml"; })) {
    throw UsageError(shown + "/.helmignore excludes Chart.yaml", "a chart cannot be packaged without its Chart.yaml");
  }
  // As Helm's LoadDir: a requirements.yaml that .helmignore leaves out is not read.
  if (const auto requirements =
          std::find_if(files.begin(), files.end(), [](const ChartFile& f) { return f.rel == "requirements.yaml"; });
      requirements != files.end()) {
    apply_requirements(chart.metadata, read_limited(requirements->path, k_max_chart_yaml_size, "requirements.yaml"),
                       core::display(requirements->path));
  }

  ChartArchiveWriter writer(shown, mtime);
  for (const auto& file : files) {
    writer.add(chart.metadata.name + "/" + file.rel, read_limited(file.path, k_max_chart_size, "file"), file.executable);
  }
  chart.archive = writer.finish();
  return chart;
}

PackagedChart load_chart(const fs::path& path, std::int64_t mtime) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw UsageError("chart " + core::display(path) + " does not exist");
  if (fs::is_directory(status)) return package_chart_directory(path, mtime);
  return read_chart_archive(path);
}

} // namespace ferry::chart
