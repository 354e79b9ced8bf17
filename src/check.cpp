// ferry check: render each release with helm, check every rendered image against the
// bundle under the internal registry, and trace image fields back to values (sentinels).
// SPDX-License-Identifier: Apache-2.0
#include "check.hpp"

#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/process.hpp"
#include "isolated.hpp"
#include "site_values.hpp"
#include "oci/reference.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <sstream>

namespace ferry {

namespace fs = std::filesystem;

// ---- Rendered images ----

std::string RenderedImage::key() const {
  return source + "#" + std::to_string(occurrence) + ":" + field;
}

std::string RenderedImage::label() const {
  std::string out = (kind.empty() ? std::string("?") : kind) + "/" + (name.empty() ? std::string("?") : name);
  if (!container.empty()) return out + " container " + container;
  return out + " field " + field;
}

namespace {

bool is_container_list(const std::string& key) {
  return key == "containers" || key == "initContainers" || key == "ephemeralContainers";
}

std::string scalar_or_empty(const YAML::Node& node) {
  return node && node.IsScalar() ? node.Scalar() : std::string();
}

// Walks one rendered document; `container` is the name of the container when `node` is
// an item of a container list.
void collect_images(const YAML::Node& node, const std::string& path, const std::string* container,
                    const RenderedImage& doc, std::vector<RenderedImage>& out) {
  if (node.IsMap()) {
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) continue;
      const std::string key = entry.first.Scalar();
      const std::string sub = path.empty() ? key : path + "." + key;
      const YAML::Node& value = entry.second;
      if (key == "image" && (value.IsScalar() || (container && value.IsNull()))) {
        RenderedImage image = doc;
        image.container = container ? *container : std::string();
        image.field = sub;
        image.image = value.IsScalar() ? value.Scalar() : std::string();
        out.push_back(std::move(image));
        continue;
      }
      if (is_container_list(key) && value.IsSequence()) {
        for (std::size_t i = 0; i < value.size(); ++i) {
          const YAML::Node item = value[i];
          const std::string item_path = sub + "[" + std::to_string(i) + "]";
          if (item.IsMap()) {
            const std::string name = scalar_or_empty(item["name"]);
            collect_images(item, item_path, &name, doc, out);
          } else {
            collect_images(item, item_path, nullptr, doc, out);
          }
        }
        continue;
      }
      collect_images(value, sub, nullptr, doc, out);
    }
  } else if (node.IsSequence()) {
    for (std::size_t i = 0; i < node.size(); ++i) {
      collect_images(node[i], path + "[" + std::to_string(i) + "]", nullptr, doc, out);
    }
  }
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

std::string trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return std::string(text);
}

} // namespace

std::vector<RenderedImage> rendered_images(const std::string& manifests, const std::string& what) {
  // Split at the document markers helm writes ("---" lines), keeping each document's
  // "# Source:" comment, which yaml-cpp would drop.
  struct Chunk {
    std::string text;
    std::string source;
  };
  std::vector<Chunk> chunks(1);
  std::istringstream in(manifests);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line == "---" || starts_with(line, "--- ")) {
      chunks.emplace_back();
      if (line.size() > 4) chunks.back().text += line.substr(4) + "\n";
      continue;
    }
    if (chunks.back().source.empty() && starts_with(line, "# Source: ")) chunks.back().source = trim(line.substr(10));
    chunks.back().text += line + "\n";
  }

  std::vector<RenderedImage> out;
  std::map<std::string, std::size_t> seen; // source -> documents so far
  std::size_t number = 0;
  for (const Chunk& chunk : chunks) {
    YAML::Node doc;
    ++number;
    try {
      doc = YAML::Load(chunk.text);
    } catch (const YAML::Exception& e) {
      throw core::Error(core::ExitCode::failure,
                        what + ": rendered document " + std::to_string(number) +
                            (chunk.source.empty() ? "" : " (" + chunk.source + ")") + " does not parse: " + e.what());
    }
    if (!doc.IsMap()) continue;
    RenderedImage base;
    base.source = chunk.source;
    base.occurrence = seen[chunk.source]++;
    base.kind = scalar_or_empty(doc["kind"]);
    if (const YAML::Node metadata = doc["metadata"]; metadata && metadata.IsMap()) {
      base.name = scalar_or_empty(metadata["name"]);
    }
    collect_images(doc, "", nullptr, base, out);
  }
  return out;
}

// ---- Pushed images ----

std::vector<PushedImage> pushed_images(const std::vector<values::KnownImage>& images, const PushTarget& target) {
  std::vector<PushedImage> out;
  for (const auto& image : images) {
    const oci::Reference ref = oci::Reference::parse(image.ref);
    out.push_back({image.ref, target.host + "/" + target.image_repository(ref), ref.tag().value_or(""), image.digest});
  }
  return out;
}

std::optional<std::string> image_problem(const std::string& image, const PushTarget& target,
                                         const std::vector<PushedImage>& pushed) {
  if (image.empty()) return "the container has no image";
  const std::string prefix = target.str() + "/";
  if (!starts_with(image, prefix)) return "not under " + prefix;
  std::string name = image;
  std::string digest;
  if (const auto at = name.find('@'); at != std::string::npos) {
    digest = name.substr(at + 1);
    name.resize(at);
  }
  std::string tag;
  const auto colon = name.rfind(':');
  if (colon != std::string::npos && colon > name.rfind('/')) {
    tag = name.substr(colon + 1);
    name.resize(colon);
  }
  std::vector<const PushedImage*> same;
  for (const auto& p : pushed) {
    if (p.repository == name) same.push_back(&p);
  }
  if (same.empty()) {
    std::vector<std::string> names;
    for (const auto& p : pushed) names.push_back(p.repository);
    const std::string near = core::suggest(name, names);
    return "repository " + name + " is not one of the bundle's images" + (near.empty() ? "" : " (did you mean " + near + "?)");
  }
  std::string have;
  auto add_have = [&](const std::string& text) { have += (have.empty() ? "" : ", ") + text; };
  if (!digest.empty()) {
    for (const auto* p : same) {
      if (p->digest == digest) return std::nullopt;
      add_have(p->digest);
    }
    return "digest " + digest + " is not the bundle's (" + have + ")";
  }
  if (tag.empty()) tag = "latest";
  for (const auto* p : same) {
    if (p->tag == tag) return std::nullopt;
    add_have(p->tag.empty() ? "by digest only: " + p->digest : p->tag);
  }
  return "tag " + tag + " is not the bundle's (" + have + ")";
}

// ---- Values leaves and sentinels ----

namespace {

// What go-yaml (YAML 1.1) reads as null, a boolean or a number when plain.
bool plain_is_non_string(const std::string& text) {
  static const std::set<std::string> k_words = {
      "~",    "null", "Null", "NULL",  "y",     "Y",     "yes",  "Yes",  "YES",  "n",    "N",    "no",   "No",   "NO",
      "true", "True", "TRUE", "false", "False", "FALSE", "on",   "On",   "ON",   "off",  "Off",  "OFF",  ".inf", ".Inf",
      ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN"};
  if (text.empty() || k_words.count(text)) return true;
  // Numbers in any base YAML 1.1 knows (0x1F, 0o17, 1_000, 1e3, 1:30) and dates: a
  // superset is enough, such values are only left out of the probing.
  const char first = text.front();
  if (!((first >= '0' && first <= '9') || first == '-' || first == '+' || first == '.')) return false;
  return std::all_of(text.begin(), text.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) || std::string_view("xXoO_.:+-eE").find(c) != std::string_view::npos;
  });
}

bool is_string_scalar(const YAML::Node& node) {
  if (!node.IsScalar()) return false;
  const std::string& tag = node.Tag();
  if (tag == "!" || tag == "tag:yaml.org,2002:str") return true;
  if (tag == "?" || tag.empty()) return !plain_is_non_string(node.Scalar());
  return false;
}

YAML::Node load_map(const std::string& yaml, const std::string& what) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw core::UsageError(what + " does not parse: " + e.what());
  }
  if (root.IsNull()) return YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) throw core::UsageError(what + " is not a YAML map");
  return root;
}

void collect_leaves(const YAML::Node& node, const std::string& path, std::vector<ValueLeaf>& out) {
  if (node.IsMap()) {
    for (const auto& entry : node) {
      const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : std::string();
      collect_leaves(entry.second, path.empty() ? key : path + "." + key, out);
    }
  } else if (node.IsSequence()) {
    for (std::size_t i = 0; i < node.size(); ++i) collect_leaves(node[i], path + "[" + std::to_string(i) + "]", out);
  } else if (is_string_scalar(node)) {
    out.push_back({path, node.Scalar()});
  }
}

// The last key of a values path ("image" for "sidecars[0].image", "sidecars" for "sidecars[0]").
std::string last_key(const std::string& path) {
  std::string p = path;
  while (!p.empty() && p.back() == ']') {
    const auto open = p.rfind('[');
    if (open == std::string::npos) break;
    p.resize(open);
  }
  const auto dot = p.rfind('.');
  return dot == std::string::npos ? p : p.substr(dot + 1);
}

// Writes a YAML node keeping each scalar's type as Helm reads it: quoted scalars stay
// quoted, plain ones plain, explicit tags kept.
void emit_node(YAML::Emitter& out, const YAML::Node& node, const std::string& path,
               const std::map<std::string, std::size_t>& replace) {
  switch (node.Type()) {
  case YAML::NodeType::Map:
    out << YAML::BeginMap;
    for (const auto& entry : node) {
      const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : std::string();
      out << YAML::Key;
      emit_node(out, entry.first, "\x01", {}); // keys: never replaced
      out << YAML::Value;
      emit_node(out, entry.second, path.empty() ? key : path + "." + key, replace);
    }
    out << YAML::EndMap;
    break;
  case YAML::NodeType::Sequence:
    out << YAML::BeginSeq;
    for (std::size_t i = 0; i < node.size(); ++i) {
      emit_node(out, node[i], path + "[" + std::to_string(i) + "]", replace);
    }
    out << YAML::EndSeq;
    break;
  case YAML::NodeType::Scalar: {
    if (const auto it = replace.find(path); it != replace.end()) {
      out << YAML::DoubleQuoted << sentinel(it->second);
      break;
    }
    const std::string& tag = node.Tag();
    if (tag == "!" || tag == "tag:yaml.org,2002:str") {
      out << YAML::DoubleQuoted << node.Scalar();
    } else if (tag == "?" || tag.empty()) {
      out << node.Scalar();
    } else if (starts_with(tag, "tag:yaml.org,2002:")) {
      out << YAML::SecondaryTag(tag.substr(18)) << node.Scalar();
    } else {
      out << YAML::VerbatimTag(tag) << node.Scalar();
    }
    break;
  }
  case YAML::NodeType::Null:
  case YAML::NodeType::Undefined:
    out << YAML::Null;
    break;
  }
}

std::string emit_document(const YAML::Node& root, const std::map<std::string, std::size_t>& replace) {
  YAML::Emitter out;
  emit_node(out, root, "", replace);
  if (!out.good()) throw core::Error(core::ExitCode::failure, std::string("cannot write values: ") + out.GetLastError());
  return std::string(out.c_str()) + "\n";
}

} // namespace

std::vector<ValueLeaf> string_leaves(const std::string& values_yaml) {
  std::vector<ValueLeaf> out;
  collect_leaves(load_map(values_yaml, "the effective values"), "", out);
  return out;
}

std::vector<std::size_t> sentinel_candidates(const std::vector<ValueLeaf>& leaves,
                                             const std::vector<RenderedImage>& images) {
  static const std::vector<std::string> k_image_words = {"image", "registry", "repo", "tag", "digest", "hostname", "prefix"};
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    const std::string& value = leaves[i].value;
    bool candidate = false;
    if (!value.empty()) {
      candidate = std::any_of(images.begin(), images.end(),
                              [&](const RenderedImage& image) { return image.image.find(value) != std::string::npos; });
    } else {
      std::string key = last_key(leaves[i].path);
      std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
      candidate = std::any_of(k_image_words.begin(), k_image_words.end(),
                              [&](const std::string& word) { return key.find(word) != std::string::npos; });
    }
    if (candidate) out.push_back(i);
  }
  return out;
}

namespace {
constexpr std::string_view k_sentinel_mark = "ferry-sentinel-";
}

std::string sentinel(std::size_t n) {
  const std::string number = std::to_string(n);
  return "sentinel.invalid/" + std::string(k_sentinel_mark) + number + "/s" + number;
}

std::set<std::size_t> sentinels_in(const std::string& text) {
  std::set<std::size_t> out;
  std::size_t pos = 0;
  while ((pos = text.find(k_sentinel_mark, pos)) != std::string::npos) {
    pos += k_sentinel_mark.size();
    std::size_t end = pos;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    std::size_t n = 0;
    if (end > pos && std::from_chars(text.data() + pos, text.data() + end, n).ec == std::errc()) out.insert(n);
    pos = end;
  }
  return out;
}

std::string with_sentinels(const std::string& values_yaml, const std::map<std::string, std::size_t>& replace) {
  return emit_document(load_map(values_yaml, "the effective values"), replace);
}

void SentinelMap::record(const std::vector<std::size_t>& batch, const std::vector<RenderedImage>& rendered) {
  const std::set<std::size_t> in_batch(batch.begin(), batch.end());
  for (const auto& image : rendered) {
    for (const std::size_t n : sentinels_in(image.image)) {
      if (in_batch.count(n) && n < m_leaves.size()) m_by_field[image.key()].insert(n);
    }
  }
}

void SentinelMap::unprobed(std::size_t leaf, std::string reason) {
  if (leaf < m_leaves.size()) m_unprobed.emplace_back(m_leaves[leaf].path, std::move(reason));
}

std::vector<std::string> SentinelMap::feeding(const std::string& key) const {
  std::vector<std::string> out;
  if (const auto it = m_by_field.find(key); it != m_by_field.end()) {
    for (const std::size_t n : it->second) out.push_back(m_leaves[n].path);
  }
  return out;
}

bool SentinelMap::feeds_any(const std::string& path) const {
  for (const auto& [key, leaves] : m_by_field) {
    for (const std::size_t n : leaves) {
      if (m_leaves[n].path == path) return true;
    }
  }
  return false;
}

std::vector<std::pair<std::string, std::string>> SentinelMap::feeds() const {
  std::vector<std::pair<std::size_t, std::string>> pairs;
  for (const auto& [key, leaves] : m_by_field) {
    for (const std::size_t n : leaves) pairs.emplace_back(n, key);
  }
  std::stable_sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [n, key] : pairs) out.emplace_back(m_leaves[n].path, key);
  return out;
}

std::size_t probe_sentinels(SentinelMap& map, const std::vector<std::size_t>& candidates,
                            const std::function<RenderAttempt(const std::vector<std::size_t>&)>& render) {
  std::size_t renders = 0;
  std::function<void(const std::vector<std::size_t>&)> probe = [&](const std::vector<std::size_t>& batch) {
    if (batch.empty()) return;
    const RenderAttempt attempt = render(batch);
    ++renders;
    if (attempt.images) {
      map.record(batch, *attempt.images);
      return;
    }
    if (batch.size() == 1) {
      map.unprobed(batch.front(), attempt.failure);
      return;
    }
    // Some value in this batch cannot hold a sentinel (a schema, a `fail`, a number
    // parsed by a template): halve until it is found, keeping the others probed.
    const auto middle = batch.begin() + static_cast<std::ptrdiff_t>(batch.size() / 2);
    probe(std::vector<std::size_t>(batch.begin(), middle));
    probe(std::vector<std::size_t>(middle, batch.end()));
  };
  // Empty values first left alone: a sentinel there turns a condition on (a digest
  // replacing the tag, a registry prefixed), which would hide what the set values feed.
  std::vector<std::size_t> set_values;
  std::vector<std::size_t> empty_values;
  for (const std::size_t n : candidates) {
    (n < map.leaves().size() && map.leaves()[n].value.empty() ? empty_values : set_values).push_back(n);
  }
  probe(set_values);
  probe(empty_values);
  return renders;
}

// ---- Release `set:` keys ----

namespace {

// helm --set typing: true/false, null and integers are typed; anything else is a string.
YAML::Node set_value_node(const std::string& text) {
  YAML::Node node(text);
  bool is_int = !text.empty();
  std::size_t start = (!text.empty() && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
  if (start >= text.size()) is_int = false;
  for (std::size_t i = start; i < text.size() && is_int; ++i) is_int = std::isdigit(static_cast<unsigned char>(text[i]));
  if (text == "true" || text == "false" || text == "null" || is_int) {
    node.SetTag("?");
  } else {
    node.SetTag("!");
  }
  return node;
}

std::vector<std::string> split_set_key(const std::string& key) {
  std::vector<std::string> parts(1);
  for (std::size_t i = 0; i < key.size(); ++i) {
    if (key[i] == '\\' && i + 1 < key.size() && key[i + 1] == '.') {
      parts.back() += '.';
      ++i;
    } else if (key[i] == '.') {
      parts.emplace_back();
    } else {
      parts.back() += key[i];
    }
  }
  return parts;
}

} // namespace

std::string set_values_yaml(const std::map<std::string, std::string>& set, bool placeholders,
                            std::vector<std::string>* placeholder_keys) {
  YAML::Node root(YAML::NodeType::Map);
  bool any = false;
  for (const auto& [key, value] : set) {
    std::string text = value;
    if (text.empty()) {
      if (!placeholders) continue;
      text = k_check_placeholder;
      if (placeholder_keys) placeholder_keys->push_back(key);
    }
    const std::vector<std::string> parts = split_set_key(key);
    YAML::Node node = root;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      YAML::Node child = node[parts[i]];
      if (!child.IsMap()) {
        node[parts[i]] = YAML::Node(YAML::NodeType::Map);
        child = node[parts[i]];
      }
      node.reset(child);
    }
    node[parts.back()] = set_value_node(text);
    any = true;
  }
  if (!any) return "{}\n";
  return emit_document(root, {});
}

// ---- The command ----

bool ReleaseCheck::ok() const {
  return std::none_of(images.begin(), images.end(), [](const CheckedImage& i) { return i.problem.has_value(); });
}

bool CheckResult::ok() const {
  return std::all_of(releases.begin(), releases.end(), [](const ReleaseCheck& r) { return r.ok(); });
}

namespace {

// The last few lines of helm's standard error, for messages.
std::string tail_lines(const std::string& text, std::size_t count) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!trim(line).empty()) lines.push_back(line);
  }
  if (lines.size() > count) lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(count));
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : "\n") + l;
  return out;
}

// Whether a release name can be a file name under --values-dir / -o.
void check_release_file_name(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    throw core::UsageError("release name '" + name + "' cannot name an overlay file");
  }
}

constexpr std::chrono::minutes k_helm_template_timeout{5};
// Rendered manifests are parsed in memory; no chart renders anywhere near this much.
constexpr std::size_t k_max_rendered_size = 128u << 20;

ReleaseCheck check_release(const ReleaseInputs& inputs, const CheckOptions& options, const std::string& helm,
                           const std::vector<values::KnownImage>& images, const std::vector<PushedImage>& pushed,
                           const fs::path& work, core::LogSink& log) {
  const BundleRelease& release = inputs.release;
  ReleaseCheck rc;
  rc.name = release.name;
  rc.namespace_name = release.namespace_name;
  rc.chart = inputs.chart.name + " " + inputs.chart.version;
  check_release_file_name(release.name);

  fs::create_directories(work);
  const fs::path chart = work / (inputs.chart.name + "-" + inputs.chart.version + ".tgz");
  core::write_file_atomic(chart, inputs.chart_archive);
  const auto site_it = std::find_if(options.sites.begin(), options.sites.end(),
                                    [&](const SiteValues& s) { return s.release == release.name; });
  const SiteValues* site = site_it == options.sites.end() ? nullptr : &*site_it;

  // Required keys nobody gave: placeholders, so that a `required` template renders.
  std::map<std::string, std::string> unset;
  if (site) {
    for (const auto& key : site->missing) unset.emplace(key, "");
  } else {
    unset = release.set;
  }
  const std::string set_doc = set_values_yaml(unset, true, &rc.placeholders);
  if (!rc.placeholders.empty()) {
    std::string keys;
    for (const auto& k : rc.placeholders) keys += (keys.empty() ? "" : ", ") + k;
    log.info(release.name + ": placeholder values for the site keys " + keys + " (not given on site)");
  }

  // The documents below the overlay, lowest first, as helm upgrade gets them.
  std::vector<std::string> docs;
  std::vector<std::string> names;
  for (const auto& v : release.values) {
    docs.push_back(v.content);
    names.push_back(v.file + " (bundle values of release " + release.name + ")");
  }
  std::vector<std::string> site_docs = {set_doc};
  std::vector<std::string> site_names = {"set: of release " + release.name};
  if (site) {
    const auto more = site->documents();
    const auto more_names = site->names();
    site_docs.insert(site_docs.end(), more.begin(), more.end());
    site_names.insert(site_names.end(), more_names.begin(), more_names.end());
  }

  std::string overlay;
  if (!options.values_dir.empty()) {
    const fs::path file = options.values_dir / (release.name + ".yaml");
    if (!fs::exists(file)) {
      throw core::UsageError("no overlay " + core::display(file) + " for release " + release.name,
                             "write the overlays with `ferry values " + core::display(options.bundle) + " --registry " +
                                 options.target.str() + " -o " + core::display(options.values_dir) +
                                 "`, or leave out --values-dir");
    }
    overlay = core::read_file(file, k_max_values_file_size);
    rc.overlay = core::display(file);
  } else {
    const values::Result computed = release_overlay(inputs, options.target, images, false, site_docs, site_names);
    overlay = computed.overlay_yaml;
    for (const auto& change : computed.changes) rc.changes.push_back({change, false});
    rc.overlay = "computed";
  }

  // The files: the site's secrets among them, so private (0600 in a 0700 directory).
  std::vector<fs::path> files;
  if (site) {
    files = write_release_values(release, *site, overlay, work / "values");
    if (set_doc != "{}\n") {
      files.insert(files.end() - 1, work / "values" / "placeholders.yaml");
      core::write_file_atomic(files[files.size() - 2], set_doc, 0600);
    }
  } else {
    for (std::size_t i = 0; i < release.values.size(); ++i) {
      files.push_back(work / ("bundle-values-" + std::to_string(i) + ".yaml"));
      core::write_file_atomic(files.back(), release.values[i].content);
    }
    if (set_doc != "{}\n") {
      files.push_back(work / "set.yaml");
      core::write_file_atomic(files.back(), set_doc);
    }
    files.push_back(work / "overlay.yaml");
    core::write_file_atomic(files.back(), overlay);
  }
  std::vector<std::string> argv = {helm, "template", release.name, chart.string(), "-n",
                                   release.namespace_name.empty() ? "default" : release.namespace_name};
  for (const auto& f : files) argv.insert(argv.end(), {"-f", f.string()});
  docs.insert(docs.end(), site_docs.begin(), site_docs.end());
  names.insert(names.end(), site_names.begin(), site_names.end());
  docs.push_back(overlay);
  names.push_back(rc.overlay == "computed" ? "the image overlay of release " + release.name : rc.overlay);

  const std::string what = "helm template of release " + release.name;
  core::ProcessOptions process;
  process.timeout = k_helm_template_timeout;
  process.output_limit = k_max_rendered_size;
  const core::ProcessResult base = core::run_process(argv, process);
  rc.renders = 1;
  if (base.timed_out) {
    throw core::Error(core::ExitCode::failure, what + " did not finish within 5 minutes");
  }
  if (base.out_truncated) {
    throw core::Error(core::ExitCode::failure, what + " printed more than " +
                                                   std::to_string(k_max_rendered_size >> 20) + " MiB of manifests");
  }
  if (base.exit_code != 0) {
    throw core::Error(core::ExitCode::failure,
                      what + " failed (exit code " + std::to_string(base.exit_code) + "): " + tail_lines(base.err, 5),
                      "run `helm template` with the same values to see the whole output; required values are given "
                      "on site with `ferry upgrade --values/--set`");
  }
  const std::vector<RenderedImage> rendered = rendered_images(base.out, what);

  // Sentinels: the effective values, as Helm computes them, given again as the last
  // values file with a batch of string values replaced.
  const std::string effective =
      values::coalesce(values::chart_values(inputs.chart_archive, "chart " + inputs.chart.ref), docs, names);
  SentinelMap map(string_leaves(effective));
  const std::vector<std::size_t> candidates = sentinel_candidates(map.leaves(), rendered);
  const fs::path sentinel_file = work / "sentinels.yaml";
  std::vector<std::string> sentinel_argv = argv;
  sentinel_argv.insert(sentinel_argv.end(), {"-f", sentinel_file.string()});
  rc.renders += probe_sentinels(map, candidates, [&](const std::vector<std::size_t>& batch) {
    std::map<std::string, std::size_t> replace;
    for (const std::size_t n : batch) replace.emplace(map.leaves()[n].path, n);
    core::write_file_atomic(sentinel_file, with_sentinels(effective, replace));
    const core::ProcessResult got = core::run_process(sentinel_argv, process);
    RenderAttempt attempt;
    if (got.exit_code != 0 || got.out_truncated) {
      attempt.failure = got.timed_out ? "helm template did not finish" : tail_lines(got.err, 1);
      return attempt;
    }
    attempt.images = rendered_images(got.out, what + " (with sentinels)");
    return attempt;
  });

  std::map<std::string, std::string> labels;
  for (const auto& image : rendered) {
    labels.emplace(image.key(), image.label());
    rc.images.push_back({image, image_problem(image.image, options.target, pushed), map.feeding(image.key())});
  }
  for (auto& change : rc.changes) change.feeds_image = map.feeds_any(change.change.path);
  for (const auto& [path, key] : map.feeds()) {
    const auto it = labels.find(key);
    rc.feeds.emplace_back(path, it == labels.end() ? key : it->second);
  }
  rc.unprobed = map.unprobed_paths();
  return rc;
}

} // namespace

CheckResult check_bundle(const CheckOptions& options, core::LogSink& log) {
  const auto helm = core::find_program(options.helm);
  if (!helm) {
    throw core::UsageError("helm not found: '" + options.helm + "'",
                           "ferry check renders the charts with helm 3: install it, or give its path with --helm PATH");
  }
  if (!options.values_dir.empty() && !fs::is_directory(options.values_dir)) {
    throw core::UsageError("--values-dir " + core::display(options.values_dir) + " is not a directory",
                           "give the directory `ferry values BUNDLE -o DIR` wrote");
  }
  LoadedBundle loaded = load_bundle_releases(options.bundle, options.trust, log);
  CheckResult result;
  result.descriptor = loaded.descriptor;
  result.signature = loaded.signature;
  const std::vector<values::KnownImage> images = bundle_images(loaded.descriptor);
  const std::vector<PushedImage> pushed = pushed_images(images, options.target);
  CheckOptions resolved = options;
  if (resolved.sites.empty() && (!options.site_flags.values.empty() || !options.site_flags.set.empty() ||
                                 !options.site_flags.set_file.empty())) {
    std::vector<BundleRelease> releases;
    for (const auto& r : loaded.releases) releases.push_back(r.release);
    resolved.sites = resolve_site_values(releases, options.site_flags, KubeTools{}, LiveValues::skip,
                                         core::display(options.bundle), log);
  }
  core::TempDir work({}, "ferry-check");
  std::size_t index = 0;
  for (const ReleaseInputs& inputs : loaded.releases) {
    core::with_context("checking release " + inputs.release.name, [&] {
      result.releases.push_back(check_release(inputs, resolved, helm->string(), images, pushed,
                                              work.path() / ("release-" + std::to_string(index++)), log));
    });
  }
  return result;
}

void require_check_passed(const CheckResult& result, const PushTarget& target) {
  std::string lines;
  std::size_t count = 0;
  for (const auto& release : result.releases) {
    for (const auto& image : release.images) {
      if (!image.problem) continue;
      ++count;
      std::string fed;
      if (image.fed_by.empty()) {
        fed = "no value feeds it: hard-coded in the chart's templates" +
              (image.rendered.source.empty() ? std::string() : " (" + image.rendered.source + ")");
      } else {
        for (const auto& path : image.fed_by) fed += (fed.empty() ? "fed by values " : ", ") + path;
      }
      lines += "\n  release " + release.name + ": " + image.rendered.label() + ": " +
               (image.rendered.image.empty() ? "\"\"" : image.rendered.image) + ": " + *image.problem + "; " + fed;
    }
  }
  if (count == 0) return;
  throw core::Error(core::ExitCode::failure,
                    std::to_string(count) + " rendered image" + (count == 1 ? " is" : "s are") +
                        " not a bundle image under " + target.str() + ":" + lines,
                    "point the values that feed them at the registry (`ferry values BUNDLE --registry " + target.str() +
                        " -o DIR`; add a rule to the release for conventions ferry does not detect), or change the "
                        "chart's templates where an image is hard-coded");
}

} // namespace ferry
