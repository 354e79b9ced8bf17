// The bundle manifest (input of pack, DESIGN §3) and plain image lists.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "oci/platform.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace ferry::bundle {

struct ManifestImage {
  std::string ref;                       // source in transport syntax, as written
  std::string name;                      // `name:` for local sources; empty when not given
  std::vector<oci::Platform> platforms;  // empty: the bundle's default platforms
  int line = 0;                          // 1-based line in the manifest file
};

struct ManifestChart {
  std::string name;
  std::string repo;     // https://… or oci://…; empty for local charts
  std::string path;     // local directory or .tgz, as written; empty for repo charts
  std::string version;  // exact or constraint; may be empty for local charts
  bool images_auto = false;          // `images: auto`
  std::vector<std::string> images;   // `images: [ref, …]`
  int line = 0;
};

struct ManifestFile {
  std::string path;   // where it goes in the bundle ("tools/helm"), relative, no ".."
  std::string source; // local file, as written
  unsigned mode = 0644;
  int line = 0;
};

// `mirrors: {docker.io: harbor.corp/dockerhub}`: pull REGISTRY's images through HOST
// (under PREFIX) while the bundle records the original references.
struct ManifestMirror {
  std::string registry; // "docker.io"
  std::string mirror;   // "harbor.corp/dockerhub"
  int line = 0;
};

struct BundleManifest {
  std::filesystem::path file;     // the manifest as given on the command line
  std::filesystem::path base_dir; // relative paths in it resolve against this
  std::string name;
  std::string version;
  std::vector<oci::Platform> platforms; // default platform filter; empty = all
  std::vector<ManifestImage> images;
  std::vector<ManifestChart> charts;
  std::vector<ManifestFile> files;
  std::vector<ManifestMirror> mirrors;
  // The release plan as a JSON array, keys as in the manifest (validated: unique names,
  // each `chart` names an entry of `charts`, known keys only).
  std::string releases_json = "[]";
  // The whole manifest as JSON (recorded in ferry.json).
  std::string source_json = "{}";

  // `path` made absolute against base_dir unless already absolute.
  std::filesystem::path resolve(const std::string& path) const;
};

// Reads a bundle manifest file. Accepted:
// - YAML `apiVersion: ferry/v1`, `kind: Bundle` (DESIGN §3);
// - a plain image list: one reference per line, `#` comments and blank lines ignored
//   (name = the file's stem, version "0");
// - Hauler manifests (apiVersion content.hauler.cattle.io/…, kinds Images, Charts and
//   Files), read as the equivalent ferry manifest (name = the file's stem, version "0",
//   recorded in source_json in ferry's form); cosign verification keys and file URLs are
//   refused;
// Every problem is a UsageError whose message starts "FILE:LINE:COLUMN: " (or
// "FILE:LINE: ") and names the key or value: YAML syntax errors, unknown keys (with a
// "did you mean" hint), wrong types, missing required keys, bad references, bad
// platforms, bad modes, file paths that are absolute or contain "..", duplicate image
// refs, chart or file paths, release names.
BundleManifest load_bundle_manifest(const std::filesystem::path& file);

// The same from text already read; `file` is used for messages and base_dir.
BundleManifest parse_bundle_manifest(const std::string& text, const std::filesystem::path& file);

// A one-off bundle from `ferry pack --image … --chart …`: the text of the equivalent
// ferry manifest (YAML), which `ferry pack` writes beside the bundle and then packs, so
// the bundle is reproducible with `-f`. `images` are references as in `images:`;
// `charts` are "oci://HOST/PATH/NAME:VERSION" or "https://REPO_URL/NAME:VERSION" (the
// last path segment names the chart, the rest is the repository; VERSION is an exact
// version or a constraint), each with `images: auto`. UsageError for a chart without a
// repository URL or a version, or when there is nothing to pack.
struct OneOffSpec {
  std::string name;    // metadata.name
  std::string version; // metadata.version
  std::vector<std::string> images;
  std::vector<std::string> charts;
};
std::string one_off_manifest(const OneOffSpec& spec);

} // namespace ferry::bundle
