// Tests for bundle/volumes (split sizes, entry bounds, the volume plan) and
// bundle/volume_writer with the reader: every volume of a split bundle reads alone.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/bundle_reader.hpp"
#include "bundle/descriptor.hpp"
#include "bundle/signing.hpp"
#include "bundle/tar_writer.hpp"
#include "bundle/volume_set.hpp"
#include "bundle/volume_writer.hpp"
#include "bundle/volumes.hpp"
#include "bundle/zstd_frames.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "bundle_fixture.hpp"
#include "support/test_support.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>

using namespace ferry;
using ferry::test::message_of;
using ferry::test::random_bytes;
using ferry::test::TestDir;

namespace {

constexpr std::string_view k_manifest_type = "application/vnd.oci.image.manifest.v1+json";
constexpr std::string_view k_layer_type = "application/vnd.oci.image.layer.v1.tar+gzip";
constexpr std::string_view k_chart_type = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

// Counts what a TarWriter hands out.
class CountingSink final : public core::Sink {
public:
  void write(const char*, std::size_t size) override { m_count += size; }
  using Sink::write;
  std::uint64_t count() const { return m_count; }

private:
  std::uint64_t m_count = 0;
};

// A descriptor whose blob table is: `manifests` manifests of 700 bytes, then blobs of
// the given sizes (stream order as given).
bundle::BundleDescriptor table(std::size_t manifests, const std::vector<std::uint64_t>& sizes) {
  bundle::BundleDescriptor d;
  d.name = "demo";
  d.version = "1.0";
  d.created = bundle::rfc3339_utc(0);
  d.tool_version = "0.1.0";
  d.signer = bundle::SignerRecord{"sha256:" + std::string(64, 'a'), "ed25519"};
  d.layout = {{"oci-layout", core::sha256_of("l"), 30}, {"index.json", core::sha256_of("i"), 400}};
  for (std::size_t i = 0; i < manifests; ++i) {
    d.blobs.push_back({core::sha256_of("manifest" + std::to_string(i)), 700, std::string(k_manifest_type)});
  }
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    d.blobs.push_back({core::sha256_of("blob" + std::to_string(i)), sizes[i], std::string(k_layer_type)});
  }
  return d;
}

// Every blob placed as the plan says, for checking: bytes of bounds per volume.
std::vector<std::uint64_t> bounds_per_volume(const bundle::BundleDescriptor& d) {
  std::vector<std::uint64_t> out(d.volumes->count, 0);
  for (std::uint32_t k = 0; k < d.volumes->count; ++k) {
    for (const auto& e : bundle::volume_entries(d, k)) out[k] += bundle::entry_bound(e.path, e.size);
  }
  return out;
}

} // namespace

TEST_SUITE("bundle") {

TEST_CASE("parse_split_size reads sizes with K/M/G/T suffixes as powers of 1024") {
  CHECK(bundle::parse_split_size("20M") == 20ull << 20);
  CHECK(bundle::parse_split_size("4G") == 4ull << 30);
  CHECK(bundle::parse_split_size("1T") == 1ull << 40);
  CHECK(bundle::parse_split_size("512k") == 512ull << 10);
  CHECK(bundle::parse_split_size("700MiB") == 700ull << 20);
  CHECK(bundle::parse_split_size("2GB") == 2ull << 30);
  CHECK(bundle::parse_split_size("123456") == 123456);
}

TEST_CASE("parse_split_size knows the media presets") {
  CHECK(bundle::parse_split_size("fat32") == (4ull << 30) - 1);
  CHECK(bundle::parse_split_size("dvd") == 4'700'000'000ull);
  CHECK(bundle::parse_split_size("dvd-dl") == 8'500'000'000ull);
  CHECK(bundle::parse_split_size("bd") == 25'000'000'000ull);
  CHECK(bundle::parse_split_size("bd-dl") == 50'000'000'000ull);
}

TEST_CASE("parse_split_size refuses what is no size") {
  for (const char* text : {"", "M", "4X", "4.5G", "-1G", "99999999999999999999", "20000000T", "cd", "4 G"}) {
    CAPTURE(text);
    CHECK_THROWS_AS(bundle::parse_split_size(text), core::UsageError);
  }
  CHECK_THROWS_WITH_AS(bundle::parse_split_size("0"), doctest::Contains("larger than 0"), core::UsageError);
  CHECK_THROWS_WITH_AS(bundle::parse_split_size("4X"), doctest::Contains("'4X'"), core::UsageError);
}

TEST_CASE("volume_path and volume_display name volumes NAME.NNN.tar.zst") {
  CHECK(bundle::volume_path("out/shop-1.0.tar.zst", 0) == std::filesystem::path("out/shop-1.0.000.tar.zst"));
  CHECK(bundle::volume_path("out/shop-1.0.tar.zst", 12) == std::filesystem::path("out/shop-1.0.012.tar.zst"));
  CHECK(bundle::volume_path("shop", 3) == std::filesystem::path("shop.003.tar.zst"));
  CHECK(bundle::volume_display("media/shop-1.0.004.tar.zst", 2) == "media/shop-1.0.002.tar.zst");
  CHECK(bundle::volume_display("renamed.tar.zst", 2) == "volume 002");
}

TEST_CASE("entry_bound is never exceeded by what TarWriter writes") {
  // Random bytes are zstd's worst case (raw blocks), at both settings TarWriter uses.
  const std::vector<std::size_t> sizes = {0, 1, 511, 512, 513, 4096, 100000, 131072, 131073, 3 * 131072 + 7, 5u << 20};
  for (const auto compression : {bundle::Compression::normal, bundle::Compression::fastest}) {
    CountingSink out;
    bundle::TarWriter tar(out, {});
    for (const std::size_t size : sizes) {
      const std::string bytes = random_bytes(size, static_cast<unsigned>(size) + 1);
      const std::string path = bundle::piece_entry_path(core::sha256_of(bytes), 7);
      const std::uint64_t before = out.count();
      tar.add({.path = path, .size = bytes.size(), .compression = compression}, bytes);
      const std::uint64_t took = out.count() - before;
      CAPTURE(size);
      CHECK(took <= bundle::entry_bound(path, size));
      // The bound is a worst case, not a wild guess: within 1 % and a frame of it.
      CHECK(bundle::entry_bound(path, size) <= took + took / 100 + 1024);
    }
    const std::uint64_t before = out.count();
    tar.finish();
    CHECK(out.count() - before <= bundle::end_of_archive_bound());
  }
}

TEST_CASE("largest_fitting is the largest size whose bound fits") {
  const std::string path = bundle::piece_entry_path(core::sha256_of("x"), 0);
  for (const std::uint64_t room : {std::uint64_t{2000}, std::uint64_t{1} << 20, std::uint64_t{20} << 20}) {
    const std::uint64_t size = bundle::largest_fitting(path, room);
    CHECK(bundle::entry_bound(path, size) <= room);
    CHECK(bundle::entry_bound(path, size + 1) > room);
  }
  CHECK(bundle::largest_fitting(path, 100) == 0);
}

TEST_CASE("plan_volumes keeps every volume within the limit and puts manifests and chart archives in all") {
  bundle::BundleDescriptor d = table(3, {9u << 20, 7u << 20, 6u << 20, 3u << 20, 1u << 20, 4000});
  d.blobs.push_back({core::sha256_of("chart"), 5000, std::string(k_chart_type)});
  const std::uint64_t limit = 16u << 20;
  const bundle::VolumePlan plan = bundle::plan_volumes(d, limit);
  REQUIRE(d.volumes);
  CHECK(d.volumes->count == plan.count);
  CHECK(d.volumes->limit == limit);
  CHECK(plan.count >= 2);
  // Counted here from the table alone: the head as it will be (ferry.json at its real
  // size, a signature, volume.json), every entry of the volume, the end of the archive.
  const std::uint64_t head = bundle::entry_bound("ferry.json", bundle::to_json(d).size()) +
                             bundle::entry_bound("ferry.json.sig", 128) + bundle::entry_bound("volume.json", 128) +
                             bundle::end_of_archive_bound();
  const auto bounds = bounds_per_volume(d);
  for (std::uint32_t k = 0; k < plan.count; ++k) {
    CAPTURE(k);
    CHECK(head + bounds[k] <= limit);
    CHECK(plan.worst_case[k] <= limit);
  }
  for (const auto& b : d.blobs) {
    if (b.media_type == k_manifest_type || b.media_type == k_chart_type) {
      CHECK(b.all_volumes);
    } else {
      CHECK(b.volume.has_value());
    }
  }
  CHECK(bundle::to_json(d).size() <= plan.descriptor_budget);
  // The table says so in ferry.json, and reads back.
  CHECK(bundle::to_json(bundle::parse_descriptor(bundle::to_json(d))) == bundle::to_json(d));
}

TEST_CASE("plan_volumes places blobs first-fit in stream order") {
  // 9 MiB opens volume 0 and 8 MiB volume 1; 7 MiB (with zstd's margin) no longer fits
  // in volume 0 and goes to volume 1; the 5 MiB blob goes back to volume 0.
  bundle::BundleDescriptor d = table(1, {9u << 20, 8u << 20, 7u << 20, 5u << 20});
  bundle::plan_volumes(d, 16u << 20);
  CHECK(d.blobs[1].volume == 0u);
  CHECK(d.blobs[2].volume == 1u);
  CHECK(d.blobs[3].volume == 1u);
  CHECK(d.blobs[4].volume == 0u);
  CHECK(d.volumes->count == 2);
}

TEST_CASE("plan_volumes cuts a blob larger than a volume into pieces in consecutive volumes") {
  const std::uint64_t big = 50'000'000;
  bundle::BundleDescriptor d = table(2, {big, 2u << 20, 300000});
  const std::uint64_t limit = 20u << 20;
  const bundle::VolumePlan plan = bundle::plan_volumes(d, limit);
  const bundle::BlobRecord& b = d.blobs[2];
  REQUIRE(b.pieces.size() >= 3);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < b.pieces.size(); ++i) {
    CHECK(b.pieces[i].volume == b.pieces[0].volume + i);
    CHECK(b.pieces[i].size > 0);
    total += b.pieces[i].size;
  }
  CHECK(total == big);
  CHECK(b.pieces[0].volume == 0);
  // Every piece but the last fills its volume: the next byte would not have fitted.
  for (std::size_t i = 0; i + 1 < b.pieces.size(); ++i) {
    CHECK(plan.worst_case[b.pieces[i].volume] + bundle::entry_bound("x", 512) > limit);
  }
  // The small blobs go in the room the last piece left.
  CHECK(d.blobs[3].volume == b.pieces.back().volume);
  for (const std::uint64_t w : plan.worst_case) CHECK(w <= limit);
  CHECK_NOTHROW(bundle::parse_descriptor(bundle::to_json(d)));
}

TEST_CASE("plan_volumes is deterministic") {
  bundle::BundleDescriptor a = table(4, {50'000'000, 12u << 20, 5u << 20, 5u << 20, 1000});
  bundle::BundleDescriptor b = a;
  bundle::plan_volumes(a, 20u << 20);
  bundle::plan_volumes(b, 20u << 20);
  CHECK(bundle::to_json(a) == bundle::to_json(b));
}

TEST_CASE("plan_volumes refuses a limit below what every volume repeats, giving the minimum") {
  // 40 manifests of 700 bytes repeat in every volume: about 40 KiB with the head.
  bundle::BundleDescriptor d = table(40, {1u << 20});
  std::string message;
  try {
    bundle::plan_volumes(d, 30000);
    FAIL("no UsageError");
  } catch (const core::UsageError& e) {
    message = e.what();
    CHECK(std::string(e.hint()).find("--split") != std::string::npos);
  }
  const auto at = message.find("smallest possible volume here is ");
  REQUIRE(at != std::string::npos);
  const std::uint64_t minimum = std::stoull(message.substr(at + 33));
  CHECK(minimum > 30000);
  // The minimum it names (with a little room for ferry.json's growth) does plan.
  bundle::BundleDescriptor again = table(40, {1u << 20});
  CHECK_NOTHROW(bundle::plan_volumes(again, minimum + minimum / 8));
}

TEST_CASE("VolumeLabel round-trips and refuses a volume beyond its count") {
  const bundle::VolumeLabel label{core::sha256_of("ferry.json"), 2, 5};
  const std::string text = bundle::to_json(label);
  CHECK(text == "{\"bundle\":\"" + core::sha256_of("ferry.json").str() + "\",\"count\":5,\"volume\":2}\n");
  const bundle::VolumeLabel back = bundle::parse_volume_label(text);
  CHECK(back.bundle == label.bundle);
  CHECK(back.volume == 2);
  CHECK(back.count == 5);
  CHECK_THROWS_AS(bundle::parse_volume_label(bundle::to_json(bundle::VolumeLabel{label.bundle, 5, 5})),
                  core::IntegrityError);
  CHECK_THROWS_AS(bundle::parse_volume_label("{}"), core::IntegrityError);
}

TEST_CASE("write_volumes writes volumes that each verify alone, within the limit") {
  TestDir dir;
  // Three "images": a 3 MiB and a 1 MiB layer each, and one 9 MiB layer that spans volumes.
  std::map<core::Digest, bundle::BlobSource> sources;
  bundle::BundleDescriptor d = table(0, {});
  d.name = "split";
  std::vector<std::pair<core::Digest, std::string>> blobs;
  auto add_blob = [&](std::string bytes, std::string_view media_type) {
    const core::Digest digest = core::sha256_of(bytes);
    const auto file = dir.path() / std::string(digest.hex());
    ferry::test::write_file(file, bytes);
    sources[digest] = bundle::BlobSource{file, 0, false, "test blob"};
    blobs.emplace_back(digest, bytes);
    return bundle::BlobRecord{digest, bytes.size(), std::string(media_type)};
  };
  std::vector<bundle::BlobRecord> layers;
  layers.push_back(add_blob(random_bytes(9u << 20, 1), k_layer_type));
  for (unsigned i = 0; i < 3; ++i) {
    layers.push_back(add_blob(random_bytes(3u << 20, 10 + i), k_layer_type));
    layers.push_back(add_blob(random_bytes(1u << 20, 20 + i), k_layer_type));
  }
  const bundle::BlobRecord config = add_blob("{}", "application/vnd.oci.empty.v1+json");
  nlohmann::json listed = nlohmann::json::array();
  for (const auto& l : layers) listed.push_back({{"mediaType", l.media_type}, {"digest", l.digest.str()}, {"size", l.size}});
  const nlohmann::json manifest_json = {
      {"schemaVersion", 2},
      {"mediaType", k_manifest_type},
      {"config", {{"mediaType", config.media_type}, {"digest", config.digest.str()}, {"size", config.size}}},
      {"layers", listed}};
  const bundle::BlobRecord manifest = add_blob(manifest_json.dump(), k_manifest_type);
  d.blobs.push_back(manifest);
  layers.push_back(config);
  d.blobs.insert(d.blobs.end(), layers.begin(), layers.end());
  const std::string layout = R"({"imageLayoutVersion":"1.0.0"})";
  const std::string index = "{}";
  d.layout = {{"oci-layout", core::sha256_of(layout), layout.size()}, {"index.json", core::sha256_of(index), index.size()}};

  const auto pair = bundle::generate_key_pair(bundle::KeyType::ed25519, std::nullopt);
  const auto key = bundle::PrivateKey::from_pem(pair.private_pem, std::nullopt, "test.key");
  d.signer = bundle::SignerRecord{key.key_id(), "ed25519"};
  bundle::TrustedKeys keys;
  keys.add(bundle::PublicKey::from_pem(pair.public_pem, "test.pub"));

  const std::uint64_t limit = 4u << 20;
  std::set<core::Digest> written;
  core::NullLog log;
  core::NullProgress progress;
  const bundle::VolumeWriteResult result = bundle::write_volumes(
      d, sources,
      {.output = dir.path() / "split.tar.zst",
       .checksums = dir.path() / "split.sha256",
       .limit = limit,
       .level = 3,
       .mtime = 0,
       .layout_marker = layout,
       .index_json = index},
      [&](std::string_view json) { return core::base64_encode(key.sign(json)); },
      [&](const core::Digest& digest) { CHECK(written.insert(digest).second); }, log, progress);

  REQUIRE(result.volumes.size() == d.volumes->count);
  CHECK(result.volumes.size() >= 5);
  CHECK(result.pieced_blobs == 1);
  CHECK(written.size() == d.blobs.size()); // each blob reported once, after its last byte
  const std::string sums = ferry::test::read_file(dir.path() / "split.sha256");
  for (std::uint32_t k = 0; k < result.volumes.size(); ++k) {
    const auto& v = result.volumes[k];
    CAPTURE(k);
    CHECK(v.path == dir.path() / bundle::volume_path("split.tar.zst", k));
    CHECK(std::filesystem::file_size(v.path) == v.size);
    CHECK(v.size <= limit);
    CHECK(sums.find(std::string(v.digest.hex()) + "  " + v.path.filename().string() + "\n") != std::string::npos);
    // Each volume verifies alone, and holds exactly what ferry.json assigns to it.
    core::FileSource in(v.path);
    bundle::BundleReader reader(in, v.path.string());
    reader.open(keys, bundle::SignaturePolicy::require);
    REQUIRE(reader.volume());
    CHECK(reader.volume()->volume == k);
    std::map<std::string, std::string> got;
    const auto stats = reader.read_entries(
        [&](const bundle::StreamEntry& e) { return std::make_unique<ferry::test::CollectSink>(got, e.path); }, progress);
    CHECK(stats.entries == bundle::volume_entries(reader.descriptor(), k).size());
    CHECK(got.count("blobs/sha256/" + std::string(manifest.digest.hex())) == 1);
  }
  // The pieces, read from their volumes, make the blob.
  const bundle::BundleDescriptor& back = d; // placements and piece digests filled in
  std::string joined;
  const bundle::BlobRecord* big = back.find_blob(layers[0].digest);
  REQUIRE(big);
  REQUIRE(big->pieces.size() >= 3);
  for (std::size_t i = 0; i < big->pieces.size(); ++i) {
    core::FileSource in(result.volumes[big->pieces[i].volume].path);
    bundle::BundleReader reader(in, "volume");
    reader.open(keys, bundle::SignaturePolicy::require);
    std::map<std::string, std::string> got;
    reader.read_entries([&](const bundle::StreamEntry& e) { return std::make_unique<ferry::test::CollectSink>(got, e.path); },
                        progress);
    joined += got.at(bundle::piece_entry_path(big->digest, i));
  }
  CHECK(core::sha256_of(joined) == layers[0].digest);
  // No temporary is left beside the volumes.
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    CHECK(entry.path().filename().string().front() != '.');
  }
}

} // TEST_SUITE
