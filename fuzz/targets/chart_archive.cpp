// Fuzz target: chart archives (.tgz) as pack reads them: the archive's structure,
// Chart.yaml, requirements.yaml, Chart.lock / requirements.lock and their digest check,
// values.yaml with the subcharts' values, and the image annotations and values images
// discovery finds. The input is one of:
//   - a .tgz (it starts with gzip's magic bytes): read as it is;
//   - an uncompressed tar ("ustar" at offset 257): gzipped here, then read, so that
//     mutations reach the tar headers rather than break deflate;
//   - chart files as text: "==> PATH" lines start each file (text before the first is
//     Chart.yaml), packed by ferry's own writer as chart "app".
// SPDX-License-Identifier: Apache-2.0
#include "chart/chart_archive.hpp"
#include "chart/chart_lock.hpp"
#include "core/error.hpp"
#include "values/discover.hpp"
#include "values/rewrite.hpp"

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace ferry;

namespace {

const std::string k_display = "fuzz-chart.tgz";

std::string gzip(std::string_view bytes) {
  z_stream z{};
  // 15 + 16: a gzip header and trailer rather than zlib's.
  if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  std::string out(deflateBound(&z, bytes.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

// "==> PATH" sections as chart files.
std::vector<chart::ArchiveFile> split_files(std::string_view text) {
  std::vector<chart::ArchiveFile> files;
  std::string path = "Chart.yaml";
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t marker = text.find("==> ", start);
    while (marker != std::string_view::npos && marker != 0 && text[marker - 1] != '\n') {
      marker = text.find("==> ", marker + 1);
    }
    const std::size_t end = marker == std::string_view::npos ? text.size() : marker;
    if (end > start || path == "Chart.yaml") {
      files.push_back({.path = path, .data = std::string(text.substr(start, end - start)), .executable = false});
    }
    if (marker == std::string_view::npos) break;
    const std::size_t line_end = text.find('\n', marker);
    path = std::string(text.substr(marker + 4, line_end == std::string_view::npos ? std::string_view::npos
                                                                                   : line_end - marker - 4));
    if (line_end == std::string_view::npos) break;
    start = line_end + 1;
  }
  return files;
}

void read_chart(const std::string& tgz) {
  const chart::PackagedChart packaged = chart::read_chart_archive(tgz, k_display);
  const std::vector<chart::ArchiveFile> files = chart::read_chart_files(tgz, k_display);
  const chart::ChartMetadata meta = chart::read_chart_metadata(files, k_display);
  if (meta.name != packaged.metadata.name || meta.version != packaged.metadata.version) std::abort();
  (void)chart::lock_digest(meta.dependencies, meta.dependencies);
  (void)chart::helm2_lock_digest(meta.dependencies);
  try {
    if (const std::optional<chart::ChartLock> lock = chart::find_chart_lock(files, k_display)) {
      (void)chart::lock_in_sync(meta, *lock);
    }
  } catch (const core::Error&) {
  }
  try {
    (void)values::chart_values(tgz, k_display);
  } catch (const core::Error&) {
  }
  values::Discovery discovery;
  try {
    values::discover_from_annotations(tgz, k_display, discovery);
  } catch (const core::Error&) {
  }
  try {
    values::discover_from_values(tgz, {}, "app", k_display, discovery);
  } catch (const core::Error&) {
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  try {
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
      read_chart(std::string(input));
    } else if (size >= 262 && input.substr(257, 5) == "ustar") {
      read_chart(gzip(input));
    } else {
      std::vector<chart::ArchiveFile> files = split_files(input);
      // The text parsers alone first: a file the writer below refuses still gets parsed.
      try {
        (void)chart::parse_chart_metadata(files.front().data, "Chart.yaml");
      } catch (const core::Error&) {
      }
      for (const auto& file : files) {
        if (file.path == "Chart.lock" || file.path == "requirements.lock") {
          try {
            (void)chart::parse_chart_lock(file.data, file.path, file.path);
          } catch (const core::Error&) {
          }
        }
      }
      read_chart(chart::write_chart_archive("app", std::move(files), 0, k_display));
    }
  } catch (const core::Error&) {
  }
  return 0;
}
