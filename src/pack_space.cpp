// Disk-space pre-flight of pack: the bundle's worst-case size and the free-space check.
// SPDX-License-Identifier: Apache-2.0
#include "pack_space.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <map>

namespace ferry {

namespace {

constexpr std::uint64_t k_tar_block = 512;
// A ustar header, and before it (for sizes of 8 GiB and more, or long paths) a pax header
// with one block of records: the most TarWriter writes before an entry's data.
constexpr std::uint64_t k_tar_headers = 3 * k_tar_block;
// libarchive's end of archive: two zero blocks (no blocking: TarWriter sets 0 bytes per block).
constexpr std::uint64_t k_tar_end = 2 * k_tar_block;
// TarWriter turns zstd's frame checksum on (ZSTD_c_checksumFlag).
constexpr std::uint64_t k_frame_checksum = 4;
// A file takes whole blocks of its file system; 4 KiB is the common block (and page) size.
constexpr std::uint64_t k_fs_block = 4096;
// NAME.sha256: one line, well within a block.
constexpr std::uint64_t k_checksum_file = k_fs_block;

// zstd's ZSTD_COMPRESSBOUND (zstd.h, unchanged since 1.0): the most a single frame of
// `size` bytes can become when nothing is flushed mid-frame, as in TarWriter. Spelled out
// here because the pipelines do not link zstd themselves.
std::uint64_t zstd_compress_bound(std::uint64_t size) {
  constexpr std::uint64_t k_block_max = 128u << 10;
  return size + (size >> 8) + (size < k_block_max ? (k_block_max - size) >> 11 : 0);
}

std::uint64_t round_up(std::uint64_t n, std::uint64_t block) { return (n + block - 1) / block * block; }

} // namespace

std::uint64_t bundle_entry_bound(std::uint64_t size) {
  return zstd_compress_bound(k_tar_headers + round_up(size, k_tar_block)) + k_frame_checksum;
}

std::uint64_t bundle_size_bound(const std::vector<std::uint64_t>& entry_sizes) {
  std::uint64_t total = zstd_compress_bound(k_tar_end) + k_frame_checksum;
  for (const std::uint64_t size : entry_sizes) total += bundle_entry_bound(size);
  return total;
}

std::vector<SpaceNeed> pack_space_needs(const PackSpace& space) {
  std::vector<SpaceNeed> needs;
  needs.push_back(SpaceNeed{space.output_dir, "the bundle", "write the bundle elsewhere with -o",
                            round_up(bundle_size_bound(space.entry_sizes), k_fs_block) + k_checksum_file});
  if (space.download_blobs == 0) return needs;
  const std::uint64_t rounding = space.download_blobs * k_fs_block;
  if (space.download_store == DownloadStore::cache) {
    needs.push_back(SpaceNeed{space.download_dir, "the blobs to download into the cache",
                              "keep the cache elsewhere with --cache DIR (or pack with --no-cache)",
                              space.download_bytes + rounding});
  } else {
    // A download starts only while it begins less than the window ahead of the blob being
    // written, and each blob is removed once written (ImagePuller::start).
    const std::uint64_t at_once = std::min(space.download_bytes, space.window + space.largest_download);
    needs.push_back(SpaceNeed{space.download_dir, "the blobs downloading at once", "write the bundle elsewhere with -o",
                              at_once + rounding});
  }
  return needs;
}

namespace {

// "12.3 MiB", or "512 bytes" below a KiB.
std::string rounded(std::uint64_t bytes) {
  static constexpr const char* k_units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " bytes";
  double value = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(k_units)) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %s", value, k_units[unit]);
  return text;
}

} // namespace

std::string size_text(std::uint64_t bytes) {
  if (bytes < 1024) return rounded(bytes);
  return rounded(bytes) + " (" + std::to_string(bytes) + " bytes)";
}

void check_free_space(const std::vector<SpaceNeed>& needs, const SpaceProbe& probe) {
  struct FileSystem {
    std::uint64_t available = 0;
    std::uint64_t needed = 0;
    std::vector<const SpaceNeed*> needs;
  };
  std::map<std::uint64_t, FileSystem> file_systems; // by device
  std::vector<std::uint64_t> order;                 // devices in the order of `needs`
  for (const SpaceNeed& need : needs) {
    const core::FileSystemSpace space = probe(need.dir);
    auto [it, inserted] = file_systems.try_emplace(space.device);
    if (inserted) {
      it->second.available = space.available;
      order.push_back(space.device);
    }
    it->second.needed += need.bytes;
    it->second.needs.push_back(&need);
  }
  std::string message;
  std::string hint;
  std::vector<std::string> remedies;
  for (const std::uint64_t device : order) {
    const FileSystem& fs = file_systems.at(device);
    if (fs.needed <= fs.available) continue;
    const SpaceNeed& first = *fs.needs.front();
    std::string text;
    if (fs.needs.size() == 1) {
      text = "not enough free space in " + core::display(first.dir) + " for " + first.what + ": up to " +
             size_text(fs.needed) + " needed, " + size_text(fs.available) + " free";
    } else {
      std::string dirs;
      std::string whats;
      for (std::size_t i = 0; i < fs.needs.size(); ++i) {
        const SpaceNeed& n = *fs.needs[i];
        const std::string separator = i == 0 ? "" : i + 1 == fs.needs.size() ? " and " : ", ";
        dirs += separator + core::display(n.dir);
        whats += separator + n.what + " (up to " + rounded(n.bytes) + ")";
      }
      text = "not enough free space on the file system of " + dirs + ": up to " + size_text(fs.needed) +
             " needed for " + whats + ", " + size_text(fs.available) + " free";
    }
    message += (message.empty() ? "" : "; ") + text;
    hint += (hint.empty() ? "free " : ", and ") + size_text(fs.needed - fs.available) + " on the file system of " +
            core::display(first.dir);
    for (const SpaceNeed* n : fs.needs) {
      if (std::find(remedies.begin(), remedies.end(), n->remedy) == remedies.end()) remedies.push_back(n->remedy);
    }
  }
  if (message.empty()) return;
  for (const std::string& remedy : remedies) hint += ", or " + remedy;
  throw core::Error(core::ExitCode::failure, message, hint);
}

} // namespace ferry
