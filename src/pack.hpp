// The connected-side pipeline: bundle manifest -> sources -> signed .tar.zst.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/descriptor.hpp"
#include "core/digest.hpp"
#include "core/log.hpp"
#include "image_pull.hpp"
#include "values/discover.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

struct PackOptions {
  std::filesystem::path manifest;
  std::filesystem::path output;           // NAME.tar.zst
  std::filesystem::path key;              // PKCS#8 PEM private key
  std::optional<std::string> passphrase;  // for an encrypted key
  int compression_level = 3;              // zstd level for compressible entries
  std::int64_t source_date_epoch = 0;     // every mtime and `created`
  std::string tool_version;
  PullOptions pull; // source registries (TLS, credentials, mirrors, -j)
  // --platform: replaces the manifest's default `platforms:` (an image's own
  // `platforms:` still wins).
  std::vector<oci::Platform> platforms;
  // --dry-run: resolve everything (tags to digests, chart versions, `images: auto`) and
  // return the plan. Manifests and configs are read to resolve images; no layer is
  // downloaded, nothing is written (output and key are not used).
  bool dry_run = false;
  // --helm: the helm that renders charts for `images: auto` (a path, or a name looked up
  // in $PATH). Empty: "helm" from $PATH, and without one renders are skipped with a
  // warning; a helm given but not found is a UsageError.
  std::string helm;
};

// What `images: auto` did for one chart.
struct ChartDiscoveryReport {
  std::string chart;                          // the chart's name in the manifest
  std::vector<std::string> methods;           // what was read: "annotation", "values", "render"
  std::vector<values::Unresolved> unresolved; // references found that are not packed
  std::vector<std::string> warnings;          // renders skipped or failed (also logged)
};

struct PackResult {
  // The bundle's ferry.json; with dry_run the plan it would be (no signer).
  bundle::BundleDescriptor descriptor;
  std::filesystem::path bundle_path;
  std::filesystem::path checksum_path; // NAME.sha256 beside the bundle
  std::uint64_t bundle_size = 0;
  std::optional<core::Digest> bundle_digest; // none with dry_run
  bool dry_run = false;
  // descriptor.images[0, listed_images) are the manifest's `images:`; the rest were found
  // by `images: auto` alone.
  std::size_t listed_images = 0;
  std::vector<ChartDiscoveryReport> discovery; // one per chart with `images: auto`, in manifest order
};

// NAME.sha256 for NAME.tar.zst (or OUTPUT.sha256 when the name has another ending).
std::filesystem::path checksum_path_for(const std::filesystem::path& bundle);

// Reads the manifest, resolves every image, chart and file, and writes the signed bundle
// and its checksum file. Each blob is read once while it is written (and hashed then,
// unless ferry already checked it). Nothing appears under the output names unless the
// whole bundle was written: a failure leaves no partial file behind.
//
// Charts with `images: auto` are pulled first and their images discovered
// (values/discover.hpp): from their image annotations, from each release's values
// (chart defaults, subcharts and globals, then the release's bundle values files), and,
// when helm is available, from `helm template` of each release (its values files; `set:`
// keys the site supplies get a placeholder). A chart no release uses is read with its
// defaults. Discovered images join the manifest's `images:` (the same image is packed
// once; the default platforms apply) and the chart's `images`; ferry.json records how
// each was found. References that cannot be packed (templated leftovers) are logged and
// reported, not packed; a discovered image the registry lacks fails the pack as a listed
// one would.
PackResult pack(const PackOptions& options, core::LogSink& log, core::ProgressSink& progress);

} // namespace ferry
