// One-pass tar reading over libarchive (tar formats, zstd or no compression).
// SPDX-License-Identifier: Apache-2.0
#include "bundle/tar_reader.hpp"

#include "core/error.hpp"

#include <archive.h>
#include <cerrno>
#include <archive_entry.h>

#include <algorithm>
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

la_ssize_t plain_read_callback(archive*, void* client_data, const void** buffer) {
  return static_cast<la_ssize_t>(static_cast<TarReader*>(client_data)->on_plain_read(buffer));
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
    : m_in(in), m_display(std::move(display)), m_plain(archive_read_new()), m_archive(archive_read_new()), m_end(end) {
  archive* a = m_archive.get();
  if (a == nullptr || m_plain == nullptr) throw core::Error(core::ExitCode::failure, "cannot create a libarchive reader");
  m_in_buffer.resize(k_read_size);
  // tar only (ustar, pax, GNU, v7); zstd or nothing around it, undone by m_plain.
  // Anything else (gzip, zip, cpio...) reaches the tar reader as it is and fails with
  // libarchive's "Unrecognized archive format".
  if (archive_read_support_format_tar(a) != ARCHIVE_OK || archive_read_support_format_raw(m_plain.get()) != ARCHIVE_OK ||
      archive_read_support_filter_zstd(m_plain.get()) != ARCHIVE_OK ||
      archive_read_support_filter_none(m_plain.get()) != ARCHIVE_OK) {
    fail("setting up the reader");
  }
  // No skip callback: a compressed stream cannot seek, and a plain one is rare enough.
  const int opened = archive_read_open2(a, this, nullptr, plain_read_callback, nullptr, nullptr);
  rethrow_callback_error();
  if (opened != ARCHIVE_OK) {
    if (m_plain_error) fail("opening the stream");
    // libarchive reports an unrecognised format as ARCHIVE_ERRNO_FILE_FORMAT, which its
    // private platform header defines as EILSEQ on POSIX systems.
    if (m_consumed > 0 && archive_errno(a) == EILSEQ && m_end == ArchiveEnd::optional) {
      // One zstd frame of a bundle file, read alone (FrameReader): the file is a
      // bundle, but this part of it is not tar.
      throw IntegrityError("bundle " + m_display + " holds a zstd frame that is not part of its tar stream (" +
                               archive_message(a) + ")",
                           "do not use this bundle: something was added after it was signed, or it is damaged");
    }
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

// The decompressing reader starts with the first read: its format check reads `in`.
bool TarReader::open_plain() noexcept {
  m_plain_open = true;
  archive* plain = m_plain.get();
  int r = archive_read_open2(plain, this, nullptr, read_callback, nullptr, nullptr);
  archive_entry* entry = nullptr;
  if (r == ARCHIVE_OK && !m_callback_error) r = archive_read_next_header(plain, &entry);
  if (r == ARCHIVE_OK && !m_callback_error) return true;
  m_plain_ended = true;
  // Empty input: "raw" bids nothing on it, and the tar reader reports an empty bundle.
  if (!m_callback_error && !(m_in_ended && m_consumed == 0)) {
    try {
      m_plain_error = archive_message(plain);
    } catch (...) {
      m_callback_error = std::current_exception();
    }
  }
  return false;
}

// Fills `data` from the decompressing reader: whole, unless its stream ends (or fails).
std::size_t TarReader::fill_plain(char* data, std::size_t size) noexcept {
  std::size_t filled = 0;
  while (filled < size && !m_plain_ended) {
    const la_ssize_t n = archive_read_data(m_plain.get(), data + filled, size - filled);
    if (m_callback_error || n <= 0) {
      m_plain_ended = true;
      if (n < 0 && !m_callback_error) {
        try {
          m_plain_error = archive_message(m_plain.get());
        } catch (...) {
          m_callback_error = std::current_exception();
        }
      }
      break;
    }
    filled += static_cast<std::size_t>(n);
  }
  return filled;
}

std::size_t TarReader::on_plain_read(const void** buffer) noexcept {
  *buffer = m_in_buffer.data();
  if (m_callback_error || m_plain_ended) return 0;
  if (!m_plain_open && !open_plain()) return 0;
  // The other buffer: libarchive may still point into the one it was given last.
  const int turn = 1 - m_turn;
  try {
    if (!m_chunks[turn]) m_chunks[turn].reset(new char[k_read_size]);
  } catch (...) {
    m_callback_error = std::current_exception();
    return 0;
  }
  const std::size_t n = fill_plain(m_chunks[turn].get(), k_read_size);
  if (n == 0) return 0;
  m_turn = turn;
  m_chunk_sizes[turn] = n;
  m_handed += n;
  *buffer = m_chunks[turn].get();
  return n;
}

// libarchive's tar reader stops at the end-of-archive blocks and never looks further,
// so a bundle could carry anything after them, unverified, for some other tool to
// find. Only zeros may follow (record padding), and not many: a stream of zeros that
// decompresses to gigabytes is refused after k_max_end_padding bytes.
void TarReader::check_after_end(const std::string& after) {
  const auto end = static_cast<std::uint64_t>(archive_filter_bytes(m_archive.get(), 0));
  const std::size_t current = m_chunk_sizes[m_turn];
  const std::size_t previous = m_chunk_sizes[1 - m_turn];
  const std::uint64_t unread = m_handed - std::min(end, m_handed);
  if (unread > current + previous) {
    throw core::Error(core::ExitCode::failure,
                      "bundle " + m_display + ": cannot find the bytes after the end of its archive");
  }
  std::uint64_t padding = 0;
  auto scan = [&](const char* data, std::size_t size) {
    for (std::size_t i = 0; i < size; ++i) {
      if (data[i] != 0) {
        throw IntegrityError("bundle " + m_display + " holds data after the end of its archive (" + after +
                                 "): a byte that is not zero, " + std::to_string(padding + i) +
                                 " bytes after the end-of-archive blocks",
                             "do not use this bundle: something was added after it was signed");
      }
    }
    padding += size;
    if (padding > k_max_end_padding) {
      throw IntegrityError("bundle " + m_display + " holds more than " + std::to_string(k_max_end_padding) +
                               " bytes after the end of its archive (" + after +
                               "), zeros so far: more padding than any tar writer adds",
                           "do not use this bundle: something was added after it was signed");
    }
  };
  const std::uint64_t in_current = std::min<std::uint64_t>(unread, current);
  if (unread > in_current) {
    scan(m_chunks[1 - m_turn].get() + previous - (unread - in_current), static_cast<std::size_t>(unread - in_current));
  }
  if (in_current > 0) scan(m_chunks[m_turn].get() + current - in_current, static_cast<std::size_t>(in_current));
  // The rest was never handed to the tar reader.
  const int spare = 1 - m_turn;
  if (!m_chunks[spare]) m_chunks[spare].reset(new char[k_read_size]);
  while (!m_plain_ended) {
    const std::size_t n = fill_plain(m_chunks[spare].get(), k_read_size);
    rethrow_callback_error();
    scan(m_chunks[spare].get(), n);
  }
  if (m_plain_error) fail("reading past the end of its archive (" + after + ")");
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
    // A failure to decompress looks like the end to the tar reader.
    if (m_plain_error) fail(doing);
    // libarchive also reports EOF when the input simply stops at a 512-byte boundary
    // ("some writers omit the block of nulls"); that is how a stream cut between two
    // zstd frames looks. The end-of-archive blocks advance the uncompressed position
    // past the last header position; a bare stop does not.
    const bool end_blocks = archive_filter_bytes(a, 0) > archive_read_header_position(a);
    if (m_end == ArchiveEnd::required && !end_blocks) {
      throw IntegrityError("bundle " + m_display + " is truncated: it ends after " + std::to_string(m_consumed) +
                               " bytes, " + (m_current ? "after entry " + *m_current : "before any entry") +
                               ", without the end-of-archive blocks",
                           k_hint);
    }
    if (end_blocks) {
      check_after_end(m_current ? "the end-of-archive blocks follow entry " + *m_current : "it holds no entry");
    }
    m_current.reset();
    m_archive.reset();
    m_plain.reset();
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
  // A zstd failure is the cause of whatever the tar reader then saw.
  const std::string message = m_plain_error ? *m_plain_error : m_archive ? archive_message(m_archive.get()) : "no reader";
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
