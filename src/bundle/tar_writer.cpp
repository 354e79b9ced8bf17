// Deterministic pax tar written by libarchive, compressed here with zstd one frame per entry.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/tar_writer.hpp"

#include "core/c_handle.hpp"
#include "core/error.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <zstd.h>

#include <algorithm>
#include <ctime>
#include <limits>
#include <new>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace ferry::bundle {

using core::Error;
using core::ExitCode;
using core::IntegrityError;

namespace {

using ArchiveEntry = std::unique_ptr<archive_entry, core::CDeleter<archive_entry_free>>;

// Compression::fastest. Measured with zstd 1.5.4 on 1 MiB chunks, checksums on, on a
// loaded 2-core machine: on random bytes levels 1, -1 and -3 all store raw blocks (the
// same output size, ~2.5 GB/s each); on a real gzip stream level 1 ran at 1.7 GB/s and
// saved 0.6 %, level -1 at 2.2 GB/s saving 0.24 %, level -3 was no faster than -1 and
// saved less. So -1: the fastest level that still finds the odd match in a gzip layer.
constexpr int k_fastest_level = -1;

// The range TarWriterOptions documents; zstd's 20..22 ("ultra") need far more memory
// on the reading side for no gain on layers.
constexpr int k_min_level = 1;
constexpr int k_max_level = 19;

la_ssize_t write_callback(archive*, void* client_data, const void* buffer, size_t length) {
  static_cast<TarWriter*>(client_data)->on_tar_bytes(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

std::string archive_message(archive* a) {
  const char* text = archive_error_string(a);
  return text ? text : "libarchive reported no error text";
}

void check_zstd(std::size_t result, const char* doing) {
  if (ZSTD_isError(result)) {
    throw Error(ExitCode::failure, std::string("zstd: ") + doing + ": " + ZSTD_getErrorName(result));
  }
}

} // namespace

void TarWriter::ArchiveFree::operator()(archive* a) const noexcept { archive_write_free(a); }

void TarWriter::ZstdFree::operator()(ZSTD_CCtx_s* c) const noexcept { ZSTD_freeCCtx(c); }

TarWriter::TarWriter(core::Sink& out, TarWriterOptions options)
    : m_out(out), m_options(options), m_zstd(ZSTD_createCCtx()), m_archive(archive_write_new()) {
  if (m_options.level < k_min_level || m_options.level > k_max_level) {
    throw core::UsageError("zstd level " + std::to_string(m_options.level) + " is out of range (" +
                           std::to_string(k_min_level) + ".." + std::to_string(k_max_level) + ")");
  }
  if (!m_zstd) throw Error(ExitCode::failure, "cannot create a zstd compression context");
  if (!m_archive) throw Error(ExitCode::failure, "cannot create a libarchive writer");

  check_zstd(ZSTD_CCtx_setParameter(m_zstd.get(), ZSTD_c_checksumFlag, 1), "enabling frame checksums");
  // Single-threaded: zstd's output is then a function of the input and level alone.
  check_zstd(ZSTD_CCtx_setParameter(m_zstd.get(), ZSTD_c_nbWorkers, 0), "disabling worker threads");
  m_out_buffer.resize(core::k_copy_buffer_size);

  archive* a = m_archive.get();
  // "restricted pax": plain ustar headers, with a pax extended header only for what
  // ustar cannot hold (paths over 100/155+100 bytes, sizes of 8 GiB and more).
  if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK) fail("selecting the pax format");
  if (archive_write_add_filter_none(a) != ARCHIVE_OK) fail("selecting no compression filter");
  // Block size 0: libarchive hands every piece straight to the callback instead of
  // collecting 10240-byte blocks (archive_write.c, "no write delay"), and pads nothing
  // beyond tar's 512-byte records. That is what lets a zstd frame end exactly where an
  // entry ends.
  if (archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK) fail("disabling output blocking");
  if (archive_write_open2(a, this, nullptr, write_callback, nullptr, nullptr) != ARCHIVE_OK) {
    fail("opening the tar stream");
  }
}

TarWriter::~TarWriter() {
  // archive_write_free() closes an unfinished archive, writing the padding and the
  // end-of-archive blocks into our callback: those are discarded. (Marking the archive
  // failed with archive_write_fail() instead would skip that, but libarchive 3.6 then
  // leaks the state of its output filter.)
  m_abandoned = true;
  m_archive.reset();
}

void TarWriter::on_tar_bytes(const char* data, std::size_t size) noexcept {
  // After a failure, or once the writer is abandoned, the rest is discarded.
  if (m_callback_error || m_abandoned || size == 0) return;
  try {
    m_frame_open = true;
    compress(data, size, false);
  } catch (...) {
    m_callback_error = std::current_exception();
  }
}

void TarWriter::add(const EntryHeader& header, core::Source& body) {
  if (m_finished) {
    throw Error(ExitCode::failure,
                "cannot add " + header.path + ": the tar stream is already finished or failed earlier");
  }
  // Checked before anything is written: a refused header leaves the stream usable.
  if (header.path.empty()) throw Error(ExitCode::failure, "cannot add a tar entry with an empty path");
  // Printable ASCII only. Bundle paths are (blobs/sha256/<hex>, index.json, ...), and
  // libarchive converts anything else through the process locale: output would then
  // depend on the locale, and in the C locale libarchive 3.6 crashes on a UTF-8 path.
  for (const char c : header.path) {
    if (c < 0x20 || c > 0x7e) {
      throw Error(ExitCode::failure, "tar entry path '" + header.path + "' has a byte outside printable ASCII");
    }
  }
  if (header.size > static_cast<std::uint64_t>(std::numeric_limits<la_int64_t>::max())) {
    throw Error(ExitCode::failure, "entry " + header.path + " is too large for tar (" +
                                       std::to_string(header.size) + " bytes)");
  }
  try {
    ArchiveEntry entry(archive_entry_new());
    if (!entry) throw std::bad_alloc();
    archive_entry* e = entry.get();
    archive_entry_set_pathname(e, header.path.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, static_cast<mode_t>(header.mode & 07777));
    archive_entry_set_size(e, static_cast<la_int64_t>(header.size));
    archive_entry_set_mtime(e, static_cast<time_t>(m_options.mtime), 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);

    // The previous entry's frame has ended (end_frame below), so the level may change:
    // it applies to the frame this entry's header opens.
    const int level = header.compression == Compression::fastest ? k_fastest_level : m_options.level;
    check_zstd(ZSTD_CCtx_setParameter(m_zstd.get(), ZSTD_c_compressionLevel, level), "setting the level");

    archive* a = m_archive.get();
    const int written = archive_write_header(a, e);
    rethrow_callback_error();
    if (written != ARCHIVE_OK) fail("writing the header of entry " + header.path);

    std::vector<char> buffer(static_cast<std::size_t>(
        std::min<std::uint64_t>(core::k_copy_buffer_size, std::max<std::uint64_t>(header.size, 1))));
    std::uint64_t done = 0;
    while (done < header.size) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), header.size - done));
      const std::size_t n = body.read(buffer.data(), want);
      if (n == 0) {
        throw IntegrityError("bundle entry " + header.path + " ended after " + std::to_string(done) + " of " +
                                 std::to_string(header.size) + " bytes",
                             "its source changed while it was packed; run the command again");
      }
      const char* p = buffer.data();
      std::size_t left = n;
      while (left > 0) {
        const la_ssize_t w = archive_write_data(a, p, left);
        rethrow_callback_error();
        if (w <= 0) fail("writing entry " + header.path);
        p += w;
        left -= static_cast<std::size_t>(w);
      }
      done += n;
    }
    char extra = 0;
    if (body.read(&extra, 1) != 0) {
      throw IntegrityError("bundle entry " + header.path + " has more than the " + std::to_string(header.size) +
                               " bytes its header declares",
                           "its source changed while it was packed; run the command again");
    }
    // The entry's padding to 512 bytes is written here, not with the next header, so it
    // lands in this entry's frame.
    const int finished = archive_write_finish_entry(a);
    rethrow_callback_error();
    if (finished != ARCHIVE_OK) fail("finishing entry " + header.path);
    end_frame();
  } catch (...) {
    // The tar stream now ends somewhere inside this entry: refuse any further use
    // rather than let libarchive pad it into something that looks whole.
    m_finished = true;
    throw;
  }
}

void TarWriter::add(const EntryHeader& header, std::string_view bytes) {
  core::StringSource source(bytes);
  add(header, source);
}

void TarWriter::finish() {
  if (m_finished) throw Error(ExitCode::failure, "the tar stream is already finished or failed earlier");
  m_finished = true;
  check_zstd(ZSTD_CCtx_setParameter(m_zstd.get(), ZSTD_c_compressionLevel, m_options.level), "setting the level");
  // Writes the two 512-byte end-of-archive blocks: the last frame.
  const int closed = archive_write_close(m_archive.get());
  rethrow_callback_error();
  if (closed != ARCHIVE_OK) fail("writing the end of the tar stream");
  end_frame();
}

void TarWriter::end_frame() {
  if (!m_frame_open) return;
  compress(nullptr, 0, true);
  m_frame_open = false;
  flush_output();
}

void TarWriter::compress(const char* data, std::size_t size, bool end) {
  ZSTD_inBuffer in{data, size, 0};
  const std::size_t step = ZSTD_CStreamOutSize();
  for (;;) {
    if (m_out_buffer.size() - m_out_used < step) flush_output();
    ZSTD_outBuffer out{m_out_buffer.data() + m_out_used, m_out_buffer.size() - m_out_used, 0};
    const std::size_t remaining = ZSTD_compressStream2(m_zstd.get(), &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
    check_zstd(remaining, "compressing");
    m_out_used += out.pos;
    // e_continue: done once all input is taken (zstd keeps the rest of a block);
    // e_end: done once the frame, its last block and checksum are out.
    if (end ? remaining == 0 : in.pos == in.size) return;
  }
}

void TarWriter::flush_output() {
  if (m_out_used == 0) return;
  m_out.write(m_out_buffer.data(), m_out_used);
  m_bytes_out += m_out_used;
  m_out_used = 0;
}

void TarWriter::rethrow_callback_error() {
  if (!m_callback_error) return;
  std::exception_ptr error = std::exchange(m_callback_error, nullptr);
  m_finished = true;
  std::rethrow_exception(error);
}

void TarWriter::fail(const std::string& doing) {
  m_finished = true;
  throw Error(ExitCode::failure, "libarchive: " + doing + ": " + archive_message(m_archive.get()));
}

} // namespace ferry::bundle
