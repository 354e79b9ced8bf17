// The bundle manifest (DESIGN §3): YAML or a plain image list, validated with positions.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/bundle_manifest.hpp"

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/io.hpp"
#include "core/yaml_documents.hpp"
#include "oci/reference.hpp"

#include <nlohmann/json.hpp>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>
#include <string_view>

namespace ferry::bundle {

namespace fs = std::filesystem;
using core::UsageError;

namespace {

// Larger manifests are refused before parsing: a manifest is a page of YAML, and the
// limit keeps hostile documents (alias bombs, huge scalars) cheap.
constexpr std::size_t k_max_manifest_size = 4u << 20;
// source_json walks the whole document; yaml-cpp shares aliased nodes (an alias bomb
// expands on the walk) and a recursive alias makes a cycle, so the walk is bounded.
constexpr int k_max_yaml_depth = 64;
constexpr std::size_t k_max_yaml_nodes = 1'000'000;

const std::vector<std::string> k_top_keys = {"apiVersion", "kind",     "metadata", "platforms", "images",
                                             "charts",     "files",    "releases", "mirrors",   "rules"};
const std::vector<std::string> k_metadata_keys = {"name", "version"};
const std::vector<std::string> k_image_keys = {"ref", "name", "platforms"};
const std::vector<std::string> k_chart_keys = {"name", "repo", "path", "version", "images"};
const std::vector<std::string> k_file_keys = {"path", "source", "mode"};
const std::vector<std::string> k_release_keys = {"name",    "namespace",       "chart",       "values",
                                                  "set",     "imagePullSecrets", "wait",        "timeout",
                                                  "atomic",  "createNamespace", "upgradeCRDs", "rules"};
const std::vector<std::string> k_rule_keys = {"path", "set"};

constexpr std::string_view k_manifest_hint =
    "a bundle manifest starts with `apiVersion: ferry/v1` and `kind: Bundle`; Hauler manifests need "
    "`apiVersion: content.hauler.cattle.io/v1` and `kind: Images`, `Charts` or `Files`";

// Hauler manifests (content.hauler.cattle.io/v1 and v1alpha1): what ferry takes of them.
constexpr std::string_view k_hauler_api_prefix = "content.hauler.cattle.io/";
const std::vector<std::string> k_hauler_doc_keys = {"apiVersion", "kind", "metadata", "spec"};
const std::vector<std::string> k_hauler_image_keys = {"name", "platform"};
const std::vector<std::string> k_hauler_chart_keys = {"name", "repoURL", "version", "add-images", "add-dependencies"};
const std::vector<std::string> k_hauler_file_keys = {"path", "name"};
// Hauler's cosign verification of source images: ferry cannot honour it, and dropping it
// silently would pack unverified images for someone who asked for verification.
const std::vector<std::string> k_hauler_cosign_keys = {
    "key", "certificate-identity", "certificate-identity-regexp", "certificate-oidc-issuer",
    "certificate-oidc-issuer-regexp", "certificate-github-workflow-repository", "tlog-upload", "use-tlog-verify"};

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// metadata.name: [a-z0-9][a-z0-9._-]* (it becomes part of the bundle's file name).
bool valid_bundle_name(std::string_view name) {
  if (name.empty() || !is_lower_alnum(name.front())) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return is_lower_alnum(c) || c == '.' || c == '_' || c == '-'; });
}

// A DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 characters.
bool valid_dns_label(std::string_view label) {
  if (label.empty() || label.size() > 63 || !is_lower_alnum(label.front()) || !is_lower_alnum(label.back())) return false;
  return std::all_of(label.begin(), label.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
}

// Helm's release name rule (pkg/chartutil ValidateReleaseName): DNS-1123 labels joined
// by '.', at most 53 characters.
bool valid_release_name(std::string_view name) {
  if (name.empty() || name.size() > 53) return false;
  while (true) {
    const std::size_t dot = name.find('.');
    if (!valid_dns_label(name.substr(0, dot))) return false;
    if (dot == std::string_view::npos) return true;
    name.remove_prefix(dot + 1);
  }
}

// Go's time.ParseDuration syntax without a sign: "0", or numbers (optionally with a
// fraction) each followed by a unit: "10m", "90s", "1h30m", "1.5h", "500ms".
bool valid_go_duration(std::string_view text) {
  if (text == "0") return true;
  if (text.empty()) return false;
  static const std::vector<std::string_view> units = {"ns", "us", "\xC2\xB5s", "\xCE\xBCs", "ms", "s", "m", "h"};
  std::size_t i = 0;
  const auto is_digit = [&](std::size_t k) { return k < text.size() && text[k] >= '0' && text[k] <= '9'; };
  while (i < text.size()) {
    std::size_t digits = 0;
    while (is_digit(i)) ++i, ++digits;
    if (i < text.size() && text[i] == '.') {
      ++i;
      while (is_digit(i)) ++i, ++digits;
    }
    if (digits == 0) return false;
    const std::size_t unit_start = i;
    while (i < text.size() && !is_digit(i) && text[i] != '.') ++i;
    const std::string_view unit = text.substr(unit_start, i - unit_start);
    if (std::find(units.begin(), units.end(), unit) == units.end()) return false;
  }
  return true;
}

// A path inside the bundle: relative, '/'-separated, no empty, "." or ".." components.
std::optional<std::string> bad_bundle_path(std::string_view path) {
  if (path.empty()) return "is empty";
  if (path.front() == '/') return "is absolute";
  while (true) {
    const std::size_t slash = path.find('/');
    const std::string_view part = path.substr(0, slash);
    if (part == "..") return "has a '..' component";
    if (part == ".") return "has a '.' component";
    if (part.empty()) return "has an empty component";
    if (slash == std::string_view::npos) return std::nullopt;
    path.remove_prefix(slash + 1);
  }
}

// Plain (untagged, unquoted) YAML booleans as the core schema spells them.
std::optional<bool> plain_bool(const YAML::Node& node) {
  if (!node.IsScalar() || node.Tag() != "?") return std::nullopt;
  const std::string& s = node.Scalar();
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

std::string type_name(const YAML::Node& node) {
  switch (node.Type()) {
  case YAML::NodeType::Map: return "a map";
  case YAML::NodeType::Sequence: return "a list";
  case YAML::NodeType::Scalar: return "'" + node.Scalar() + "'";
  case YAML::NodeType::Null:
  case YAML::NodeType::Undefined: break;
  }
  return "nothing";
}

// A key of a YAML map with its value; errors about the value point at the key when the
// value is null (yaml-cpp gives null values the position of the next token).
struct Field {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
  const YAML::Node& where() const { return value.IsNull() || value.Mark().is_null() ? key_node : value; }
};

// The file stem made a valid bundle name (plain image lists and Hauler manifests).
std::string name_from_stem(const fs::path& file);

class ManifestParser {
public:
  ManifestParser(const fs::path& file, BundleManifest& out) : m_file(file), m_shown(core::display(file)), m_out(out) {}

  void parse(const std::string& text) {
    std::vector<YAML::Node> docs;
    try {
      docs = core::load_all_documents(text);
    } catch (const YAML::DeepRecursion& e) {
      // yaml-cpp's parser recurses per level and stops itself at 500; its message
      // ("bad file") would not say why.
      throw UsageError(position(e.mark) + "the YAML is nested too deeply (the parser stops at depth " +
                       std::to_string(e.depth()) + ")", "a bundle manifest needs a few levels");
    } catch (const YAML::Exception& e) {
      throw UsageError(position(e.mark) + "YAML syntax error: " + e.msg);
    }
    if (docs.empty()) throw UsageError(m_shown + ":1:1: the manifest is empty", std::string(k_manifest_hint));
    if (is_hauler(docs.front())) {
      parse_root(hauler_to_bundle(docs));
      return;
    }
    if (docs.size() > 1) fail(docs[1], "the manifest holds more than one YAML document", "keep one bundle per file");
    parse_root(docs.front());
  }

private:
  static bool is_hauler(const YAML::Node& doc) {
    if (!doc.IsMap()) return false;
    const YAML::Node api = doc["apiVersion"];
    return api && api.IsScalar() && api.Scalar().rfind(k_hauler_api_prefix, 0) == 0;
  }

  // Hauler documents as the equivalent ferry manifest; the values keep their nodes (and
  // so their line and column for messages).
  YAML::Node hauler_to_bundle(const std::vector<YAML::Node>& docs) {
    YAML::Node images(YAML::NodeType::Sequence);
    YAML::Node charts(YAML::NodeType::Sequence);
    YAML::Node files(YAML::NodeType::Sequence);
    for (const YAML::Node& doc : docs) {
      if (doc.IsNull()) continue; // an empty document between two `---`
      if (!is_hauler(doc)) {
        fail(doc, "a Hauler manifest may hold only Hauler documents (apiVersion " + std::string(k_hauler_api_prefix) +
                      "…)", "keep ferry manifests and Hauler manifests in separate files");
      }
      const std::vector<Field> fields = entries(doc, "the Hauler document");
      check_unknown(fields, k_hauler_doc_keys, "the Hauler document");
      const std::string kind = non_empty(required(doc, fields, "kind", "the Hauler document"), "kind");
      const Field& spec = required(doc, fields, "spec", "the Hauler " + kind + " document");
      const std::vector<Field> spec_fields = map(spec, "spec");
      if (kind == "Images") {
        check_unknown(spec_fields, {"images"}, "spec of kind Images");
        if (const Field* f = find(spec_fields, "images")) {
          for (const YAML::Node& item : list(*f, "spec.images")) images.push_back(hauler_image(item));
        }
      } else if (kind == "Charts") {
        check_unknown(spec_fields, {"charts"}, "spec of kind Charts");
        if (const Field* f = find(spec_fields, "charts")) {
          for (const YAML::Node& item : list(*f, "spec.charts")) charts.push_back(hauler_chart(item));
        }
      } else if (kind == "Files") {
        check_unknown(spec_fields, {"files"}, "spec of kind Files");
        if (const Field* f = find(spec_fields, "files")) {
          for (const YAML::Node& item : list(*f, "spec.files")) files.push_back(hauler_file(item));
        }
      } else {
        fail(find(fields, "kind")->where(), "Hauler kind '" + kind + "' is not supported",
             "ferry reads Hauler kinds Images, Charts and Files");
      }
    }
    YAML::Node root(YAML::NodeType::Map);
    root["apiVersion"] = "ferry/v1";
    root["kind"] = "Bundle";
    YAML::Node metadata(YAML::NodeType::Map);
    metadata["name"] = name_from_stem(m_file);
    metadata["version"] = "0";
    root["metadata"] = metadata;
    if (images.size() > 0) root["images"] = images;
    if (charts.size() > 0) root["charts"] = charts;
    if (files.size() > 0) root["files"] = files;
    return root;
  }

  void refuse_cosign(const std::vector<Field>& fields) const {
    for (const auto& field : fields) {
      if (std::find(k_hauler_cosign_keys.begin(), k_hauler_cosign_keys.end(), field.key) != k_hauler_cosign_keys.end()) {
        fail(field.key_node, "Hauler's '" + field.key + "' asks for a cosign verification of the source image, "
                             "which ferry does not do",
             "verify the image with `cosign verify` before packing and remove '" + field.key +
                 "'; ferry signs the bundle and checks every digest");
      }
    }
  }

  // {name: REF, platform: os/arch} -> REF or {ref: REF, platforms: [os/arch]}.
  YAML::Node hauler_image(const YAML::Node& item) {
    if (item.IsScalar()) return item;
    if (!item.IsMap()) fail(item, "items of spec.images must be maps, found " + type_name(item));
    const std::vector<Field> fields = entries(item, "an image of spec.images");
    refuse_cosign(fields);
    check_unknown(fields, k_hauler_image_keys, "an image of spec.images");
    const Field& name = required(item, fields, "name", "image at line " + std::to_string(line_of(item)));
    const Field* platform = find(fields, "platform");
    if (!platform) return name.value;
    YAML::Node out(YAML::NodeType::Map);
    out["ref"] = name.value;
    YAML::Node platforms(YAML::NodeType::Sequence);
    platforms.push_back(platform->value);
    out["platforms"] = platforms;
    return out;
  }

  // {name, repoURL, version, add-images} -> {name, repo, version, images: auto}.
  YAML::Node hauler_chart(const YAML::Node& item) {
    if (!item.IsMap()) fail(item, "items of spec.charts must be maps, found " + type_name(item));
    const std::vector<Field> fields = entries(item, "a chart of spec.charts");
    check_unknown(fields, k_hauler_chart_keys, "a chart of spec.charts");
    const std::string what = "chart at line " + std::to_string(line_of(item));
    YAML::Node out(YAML::NodeType::Map);
    out["name"] = required(item, fields, "name", what).value;
    const Field& repo = required(item, fields, "repoURL", what);
    const std::string url = non_empty(repo, "repoURL");
    if (url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0 || url.rfind("oci://", 0) == 0) {
      out["repo"] = repo.value;
    } else {
      out["path"] = (fs::path(url) / out["name"].Scalar()).string(); // a local directory of charts
    }
    const Field* version = find(fields, "version");
    if (!version) {
      fail(item, what + " has no 'version'",
           "ferry packs a chart at a version it can record: give an exact version or a constraint such as '^1.2.0'");
    }
    out["version"] = version->value;
    if (const Field* add = find(fields, "add-images"); add && boolean(*add, "add-images")) out["images"] = "auto";
    // add-dependencies: ferry vendors a chart's missing dependencies whatever it says.
    return out;
  }

  // {path: FILE, name: NAME} -> {path: NAME (default: FILE's name), source: FILE}.
  YAML::Node hauler_file(const YAML::Node& item) {
    if (!item.IsMap()) fail(item, "items of spec.files must be maps, found " + type_name(item));
    const std::vector<Field> fields = entries(item, "a file of spec.files");
    check_unknown(fields, k_hauler_file_keys, "a file of spec.files");
    const Field& path = required(item, fields, "path", "file at line " + std::to_string(line_of(item)));
    const std::string source = non_empty(path, "path");
    if (source.find("://") != std::string::npos) {
      fail(path.where(), "file '" + source + "' is a URL; ferry packs local files",
           "download it first (on the connected side) and give its local path");
    }
    YAML::Node out(YAML::NodeType::Map);
    const Field* name = find(fields, "name");
    out["path"] = name ? name->value : YAML::Node(fs::path(source).filename().string());
    out["source"] = path.value;
    return out;
  }

  void parse_root(const YAML::Node& root) {
    if (!root.IsMap()) {
      fail(root, "expected a bundle manifest (a YAML map), found " + type_name(root), std::string(k_manifest_hint));
    }
    const std::vector<Field> fields = entries(root, "the manifest");
    check_header(root, fields);
    check_unknown(fields, k_top_keys, "the manifest");

    const Field* metadata = find(fields, "metadata");
    if (!metadata) fail(root, "the manifest has no 'metadata'", "add `metadata: {name: NAME, version: VERSION}`");
    parse_metadata(*metadata);
    if (const Field* f = find(fields, "platforms")) m_out.platforms = parse_platforms(*f, "platforms");
    if (const Field* f = find(fields, "images")) parse_images(*f);
    if (const Field* f = find(fields, "charts")) parse_charts(*f);
    if (const Field* f = find(fields, "files")) parse_files(*f);
    if (const Field* f = find(fields, "releases")) parse_releases(*f);
    if (const Field* f = find(fields, "mirrors")) parse_mirrors(*f);
    if (const Field* f = find(fields, "rules")) parse_rules(*f);

    std::size_t budget = k_max_yaml_nodes;
    m_out.source_json = dump(to_json(root, 0, budget));
  }

private:
  std::string position(const YAML::Mark& mark) const {
    if (mark.is_null()) return m_shown + ": ";
    return m_shown + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) + ": ";
  }
  std::string at(const YAML::Node& node) const { return position(node.Mark()); }
  static int line_of(const YAML::Node& node) { return node.Mark().is_null() ? 0 : node.Mark().line + 1; }

  [[noreturn]] void fail(const YAML::Node& node, const std::string& message, std::string hint = {}) const {
    throw UsageError(at(node) + message, std::move(hint));
  }

  // Rethrows a UsageError from oci:: parsing with this node's position and key.
  template <typename Fn>
  auto located(const YAML::Node& node, const std::string& key, Fn&& fn) const {
    try {
      return fn();
    } catch (const UsageError& e) {
      throw UsageError(at(node) + key + ": " + e.what(), e.hint());
    }
  }

  std::string dump(const nlohmann::json& value) const {
    try {
      return value.dump();
    } catch (const nlohmann::json::exception& e) {
      throw UsageError(m_shown + ": cannot convert the manifest to JSON: " + e.what(), "the manifest must be UTF-8 text");
    }
  }

  // The manifest as JSON: maps -> objects (keys sorted), lists -> arrays, plain
  // true/false -> booleans, null -> null, every other scalar -> its text as written.
  nlohmann::json to_json(const YAML::Node& node, int depth, std::size_t& budget) const {
    if (depth > k_max_yaml_depth || budget == 0) {
      fail(node, "the manifest is nested too deeply or too large (recursive or repeated YAML aliases?)");
    }
    --budget;
    switch (node.Type()) {
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& item : node) {
        if (!item.first.IsScalar()) fail(item.first, "map keys must be strings, found " + type_name(item.first));
        if (out.contains(item.first.Scalar())) fail(item.first, "duplicate key '" + item.first.Scalar() + "'");
        out[item.first.Scalar()] = to_json(item.second, depth + 1, budget);
      }
      return out;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(to_json(item, depth + 1, budget));
      return out;
    }
    case YAML::NodeType::Scalar:
      if (const auto b = plain_bool(node)) return *b;
      return node.Scalar();
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
    }
    return nullptr;
  }

  // The keys of `map` in order; keys must be strings and unique.
  std::vector<Field> entries(const YAML::Node& map, const std::string& what) const {
    std::vector<Field> fields;
    for (const auto& item : map) {
      if (!item.first.IsScalar()) fail(item.first, "keys of " + what + " must be strings, found " + type_name(item.first));
      const std::string& key = item.first.Scalar();
      for (const auto& seen : fields) {
        if (seen.key == key) {
          fail(item.first, "duplicate key '" + key + "' in " + what + " (first at line " +
                               std::to_string(line_of(seen.key_node)) + ")");
        }
      }
      fields.push_back({key, item.first, item.second});
    }
    return fields;
  }

  void check_unknown(const std::vector<Field>& fields, const std::vector<std::string>& known, const std::string& what) const {
    for (const auto& field : fields) {
      if (std::find(known.begin(), known.end(), field.key) != known.end()) continue;
      const std::string near = core::suggest(field.key, known);
      std::string hint;
      if (!near.empty()) {
        hint = "did you mean '" + near + "'?";
      } else {
        hint = "known keys:";
        for (const auto& k : known) hint += " " + k;
      }
      fail(field.key_node, "unknown key '" + field.key + "' in " + what, hint);
    }
  }

  static const Field* find(const std::vector<Field>& fields, std::string_view key) {
    for (const auto& field : fields) {
      if (field.key == key) return &field;
    }
    return nullptr;
  }

  // "did you mean" for a required key that is missing while a near miss is present.
  static std::string near_miss(const std::vector<Field>& fields, const std::string& key) {
    for (const auto& field : fields) {
      if (field.key != key && core::suggest(field.key, {key}) == key) {
        return "found '" + field.key + "': did you mean '" + key + "'?";
      }
    }
    return {};
  }

  // A required key of `item`, described as `what` ("chart at line 12").
  const Field& required(const YAML::Node& item, const std::vector<Field>& fields, const std::string& key,
                        const std::string& what) const {
    const Field* field = find(fields, key);
    if (!field) fail(item, what + " has no '" + key + "'", near_miss(fields, key));
    return *field;
  }

  std::string scalar(const Field& field, const std::string& what) const {
    if (field.value.IsNull()) fail(field.where(), what + " has no value");
    if (!field.value.IsScalar()) fail(field.where(), what + " must be a string, found " + type_name(field.value));
    return field.value.Scalar();
  }

  std::string non_empty(const Field& field, const std::string& what) const {
    std::string text = scalar(field, what);
    if (text.empty()) fail(field.where(), what + " is empty");
    return text;
  }

  // A list (null counts as empty).
  std::vector<YAML::Node> list(const Field& field, const std::string& what) const {
    std::vector<YAML::Node> items;
    if (field.value.IsNull()) return items;
    if (!field.value.IsSequence()) fail(field.where(), what + " must be a list, found " + type_name(field.value));
    for (const auto& item : field.value) items.push_back(item);
    return items;
  }

  std::vector<std::string> string_list(const Field& field, const std::string& what) const {
    std::vector<std::string> out;
    for (const auto& item : list(field, what)) {
      if (!item.IsScalar() || item.Scalar().empty()) {
        fail(item, "items of " + what + " must be non-empty strings, found " + type_name(item));
      }
      out.push_back(item.Scalar());
    }
    return out;
  }

  std::vector<Field> map(const Field& field, const std::string& what) const {
    if (field.value.IsNull()) return {};
    if (!field.value.IsMap()) fail(field.where(), what + " must be a map, found " + type_name(field.value));
    return entries(field.value, what);
  }

  bool boolean(const Field& field, const std::string& what) const {
    const auto value = plain_bool(field.value);
    if (!value) fail(field.where(), what + " must be true or false, found " + type_name(field.value));
    return *value;
  }

  void check_header(const YAML::Node& root, const std::vector<Field>& fields) const {
    const Field* api_version = find(fields, "apiVersion");
    const Field* kind = find(fields, "kind");
    if (!api_version && !kind) {
      fail(root, "not a ferry bundle manifest: it has no 'apiVersion' and no 'kind'",
           near_miss(fields, "apiVersion").empty() ? std::string(k_manifest_hint) : near_miss(fields, "apiVersion"));
    }
    if (!api_version) {
      const std::string near = near_miss(fields, "apiVersion");
      fail(root, "the manifest has no 'apiVersion'", near.empty() ? "add `apiVersion: ferry/v1`" : near);
    }
    const std::string version = scalar(*api_version, "apiVersion");
    if (version != "ferry/v1") {
      fail(api_version->where(), "apiVersion is '" + version + "', expected 'ferry/v1'",
           version.find("hauler") != std::string::npos ? std::string(k_manifest_hint) : std::string());
    }
    if (!kind) {
      const std::string near = near_miss(fields, "kind");
      fail(root, "the manifest has no 'kind'", near.empty() ? "add `kind: Bundle`" : near);
    }
    const std::string kind_text = scalar(*kind, "kind");
    if (kind_text != "Bundle") {
      const bool hauler = kind_text == "Images" || kind_text == "Charts" || kind_text == "Files";
      fail(kind->where(), "kind is '" + kind_text + "', expected 'Bundle'",
           hauler ? std::string(k_manifest_hint) : std::string());
    }
  }

  void parse_metadata(const Field& metadata) {
    if (!metadata.value.IsMap()) fail(metadata.where(), "metadata must be a map, found " + type_name(metadata.value));
    const std::vector<Field> fields = entries(metadata.value, "metadata");
    check_unknown(fields, k_metadata_keys, "metadata");
    const Field& name = required(metadata.value, fields, "name", "metadata");
    m_out.name = non_empty(name, "metadata.name");
    if (!valid_bundle_name(m_out.name)) {
      fail(name.where(), "metadata.name '" + m_out.name + "' is not a valid bundle name",
           "use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit");
    }
    const Field& version = required(metadata.value, fields, "version", "metadata");
    // The scalar's text as written: `version: 1.10` stays "1.10".
    m_out.version = non_empty(version, "metadata.version");
    const bool bad_char = std::any_of(m_out.version.begin(), m_out.version.end(), [](char c) {
      return c == '/' || c == '\\' || std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c));
    });
    if (bad_char || m_out.version == "." || m_out.version == "..") {
      fail(version.where(), "metadata.version '" + m_out.version + "' cannot be part of a file name",
           "use letters, digits, '.', '-', '+' and '_', as in \"2025.05.30\" or \"1.4.0-rc.1\"");
    }
  }

  std::vector<oci::Platform> parse_platforms(const Field& field, const std::string& what) const {
    std::vector<oci::Platform> platforms;
    for (const auto& item : list(field, what)) {
      if (!item.IsScalar()) fail(item, "items of " + what + " must be strings like linux/amd64, found " + type_name(item));
      platforms.push_back(located(item, what, [&] { return oci::Platform::parse(item.Scalar()); }));
    }
    return platforms;
  }

  // Validates an image source: transport syntax, and the reference for registry sources.
  static oci::ImageSource check_image_ref(const std::string& ref) {
    oci::ImageSource source = oci::ImageSource::parse(ref);
    if (source.kind == oci::ImageSource::Kind::registry) oci::Reference::parse(source.location);
    return source;
  }

  void add_image(ManifestImage image, const YAML::Node& where) {
    const auto [it, inserted] = m_image_lines.emplace(image.ref, image.line);
    if (!inserted) {
      fail(where, "image '" + image.ref + "' is listed twice (lines " + std::to_string(it->second) + " and " +
                      std::to_string(image.line) + ")");
    }
    m_out.images.push_back(std::move(image));
  }

  void parse_images(const Field& field) {
    for (const auto& item : list(field, "images")) {
      ManifestImage image;
      image.line = line_of(item);
      if (item.IsScalar()) {
        image.ref = item.Scalar();
        located(item, "images", [&] { return check_image_ref(image.ref); });
        add_image(std::move(image), item);
        continue;
      }
      if (!item.IsMap()) {
        fail(item, "items of images must be references or maps with 'ref', found " + type_name(item));
      }
      const std::string what = "image at line " + std::to_string(image.line);
      const std::vector<Field> fields = entries(item, what);
      check_unknown(fields, k_image_keys, what);
      const Field& ref = required(item, fields, "ref", what);
      image.ref = non_empty(ref, "ref");
      const oci::ImageSource source = located(ref.where(), "ref", [&] { return check_image_ref(image.ref); });
      if (const Field* name = find(fields, "name")) {
        if (source.kind == oci::ImageSource::Kind::registry) {
          fail(name->key_node, "'name' is only allowed for oci: and docker-archive: sources; image '" + image.ref +
                                   "' comes from a registry and keeps its reference",
               "remove 'name', or copy the image under the wanted name first");
        }
        image.name = non_empty(*name, "name");
        located(name->where(), "name", [&] { return oci::Reference::parse(image.name); });
      }
      if (const Field* platforms = find(fields, "platforms")) {
        image.platforms = parse_platforms(*platforms, "platforms of " + what);
      }
      add_image(std::move(image), ref.where());
    }
  }

  void parse_charts(const Field& field) {
    std::map<std::string, int> lines;
    for (const auto& item : list(field, "charts")) {
      const int line = line_of(item);
      const std::string what = "chart at line " + std::to_string(line);
      if (!item.IsMap()) fail(item, "items of charts must be maps with 'name', found " + type_name(item));
      const std::vector<Field> fields = entries(item, what);
      check_unknown(fields, k_chart_keys, what);
      ManifestChart chart;
      chart.line = line;
      const Field& name = required(item, fields, "name", what);
      chart.name = non_empty(name, "chart name");
      if (chart.name.find('/') != std::string::npos) {
        fail(name.where(), "chart name '" + chart.name + "' contains '/'",
             "give the repository in 'repo' and the chart's own name in 'name'");
      }
      const auto [seen, inserted] = lines.emplace(chart.name, line);
      if (!inserted) {
        fail(name.where(), "chart '" + chart.name + "' is listed twice (lines " + std::to_string(seen->second) + " and " +
                               std::to_string(line) + ")");
      }
      const Field* repo = find(fields, "repo");
      const Field* path = find(fields, "path");
      if (repo && path) {
        fail(path->key_node, "chart '" + chart.name + "' has both 'repo' and 'path'",
             "give 'repo' (with 'version') for a chart from a repository, or 'path' for a chart on disk");
      }
      if (!repo && !path) {
        fail(item, "chart '" + chart.name + "' has neither 'repo' nor 'path'",
             "give 'repo' (with 'version') for a chart from a repository, or 'path' for a chart on disk");
      }
      if (repo) {
        chart.repo = non_empty(*repo, "repo");
        const bool known_scheme = chart.repo.rfind("https://", 0) == 0 || chart.repo.rfind("http://", 0) == 0 ||
                                  chart.repo.rfind("oci://", 0) == 0;
        if (!known_scheme) {
          fail(repo->where(), "repo '" + chart.repo + "' of chart '" + chart.name + "' is not an https://, http:// or oci:// URL",
               "for a chart on disk use 'path:'");
        }
      } else {
        chart.path = non_empty(*path, "path");
      }
      if (const Field* version = find(fields, "version")) {
        chart.version = non_empty(*version, "version");
      } else if (repo) {
        fail(item, "chart '" + chart.name + "' at line " + std::to_string(line) + " has no 'version'",
             "charts from a repository need an exact version or a constraint such as \"^5.2.0\"");
      }
      if (const Field* images = find(fields, "images")) {
        if (images->value.IsScalar()) {
          if (images->value.Scalar() != "auto") {
            fail(images->where(), "images of chart '" + chart.name + "' must be 'auto' or a list of references, found " +
                                      type_name(images->value));
          }
          chart.images_auto = true;
        } else {
          for (const auto& ref : list(*images, "images of chart '" + chart.name + "'")) {
            if (!ref.IsScalar()) fail(ref, "images of chart '" + chart.name + "' must be references, found " + type_name(ref));
            located(ref, "images", [&] { return oci::Reference::parse(ref.Scalar()); });
            chart.images.push_back(ref.Scalar());
          }
        }
      }
      m_out.charts.push_back(std::move(chart));
    }
  }

  static std::optional<unsigned> parse_mode(std::string_view text) {
    if (text.empty() || text.size() > 8) return std::nullopt;
    unsigned mode = 0;
    for (char c : text) {
      if (c < '0' || c > '7') return std::nullopt;
      mode = mode * 8 + static_cast<unsigned>(c - '0');
    }
    if (mode > 07777) return std::nullopt;
    return mode;
  }

  void parse_files(const Field& field) {
    std::map<std::string, int> lines;
    for (const auto& item : list(field, "files")) {
      const int line = line_of(item);
      const std::string what = "file at line " + std::to_string(line);
      if (!item.IsMap()) fail(item, "items of files must be maps with 'path' and 'source', found " + type_name(item));
      const std::vector<Field> fields = entries(item, what);
      check_unknown(fields, k_file_keys, what);
      ManifestFile file;
      file.line = line;
      const Field& path = required(item, fields, "path", what);
      file.path = scalar(path, "path");
      if (const auto problem = bad_bundle_path(file.path)) {
        fail(path.where(), "file path '" + file.path + "' " + *problem,
             "give a relative path inside the bundle such as tools/helm");
      }
      const auto [seen, inserted] = lines.emplace(file.path, line);
      if (!inserted) {
        fail(path.where(), "file path '" + file.path + "' is listed twice (lines " + std::to_string(seen->second) +
                               " and " + std::to_string(line) + ")");
      }
      file.source = non_empty(required(item, fields, "source", what), "source");
      if (const Field* mode = find(fields, "mode")) {
        // The scalar's text: yaml-cpp keeps `mode: 0755` as "0755", so it reads as octal.
        const std::string text = scalar(*mode, "mode");
        const auto value = parse_mode(text);
        if (!value) {
          fail(mode->where(), "mode '" + text + "' of file '" + file.path + "' is not an octal mode up to 07777",
               "write it in octal, as in \"0755\" or \"0644\"");
        }
        file.mode = *value;
      }
      m_out.files.push_back(std::move(file));
    }
  }

  void parse_releases(const Field& field) {
    nlohmann::json releases = nlohmann::json::array();
    std::map<std::string, int> lines;
    std::vector<std::string> chart_names;
    for (const auto& chart : m_out.charts) chart_names.push_back(chart.name);
    for (const auto& item : list(field, "releases")) {
      const int line = line_of(item);
      const std::string what = "release at line " + std::to_string(line);
      if (!item.IsMap()) fail(item, "items of releases must be maps with 'name', found " + type_name(item));
      const std::vector<Field> fields = entries(item, what);
      check_unknown(fields, k_release_keys, what);
      nlohmann::json release = nlohmann::json::object();

      const Field& name_field = required(item, fields, "name", what);
      const std::string name = non_empty(name_field, "release name");
      if (!valid_release_name(name)) {
        fail(name_field.where(), "release name '" + name + "' is not valid for Helm",
             "use at most 53 lower-case letters, digits, '-' and '.', starting and ending with a letter or digit");
      }
      const auto [seen, inserted] = lines.emplace(name, line);
      if (!inserted) {
        fail(name_field.where(), "release '" + name + "' is listed twice (lines " + std::to_string(seen->second) +
                                     " and " + std::to_string(line) + ")");
      }
      release["name"] = name;

      const Field& ns = required(item, fields, "namespace", "release '" + name + "'");
      const std::string namespace_name = non_empty(ns, "namespace");
      if (!valid_dns_label(namespace_name)) {
        fail(ns.where(), "namespace '" + namespace_name + "' of release '" + name + "' is not a valid Kubernetes namespace",
             "use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit");
      }
      release["namespace"] = namespace_name;

      const Field& chart = required(item, fields, "chart", "release '" + name + "'");
      const std::string chart_name = non_empty(chart, "chart");
      if (std::find(chart_names.begin(), chart_names.end(), chart_name) == chart_names.end()) {
        const std::string near = core::suggest(chart_name, chart_names);
        fail(chart.where(), "release '" + name + "' names chart '" + chart_name + "', which is not listed in 'charts'",
             near.empty() ? "add the chart to 'charts'" : "did you mean '" + near + "'?");
      }
      release["chart"] = chart_name;

      for (const auto& f : fields) {
        if (f.key == "values" || f.key == "imagePullSecrets") {
          release[f.key] = string_list(f, f.key + " of release '" + name + "'");
        } else if (f.key == "set") {
          nlohmann::json set = nlohmann::json::object();
          for (const auto& entry : map(f, "set of release '" + name + "'")) {
            if (!entry.value.IsScalar() && !entry.value.IsNull()) {
              fail(entry.where(), "set." + entry.key + " of release '" + name + "' must be a single value, found " +
                                      type_name(entry.value),
                   "write nested keys with dots, as in `image.tag: \"1.2\"`");
            }
            set[entry.key] = entry.value.IsScalar() ? entry.value.Scalar() : std::string();
          }
          release["set"] = std::move(set);
        } else if (f.key == "rules") {
          // Values rewriting rules for what no detector reads (values/rewrite.hpp).
          nlohmann::json rules = nlohmann::json::array();
          for (const auto& rule : list(f, "rules of release '" + name + "'")) {
            const std::string rule_what = "rule at line " + std::to_string(line_of(rule)) + " of release '" + name + "'";
            if (!rule.IsMap()) fail(rule, rule_what + " must be a map with 'path' and 'set', found " + type_name(rule));
            const std::vector<Field> rule_fields = entries(rule, rule_what);
            check_unknown(rule_fields, k_rule_keys, rule_what);
            const std::string path = non_empty(required(rule, rule_fields, "path", rule_what), "path");
            const Field& set = required(rule, rule_fields, "set", rule_what);
            rules.push_back({{"path", path}, {"set", scalar(set, "set")}});
          }
          release["rules"] = std::move(rules);
        } else if (f.key == "wait" || f.key == "atomic" || f.key == "createNamespace" || f.key == "upgradeCRDs") {
          release[f.key] = boolean(f, f.key + " of release '" + name + "'");
        } else if (f.key == "timeout") {
          const std::string timeout = scalar(f, "timeout");
          if (!valid_go_duration(timeout)) {
            fail(f.where(), "timeout '" + timeout + "' of release '" + name + "' is not a duration",
                 "write it as helm does, as in 10m, 90s or 1h30m");
          }
          release["timeout"] = timeout;
        }
      }
      releases.push_back(std::move(release));
    }
    m_out.releases_json = dump(releases);
  }

  // A map of registry host -> mirror "HOST[/PREFIX]" (checked again by the puller).
  void parse_mirrors(const Field& field) {
    for (const auto& entry : map(field, "mirrors")) {
      if (!entry.value.IsScalar()) {
        fail(entry.where(), "mirrors." + entry.key + " must be a string, found " + type_name(entry.value));
      }
      const std::string target = entry.value.Scalar();
      if (target.empty() || target.find("://") != std::string::npos || target.front() == '/') {
        fail(entry.where(), "mirrors." + entry.key + " must be HOST[:PORT][/PREFIX] without a scheme, found '" + target + "'");
      }
      m_out.mirrors.push_back({entry.key, target, entry.value.Mark().line + 1});
    }
  }

  // Recorded in source_json only (values rewriting rules, used by a later version).
  void parse_rules(const Field& field) const {
    for (const auto& item : list(field, "rules")) {
      if (!item.IsMap()) fail(item, "items of rules must be maps, found " + type_name(item));
    }
  }

  fs::path m_file;
  std::string m_shown;
  BundleManifest& m_out;
  std::map<std::string, int> m_image_lines;
};

// Text before a comment: '#' at the start or after whitespace begins one.
std::string_view strip_comment(std::string_view line) {
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) return line.substr(0, i);
  }
  return line;
}

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\f\v");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r\f\v") - first + 1);
}

// One line of a plain image list, with its 1-based number.
struct ListLine {
  int number = 0;
  std::string_view token;
};

// The non-comment lines when `text` is a plain image list (each one token, none that
// YAML would read as a key or structure); nullopt when it must be YAML.
std::optional<std::vector<ListLine>> plain_list_lines(std::string_view text) {
  std::vector<ListLine> lines;
  int number = 0;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++number;
    const std::string_view token = trim(strip_comment(line));
    if (token.empty()) continue;
    if (token.find_first_of(" \t") != std::string_view::npos) return std::nullopt;
    if (token.back() == ':' || std::string_view("-{}[]'\"&*!%|>@`,?").find(token.front()) != std::string_view::npos) {
      return std::nullopt;
    }
    lines.push_back({number, token});
  }
  return lines;
}

// The file stem made a valid bundle name: lower-case, other characters -> '-'.
std::string name_from_stem(const fs::path& file) {
  std::string name;
  for (char c : file.stem().string()) {
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (is_lower_alnum(lower) || lower == '.' || lower == '_' || lower == '-') {
      name += lower;
    } else {
      name += '-';
    }
  }
  const auto first = std::find_if(name.begin(), name.end(), is_lower_alnum);
  name.erase(name.begin(), first);
  return name.empty() ? "images" : name;
}

void parse_plain_list(const std::vector<ListLine>& lines, const fs::path& file, BundleManifest& out) {
  const std::string shown = core::display(file);
  if (lines.empty()) throw UsageError(shown + ":1:1: the manifest is empty", std::string(k_manifest_hint));
  out.name = name_from_stem(file);
  out.version = "0";
  std::map<std::string, int> seen;
  nlohmann::json images = nlohmann::json::array();
  for (const auto& line : lines) {
    const std::string at = shown + ":" + std::to_string(line.number) + ": ";
    ManifestImage image;
    image.ref = std::string(line.token);
    image.line = line.number;
    try {
      const oci::ImageSource source = oci::ImageSource::parse(image.ref);
      if (source.kind == oci::ImageSource::Kind::registry) oci::Reference::parse(source.location);
    } catch (const UsageError& e) {
      throw UsageError(at + e.what(), e.hint());
    }
    const auto [it, inserted] = seen.emplace(image.ref, line.number);
    if (!inserted) {
      throw UsageError(at + "image '" + image.ref + "' is listed twice (lines " + std::to_string(it->second) + " and " +
                       std::to_string(line.number) + ")");
    }
    images.push_back(image.ref);
    out.images.push_back(std::move(image));
  }
  nlohmann::json source = {
      {"apiVersion", "ferry/v1"},
      {"kind", "Bundle"},
      {"metadata", {{"name", out.name}, {"version", out.version}}},
      {"images", std::move(images)},
  };
  try {
    out.source_json = source.dump();
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(shown + ": cannot convert the image list to JSON: " + e.what(), "the list must be UTF-8 text");
  }
}

} // namespace

fs::path BundleManifest::resolve(const std::string& path) const {
  const fs::path p(path);
  if (p.is_absolute()) return p;
  return (base_dir / p).lexically_normal();
}

BundleManifest parse_bundle_manifest(const std::string& text, const fs::path& file) {
  const std::string shown = core::display(file);
  if (text.size() > k_max_manifest_size) {
    throw UsageError("bundle manifest " + shown + " is larger than " + std::to_string(k_max_manifest_size >> 20) + " MiB",
                     "a manifest lists images, charts and files; keep large data in separate files");
  }
  BundleManifest out;
  out.file = file;
  out.base_dir = fs::absolute(file).parent_path().lexically_normal();
  if (const auto lines = plain_list_lines(text)) {
    parse_plain_list(*lines, file, out);
  } else {
    ManifestParser(file, out).parse(text);
  }
  return out;
}

BundleManifest load_bundle_manifest(const fs::path& file) {
  std::string text;
  core::FileSource source(file);
  try {
    text = core::read_all(source, k_max_manifest_size, core::display(file));
  } catch (const core::IntegrityError&) {
    throw UsageError("bundle manifest " + core::display(file) + " is larger than " +
                         std::to_string(k_max_manifest_size >> 20) + " MiB",
                     "a manifest lists images, charts and files; keep large data in separate files");
  }
  return parse_bundle_manifest(text, file);
}

std::string one_off_manifest(const OneOffSpec& spec) {
  if (spec.images.empty() && spec.charts.empty()) {
    throw core::UsageError("nothing to pack", "give a manifest with -f, or images with --image and charts with --chart");
  }
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "apiVersion" << YAML::Value << "ferry/v1";
  out << YAML::Key << "kind" << YAML::Value << "Bundle";
  out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << YAML::DoubleQuoted << spec.name;
  out << YAML::Key << "version" << YAML::Value << YAML::DoubleQuoted << spec.version;
  out << YAML::EndMap;
  if (!spec.images.empty()) {
    out << YAML::Key << "images" << YAML::Value << YAML::BeginSeq;
    for (const auto& image : spec.images) out << YAML::DoubleQuoted << image;
    out << YAML::EndSeq;
  }
  if (!spec.charts.empty()) {
    out << YAML::Key << "charts" << YAML::Value << YAML::BeginSeq;
    for (const auto& chart : spec.charts) {
      const std::string example = "e.g. --chart oci://ghcr.io/org/charts/app:1.2.0 or --chart "
                                  "https://charts.example.com/app:^1.2";
      const bool url = chart.rfind("oci://", 0) == 0 || chart.rfind("https://", 0) == 0 ||
                       chart.rfind("http://", 0) == 0;
      if (!url) {
        throw core::UsageError("--chart " + chart + ": give the chart's repository URL, NAME and version",
                               example + "; a local chart goes into a manifest's `charts:` with `path:`");
      }
      const auto scheme_end = chart.find("://") + 3;
      const auto slash = chart.rfind('/');
      if (slash == std::string::npos || slash < scheme_end || chart.find('/', scheme_end) == std::string::npos ||
          slash + 1 == chart.size()) {
        throw core::UsageError("--chart " + chart + ": no chart name after the repository URL", example);
      }
      const std::string repo = chart.substr(0, slash);
      const std::string last = chart.substr(slash + 1);
      const auto colon = last.find(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == last.size()) {
        throw core::UsageError("--chart " + chart + ": no version (ferry packs an exact version or a constraint)",
                               example);
      }
      out << YAML::BeginMap;
      out << YAML::Key << "name" << YAML::Value << YAML::DoubleQuoted << last.substr(0, colon);
      out << YAML::Key << "repo" << YAML::Value << YAML::DoubleQuoted << repo;
      out << YAML::Key << "version" << YAML::Value << YAML::DoubleQuoted << last.substr(colon + 1);
      out << YAML::Key << "images" << YAML::Value << "auto";
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  out << YAML::EndMap;
  return std::string("# Written by `ferry pack --image/--chart`; `ferry pack -f` this file packs the same bundle.\n") +
         out.c_str() + "\n";
}

} // namespace ferry::bundle
