// Reading a (zstd-compressed) tar stream entry by entry, in one pass.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/io.hpp"

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>

struct archive;

namespace ferry::bundle {

enum class EntryType { regular, directory, symlink, hardlink, character_device, block_device, fifo, other };

struct TarEntry {
  std::string path;        // as stored (pax path overrides applied), not normalised
  EntryType type = EntryType::regular;
  std::uint64_t size = 0;  // the header's size (0 for links and devices)
  std::string link_target; // symlinks and hardlinks
};

// Reads a tar stream from `in`, zstd-compressed or plain, streaming (memory bounded by
// libarchive's buffers, whatever the entry sizes). Not copyable or movable.
// Errors are IntegrityErrors naming `display` and, once one was read, the entry:
//   "bundle x.tar.zst is truncated: it ends after N bytes (noticed while reading entry
//    blobs/sha256/ab…): Truncated zstd input" (a cut may be noticed up to one zstd
//    block before it: the entry named is the one being read, or the one just before)
//   "bundle x.tar.zst: reading entry index.json: <libarchive message>"
// A failure of `in` itself is rethrown unchanged.
// After the end-of-archive blocks only zero padding may follow (GNU tar pads to its
// 10240-byte records), at most k_max_end_padding bytes: anything else is an
// IntegrityError, "bundle x.tar.zst holds data after the end of its archive (…)". The
// padding is read (and so bounded) when next() reports the end.
// required: input that stops without the end-of-archive blocks is truncated (a whole
// stream). optional: a stop at an entry boundary is the end (one zstd frame of a bundle,
// read on its own).
enum class ArchiveEnd { required, optional };

inline constexpr std::uint64_t k_max_end_padding = 1u << 20;

class TarReader {
public:
  TarReader(core::Source& in, std::string display, ArchiveEnd end = ArchiveEnd::required);
  TarReader(const TarReader&) = delete;
  TarReader(TarReader&&) = delete;
  TarReader& operator=(const TarReader&) = delete;
  TarReader& operator=(TarReader&&) = delete;
  ~TarReader();

  // The next entry's header; nullopt at the end of the archive. Unread data of the
  // previous entry is skipped.
  std::optional<TarEntry> next();
  // Data of the current entry: up to `size` bytes, 0 at its end.
  std::size_t read(char* data, std::size_t size);
  // The current entry's data as a Source (valid until next()).
  core::Source& body() { return m_body; }
  // Bytes consumed from `in` so far (compressed offset), for messages.
  std::uint64_t consumed() const noexcept { return m_consumed; }

  // Called by the libarchive read callbacks. Never throw: a failure of `in` is kept,
  // reported to libarchive as the end of input and rethrown once libarchive returns.
  // on_read feeds the decompressing reader from `in`; on_plain_read feeds the tar
  // reader from the decompressing one.
  std::size_t on_read(const void** buffer) noexcept;
  std::size_t on_plain_read(const void** buffer) noexcept;

private:
  class Body final : public core::Source {
  public:
    explicit Body(TarReader& reader) : m_reader(reader) {}
    std::size_t read(char* data, std::size_t size) override { return m_reader.read(data, size); }

  private:
    TarReader& m_reader;
  };
  [[noreturn]] void fail(const std::string& doing);
  void rethrow_callback_error();
  bool open_plain() noexcept;
  std::size_t fill_plain(char* data, std::size_t size) noexcept;
  void check_after_end(const std::string& after);

  struct ArchiveFree {
    void operator()(archive* a) const noexcept;
  };
  core::Source& m_in;
  std::string m_display;
  // Two readers: m_plain decompresses `in` (zstd, or none for a plain tar) as libarchive's
  // "raw" format; m_archive reads tar from what m_plain gives. Kept apart so that the
  // bytes after the end-of-archive blocks, which libarchive's tar reader never looks at,
  // can be read and checked (check_after_end).
  std::unique_ptr<archive, ArchiveFree> m_plain;
  std::unique_ptr<archive, ArchiveFree> m_archive;
  std::string m_in_buffer;
  // The last two pieces handed to m_archive (each full but the last): libarchive's
  // read-ahead may hold bytes of both that it never consumed.
  std::unique_ptr<char[]> m_chunks[2];
  std::size_t m_chunk_sizes[2] = {0, 0};
  int m_turn = 0;
  std::uint64_t m_handed = 0;                // uncompressed bytes handed to m_archive
  bool m_plain_open = false;
  bool m_plain_ended = false;                // m_plain reported its end (or failed)
  std::optional<std::string> m_plain_error;  // m_plain's failure (zstd), for fail()
  std::optional<std::string> m_current; // path of the current entry
  std::uint64_t m_consumed = 0;
  ArchiveEnd m_end;
  bool m_in_ended = false;             // `in` returned 0: libarchive errors now mean truncation
  std::exception_ptr m_callback_error; // thrown by `in` inside on_read
  Body m_body{*this};
};

} // namespace ferry::bundle
