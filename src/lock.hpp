// MANIFEST.lock.json (DESIGN §3): what a bundle manifest resolved to — every image source
// to its root digest and per-platform digests, every chart constraint to an exact version,
// URL and archive digest, every file to its digest — so that `pack --locked` fetches
// exactly that, or fails naming what moved upstream.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/digest.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::bundle {
struct BundleDescriptor;
}

namespace ferry {

inline constexpr int k_lock_version = 1;

struct LockedImage {
  std::string source; // as the manifest writes it ("quay.io/x/y:1.0", "oci:./layout:web"), or a discovered reference
  std::string ref;    // the name it has in the bundle
  core::Digest digest; // the root in the bundle (an index narrowed to the platforms: ferry's own)
  std::optional<core::Digest> source_digest = std::nullopt; // the source's root when ferry narrowed it
  // Each platform's image manifest: {"linux/amd64", sha256:…}; empty for a single manifest.
  std::vector<std::pair<std::string, core::Digest>> platforms = {};
};

struct LockedChartDependency {
  std::string name;
  std::string constraint; // as the chart's Chart.yaml asks
  std::string version;
  std::string url;
  core::Digest digest; // the archive as fetched
};

struct LockedChart {
  std::string name;
  std::string source;     // the manifest's repo (or local path)
  std::string constraint; // the manifest's version ("" : any)
  std::string version;    // as chosen
  std::string url;        // the archive fetched; empty for a local chart
  std::optional<core::Digest> digest; // of that archive (a local chart: of the archive ferry made)
  std::vector<LockedChartDependency> dependencies = {}; // vendored by pack
};

struct LockedFile {
  std::string path;
  std::string source;
  core::Digest digest; // of the file's bytes
};

struct LockFile {
  int lock_version = k_lock_version;
  std::string name;    // the bundle's metadata.name
  std::string version; // and version
  std::vector<std::string> platforms; // the manifest's default platforms (after --platform)
  std::vector<LockedImage> images;    // manifest images first, then discovered ones
  std::vector<LockedChart> charts;
  std::vector<LockedFile> files;

  const LockedImage* image(std::string_view source) const;
  const LockedChart* chart(std::string_view chart_name) const;
  const LockedFile* file(std::string_view path) const;
};

// NAME.lock.json beside the manifest NAME.yaml (or NAME.yml, or any other name + .lock.json).
std::filesystem::path lock_path_for(const std::filesystem::path& manifest);

// Stable, diff-friendly text: two-space indented JSON, keys sorted, entries in manifest
// order, a trailing newline. The same lock always gives the same bytes.
std::string to_json(const LockFile& lock);

// Parses a lock file; UsageError naming `what` and the field for anything malformed (not
// JSON, another lockVersion, a digest that is not sha256, an image listed twice, …).
LockFile parse_lock(std::string_view text, const std::string& what);

// The lock of a bundle: images, charts and files from its descriptor, per-platform digests
// from `platforms` (image source -> {platform, manifest digest}), the chart constraints
// from the manifest (chart name -> constraint).
LockFile lock_from_descriptor(const bundle::BundleDescriptor& descriptor, const std::vector<std::string>& default_platforms,
                              const std::vector<std::pair<std::string, std::vector<std::pair<std::string, core::Digest>>>>& platforms,
                              const std::vector<std::pair<std::string, std::string>>& constraints);

// What `pack --locked` found differing from the lock, one line each ("image quay.io/x:1
// (manifests/a.yaml:7): the lock has sha256:…, the registry now sha256:…"). Empty: in
// agreement. Compares every image, chart and file of `now` with `lock`; entries missing
// from either side are differences too.
std::vector<std::string> lock_differences(const LockFile& lock, const LockFile& now);

} // namespace ferry
