// Content digests ("sha256:<64 hex>") and streaming SHA-256 over OpenSSL EVP.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <compare>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::core {

// A sha256 content digest as OCI writes it: "sha256:" + 64 lower-case hex digits.
// Other algorithms are refused (ferry writes and accepts sha256 only).
class Digest {
public:
  // The digest of empty content: a default-constructed Digest is always a valid one.
  Digest();
  // nullopt unless `text` is exactly "sha256:" + 64 lower-case hex digits.
  static std::optional<Digest> try_parse(std::string_view text);
  // As try_parse; throws IntegrityError naming `text` otherwise.
  static Digest parse(std::string_view text);
  // From the 32 raw bytes of a SHA-256 value.
  static Digest from_raw(const unsigned char (&raw)[32]);

  const std::string& str() const noexcept { return m_text; }
  std::string_view hex() const noexcept { return std::string_view(m_text).substr(7); }
  // "sha256:9c01ab…" (first 12 hex digits), for human output only.
  std::string short_str() const { return m_text.substr(0, 7 + 12); }

  friend auto operator<=>(const Digest&, const Digest&) = default;
  friend bool operator==(const Digest&, const Digest&) = default;

private:
  explicit Digest(std::string text) : m_text(std::move(text)) {}
  std::string m_text;
};

// Incremental SHA-256. update() any number of times, then finish() once.
class Sha256 {
public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, std::size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  Digest finish();

private:
  struct Ctx;
  std::unique_ptr<Ctx> m_ctx;
};

// SHA-256 of a byte string.
Digest sha256_of(std::string_view bytes);

} // namespace ferry::core
