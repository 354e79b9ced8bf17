// The bases of a differential pack (`pack --base`, DESIGN §2 "Differential",
// docs/differential.md): which blobs the isolated side already has, and where.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/descriptor.hpp"
#include "core/digest.hpp"
#include "core/log.hpp"
#include "image_pull.hpp"
#include "oci/blob_store.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace ferry {

struct BaseOptions {
  // --base: receipts (RECEIPT.json), lock files (NAME.lock.json) and bundles (a .tar.zst,
  // or any one volume of a split bundle: each carries ferry.json); their contents are united.
  std::vector<std::filesystem::path> files;
  // --base-pubkey: receipts and bundles must then be signed by one of these keys.
  std::vector<std::filesystem::path> pubkeys;
  // Lock bases: their images are resolved by digest from these source registries
  // (manifests and configs only, kept in `store`).
  PullOptions pull;
};

// A blob some base says the isolated side has.
struct BaseBlob {
  std::uint64_t size = 0;
  std::set<std::uint32_t> bases;       // indexes into LoadedBases::records
  std::set<std::string> repositories;  // paths under the target's prefix where a base saw it
};

struct LoadedBases {
  std::vector<bundle::BaseRecord> records; // one per distinct base, in --base order
  std::map<core::Digest, BaseBlob> blobs;  // configs and layers only
};

// Reads every base. How the kind is told: a zstd stream is a bundle; JSON with
// `receiptVersion` a receipt, with `lockVersion` a lock file. What each gives:
// - a receipt: its blobs, with its repositories (the receipt's prefix taken off). With
//   `pubkeys` its signature (FILE.sig beside it) must verify (IntegrityError otherwise,
//   or when there is none); without, a warning says it is not checked (or unsigned).
// - a bundle: every config and layer in its ferry.json (the head is read, then its
//   manifests, to learn which image, hence which repository, uses which blob); its
//   signature is checked with `pubkeys` when given (as BundleReader::open), else a
//   warning.
// - a lock: its images resolved by digest from their source registries (each platform's
//   manifest, or the root), manifests and configs read, no layer downloaded; images from
//   local sources (oci:, docker-archive:) cannot be resolved and are skipped with a
//   warning.
// The same base given twice (same digest) counts once. UsageError: a file that is none
// of these, or cannot be read; RegistryError for a lock image its registry cannot give.
LoadedBases load_bases(const BaseOptions& options, oci::BlobStore& store, core::LogSink& log);

} // namespace ferry
