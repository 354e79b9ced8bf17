// Tests for differential bundles in bundle/descriptor, bundle/volumes and bundle/bundle_reader:
// `bases`, blobs marked `omitted`, which no volume holds and no reader expects.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/bundle_reader.hpp"
#include "bundle/descriptor.hpp"
#include "bundle/signing.hpp"
#include "bundle/tar_writer.hpp"
#include "bundle/volumes.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "support/test_support.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <map>

using namespace ferry;
using nlohmann::json;

namespace {

const std::string k_manifest_type = "application/vnd.oci.image.manifest.v1+json";
const std::string k_layer_type = "application/vnd.oci.image.layer.v1.tar+gzip";
const std::string k_config_type = "application/vnd.oci.image.config.v1+json";

// One image: a manifest, a config and two layers, of which `omit` are left out.
struct Image {
  std::string config = R"({"architecture":"amd64","os":"linux"})";
  std::string old_layer = ferry::test::random_bytes(200000, 1);
  std::string new_layer = ferry::test::random_bytes(150000, 2);
  std::string manifest;
  Image() {
    auto descriptor = [](const std::string& type, const std::string& bytes) {
      return json{{"mediaType", type}, {"digest", core::sha256_of(bytes).str()}, {"size", bytes.size()}};
    };
    manifest = json{{"schemaVersion", 2},
                    {"mediaType", k_manifest_type},
                    {"config", descriptor(k_config_type, config)},
                    {"layers", json::array({descriptor(k_layer_type, old_layer), descriptor(k_layer_type, new_layer)})}}
                   .dump();
  }
};

bundle::BaseRecord receipt_base() {
  bundle::BaseRecord base{"receipt", "receipt.json", core::sha256_of("receipt")};
  base.registry = "registry.local/mirror";
  base.created = "2025-06-01T00:00:00Z";
  return base;
}

// ferry.json of `image` with its old layer omitted (a receipt saw it in mirror/shop/web).
bundle::BundleDescriptor differential(const Image& image) {
  bundle::BundleDescriptor d;
  d.name = "shop";
  d.version = "2";
  d.created = bundle::rfc3339_utc(0);
  d.tool_version = "0.1.0";
  const std::string layout = R"({"imageLayoutVersion":"1.0.0"})";
  d.layout = {{"oci-layout", core::sha256_of(layout), layout.size()}, {"index.json", core::sha256_of("{}"), 2}};
  d.images.push_back({"example.com/shop/web:2", "example.com/shop/web:2", core::sha256_of(image.manifest), std::nullopt,
                      k_manifest_type, {"linux/amd64"},
                      image.manifest.size() + image.config.size() + image.old_layer.size() + image.new_layer.size()});
  d.bases.push_back(receipt_base());
  d.blobs = {{core::sha256_of(image.manifest), image.manifest.size(), k_manifest_type},
             {core::sha256_of(image.old_layer), image.old_layer.size(), k_layer_type},
             {core::sha256_of(image.new_layer), image.new_layer.size(), k_layer_type},
             {core::sha256_of(image.config), image.config.size(), k_config_type}};
  d.blobs[1].omitted = bundle::OmittedRecord{{0}, {"shop/web"}};
  return d;
}

std::string integrity_error(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const core::IntegrityError& e) {
    return e.what();
  }
  FAIL("no IntegrityError");
  return {};
}

std::string edited(const bundle::BundleDescriptor& d, const std::function<void(json&)>& edit) {
  json j = json::parse(bundle::to_json(d));
  edit(j);
  return j.dump();
}

// A signed one-file bundle of `d`, its stream holding `entries` (path -> bytes) after the layout.
struct Written {
  std::string bytes;
  bundle::TrustedKeys keys;
};
Written write_bundle(bundle::BundleDescriptor d, const std::vector<std::pair<std::string, std::string>>& entries) {
  Written w;
  const auto pair = bundle::generate_key_pair(bundle::KeyType::ed25519, std::nullopt);
  const auto key = bundle::PrivateKey::from_pem(pair.private_pem, std::nullopt, "k");
  w.keys.add(bundle::PublicKey::from_pem(pair.public_pem, "k.pub"));
  d.signer = bundle::SignerRecord{key.key_id(), "ed25519"};
  const std::string descriptor = bundle::to_json(d);
  core::StringSink out;
  bundle::TarWriter tar(out, {});
  auto add = [&](const std::string& path, const std::string& bytes) {
    tar.add({.path = path, .size = bytes.size()}, bytes);
  };
  add("ferry.json", descriptor);
  add("ferry.json.sig", core::base64_encode(key.sign(descriptor)));
  add("oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  add("index.json", "{}");
  for (const auto& [path, bytes] : entries) add(path, bytes);
  tar.finish();
  w.bytes = out.take();
  return w;
}

std::string path_of(const std::string& bytes) { return bundle::blob_entry_path(core::sha256_of(bytes)); }

} // namespace

TEST_SUITE("bundle") {

TEST_CASE("to_json and parse_descriptor keep the bases and the omitted blobs") {
  const Image image;
  const bundle::BundleDescriptor d = differential(image);
  const std::string text = bundle::to_json(d);
  const json j = json::parse(text);
  CHECK(j["bases"][0]["kind"] == "receipt");
  CHECK(j["bases"][0]["registry"] == "registry.local/mirror");
  CHECK_FALSE(j["bases"][0].contains("name")); // empty fields are left out
  CHECK(j["blobs"][1]["omitted"] == json{{"bases", {0}}, {"repositories", {"shop/web"}}});
  CHECK_FALSE(j["blobs"][2].contains("omitted"));
  const bundle::BundleDescriptor back = bundle::parse_descriptor(text);
  CHECK(bundle::to_json(back) == text);
  REQUIRE(back.bases.size() == 1);
  CHECK(bundle::base_text(back.bases[0]) == "receipt receipt.json of registry.local/mirror (2025-06-01T00:00:00Z)");
  REQUIRE(back.blobs[1].omitted.has_value());
  CHECK(back.blobs[1].omitted->repositories == std::vector<std::string>{"shop/web"});
  CHECK(back.differential());
  // A full bundle has no `bases`.
  bundle::BundleDescriptor full = d;
  full.bases.clear();
  full.blobs[1].omitted.reset();
  CHECK_FALSE(json::parse(bundle::to_json(full)).contains("bases"));
}

TEST_CASE("blob_bytes counts what the stream carries; omitted_bytes what the base has") {
  const Image image;
  const bundle::BundleDescriptor d = differential(image);
  CHECK(d.omitted_blobs() == 1);
  CHECK(d.omitted_bytes() == image.old_layer.size());
  CHECK(d.blob_bytes() == image.manifest.size() + image.config.size() + image.new_layer.size());
  CHECK_FALSE(d.blobs[1].in_volume(0));
  CHECK(d.blobs[2].in_volume(0));
}

TEST_CASE("parse_descriptor refuses omitted blobs a push or a reader needs from the bundle") {
  const Image image;
  const bundle::BundleDescriptor d = differential(image);
  SUBCASE("a manifest") {
    const std::string text = edited(d, [](json& j) { j["blobs"][0]["omitted"] = {{"bases", {0}}, {"repositories", json::array()}}; });
    CHECK(ferry::test::contains(integrity_error([&] { bundle::parse_descriptor(text); }), "manifests, indexes and chart blobs"));
  }
  SUBCASE("a chart archive") {
    bundle::BundleDescriptor with_chart = d;
    with_chart.charts.push_back({"shop", "1.0.0", "./charts/shop", "charts/shop:1.0.0", core::sha256_of("cm"),
                                 core::sha256_of(image.new_layer), 10, {}});
    const std::string text = edited(with_chart, [](json& j) {
      j["blobs"][2]["omitted"] = {{"bases", {0}}, {"repositories", json::array()}};
    });
    CHECK(ferry::test::contains(integrity_error([&] { bundle::parse_descriptor(text); }), "archive of chart charts/shop:1.0.0"));
  }
  SUBCASE("a base that is not listed") {
    const std::string text = edited(d, [](json& j) { j["blobs"][1]["omitted"]["bases"] = {1}; });
    CHECK(ferry::test::contains(integrity_error([&] { bundle::parse_descriptor(text); }), "lists 1 bases"));
  }
  SUBCASE("no base at all") {
    const std::string text = edited(d, [](json& j) { j["blobs"][1]["omitted"]["bases"] = json::array(); });
    CHECK(ferry::test::contains(integrity_error([&] { bundle::parse_descriptor(text); }), "omitted.bases is empty"));
  }
  SUBCASE("an omitted blob placed in a volume") {
    const std::string text = edited(d, [](json& j) {
      j["volumes"] = {{"count", 1}, {"limit", 1u << 30}};
      j["blobs"][0]["volume"] = "all";
      j["blobs"][1]["volume"] = 0;
      j["blobs"][2]["volume"] = 0;
      j["blobs"][3]["volume"] = 0;
    });
    CHECK(ferry::test::contains(integrity_error([&] { bundle::parse_descriptor(text); }), "omitted but placed"));
  }
  SUBCASE("a base of an unknown kind") {
    const std::string text = edited(d, [](json& j) { j["bases"][0]["kind"] = "guess"; });
    CHECK(ferry::test::contains(integrity_error([&] { bundle::parse_descriptor(text); }), "bases[0].kind"));
  }
}

TEST_CASE("plan_volumes places no omitted blob and volume_entries never lists one") {
  const Image image;
  bundle::BundleDescriptor d = differential(image);
  const bundle::VolumePlan plan = bundle::plan_volumes(d, 260000); // the new layer fills a volume
  CHECK(plan.count >= 1);
  const bundle::BlobRecord& omitted = d.blobs[1];
  CHECK_FALSE(omitted.volume.has_value());
  CHECK_FALSE(omitted.all_volumes);
  CHECK(omitted.pieces.empty());
  // The round trip accepts the split table.
  const bundle::BundleDescriptor back = bundle::parse_descriptor(bundle::to_json(d));
  CHECK(back.volumes.has_value());
  for (std::uint32_t k = 0; k < plan.count; ++k) {
    for (const auto& e : bundle::volume_entries(d, k)) CHECK(e.path != path_of(image.old_layer));
  }
  bool listed_new = false;
  for (std::uint32_t k = 0; k < plan.count; ++k) {
    for (const auto& e : bundle::volume_entries(d, k)) listed_new = listed_new || e.path == path_of(image.new_layer);
  }
  CHECK(listed_new);
}

TEST_CASE("BundleReader verifies a differential bundle whose stream lacks its omitted blobs") {
  const Image image;
  const Written w = write_bundle(differential(image), {{path_of(image.manifest), image.manifest},
                                                       {path_of(image.new_layer), image.new_layer},
                                                       {path_of(image.config), image.config}});
  core::StringSource in(w.bytes);
  bundle::BundleReader reader(in, "shop-2.tar.zst");
  reader.open(w.keys, bundle::SignaturePolicy::require);
  core::NullProgress progress;
  const bundle::StreamStats stats = reader.read_entries(nullptr, progress);
  CHECK(stats.entries == 5); // oci-layout, index.json and three blobs
  CHECK(stats.bytes == image.manifest.size() + image.new_layer.size() + image.config.size() + 30 + 2);
}

TEST_CASE("BundleReader refuses an omitted blob that is in the stream after all") {
  const Image image;
  const Written w = write_bundle(differential(image), {{path_of(image.manifest), image.manifest},
                                                       {path_of(image.old_layer), image.old_layer},
                                                       {path_of(image.new_layer), image.new_layer},
                                                       {path_of(image.config), image.config}});
  core::StringSource in(w.bytes);
  bundle::BundleReader reader(in, "shop-2.tar.zst");
  reader.open(w.keys, bundle::SignaturePolicy::require);
  core::NullProgress progress;
  const std::string message = integrity_error([&] { reader.read_entries(nullptr, progress); });
  CHECK(ferry::test::contains(message, "marks as omitted"));
}

} // TEST_SUITE
