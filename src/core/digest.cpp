// Streaming SHA-256 via OpenSSL EVP (uses SHA-NI where the CPU has it).
// SPDX-License-Identifier: Apache-2.0
#include "core/digest.hpp"

#include "core/error.hpp"
#include "core/openssl_error.hpp"

#include <openssl/evp.h>

namespace ferry::core {

namespace {

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

} // namespace

Digest::Digest() : m_text("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") {}

std::optional<Digest> Digest::try_parse(std::string_view text) {
  constexpr std::string_view prefix = "sha256:";
  if (text.size() != prefix.size() + 64 || text.substr(0, prefix.size()) != prefix) return std::nullopt;
  for (char c : text.substr(prefix.size())) {
    if (!is_lower_hex(c)) return std::nullopt;
  }
  return Digest(std::string(text));
}

Digest Digest::parse(std::string_view text) {
  if (auto d = try_parse(text)) return *d;
  std::string shown(text.substr(0, 100));
  throw IntegrityError("'" + shown + "' is not a sha256 digest (expected sha256: and 64 lower-case hex digits)");
}

Digest Digest::from_raw(const unsigned char (&raw)[32]) {
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string text = "sha256:";
  text.reserve(7 + 64);
  for (unsigned char b : raw) {
    text.push_back(k_hex[b >> 4]);
    text.push_back(k_hex[b & 0x0f]);
  }
  return Digest(std::move(text));
}

struct Sha256::Ctx {
  EvpMdCtx md{EVP_MD_CTX_new()};
};

Sha256::Sha256() : m_ctx(std::make_unique<Ctx>()) {
  if (!m_ctx->md || EVP_DigestInit_ex(m_ctx->md.get(), EVP_sha256(), nullptr) != 1) {
    throw Error(ExitCode::failure, "cannot start SHA-256: " + openssl_error_text());
  }
}

Sha256::~Sha256() = default;

void Sha256::update(const void* data, std::size_t size) {
  if (size == 0) return;
  if (EVP_DigestUpdate(m_ctx->md.get(), data, size) != 1) {
    throw Error(ExitCode::failure, "SHA-256 update failed: " + openssl_error_text());
  }
}

Digest Sha256::finish() {
  unsigned char raw[32];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(m_ctx->md.get(), raw, &length) != 1 || length != 32) {
    throw Error(ExitCode::failure, "SHA-256 final failed: " + openssl_error_text());
  }
  return Digest::from_raw(raw);
}

Digest sha256_of(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return h.finish();
}

} // namespace ferry::core
