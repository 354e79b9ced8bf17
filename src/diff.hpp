// `ferry diff OLD NEW`: what changed between two bundles or lock files (images, charts and
// files added, removed and changed; blobs and bytes where the inputs know them).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/descriptor.hpp"
#include "core/digest.hpp"
#include "core/log.hpp"
#include "lock.hpp"
#include "unpack.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

// One image, chart or file as compared.
struct DiffItem {
  std::string key;     // image: its full reference; chart: its name; file: its path
  std::string group;   // what pairs a renamed item: an image's repository (no tag); else the key
  std::string version; // image: its tag (or ""); chart: its version; file: ""
  core::Digest digest; // image: its root; chart: its archive as fetched (the .tgz); file: its content
  std::optional<std::uint64_t> size = std::nullopt; // bundles: bytes of all its blobs; locks: unknown
};

// One input, reduced to what is compared.
struct DiffSide {
  std::string kind; // "bundle" or "lock"
  std::string name;
  std::string version;
  std::vector<DiffItem> images;
  std::vector<DiffItem> charts;
  std::vector<DiffItem> files;
  // A bundle's blob table (omitted blobs included: they are part of its content); none
  // for a lock.
  std::optional<std::map<core::Digest, std::uint64_t>> blobs;
  std::vector<bundle::BaseRecord> bases; // a differential bundle's
};

DiffSide diff_side(const bundle::BundleDescriptor& descriptor);
DiffSide diff_side(const LockFile& lock);

struct ItemChange {
  DiffItem before;
  DiffItem after;
};

struct SectionDiff {
  std::vector<DiffItem> added;
  std::vector<DiffItem> removed;
  std::vector<ItemChange> changed; // the same key (or group) with another digest or version
  std::size_t unchanged = 0;
};

struct BlobDiff {
  std::size_t added = 0;   // in NEW, not in OLD
  std::uint64_t added_bytes = 0;
  std::size_t removed = 0; // in OLD, not in NEW
  std::uint64_t removed_bytes = 0;
  std::size_t shared = 0;
  std::uint64_t shared_bytes = 0;
};

struct DiffResult {
  SectionDiff images;
  SectionDiff charts;
  SectionDiff files;
  std::optional<BlobDiff> blobs; // only when both sides are bundles
};

// Items are matched by key; of those left, an item removed and one added with the same
// group, each alone in its group on its side, are one change (an image whose tag
// moved). A match is changed when its digest or version differs. Lists follow NEW's
// order (removed ones OLD's).
DiffResult diff(const DiffSide& before, const DiffSide& after);

// Reads one input of `ferry diff`: a bundle (a .tar.zst, or any one volume of a split
// bundle: only ferry.json is read, its signature checked when `trust` has keys) or a
// lock file (JSON with lockVersion). UsageError for anything else.
DiffSide read_diff_side(const std::filesystem::path& file, const TrustOptions& trust, core::LogSink& log);

} // namespace ferry
