// Bundle signing keys: generation, loading, signing and verification (OpenSSL EVP).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::bundle {

// ed25519: the default, deterministic signatures (a bundle is reproducible to the
// byte). ecdsa_p256: ECDSA over P-256 with SHA-256, DER signatures (FIPS-bound sites,
// cosign workflows).
enum class KeyType { ed25519, ecdsa_p256 };

std::string_view to_string(KeyType type); // "ed25519", "ecdsa-p256"
// "ed25519" or "ecdsa-p256"; UsageError otherwise.
KeyType parse_key_type(std::string_view text);

// A new key pair as PEM: PKCS#8 private key (encrypted with AES-256-CBC and PBKDF2 when
// a passphrase is given) and SubjectPublicKeyInfo public key.
struct KeyPairPem {
  std::string private_pem;
  std::string public_pem;
};
KeyPairPem generate_key_pair(KeyType type, const std::optional<std::string>& passphrase);

// "sha256:<hex>" of the DER SubjectPublicKeyInfo; the same as
// `openssl pkey -pubin -in KEY.pub -outform DER | sha256sum`.
class PublicKey {
public:
  // From PEM text; `display` names it in messages. A malformed key or an unsupported
  // algorithm (RSA, other curves) is a UsageError saying which.
  static PublicKey from_pem(std::string_view pem, std::string display);
  static PublicKey load(const std::filesystem::path& path);

  PublicKey(PublicKey&&) noexcept;
  PublicKey& operator=(PublicKey&&) noexcept;
  ~PublicKey();

  KeyType type() const noexcept { return m_type; }
  const std::string& key_id() const noexcept { return m_key_id; }
  const std::string& display() const noexcept { return m_display; }
  // True when `signature` (raw bytes: 64 for Ed25519, DER for ECDSA) signs `data`.
  bool verify(std::string_view data, std::string_view signature) const;

private:
  struct Impl;
  PublicKey(std::unique_ptr<Impl> impl, KeyType type, std::string key_id, std::string display);
  std::unique_ptr<Impl> m_impl;
  KeyType m_type;
  std::string m_key_id;
  std::string m_display;
};

class PrivateKey {
public:
  // Loads a PKCS#8 PEM private key. An encrypted key needs `passphrase`: without one,
  // or with a wrong one, a UsageError says so ("wrong passphrase for KEY" / "KEY is
  // encrypted: give --passphrase-file or FERRY_KEY_PASSPHRASE"). A key file readable by
  // group or others is refused with the chmod that fixes it.
  static PrivateKey load(const std::filesystem::path& path, const std::optional<std::string>& passphrase);
  static PrivateKey from_pem(std::string_view pem, const std::optional<std::string>& passphrase, std::string display);

  PrivateKey(PrivateKey&&) noexcept;
  PrivateKey& operator=(PrivateKey&&) noexcept;
  ~PrivateKey();

  KeyType type() const noexcept { return m_type; }
  const std::string& key_id() const noexcept { return m_key_id; } // of its public key
  std::string public_pem() const;
  // Raw signature bytes over `data` (Ed25519: 64 bytes; ECDSA: DER).
  std::string sign(std::string_view data) const;

private:
  struct Impl;
  PrivateKey(std::unique_ptr<Impl> impl, KeyType type, std::string key_id);
  std::unique_ptr<Impl> m_impl;
  KeyType m_type;
  std::string m_key_id;
};

// The set of keys an operator trusts (each --pubkey); a bundle signed by any of them is
// accepted.
class TrustedKeys {
public:
  void add(PublicKey key);
  const PublicKey* find(std::string_view key_id) const;
  // The trusted key that made `signature` over `data`, or nullptr: the check callers make
  // before they parse anything in `data`.
  const PublicKey* signer_of(std::string_view data, std::string_view signature) const;
  bool empty() const noexcept { return m_keys.empty(); }
  std::vector<std::string> key_ids() const;
  const std::vector<PublicKey>& keys() const noexcept { return m_keys; }

private:
  std::vector<PublicKey> m_keys;
};

} // namespace ferry::bundle
