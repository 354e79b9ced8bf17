// Helm chart archives: reading a .tgz, packaging a directory deterministically.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace ferry::chart {

struct ChartMetadata {
  std::string api_version; // "v2" (Helm 3) or "v1"
  std::string name;
  std::string version;     // SemVer 2 as Chart.yaml requires
  std::string app_version;
  std::string description;
  std::string type;        // "application" / "library" / empty
  std::map<std::string, std::string> annotations;
  // Chart.yaml as compact JSON with sorted keys: the Helm OCI config blob
  // (application/vnd.cncf.helm.config.v1+json), as `helm push` writes it.
  std::string config_json;
};

struct PackagedChart {
  ChartMetadata metadata;
  std::string archive; // the .tgz bytes
};

// Charts larger than this are refused (Helm itself refuses charts over 5 MiB by
// default at install; we allow more for vendored dependencies).
inline constexpr std::size_t k_max_chart_size = 64u << 20;

// Reads a chart archive as `helm package` writes it: gzip tar, one top directory named
// after the chart, holding Chart.yaml. The bytes are kept as given. A file that is not
// such an archive, or whose Chart.yaml lacks name or version, or whose top directory
// differs from the chart name, is a UsageError naming the file and what is wrong.
// Entries with absolute paths or ".." are refused.
PackagedChart read_chart_archive(const std::filesystem::path& tgz);

// Packages a chart directory like `helm package` (honouring .helmignore: Helm's
// patterns, comments, negation not supported by Helm either), but reproducibly: entries
// sorted by path under "<name>/", regular files and directories only (symlinks are
// followed like helm does, and refused when they leave the chart), mtime `mtime`,
// uid/gid 0, modes 0644 (0755 when any execute bit is set), gzip with no file name
// and no timestamp. Same directory contents -> same bytes.
PackagedChart package_chart_directory(const std::filesystem::path& dir, std::int64_t mtime);

// Either of the above, by what `path` is.
PackagedChart load_chart(const std::filesystem::path& path, std::int64_t mtime);

} // namespace ferry::chart
