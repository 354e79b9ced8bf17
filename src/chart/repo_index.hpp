// Helm HTTP chart repositories: index.yaml, choosing a version, chart URLs.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::chart {

// One chart version as index.yaml lists it.
struct IndexEntry {
  std::string name;
  std::string version;
  std::string app_version;
  std::vector<std::string> urls; // as written: absolute, or relative to the repository URL
  std::string digest;            // sha256 hex of the .tgz as the index states it; may be empty
  std::string created;
  bool deprecated = false;
};

// index.yaml (apiVersion v1; `entries: {NAME: [ {version, urls, digest, ...} ]}`). Large
// public indexes (tens of MB) must parse; entries with no version or no URL are skipped.
class RepositoryIndex {
public:
  // UsageError naming `display` (the index URL) and, for YAML errors, the line: not
  // YAML, no `entries` map, an entry that is not a map.
  static RepositoryIndex parse(std::string_view yaml, const std::string& display);

  // Every version of `name`, in the index's order; empty when the index lacks it.
  std::vector<const IndexEntry*> versions_of(const std::string& name) const;

  // The highest version of `name` that `constraint` (chart/semver.hpp) allows; an exact
  // version is matched as Helm does (also when it is not SemVer). UsageError naming the
  // repository: the chart is not there (with similar names when there are any), or no
  // version satisfies the constraint (listing the newest versions there are, and whether
  // pre-releases were left out).
  const IndexEntry& select(const std::string& name, const std::string& constraint, bool include_prereleases) const;

  const std::string& display() const noexcept { return m_display; }

private:
  std::string m_display;
  std::map<std::string, std::vector<IndexEntry>> m_entries;
};

// The index URL of a repository URL: "https://h/p" and "https://h/p/" -> "https://h/p/index.yaml".
std::string index_url(const std::string& repository_url);

// A chart URL from index.yaml made absolute the way Helm does: absolute URLs as they are;
// relative ones against the repository URL with a trailing slash ("https://h/p/" +
// "charts/x-1.0.0.tgz"; "/x.tgz" from the host's root).
std::string chart_url(const std::string& repository_url, const std::string& entry_url);

} // namespace ferry::chart
