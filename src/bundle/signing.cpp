// Ed25519 and ECDSA P-256 keys over OpenSSL 3 EVP: generation, PEM loading, signatures.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/signing.hpp"

#include "core/digest.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/openssl_error.hpp"
#include "core/secret.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace ferry::bundle {

using core::Error;
using core::ExitCode;
using core::UsageError;

namespace {

// Key files are a few hundred bytes; anything near this is not a key.
constexpr std::size_t k_key_file_limit = 64 * 1024;

constexpr const char* k_supported = "ferry signs with ed25519 and ecdsa-p256 (ECDSA on P-256) keys";
constexpr const char* k_keygen_hint = "create a key pair with `ferry keygen --type ed25519` (or --type ecdsa-p256)";

struct OpenSslFree {
  void operator()(unsigned char* p) const noexcept { OPENSSL_free(p); }
};

// The passphrase handed to PEM_read_bio_PrivateKey as its `u` argument. With a null
// `u` (or a null callback) OpenSSL would prompt on the terminal; this callback never
// does: no passphrase means "cannot decrypt".
struct PassphraseRequest {
  const std::string* passphrase = nullptr;
  bool asked = false;
};

int passphrase_callback(char* buffer, int size, int /*rwflag*/, void* u) {
  auto* request = static_cast<PassphraseRequest*>(u);
  if (request == nullptr) return -1;
  request->asked = true;
  if (request->passphrase == nullptr || size < 0 || request->passphrase->size() > static_cast<std::size_t>(size)) {
    return -1;
  }
  std::memcpy(buffer, request->passphrase->data(), request->passphrase->size());
  return static_cast<int>(request->passphrase->size());
}

const unsigned char* bytes_of(std::string_view text) {
  static const unsigned char k_empty = 0;
  return text.empty() ? &k_empty : reinterpret_cast<const unsigned char*>(text.data());
}

core::Bio memory_bio(std::string_view pem, const std::string& display) {
  if (pem.size() > static_cast<std::size_t>(INT_MAX)) throw UsageError(display + " is too large for a PEM key");
  core::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throw Error(ExitCode::failure, "cannot create an OpenSSL memory buffer: " + core::openssl_error_text());
  return bio;
}

// Sized once and read in place: a string grown piece by piece would leave copies of a
// private key in the buffers it gave back to the heap.
std::string drain_bio(BIO* bio) {
  std::string out(BIO_ctrl_pending(bio), '\0');
  std::size_t used = 0;
  while (used < out.size()) {
    const int n = BIO_read(bio, out.data() + used, static_cast<int>(std::min<std::size_t>(out.size() - used, INT_MAX)));
    if (n <= 0) break;
    used += static_cast<std::size_t>(n);
  }
  out.resize(used);
  return out;
}

// The label of the first PEM block ("PUBLIC KEY", "ENCRYPTED PRIVATE KEY"), or "".
std::string pem_label(std::string_view pem) {
  constexpr std::string_view begin = "-----BEGIN ";
  const std::size_t start = pem.find(begin);
  if (start == std::string_view::npos) return {};
  const std::size_t end = pem.find("-----", start + begin.size());
  if (end == std::string_view::npos) return {};
  return std::string(pem.substr(start + begin.size(), end - start - begin.size()));
}

std::string describe_label(const std::string& label) {
  return label.empty() ? "no PEM block" : "BEGIN " + label;
}

// PKCS#8 "ENCRYPTED PRIVATE KEY", or a traditional (SEC1/PKCS#1) key with the
// RFC 1421 "Proc-Type: 4,ENCRYPTED" header.
bool is_encrypted_pem(std::string_view pem, const std::string& label) {
  return label == "ENCRYPTED PRIVATE KEY" || pem.find("Proc-Type: 4,ENCRYPTED") != std::string_view::npos;
}

KeyType key_type_of(EVP_PKEY* key, const std::string& display) {
  if (EVP_PKEY_is_a(key, "ED25519")) return KeyType::ed25519;
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[80] = {};
    std::size_t length = 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &length) != 1) {
      ERR_clear_error();
      throw UsageError(display + " holds an EC key without a named curve; " + k_supported, k_keygen_hint);
    }
    const std::string name(group, length);
    if (name == "prime256v1" || name == "P-256" || name == "secp256r1") return KeyType::ecdsa_p256;
    throw UsageError(display + " holds an EC key on curve " + name + "; " + k_supported, k_keygen_hint);
  }
  const char* type = EVP_PKEY_get0_type_name(key);
  throw UsageError(display + " holds a key of type " + (type ? type : "unknown") + "; " + k_supported,
                   k_keygen_hint);
}

// "sha256:<hex>" of the DER SubjectPublicKeyInfo.
std::string key_id_of(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int length = i2d_PUBKEY(key, &der);
  if (length <= 0 || der == nullptr) {
    throw Error(ExitCode::failure, "cannot encode a public key as DER: " + core::openssl_error_text());
  }
  std::unique_ptr<unsigned char, OpenSslFree> owner(der);
  return core::sha256_of(std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length))).str();
}

std::string public_pem_of(EVP_PKEY* key) {
  core::Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    throw Error(ExitCode::failure, "cannot write a public key as PEM: " + core::openssl_error_text());
  }
  return drain_bio(bio.get());
}

// Ed25519 signs the message itself (no digest: "pure" EdDSA, RFC 8032), ECDSA a
// SHA-256 of it; both through EVP_DigestSign/EVP_DigestVerify in one shot.
const char* digest_for(KeyType type) { return type == KeyType::ed25519 ? nullptr : "SHA256"; }

core::EvpPkey generate(KeyType type) {
  core::EvpPkeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type == KeyType::ed25519 ? "ED25519" : "EC", nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1) {
    throw Error(ExitCode::failure, "cannot start " + std::string(to_string(type)) +
                                       " key generation: " + core::openssl_error_text());
  }
  if (type == KeyType::ecdsa_p256) {
    // Named curve (not explicit parameters) and uncompressed points: what cosign,
    // openssl and every verifier expect.
    char group[] = "P-256";
    char format[] = "uncompressed";
    char encoding[] = "named_curve";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, format, 0),
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, encoding, 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_PKEY_CTX_set_params(ctx.get(), params) != 1) {
      throw Error(ExitCode::failure, "cannot select curve P-256: " + core::openssl_error_text());
    }
  }
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_generate(ctx.get(), &raw) != 1 || raw == nullptr) {
    throw Error(ExitCode::failure,
                "cannot generate a " + std::string(to_string(type)) + " key: " + core::openssl_error_text());
  }
  return core::EvpPkey(raw);
}

} // namespace

std::string_view to_string(KeyType type) {
  switch (type) {
  case KeyType::ed25519: return "ed25519";
  case KeyType::ecdsa_p256: return "ecdsa-p256";
  }
  return "unknown";
}

KeyType parse_key_type(std::string_view text) {
  if (text == "ed25519") return KeyType::ed25519;
  if (text == "ecdsa-p256") return KeyType::ecdsa_p256;
  const std::string near = core::suggest(text, {"ed25519", "ecdsa-p256"});
  throw UsageError("unknown key type '" + std::string(text) + "': expected ed25519 or ecdsa-p256",
                   near.empty() ? std::string() : "did you mean " + near + "?");
}

KeyPairPem generate_key_pair(KeyType type, const std::optional<std::string>& passphrase) {
  if (passphrase && passphrase->empty()) {
    throw UsageError("the passphrase is empty", "give a non-empty passphrase, or none for an unencrypted key");
  }
  if (passphrase && passphrase->size() > static_cast<std::size_t>(INT_MAX)) {
    throw UsageError("the passphrase is too long");
  }
  const core::EvpPkey key = generate(type);

  // PKCS#8. With a cipher OpenSSL 3 writes an "ENCRYPTED PRIVATE KEY": PBES2 with
  // PBKDF2 (HMAC-SHA256) and AES-256-CBC. The passphrase goes in as kstr/klen, so no
  // callback and no prompt.
  core::Bio bio(BIO_new(BIO_s_secmem()));
  if (!bio) throw Error(ExitCode::failure, "cannot create an OpenSSL buffer: " + core::openssl_error_text());
  const int written =
      passphrase ? PEM_write_bio_PrivateKey(bio.get(), key.get(), EVP_aes_256_cbc(), bytes_of(*passphrase),
                                            static_cast<int>(passphrase->size()), nullptr, nullptr)
                 : PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  if (written != 1) {
    throw Error(ExitCode::failure, "cannot write the private key as PEM: " + core::openssl_error_text());
  }
  return KeyPairPem{.private_pem = drain_bio(bio.get()), .public_pem = public_pem_of(key.get())};
}

// ---- PublicKey --------------------------------------------------------------------

struct PublicKey::Impl {
  core::EvpPkey key;
};

PublicKey::PublicKey(std::unique_ptr<Impl> impl, KeyType type, std::string key_id, std::string display)
    : m_impl(std::move(impl)), m_type(type), m_key_id(std::move(key_id)), m_display(std::move(display)) {}
PublicKey::PublicKey(PublicKey&&) noexcept = default;
PublicKey& PublicKey::operator=(PublicKey&&) noexcept = default;
PublicKey::~PublicKey() = default;

PublicKey PublicKey::from_pem(std::string_view pem, std::string display) {
  const std::string label = pem_label(pem);
  if (label != "PUBLIC KEY") {
    throw UsageError(display + " is not a public key: expected a PEM public key (BEGIN PUBLIC KEY), found " +
                         describe_label(label),
                     label.find("PRIVATE KEY") != std::string::npos
                         ? "give the .pub file written beside the private key (never the private key itself)"
                         : std::string());
  }
  core::Bio bio = memory_bio(pem, display);
  core::EvpPkey key(PEM_read_bio_PUBKEY(bio.get(), nullptr, passphrase_callback, nullptr));
  if (!key) throw UsageError(display + " holds a malformed public key: " + core::openssl_error_text());
  ERR_clear_error(); // OpenSSL 3's decoders may leave the formats they tried on the queue
  const KeyType type = key_type_of(key.get(), display);
  std::string id = key_id_of(key.get());
  return PublicKey(std::make_unique<Impl>(Impl{std::move(key)}), type, std::move(id), std::move(display));
}

PublicKey PublicKey::load(const std::filesystem::path& path) {
  const std::string pem = core::read_file(path, k_key_file_limit);
  return from_pem(pem, core::display(path));
}

bool PublicKey::verify(std::string_view data, std::string_view signature) const {
  core::EvpMdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit_ex(ctx.get(), nullptr, digest_for(m_type), nullptr, nullptr, m_impl->key.get(),
                                      nullptr) != 1) {
    throw Error(ExitCode::failure, "cannot start verifying with " + m_display + ": " + core::openssl_error_text());
  }
  // 1: good. 0: the signature does not match. Negative: OpenSSL could not even parse
  // it (a truncated DER, a wrong length). The last two are both "not signed by this
  // key" to the caller; the queue they left is discarded so it cannot leak into the
  // next unrelated error message.
  const int result = EVP_DigestVerify(ctx.get(), bytes_of(signature), signature.size(), bytes_of(data), data.size());
  if (result != 1) ERR_clear_error();
  return result == 1;
}

// ---- PrivateKey -------------------------------------------------------------------

struct PrivateKey::Impl {
  core::EvpPkey key;
};

PrivateKey::PrivateKey(std::unique_ptr<Impl> impl, KeyType type, std::string key_id)
    : m_impl(std::move(impl)), m_type(type), m_key_id(std::move(key_id)) {}
PrivateKey::PrivateKey(PrivateKey&&) noexcept = default;
PrivateKey& PrivateKey::operator=(PrivateKey&&) noexcept = default;
PrivateKey::~PrivateKey() = default;

PrivateKey PrivateKey::from_pem(std::string_view pem, const std::optional<std::string>& passphrase,
                                std::string display) {
  const std::string label = pem_label(pem);
  if (label.find("PRIVATE KEY") == std::string::npos) {
    throw UsageError(display + " is not a private key: expected a PEM private key (BEGIN PRIVATE KEY), found " +
                         describe_label(label),
                     k_keygen_hint);
  }
  const bool encrypted = is_encrypted_pem(pem, label);
  if (encrypted && !passphrase) {
    throw UsageError(display + " is encrypted: give --passphrase-file FILE or set FERRY_KEY_PASSPHRASE");
  }
  core::Bio bio = memory_bio(pem, display);
  PassphraseRequest request{.passphrase = passphrase ? &*passphrase : nullptr};
  core::EvpPkey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, passphrase_callback, &request));
  if (!key) {
    if (encrypted || request.asked) {
      ERR_clear_error();
      if (!passphrase) {
        throw UsageError(display + " is encrypted: give --passphrase-file FILE or set FERRY_KEY_PASSPHRASE");
      }
      throw UsageError("wrong passphrase for " + display,
                       "check the file given with --passphrase-file, or FERRY_KEY_PASSPHRASE");
    }
    throw UsageError(display + " holds a malformed private key: " + core::openssl_error_text());
  }
  ERR_clear_error(); // OpenSSL 3's decoders may leave the formats they tried on the queue
  const KeyType type = key_type_of(key.get(), display);
  std::string id = key_id_of(key.get());
  return PrivateKey(std::make_unique<Impl>(Impl{std::move(key)}), type, std::move(id));
}

PrivateKey PrivateKey::load(const std::filesystem::path& path, const std::optional<std::string>& passphrase) {
  // Refused when group or others may access it (the hint is the chmod that fixes it).
  std::string pem = core::read_secret_file(path, "private key", k_key_file_limit);
  const core::WipeOnExit wipe_pem(pem);
  return from_pem(pem, passphrase, core::display(path));
}

std::string PrivateKey::public_pem() const { return public_pem_of(m_impl->key.get()); }

std::string PrivateKey::sign(std::string_view data) const {
  core::EvpMdCtx ctx(EVP_MD_CTX_new());
  if (!ctx ||
      EVP_DigestSignInit_ex(ctx.get(), nullptr, digest_for(m_type), nullptr, nullptr, m_impl->key.get(), nullptr) != 1) {
    throw Error(ExitCode::failure, "cannot start signing with key " + m_key_id + ": " + core::openssl_error_text());
  }
  std::size_t length = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &length, bytes_of(data), data.size()) != 1) {
    throw Error(ExitCode::failure, "cannot size a signature with key " + m_key_id + ": " + core::openssl_error_text());
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length, bytes_of(data),
                     data.size()) != 1) {
    throw Error(ExitCode::failure, "cannot sign with key " + m_key_id + ": " + core::openssl_error_text());
  }
  signature.resize(length); // an ECDSA DER signature is usually shorter than its bound
  return signature;
}

// ---- TrustedKeys ------------------------------------------------------------------

void TrustedKeys::add(PublicKey key) {
  if (find(key.key_id()) != nullptr) return; // the same key given twice
  m_keys.push_back(std::move(key));
}

const PublicKey* TrustedKeys::find(std::string_view key_id) const {
  for (const PublicKey& key : m_keys) {
    if (key.key_id() == key_id) return &key;
  }
  return nullptr;
}

const PublicKey* TrustedKeys::signer_of(std::string_view data, std::string_view signature) const {
  for (const PublicKey& key : m_keys) {
    if (key.verify(data, signature)) return &key;
  }
  return nullptr;
}

std::vector<std::string> TrustedKeys::key_ids() const {
  std::vector<std::string> ids;
  ids.reserve(m_keys.size());
  for (const PublicKey& key : m_keys) ids.push_back(key.key_id());
  return ids;
}

} // namespace ferry::bundle
