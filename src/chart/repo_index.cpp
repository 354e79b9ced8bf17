// Helm HTTP chart repositories: parsing index.yaml, choosing a version as `helm pull
// --version` does, and making the index's chart URLs absolute.
// SPDX-License-Identifier: Apache-2.0
#include "chart/repo_index.hpp"

#include "chart/semver.hpp"
#include "core/error.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <optional>

namespace ferry::chart {

using core::UsageError;

namespace {

// How many versions an error message lists before it says "and N more".
constexpr std::size_t k_listed_versions = 10;
// How many similar chart names an error message suggests.
constexpr std::size_t k_listed_names = 5;

std::string line_of(const YAML::Node& node) { return std::to_string(node.Mark().line + 1); }

// A scalar field of an index entry; empty when absent, null or not a scalar.
std::string scalar_field(const YAML::Node& entry, const char* key) {
  const YAML::Node value = entry[key];
  if (!value.IsDefined() || !value.IsScalar()) return {};
  return value.Scalar();
}

bool bool_field(const YAML::Node& entry, const char* key) {
  const std::string text = scalar_field(entry, key);
  return text == "true" || text == "True" || text == "TRUE";
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// The pieces of an absolute URL that reference resolution (RFC 3986 §5.2) works on.
struct UrlParts {
  std::string scheme;    // "https"
  std::string authority; // "user@host:port" (without "//")
  std::string path;      // "/charts/" (may be empty)
  std::string query;     // without '?'; empty when there is none
};

std::optional<UrlParts> split_url(std::string_view url) {
  if (const auto hash = url.find('#'); hash != std::string_view::npos) url = url.substr(0, hash);
  const auto colon = url.find("://");
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  UrlParts parts;
  parts.scheme = std::string(url.substr(0, colon));
  std::string_view rest = url.substr(colon + 3);
  const auto path_start = rest.find_first_of("/?");
  parts.authority = std::string(rest.substr(0, path_start));
  rest = path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
  const auto question = rest.find('?');
  parts.path = std::string(rest.substr(0, question));
  if (question != std::string_view::npos) parts.query = std::string(rest.substr(question + 1));
  return parts;
}

// Whether `reference` starts with a URI scheme ("https:", "oci:").
bool has_scheme(std::string_view reference) {
  const auto colon = reference.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  if (!std::isalpha(static_cast<unsigned char>(reference[0]))) return false;
  for (std::size_t i = 1; i < colon; ++i) {
    const char c = reference[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return false;
  }
  return true;
}

// RFC 3986 §5.2.4: "." and ".." segments removed from an absolute path.
std::string remove_dot_segments(std::string_view path) {
  std::vector<std::string_view> segments;
  const bool absolute = !path.empty() && path.front() == '/';
  if (absolute) path.remove_prefix(1);
  bool trailing_slash = false;
  while (true) {
    const auto slash = path.find('/');
    const std::string_view segment = path.substr(0, slash);
    const bool last = slash == std::string_view::npos;
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
      trailing_slash = true;
    } else if (segment == ".") {
      trailing_slash = true;
    } else {
      segments.push_back(segment);
      trailing_slash = false;
    }
    if (last) break;
    path.remove_prefix(slash + 1);
  }
  std::string out = absolute ? "/" : "";
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (i > 0) out += '/';
    out += segments[i];
  }
  if (trailing_slash && !out.empty() && out.back() != '/') out += '/';
  return out;
}

// Versions as an error message lists them: newest first (by SemVer precedence; texts
// that are not versions last, as written), at most k_listed_versions.
std::string list_versions(std::vector<std::string> versions) {
  std::stable_sort(versions.begin(), versions.end(), [](const std::string& a, const std::string& b) {
    const auto va = Version::parse(a);
    const auto vb = Version::parse(b);
    if (va && vb) return va->compare(*vb) > 0;
    return va.has_value() && !vb.has_value();
  });
  std::string out;
  for (std::size_t i = 0; i < versions.size() && i < k_listed_versions; ++i) {
    out += (i ? ", " : "") + versions[i];
  }
  if (versions.size() > k_listed_versions) {
    out += " and " + std::to_string(versions.size() - k_listed_versions) + " older";
  }
  return out;
}

} // namespace

RepositoryIndex RepositoryIndex::parse(std::string_view yaml, const std::string& display) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    throw UsageError(display + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                         ": YAML syntax error: " + e.msg,
                     "check that the URL is a Helm chart repository (its index.yaml is written by `helm repo index`)");
  }
  if (!root.IsMap()) {
    throw UsageError(display + " is not a Helm repository index (not a YAML map)",
                     "check that the URL is a Helm chart repository (its index.yaml is written by `helm repo index`)");
  }
  const YAML::Node entries = root["entries"];
  if (!entries.IsDefined()) {
    throw UsageError(display + " is not a Helm repository index (it has no 'entries')",
                     "check that the URL is a Helm chart repository (its index.yaml is written by `helm repo index`)");
  }
  RepositoryIndex index;
  index.m_display = display;
  if (entries.IsNull()) return index; // `entries:` with nothing under it: an empty repository
  if (!entries.IsMap()) {
    throw UsageError(display + ":" + line_of(entries) + ": 'entries' must be a map of chart names to versions");
  }
  for (const auto& item : entries) {
    const std::string name = item.first.IsScalar() ? item.first.Scalar() : std::string();
    if (name.empty()) throw UsageError(display + ":" + line_of(item.first) + ": a chart name in 'entries' is not a string");
    std::vector<IndexEntry>& versions = index.m_entries[name];
    const YAML::Node& list = item.second;
    if (list.IsNull()) continue;
    if (!list.IsSequence()) {
      throw UsageError(display + ":" + line_of(list) + ": the versions of chart '" + name + "' must be a list");
    }
    for (const auto& node : list) {
      if (node.IsNull()) continue; // Helm skips empty items too
      if (!node.IsMap()) {
        throw UsageError(display + ":" + line_of(node) + ": a version of chart '" + name + "' is not a map");
      }
      IndexEntry entry;
      entry.name = scalar_field(node, "name");
      if (entry.name.empty()) entry.name = name;
      entry.version = scalar_field(node, "version");
      entry.app_version = scalar_field(node, "appVersion");
      entry.digest = scalar_field(node, "digest");
      entry.created = scalar_field(node, "created");
      entry.deprecated = bool_field(node, "deprecated");
      if (const YAML::Node urls = node["urls"]; urls.IsDefined() && urls.IsSequence()) {
        for (const auto& url : urls) {
          if (url.IsScalar() && !url.Scalar().empty()) entry.urls.push_back(url.Scalar());
        }
      }
      // Helm drops such entries when it loads an index (they cannot be downloaded).
      if (entry.version.empty() || entry.urls.empty()) continue;
      versions.push_back(std::move(entry));
    }
  }
  return index;
}

std::vector<const IndexEntry*> RepositoryIndex::versions_of(const std::string& name) const {
  std::vector<const IndexEntry*> out;
  const auto it = m_entries.find(name);
  if (it == m_entries.end()) return out;
  for (const auto& entry : it->second) out.push_back(&entry);
  return out;
}

const IndexEntry& RepositoryIndex::select(const std::string& name, const std::string& constraint,
                                          bool include_prereleases) const {
  const auto it = m_entries.find(name);
  if (it == m_entries.end()) {
    std::vector<std::string> names;
    for (const auto& [candidate, versions] : m_entries) names.push_back(candidate);
    std::vector<std::string> similar;
    const std::string wanted = lower(name);
    for (const auto& candidate : names) {
      const std::string folded = lower(candidate);
      if (similar.size() < k_listed_names &&
          (folded.find(wanted) != std::string::npos || wanted.find(folded) != std::string::npos)) {
        similar.push_back(candidate);
      }
    }
    if (const std::string near = core::suggest(name, names);
        !near.empty() && std::find(similar.begin(), similar.end(), near) == similar.end()) {
      similar.insert(similar.begin(), near);
    }
    std::string message = "chart '" + name + "' is not in " + m_display;
    std::string hint;
    if (!similar.empty()) {
      message += " (similar names there: ";
      for (std::size_t i = 0; i < similar.size(); ++i) message += (i ? ", " : "") + similar[i];
      message += ")";
      hint = "use the chart's name as the repository lists it in `name:` of the manifest";
    } else {
      hint = "check the chart name and the repository URL (the repository lists " + std::to_string(names.size()) +
             " chart" + (names.size() == 1 ? "" : "s") + ")";
    }
    throw UsageError(message, hint);
  }
  const std::vector<IndexEntry>& entries = it->second;
  if (entries.empty()) {
    throw UsageError("chart '" + name + "' in " + m_display + " has no version that can be downloaded",
                     "the repository lists the chart without a version or URL; ask its maintainers to fix the index");
  }
  // As Helm's IndexFile.Get: an exact version string wins, even when it is no SemVer.
  if (!constraint.empty()) {
    for (const auto& entry : entries) {
      if (entry.version == constraint) return entry;
    }
  }
  const Constraint wanted = core::with_context("choosing a version of chart " + name + " from " + m_display, [&] {
    return Constraint::parse(constraint.empty() ? std::string_view("*") : std::string_view(constraint));
  });
  std::vector<std::string> versions;
  for (const auto& entry : entries) versions.push_back(entry.version);
  const std::optional<Version> best = best_match(wanted, versions, include_prereleases);
  if (!best) {
    std::vector<std::string> releases;
    std::vector<std::string> prereleases;
    for (const auto& text : versions) {
      const auto v = Version::parse(text);
      (v && v->is_prerelease() && !include_prereleases ? prereleases : releases).push_back(text);
    }
    std::string message = "no version of chart '" + name + "' in " + m_display + " satisfies \"" +
                          (constraint.empty() ? std::string("*") : constraint) + "\"; ";
    message += releases.empty() ? std::string("it has no release versions") : "it has " + list_versions(releases);
    if (!prereleases.empty()) message += " (pre-releases left out: " + list_versions(prereleases) + ")";
    std::string hint = "choose one of these versions, or change `version:` in the manifest";
    if (!prereleases.empty()) {
      hint += "; a constraint that names a pre-release (\"^1.0.0-0\") or the exact pre-release version selects one";
    }
    throw UsageError(message, hint);
  }
  for (const auto& entry : entries) {
    if (entry.version == best->original) return entry;
  }
  for (const auto& entry : entries) {
    const auto v = Version::parse(entry.version);
    if (v && v->compare(*best) == 0) return entry;
  }
  // best_match only returns versions it was given.
  throw core::Error(core::ExitCode::failure, "internal error: version " + best->str() + " of chart " + name +
                                                 " was chosen but is not in " + m_display);
}

std::string index_url(const std::string& repository_url) {
  std::string base = repository_url;
  if (const auto hash = base.find('#'); hash != std::string::npos) base.resize(hash);
  std::string query;
  if (const auto question = base.find('?'); question != std::string::npos) {
    query = base.substr(question);
    base.resize(question);
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/index.yaml" + query;
}

// Helm's repo.ResolveReferenceURL: an absolute URL stays as it is; a relative one is
// resolved (RFC 3986) against the repository URL with exactly one trailing slash added
// to its path, and gets the repository URL's query (its own is dropped).
std::string chart_url(const std::string& repository_url, const std::string& entry_url) {
  if (has_scheme(entry_url)) return entry_url;
  const std::optional<UrlParts> base = split_url(repository_url);
  if (!base) return entry_url; // the caller checked the repository URL; nothing to resolve against
  std::string reference = entry_url;
  if (const auto hash = reference.find('#'); hash != std::string::npos) reference.resize(hash);
  if (const auto question = reference.find('?'); question != std::string::npos) reference.resize(question);
  const std::string query = base->query.empty() ? std::string() : "?" + base->query;

  if (reference.rfind("//", 0) == 0) { // network-path reference: another host, same scheme
    const std::optional<UrlParts> other = split_url(base->scheme + ":" + reference);
    if (!other) return base->scheme + ":" + reference + query;
    return base->scheme + "://" + other->authority + remove_dot_segments(other->path.empty() ? "/" : other->path) +
           query;
  }
  std::string path;
  if (!reference.empty() && reference.front() == '/') {
    path = reference;
  } else {
    std::string directory = base->path;
    while (!directory.empty() && directory.back() == '/') directory.pop_back();
    path = directory + "/" + reference;
  }
  return base->scheme + "://" + base->authority + remove_dot_segments(path) + query;
}

} // namespace ferry::chart
