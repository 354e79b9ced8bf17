// Helm chart archives: reading a .tgz, packaging a directory deterministically.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ferry::chart {

// One entry of `dependencies:` in Chart.yaml, requirements.yaml or a lock file, with
// the strings as Helm reads them: a plain YAML number or boolean becomes Go's text of it
// (`version: 1.10` is "1.1"), and in Chart.yaml and requirements.yaml white space turns
// into ' ' and other control characters are dropped (Helm's Dependency.Validate).
struct ChartDependency {
  std::string name;
  std::string version;    // a constraint ("~1.2.0"), in a lock the exact version; empty: any
  std::string repository; // https://…, http://…, oci://…, file://PATH, @NAME or alias:NAME; may be empty
  std::string alias;
  std::string condition;
  std::vector<std::string> tags;
  bool enabled = false;
  // `import-values` and `export-values` as Go's encoding/json writes them, for the lock
  // digest (`["data",{"child":"a","parent":"b"}]`); empty when absent, null or [].
  std::string import_values;
  std::string export_values;
};

struct ChartMetadata {
  std::string api_version; // "v2" (Helm 3) or "v1" (also when Chart.yaml gives none, as for Helm)
  std::string name;
  std::string version;     // SemVer 2 as Chart.yaml requires
  std::string app_version;
  std::string description;
  std::string type;        // "application" / "library" / empty
  std::map<std::string, std::string> annotations;
  // Chart.yaml's `dependencies:`, or requirements.yaml's when the chart has one that
  // lists them (see read_chart_metadata).
  std::vector<ChartDependency> dependencies;
  std::string dependencies_file = "Chart.yaml"; // or "requirements.yaml"
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

// One regular file of a chart, by its path below the chart's directory ("values.yaml",
// "charts/redis-17.0.0.tgz").
struct ArchiveFile {
  std::string path;
  std::string data;
  bool executable = false; // any execute bit set
};

// Reads a chart archive as `helm package` writes it: gzip tar, one top directory named
// after the chart, holding Chart.yaml (and requirements.yaml: see read_chart_metadata).
// The bytes are kept as given. A file that is not
// such an archive, or whose Chart.yaml lacks name or version, or whose top directory
// differs from the chart name, is a UsageError naming the file and what is wrong.
// Entries with absolute paths or ".." are refused.
PackagedChart read_chart_archive(const std::filesystem::path& tgz);
// The same for archive bytes in memory (a download); `display` names them in messages
// (the URL). At most k_max_chart_size bytes.
PackagedChart read_chart_archive(std::string bytes, const std::string& display);

// Every regular file of a chart archive, in archive order, with the checks of
// read_chart_archive (UsageError naming `display`).
std::vector<ArchiveFile> read_chart_files(const std::string& archive, const std::string& display);

// Parses the text of a Chart.yaml alone (no requirements.yaml); UsageError naming `what`.
ChartMetadata parse_chart_metadata(const std::string& chart_yaml, const std::string& what);

// The metadata of a chart given as its files (read_chart_files), as Helm's loader reads
// it: Chart.yaml, whose dependencies requirements.yaml replaces when it has a
// `dependencies:` key. Helm 3 does so for every apiVersion (for v2 with a warning, and
// `helm package` then moves them into Chart.yaml), so requirements.yaml is read whatever
// Chart.yaml's apiVersion. UsageError naming `display` for a chart without Chart.yaml or
// a file that is not valid.
ChartMetadata read_chart_metadata(const std::vector<ArchiveFile>& files, const std::string& display);

// A lock file: Chart.lock or, from Helm 2 charts (apiVersion v1), requirements.lock.
struct ChartLock {
  std::string file;   // "Chart.lock" or "requirements.lock"
  std::string digest; // as the lock states it ("sha256:…"); empty when it gives none
  std::vector<ChartDependency> dependencies; // each with its exact version
};

// Parses the text of a lock file named `file`; UsageError naming `what` for a lock that
// is not YAML or not shaped like one.
ChartLock parse_chart_lock(const std::string& text, const std::string& file, const std::string& what);

// The lock Helm's loader takes from a chart's files: Chart.lock or requirements.lock,
// the later in file order when it has both (as in a directory, whose files Helm reads
// sorted, so requirements.lock), whatever the apiVersion; nullopt when it has neither.
std::optional<ChartLock> find_chart_lock(const std::vector<ArchiveFile>& files, const std::string& display);

// Writes `files` as the archive of chart `name` ("NAME/PATH" entries) the way
// package_chart_directory does: sorted by path, mtime `mtime`, uid/gid 0, modes 0644 or
// 0755, gzip without name or timestamp. UsageError for a path given twice or one that is
// not a normalised relative path, or when the result exceeds k_max_chart_size.
std::string write_chart_archive(const std::string& name, std::vector<ArchiveFile> files, std::int64_t mtime,
                                const std::string& display);

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
