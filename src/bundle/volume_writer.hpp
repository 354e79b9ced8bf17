// Writing a split bundle: the volume plan, piece digests, then every volume, all under
// temporary names until the last one is complete.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/descriptor.hpp"
#include "bundle/volumes.hpp"
#include "core/digest.hpp"
#include "core/log.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::bundle {

// Where the bytes of one blob are.
struct BlobSource {
  std::filesystem::path file;
  std::uint64_t offset = 0;
  // true: ferry checked these bytes against the digest already (a content store);
  // false: they are hashed while they are read, and a mismatch is an IntegrityError.
  bool checked = false;
  std::string origin; // what the blob came from, for messages
};

struct VolumeWriteOptions {
  std::filesystem::path output;   // NAME.tar.zst: the volumes are NAME.NNN.tar.zst beside it
  std::filesystem::path checksums; // NAME.sha256
  std::uint64_t limit = 0;        // --split: no volume is larger
  int level = 3;                  // zstd level for compressible entries
  std::int64_t mtime = 0;         // SOURCE_DATE_EPOCH
  std::string layout_marker;      // the bytes of oci-layout and index.json (listed in descriptor.layout)
  std::string index_json;
};

struct WrittenVolume {
  std::filesystem::path path;
  std::uint64_t size = 0;
  core::Digest digest;
};

struct VolumeWriteResult {
  VolumePlan plan;
  std::vector<WrittenVolume> volumes; // in volume order
  std::uint64_t pieced_blobs = 0;      // blobs cut into pieces
};

// Signs the exact bytes of ferry.json; returns the text of ferry.json.sig.
using Signer = std::function<std::string(std::string_view descriptor_json)>;

// Writes `descriptor` (blob table in stream order; the rest final) as a split bundle:
// plan_volumes (UsageError when `limit` is too small), then the blobs that go in pieces
// are read once to hash each piece (and, unless checked, the whole blob), then ferry.json
// is signed and each volume written: ferry.json, ferry.json.sig, volume.json, oci-layout,
// index.json, then volume_entries() in order. Each piece is hashed again as it is
// written and must match (its source must not change while packing). `sources` has
// every blob of the table. `written(digest)` is called once a blob's last byte is in a
// volume (the caller may drop its copy). Volumes are written into a temporary directory
// beside the output, each fsynced, and renamed to NAME.NNN.tar.zst only once every one is
// complete; then NAME.sha256 (sha256sum format, one line per volume) is written, and
// NAME.NNN.tar.zst files numbered beyond the new count (left by an earlier pack of the
// same name) are removed. A volume larger than `limit` is an internal error (the plan
// is a worst case). `descriptor` holds the placements afterwards.
VolumeWriteResult write_volumes(BundleDescriptor& descriptor, const std::map<core::Digest, BlobSource>& sources,
                                const VolumeWriteOptions& options, const Signer& sign,
                                const std::function<void(const core::Digest&)>& written, core::LogSink& log,
                                core::ProgressSink& progress);

} // namespace ferry::bundle
