// Deterministic pax tar output, each entry its own zstd frame.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/io.hpp"

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

struct archive;
struct ZSTD_CCtx_s;

namespace ferry::bundle {

// normal: the configured level (JSON, charts, uncompressed layers); fastest: zstd's
// fastest setting, for bytes that are already compressed (zstd then stores
// incompressible blocks raw).
enum class Compression { normal, fastest };

struct EntryHeader {
  std::string path; // relative, '/'-separated
  std::uint64_t size = 0;
  unsigned mode = 0644;
  Compression compression = Compression::normal;
};

struct TarWriterOptions {
  int level = 3;          // zstd level for Compression::normal (1..19)
  std::int64_t mtime = 0; // SOURCE_DATE_EPOCH for every entry
};

// Writes a POSIX (pax) tar stream compressed with zstd to `out`. Every entry (its
// header, data and padding) is one zstd frame with a checksum, the end-of-archive
// blocks a last one, so `tar --zstd -xf` and `zstd -d` read it as usual. Bytes are
// deterministic: uid/gid 0, no user/group names, mtime from the options, the given
// mode, regular files only, entries in the order added. Not copyable or movable
// (libarchive callbacks point at this object).
class TarWriter {
public:
  TarWriter(core::Sink& out, TarWriterOptions options);
  TarWriter(const TarWriter&) = delete;
  TarWriter(TarWriter&&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;
  TarWriter& operator=(TarWriter&&) = delete;
  ~TarWriter(); // an unfinished stream is abandoned, not completed

  // Adds one regular file. `body` must give exactly header.size bytes: fewer or more is
  // an IntegrityError naming header.path (the stream is unusable afterwards). The path
  // must be non-empty printable ASCII (an Error otherwise, before anything is written):
  // that keeps the bytes independent of the process locale.
  void add(const EntryHeader& header, core::Source& body);
  void add(const EntryHeader& header, std::string_view bytes);
  // Writes the end-of-archive blocks and flushes; throws if anything fails.
  void finish();

  // Compressed bytes handed to `out` so far.
  std::uint64_t bytes_out() const noexcept { return m_bytes_out; }

  // Called by the libarchive write callback: uncompressed tar bytes. Never throws: a
  // failure is kept and rethrown once libarchive has returned.
  void on_tar_bytes(const char* data, std::size_t size) noexcept;

private:
  void end_frame();
  void compress(const char* data, std::size_t size, bool end);
  void flush_output();
  void rethrow_callback_error();
  [[noreturn]] void fail(const std::string& doing);

  struct ArchiveFree {
    void operator()(archive* a) const noexcept;
  };
  struct ZstdFree {
    void operator()(ZSTD_CCtx_s* c) const noexcept;
  };
  core::Sink& m_out;
  TarWriterOptions m_options;
  std::unique_ptr<ZSTD_CCtx_s, ZstdFree> m_zstd;
  std::unique_ptr<archive, ArchiveFree> m_archive;
  std::string m_out_buffer;     // fixed size; m_out_used bytes of it are pending
  std::size_t m_out_used = 0;
  std::exception_ptr m_callback_error; // thrown inside on_tar_bytes, rethrown outside libarchive
  bool m_frame_open = false;
  bool m_finished = false;
  bool m_abandoned = false; // being destroyed: libarchive's closing writes are discarded
  std::uint64_t m_bytes_out = 0;
};

} // namespace ferry::bundle
