// The connected-side pipeline: bundle manifest -> sources -> signed .tar.zst.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/descriptor.hpp"
#include "bundle/volume_writer.hpp"
#include "core/digest.hpp"
#include "core/fs.hpp"
#include "core/log.hpp"
#include "image_pull.hpp"
#include "lock.hpp"
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
  // The lock file (DESIGN §3): written after a successful pack (not with dry_run) to
  // `lock_file`, default lock_path_for(manifest); `write_lock = false` writes none.
  // With `locked`, the lock is read instead: charts and vendored dependencies are fetched
  // at its versions, and pack fails before downloading any layer when an image, chart
  // archive or file differs from it (lock_differences), naming each.
  std::filesystem::path lock_file = {};
  bool write_lock = true;
  bool locked = false;
  // --helm: the helm that renders charts for `images: auto` (a path, or a name looked up
  // in $PATH). Empty: "helm" from $PATH, and without one renders are skipped with a
  // warning; a helm given but not found is a UsageError.
  std::string helm;
  // --cache: registry blobs are downloaded into this content cache (a BlobStore,
  // pack_cache.hpp) and kept there; a blob it already holds is not downloaded again (it
  // is hashed while it is written into the bundle). Empty (--no-cache): registry blobs
  // go to the temporary work directory and are removed once written. Not used by dry_run.
  std::filesystem::path cache;
  // --split SIZE (bundle::parse_split_size): write volumes NAME.000.tar.zst, NAME.001…,
  // none larger than this, instead of one file (docs/volumes.md). Every download then
  // finishes before the first volume is written (the plan hashes the pieces first).
  std::optional<std::uint64_t> split = std::nullopt;
  // --base (repeatable): a differential bundle (docs/differential.md). Every config and
  // layer one of these bases says the isolated side has is left out of the stream (and
  // not downloaded) and listed as omitted in ferry.json, which names the bases
  // (differential.hpp: load_bases). Manifests, indexes and the blobs of charts and files
  // are always carried. --base-pubkey: receipts and bundles given as bases must be signed
  // by one of these keys.
  std::vector<std::filesystem::path> bases = {};
  std::vector<std::filesystem::path> base_pubkeys = {};
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
  // What the manifest resolved to (MANIFEST.lock.json), also with dry_run.
  LockFile lock;
  std::filesystem::path lock_path; // where it was written; empty when not written
  std::filesystem::path bundle_path;   // a split bundle: its first volume
  std::filesystem::path checksum_path; // NAME.sha256 beside the bundle
  std::uint64_t bundle_size = 0;       // a split bundle: all volumes together
  std::vector<bundle::WrittenVolume> volumes; // --split: every volume, in order (empty otherwise)
  std::uint64_t pieced_blobs = 0;              // --split: blobs cut into pieces
  std::optional<core::Digest> bundle_digest; // none with dry_run or split (see volumes)
  bool dry_run = false;
  // descriptor.images[0, listed_images) are the manifest's `images:`; the rest were found
  // by `images: auto` alone.
  std::size_t listed_images = 0;
  std::vector<ChartDiscoveryReport> discovery; // one per chart with `images: auto`, in manifest order
  // Registry blobs: taken from the cache vs downloaded (see PullStats); options.cache.
  PullStats registry_blobs;
  std::filesystem::path cache;
  // What killed packs had left beside the output and in the cache, removed by this one.
  std::vector<core::Leftover> removed_leftovers;
};

// NAME.sha256 for NAME.tar.zst (or OUTPUT.sha256 when the name has another ending).
std::filesystem::path checksum_path_for(const std::filesystem::path& bundle);

// Reads the manifest, resolves every image, chart and file, and writes the signed bundle
// (or with `split`, its volumes: bundle::write_volumes) and its checksum file. Each blob is read once while it is written (and hashed then,
// unless ferry already checked it). Nothing appears under the output names unless the
// whole bundle was written: a failure leaves no partial file behind, and what a killed
// pack left (its temporaries beside the output and in the cache) is removed by the next
// one. Before any layer is downloaded, the free space where the bundle and the downloads
// go is checked against the most they can take (pack_space.hpp): too little is an Error
// (exit 1) with the numbers, and nothing is downloaded or written.
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
