// The disk-space pre-flight of pack: an upper bound of the bundle's size, and free space
// checked against what pack will write before it downloads or writes anything.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/fs.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace ferry {

// The most bytes one bundle entry of `size` bytes can take in the bundle: its tar headers
// (a pax header included), data and padding to 512 bytes, as one zstd frame at zstd's
// worst case (ZSTD_compressBound, which incompressible data reaches: zstd then stores
// raw blocks) plus the frame's checksum. See bundle/tar_writer.hpp for the framing.
std::uint64_t bundle_entry_bound(std::uint64_t size);

// The most bytes a bundle whose entries have these sizes can take: every entry, then the
// end-of-archive frame.
std::uint64_t bundle_size_bound(const std::vector<std::uint64_t>& entry_sizes);

// Where pack downloads registry blobs.
enum class DownloadStore {
  cache, // the content cache: everything downloaded stays
  work,  // the work directory: each blob is removed once written, and downloads run at
         // most a window ahead of the writer (PullOptions::download_ahead)
};

// What pack is about to write, for the pre-flight.
struct PackSpace {
  std::filesystem::path output_dir;       // the bundle and NAME.sha256 go here
  std::vector<std::uint64_t> entry_sizes; // every entry of the bundle (ferry.json, ..., each blob)
  std::filesystem::path download_dir;     // the cache or the work directory
  DownloadStore download_store = DownloadStore::work;
  std::size_t download_blobs = 0;     // blobs still to download
  std::uint64_t download_bytes = 0;   // their bytes
  std::uint64_t largest_download = 0; // bytes of the largest of them
  std::uint64_t window = 0;           // DownloadStore::work: how far downloads may run ahead
};

// Bytes to be written in one directory.
struct SpaceNeed {
  std::filesystem::path dir;
  std::string what;   // "the bundle", "the blobs to download into the cache"
  std::string remedy; // how to put it elsewhere: "write the bundle elsewhere with -o"
  std::uint64_t bytes = 0;
};

// The bundle (bundle_size_bound, NAME.sha256, a block of rounding) in output_dir; the
// downloads (each rounded up to a block; in the work directory only the window plus the
// largest blob can be there at once) in download_dir. Nothing for downloads when there
// are none.
std::vector<SpaceNeed> pack_space_needs(const PackSpace& space);

// Where the free space of a directory comes from: core::file_system_space, or a stand-in.
using SpaceProbe = std::function<core::FileSystemSpace(const std::filesystem::path&)>;

// Adds up the needs of each file system (needs whose directories have the same device
// count against one free space) and throws core::Error (exit 1) when one has less free
// than they need: the message gives what each needs and where, the total and the free
// bytes; the hint how much to free, or where else to write. Returns when all fit.
void check_free_space(const std::vector<SpaceNeed>& needs, const SpaceProbe& probe);

// "12.3 MiB (12894011 bytes)": a size for messages, rounded for reading and exact.
std::string size_text(std::uint64_t bytes);

} // namespace ferry
