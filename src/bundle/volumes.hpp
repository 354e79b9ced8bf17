// Split bundles (DESIGN §2 "Volumes", docs/volumes.md): --split sizes, volume and piece
// entry names, volume.json, the worst-case size of an entry, and the volume plan.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/descriptor.hpp"
#include "core/digest.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::bundle {

// --split SIZE: a number of bytes with an optional K, M, G or T suffix (powers of 1024;
// "KiB", "MB"… are read the same way), or a preset: fat32 (4 GiB - 1: FAT32's largest
// file), dvd (4,700,000,000), dvd-dl (8,500,000,000), bd (25,000,000,000), bd-dl
// (50,000,000,000). UsageError naming `text` for anything else, 0, or an overflow.
std::uint64_t parse_split_size(std::string_view text);

// "blobs/sha256/<hex>" and "pieces/sha256/<hex>/<NNN>" (NNN: the piece's number, from 000).
std::string blob_entry_path(const core::Digest& digest);
std::string piece_entry_path(const core::Digest& blob, std::size_t index);

// NAME.NNN.tar.zst beside `output` (NAME.tar.zst, or any other name: NAME.NNN.tar.zst
// is then that name plus .NNN.tar.zst).
std::filesystem::path volume_path(const std::filesystem::path& output, std::uint32_t volume);

// For messages about a volume set of which `given` is one file: the file name volume
// `volume` has beside it, when `given` is named NAME.NNN.tar.zst; else "volume K".
std::string volume_display(const std::filesystem::path& given, std::uint32_t volume);

// volume.json, the third entry of each volume: which bundle (sha256 of its ferry.json)
// and which volume of how many. Not signed: a reader checks the volume's entries against
// what the signed ferry.json assigns to `volume`.
struct VolumeLabel {
  core::Digest bundle;
  std::uint32_t volume = 0;
  std::uint32_t count = 0;
};
inline constexpr std::size_t k_max_volume_label_size = 4096;

// Canonical bytes: compact JSON, keys sorted, a trailing newline.
std::string to_json(const VolumeLabel& label);
// IntegrityError naming the field for anything that is not a volume.json (volume >= count too).
VolumeLabel parse_volume_label(std::string_view bytes);

// The most bytes one entry of `size` data bytes at `path` can take in a bundle file: its
// tar header (and a pax header when tar needs one), data and padding, compressed as one
// zstd frame (ZSTD_compressBound, plus the frame header and checksum). TarWriter never
// writes more; tests hold it to that.
std::uint64_t entry_bound(std::string_view path, std::uint64_t size);
// The same for the end-of-archive frame.
std::uint64_t end_of_archive_bound();
// The largest data size whose entry_bound at `path` is at most `room`; 0 when none fits.
std::uint64_t largest_fitting(std::string_view path, std::uint64_t room);

// A piece is never started in less room than this: the blob then starts in the next
// volume instead of leaving a sliver behind.
inline constexpr std::uint64_t k_min_piece_size = 64u << 10;
// ferry.json.sig is base64 of at most 72 bytes (a DER ECDSA P-256 signature).
inline constexpr std::uint64_t k_max_signature_text = 128;

// What a volume set looks like at worst, for `pack` to report and tests to check.
struct VolumePlan {
  std::uint32_t count = 0;
  std::uint64_t fixed_bytes = 0;         // what every volume repeats: head, layout, manifests, end
  std::vector<std::uint64_t> worst_case; // per volume: the most bytes it can take (<= limit)
  std::uint64_t descriptor_budget = 0;   // ferry.json was planned to be at most this large
};

// Places the blobs of `descriptor` (its blob table, in stream order, omitted blobs left
// out; every other field final) in volumes of at most `limit` bytes and records it in the descriptor:
// `volumes`, and each blob's placement. Manifests, indexes and chart archives (what
// `ferry values`/`check`/`upgrade` read) go in every volume; the others first-fit in stream
// order, by their entry_bound; a blob whose bound exceeds what an empty volume holds is
// cut into pieces in consecutive volumes (starting in the last volume opened), each as
// large as its volume allows. ferry.json's own size depends on the plan: planning
// repeats until the ferry.json it gives fits the size it was planned with. Piece digests
// are left as the empty-content digest (same length): the caller hashes the pieces and
// fills them in. UsageError when `limit` cannot hold what every volume repeats plus a
// piece of k_min_piece_size, giving the smallest --split that can, or when the plan needs
// more than k_max_volumes volumes or a ferry.json above k_max_descriptor_size.
VolumePlan plan_volumes(BundleDescriptor& descriptor, std::uint64_t limit);

// The entries volume `k` holds after its head (ferry.json, ferry.json.sig, volume.json),
// in stream order: oci-layout, index.json, then every blob table entry it holds (whole
// blobs as blobs/sha256/<hex>, pieces as pieces/sha256/<hex>/<NNN>). Omitted blobs (a
// differential bundle's) are in no volume.
struct VolumeEntry {
  std::string path;
  core::Digest digest;    // of the entry's bytes (a piece's own digest)
  std::uint64_t size = 0; // of the entry's bytes
  std::string media_type; // the blob's; empty for oci-layout and index.json
  const BlobRecord* blob = nullptr; // null for oci-layout and index.json
  std::size_t piece = 0;            // for pieces: which one
  std::uint64_t offset = 0;         // for pieces: where it starts in the blob
  bool is_piece = false;
};
std::vector<VolumeEntry> volume_entries(const BundleDescriptor& descriptor, std::uint32_t k);

} // namespace ferry::bundle
