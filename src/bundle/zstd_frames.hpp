// Finding where the zstd frames of a file begin and end, without decompressing them.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ferry::bundle {

// One zstd frame: its first byte and its length in the file, checksum included.
struct FrameExtent {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

// Walks the frames of a file front to back by reading only frame and block headers
// (RFC 8878 §3.1): a few bytes per 128 KiB block. A ferry bundle holds one frame per
// tar entry, so the walk tells where each entry starts. `fd` is read with pread and
// not owned. Errors (not a zstd frame, a reserved block type, a frame running past the
// end of the file) are IntegrityErrors naming `display` and the offset.
class FrameWalker {
public:
  FrameWalker(int fd, std::uint64_t file_size, std::string display)
      : m_fd(fd), m_size(file_size), m_display(std::move(display)) {}

  // The next frame; nullopt at the end of the file. Skippable frames are an error:
  // ferry never writes them, and nothing in one would be verified.
  std::optional<FrameExtent> next();

  std::uint64_t offset() const noexcept { return m_offset; }

private:
  void read_at(std::uint64_t offset, unsigned char* data, std::size_t size) const;
  [[noreturn]] void fail(const std::string& what, std::uint64_t at) const;

  int m_fd;
  std::uint64_t m_size;
  std::string m_display;
  std::uint64_t m_offset = 0;
};

} // namespace ferry::bundle
