// One-pass tar reading over libarchive (tar formats, zstd or no compression).
// SPDX-License-Identifier: Apache-2.0
#include "bundle/tar_reader.hpp"

#include "core/error.hpp"

#include <archive.h>
#include <cerrno>
#include <archive_entry.h>

#include <utility>

namespace ferry::bundle {

using core::IntegrityError;

namespace {

// The size of each read from `in`: large enough that zstd and hashing run at full
// speed, small enough that memory stays flat.
constexpr std::size_t k_read_size = 1 << 20;

constexpr const char* k_hint =
    "copy the bundle again from the original media and check the copy with `sha256sum -c NAME.sha256` (pack wrote it "
    "beside NAME.tar.zst)";

la_ssize_t read_callback(archive*, void* client_data, const void** buffer) {
  return static_cast<la_ssize_t>(static_cast<TarReader*>(client_data)->on_read(buffer));
}

std::string archive_message(archive* a) {
  const char* text = archive_error_string(a);
  return text ? text : "libarchive reported no error text";
}

// libarchive's words for input that stops early: "Truncated zstd input" (zstd filter),
// "Truncated tar archive" (tar reader), "Truncated input file (needed N bytes, only M
// available)" (read-ahead).
bool mentions_truncation(const std::string& message) {
  return message.find("runcated") != std::string::npos;
}

EntryType entry_type(archive_entry* entry) {
  if (archive_entry_hardlink(entry) != nullptr) return EntryType::hardlink;
  // A sparse entry's header size is not the size of its data: nothing ferry writes.
  if (archive_entry_sparse_count(entry) > 0) return EntryType::other;
  switch (archive_entry_filetype(entry)) {
  case AE_IFREG: return EntryType::regular;
  case AE_IFDIR: return EntryType::directory;
  case AE_IFLNK: return EntryType::symlink;
  case AE_IFCHR: return EntryType::character_device;
  case AE_IFBLK: return EntryType::block_device;
  case AE_IFIFO: return EntryType::fifo;
  default: return EntryType::other;
  }
}

const char* utf8_or_raw(const char* utf8, const char* raw) { return utf8 != nullptr ? utf8 : raw; }

} // namespace

void TarReader::ArchiveFree::operator()(archive* a) const noexcept { archive_read_free(a); }

TarReader::TarReader(core::Source& in, std::string display, ArchiveEnd end)
    : m_in(in), m_display(std::move(display)), m_archive(archive_read_new()), m_end(end) {
  archive* a = m_archive.get();
  if (a == nullptr) throw core::Error(core::ExitCode::failure, "cannot create a libarchive reader");
  m_in_buffer.resize(k_read_size);
  // tar only (ustar, pax, GNU, v7); zstd or nothing around it. Anything else (gzip, zip,
  // cpio...) is not a bundle and fails with libarchive's "Unrecognized archive format".
  if (archive_read_support_format_tar(a) != ARCHIVE_OK || archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
      archive_read_support_filter_none(a) != ARCHIVE_OK) {
    fail("setting up the reader");
  }
  // No skip callback: a compressed stream cannot seek, and a plain one is rare enough.
  const int opened = archive_read_open2(a, this, nullptr, read_callback, nullptr, nullptr);
  rethrow_callback_error();
  if (opened != ARCHIVE_OK) {
    // libarchive reports an unrecognised format as ARCHIVE_ERRNO_FILE_FORMAT, which its
    // private platform header defines as EILSEQ on POSIX systems.
    if (m_consumed > 0 && archive_errno(a) == EILSEQ) {
      // Something arrived, but it is neither tar nor zstd-compressed tar: no copying
      // error makes a gzip file or a zip out of a bundle.
      throw IntegrityError("bundle " + m_display + " is not a zstd-compressed tar stream (" +
                               archive_message(a) + ")",
                           "pass the NAME.tar.zst file that `ferry pack` wrote; if it is that file, it is damaged: "
                           "check it with `sha256sum -c NAME.sha256` and copy it again");
    }
    fail("opening the stream");
  }
}

TarReader::~TarReader() = default;

std::size_t TarReader::on_read(const void** buffer) noexcept {
  *buffer = m_in_buffer.data();
  if (m_callback_error) return 0;
  try {
    const std::size_t n = m_in.read(m_in_buffer.data(), m_in_buffer.size());
    if (n == 0) m_in_ended = true;
    m_consumed += n;
    return n;
  } catch (...) {
    m_callback_error = std::current_exception();
    return 0;
  }
}

std::optional<TarEntry> TarReader::next() {
  archive* a = m_archive.get();
  if (a == nullptr) return std::nullopt; // the end was reached before
  if (m_current) {
    // Done here rather than inside archive_read_next_header so that an error names the
    // entry whose data was cut or damaged.
    const int skipped = archive_read_data_skip(a);
    rethrow_callback_error();
    if (skipped != ARCHIVE_OK) fail("skipping the rest of entry " + *m_current);
  }
  const std::string doing = m_current ? "reading the header after entry " + *m_current : "reading the first header";

  archive_entry* entry = nullptr;
  const int r = archive_read_next_header(a, &entry);
  rethrow_callback_error();
  if (r == ARCHIVE_EOF) {
    // libarchive also reports EOF when the input simply stops at a 512-byte boundary
    // ("some writers omit the block of nulls"); that is how a stream cut between two
    // zstd frames looks. The end-of-archive blocks advance the uncompressed position
    // past the last header position; a bare stop does not.
    if (m_end == ArchiveEnd::required && archive_filter_bytes(a, 0) <= archive_read_header_position(a)) {
      throw IntegrityError("bundle " + m_display + " is truncated: it ends after " + std::to_string(m_consumed) +
                               " bytes, " + (m_current ? "after entry " + *m_current : "before any entry") +
                               ", without the end-of-archive blocks",
                           k_hint);
    }
    m_current.reset();
    m_archive.reset();
    return std::nullopt;
  }
  // ARCHIVE_WARN too: a malformed pax record or an unconvertible name means the
  // header is not what was written.
  if (r != ARCHIVE_OK) fail(doing);

  const char* path = utf8_or_raw(archive_entry_pathname_utf8(entry), archive_entry_pathname(entry));
  if (path == nullptr || *path == '\0') {
    throw IntegrityError("bundle " + m_display + ": " + doing + ": the entry has no path", k_hint);
  }
  TarEntry result;
  result.path = path;
  result.type = entry_type(entry);
  switch (result.type) {
  case EntryType::symlink:
    result.link_target = utf8_or_raw(archive_entry_symlink_utf8(entry), archive_entry_symlink(entry));
    break;
  case EntryType::hardlink:
    result.link_target = utf8_or_raw(archive_entry_hardlink_utf8(entry), archive_entry_hardlink(entry));
    break;
  default: break;
  }
  const bool has_data =
      result.type == EntryType::regular || result.type == EntryType::hardlink || result.type == EntryType::other;
  if (has_data && archive_entry_size_is_set(entry)) {
    const la_int64_t size = archive_entry_size(entry);
    if (size < 0) {
      throw IntegrityError("bundle " + m_display + ": entry " + result.path + " has a negative size", k_hint);
    }
    result.size = static_cast<std::uint64_t>(size);
  }
  m_current = result.path;
  return result;
}

std::size_t TarReader::read(char* data, std::size_t size) {
  if (!m_current || !m_archive || size == 0) return 0;
  const la_ssize_t n = archive_read_data(m_archive.get(), data, size);
  rethrow_callback_error();
  if (n < 0) fail("reading entry " + *m_current);
  return static_cast<std::size_t>(n);
}

// Truncation (the input ended where libarchive needed more) and damage (a zstd
// checksum, a tar header checksum, a malformed header) get different messages: the
// first usually means an incomplete copy, the second a bad one. Both keep libarchive's
// words. The zstd filter decompresses ahead of the tar reader (up to a 128 KiB block),
// so a cut can surface while the entry before it is read: the message says where it
// was noticed, and the input's real length, rather than guess the entry it cut.
void TarReader::fail(const std::string& doing) {
  const std::string message = m_archive ? archive_message(m_archive.get()) : "no reader";
  if (m_in_ended && m_consumed == 0) {
    throw IntegrityError("bundle " + m_display + " is truncated: it is empty", k_hint);
  }
  if (m_in_ended && mentions_truncation(message)) {
    throw IntegrityError("bundle " + m_display + " is truncated: it ends after " + std::to_string(m_consumed) +
                             " bytes (noticed while " + doing + "): " + message,
                         k_hint);
  }
  throw IntegrityError("bundle " + m_display + ": " + doing + ": " + message, k_hint);
}

// The error stays recorded: the reader is unusable after it, and every later call
// rethrows it rather than let libarchive take the failure for the end of the input.
void TarReader::rethrow_callback_error() {
  if (m_callback_error) std::rethrow_exception(m_callback_error);
}

} // namespace ferry::bundle
