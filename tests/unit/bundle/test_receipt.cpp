// Tests for bundle/receipt (RECEIPT.json of `ferry inventory`): canonical bytes, parsing
// and its refusals, and the signature check.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/receipt.hpp"
#include "bundle/signing.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "support/test_support.hpp"

#include <nlohmann/json.hpp>

#include <functional>

using namespace ferry;
using nlohmann::json;

namespace {

bundle::Receipt sample() {
  bundle::Receipt r;
  r.registry = "registry.local:5000/mirror";
  r.created = bundle::rfc3339_utc(1700000000);
  r.tool_version = "0.1.0";
  bundle::ReceiptRepository web;
  web.name = "mirror/shop/web";
  web.tags = {{"1.0", core::sha256_of("m1")}, {"1.1", core::sha256_of("m2")}};
  web.manifests = {{core::sha256_of("m1"), "application/vnd.oci.image.manifest.v1+json", 400}};
  r.repositories.push_back(web);
  r.blobs = {{core::sha256_of("config"), 120, {"mirror/shop/web"}},
             {core::sha256_of("layer"), 4096, {"mirror/shop/api", "mirror/shop/web"}}};
  r.problems = {{"mirror/shop/web", "1.1", "blob sha256:… of manifest sha256:… is not in the repository (HEAD)"}};
  return r;
}

std::string error_of(std::string_view bytes) {
  try {
    (void)bundle::parse_receipt(bytes, "receipt r.json");
  } catch (const core::IntegrityError& e) {
    return e.what();
  }
  FAIL("no IntegrityError");
  return {};
}

// The sample's JSON with `edit` applied.
std::string edited(const std::function<void(json&)>& edit) {
  json j = json::parse(bundle::to_json(sample()));
  edit(j);
  return j.dump();
}

struct Keys {
  bundle::KeyPairPem pair = bundle::generate_key_pair(bundle::KeyType::ed25519, std::nullopt);
  bundle::PrivateKey key = bundle::PrivateKey::from_pem(pair.private_pem, std::nullopt, "inventory.key");
  bundle::TrustedKeys trusted;
  Keys() { trusted.add(bundle::PublicKey::from_pem(pair.public_pem, "inventory.pub")); }
};

// A receipt signed by `key` (its signer field naming it), and the base64 signature.
std::pair<std::string, std::string> signed_sample(const bundle::PrivateKey& key) {
  bundle::Receipt r = sample();
  r.signer = bundle::SignerRecord{key.key_id(), std::string(bundle::to_string(key.type()))};
  const std::string bytes = bundle::to_json(r);
  return {bytes, core::base64_encode(key.sign(bytes))};
}

} // namespace

TEST_SUITE("bundle") {

TEST_CASE("to_json(Receipt) is canonical: sorted keys, compact, a trailing newline, versioned") {
  const std::string text = bundle::to_json(sample());
  CHECK(text.back() == '\n');
  CHECK(text.find(": ") == std::string::npos);
  CHECK(text.rfind("{\"blobs\":[", 0) == 0);
  CHECK(bundle::to_json(sample()) == text);
  const json j = json::parse(text);
  CHECK(j["receiptVersion"] == 1);
  CHECK(j["mediaType"] == "application/vnd.ferry.receipt.v1+json");
  CHECK(j["repositories"][0]["tags"]["1.1"] == core::sha256_of("m2").str());
  CHECK(j["blobs"][1]["repositories"] == json::array({"mirror/shop/api", "mirror/shop/web"}));
  CHECK_FALSE(j.contains("signer"));
}

TEST_CASE("parse_receipt round-trips to_json") {
  const std::string text = bundle::to_json(sample());
  const bundle::Receipt back = bundle::parse_receipt(text, "r.json");
  CHECK(bundle::to_json(back) == text);
  CHECK(back.registry == "registry.local:5000/mirror");
  REQUIRE(back.repositories.size() == 1);
  CHECK(back.repositories[0].tags.size() == 2);
  REQUIRE(back.find_blob(core::sha256_of("layer")) != nullptr);
  CHECK(back.find_blob(core::sha256_of("layer"))->size == 4096);
  CHECK(back.find_blob(core::sha256_of("absent")) == nullptr);
  CHECK(back.problems.size() == 1);
}

TEST_CASE("parse_receipt refuses another receiptVersion, naming it") {
  const std::string message = error_of(edited([](json& j) { j["receiptVersion"] = 2; }));
  CHECK(ferry::test::contains(message, "receipt version 2"));
  CHECK(ferry::test::contains(message, "reads version 1"));
}

TEST_CASE("parse_receipt names the field that is wrong") {
  SUBCASE("not JSON") { CHECK(ferry::test::contains(error_of("{not json"), "is not valid JSON")); }
  SUBCASE("a blob digest that is not sha256") {
    const std::string message = error_of(edited([](json& j) { j["blobs"][0]["digest"] = "md5:abc"; }));
    CHECK(ferry::test::contains(message, "blobs[0].digest"));
  }
  SUBCASE("a negative size") {
    CHECK(ferry::test::contains(error_of(edited([](json& j) { j["blobs"][1]["size"] = -1; })), "blobs[1].size"));
  }
  SUBCASE("a blob listed twice") {
    const std::string message = error_of(edited([](json& j) { j["blobs"].push_back(j["blobs"][0]); }));
    CHECK(ferry::test::contains(message, "a second time"));
  }
  SUBCASE("a tag naming no digest") {
    CHECK(ferry::test::contains(error_of(edited([](json& j) { j["repositories"][0]["tags"]["1.0"] = 3; })), "tags.1.0"));
  }
  SUBCASE("no registry") {
    CHECK(ferry::test::contains(error_of(edited([](json& j) { j.erase("registry"); })), "has no field 'registry'"));
  }
  SUBCASE("another media type") {
    CHECK(ferry::test::contains(error_of(edited([](json& j) { j["mediaType"] = "x"; })), "mediaType"));
  }
}

TEST_CASE("verify_receipt_signature accepts the exact bytes signed by a trusted key") {
  const Keys keys;
  const auto [bytes, signature] = signed_sample(keys.key);
  CHECK(bundle::verify_receipt_signature(bytes, signature + "\n", keys.trusted, "r.json") == keys.key.key_id());
}

TEST_CASE("verify_receipt_signature refuses an edited receipt") {
  const Keys keys;
  auto [bytes, signature] = signed_sample(keys.key);
  bytes.replace(bytes.find("4096"), 4, "4097");
  try {
    (void)bundle::verify_receipt_signature(bytes, signature, keys.trusted, "r.json");
    FAIL("accepted");
  } catch (const core::IntegrityError& e) {
    CHECK(ferry::test::contains(e.what(), "does not verify"));
  }
}

TEST_CASE("verify_receipt_signature names a signer that is not trusted") {
  const Keys signer;
  const Keys other;
  const auto [bytes, signature] = signed_sample(signer.key);
  try {
    (void)bundle::verify_receipt_signature(bytes, signature, other.trusted, "r.json");
    FAIL("accepted");
  } catch (const core::IntegrityError& e) {
    CHECK(ferry::test::contains(e.what(), signer.key.key_id()));
    CHECK(ferry::test::contains(e.what(), "not among the trusted keys"));
  }
}

TEST_CASE("verify_receipt_signature refuses a receipt whose signer field names another key") {
  const Keys keys;
  bundle::Receipt r = sample();
  r.signer = bundle::SignerRecord{"sha256:" + std::string(64, 'b'), "ed25519"};
  const std::string bytes = bundle::to_json(r);
  CHECK_THROWS_AS((void)bundle::verify_receipt_signature(bytes, core::base64_encode(keys.key.sign(bytes)), keys.trusted,
                                                         "r.json"),
                  core::IntegrityError);
  CHECK_THROWS_AS((void)bundle::verify_receipt_signature(bytes, "not base64!", keys.trusted, "r.json"),
                  core::IntegrityError);
}

} // TEST_SUITE
