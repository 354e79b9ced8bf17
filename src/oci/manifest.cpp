// Manifest and index JSON (OCI image-spec v1.1 manifest.md / image-index.md, Docker schema 2).
// SPDX-License-Identifier: Apache-2.0
#include "oci/manifest.hpp"

#include "core/error.hpp"
#include "oci/media_types.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <utility>

namespace ferry::oci {

namespace {

using nlohmann::json;

constexpr std::size_t k_max_shown = 100;

const std::string k_schema1_hint =
    "convert the image to schema 2 first: skopeo copy --format v2s2 docker://SOURCE docker://DESTINATION";

// A JSON value for a message, cut short so a hostile document cannot flood the terminal.
std::string shown_json(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > k_max_shown) text = text.substr(0, k_max_shown) + "…";
  return text;
}

std::string shown_text(std::string_view text) {
  if (text.size() > k_max_shown) return std::string(text.substr(0, k_max_shown)) + "…";
  return std::string(text);
}

const char* type_name(const json& value) {
  // nlohmann says "number" for all three; an operator wants to know which one was wrong.
  if (value.is_number_float()) return "a fractional number";
  if (value.is_number_integer()) return "an integer";
  if (value.is_string()) return "a string";
  if (value.is_object()) return "an object";
  if (value.is_array()) return "an array";
  if (value.is_boolean()) return "a boolean";
  return "null";
}

// Everything a parse error needs: the document's name and the path of the field.
class Parser {
public:
  explicit Parser(std::string_view what) : m_what(what) {}

  [[noreturn]] void fail(const std::string& path, const std::string& problem) const {
    throw core::IntegrityError(m_what + ": " + (path.empty() ? problem : path + " " + problem));
  }

  [[noreturn]] void fail_schema1(const std::string& reason) const {
    throw core::IntegrityError(m_what + " is a Docker schema 1 manifest (" + reason +
                                   "), which ferry does not support",
                               k_schema1_hint);
  }

  const json& require(const json& object, const char* key, const std::string& path) const {
    auto it = object.find(key);
    if (it == object.end()) fail(path, std::string("has no \"") + key + "\"");
    return *it;
  }

  std::string string_at(const json& value, const std::string& path) const {
    if (!value.is_string()) fail(path, "is " + std::string(type_name(value)) + ", expected a string");
    return value.get<std::string>();
  }

  std::optional<std::string> optional_string(const json& object, const char* key, const std::string& path) const {
    auto it = object.find(key);
    if (it == object.end()) return std::nullopt;
    return string_at(*it, join(path, key));
  }

  void check_object(const json& value, const std::string& path) const {
    if (!value.is_object()) fail(path, "is " + std::string(type_name(value)) + ", expected an object");
  }

  std::map<std::string, std::string> annotations(const json& object, const std::string& path) const {
    std::map<std::string, std::string> result;
    auto it = object.find("annotations");
    if (it == object.end() || it->is_null()) return result;
    const std::string here = join(path, "annotations");
    check_object(*it, here);
    for (const auto& [key, value] : it->items()) result.emplace(key, string_at(value, here + "." + key));
    return result;
  }

  std::vector<std::string> urls(const json& object, const std::string& path) const {
    std::vector<std::string> result;
    auto it = object.find("urls");
    if (it == object.end() || it->is_null()) return result;
    const std::string here = join(path, "urls");
    if (!it->is_array()) fail(here, "is " + std::string(type_name(*it)) + ", expected an array");
    for (std::size_t i = 0; i < it->size(); ++i) result.push_back(string_at((*it)[i], indexed(here, i)));
    return result;
  }

  Platform platform(const json& value, const std::string& path) const {
    check_object(value, path);
    Platform p;
    p.os = string_at(require(value, "os", path), join(path, "os"));
    p.architecture = string_at(require(value, "architecture", path), join(path, "architecture"));
    p.variant = optional_string(value, "variant", path).value_or("");
    p.os_version = optional_string(value, "os.version", path).value_or("");
    return p;
  }

  std::uint64_t size(const json& value, const std::string& path) const {
    // nlohmann stores non-negative integers as unsigned, negative ones as signed, and
    // anything beyond uint64 (or written with a fraction or exponent) as a double.
    if (value.is_number_unsigned()) return value.get<std::uint64_t>();
    if (value.is_number_integer()) fail(path, "is " + shown_json(value) + ", expected a non-negative integer");
    if (value.is_number_float()) {
      fail(path, "is " + shown_json(value) + ", expected a non-negative integer that fits in 64 bits");
    }
    if (value.is_null()) fail(path, "is null, expected a non-negative integer");
    fail(path, "is " + std::string(type_name(value)) + " (" + shown_json(value) + "), expected a non-negative integer");
  }

  core::Digest digest(const json& value, const std::string& path) const {
    const std::string text = string_at(value, path);
    if (auto d = core::Digest::try_parse(text)) return *d;
    const auto colon = text.find(':');
    if (colon != std::string::npos && colon > 0 && text.compare(0, colon, "sha256") != 0) {
      fail(path, "'" + shown_text(text) + "' uses algorithm '" + shown_text(text.substr(0, colon)) +
                     "'; only sha256 is supported");
    }
    fail(path, "'" + shown_text(text) + "' is not a sha256 digest (expected sha256: and 64 lower-case hex digits)");
  }

  Descriptor descriptor(const json& value, const std::string& path) const {
    check_object(value, path);
    std::string media_type = string_at(require(value, "mediaType", path), join(path, "mediaType"));
    core::Digest d = digest(require(value, "digest", path), join(path, "digest"));
    const std::uint64_t n = size(require(value, "size", path), join(path, "size"));
    std::optional<Platform> where;
    if (auto it = value.find("platform"); it != value.end() && !it->is_null()) {
      where = platform(*it, join(path, "platform"));
    }
    return Descriptor{
        .media_type = std::move(media_type),
        .digest = std::move(d),
        .size = n,
        .platform = std::move(where),
        .annotations = annotations(value, path),
        .artifact_type = optional_string(value, "artifactType", path).value_or(""),
        .urls = urls(value, path),
    };
  }

  std::vector<Descriptor> descriptors(const json& object, const char* key) const {
    const json& list = require(object, key, "");
    if (!list.is_array()) fail(key, "is " + std::string(type_name(list)) + ", expected an array");
    std::vector<Descriptor> result;
    result.reserve(list.size());
    for (std::size_t i = 0; i < list.size(); ++i) result.push_back(descriptor(list[i], indexed(key, i)));
    return result;
  }

  std::optional<Descriptor> subject(const json& object) const {
    auto it = object.find("subject");
    if (it == object.end() || it->is_null()) return std::nullopt;
    return descriptor(*it, "subject");
  }

  static std::string join(const std::string& path, const char* key) { return path.empty() ? key : path + "." + key; }
  static std::string indexed(const std::string& path, std::size_t i) {
    return path + "[" + std::to_string(i) + "]";
  }

private:
  std::string m_what;
};

enum class Kind { manifest, index };

bool is_schema1_type(std::string_view media_type) {
  return media_type == media_type::docker_manifest_v1 || media_type == media_type::docker_manifest_v1_signed;
}

// The kind: the document's own mediaType, else the one its descriptor declared, else
// its shape. OCI image-spec (manifest.md, image-index.md) makes mediaType a SHOULD, so
// old OCI documents without it are still accepted.
Kind kind_of(const Parser& p, const json& doc, const std::optional<std::string>& own_type,
             std::string_view declared_media_type) {
  if (own_type) {
    if (is_schema1_type(*own_type)) p.fail_schema1("mediaType " + *own_type);
    if (media_type::is_index(*own_type)) return Kind::index;
    if (media_type::is_manifest(*own_type)) return Kind::manifest;
    p.fail("mediaType", "'" + shown_text(*own_type) + "' is neither an image manifest nor an index media type");
  }
  if (is_schema1_type(declared_media_type)) p.fail_schema1("declared as " + std::string(declared_media_type));
  if (media_type::is_index(declared_media_type)) return Kind::index;
  if (media_type::is_manifest(declared_media_type)) return Kind::manifest;
  if (doc.contains("manifests")) return Kind::index;
  if (doc.contains("config")) return Kind::manifest;
  if (doc.contains("fsLayers") || doc.contains("signatures")) p.fail_schema1("it has fsLayers");
  p.fail("", "is neither an image manifest nor an index (no mediaType, no \"config\", no \"manifests\")");
}

// The media type recorded for a document that did not name its own.
std::string default_media_type(Kind kind, std::string_view declared_media_type) {
  if (kind == Kind::index) {
    return media_type::is_index(declared_media_type) ? std::string(declared_media_type)
                                                     : std::string(media_type::oci_index);
  }
  return media_type::is_manifest(declared_media_type) ? std::string(declared_media_type)
                                                      : std::string(media_type::oci_manifest);
}

json platform_json(const Platform& p) {
  json out = json::object();
  out["architecture"] = p.architecture;
  out["os"] = p.os;
  if (!p.os_version.empty()) out["os.version"] = p.os_version;
  if (!p.variant.empty()) out["variant"] = p.variant;
  return out;
}

json descriptor_json(const Descriptor& d) {
  json out = json::object();
  out["mediaType"] = d.media_type;
  out["digest"] = d.digest.str();
  out["size"] = d.size;
  if (d.platform) out["platform"] = platform_json(*d.platform);
  if (!d.annotations.empty()) out["annotations"] = d.annotations;
  if (!d.artifact_type.empty()) out["artifactType"] = d.artifact_type;
  if (!d.urls.empty()) out["urls"] = d.urls;
  return out;
}

void add_common(json& out, const std::string& media_type, const std::string& artifact_type,
                const std::optional<Descriptor>& subject, const std::map<std::string, std::string>& annotations) {
  out["schemaVersion"] = 2;
  if (!media_type.empty()) out["mediaType"] = media_type;
  if (!artifact_type.empty()) out["artifactType"] = artifact_type;
  if (subject) out["subject"] = descriptor_json(*subject);
  if (!annotations.empty()) out["annotations"] = annotations;
}

// nlohmann's default object type is a std::map, so keys come out sorted at every level:
// the same struct always gives the same bytes, hence the same digest.
std::string dump(const json& value, std::string_view what) {
  try {
    return value.dump();
  } catch (const json::exception& e) {
    // Only invalid UTF-8 in a string can get here.
    throw core::Error(core::ExitCode::failure, "cannot write " + std::string(what) + " as JSON: " + e.what());
  }
}

} // namespace

AnyManifest parse_manifest(std::string_view bytes, std::string_view declared_media_type, std::string_view what) {
  const Parser p(what);
  // Manifests come from registries and bundles: a document nested 100 000 levels deep
  // parses (nlohmann keeps the nesting on the heap), but a message quoting one of its
  // values (shown_json) would recurse once per level and overflow the stack. No
  // manifest or index needs more than a few levels.
  constexpr int k_max_depth = 64;
  const auto bounded = [&](int depth, json::parse_event_t, json&) {
    if (depth > k_max_depth) {
      throw core::IntegrityError(std::string(what) + " nests JSON more than " + std::to_string(k_max_depth) +
                                 " levels deep");
    }
    return true;
  };
  json doc;
  try {
    doc = json::parse(bytes, bounded);
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number beyond a double ("size": 1e400).
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix; keep its position and reason.
    std::string message = e.what();
    if (auto end = message.find("] "); message.rfind("[json.exception.", 0) == 0 && end != std::string::npos) {
      message.erase(0, end + 2);
    }
    throw core::IntegrityError(std::string(what) + " is not valid JSON: " + message);
  }
  if (!doc.is_object()) p.fail("", "is " + std::string(type_name(doc)) + ", expected a JSON object");

  if (auto it = doc.find("schemaVersion"); it != doc.end()) {
    if (it->is_number_unsigned() && it->get<std::uint64_t>() == 1) p.fail_schema1("schemaVersion 1");
    if (!it->is_number_unsigned() || it->get<std::uint64_t>() != 2) {
      p.fail("schemaVersion", "is " + shown_json(*it) + ", expected 2");
    }
  }
  const std::optional<std::string> own_type = p.optional_string(doc, "mediaType", "");
  const Kind kind = kind_of(p, doc, own_type, declared_media_type);
  std::string media_type = own_type ? *own_type : default_media_type(kind, declared_media_type);
  std::string artifact_type = p.optional_string(doc, "artifactType", "").value_or("");

  if (kind == Kind::index) {
    ImageIndex index{
        .media_type = std::move(media_type),
        .artifact_type = std::move(artifact_type),
        .manifests = p.descriptors(doc, "manifests"),
        .subject = p.subject(doc),
        .annotations = p.annotations(doc, ""),
    };
    return index;
  }
  ImageManifest manifest{
      .media_type = std::move(media_type),
      .artifact_type = std::move(artifact_type),
      .config = p.descriptor(p.require(doc, "config", ""), "config"),
      .layers = p.descriptors(doc, "layers"),
      .subject = p.subject(doc),
      .annotations = p.annotations(doc, ""),
  };
  return manifest;
}

std::string to_json(const ImageManifest& manifest) {
  json out = json::object();
  add_common(out, manifest.media_type, manifest.artifact_type, manifest.subject, manifest.annotations);
  out["config"] = descriptor_json(manifest.config);
  out["layers"] = json::array();
  for (const Descriptor& layer : manifest.layers) out["layers"].push_back(descriptor_json(layer));
  return dump(out, "image manifest");
}

std::string to_json(const ImageIndex& index) {
  json out = json::object();
  add_common(out, index.media_type, index.artifact_type, index.subject, index.annotations);
  out["manifests"] = json::array();
  for (const Descriptor& m : index.manifests) out["manifests"].push_back(descriptor_json(m));
  return dump(out, "image index");
}

std::string to_json(const Descriptor& descriptor) {
  return dump(descriptor_json(descriptor), "descriptor " + descriptor.digest.str());
}

} // namespace ferry::oci
