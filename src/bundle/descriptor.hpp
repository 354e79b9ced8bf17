// ferry.json: the signed bundle descriptor (DESIGN §2) and its canonical JSON form.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/digest.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::bundle {

inline constexpr int k_format_version = 1;
inline constexpr std::string_view k_descriptor_media_type = "application/vnd.ferry.bundle.v1+json";
inline constexpr std::string_view k_descriptor_path = "ferry.json";
inline constexpr std::string_view k_signature_path = "ferry.json.sig";
inline constexpr std::string_view k_layout_marker_path = "oci-layout";
inline constexpr std::string_view k_index_path = "index.json";
// Split bundles: the third entry of every volume, after ferry.json.sig (bundle/volumes.hpp).
inline constexpr std::string_view k_volume_path = "volume.json";
// ferry.json and its signature are read into memory: these bound what a reader accepts.
inline constexpr std::size_t k_max_descriptor_size = 64u << 20;
inline constexpr std::size_t k_max_signature_size = 16u << 10;
// Volume numbers have three digits (NAME.000.tar.zst … NAME.999.tar.zst).
inline constexpr std::uint32_t k_max_volumes = 1000;
// Manifests and configs are parsed in memory; registries refuse larger ones too.
inline constexpr std::uint64_t k_max_metadata_blob_size = 16u << 20;

// One piece of a blob too large for a volume (split bundles): the tar entry
// pieces/sha256/<blob hex>/<NNN> of `volume`, NNN counting the blob's pieces from 000.
struct PieceRecord {
  std::uint32_t volume = 0;
  std::uint64_t size = 0;
  core::Digest digest; // of the piece's bytes
};

// A blob a differential bundle leaves out because its base says the isolated side
// already has it (DESIGN §2 "Differential"): listed in the table, absent from the stream.
struct OmittedRecord {
  std::vector<std::uint32_t> bases;      // indexes into BundleDescriptor::bases that hold it, ascending
  std::vector<std::string> repositories; // where they saw it, as paths under the target's prefix
};

// One entry of the blob table: every blob of the bundle's images, charts and files
// exactly once (a differential bundle's omitted blobs included, marked `omitted`).
struct BlobRecord {
  core::Digest digest;
  std::uint64_t size = 0;
  std::string media_type;
  // Where the blob is in a split bundle (BundleDescriptor::volumes); exactly one of the
  // three is set there, none in a one-file bundle. (Default member initialisers keep
  // positional aggregate initialisation warning-free.)
  std::optional<std::uint32_t> volume = std::nullopt; // the whole blob, in this volume
  bool all_volumes = false;                            // in every volume (manifests, chart archives)
  std::vector<PieceRecord> pieces = {};                // in consecutive volumes, in order
  // Set when the blob is not in the stream (a differential bundle); it then has no
  // placement in any volume. Only configs and layers of images are ever omitted.
  std::optional<OmittedRecord> omitted = std::nullopt;

  // Whether volume `k` holds the blob or one of its pieces (true for every k in a
  // one-file bundle; false for an omitted blob).
  bool in_volume(std::uint32_t k) const;
};

// What a differential bundle was packed against (`pack --base`).
struct BaseRecord {
  std::string kind;     // "receipt", "lock" or "bundle"
  std::string file;     // the base's file name as given (no directory), for messages
  core::Digest digest;  // receipt and lock: sha256 of the file; bundle: of its ferry.json
  std::string name = {};     // lock and bundle: the bundle's name
  std::string version = {};  // and version
  std::string registry = {}; // receipt: the registry inventoried (HOST[:PORT][/PREFIX])
  std::string created = {};  // receipt and bundle: when it was written
  std::string signer = {};   // the key id that verified its signature; empty when not checked
};

// "receipt receipt.json of registry.local/mirror (2025-06-01T00:00:00Z)",
// "bundle aistor 2025.05.30 (old.tar.zst)", "lock aistor 2025.05.30 (aistor.lock.json)".
std::string base_text(const BaseRecord& base);

// A split bundle: NAME.000.tar.zst … NAME.<count-1>.tar.zst, none larger than `limit`.
struct VolumesRecord {
  std::uint32_t count = 0;
  std::uint64_t limit = 0;
};

// A non-blob entry of the layout (oci-layout, index.json), checked like a blob.
struct LayoutEntryRecord {
  std::string path;
  core::Digest digest;
  std::uint64_t size = 0;
};

// How pack found an image a chart needs (`images: auto`, values/discover.hpp).
struct DiscoveryRecord {
  std::string chart;   // the chart's name in the manifest
  std::string method;  // "annotation", "values" or "render"
  std::string where;   // what named it: "artifacthub.io/images of chart studio: backend",
                       // "backend.image.repository (registry/repository map)",
                       // "Deployment/studio-backend spec.template.spec.containers[backend].image"
  std::string release = {}; // values and render: the release whose values were used; empty: the chart's defaults
};

struct ImageRecord {
  std::string ref;    // the full reference it is known by (index.json ref.name)
  std::string source; // where pack took it from, as written in the manifest (a discovered image: its reference)
  core::Digest digest;                       // root in the bundle (manifest or index)
  std::optional<core::Digest> source_digest; // the source's root when ferry rewrote it
  std::string media_type;
  std::vector<std::string> platforms;
  std::uint64_t size = 0; // all of its blobs, shared ones included
  // How `images: auto` found it; empty for images only the manifest lists. Optional in
  // ferry.json (`foundBy`; bundles of earlier ferry versions lack it).
  std::vector<DiscoveryRecord> found_by = {};
};

// A chart dependency that pack fetched and vendored into the chart's charts/.
struct ChartDependencyRecord {
  std::string name;
  std::string version;
  std::string source;  // the .tgz URL, "oci://HOST/PATH/NAME:TAG" or the local path it came from
  core::Digest digest; // of its archive as fetched (the bytes now in charts/)
};

struct ChartRecord {
  std::string name;
  std::string version;
  std::string source;   // repo URL or local path, as written
  std::string ref;      // index.json ref.name ("charts/NAME:VERSION")
  core::Digest digest;  // the Helm OCI manifest
  core::Digest archive_digest; // the chart .tgz layer
  std::uint64_t size = 0;
  std::vector<std::string> images; // images the chart needs, as declared
  // Origin; optional in ferry.json (bundles of earlier ferry versions lack them).
  // (Default member initialisers keep positional aggregate initialisation warning-free.)
  std::string source_url = {}; // the .tgz URL or "oci://HOST/PATH/NAME:TAG" fetched; empty for local charts
  std::optional<core::Digest> upstream_digest = std::nullopt; // the archive as fetched or read, before any vendoring
  std::vector<ChartDependencyRecord> dependencies = {}; // vendored by pack (not those the chart carried)
};

struct FileRecord {
  std::string path;    // where it belongs ("tools/helm")
  std::string source;  // as written in the manifest
  std::string ref;     // index.json ref.name ("files/tools/helm")
  core::Digest digest; // the OCI artifact manifest
  core::Digest content_digest; // the file's bytes
  std::uint64_t size = 0;      // of the file's bytes
  unsigned mode = 0644;
};

struct SignerRecord {
  std::string key_id;    // "sha256:<hex of the public key DER>"
  std::string algorithm; // "ed25519" or "ecdsa-p256"
};

struct BundleDescriptor {
  int format_version = k_format_version;
  std::string name;
  std::string version;
  std::string created; // RFC 3339 UTC, from SOURCE_DATE_EPOCH
  std::string tool_version;
  std::optional<SignerRecord> signer;
  std::string manifest_json = "{}"; // the source manifest
  std::vector<ImageRecord> images;
  std::vector<ChartRecord> charts;
  std::vector<FileRecord> files;
  std::string releases_json = "[]";
  std::string rules_json = "[]";
  // Differential bundles: what they were packed against, in --base order; empty for a
  // full bundle (ferry.json then has no `bases`).
  std::vector<BaseRecord> bases;
  std::vector<LayoutEntryRecord> layout;
  std::vector<BlobRecord> blobs; // in stream order (omitted blobs where they would be)
  // Set for a split bundle only: ferry.json of a one-file bundle has no `volumes`.
  std::optional<VolumesRecord> volumes;

  // Sum of the sizes of the blobs in the stream: the bytes of content the bundle carries
  // (omitted blobs are not counted).
  std::uint64_t blob_bytes() const;
  // Blobs a differential bundle leaves out, and their bytes.
  std::size_t omitted_blobs() const;
  std::uint64_t omitted_bytes() const;
  bool differential() const noexcept { return !bases.empty(); }
  // Sum of the sizes of all images, charts and files counted separately: what the
  // content would take without sharing blobs.
  std::uint64_t unshared_bytes() const;
  const BlobRecord* find_blob(const core::Digest& digest) const;
};

// Canonical bytes: compact JSON, keys sorted, a trailing newline. The same descriptor
// always gives the same bytes (what the signature covers).
std::string to_json(const BundleDescriptor& descriptor);

// Parses and checks ferry.json: a formatVersion other than 1 is an IntegrityError
// saying which version was found and that a newer ferry is needed; missing or mistyped
// fields, digests that are not sha256, a blob listed twice, paths not allowed in the
// layout are IntegrityErrors naming the field. A split bundle's table must be
// consistent: every blob placed once (a volume below `count`, "all", or pieces whose
// sizes add up to the blob's, in consecutive volumes), every manifest and index in all
// volumes; placements in a bundle without `volumes` are refused too. An omitted blob
// has no placement, names at least one base by its index in `bases`, and is never a
// manifest, an index, a chart's config or archive or a file's content; `bases` without
// any omitted blob is accepted (the base had nothing this bundle needs).
BundleDescriptor parse_descriptor(std::string_view bytes);

// RFC 3339 UTC text for a Unix time ("1970-01-01T00:00:00Z").
std::string rfc3339_utc(std::int64_t seconds);

} // namespace ferry::bundle
