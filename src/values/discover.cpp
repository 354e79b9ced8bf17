// Image discovery: chart annotations, values (through rewrite()'s detectors) and rendered
// manifests, merged into one deduplicated list with how each image was found.
// SPDX-License-Identifier: Apache-2.0
#include "values/discover.hpp"

#include "chart/chart_archive.hpp"
#include "core/error.hpp"
#include "core/yaml_documents.hpp"
#include "oci/reference.hpp"
#include "values/helm_values.hpp"
#include "values/rewrite.hpp"
#include "values/tree.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <optional>
#include <utility>

namespace ferry::values {

namespace {

using core::UsageError;

constexpr std::string_view k_artifacthub = "artifacthub.io/images";
constexpr std::string_view k_helm_images = "helm.sh/images";
const std::string k_templated = "templated ({{ … }})";
const std::string k_image_string = "image string";

// Helm refuses nothing here, but a chart nesting charts this deep is hostile (as in
// coalesce.cpp).
constexpr int k_max_chart_depth = 16;

std::optional<oci::Reference> try_parse(std::string_view text, std::string* error = nullptr) {
  try {
    return oci::Reference::parse(text);
  } catch (const UsageError& e) {
    if (error) *error = e.what();
    return std::nullopt;
  }
}

bool starts_with(std::string_view text, std::string_view prefix) { return text.substr(0, prefix.size()) == prefix; }
bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// --- annotations -------------------------------------------------------------------------

std::string scalar_of(const YAML::Node& node) { return node && node.IsScalar() ? node.Scalar() : std::string(); }

void parse_annotation(std::string_view key, const std::string& text, const std::string& what, AnnotatedImages& out) {
  const std::string where = std::string(key) + " of " + what;
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    out.problems.push_back(where + " is not YAML (line " + std::to_string(e.mark.line + 1) + "): " + e.msg);
    return;
  }
  if (!doc.IsDefined() || doc.IsNull()) return;
  if (!doc.IsSequence()) {
    out.problems.push_back(where + " is not a list of images");
    return;
  }
  std::size_t index = 0;
  for (const YAML::Node& item : doc) {
    ++index;
    if (!item.IsMap()) {
      out.problems.push_back(where + ": entry " + std::to_string(index) + " is not a map with `image`");
      continue;
    }
    AnnotatedImage image;
    image.annotation = std::string(key);
    image.name = scalar_of(item["name"]);
    image.image = scalar_of(item["image"]);
    image.condition = scalar_of(item["condition"]);
    if (const YAML::Node platforms = item["platforms"]; platforms && platforms.IsSequence()) {
      for (const YAML::Node& p : platforms) {
        if (p.IsScalar()) image.platforms.push_back(p.Scalar());
      }
    }
    if (image.image.empty()) {
      out.problems.push_back(where + ": entry " + std::to_string(index) +
                             (image.name.empty() ? "" : " (" + image.name + ")") + " has no `image`");
      continue;
    }
    out.images.push_back(std::move(image));
  }
}

// --- charts and subcharts ----------------------------------------------------------------

// A chart or subchart, and where its values sit in the top chart's effective values.
struct ChartScope {
  std::vector<std::string> keys; // empty for the top chart; ["postgresql"], ["a", "b"] for nested ones
  std::string display;           // "studio", "studio/postgresql" (by the keys that hold it)
  chart::ChartMetadata metadata;
};

void collect_scopes(std::vector<chart::ArchiveFile> files, const std::string& what, const std::vector<std::string>& keys,
                    const std::string& display, int depth, std::vector<ChartScope>& out) {
  if (depth > k_max_chart_depth) {
    throw UsageError(what + ": subcharts are nested more than " + std::to_string(k_max_chart_depth) + " deep");
  }
  const auto chart_yaml = std::find_if(files.begin(), files.end(), [](const auto& f) { return f.path == "Chart.yaml"; });
  if (chart_yaml == files.end()) {
    throw UsageError(what + " has no Chart.yaml", "a chart directory holds Chart.yaml, values.yaml and templates/");
  }
  // As Helm loads it: requirements.yaml's dependencies (and their aliases) replace Chart.yaml's.
  ChartScope scope{keys, display, chart::read_chart_metadata(files, what)};
  const std::vector<chart::ChartDependency> dependencies = scope.metadata.dependencies;
  out.push_back(std::move(scope));

  // Subcharts as Helm loads them: charts/NAME/ directories and charts/*.tgz archives, in
  // the order their first file comes.
  std::vector<std::pair<std::string, std::vector<chart::ArchiveFile>>> subcharts; // what, files
  for (auto& file : files) {
    if (!starts_with(file.path, "charts/")) continue;
    const std::string rest = file.path.substr(7);
    const std::size_t slash = rest.find('/');
    if (slash == std::string::npos) {
      if (ends_with(rest, ".tgz")) {
        const std::string sub_what = what + ": " + file.path;
        subcharts.emplace_back(sub_what, chart::read_chart_files(file.data, sub_what));
      }
      continue;
    }
    const std::string sub_what = what + ": charts/" + rest.substr(0, slash);
    auto it = std::find_if(subcharts.begin(), subcharts.end(), [&](const auto& s) { return s.first == sub_what; });
    if (it == subcharts.end()) {
      subcharts.emplace_back(sub_what, std::vector<chart::ArchiveFile>{});
      it = std::prev(subcharts.end());
    }
    it->second.push_back({rest.substr(slash + 1), std::move(file.data), file.executable});
  }
  for (auto& [sub_what, sub_files] : subcharts) {
    const auto sub_yaml =
        std::find_if(sub_files.begin(), sub_files.end(), [](const auto& f) { return f.path == "Chart.yaml"; });
    if (sub_yaml == sub_files.end()) throw UsageError(sub_what + " has no Chart.yaml");
    const std::string name = chart::parse_chart_metadata(sub_yaml->data, sub_what + ": Chart.yaml").name;
    // Under each alias the parent gives it, else under its name (as coalesce_chart does).
    std::vector<std::string> sub_keys;
    for (const auto& d : dependencies) {
      if (d.name == name) sub_keys.push_back(d.alias.empty() ? d.name : d.alias);
    }
    if (sub_keys.empty()) sub_keys.push_back(name);
    for (const std::string& key : sub_keys) {
      std::vector<std::string> nested = keys;
      nested.push_back(key);
      collect_scopes(sub_files, sub_what, nested, display + "/" + key, depth + 1, out);
    }
  }
}

std::vector<ChartScope> chart_scopes(const std::string& chart_tgz, const std::string& what) {
  std::vector<ChartScope> scopes;
  collect_scopes(chart::read_chart_files(chart_tgz, what), what, {}, "", 0, scopes);
  scopes.front().display = scopes.front().metadata.name;
  for (std::size_t i = 1; i < scopes.size(); ++i) scopes[i].display = scopes.front().display + scopes[i].display;
  return scopes;
}

// The chart whose values hold the value at `keys`: the scope with the longest matching prefix.
const ChartScope& scope_of(const std::vector<ChartScope>& scopes, const std::vector<std::string>& keys) {
  const ChartScope* best = &scopes.front();
  for (const ChartScope& s : scopes) {
    if (s.keys.size() > best->keys.size() && s.keys.size() < keys.size() &&
        std::equal(s.keys.begin(), s.keys.end(), keys.begin())) {
      best = &s;
    }
  }
  return *best;
}

// The registry a scope's `global` sets for every image, or "".
std::string global_registry(const Node& root, const std::vector<std::string>& keys) {
  const Node* node = &root;
  for (const std::string& key : keys) {
    node = node->is_map() ? node->find(key) : nullptr;
    if (!node) return {};
  }
  const Node* global = node->is_map() ? node->find("global") : nullptr;
  if (!global || !global->is_map()) return {};
  if (const Node* r = global->find("imageRegistry"); r && !r->scalar().empty()) return r->scalar();
  if (const Node* image = global->find("image"); image && image->is_map()) {
    if (const Node* r = image->find("registry"); r && !r->scalar().empty()) return r->scalar();
  }
  return {};
}

// --- rendered manifests ------------------------------------------------------------------

bool is_container_list(std::string_view key) {
  return key == "containers" || key == "initContainers" || key == "ephemeralContainers";
}

class RenderWalker {
public:
  RenderWalker(std::string object, std::vector<RenderedImage>& out) : m_object(std::move(object)), m_out(out) {}

  void walk_document(const YAML::Node& doc) { walk_map(doc, "", WalkTop::yes, ""); }

private:
  enum class WalkTop { no, yes };

  static std::string join(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

  // A list item by its `name` when it has one ("containers[backend]"), else by index.
  static std::string item_path(const std::string& path, const YAML::Node& item, std::size_t index) {
    if (item.IsMap()) {
      if (const std::string name = scalar_of(item["name"]); !name.empty()) return path + "[" + name + "]";
    }
    return path + "[" + std::to_string(index) + "]";
  }

  void record(std::string image, std::string field, bool container) {
    m_out.push_back(RenderedImage{std::move(image), m_object, std::move(field), container});
  }

  void walk_map(const YAML::Node& map, const std::string& path, WalkTop top, std::string_view skip_key) {
    for (const auto& entry : map) {
      if (!entry.first.IsScalar()) continue;
      const std::string key = entry.first.Scalar();
      if (key == skip_key) continue;
      if (top == WalkTop::yes && (key == "metadata" || key == "status")) continue;
      const YAML::Node& value = entry.second;
      const std::string child = join(path, key);
      if (value.IsSequence() && is_container_list(key)) {
        std::size_t index = 0;
        for (const YAML::Node& item : value) {
          const std::string at = item_path(child, item, index++);
          if (!item.IsMap()) continue;
          // A container's image is what the kubelet pulls: any text is reported (an
          // invalid one as unresolved), only a missing or empty one (a patch in a custom
          // resource) is not.
          if (const std::string image = scalar_of(item["image"]); !image.empty()) record(image, at + ".image", true);
          walk_map(item, at, WalkTop::no, "image");
        }
        continue;
      }
      if (value.IsScalar() && is_image_key(key)) {
        if (looks_like_image(value.Scalar())) record(value.Scalar(), child, false);
        continue;
      }
      if (value.IsMap() && is_image_key(key)) {
        if (std::string composed = compose(value); !composed.empty() && looks_like_image(composed)) {
          record(std::move(composed), child, false);
        }
      }
      walk(value, child);
    }
  }

  void walk(const YAML::Node& node, const std::string& path) {
    if (node.IsMap()) {
      walk_map(node, path, WalkTop::no, "");
    } else if (node.IsSequence()) {
      std::size_t index = 0;
      for (const YAML::Node& item : node) {
        const std::string at = item_path(path, item, index++);
        walk(item, at);
      }
    }
  }

  // {registry?, repository, tag?, digest?} as custom resources write images too.
  static std::string compose(const YAML::Node& map) {
    const std::string repository = scalar_of(map["repository"]);
    if (repository.empty()) return {};
    const std::string registry = scalar_of(map["registry"]);
    std::string text = registry.empty() ? repository : registry + "/" + repository;
    if (const std::string tag = scalar_of(map["tag"]); !tag.empty()) text += ":" + tag;
    if (const std::string digest = scalar_of(map["digest"]); !digest.empty()) text += "@" + digest;
    return text;
  }

  std::string m_object;
  std::vector<RenderedImage>& m_out;
};

} // namespace

std::string_view to_string(Method method) noexcept {
  switch (method) {
  case Method::annotation:
    return "annotation";
  case Method::values:
    return "values";
  case Method::render:
    return "render";
  }
  return "values";
}

AnnotatedImages parse_image_annotations(const std::map<std::string, std::string>& annotations, const std::string& what) {
  AnnotatedImages out;
  for (std::string_view key : {k_artifacthub, k_helm_images}) {
    const auto it = annotations.find(std::string(key));
    if (it != annotations.end()) parse_annotation(key, it->second, what, out);
  }
  return out;
}

std::vector<RenderedImage> parse_rendered_images(const std::string& manifests, const std::string& what) {
  std::vector<YAML::Node> documents;
  try {
    documents = core::load_all_documents(manifests);
  } catch (const YAML::Exception& e) {
    throw UsageError(what + ":" + std::to_string(e.mark.line + 1) + ": the rendered manifests are not YAML: " + e.msg);
  }
  std::vector<RenderedImage> out;
  for (const YAML::Node& doc : documents) {
    if (!doc.IsMap()) continue;
    std::string object = scalar_of(doc["kind"]);
    if (object.empty()) object = "object";
    if (const YAML::Node metadata = doc["metadata"]; metadata && metadata.IsMap()) {
      if (const std::string name = scalar_of(metadata["name"]); !name.empty()) object += "/" + name;
    }
    RenderWalker(object, out).walk_document(doc);
  }
  return out;
}

bool same_image(std::string_view a, std::string_view b) {
  const std::optional<oci::Reference> x = try_parse(a);
  const std::optional<oci::Reference> y = try_parse(b);
  if (!x || !y || x->name() != y->name()) return false;
  if (x->digest() && y->digest()) return x->digest() == y->digest();
  return x->tag() && y->tag() && x->tag() == y->tag();
}

void Discovery::add(const std::string& text, Finding finding) {
  if (text.find("{{") != std::string::npos) {
    add_unresolved(text, std::move(finding), k_templated);
    return;
  }
  std::string error;
  const std::optional<oci::Reference> ref = try_parse(text, &error);
  if (!ref) {
    add_unresolved(text, std::move(finding), "not an image reference: " + error);
    return;
  }
  const std::string normalised = ref->str();
  for (DiscoveredImage& image : m_images) {
    if (!same_image(image.ref, normalised)) continue;
    // The reference with a digest is the more precise one.
    if (ref->digest() && !oci::Reference::parse(image.ref).digest()) image.ref = normalised;
    const bool known = std::any_of(image.found_by.begin(), image.found_by.end(), [&](const Finding& f) {
      return f.method == finding.method && f.where == finding.where && f.release == finding.release;
    });
    if (!known) image.found_by.push_back(std::move(finding));
    return;
  }
  m_images.push_back(DiscoveredImage{normalised, {std::move(finding)}});
}

void Discovery::add_unresolved(std::string text, Finding finding, std::string reason) {
  const bool known = std::any_of(m_unresolved.begin(), m_unresolved.end(), [&](const Unresolved& u) {
    return u.text == text && u.found.method == finding.method && u.found.where == finding.where &&
           u.found.release == finding.release;
  });
  if (!known) m_unresolved.push_back(Unresolved{std::move(text), std::move(finding), std::move(reason)});
}

void Discovery::drop_unconfirmed_guesses() {
  auto only_guesses = [](const DiscoveredImage& image) {
    return std::all_of(image.found_by.begin(), image.found_by.end(),
                       [](const Finding& f) { return f.method == Method::values && f.tag_guessed; });
  };
  auto rendered_elsewhere = [&](const DiscoveredImage& image) {
    const std::string name = oci::Reference::parse(image.ref).name();
    return std::any_of(m_images.begin(), m_images.end(), [&](const DiscoveredImage& other) {
      return &other != &image && oci::Reference::parse(other.ref).name() == name &&
             std::any_of(other.found_by.begin(), other.found_by.end(),
                         [](const Finding& f) { return f.method == Method::render; });
    });
  };
  std::vector<bool> drop(m_images.size(), false);
  for (std::size_t i = 0; i < m_images.size(); ++i) drop[i] = only_guesses(m_images[i]) && rendered_elsewhere(m_images[i]);
  std::size_t i = 0;
  m_images.erase(std::remove_if(m_images.begin(), m_images.end(), [&](const DiscoveredImage&) { return drop[i++]; }),
                 m_images.end());
}

void discover_from_annotations(const std::string& chart_tgz, const std::string& what, Discovery& out) {
  for (const ChartScope& scope : chart_scopes(chart_tgz, what)) {
    const AnnotatedImages found = parse_image_annotations(scope.metadata.annotations, "chart " + scope.display);
    for (const AnnotatedImage& image : found.images) {
      std::string where = image.annotation + " of chart " + scope.display;
      if (!image.name.empty()) where += ": " + image.name;
      out.add(image.image, Finding{Method::annotation, where});
    }
    for (const std::string& problem : found.problems) {
      out.add_unresolved("", Finding{Method::annotation, "annotations of chart " + scope.display}, problem);
    }
  }
}

void discover_from_values(const std::string& chart_tgz, const std::vector<NamedValues>& values,
                          const std::string& release, const std::string& what, Discovery& out) {
  Node user = Node::map();
  for (const NamedValues& file : values) merge_values_files(user, parse_values(file.content, file.name));
  const Node effective = effective_values(chart::read_chart_files(chart_tgz, what), std::move(user), what);
  const std::vector<ChartScope> scopes = chart_scopes(chart_tgz, what);
  const Detection detection = detect_images(emit_values(effective), what);
  for (const DetectedImage& d : detection.images) {
    const ChartScope& scope = scope_of(scopes, d.keys);
    std::string ref = d.reference;
    std::string notes = d.detector;
    if (d.registry) {
      const std::string global = global_registry(effective, scope.keys);
      if (!global.empty() && global != *d.registry) {
        const std::string rest = d.registry->empty() ? ref : ref.substr(d.registry->size() + 1);
        ref = global + "/" + rest;
        notes += "; registry from global.imageRegistry";
      }
    }
    bool guessed = false;
    // A map that writes no tag: most charts' templates use the chart's appVersion.
    if (!d.tag_written && d.detector != k_image_string && !scope.metadata.app_version.empty()) {
      ref += ":" + scope.metadata.app_version;
      notes += "; tag from appVersion of " + scope.display;
      guessed = true;
    }
    out.add(ref, Finding{Method::values, d.path + " (" + notes + ")", release, guessed});
  }
  for (const Skipped& s : detection.skipped) out.add_unresolved(s.value, Finding{Method::values, s.path, release}, s.reason);
}

void discover_from_render(const std::string& manifests, const std::string& release, const std::string& what,
                          Discovery& out) {
  for (const RenderedImage& image : parse_rendered_images(manifests, what)) {
    out.add(image.image, Finding{Method::render, image.object + " " + image.field, release});
  }
}

} // namespace ferry::values
