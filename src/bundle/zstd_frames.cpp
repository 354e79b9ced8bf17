// zstd frame walking from the format's frame and block headers (RFC 8878 §3.1.1).
// SPDX-License-Identifier: Apache-2.0
#include "bundle/zstd_frames.hpp"

#include "core/error.hpp"

#include <cerrno>
#include <unistd.h>

namespace ferry::bundle {

namespace {

constexpr std::uint32_t k_frame_magic = 0xFD2FB528u;
constexpr std::uint32_t k_skippable_magic_mask = 0xFFFFFFF0u;
constexpr std::uint32_t k_skippable_magic = 0x184D2A50u;
constexpr std::uint64_t k_max_block_size = 128u << 10; // Block_Maximum_Size

std::uint32_t little_endian(const unsigned char* p, std::size_t n) {
  std::uint32_t v = 0;
  for (std::size_t i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

} // namespace

void FrameWalker::fail(const std::string& what, std::uint64_t at) const {
  throw core::IntegrityError("bundle " + m_display + " is not a well-formed zstd stream at byte " + std::to_string(at) +
                                 ": " + what,
                             "check the copy with `sha256sum -c` on its .sha256 file, then copy the bundle again from "
                             "the original media");
}

void FrameWalker::read_at(std::uint64_t offset, unsigned char* data, std::size_t size) const {
  if (offset > m_size || size > m_size - offset) fail("the file ends inside a frame (truncated)", offset);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(m_fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      throw core::Error(core::ExitCode::failure, "cannot read " + m_display + ": " + core::errno_text(err));
    }
    if (n == 0) fail("the file ends inside a frame (truncated)", offset + done);
    done += static_cast<std::size_t>(n);
  }
}

std::optional<FrameExtent> FrameWalker::next() {
  if (m_offset == m_size) return std::nullopt;
  const std::uint64_t start = m_offset;
  unsigned char header[18]; // magic, descriptor, window, dictionary id (4), content size (8)
  read_at(start, header, 5);
  const std::uint32_t magic = little_endian(header, 4);
  if ((magic & k_skippable_magic_mask) == k_skippable_magic) fail("a skippable frame (ferry never writes one)", start);
  if (magic != k_frame_magic) fail("no zstd frame starts here", start);
  const unsigned descriptor = header[4];
  if (descriptor & 0x08) fail("the frame header's reserved bit is set", start + 4);
  const bool single_segment = (descriptor & 0x20) != 0;
  const bool checksum = (descriptor & 0x04) != 0;
  static constexpr unsigned k_dictionary_id_bytes[4] = {0, 1, 2, 4};
  static constexpr unsigned k_content_size_bytes[4] = {0, 2, 4, 8};
  unsigned content_size_bytes = k_content_size_bytes[descriptor >> 6];
  if (content_size_bytes == 0 && single_segment) content_size_bytes = 1;
  const std::uint64_t header_size =
      5 + (single_segment ? 0 : 1) + k_dictionary_id_bytes[descriptor & 0x03] + content_size_bytes;
  std::uint64_t at = start + header_size;
  for (;;) {
    unsigned char block[3];
    read_at(at, block, 3);
    const std::uint32_t value = little_endian(block, 3);
    const bool last = (value & 1u) != 0;
    const unsigned type = (value >> 1) & 3u;
    const std::uint64_t size = value >> 3;
    if (size > k_max_block_size) fail("a block larger than zstd allows", at);
    at += 3;
    switch (type) {
    case 0: at += size; break; // raw
    case 1: at += 1; break;    // RLE: one byte, repeated
    case 2: at += size; break; // compressed
    default: fail("a block of the reserved type", at - 3);
    }
    if (at > m_size) fail("the file ends inside a frame (truncated)", m_size);
    if (last) break;
  }
  if (checksum) at += 4;
  if (at > m_size) fail("the file ends inside a frame's checksum (truncated)", m_size);
  m_offset = at;
  return FrameExtent{start, at - start};
}

} // namespace ferry::bundle
