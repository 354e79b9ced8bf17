// Tests for bundle/signing: key generation and loading, signatures, interop with openssl.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/signing.hpp"
#include "core/digest.hpp"
#include "core/error.hpp"
#include "core/openssl_error.hpp"
#include "support/test_support.hpp"

#include <openssl/pem.h>

#include <sys/stat.h>

#include <functional>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using ferry::bundle::generate_key_pair;
using ferry::bundle::KeyType;
using ferry::bundle::PrivateKey;
using ferry::bundle::PublicKey;
using ferry::bundle::TrustedKeys;
using ferry::test::have_tool;
using ferry::test::run_shell;
using ferry::test::shell_quote;

namespace {

const std::string k_data = "{\"apiVersion\":\"ferry/v1\",\"blobs\":[]}\n";

// Writes a key file the way keygen does: owner-only.
fs::path write_key(const fs::path& path, const std::string& pem, unsigned mode = 0600) {
  ferry::test::write_file(path, pem);
  REQUIRE(::chmod(path.c_str(), mode) == 0);
  return path;
}

std::string usage_error_text(const std::function<void()>& fn, std::string* hint = nullptr) {
  try {
    fn();
  } catch (const ferry::core::UsageError& e) {
    if (hint) *hint = e.hint();
    return e.what();
  }
  FAIL("no UsageError");
  return {};
}

// A private key PEM of a type ferry does not sign with, made with OpenSSL directly.
std::string foreign_private_pem(const char* algorithm, const char* parameter) {
  EVP_PKEY* raw = parameter ? EVP_PKEY_Q_keygen(nullptr, nullptr, algorithm, parameter)
                            : EVP_PKEY_Q_keygen(nullptr, nullptr, algorithm, static_cast<size_t>(1024));
  REQUIRE_MESSAGE(raw, ferry::core::openssl_error_text());
  ferry::core::EvpPkey key(raw);
  ferry::core::Bio bio(BIO_new(BIO_s_mem()));
  REQUIRE(PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1);
  std::string pem;
  char buffer[4096];
  for (int n; (n = BIO_read(bio.get(), buffer, sizeof buffer)) > 0;) pem.append(buffer, static_cast<std::size_t>(n));
  return pem;
}

} // namespace

TEST_SUITE("bundle") {

TEST_CASE("generate_key_pair makes keys that sign and verify") {
  for (const KeyType type : {KeyType::ed25519, KeyType::ecdsa_p256}) {
    for (const bool encrypted : {false, true}) {
      CAPTURE(ferry::bundle::to_string(type));
      CAPTURE(encrypted);
      const std::optional<std::string> passphrase =
          encrypted ? std::optional<std::string>("correct horse battery staple") : std::nullopt;
      const auto pair = generate_key_pair(type, passphrase);
      CHECK(pair.private_pem.find(encrypted ? "-----BEGIN ENCRYPTED PRIVATE KEY-----" : "-----BEGIN PRIVATE KEY-----") ==
            0);
      CHECK(pair.public_pem.find("-----BEGIN PUBLIC KEY-----") == 0);

      const PrivateKey private_key = PrivateKey::from_pem(pair.private_pem, passphrase, "key.pem");
      const PublicKey public_key = PublicKey::from_pem(pair.public_pem, "key.pub");
      CHECK(private_key.type() == type);
      CHECK(public_key.type() == type);
      CHECK(public_key.display() == "key.pub");

      const std::string signature = private_key.sign(k_data);
      if (type == KeyType::ed25519) CHECK(signature.size() == 64);
      if (type == KeyType::ecdsa_p256) CHECK(static_cast<unsigned char>(signature[0]) == 0x30); // DER SEQUENCE
      CHECK(public_key.verify(k_data, signature));
    }
  }
}

TEST_CASE("generate_key_pair encrypts with PBES2, PBKDF2 and AES-256-CBC") {
  if (!have_tool("openssl")) {
    MESSAGE("skipped: openssl is not on PATH");
    return;
  }
  ferry::test::TestDir dir;
  const auto pair = generate_key_pair(KeyType::ed25519, std::string("secret"));
  const fs::path file = write_key(dir / "key.pem", pair.private_pem);
  const auto [status, out] = run_shell("openssl asn1parse -in " + shell_quote(file));
  REQUIRE_MESSAGE(status == 0, out);
  CHECK(out.find("PBES2") != std::string::npos);
  CHECK(out.find("PBKDF2") != std::string::npos);
  CHECK(out.find("aes-256-cbc") != std::string::npos);
}

TEST_CASE("PrivateKey::from_pem with a wrong passphrase is a UsageError saying so") {
  const auto pair = generate_key_pair(KeyType::ecdsa_p256, std::string("right"));
  const std::string text = usage_error_text([&] { PrivateKey::from_pem(pair.private_pem, std::string("wrong"), "site.key"); });
  CHECK(text == "wrong passphrase for site.key");
}

TEST_CASE("PrivateKey::from_pem of an encrypted key without a passphrase names the flags") {
  const auto pair = generate_key_pair(KeyType::ed25519, std::string("right"));
  const std::string text = usage_error_text([&] { PrivateKey::from_pem(pair.private_pem, std::nullopt, "site.key"); });
  CHECK(text == "site.key is encrypted: give --passphrase-file FILE or set FERRY_KEY_PASSPHRASE");
}

TEST_CASE("PrivateKey::load refuses a key file readable by group or others") {
  ferry::test::TestDir dir;
  const auto pair = generate_key_pair(KeyType::ed25519, std::nullopt);
  for (const unsigned mode : {0640u, 0604u, 0660u}) {
    CAPTURE(mode);
    const fs::path file = write_key(dir / "open.key", pair.private_pem, mode);
    std::string hint;
    const std::string text = usage_error_text([&] { PrivateKey::load(file, std::nullopt); }, &hint);
    CHECK(text.find(file.string()) != std::string::npos);
    CHECK(hint == "chmod 600 " + file.string());
  }
  SUBCASE("and loads it once it is owner-only") {
    const fs::path file = write_key(dir / "closed.key", pair.private_pem, 0600);
    CHECK(PrivateKey::load(file, std::nullopt).key_id() == PublicKey::from_pem(pair.public_pem, "k").key_id());
  }
}

TEST_CASE("PrivateKey::load of a missing file is a UsageError naming it") {
  ferry::test::TestDir dir;
  const std::string text = usage_error_text([&] { PrivateKey::load(dir / "nope.key", std::nullopt); });
  CHECK(text.find("nope.key") != std::string::npos);
}

TEST_CASE("PrivateKey::from_pem names an unsupported key type") {
  SUBCASE("RSA") {
    const std::string text = usage_error_text([&] { PrivateKey::from_pem(foreign_private_pem("RSA", nullptr), std::nullopt, "rsa.key"); });
    CHECK(text.find("rsa.key holds a key of type RSA") == 0);
    CHECK(text.find("ed25519") != std::string::npos);
  }
  SUBCASE("EC on P-384") {
    const std::string text =
        usage_error_text([&] { PrivateKey::from_pem(foreign_private_pem("EC", "P-384"), std::nullopt, "p384.key"); });
    CHECK(text.find("p384.key holds an EC key on curve secp384r1") == 0);
  }
}

TEST_CASE("PrivateKey::from_pem refuses a public key and text that is no PEM") {
  const auto pair = generate_key_pair(KeyType::ed25519, std::nullopt);
  CHECK(usage_error_text([&] { PrivateKey::from_pem(pair.public_pem, std::nullopt, "x.pub"); }) ==
        "x.pub is not a private key: expected a PEM private key (BEGIN PRIVATE KEY), found BEGIN PUBLIC KEY");
  CHECK(usage_error_text([&] { PrivateKey::from_pem("hello", std::nullopt, "x.txt"); }).find("found no PEM block") !=
        std::string::npos);
}

TEST_CASE("PublicKey::from_pem refuses anything but a PEM public key") {
  const auto pair = generate_key_pair(KeyType::ed25519, std::nullopt);
  SUBCASE("a private key") {
    std::string hint;
    const std::string text = usage_error_text([&] { PublicKey::from_pem(pair.private_pem, "key.pem"); }, &hint);
    CHECK(text == "key.pem is not a public key: expected a PEM public key (BEGIN PUBLIC KEY), found BEGIN PRIVATE KEY");
    CHECK_FALSE(hint.empty());
  }
  SUBCASE("no PEM at all") {
    CHECK(usage_error_text([&] { PublicKey::from_pem("ssh-ed25519 AAAA", "id.pub"); }) ==
          "id.pub is not a public key: expected a PEM public key (BEGIN PUBLIC KEY), found no PEM block");
  }
  SUBCASE("a damaged body") {
    std::string pem = pair.public_pem;
    pem.replace(pem.find('\n') + 1, 8, "!!!!!!!!");
    CHECK(usage_error_text([&] { PublicKey::from_pem(pem, "bad.pub"); }).find("bad.pub holds a malformed public key") ==
          0);
  }
}

TEST_CASE("PublicKey::load of a missing file is a UsageError naming it") {
  ferry::test::TestDir dir;
  CHECK(usage_error_text([&] { PublicKey::load(dir / "missing.pub"); }).find("missing.pub") != std::string::npos);
}

TEST_CASE("PublicKey::verify rejects tampered data and tampered signatures without throwing") {
  for (const KeyType type : {KeyType::ed25519, KeyType::ecdsa_p256}) {
    CAPTURE(ferry::bundle::to_string(type));
    const auto pair = generate_key_pair(type, std::nullopt);
    const PrivateKey private_key = PrivateKey::from_pem(pair.private_pem, std::nullopt, "k");
    const PublicKey public_key = PublicKey::from_pem(pair.public_pem, "k.pub");
    const std::string signature = private_key.sign(k_data);
    REQUIRE(public_key.verify(k_data, signature));

    std::string data = k_data;
    data[5] ^= 1;
    CHECK_FALSE(public_key.verify(data, signature));
    std::string bad = signature;
    bad[bad.size() - 1] ^= 1;
    CHECK_FALSE(public_key.verify(k_data, bad));
    CHECK_FALSE(public_key.verify(k_data, signature.substr(0, signature.size() - 1)));
    CHECK_FALSE(public_key.verify(k_data, ""));
    CHECK_FALSE(public_key.verify(k_data, std::string(200, '\x30')));

    const auto other = generate_key_pair(type, std::nullopt);
    CHECK_FALSE(PublicKey::from_pem(other.public_pem, "other.pub").verify(k_data, signature));
    CHECK(ferry::core::openssl_error_text() == "no OpenSSL error recorded"); // the queue was left clean
  }
}

TEST_CASE("PrivateKey::sign with Ed25519 gives the same signature for the same data") {
  const PrivateKey key = PrivateKey::from_pem(generate_key_pair(KeyType::ed25519, std::nullopt).private_pem, std::nullopt, "k");
  CHECK(key.sign(k_data) == key.sign(k_data));
  CHECK(key.sign(k_data) != key.sign(k_data + " "));
}

TEST_CASE("PrivateKey::sign with ECDSA gives a different valid signature each time") {
  const auto pair = generate_key_pair(KeyType::ecdsa_p256, std::nullopt);
  const PrivateKey key = PrivateKey::from_pem(pair.private_pem, std::nullopt, "k");
  const PublicKey public_key = PublicKey::from_pem(pair.public_pem, "k.pub");
  const std::string first = key.sign(k_data);
  const std::string second = key.sign(k_data);
  CHECK(first != second);
  CHECK(public_key.verify(k_data, first));
  CHECK(public_key.verify(k_data, second));
}

TEST_CASE("key_id is the sha256 of the public key DER, the same for both halves of a pair") {
  for (const KeyType type : {KeyType::ed25519, KeyType::ecdsa_p256}) {
    CAPTURE(ferry::bundle::to_string(type));
    const auto pair = generate_key_pair(type, std::string("pass"));
    const PrivateKey private_key = PrivateKey::from_pem(pair.private_pem, std::string("pass"), "k");
    const std::string id = PublicKey::from_pem(pair.public_pem, "k.pub").key_id();
    CHECK(ferry::core::Digest::try_parse(id).has_value());
    CHECK(private_key.key_id() == id);
    CHECK(PublicKey::from_pem(pair.public_pem, "again").key_id() == id);
    CHECK(PublicKey::from_pem(private_key.public_pem(), "derived").key_id() == id);
    CHECK(private_key.public_pem() == pair.public_pem);
    CHECK(generate_key_pair(type, std::nullopt).public_pem != pair.public_pem);
  }
}

TEST_CASE("key_id equals sha256sum of `openssl pkey -pubin -outform DER`") {
  if (!have_tool("openssl")) {
    MESSAGE("skipped: openssl is not on PATH");
    return;
  }
  ferry::test::TestDir dir;
  for (const KeyType type : {KeyType::ed25519, KeyType::ecdsa_p256}) {
    CAPTURE(ferry::bundle::to_string(type));
    const auto pair = generate_key_pair(type, std::nullopt);
    ferry::test::write_file(dir / "key.pub", pair.public_pem);
    const auto [status, out] =
        run_shell("openssl pkey -pubin -in " + shell_quote(dir / "key.pub") + " -outform DER -out " +
                  shell_quote(dir / "key.der"));
    REQUIRE_MESSAGE(status == 0, out);
    CHECK(PublicKey::load(dir / "key.pub").key_id() == ferry::core::sha256_of(ferry::test::read_file(dir / "key.der")).str());
  }
}

TEST_CASE("openssl verifies ferry's signatures") {
  if (!have_tool("openssl")) {
    MESSAGE("skipped: openssl is not on PATH");
    return;
  }
  ferry::test::TestDir dir;
  ferry::test::write_file(dir / "ferry.json", k_data);
  SUBCASE("Ed25519 with pkeyutl -rawin") {
    const auto pair = generate_key_pair(KeyType::ed25519, std::nullopt);
    ferry::test::write_file(dir / "pub.pem", pair.public_pem);
    ferry::test::write_file(dir / "ferry.json.sig",
                            PrivateKey::from_pem(pair.private_pem, std::nullopt, "k").sign(k_data));
    const std::string command = "openssl pkeyutl -verify -pubin -inkey " + shell_quote(dir / "pub.pem") +
                                " -rawin -in " + shell_quote(dir / "ferry.json") + " -sigfile " +
                                shell_quote(dir / "ferry.json.sig");
    const auto [status, out] = run_shell(command);
    CHECK_MESSAGE(status == 0, out);
    // And it is not just saying yes.
    ferry::test::write_file(dir / "ferry.json", k_data + "x");
    CHECK(run_shell(command).status != 0);
  }
  SUBCASE("ECDSA with dgst -sha256") {
    const auto pair = generate_key_pair(KeyType::ecdsa_p256, std::nullopt);
    ferry::test::write_file(dir / "pub.pem", pair.public_pem);
    ferry::test::write_file(dir / "ferry.json.sig",
                            PrivateKey::from_pem(pair.private_pem, std::nullopt, "k").sign(k_data));
    const std::string command = "openssl dgst -sha256 -verify " + shell_quote(dir / "pub.pem") + " -signature " +
                                shell_quote(dir / "ferry.json.sig") + " " + shell_quote(dir / "ferry.json");
    const auto [status, out] = run_shell(command);
    CHECK_MESSAGE(status == 0, out);
    ferry::test::write_file(dir / "ferry.json", k_data + "x");
    CHECK(run_shell(command).status != 0);
  }
}

TEST_CASE("PrivateKey::load reads keys made by openssl genpkey") {
  if (!have_tool("openssl")) {
    MESSAGE("skipped: openssl is not on PATH");
    return;
  }
  ferry::test::TestDir dir;
  const fs::path key = dir / "key.pem";
  const fs::path pub = dir / "key.pub";
  std::optional<std::string> passphrase;
  KeyType type = KeyType::ed25519;
  std::string options;
  SUBCASE("ed25519") { options = "-algorithm ed25519"; }
  SUBCASE("ed25519, encrypted") {
    options = "-algorithm ed25519 -aes-256-cbc -pass pass:s3cret";
    passphrase = "s3cret";
  }
  SUBCASE("EC P-256") {
    options = "-algorithm EC -pkeyopt ec_paramgen_curve:P-256";
    type = KeyType::ecdsa_p256;
  }
  CAPTURE(options);
  const auto genpkey = run_shell("umask 077 && openssl genpkey " + options + " -out " + shell_quote(key));
  REQUIRE_MESSAGE(genpkey.status == 0, genpkey.output);
  const auto pkey = run_shell("openssl pkey -in " + shell_quote(key) +
                              (passphrase ? " -passin pass:" + *passphrase : "") + " -pubout -out " + shell_quote(pub));
  REQUIRE_MESSAGE(pkey.status == 0, pkey.output);

  const PrivateKey private_key = PrivateKey::load(key, passphrase);
  const PublicKey public_key = PublicKey::load(pub);
  CHECK(private_key.type() == type);
  CHECK(private_key.key_id() == public_key.key_id());
  CHECK(public_key.verify(k_data, private_key.sign(k_data)));
}

TEST_CASE("TrustedKeys::find returns the key with that id") {
  const auto a = generate_key_pair(KeyType::ed25519, std::nullopt);
  const auto b = generate_key_pair(KeyType::ecdsa_p256, std::nullopt);
  const std::string a_id = PublicKey::from_pem(a.public_pem, "a").key_id();
  const std::string b_id = PublicKey::from_pem(b.public_pem, "b").key_id();
  TrustedKeys keys;
  CHECK(keys.empty());
  CHECK(keys.find(a_id) == nullptr);
  keys.add(PublicKey::from_pem(a.public_pem, "a.pub"));
  keys.add(PublicKey::from_pem(b.public_pem, "b.pub"));
  keys.add(PublicKey::from_pem(a.public_pem, "a-again.pub")); // the same key twice counts once
  CHECK_FALSE(keys.empty());
  CHECK(keys.key_ids() == std::vector<std::string>{a_id, b_id});
  REQUIRE(keys.find(b_id) != nullptr);
  CHECK(keys.find(b_id)->display() == "b.pub");
  CHECK(keys.find(b_id)->type() == KeyType::ecdsa_p256);
  REQUIRE(keys.find(a_id) != nullptr);
  CHECK(keys.find(a_id)->display() == "a.pub");
  CHECK(keys.find("sha256:" + std::string(64, '0')) == nullptr);
}

TEST_CASE("parse_key_type accepts ed25519 and ecdsa-p256 and suggests near misses") {
  CHECK(ferry::bundle::parse_key_type("ed25519") == KeyType::ed25519);
  CHECK(ferry::bundle::parse_key_type("ecdsa-p256") == KeyType::ecdsa_p256);
  CHECK(ferry::bundle::to_string(KeyType::ecdsa_p256) == "ecdsa-p256");
  std::string hint;
  CHECK(usage_error_text([] { ferry::bundle::parse_key_type("ed2519"); }, &hint) ==
        "unknown key type 'ed2519': expected ed25519 or ecdsa-p256");
  CHECK(hint == "did you mean ed25519?");
}

} // TEST_SUITE
