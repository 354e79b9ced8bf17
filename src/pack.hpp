// The connected-side pipeline: bundle manifest -> sources -> signed .tar.zst.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/descriptor.hpp"
#include "core/digest.hpp"
#include "core/log.hpp"
#include "image_pull.hpp"

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
};

struct PackResult {
  bundle::BundleDescriptor descriptor;
  std::filesystem::path bundle_path;
  std::filesystem::path checksum_path; // NAME.sha256 beside the bundle
  std::uint64_t bundle_size = 0;
  std::optional<core::Digest> bundle_digest;
};

// NAME.sha256 for NAME.tar.zst (or OUTPUT.sha256 when the name has another ending).
std::filesystem::path checksum_path_for(const std::filesystem::path& bundle);

// Reads the manifest, resolves every image, chart and file, and writes the signed bundle
// and its checksum file. Each blob is read once while it is written (and hashed then,
// unless ferry already checked it). Nothing appears under the output names unless the
// whole bundle was written: a failure leaves no partial file behind.
PackResult pack(const PackOptions& options, core::LogSink& log, core::ProgressSink& progress);

} // namespace ferry
