// Tests for diff (`ferry diff`): matching images, charts and files of two bundles or
// locks, and the blob counts of two bundles.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/descriptor.hpp"
#include "diff.hpp"
#include "lock.hpp"
#include "support/test_support.hpp"

using namespace ferry;

namespace {

const std::string k_manifest = "application/vnd.oci.image.manifest.v1+json";
const std::string k_layer = "application/vnd.oci.image.layer.v1.tar+gzip";

bundle::ImageRecord image(const std::string& ref, const std::string& content, std::uint64_t size) {
  return {ref, ref, core::sha256_of(content), std::nullopt, k_manifest, {"linux/amd64"}, size};
}

// Release 1: web 1.0, api 1.0, tool 1.0; chart shop 1.0.0; files notes and old.
bundle::BundleDescriptor release1() {
  bundle::BundleDescriptor d;
  d.name = "shop";
  d.version = "1";
  d.images = {image("example.com/shop/web:1.0", "web1", 5000), image("example.com/shop/api:1.0", "api", 7000),
              image("example.com/shop/tool:1.0", "tool", 1000)};
  d.charts.push_back({"shop", "1.0.0", "./charts/shop", "charts/shop:1.0.0", core::sha256_of("cm1"), core::sha256_of("tgz1"),
                      700, {}});
  d.charts[0].upstream_digest = core::sha256_of("tgz1");
  d.files.push_back({"docs/notes.txt", "./notes.txt", "files/docs/notes.txt", core::sha256_of("fm"), core::sha256_of("n"),
                     14, 0644});
  d.files.push_back({"docs/old.txt", "./old.txt", "files/docs/old.txt", core::sha256_of("fo"), core::sha256_of("o"), 3,
                     0644});
  d.blobs = {{core::sha256_of("web1"), 500, k_manifest},
             {core::sha256_of("base"), 4000, k_layer},
             {core::sha256_of("web-layer-1"), 500, k_layer},
             {core::sha256_of("api-layer"), 3000, k_layer}};
  return d;
}

// Release 2: web moved to 1.1 (a new layer), tool unchanged, api gone, cache added; the
// chart at 1.1.0; notes changed, old gone, new added.
bundle::BundleDescriptor release2() {
  bundle::BundleDescriptor d = release1();
  d.version = "2";
  d.images = {image("example.com/shop/web:1.1", "web2", 7000), image("example.com/shop/tool:1.0", "tool", 1000),
              image("example.com/shop/cache:1.0", "cache", 300)};
  d.charts[0].version = "1.1.0";
  d.charts[0].archive_digest = core::sha256_of("tgz2");
  d.charts[0].upstream_digest = core::sha256_of("tgz2");
  d.files[0].content_digest = core::sha256_of("n2");
  d.files[1] = {"docs/new.txt", "./new.txt", "files/docs/new.txt", core::sha256_of("fn"), core::sha256_of("new"), 4, 0644};
  d.blobs = {{core::sha256_of("web2"), 600, k_manifest},
             {core::sha256_of("base"), 4000, k_layer},
             {core::sha256_of("web-layer-1"), 500, k_layer},
             {core::sha256_of("web-layer-2"), 2000000, k_layer}};
  d.blobs[1].omitted = bundle::OmittedRecord{{0}, {"shop/web"}}; // omitted blobs still count as content
  return d;
}

LockFile lock_of(const bundle::BundleDescriptor& d) { return lock_from_descriptor(d, {"linux/amd64"}, {}, {}); }

} // namespace

TEST_SUITE("pipelines") {

TEST_CASE("diff pairs an image whose tag moved in the same repository as one change") {
  const DiffResult r = diff(diff_side(release1()), diff_side(release2()));
  REQUIRE(r.images.changed.size() == 1);
  CHECK(r.images.changed[0].before.key == "example.com/shop/web:1.0");
  CHECK(r.images.changed[0].after.key == "example.com/shop/web:1.1");
  CHECK(r.images.changed[0].before.size == 5000u);
  CHECK(r.images.changed[0].after.size == 7000u);
  REQUIRE(r.images.added.size() == 1);
  CHECK(r.images.added[0].key == "example.com/shop/cache:1.0");
  REQUIRE(r.images.removed.size() == 1);
  CHECK(r.images.removed[0].key == "example.com/shop/api:1.0");
  CHECK(r.images.unchanged == 1);
}

TEST_CASE("diff sees a chart's new version and a file's new content as changes") {
  const DiffResult r = diff(diff_side(release1()), diff_side(release2()));
  REQUIRE(r.charts.changed.size() == 1);
  CHECK(r.charts.changed[0].before.version == "1.0.0");
  CHECK(r.charts.changed[0].after.version == "1.1.0");
  REQUIRE(r.files.changed.size() == 1);
  CHECK(r.files.changed[0].after.key == "docs/notes.txt");
  // Files are matched by path only: old.txt and new.txt are a removal and an addition.
  REQUIRE(r.files.added.size() == 1);
  CHECK(r.files.added[0].key == "docs/new.txt");
  REQUIRE(r.files.removed.size() == 1);
  CHECK(r.files.removed[0].key == "docs/old.txt");
}

TEST_CASE("diff counts the blobs and bytes of two bundles, omitted blobs included") {
  const DiffResult r = diff(diff_side(release1()), diff_side(release2()));
  REQUIRE(r.blobs.has_value());
  CHECK(r.blobs->added == 2); // web 1.1's manifest and its new layer
  CHECK(r.blobs->added_bytes == 600u + 2000000u);
  CHECK(r.blobs->removed == 2); // web 1.0's manifest and api's layer
  CHECK(r.blobs->removed_bytes == 500u + 3000u);
  CHECK(r.blobs->shared == 2);
  CHECK(r.blobs->shared_bytes == 4500u);
}

TEST_CASE("diff of a bundle with itself finds nothing") {
  const DiffResult r = diff(diff_side(release2()), diff_side(release2()));
  CHECK(r.images.changed.empty());
  CHECK(r.images.added.empty());
  CHECK(r.images.removed.empty());
  CHECK(r.images.unchanged == 3);
  CHECK(r.charts.unchanged == 1);
  CHECK(r.blobs->added == 0);
  CHECK(r.blobs->removed == 0);
}

TEST_CASE("diff of two locks finds the same changes, with sizes unknown") {
  const DiffResult r = diff(diff_side(lock_of(release1())), diff_side(lock_of(release2())));
  CHECK_FALSE(r.blobs.has_value());
  REQUIRE(r.images.changed.size() == 1);
  CHECK(r.images.changed[0].after.key == "example.com/shop/web:1.1");
  CHECK_FALSE(r.images.changed[0].after.size.has_value());
  CHECK(r.images.added.size() == 1);
  CHECK(r.images.removed.size() == 1);
  CHECK(r.charts.changed.size() == 1);
  CHECK(r.files.changed.size() == 1);
  // A lock against a bundle compares too: the same images, no blob counts.
  const DiffResult mixed = diff(diff_side(lock_of(release2())), diff_side(release2()));
  CHECK(mixed.images.unchanged == 3);
  CHECK(mixed.charts.unchanged == 1);
  CHECK(mixed.files.unchanged == 2);
  CHECK_FALSE(mixed.blobs.has_value());
}

TEST_CASE("diff keeps two tags of one repository apart when both sides have several") {
  bundle::BundleDescriptor before = release1();
  before.images.push_back(image("example.com/shop/web:0.9", "web09", 10));
  bundle::BundleDescriptor after = release1();
  after.images[0] = image("example.com/shop/web:1.1", "web2", 7000);
  after.images.push_back(image("example.com/shop/web:1.2", "web3", 10));
  const DiffResult r = diff(diff_side(before), diff_side(after));
  // Two removed and two added in the same repository: no guess which became which.
  CHECK(r.images.changed.empty());
  CHECK(r.images.added.size() == 2);
  CHECK(r.images.removed.size() == 2);
}

} // TEST_SUITE
