// Reading one zstd frame of a bundle file on its own: ferry writes one frame per tar
// entry, so any entry can be read without the ones before it.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "bundle/tar_reader.hpp"
#include "bundle/zstd_frames.hpp"
#include "core/fs.hpp"
#include "core/io.hpp"

#include <filesystem>
#include <string>

namespace ferry::bundle {

// The tar entries inside `frame` of `file` (a stop at an entry boundary is their end).
class FrameReader {
public:
  FrameReader(const std::filesystem::path& file, const FrameExtent& frame, const std::string& display);
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;
  TarReader& tar() { return m_tar; }

private:
  core::FileSource m_file;
  core::ExactSource m_exact;
  TarReader m_tar;
};

// True when the first frame of `file` (the walker's next) holds ferry.json and nothing
// else: then ferry wrote it one frame per entry. Any failure only means "no: read it
// front to back".
bool framed_per_entry(const std::filesystem::path& file, FrameWalker walker, const std::string& display);

} // namespace ferry::bundle
