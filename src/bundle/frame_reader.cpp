// One zstd frame of a bundle file as a tar stream of its own.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/frame_reader.hpp"

#include "bundle/descriptor.hpp"

#include <exception>

namespace ferry::bundle {

FrameReader::FrameReader(const std::filesystem::path& file, const FrameExtent& frame, const std::string& display)
    : m_file(file), m_exact((m_file.seek(frame.offset), m_file), frame.length, "a zstd frame of " + display),
      m_tar(m_exact, display, ArchiveEnd::optional) {}

bool framed_per_entry(const std::filesystem::path& file, FrameWalker walker, const std::string& display) {
  try {
    const auto first = walker.next();
    if (!first) return false;
    FrameReader reader(file, *first, display);
    const auto entry = reader.tar().next();
    if (!entry || entry->path != k_descriptor_path) return false;
    core::NullSink discard;
    core::copy(reader.tar().body(), discard);
    return !reader.tar().next();
  } catch (const std::exception&) {
    return false;
  }
}

} // namespace ferry::bundle
