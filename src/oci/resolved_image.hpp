// An image resolved from a source: its root, its platforms and where each blob's bytes are.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/digest.hpp"
#include "core/log.hpp"
#include "oci/blob_store.hpp"
#include "oci/descriptor.hpp"
#include "oci/manifest.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ferry::oci {

enum class Checked { no, yes };

// Where the bytes of one blob are: `descriptor.size` bytes of `file` starting at
// `offset`. Checked::yes when ferry itself wrote `file` after checking the digest (its
// BlobStore); Checked::no when the bytes are the source's own and must be hashed while
// they are copied.
struct BlobRef {
  Descriptor descriptor;
  std::filesystem::path file;
  std::uint64_t offset = 0;
  Checked checked = Checked::no;
};

struct ResolvedImage {
  // The name the source records for the image (OCI ref.name annotation, docker-archive
  // RepoTag); empty when it records none.
  std::string ref_name;
  // The root that goes into the bundle's index.json: an image manifest or an index.
  Descriptor root;
  // The source's own root digest when ferry wrote a different root (an index narrowed
  // to the platform filter, a manifest synthesised for a classic docker-save archive).
  std::optional<core::Digest> source_digest;
  // "os/arch[/variant]" of every image manifest carried, in index order.
  std::vector<std::string> platforms;
  // Every blob of the image exactly once (root, child manifests, configs, layers), in
  // walk order: a parent before its children.
  std::vector<BlobRef> blobs;
};

// Random access to the blobs of one source, for walk_image.
class BlobAccess {
public:
  virtual ~BlobAccess() = default;
  // The whole (small) blob, checked against digest and size; IntegrityError naming
  // `what` otherwise; a blob the source lacks is an IntegrityError too.
  virtual std::string read_blob(const Descriptor& descriptor, std::string_view what) = 0;
  // Where the blob's bytes are, without reading them. Missing blob: IntegrityError.
  virtual BlobRef locate(const Descriptor& descriptor) = 0;
};

// Walks the manifest graph from `root` (index -> manifests -> config + layers; nested
// indexes too), narrowing indexes to `filter`: children whose platform does not match
// are dropped, and if any were, a new index with the kept children (other fields
// unchanged) is stored in `store` and becomes the root. No matching child at all is a
// UsageError naming `what`, the filter and the platforms the image has. A single image
// manifest whose config platform does not match is kept, with a warning to `log`.
// `what` names the image in messages ("oci:./layout:app").
ResolvedImage walk_image(BlobAccess& access, const Descriptor& root, const PlatformFilter& filter, BlobStore& store,
                         std::string_view what, core::LogSink& log);

} // namespace ferry::oci
