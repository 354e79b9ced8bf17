// Tests for oci/layout_reader, oci/resolved_image (walk_image) and oci/blob_store.
// SPDX-License-Identifier: Apache-2.0
#include "oci/layout_reader.hpp"

#include "core/error.hpp"
#include "core/io.hpp"
#include "oci/blob_store.hpp"
#include "oci/manifest.hpp"
#include "oci/media_types.hpp"
#include "oci/resolved_image.hpp"
#include "support/test_support.hpp"

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
namespace media_type = ferry::oci::media_type;
using ferry::core::Digest;
using ferry::core::IntegrityError;
using ferry::core::UsageError;
using ferry::oci::BlobRef;
using ferry::oci::BlobStore;
using ferry::oci::Checked;
using ferry::oci::Descriptor;
using ferry::oci::ImageIndex;
using ferry::oci::ImageManifest;
using ferry::oci::LayoutReader;
using ferry::oci::load_layout_image;
using ferry::oci::Platform;
using ferry::oci::PlatformFilter;
using ferry::oci::ResolvedImage;
using ferry::test::contains;
using ferry::test::read_file;
using ferry::test::TestDir;
using ferry::test::write_file;

namespace {

class RecordingLog final : public ferry::core::LogSink {
public:
  void log(ferry::core::LogLevel level, std::string_view message) override {
    if (level == ferry::core::LogLevel::warning) warnings.emplace_back(message);
  }
  std::vector<std::string> warnings;
};

PlatformFilter filter_of(std::initializer_list<const char*> platforms) {
  std::vector<Platform> wanted;
  for (const char* p : platforms) wanted.push_back(Platform::parse(p));
  return PlatformFilter(wanted);
}

// Writes `bytes` as a blob of the layout at `dir` and returns its descriptor.
Descriptor put_blob(const fs::path& dir, std::string_view type, const std::string& bytes) {
  Descriptor d;
  d.media_type = type;
  d.digest = ferry::core::sha256_of(bytes);
  d.size = bytes.size();
  write_file(dir / "blobs/sha256" / std::string(d.digest.hex()), bytes);
  return d;
}

std::string config_json(std::string_view os, std::string_view arch, std::string_view variant = {}) {
  return std::string(R"({"architecture":")") + std::string(arch) + R"(","os":")" + std::string(os) + "\"" +
         (variant.empty() ? "" : R"(,"variant":")" + std::string(variant) + "\"") +
         R"(,"rootfs":{"type":"layers","diff_ids":[]}})";
}

// An image manifest with its config and layers, all written into the layout.
Descriptor put_image(const fs::path& dir, const std::string& config, const std::vector<Descriptor>& layers) {
  ImageManifest m;
  m.media_type = media_type::oci_manifest;
  m.config = put_blob(dir, media_type::oci_config, config);
  m.layers = layers;
  return put_blob(dir, media_type::oci_manifest, ferry::oci::to_json(m));
}

Descriptor with_platform(Descriptor d, const char* platform) {
  d.platform = Platform::parse(platform);
  return d;
}

Descriptor named(Descriptor d, const std::string& ref_name) {
  d.annotations[std::string(ferry::oci::k_annotation_ref_name)] = ref_name;
  return d;
}

void write_layout(const fs::path& dir, const std::vector<Descriptor>& entries) {
  write_file(dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  ImageIndex index;
  index.media_type = media_type::oci_index;
  index.manifests = entries;
  write_file(dir / "index.json", ferry::oci::to_json(index));
}

// A layout with two images sharing a layer: "multi" (an index of linux/amd64,
// linux/arm64/v8 and a buildx attestation manifest) and "single" (one linux/amd64
// manifest whose index.json entry has no platform).
struct MultiArchLayout {
  explicit MultiArchLayout(const fs::path& where) : dir(where) {
    shared = put_blob(dir, media_type::oci_layer_gzip, ferry::test::random_bytes(3000, 1));
    amd_layer = put_blob(dir, media_type::oci_layer_gzip, ferry::test::random_bytes(2000, 2));
    arm_layer = put_blob(dir, media_type::oci_layer_gzip, ferry::test::random_bytes(2500, 3));
    att_layer = put_blob(dir, "application/vnd.in-toto+json", R"({"predicateType":"https://slsa.dev/provenance/v1"})");
    amd = with_platform(put_image(dir, config_json("linux", "amd64"), {shared, amd_layer}), "linux/amd64");
    arm = with_platform(put_image(dir, config_json("linux", "arm64", "v8"), {shared, arm_layer}), "linux/arm64/v8");
    attestation = with_platform(put_image(dir, config_json("unknown", "unknown"), {att_layer}), "unknown/unknown");
    attestation.annotations["vnd.docker.reference.type"] = "attestation-manifest";
    ImageIndex index;
    index.media_type = media_type::oci_index;
    index.manifests = {amd, arm, attestation};
    index.annotations["org.opencontainers.image.source"] = "https://example.com/app";
    multi = named(put_blob(dir, media_type::oci_index, ferry::oci::to_json(index)), "multi");
    single = named(put_image(dir, config_json("linux", "amd64"), {shared}), "single");
    write_layout(dir, {multi, single});
  }

  fs::path blob_path(const Descriptor& d) const { return dir / "blobs/sha256" / std::string(d.digest.hex()); }

  fs::path dir;
  Descriptor shared, amd_layer, arm_layer, att_layer, amd, arm, attestation, multi, single;
};

std::vector<Digest> digests_of(const std::vector<BlobRef>& blobs) {
  std::vector<Digest> out;
  for (const auto& b : blobs) out.push_back(b.descriptor.digest);
  return out;
}

bool has_blob(const ResolvedImage& image, const Descriptor& d) {
  return std::any_of(image.blobs.begin(), image.blobs.end(),
                     [&d](const BlobRef& b) { return b.descriptor.digest == d.digest; });
}

template <typename E, typename Fn>
std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("no exception of the expected type");
  return {};
}

std::string hint_of_usage(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.hint();
  }
  FAIL("no UsageError");
  return {};
}

std::size_t file_count(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) n += entry.is_regular_file() ? 1 : 0;
  return n;
}

} // namespace

TEST_SUITE("oci") {

// --- BlobStore -----------------------------------------------------------------------

TEST_CASE("BlobStore::put stores a blob under its digest") {
  TestDir tmp;
  BlobStore store(tmp / "store");
  const std::string bytes = ferry::test::random_bytes(5000, 7);
  ferry::core::StringSource source(bytes);
  const auto stored = store.put(source, "layer L", ferry::core::sha256_of(bytes), bytes.size());
  CHECK(stored.digest == ferry::core::sha256_of(bytes));
  CHECK(stored.size == 5000);
  CHECK(store.contains(stored.digest));
  CHECK(store.path(stored.digest) == tmp / "store/blobs/sha256" / std::string(stored.digest.hex()));
  CHECK(read_file(store.path(stored.digest)) == bytes);
  CHECK(file_count(tmp / "store") == 1);
}

TEST_CASE("BlobStore::put with a wrong expected digest or size stores nothing") {
  TestDir tmp;
  BlobStore store(tmp / "store");
  const std::string bytes = "hello world";
  ferry::core::StringSource source(bytes);
  std::string message;
  SUBCASE("digest") {
    message = message_of<IntegrityError>(
        [&] { store.put(source, "layer L of app", ferry::core::sha256_of("other"), std::nullopt); });
    CHECK(contains(message, "layer L of app has digest " + ferry::core::sha256_of(bytes).str()));
    CHECK(contains(message, "expected " + ferry::core::sha256_of("other").str()));
  }
  SUBCASE("size") {
    message = message_of<IntegrityError>([&] { store.put(source, "layer L of app", std::nullopt, 12); });
    CHECK(message == "layer L of app is 11 bytes, expected 12");
  }
  CHECK_FALSE(store.contains(ferry::core::sha256_of(bytes)));
  CHECK(file_count(tmp / "store") == 0);
}

TEST_CASE("BlobStore::begin with Hashing::by_caller checks the size and stores under the given digest") {
  TestDir dir;
  BlobStore store(dir.path());
  const std::string bytes = ferry::test::random_bytes(70000, 8);
  const Digest digest = ferry::core::sha256_of(bytes);
  {
    auto writer = store.begin(BlobStore::Hashing::by_caller);
    writer->write(bytes.data(), bytes.size() - 1);
    CHECK_THROWS_AS(writer->commit("blob x", digest, bytes.size()), IntegrityError);
  }
  CHECK_FALSE(store.contains(digest));
  auto writer = store.begin(BlobStore::Hashing::by_caller);
  writer->write(bytes);
  const auto stored = writer->commit("blob x", digest, bytes.size());
  CHECK(stored.digest == digest);
  CHECK(ferry::test::read_file(store.path(digest)) == bytes);
  SUBCASE("with Hashing::here a wrong digest is refused") {
    auto checked = store.begin();
    checked->write(bytes);
    CHECK_THROWS_AS(checked->commit("blob y", ferry::core::sha256_of("other"), bytes.size()), IntegrityError);
  }
}

TEST_CASE("BlobStore::put_bytes of a blob it holds keeps one copy") {
  TestDir tmp;
  BlobStore store(tmp / "store");
  const auto first = store.put_bytes("{}");
  const auto second = store.put_bytes("{}");
  CHECK(first.digest == second.digest);
  CHECK(first.digest == ferry::core::sha256_of("{}"));
  CHECK(second.size == 2);
  CHECK(read_file(store.path(first.digest)) == "{}");
  CHECK(file_count(tmp / "store") == 1);
  CHECK_FALSE(store.contains(ferry::core::sha256_of("[]")));
}

// --- LayoutReader --------------------------------------------------------------------

TEST_CASE("LayoutReader::LayoutReader refuses a directory that is no layout") {
  TestDir tmp;
  fs::path dir;
  SUBCASE("missing directory") { dir = tmp / "nowhere"; }
  SUBCASE("directory without oci-layout") {
    dir = tmp / "plain";
    write_file(dir / "index.json", "{}");
  }
  try {
    LayoutReader reader(dir);
    FAIL("no exception");
  } catch (const UsageError& e) {
    CHECK(std::string(e.what()) == dir.string() + " is not an OCI image layout (no oci-layout file)");
    CHECK(contains(e.hint(), "skopeo copy"));
    CHECK(contains(e.hint(), "oci:" + dir.string() + ":TAG"));
  }
}

TEST_CASE("LayoutReader::LayoutReader refuses a malformed oci-layout or index.json") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  std::string expected;
  SUBCASE("unknown version") {
    write_file(layout.dir / "oci-layout", R"({"imageLayoutVersion":"2.0.0"})");
    expected = "has imageLayoutVersion 2.0.0, expected 1.0.0";
  }
  SUBCASE("not JSON") {
    write_file(layout.dir / "oci-layout", "imageLayoutVersion=1.0.0");
    expected = "is not a valid oci-layout file";
  }
  SUBCASE("index.json is a manifest") {
    write_file(layout.dir / "index.json", read_file(layout.blob_path(layout.single)));
    expected = "is an image manifest, expected an image index";
  }
  SUBCASE("index.json is not JSON") {
    write_file(layout.dir / "index.json", "{");
    expected = "is not valid JSON";
  }
  const std::string message = message_of<IntegrityError>([&] { LayoutReader reader(layout.dir); });
  CHECK(contains(message, expected));
}

TEST_CASE("LayoutReader::find picks the entry by its ref name") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  const LayoutReader reader(layout.dir);
  CHECK(reader.index().manifests.size() == 2);
  CHECK(reader.find("multi").digest == layout.multi.digest);
  CHECK(reader.find("single").digest == layout.single.digest);
  CHECK(reader.find("single").media_type == media_type::oci_manifest);
}

TEST_CASE("LayoutReader::find without a ref needs exactly one image") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  SUBCASE("two images: ambiguous") {
    const std::string message = message_of<UsageError>([&] { LayoutReader(layout.dir).find(""); });
    CHECK(contains(message, "holds 2 images"));
    CHECK(contains(message, "ref names: multi, single"));
  }
  SUBCASE("one image: that one") {
    write_layout(layout.dir, {layout.single});
    CHECK(LayoutReader(layout.dir).find("").digest == layout.single.digest);
  }
}

TEST_CASE("LayoutReader::find names the ref names and a near match for an unknown ref") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  const LayoutReader reader(layout.dir);
  CHECK(contains(message_of<UsageError>([&] { reader.find("multy"); }),
                 "has no image named multy (ref names: multi, single)"));
  CHECK(contains(hint_of_usage([&] { reader.find("multy"); }), ":multi?"));
}

TEST_CASE("LayoutReader::read_blob returns the checked bytes") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  const LayoutReader reader(layout.dir);
  CHECK(reader.read_blob(layout.single, "manifest") == read_file(layout.blob_path(layout.single)));
}

TEST_CASE("LayoutReader::read_blob refuses bytes with another digest") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  std::string bytes = read_file(layout.blob_path(layout.single));
  bytes[bytes.size() - 2] = bytes[bytes.size() - 2] == ']' ? '}' : ']'; // same size, other bytes
  write_file(layout.blob_path(layout.single), bytes);
  const LayoutReader reader(layout.dir);
  const std::string message = message_of<IntegrityError>([&] { reader.read_blob(layout.single, "manifest of X"); });
  CHECK(contains(message, "blob " + layout.single.digest.str() + " (manifest of X) in " + layout.dir.string()));
  CHECK(contains(message, "has digest " + ferry::core::sha256_of(bytes).str() + ", expected " +
                              layout.single.digest.str()));
}

TEST_CASE("LayoutReader::read_blob names a missing blob and the layout") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  fs::remove(layout.blob_path(layout.single));
  const LayoutReader reader(layout.dir);
  const std::string message = message_of<IntegrityError>([&] { reader.read_blob(layout.single, "manifest"); });
  CHECK(message == "blob " + layout.single.digest.str() + " (manifest) is missing from layout " + layout.dir.string());
}

// --- load_layout_image / walk_image --------------------------------------------------

TEST_CASE("load_layout_image without a filter carries the index unchanged") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  const ResolvedImage image = load_layout_image(layout.dir, "multi", PlatformFilter(), store, log);
  CHECK(image.ref_name == "multi");
  CHECK(image.root.digest == layout.multi.digest);
  CHECK(image.root.size == layout.multi.size);
  CHECK_FALSE(image.source_digest);
  CHECK(image.platforms == std::vector<std::string>{"linux/amd64", "linux/arm64/v8"});
  CHECK(image.blobs.size() == 11); // index, 3 manifests, 3 configs, 4 layers (one shared)
  for (const auto& blob : image.blobs) {
    CHECK(blob.checked == Checked::no);
    CHECK(blob.offset == 0);
    CHECK(blob.file == layout.blob_path(blob.descriptor));
  }
  CHECK(file_count(tmp / "store") == 0);
}

TEST_CASE("load_layout_image lists each blob once, parents before children") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  const ResolvedImage image = load_layout_image(layout.dir, "multi", PlatformFilter(), store, log);
  const std::vector<Digest> order = digests_of(image.blobs);
  CHECK(std::set<Digest>(order.begin(), order.end()).size() == order.size());
  const auto at = [&order](const Descriptor& d) {
    return std::find(order.begin(), order.end(), d.digest) - order.begin();
  };
  CHECK(at(layout.multi) == 0);
  CHECK(at(layout.amd) < at(layout.shared));
  CHECK(at(layout.amd) < at(layout.amd_layer));
  CHECK(at(layout.arm) < at(layout.arm_layer));
  CHECK(at(layout.shared) < at(layout.amd_layer)); // layers in manifest order
  CHECK(at(layout.attestation) < at(layout.att_layer));
  // The config comes right after its manifest, before the layers.
  const ImageManifest amd = std::get<ImageManifest>(
      ferry::oci::parse_manifest(read_file(layout.blob_path(layout.amd)), media_type::oci_manifest, "amd"));
  CHECK(order[static_cast<std::size_t>(at(layout.amd)) + 1] == amd.config.digest);
  CHECK(image.blobs[static_cast<std::size_t>(at(layout.amd)) + 1].descriptor.media_type == media_type::oci_config);
}

TEST_CASE("load_layout_image narrows an index to the platform filter") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  const ResolvedImage image = load_layout_image(layout.dir, "multi", filter_of({"linux/arm64"}), store, log);
  CHECK(image.platforms == std::vector<std::string>{"linux/arm64/v8"});
  REQUIRE(image.source_digest);
  CHECK(*image.source_digest == layout.multi.digest);
  CHECK(image.root.digest != layout.multi.digest);
  CHECK(image.root.media_type == media_type::oci_index);
  CHECK(image.root.annotations == layout.multi.annotations); // ref.name survives

  // The new index is in the store, is the first blob, and is what its digest says.
  REQUIRE(store.contains(image.root.digest));
  const std::string bytes = read_file(store.path(image.root.digest));
  CHECK(ferry::core::sha256_of(bytes) == image.root.digest);
  CHECK(bytes.size() == image.root.size);
  REQUIRE_FALSE(image.blobs.empty());
  CHECK(image.blobs[0].descriptor.digest == image.root.digest);
  CHECK(image.blobs[0].checked == Checked::yes);
  CHECK(image.blobs[0].file == store.path(image.root.digest));

  // Same fields, only the arm64 child: exactly what to_json writes for that index.
  ImageIndex expected;
  expected.media_type = media_type::oci_index;
  expected.manifests = {layout.arm};
  expected.annotations["org.opencontainers.image.source"] = "https://example.com/app";
  CHECK(bytes == ferry::oci::to_json(expected));

  CHECK(has_blob(image, layout.arm));
  CHECK(has_blob(image, layout.shared));
  CHECK(has_blob(image, layout.arm_layer));
  CHECK_FALSE(has_blob(image, layout.amd));
  CHECK_FALSE(has_blob(image, layout.amd_layer));
  CHECK_FALSE(has_blob(image, layout.attestation)); // unknown/unknown fails any filter
  CHECK_FALSE(has_blob(image, layout.att_layer));
  CHECK(image.blobs.size() == 5); // new index, manifest, config, two layers
}

TEST_CASE("load_layout_image with a filter matching every child keeps the index") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  write_layout(layout.dir, {named(with_platform(layout.amd, "linux/amd64"), "one")});
  ImageIndex index;
  index.media_type = media_type::oci_index;
  index.manifests = {layout.amd, layout.arm};
  const Descriptor two = named(put_blob(layout.dir, media_type::oci_index, ferry::oci::to_json(index)), "two");
  write_layout(layout.dir, {two});
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  const ResolvedImage image =
      load_layout_image(layout.dir, "two", filter_of({"linux/amd64", "linux/arm64"}), store, log);
  CHECK(image.root.digest == two.digest);
  CHECK_FALSE(image.source_digest);
  CHECK(image.blobs[0].checked == Checked::no);
  CHECK(file_count(tmp / "store") == 0);
}

TEST_CASE("load_layout_image with no matching platform lists the platforms the image has") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  try {
    load_layout_image(layout.dir, "multi", filter_of({"linux/s390x"}), store, log);
    FAIL("no exception");
  } catch (const UsageError& e) {
    const std::string message = e.what();
    CHECK(contains(message, "oci:" + layout.dir.string() + ":multi"));
    CHECK(contains(message, "has no manifest matching linux/s390x (it has linux/amd64, linux/arm64/v8)"));
    CHECK_FALSE(contains(message, "unknown"));
    CHECK(contains(e.hint(), "platforms:"));
  }
}

TEST_CASE("load_layout_image keeps a single manifest outside the filter, with a warning") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  BlobStore store(tmp / "store");
  RecordingLog log;
  const ResolvedImage image = load_layout_image(layout.dir, "single", filter_of({"linux/arm64"}), store, log);
  CHECK(image.root.digest == layout.single.digest);
  CHECK(image.platforms == std::vector<std::string>{"linux/amd64"}); // learnt from the config
  CHECK(image.blobs.size() == 3);
  REQUIRE(log.warnings.size() == 1);
  CHECK(contains(log.warnings[0], "linux/amd64"));
  CHECK(contains(log.warnings[0], "linux/arm64"));
}

TEST_CASE("walk_image keeps index children without a platform only when every platform is wanted") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  Descriptor bare = layout.amd;
  bare.platform.reset();
  ImageIndex index;
  index.media_type = media_type::oci_index;
  index.manifests = {bare, layout.arm};
  const Descriptor root = named(put_blob(layout.dir, media_type::oci_index, ferry::oci::to_json(index)), "bare");
  write_layout(layout.dir, {root});
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  SUBCASE("no filter: kept, platform read from its config") {
    const ResolvedImage image = load_layout_image(layout.dir, "bare", PlatformFilter(), store, log);
    CHECK(image.root.digest == root.digest);
    CHECK(image.platforms == std::vector<std::string>{"linux/amd64", "linux/arm64/v8"});
    CHECK(has_blob(image, layout.amd_layer));
  }
  SUBCASE("a filter, even one its config would match: dropped") {
    const ResolvedImage image =
        load_layout_image(layout.dir, "bare", filter_of({"linux/amd64", "linux/arm64"}), store, log);
    CHECK(image.root.digest != root.digest);
    CHECK(image.platforms == std::vector<std::string>{"linux/arm64/v8"});
    CHECK_FALSE(has_blob(image, layout.amd_layer));
  }
}

TEST_CASE("walk_image rewrites an index whose nested index was narrowed") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  ImageIndex inner;
  inner.media_type = media_type::oci_index;
  inner.manifests = {layout.amd, layout.arm};
  const Descriptor inner_d = put_blob(layout.dir, media_type::oci_index, ferry::oci::to_json(inner));
  ImageIndex outer;
  outer.media_type = media_type::oci_index;
  outer.manifests = {inner_d};
  const Descriptor outer_d = named(put_blob(layout.dir, media_type::oci_index, ferry::oci::to_json(outer)), "nested");
  write_layout(layout.dir, {outer_d});
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  const ResolvedImage image = load_layout_image(layout.dir, "nested", filter_of({"linux/amd64"}), store, log);
  CHECK(image.source_digest == outer_d.digest);
  CHECK(image.platforms == std::vector<std::string>{"linux/amd64"});

  // The new outer index points at the new inner index, which lists only amd64.
  const ImageIndex new_outer = std::get<ImageIndex>(
      ferry::oci::parse_manifest(read_file(store.path(image.root.digest)), media_type::oci_index, "outer"));
  REQUIRE(new_outer.manifests.size() == 1);
  const Digest new_inner = new_outer.manifests[0].digest;
  CHECK(new_inner != inner_d.digest);
  REQUIRE(store.contains(new_inner));
  inner.manifests = {layout.amd};
  CHECK(read_file(store.path(new_inner)) == ferry::oci::to_json(inner));
  REQUIRE(image.blobs.size() >= 2);
  CHECK(image.blobs[0].descriptor.digest == image.root.digest);
  CHECK(image.blobs[1].descriptor.digest == new_inner);
  CHECK(image.blobs[1].checked == Checked::yes);
  CHECK_FALSE(has_blob(image, inner_d));
}

TEST_CASE("load_layout_image reports a missing or truncated layer") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  std::string expected;
  SUBCASE("missing") {
    fs::remove(layout.blob_path(layout.arm_layer));
    expected = "blob " + layout.arm_layer.digest.str() + " is missing from layout " + layout.dir.string();
  }
  SUBCASE("wrong size") {
    write_file(layout.blob_path(layout.arm_layer), "short");
    expected = "blob " + layout.arm_layer.digest.str() + " in " + layout.dir.string() + " is 5 bytes, expected 2500";
  }
  const std::string message =
      message_of<IntegrityError>([&] { load_layout_image(layout.dir, "multi", PlatformFilter(), store, log); });
  CHECK(message == expected);
}

TEST_CASE("walk_image carries a foreign layer only when the source has it") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  Descriptor foreign = put_blob(layout.dir, media_type::docker_foreign_layer_gzip, ferry::test::random_bytes(100, 9));
  foreign.urls = {"https://example.com/layer.tar.gz"};
  const Descriptor manifest = named(put_image(layout.dir, config_json("windows", "amd64"), {foreign}), "win");
  write_layout(layout.dir, {manifest});
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  SUBCASE("present: carried") {
    const ResolvedImage image = load_layout_image(layout.dir, "win", PlatformFilter(), store, log);
    CHECK(has_blob(image, foreign));
    CHECK(image.platforms == std::vector<std::string>{"windows/amd64"});
  }
  SUBCASE("absent: an error naming the layer") {
    fs::remove(layout.blob_path(foreign));
    try {
      load_layout_image(layout.dir, "win", PlatformFilter(), store, log);
      FAIL("no exception");
    } catch (const IntegrityError& e) {
      CHECK(contains(e.what(), foreign.digest.str()));
      REQUIRE(e.context().size() == 1);
      CHECK(contains(e.context()[0], "non-distributable layer"));
      CHECK(contains(e.context()[0], "https://example.com/layer.tar.gz"));
    }
  }
}

TEST_CASE("load_layout_image on an artifact without an image config has no platform") {
  TestDir tmp;
  MultiArchLayout layout(tmp / "layout");
  ImageManifest chart;
  chart.media_type = media_type::oci_manifest;
  chart.config = put_blob(layout.dir, media_type::helm_config, R"({"name":"demo","version":"1.0.0"})");
  chart.layers = {put_blob(layout.dir, media_type::helm_chart, ferry::test::random_bytes(300, 4))};
  const Descriptor root = named(put_blob(layout.dir, media_type::oci_manifest, ferry::oci::to_json(chart)), "chart");
  write_layout(layout.dir, {root});
  BlobStore store(tmp / "store");
  RecordingLog log;
  const ResolvedImage image = load_layout_image(layout.dir, "chart", filter_of({"linux/amd64"}), store, log);
  CHECK(image.platforms.empty());
  CHECK(image.blobs.size() == 3);
  CHECK(log.warnings.empty());
}

} // TEST_SUITE
