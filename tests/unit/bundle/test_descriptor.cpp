// Tests for bundle/descriptor (ferry.json) and bundle/bundle_reader (the verifier).
// SPDX-License-Identifier: Apache-2.0
#include "bundle/bundle_reader.hpp"
#include "bundle/descriptor.hpp"
#include "bundle/signing.hpp"
#include "bundle/tar_writer.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "bundle_fixture.hpp"
#include "support/test_support.hpp"

#include <nlohmann/json.hpp>

using namespace ferry;
using ferry::core::Digest;
using ferry::test::build_bundle;
using ferry::test::Built;
using ferry::test::CollectSink;
using ferry::test::message_of;

namespace {

bundle::BundleDescriptor sample() {
  bundle::BundleDescriptor d;
  d.name = "demo";
  d.version = "1.0";
  d.created = bundle::rfc3339_utc(0);
  d.tool_version = "0.1.0";
  d.signer = bundle::SignerRecord{"sha256:" + std::string(64, 'a'), "ed25519"};
  d.images.push_back({"docker.io/library/nginx:1.27", "oci:./x:nginx", core::sha256_of("m"), core::sha256_of("src"),
                      "application/vnd.oci.image.manifest.v1+json", {"linux/amd64"}, 30});
  d.charts.push_back({"hello", "0.1.0", "./charts/hello", "charts/hello:0.1.0", core::sha256_of("cm"),
                      core::sha256_of("tgz"), 10, {"docker.io/library/nginx:1.27"}});
  d.files.push_back({"tools/helm", "./bin/helm", "files/tools/helm", core::sha256_of("fm"), core::sha256_of("f"), 1, 0755});
  d.layout = {{"oci-layout", core::sha256_of("l"), 30}, {"index.json", core::sha256_of("i"), 100}};
  d.blobs = {{core::sha256_of("m"), 1, "application/vnd.oci.image.manifest.v1+json"},
             {core::sha256_of("layer"), 29, "application/vnd.oci.image.layer.v1.tar+gzip"}};
  return d;
}

nlohmann::json as_json(const bundle::BundleDescriptor& d) { return nlohmann::json::parse(bundle::to_json(d)); }

} // namespace

TEST_SUITE("bundle") {

TEST_CASE("to_json is canonical: sorted keys, compact, trailing newline, stable") {
  const std::string text = bundle::to_json(sample());
  CHECK(text.back() == '\n');
  CHECK(text.find(": ") == std::string::npos);
  CHECK(text.rfind("{\"blobs\":[", 0) == 0); // "blobs" sorts first
  CHECK(bundle::to_json(sample()) == text);
  CHECK(text.find("\"mode\":\"0755\"") != std::string::npos);
}

TEST_CASE("parse_descriptor round-trips to_json") {
  const bundle::BundleDescriptor d = sample();
  const bundle::BundleDescriptor back = bundle::parse_descriptor(bundle::to_json(d));
  CHECK(bundle::to_json(back) == bundle::to_json(d));
  CHECK(back.images[0].source_digest == core::sha256_of("src"));
  CHECK(back.files[0].mode == 0755);
  CHECK(back.signer->algorithm == "ed25519");
}

TEST_CASE("parse_descriptor reads back how discovered images were found, and accepts images without it") {
  bundle::BundleDescriptor d = sample();
  d.images[0].found_by = {{"studio", "values", "backend.image.repository (registry/repository map)", "studio"},
                          {"studio", "annotation", "artifacthub.io/images of chart studio: backend", ""}};
  const std::string text = bundle::to_json(d);
  const auto j = nlohmann::json::parse(text);
  CHECK(j["images"][0]["foundBy"][0]["release"] == "studio");
  CHECK_FALSE(j["images"][0]["foundBy"][1].contains("release")); // optional: the chart's defaults
  const bundle::BundleDescriptor back = bundle::parse_descriptor(text);
  REQUIRE(back.images[0].found_by.size() == 2);
  CHECK(back.images[0].found_by[0].chart == "studio");
  CHECK(back.images[0].found_by[0].method == "values");
  CHECK(back.images[0].found_by[0].where == "backend.image.repository (registry/repository map)");
  CHECK(back.images[0].found_by[1].release.empty());
  CHECK(bundle::to_json(back) == text);
  // Images the manifest alone lists carry no foundBy.
  CHECK_FALSE(as_json(sample())["images"][0].contains("foundBy"));
  auto bad = j;
  bad["images"][0]["foundBy"][0].erase("method");
  CHECK_THROWS_WITH_AS(bundle::parse_descriptor(bad.dump()), doctest::Contains("images[0].foundBy[0] has no field 'method'"),
                       ferry::core::IntegrityError);
}

TEST_CASE("parse_descriptor refuses another format version and says which") {
  auto j = as_json(sample());
  j["formatVersion"] = 2;
  try {
    bundle::parse_descriptor(j.dump());
    FAIL("no exception");
  } catch (const core::IntegrityError& e) {
    CHECK(std::string(e.what()).find("format version 2") != std::string::npos);
    CHECK(e.hint().find("2") != std::string::npos);
  }
}

TEST_CASE("parse_descriptor names the field that is wrong") {
  SUBCASE("bad digest") {
    auto j = as_json(sample());
    j["blobs"][1]["digest"] = "sha256:XYZ";
    CHECK(message_of([&] { bundle::parse_descriptor(j.dump()); }).find("blobs[1].digest") != std::string::npos);
  }
  SUBCASE("negative size") {
    auto j = as_json(sample());
    j["blobs"][0]["size"] = -1;
    CHECK(message_of([&] { bundle::parse_descriptor(j.dump()); }).find("blobs[0].size") != std::string::npos);
  }
  SUBCASE("size too large for 64 bits") {
    std::string text = bundle::to_json(sample());
    const auto at = text.find("\"size\":29");
    REQUIRE(at != std::string::npos);
    text.replace(at, 9, "\"size\":184467440737095516160");
    CHECK(message_of([&] { bundle::parse_descriptor(text); }).find("blobs[1].size") != std::string::npos);
  }
  SUBCASE("a blob listed twice") {
    auto j = as_json(sample());
    j["blobs"].push_back(j["blobs"][0]);
    CHECK(message_of([&] { bundle::parse_descriptor(j.dump()); }).find("a second time") != std::string::npos);
  }
  SUBCASE("a layout entry that is no layout file") {
    auto j = as_json(sample());
    j["layout"][0]["path"] = "../etc/passwd";
    CHECK(message_of([&] { bundle::parse_descriptor(j.dump()); }).find("layout[0].path") != std::string::npos);
  }
  SUBCASE("missing field") {
    auto j = as_json(sample());
    j["images"][0].erase("digest");
    CHECK(message_of([&] { bundle::parse_descriptor(j.dump()); }).find("images[0] has no field 'digest'") != std::string::npos);
  }
  SUBCASE("not JSON") { CHECK(message_of([&] { bundle::parse_descriptor("{"); }).find("not valid JSON") != std::string::npos); }
}

namespace {

// sample() as a split bundle of 3 volumes: the manifest in all, the layer in pieces in
// volumes 1 and 2, a config whole in volume 0.
bundle::BundleDescriptor split_sample() {
  bundle::BundleDescriptor d = sample();
  d.volumes = bundle::VolumesRecord{3, 1000};
  d.blobs[0].all_volumes = true;
  d.blobs[1].pieces = {{1, 20, core::sha256_of("p0")}, {2, 9, core::sha256_of("p1")}};
  d.blobs.push_back({core::sha256_of("config"), 6, "application/vnd.oci.image.config.v1+json"});
  d.blobs.back().volume = 0;
  return d;
}

std::string split_error(const std::function<void(nlohmann::json&)>& change) {
  auto j = as_json(split_sample());
  change(j);
  return message_of([&] { bundle::parse_descriptor(j.dump()); });
}

} // namespace

TEST_CASE("to_json writes volumes and placements only for a split bundle") {
  const auto single = as_json(sample());
  CHECK_FALSE(single.contains("volumes"));
  CHECK_FALSE(single["blobs"][1].contains("volume"));
  CHECK_FALSE(single["blobs"][1].contains("pieces"));
  const auto split = as_json(split_sample());
  CHECK(split["volumes"] == nlohmann::json{{"count", 3}, {"limit", 1000}});
  CHECK(split["blobs"][0]["volume"] == "all");
  CHECK(split["blobs"][1]["pieces"][1] ==
        nlohmann::json{{"volume", 2}, {"size", 9}, {"digest", core::sha256_of("p1").str()}});
  CHECK(split["blobs"][2]["volume"] == 0);
}

TEST_CASE("parse_descriptor round-trips a split bundle's placements") {
  const std::string text = bundle::to_json(split_sample());
  const bundle::BundleDescriptor back = bundle::parse_descriptor(text);
  REQUIRE(back.volumes);
  CHECK(back.volumes->count == 3);
  CHECK(back.volumes->limit == 1000);
  CHECK(back.blobs[0].all_volumes);
  REQUIRE(back.blobs[1].pieces.size() == 2);
  CHECK(back.blobs[1].pieces[0].volume == 1);
  CHECK(back.blobs[1].pieces[0].digest == core::sha256_of("p0"));
  CHECK(back.blobs[2].volume == 0u);
  CHECK(bundle::to_json(back) == text);
  CHECK(back.blobs[1].in_volume(2));
  CHECK_FALSE(back.blobs[1].in_volume(0));
  CHECK(back.blobs[0].in_volume(1));
  // A one-file bundle: its only volume holds everything.
  CHECK(bundle::parse_descriptor(bundle::to_json(sample())).blobs[1].in_volume(0));
}

TEST_CASE("parse_descriptor refuses an inconsistent volume table, naming the field") {
  SUBCASE("a volume number at or above the count") {
    const std::string m = split_error([](nlohmann::json& j) { j["blobs"][2]["volume"] = 3; });
    CHECK(m.find("blobs[2].volume is 3, but the bundle has 3 volumes") != std::string::npos);
  }
  SUBCASE("a piece in a volume at or above the count") {
    const std::string m = split_error([](nlohmann::json& j) { j["blobs"][1]["pieces"][1]["volume"] = 7; });
    CHECK(m.find("pieces[1].volume is 7") != std::string::npos);
  }
  SUBCASE("pieces whose sizes do not add up") {
    const std::string m = split_error([](nlohmann::json& j) { j["blobs"][1]["pieces"][1]["size"] = 8; });
    CHECK(m.find("add up to 28 bytes, but the blob is 29") != std::string::npos);
  }
  SUBCASE("pieces larger than the blob") {
    const std::string m = split_error([](nlohmann::json& j) { j["blobs"][1]["pieces"][0]["size"] = 25; });
    CHECK(m.find("add up to more than the blob's 29 bytes") != std::string::npos);
  }
  SUBCASE("pieces in volumes that do not follow each other") {
    const std::string m = split_error([](nlohmann::json& j) {
      j["blobs"][1]["pieces"][0]["volume"] = 0;
    });
    CHECK(m.find("consecutive volumes") != std::string::npos);
  }
  SUBCASE("a single piece") {
    const std::string m = split_error([](nlohmann::json& j) {
      j["blobs"][1]["pieces"].erase(1);
      j["blobs"][1]["pieces"][0]["size"] = 29;
    });
    CHECK(m.find("at least 2") != std::string::npos);
  }
  SUBCASE("a manifest not in all volumes") {
    const std::string m = split_error([](nlohmann::json& j) { j["blobs"][0]["volume"] = 1; });
    CHECK(m.find("places manifest " + core::sha256_of("m").str() + " in some volumes only") != std::string::npos);
  }
  SUBCASE("a blob placed nowhere") {
    const std::string m = split_error([](nlohmann::json& j) { j["blobs"][2].erase("volume"); });
    CHECK(m.find("blobs[2] has neither 'volume' nor 'pieces'") != std::string::npos);
  }
  SUBCASE("a blob placed twice") {
    const std::string m = split_error([](nlohmann::json& j) { j["blobs"][2]["pieces"] = j["blobs"][1]["pieces"]; });
    CHECK(m.find("blobs[2] has both") != std::string::npos);
  }
  SUBCASE("a volume no blob uses") {
    const std::string m = split_error([](nlohmann::json& j) { j["volumes"]["count"] = 4; });
    CHECK(m.find("counts volume 3, which no blob uses") != std::string::npos);
  }
  SUBCASE("a volume word other than all") {
    const std::string m = split_error([](nlohmann::json& j) { j["blobs"][0]["volume"] = "some"; });
    CHECK(m.find("blobs[0].volume is neither") != std::string::npos);
  }
  SUBCASE("placements in a bundle that is not split") {
    const std::string m = split_error([](nlohmann::json& j) { j.erase("volumes"); });
    CHECK(m.find("the bundle is not split") != std::string::npos);
  }
  SUBCASE("no volumes at all") {
    const std::string m = split_error([](nlohmann::json& j) { j["volumes"]["count"] = 0; });
    CHECK(m.find("volumes.count is 0") != std::string::npos);
  }
}

TEST_CASE("BundleDescriptor sums what sharing saved") {
  const bundle::BundleDescriptor d = sample();
  CHECK(d.blob_bytes() == 30);
  CHECK(d.unshared_bytes() == 41);
}

TEST_CASE("rfc3339_utc formats Unix time in UTC") {
  CHECK(bundle::rfc3339_utc(0) == "1970-01-01T00:00:00Z");
  CHECK(bundle::rfc3339_utc(1700000000) == "2023-11-14T22:13:20Z");
}

TEST_CASE("BundleReader::read_entries hands over each entry only once it verified") {
  const Built b = build_bundle();
  core::StringSource in(b.bytes);
  bundle::BundleReader reader(in, "test.tar.zst");
  reader.open(b.keys, bundle::SignaturePolicy::require);
  CHECK(reader.signature().status == bundle::SignatureCheck::Status::verified);
  CHECK(reader.signature().key_id == b.key_id);
  std::map<std::string, std::string> committed;
  core::NullProgress progress;
  const auto stats = reader.read_entries(
      [&](const bundle::StreamEntry& e) { return std::make_unique<CollectSink>(committed, e.path); }, progress);
  CHECK(stats.entries == 5);
  CHECK(committed.size() == 5);
  CHECK(committed["blobs/sha256/" + std::string(b.layer_digest.hex())] == b.layer);
}

TEST_CASE("BundleReader::read_entries names the image using a corrupt layer and commits nothing of it") {
  const Built b = build_bundle([](std::string&, std::string& layer) { layer[1000] ^= 0x40; });
  core::StringSource in(b.bytes);
  bundle::BundleReader reader(in, "test.tar.zst");
  reader.open(b.keys, bundle::SignaturePolicy::require);
  std::map<std::string, std::string> committed;
  core::NullProgress progress;
  const std::string message = message_of([&] {
    reader.read_entries([&](const bundle::StreamEntry& e) { return std::make_unique<CollectSink>(committed, e.path); },
                        progress);
  });
  CHECK(message.find("expected " + b.layer_digest.str()) != std::string::npos);
  CHECK(message.find("image docker.io/library/app:1") != std::string::npos);
  CHECK(committed.count("blobs/sha256/" + std::string(b.layer_digest.hex())) == 0);
}

TEST_CASE("BundleReader::open refuses a key it does not trust, naming both key ids") {
  const Built b = build_bundle();
  bundle::TrustedKeys other;
  const auto pair = bundle::generate_key_pair(bundle::KeyType::ed25519, std::nullopt);
  other.add(bundle::PublicKey::from_pem(pair.public_pem, "other.pub"));
  core::StringSource in(b.bytes);
  bundle::BundleReader reader(in, "test.tar.zst");
  const std::string message = message_of([&] { reader.open(other, bundle::SignaturePolicy::require); });
  CHECK(message.find(b.key_id) != std::string::npos);
  CHECK(message.find(other.key_ids()[0]) != std::string::npos);
}

TEST_CASE("BundleReader::open with SignaturePolicy::skip reads an unsigned head") {
  const Built b = build_bundle();
  core::StringSource in(b.bytes);
  bundle::BundleReader reader(in, "test.tar.zst");
  bundle::TrustedKeys none;
  reader.open(none, bundle::SignaturePolicy::skip);
  CHECK(reader.signature().status == bundle::SignatureCheck::Status::skipped);
  CHECK(reader.descriptor().images.size() == 1);
}

} // TEST_SUITE
