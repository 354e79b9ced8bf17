// Values rewriting (DESIGN §4 step 3): the detectors for the image conventions charts
// use, the explicit rules, and the overlay with its report.
// SPDX-License-Identifier: Apache-2.0
#include "values/rewrite.hpp"

#include "chart/chart_archive.hpp"
#include "core/digest.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "oci/reference.hpp"
#include "values/helm_values.hpp"
#include "values/rules.hpp"
#include "values/tree.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace ferry::values {

namespace {

using core::UsageError;

const std::string k_image_string = "image string";
const std::string k_registry_map = "registry/repository map";
const std::string k_repository_tag = "repository+tag";
const std::string k_ingress_map = "ingress-nginx image map";
const std::string k_global_registry = "global.imageRegistry";
const std::string k_global_image_registry = "global.image.registry";
const std::string k_templated = "templated ({{ … }})";

// Longer strings are prose (a script, a certificate), never an image reference.
constexpr std::size_t k_max_reference_length = 512;

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lowered(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

bool templated(std::string_view text) { return contains(text, "{{"); }

// distribution's rule: the first component names a registry when it has a '.' or a ':'
// or is "localhost" (Reference::parse applies the same).
bool has_explicit_host(std::string_view text) {
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) return false;
  const std::string_view first = text.substr(0, slash);
  return first.find_first_of(".:") != std::string_view::npos || first == "localhost" ||
         (!first.empty() && first.front() == '[');
}

// The tag as written (Reference::parse fills in "latest" when there is none).
std::optional<std::string> written_tag(std::string_view text) {
  const std::string_view name = text.substr(0, text.find('@'));
  const std::size_t colon = name.rfind(':');
  const std::size_t slash = name.rfind('/');
  if (colon == std::string_view::npos || (slash != std::string_view::npos && colon < slash)) return std::nullopt;
  return std::string(name.substr(colon + 1));
}

// Strings that parse as references but are words of configuration: "true", "none", a
// version "1.2.3" (a Docker Hub name must have a letter somewhere in its last part).
bool plausible_image(std::string_view text, const oci::Reference& ref) {
  constexpr std::array<std::string_view, 13> k_words = {"true", "false", "yes", "no",   "on",      "off",    "null",
                                                        "nil",  "none", "y",   "n",    "default", "enabled"};
  const std::string t = lowered(text);
  if (std::find(k_words.begin(), k_words.end(), t) != k_words.end()) return false;
  const std::string& repository = ref.repository();
  const std::string_view last = std::string_view(repository).substr(repository.rfind('/') + 1);
  return std::any_of(last.begin(), last.end(), [](char c) { return c >= 'a' && c <= 'z'; });
}

std::optional<oci::Reference> try_parse(std::string_view text, std::string* error = nullptr) {
  try {
    return oci::Reference::parse(text);
  } catch (const UsageError& e) {
    if (error) *error = e.what();
    return std::nullopt;
  }
}

// A bundle image, parsed once.
struct Known {
  const KnownImage* image;
  oci::Reference ref;
  std::optional<std::string> tag;
  std::optional<core::Digest> digest;
  bool placed = false;
};

// The image a value names.
struct Found {
  oci::Reference ref;
  std::optional<std::string> tag;     // as written (a map's `tag`); none: the chart's appVersion
  std::optional<core::Digest> digest; // as written
  std::string text;                   // as composed from the value(s), for the report
};

// What to do with a found image.
struct Decision {
  bool place = false;
  std::string reason;                 // !place: why not
  std::string image;                  // place: the bundle image (or, without a bundle, the reference)
  std::optional<core::Digest> digest; // place: what the new value carries (kept, pinned or corrected)
  std::string pin_note;               // place: why pinning was asked but not done
};

struct ChangeRecord {
  const Node* node;
  Change change;
};

struct SkipRecord {
  const Node* node;
  Skipped skipped;
};

Path child(const Path& path, const std::string& key) {
  Path out = path;
  out.push_back({key, 0, false});
  return out;
}

class Rewriter {
public:
  Rewriter(Node& root, const Options& options, const std::string& what)
      : m_root(root), m_options(options), m_what(what), m_target(options.target.str()) {
    if (options.target.host.empty()) {
      throw UsageError("no target registry given for " + what, "give the internal registry as HOST[:PORT][/PREFIX]");
    }
    m_known.reserve(options.images.size());
    for (const KnownImage& image : options.images) {
      Known k{&image, core::with_context("reading the bundle's image list", [&] { return oci::Reference::parse(image.ref); }),
              written_tag(image.ref), std::nullopt};
      k.digest = k.ref.digest();
      if (!image.digest.empty()) {
        k.digest = core::Digest::try_parse(image.digest);
        if (!k.digest) {
          throw UsageError("bundle image " + image.ref + " has an invalid digest '" + image.digest + "'",
                           "a digest is sha256: followed by 64 lower-case hex digits");
        }
      }
      m_known.push_back(std::move(k));
    }
    for (const Rule& rule : options.rules) check_rule_template(rule);
  }

  void detect() {
    Path path;
    walk(m_root, path, "");
  }

  // Every image a detector recognises is also noted in `out` (detect_images()).
  void record_detections(std::vector<DetectedImage>& out) { m_detected = &out; }

  void apply_rules() {
    for (const Rule& rule : m_options.rules) {
      for (RuleMatch& m : match_rule(m_root, rule, m_what)) {
        if (m.node->is_map() || m.node->kind == Node::Kind::sequence) {
          throw UsageError("rule '" + rule.path + "' matches " + path_string(m.path) + " in " + m_what + ", which is a " +
                               (m.node->is_map() ? "map" : "list") + "; a rule sets single values",
                           "extend the rule's path to the value to set, like repositories.*.hostname");
        }
        const std::string current = m.node->scalar();
        if (templated(current)) {
          skip(*m.node, m.path, current, k_templated);
          continue;
        }
        change(*m.node, m.path, expand_rule(rule, m_options.target, current), "rule " + rule.path, "");
      }
    }
  }

  Result finish() {
    // A rule may have set a value back to what it was.
    m_changes.erase(std::remove_if(m_changes.begin(), m_changes.end(),
                                   [](const ChangeRecord& r) { return r.change.old_value == r.change.new_value; }),
                    m_changes.end());
    std::unordered_map<const Node*, std::size_t> order;
    number(m_root, order);
    auto by_order = [&](const auto& a, const auto& b) { return order.at(a.node) < order.at(b.node); };
    std::stable_sort(m_changes.begin(), m_changes.end(), by_order);
    std::stable_sort(m_skipped.begin(), m_skipped.end(), by_order);

    Result result;
    std::unordered_set<const Node*> changed;
    for (const ChangeRecord& r : m_changes) {
      changed.insert(r.node);
      result.changes.push_back(r.change);
    }
    for (const SkipRecord& r : m_skipped) result.skipped.push_back(r.skipped);
    result.overlay_yaml = emit_overlay(m_root, changed);
    if (m_options.images_given) {
      for (const Known& k : m_known) {
        if (k.placed) continue;
        if (auto by_rule = rule_placing(k, result.changes)) {
          result.by_rules.push_back(std::move(*by_rule));
        } else {
          result.unplaced.push_back(k.image->ref);
        }
      }
    }
    return result;
  }

private:
  // The first rule change whose old value was `k`'s registry host or a leading part of
  // its reference, up to a '/'.
  static std::optional<RulePlaced> rule_placing(const Known& k, const std::vector<Change>& changes) {
    static constexpr std::string_view k_rule = "rule ";
    const std::string full = k.ref.registry() + "/" + k.ref.repository();
    for (const Change& c : changes) {
      if (c.detector.rfind(k_rule, 0) != 0 || c.old_value.empty()) continue;
      if (c.old_value == k.ref.registry() || full.rfind(c.old_value + "/", 0) == 0) {
        return RulePlaced{k.image->ref, c.detector.substr(k_rule.size()), c.path};
      }
    }
    return std::nullopt;
  }

  static void number(const Node& node, std::unordered_map<const Node*, std::size_t>& order) {
    order.emplace(&node, order.size());
    for (const Node& item : node.items) number(item, order);
    for (const auto& entry : node.entries) number(entry.second, order);
  }

  // --- the walk ------------------------------------------------------------------------

  // `key` is the map key the node sits under (for list items: the list's key).
  void walk(Node& node, Path& path, const std::string& key) {
    if (m_handled.count(&node)) return;
    switch (node.kind) {
    case Node::Kind::null:
      return;
    case Node::Kind::scalar:
      detect_image_string(node, path, key);
      return;
    case Node::Kind::sequence:
      for (std::size_t i = 0; i < node.items.size(); ++i) {
        path.push_back({{}, i, true});
        walk(node.items[i], path, key);
        path.pop_back();
      }
      return;
    case Node::Kind::map:
      break;
    }
    if (!path.empty() && !path.back().is_index && path.back().key == "global") {
      detect_global(node, path);
    } else if (!detect_ingress_map(node, path)) {
      detect_repository_map(node, path, key);
    }
    for (auto& [k, value] : node.entries) {
      path.push_back({k, 0, false});
      walk(value, path, k);
      path.pop_back();
    }
  }

  // --- detectors -----------------------------------------------------------------------

  // 5: global.imageRegistry and global.image.registry (bitnami's common chart prefixes
  // every image with it). A subchart's copy is left alone when the top-level `global`
  // has the key: Helm copies the top-level value down over it.
  void detect_global(Node& global, const Path& path) {
    const Node* top = m_root.find("global");
    const bool nested = path.size() > 1;
    if (Node* value = global.find("imageRegistry")) {
      m_handled.insert(value);
      const bool covered = nested && top && top->is_map() && top->find("imageRegistry");
      if (!covered) set_registry_key(*value, child(path, "imageRegistry"), k_global_registry);
    }
    if (Node* image = global.find("image"); image && image->is_map()) {
      if (Node* value = image->find("registry")) {
        m_handled.insert(value);
        const Node* top_image = top && top->is_map() ? top->find("image") : nullptr;
        const bool covered = nested && top_image && top_image->is_map() && top_image->find("registry");
        if (!covered) set_registry_key(*value, child(child(path, "image"), "registry"), k_global_image_registry);
      }
    }
  }

  void set_registry_key(Node& value, const Path& path, const std::string& detector) {
    if (!value.is_null() && !value.is_scalar()) return;
    if (templated(value.scalar())) {
      skip(value, path, value.scalar(), k_templated);
      return;
    }
    change(value, path, m_target, detector, "");
  }

  // 4: ingress-nginx's {registry, image, tag, digest}: `image` is the path without the
  // registry; its templates use `repository` instead when that is set.
  bool detect_ingress_map(Node& map, const Path& path) {
    Node* registry = map.find("registry");
    Node* image = map.find("image");
    if (!registry || !image || !image->is_string() || !(registry->is_null() || registry->is_scalar())) return false;
    if (const Node* repository = map.find("repository"); repository && !repository->scalar().empty()) return false;
    // A full reference ("host/path:tag") is the image string detector's.
    if (has_explicit_host(image->text) || image->text.find_first_of(":@") != std::string::npos) return false;
    Node* tag = map.find("tag");
    Node* digest = map.find("digest");
    mark_handled({registry, image, tag, digest});
    const Path image_path = child(path, "image");
    if (templated(image->text) || templated(registry->scalar())) {
      skip(*image, image_path, image->text, k_templated);
      return true;
    }
    const std::string name = registry->scalar().empty() ? image->text : registry->scalar() + "/" + image->text;
    std::optional<Found> found = compose(name, tag, digest, *image, image_path, ReportBadReference::yes);
    if (!found) return true;
    note(*found, image_path, k_ingress_map, registry->scalar());
    const Decision d = decide(*found);
    if (!d.place) {
      skip(*image, image_path, found->text, d.reason);
      return true;
    }
    change(*registry, child(path, "registry"), m_target, k_ingress_map, d.image);
    change(*image, image_path, found->ref.repository(), k_ingress_map, d.image);
    set_digest_key(map, path, *found, d, *image, image_path, k_ingress_map);
    return true;
  }

  // 2 and 3: {registry?, repository, tag?, digest?} as bitnami and most charts write
  // it, and `repository: host/path` with a sibling `tag`. A map with nothing but a
  // `repository` counts only under a key naming an image.
  bool detect_repository_map(Node& map, const Path& path, const std::string& key) {
    Node* repository = map.find("repository");
    if (!repository || !repository->is_string() || repository->text.empty()) return false;
    Node* registry = map.find("registry");
    Node* tag = map.find("tag");
    Node* digest = map.find("digest");
    const bool image_key = is_image_key(key);
    if (!image_key && !registry && !tag && !digest && !map.find("pullPolicy")) return false;
    if (registry && !registry->is_null() && !registry->is_scalar()) return false;
    const Path repository_path = child(path, "repository");
    if (templated(repository->text) || (registry && templated(registry->scalar()))) {
      mark_handled({registry, repository, tag, digest});
      skip(*repository, repository_path, repository->text, k_templated);
      return true;
    }
    const std::string name = registry && !registry->scalar().empty() ? registry->scalar() + "/" + repository->text
                                                                     : repository->text;
    std::optional<Found> found = compose(name, tag, digest, *repository, repository_path,
                                         image_key ? ReportBadReference::yes : ReportBadReference::no);
    if (!found) {
      if (!image_key) return false;
      mark_handled({registry, repository, tag, digest});
      return true;
    }
    mark_handled({registry, repository, tag, digest});
    const std::string& detector = !registry && tag ? k_repository_tag : k_registry_map;
    if (registry) {
      note(*found, repository_path, detector, registry->scalar());
    } else {
      note(*found, repository_path, detector, std::nullopt);
    }
    const Decision d = decide(*found);
    if (!d.place) {
      skip(*repository, repository_path, found->text, d.reason);
      return true;
    }
    // A repository may carry its own tag or digest ("quay.io/org/app:1.0"): keep them, the
    // digest as decided.
    std::string suffix;
    const bool digest_in_repository = repository->text.find('@') != std::string::npos;
    if (const auto own_tag = written_tag(repository->text)) suffix = ":" + *own_tag;
    if (digest_in_repository && d.digest) suffix += "@" + d.digest->str();
    if (registry) {
      change(*registry, child(path, "registry"), m_target, detector, d.image);
      change(*repository, repository_path, found->ref.repository() + suffix, detector, d.image);
    } else {
      change(*repository, repository_path, m_target + "/" + found->ref.repository() + suffix, detector, d.image);
    }
    if (!digest_in_repository) {
      set_digest_key(map, path, *found, d, *repository, repository_path, detector);
    } else if (!d.pin_note.empty()) {
      skip(*repository, repository_path, found->text, d.pin_note);
    }
    return true;
  }

  // 1: a string naming an image, under a key naming one; elsewhere only with an explicit
  // registry host and when it is a bundle image (Options::images_given).
  void detect_image_string(Node& value, const Path& path, const std::string& key) {
    if (!value.is_string()) return;
    const std::string& text = value.text;
    const bool image_key = is_image_key(key);
    if (templated(text)) {
      if (image_key) skip(value, path, text, k_templated);
      return;
    }
    if (text.size() > k_max_reference_length) return;
    const std::optional<oci::Reference> ref = try_parse(text);
    if (!ref || !plausible_image(text, *ref)) return;
    Found found{*ref, written_tag(text), ref->digest(), text};
    if (!image_key && !(m_options.images_given && has_explicit_host(text) && find_known(found))) return;
    note(found, path, k_image_string, std::nullopt);
    const Decision d = decide(found);
    if (!d.place) {
      skip(value, path, text, d.reason);
      return;
    }
    std::string replacement = m_target + "/" + ref->repository();
    if (found.tag) replacement += ":" + *found.tag;
    if (d.digest) replacement += "@" + d.digest->str();
    change(value, path, replacement, k_image_string, d.image);
    if (!d.pin_note.empty()) skip(value, path, text, d.pin_note);
  }

  // --- shared by the detectors ---------------------------------------------------------

  enum class ReportBadReference { no, yes };

  // Notes a recognised image for detect_images(); `registry` is the map's registry
  // value when it has that key.
  void note(const Found& found, const Path& path, const std::string& detector, std::optional<std::string> registry) {
    if (!m_detected) return;
    DetectedImage d;
    d.path = path_string(path);
    for (const PathSegment& segment : path) {
      d.keys.push_back(segment.is_index ? "[" + std::to_string(segment.index) + "]" : segment.key);
    }
    d.detector = detector;
    d.reference = found.text;
    d.registry = std::move(registry);
    d.tag_written = written_tag(found.text).has_value() || found.digest.has_value();
    m_detected->push_back(std::move(d));
  }

  // The reference NAME[:tag][@digest] from a map's keys; nullopt (reported as skipped
  // when asked) when it does not parse.
  std::optional<Found> compose(const std::string& name, const Node* tag, const Node* digest, const Node& report_node,
                               const Path& report_path, ReportBadReference report) {
    std::optional<std::string> tag_text;
    std::string text = name;
    if (tag && tag->is_scalar() && !tag->text.empty() && !templated(tag->text)) {
      tag_text = tag->text;
      text += ":" + tag->text;
    }
    if (digest && digest->is_scalar() && !digest->text.empty() && !templated(digest->text)) {
      text += "@" + digest->text;
    }
    std::string error;
    std::optional<oci::Reference> ref = try_parse(text, &error);
    if (!ref) {
      if (report == ReportBadReference::yes) skip(report_node, report_path, text, "not an image reference: " + error);
      return std::nullopt;
    }
    return Found{*ref, tag_text, ref->digest(), text};
  }

  // Sets a map's `digest` to the decided one, when it differs from what it holds.
  void set_digest_key(Node& map, const Path& path, const Found& found, const Decision& d, const Node& report_node,
                      const Path& report_path, const std::string& detector) {
    if (d.digest && d.digest != found.digest) {
      if (Node* digest = map.find("digest")) {
        change(*digest, child(path, "digest"), d.digest->str(), detector, d.image);
      } else {
        skip(report_node, report_path, found.text, "not pinned: the map has no digest key");
      }
    }
    if (!d.pin_note.empty()) skip(report_node, report_path, found.text, d.pin_note);
  }

  Known* find_known(const Found& found) {
    Known* same_name = nullptr;
    for (Known& k : m_known) {
      if (k.ref.name() != found.ref.name()) continue;
      if (found.tag) {
        if (k.tag == found.tag) return &k;
        if (found.digest && k.digest == found.digest) return &k;
      } else if (found.digest) {
        if (k.digest == found.digest) return &k;
      } else if (!same_name) {
        same_name = &k; // no tag: the chart fills in its appVersion, any tag of the image will do
      }
    }
    return same_name;
  }

  bool at_target(const oci::Reference& ref) const {
    if (ref.registry() != m_options.target.host) return false;
    return m_options.target.prefix.empty() || ref.repository().rfind(m_options.target.prefix + "/", 0) == 0;
  }

  Decision decide(const Found& found) {
    Decision d;
    if (at_target(found.ref)) {
      // Already rewritten (an earlier overlay among the values files): the bundle images
      // it names are placed.
      const std::string& prefix = m_options.target.prefix;
      const std::string path = prefix.empty() ? found.ref.repository() : found.ref.repository().substr(prefix.size() + 1);
      for (Known& k : m_known) {
        if (k.ref.repository() == path) k.placed = true;
      }
      d.reason = "already points at the internal registry " + m_target;
      return d;
    }
    if (!m_options.images_given) {
      d.place = true;
      d.image = found.ref.name();
      if (found.tag) d.image += ":" + *found.tag;
      if (found.digest) d.image += "@" + found.digest->str();
      d.digest = found.digest;
      if (m_options.pin_digests) d.pin_note = "not pinned: no bundle, so no digest is known";
      return d;
    }
    Known* match = find_known(found);
    if (!match) {
      d.reason = "not in the bundle";
      std::string tags;
      for (const Known& k : m_known) {
        if (k.ref.name() == found.ref.name()) tags += (tags.empty() ? "" : ", ") + k.image->ref;
      }
      if (!tags.empty()) d.reason += " (it has " + tags + ")";
      return d;
    }
    Known& k = *match;
    k.placed = true;
    d.place = true;
    d.image = k.image->ref;
    d.digest = found.digest;
    if (k.digest) {
      // A digest the value holds that is not the bundle's would not resolve in the
      // internal registry (the bundle may hold a platform-filtered index): use the
      // bundle's.
      if (m_options.pin_digests || (found.digest && found.digest != k.digest)) d.digest = k.digest;
    } else if (m_options.pin_digests) {
      d.pin_note = "not pinned: the bundle lists no digest for " + k.image->ref;
    }
    return d;
  }

  void mark_handled(std::initializer_list<const Node*> nodes) {
    for (const Node* n : nodes) {
      if (n) m_handled.insert(n);
    }
  }

  void change(Node& node, const Path& path, std::string value, const std::string& detector, const std::string& image) {
    if (node.is_scalar() && node.text == value) return;
    const auto found = std::find_if(m_changes.begin(), m_changes.end(), [&](const ChangeRecord& r) { return r.node == &node; });
    if (found != m_changes.end()) {
      found->change.new_value = value;
      found->change.detector = detector;
      if (!image.empty()) found->change.image = image;
    } else {
      m_changes.push_back({&node, Change{path_string(path), node.scalar(), value, detector, image}});
    }
    node = Node::string(std::move(value));
  }

  void skip(const Node& node, const Path& path, std::string value, std::string reason) {
    m_skipped.push_back({&node, Skipped{path_string(path), std::move(value), std::move(reason)}});
  }

  Node& m_root;
  const Options& m_options;
  const std::string& m_what;
  const std::string m_target;
  std::vector<Known> m_known;
  std::unordered_set<const Node*> m_handled;
  std::vector<ChangeRecord> m_changes;
  std::vector<SkipRecord> m_skipped;
  std::vector<DetectedImage>* m_detected = nullptr;
};

Result rewrite_tree(Node root, const Options& options, const std::string& what) {
  Rewriter rewriter(root, options, what);
  rewriter.detect();
  rewriter.apply_rules();
  return rewriter.finish();
}

} // namespace

// A key that holds an image reference: its name contains "image", but it does not hold
// a part of one (imageTag, imagePullPolicy, imagePullSecrets, imageRegistry, …).
bool is_image_key(std::string_view key) {
  const std::string k = lowered(key);
  if (!contains(k, "image")) return false;
  constexpr std::array<std::string_view, 7> k_parts = {"tag", "digest", "policy", "secret", "registry", "version", "pull"};
  return std::none_of(k_parts.begin(), k_parts.end(), [&](std::string_view part) { return contains(k, part); });
}

bool looks_like_image(std::string_view text) {
  if (text.empty() || text.size() > k_max_reference_length || templated(text)) return false;
  const std::optional<oci::Reference> ref = try_parse(text);
  return ref && plausible_image(text, *ref);
}

Detection detect_images(const std::string& values_yaml, const std::string& what) {
  Node root = parse_values(values_yaml, what);
  // Without a bundle every image-looking value is placed; the target only has to be one
  // no value can already point at.
  Options options;
  options.target = {"ferry-detect.invalid", ""};
  Detection detection;
  Rewriter rewriter(root, options, what);
  rewriter.record_detections(detection.images);
  rewriter.detect();
  detection.skipped = rewriter.finish().skipped;
  return detection;
}

Result rewrite(const std::string& values_yaml, const Options& options, const std::string& what) {
  return rewrite_tree(parse_values(values_yaml, what), options, what);
}

Result rewrite_chart(const ChartInput& input, const Options& options) {
  const std::string what = core::display(input.chart);
  Node user = Node::map();
  for (const auto& file : input.values_files) {
    merge_values_files(user, parse_values(core::read_file(file), core::display(file)));
  }
  const chart::PackagedChart chart = chart::load_chart(input.chart, 0);
  Node values = effective_values(chart::read_chart_files(chart.archive, what), std::move(user), what);
  return rewrite_tree(std::move(values), options, what);
}

} // namespace ferry::values
