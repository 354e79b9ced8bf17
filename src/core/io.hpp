// Byte streams: Source/Sink interfaces, hashing tees and size limits.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "core/digest.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::core {

// A stream of bytes read front to back. read() fills up to `size` bytes and returns how
// many it gave; 0 means the end. Errors throw core::Error naming the thing being read.
class Source {
public:
  virtual ~Source() = default;
  virtual std::size_t read(char* data, std::size_t size) = 0;
};

// A stream of bytes written front to back; write() takes all of them or throws.
class Sink {
public:
  virtual ~Sink() = default;
  virtual void write(const char* data, std::size_t size) = 0;
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
};

// The size of the buffer copy() uses: large enough for full-speed hashing and
// compression, small enough that memory stays flat.
inline constexpr std::size_t k_copy_buffer_size = 1 << 20;

// Copies `from` to `to` until the end of `from`; returns the number of bytes copied.
std::uint64_t copy(Source& from, Sink& to);

// Reads `from` to its end into a string; throws IntegrityError naming `what` once more
// than `limit` bytes arrive (memory stays bounded whatever the input claims).
std::string read_all(Source& from, std::size_t limit, std::string_view what);

// Reads a byte string.
class StringSource final : public Source {
public:
  explicit StringSource(std::string_view bytes) : m_bytes(bytes) {}
  std::size_t read(char* data, std::size_t size) override;

private:
  std::string_view m_bytes; // not owned: must outlive this source
};

// Appends to a string it owns.
class StringSink final : public Sink {
public:
  void write(const char* data, std::size_t size) override { m_bytes.append(data, size); }
  using Sink::write;
  const std::string& bytes() const noexcept { return m_bytes; }
  std::string take() { return std::move(m_bytes); }

private:
  std::string m_bytes;
};

// Discards everything.
class NullSink final : public Sink {
public:
  void write(const char*, std::size_t) override {}
  using Sink::write;
};

// Passes reads through from `inner` while hashing them and counting bytes.
class HashingSource final : public Source {
public:
  explicit HashingSource(Source& inner) : m_inner(inner) {}
  std::size_t read(char* data, std::size_t size) override;
  std::uint64_t count() const noexcept { return m_count; }
  Digest finish() { return m_hash.finish(); }

private:
  Source& m_inner;
  Sha256 m_hash;
  std::uint64_t m_count = 0;
};

// Passes writes through to `inner` while hashing them and counting bytes.
class HashingSink final : public Sink {
public:
  explicit HashingSink(Sink& inner) : m_inner(inner) {}
  void write(const char* data, std::size_t size) override;
  using Sink::write;
  std::uint64_t count() const noexcept { return m_count; }
  Digest finish() { return m_hash.finish(); }

private:
  Sink& m_inner;
  Sha256 m_hash;
  std::uint64_t m_count = 0;
};

// Gives exactly `size` bytes of `inner`: fewer is an IntegrityError naming `what`
// ("… ended after N of M bytes"); bytes past `size` are left unread in `inner`.
class ExactSource final : public Source {
public:
  ExactSource(Source& inner, std::uint64_t size, std::string what)
      : m_inner(inner), m_remaining(size), m_size(size), m_what(std::move(what)) {}
  std::size_t read(char* data, std::size_t size) override;

private:
  Source& m_inner;
  std::uint64_t m_remaining;
  std::uint64_t m_size;
  std::string m_what;
};

} // namespace ferry::core
