// Byte stream helpers.
// SPDX-License-Identifier: Apache-2.0
#include "core/io.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

namespace ferry::core {

std::uint64_t copy(Source& from, Sink& to) {
  std::vector<char> buffer(k_copy_buffer_size);
  std::uint64_t total = 0;
  while (std::size_t n = from.read(buffer.data(), buffer.size())) {
    to.write(buffer.data(), n);
    total += n;
  }
  return total;
}

std::string read_all(Source& from, std::size_t limit, std::string_view what) {
  std::string out;
  char buffer[64 * 1024];
  while (std::size_t n = from.read(buffer, sizeof buffer)) {
    if (out.size() + n > limit) {
      throw IntegrityError(std::string(what) + " is larger than the limit of " + std::to_string(limit) + " bytes");
    }
    out.append(buffer, n);
  }
  return out;
}

std::size_t StringSource::read(char* data, std::size_t size) {
  const std::size_t n = std::min(size, m_bytes.size());
  std::memcpy(data, m_bytes.data(), n);
  m_bytes.remove_prefix(n);
  return n;
}

std::size_t HashingSource::read(char* data, std::size_t size) {
  const std::size_t n = m_inner.read(data, size);
  m_hash.update(data, n);
  m_count += n;
  return n;
}

void HashingSink::write(const char* data, std::size_t size) {
  m_inner.write(data, size);
  m_hash.update(data, size);
  m_count += size;
}

std::size_t ExactSource::read(char* data, std::size_t size) {
  if (m_remaining == 0) return 0;
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(size, m_remaining));
  const std::size_t n = m_inner.read(data, want);
  if (n == 0) {
    throw IntegrityError(m_what + " ended after " + std::to_string(m_size - m_remaining) + " of " +
                         std::to_string(m_size) + " bytes");
  }
  m_remaining -= n;
  return n;
}

} // namespace ferry::core
