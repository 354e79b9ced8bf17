// Fuzz target: ferry.json (bundle::parse_descriptor) and its signature, verified with
// fixed test keys the way a bundle's head is (BundleReader::open with the signature
// required); also the other signed JSON ferry reads, inventory receipts, and the
// volume label of split bundles. The input is the JSON bytes, then optionally a NUL byte
// and the signature text (base64, as in ferry.json.sig).
// SPDX-License-Identifier: Apache-2.0
#include "bundle/bundle_reader.hpp"
#include "bundle/descriptor.hpp"
#include "bundle/receipt.hpp"
#include "bundle/signing.hpp"
#include "bundle/tar_writer.hpp"
#include "bundle/volumes.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/io.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

using namespace ferry;

namespace {

// Test keys for fuzzing only; the seeds in fuzz/corpus/ferry_json were signed with
// their private halves (not kept). One Ed25519, one ECDSA P-256, as ferry supports.
constexpr std::string_view k_ed25519_pub = R"(-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAsGafcLE/My47Ux8MJerdhcKkWjyUUlmmmvitKHBL9ms=
-----END PUBLIC KEY-----
)";
constexpr std::string_view k_ecdsa_pub = R"(-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEujdfvTKkpmbligKdpIlLRC5JtUzR
AT0LExmcxP2UY5RnT+8X62zy3Y4TaAP5Nrtfb6lEnGA7zAVObbRXauaCDQ==
-----END PUBLIC KEY-----
)";

const bundle::TrustedKeys& trusted() {
  static const bundle::TrustedKeys keys = [] {
    bundle::TrustedKeys k;
    k.add(bundle::PublicKey::from_pem(k_ed25519_pub, "fuzz-ed25519.pub"));
    k.add(bundle::PublicKey::from_pem(k_ecdsa_pub, "fuzz-ecdsa.pub"));
    return k;
  }();
  return keys;
}

// What ferry writes it must read back as the same thing.
void check_descriptor(std::string_view json) {
  const bundle::BundleDescriptor d = bundle::parse_descriptor(json);
  const std::string once = bundle::to_json(d);
  std::string twice;
  try {
    twice = bundle::to_json(bundle::parse_descriptor(once));
  } catch (const core::Error&) {
    std::abort();
  }
  if (once != twice) std::abort();
  (void)d.blob_bytes();
  (void)d.unshared_bytes();
  (void)d.omitted_bytes();
  for (const auto& base : d.bases) (void)bundle::base_text(base);
}

void check_receipt(std::string_view json) {
  const bundle::Receipt r = bundle::parse_receipt(json, "fuzz-receipt.json");
  const std::string once = bundle::to_json(r);
  std::string twice;
  try {
    twice = bundle::to_json(bundle::parse_receipt(once, "round trip"));
  } catch (const core::Error&) {
    std::abort();
  }
  if (once != twice) std::abort();
}

void check_volume_label(std::string_view json) {
  const bundle::VolumeLabel label = bundle::parse_volume_label(json);
  if (label.volume >= label.count) std::abort();
  if (bundle::to_json(bundle::parse_volume_label(bundle::to_json(label))) != bundle::to_json(label)) std::abort();
}

// A bundle head as pack writes it, opened as unpack does.
void open_head(std::string_view json, const std::optional<std::string_view>& signature_text) {
  core::StringSink out;
  {
    bundle::TarWriter tar(out, {});
    tar.add({.path = "ferry.json", .size = json.size()}, json);
    if (signature_text) tar.add({.path = "ferry.json.sig", .size = signature_text->size()}, *signature_text);
    tar.finish();
  }
  core::StringSource in(out.bytes());
  bundle::BundleReader reader(in, "fuzz.tar.zst");
  reader.open(trusted(), bundle::SignaturePolicy::require);
  // Accepted: some trusted key must verify these exact bytes.
  const std::optional<std::string> raw = core::base64_decode(signature_text.value_or(""));
  bool verified = false;
  for (const auto& key : trusted().keys()) verified = verified || (raw && key.verify(json, *raw));
  if (!signature_text || !verified) std::abort();
  if (reader.signature().status != bundle::SignatureCheck::Status::verified) std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = input.find('\0');
  const std::string_view json = input.substr(0, nul);
  std::optional<std::string_view> signature_text;
  if (nul != std::string_view::npos) signature_text = input.substr(nul + 1);

  try {
    check_descriptor(json);
  } catch (const core::Error&) {
  }
  try {
    check_receipt(json);
  } catch (const core::Error&) {
  }
  try {
    check_volume_label(json);
  } catch (const core::Error&) {
  }
  if (signature_text) {
    try {
      (void)bundle::verify_receipt_signature(json, *signature_text, trusted(), "fuzz-receipt.json");
    } catch (const core::Error&) {
    }
  }
  try {
    open_head(json, signature_text);
  } catch (const core::Error&) {
  }
  return 0;
}
