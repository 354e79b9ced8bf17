// `ferry serve`: the images and charts of a bundle, or of a directory `ferry extract`
// wrote, as a read-only OCI registry, for jump hosts and nodes without a registry.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/bundle_reader.hpp"
#include "bundle/descriptor.hpp"
#include "core/log.hpp"
#include "serve/distribution.hpp"
#include "unpack.hpp"

#include <filesystem>
#include <string>

namespace ferry {

struct ServeOptions {
  std::filesystem::path source; // a one-file bundle, or a directory written by `ferry extract`
  TrustOptions trust;
  // Repositories are PREFIX/<source path without host> and PREFIX/charts/NAME, the paths
  // `ferry push --registry HOST/PREFIX` gives them (no prefix: as with a bare HOST).
  std::string prefix;
  int jobs = 4; // threads verifying blobs before serving
};

struct ServedContent {
  std::string kind; // "bundle" or "directory"
  bundle::BundleDescriptor descriptor;
  bundle::SignatureCheck signature;
  std::uint64_t verified_blobs = 0;
  std::uint64_t verified_bytes = 0;
  serve::Catalog catalog;
  serve::BlobOpener opener;
};

// Verifies the source before anything is served: the signature of ferry.json, then every
// blob against the signed table (a bundle in one pass, a directory file by file, `jobs`
// at a time), and indexes where each blob is. A bundle must be one file with one zstd
// frame per entry, as ferry writes it (each blob is then read from its own frame on
// demand); a split, differential or recompressed bundle is a UsageError naming `ferry
// extract`, whose directory serves instead. IntegrityError (exit 3) for anything that
// does not verify, as `ferry verify`.
ServedContent prepare_served_content(const ServeOptions& options, core::LogSink& log, core::ProgressSink& progress);

} // namespace ferry
