// Tests for lock: MANIFEST.lock.json round trip, refusals, and what --locked compares.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/descriptor.hpp"
#include "core/error.hpp"
#include "lock.hpp"
#include "support/test_support.hpp"

#include <nlohmann/json.hpp>

using ferry::core::Digest;
using ferry::core::UsageError;
using ferry::test::contains;

namespace {

Digest digest_of(const std::string& text) { return ferry::core::sha256_of(text); }

ferry::LockFile sample() {
  ferry::LockFile lock;
  lock.name = "aistor";
  lock.version = "2025.05.30";
  lock.platforms = {"linux/amd64"};
  lock.images.push_back({"quay.io/minio/aistor/minio:R1", "quay.io/minio/aistor/minio:R1", digest_of("narrowed index"),
                         digest_of("upstream index"), {{"linux/amd64", digest_of("amd64 manifest")}}});
  lock.images.push_back({"oci:./layout:web", "registry.example.com/shop/web:1.0", digest_of("web"), std::nullopt, {}});
  lock.charts.push_back({"aistor-objectstore", "https://charts.example.com/aistor/", "~5.2.1", "5.2.1",
                         "https://charts.example.com/aistor/aistor-objectstore-5.2.1.tgz", digest_of("chart"),
                         {{"common", "2.x", "2.13.0", "https://charts.example.com/common-2.13.0.tgz", digest_of("common")}}});
  lock.files.push_back({"tools/helm", "./bin/helm", digest_of("helm binary")});
  return lock;
}

} // namespace

TEST_SUITE("pipelines") {

TEST_CASE("a lock file reads back as it was written, and writes the same bytes again") {
  const ferry::LockFile lock = sample();
  const std::string text = ferry::to_json(lock);
  CHECK(text.back() == '\n');
  const ferry::LockFile again = ferry::parse_lock(text, "aistor.lock.json");
  CHECK(ferry::to_json(again) == text);
  REQUIRE(again.image("quay.io/minio/aistor/minio:R1"));
  CHECK(again.image("quay.io/minio/aistor/minio:R1")->source_digest == digest_of("upstream index"));
  CHECK(again.image("quay.io/minio/aistor/minio:R1")->platforms[0].first == "linux/amd64");
  CHECK_FALSE(again.image("oci:./layout:web")->source_digest);
  REQUIRE(again.chart("aistor-objectstore"));
  CHECK(again.chart("aistor-objectstore")->dependencies[0].version == "2.13.0");
  CHECK(again.file("tools/helm")->digest == digest_of("helm binary"));
  CHECK(ferry::lock_differences(lock, again).empty());
  // Readable by anything: plain JSON with the digests as text.
  const auto doc = nlohmann::json::parse(text);
  CHECK(doc["images"][0]["platforms"]["linux/amd64"] == digest_of("amd64 manifest").str());
}

TEST_CASE("lock_path_for puts NAME.lock.json beside the manifest") {
  CHECK(ferry::lock_path_for("manifests/aistor.yaml") == "manifests/aistor.lock.json");
  CHECK(ferry::lock_path_for("m.yml") == "m.lock.json");
  CHECK(ferry::lock_path_for("images.txt") == "images.txt.lock.json");
}

TEST_CASE("a malformed lock is refused naming the field") {
  nlohmann::json doc = nlohmann::json::parse(ferry::to_json(sample()));
  SUBCASE("a digest that is not sha256") {
    doc["images"][1]["digest"] = "md5:abc";
    CHECK_THROWS_WITH_AS(ferry::parse_lock(doc.dump(), "a.lock.json"),
                         doctest::Contains("a.lock.json: images[1].digest is not a sha256 digest"), UsageError);
  }
  SUBCASE("another lock version") {
    doc["lockVersion"] = 2;
    CHECK_THROWS_WITH_AS(ferry::parse_lock(doc.dump(), "a.lock.json"), doctest::Contains("lockVersion 2"), UsageError);
  }
  SUBCASE("an image twice") {
    doc["images"][1]["source"] = doc["images"][0]["source"];
    CHECK_THROWS_WITH_AS(ferry::parse_lock(doc.dump(), "a.lock.json"), doctest::Contains("a second time"), UsageError);
  }
  SUBCASE("a missing field") {
    doc["charts"][0].erase("version");
    CHECK_THROWS_WITH_AS(ferry::parse_lock(doc.dump(), "a.lock.json"),
                         doctest::Contains("charts[0].version is missing"), UsageError);
  }
  SUBCASE("not JSON") {
    CHECK_THROWS_WITH_AS(ferry::parse_lock("{images: [", "a.lock.json"), doctest::Contains("is not JSON"), UsageError);
  }
}

TEST_CASE("lock_differences names what moved upstream and what the lock lacks") {
  const ferry::LockFile lock = sample();
  ferry::LockFile now = sample();
  SUBCASE("a tag that moved") {
    now.images[0].source_digest = digest_of("new upstream index");
    now.images[0].digest = digest_of("new narrowed index");
    const auto diff = ferry::lock_differences(lock, now);
    REQUIRE(diff.size() == 1);
    CHECK(contains(diff[0], "image quay.io/minio/aistor/minio:R1: the lock has " + digest_of("upstream index").str() +
                                ", the source now " + digest_of("new upstream index").str()));
  }
  SUBCASE("a local image rebuilt") {
    now.images[1].digest = digest_of("web v2");
    const auto diff = ferry::lock_differences(lock, now);
    REQUIRE(diff.size() == 1);
    CHECK(contains(diff[0], "image oci:./layout:web: the lock has"));
  }
  SUBCASE("a chart archive replaced under the same version") {
    now.charts[0].digest = digest_of("chart, rebuilt");
    const auto diff = ferry::lock_differences(lock, now);
    REQUIRE(diff.size() == 1);
    CHECK(contains(diff[0], "chart aistor-objectstore 5.2.1: the lock has archive"));
    CHECK(contains(diff[0], "aistor-objectstore-5.2.1.tgz now serves"));
  }
  SUBCASE("a dependency at another version") {
    now.charts[0].dependencies[0].version = "2.14.0";
    const auto diff = ferry::lock_differences(lock, now);
    REQUIRE(diff.size() == 1);
    CHECK(contains(diff[0], "dependency common: the lock has 2.13.0"));
  }
  SUBCASE("a file changed, an image added, a chart removed") {
    now.files[0].digest = digest_of("helm binary v2");
    now.images.push_back({"docker.io/library/busybox:1.36", "docker.io/library/busybox:1.36", digest_of("b"), {}, {}});
    now.charts.clear();
    const auto diff = ferry::lock_differences(lock, now);
    REQUIRE(diff.size() == 3);
    CHECK(contains(diff[0], "image docker.io/library/busybox:1.36: not in the lock"));
    CHECK(contains(diff[1], "chart aistor-objectstore: in the lock, but the manifest no longer has it"));
    CHECK(contains(diff[2], "file tools/helm (./bin/helm): the lock has"));
  }
}

TEST_CASE("lock_from_descriptor takes images, charts and files from ferry.json and constraints from the manifest") {
  ferry::bundle::BundleDescriptor d;
  d.name = "demo";
  d.version = "1";
  d.images.push_back({"registry.example.com/app:1", "registry.example.com/app:1", digest_of("root"), digest_of("up"),
                      "application/vnd.oci.image.index.v1+json", {"linux/amd64"}, 10});
  d.charts.push_back({"app", "0.3.1", "https://charts.example.com/", "charts/app:0.3.1", digest_of("m"), digest_of("a"), 5,
                      {}, "https://charts.example.com/app-0.3.1.tgz", digest_of("upstream archive"),
                      {{"common", "2.13.0", "https://charts.example.com/common-2.13.0.tgz", digest_of("common")}}});
  d.files.push_back({"tools/x", "./x", "files/tools/x", digest_of("fm"), digest_of("x"), 1, 0755});
  const ferry::LockFile lock = ferry::lock_from_descriptor(
      d, {"linux/amd64"}, {{"registry.example.com/app:1", {{"linux/amd64", digest_of("amd64")}}}}, {{"app", "^0.3.0"}});
  CHECK(lock.name == "demo");
  REQUIRE(lock.images.size() == 1);
  CHECK(lock.images[0].source_digest == digest_of("up"));
  CHECK(lock.images[0].platforms.size() == 1);
  REQUIRE(lock.charts.size() == 1);
  CHECK(lock.charts[0].constraint == "^0.3.0");
  CHECK(lock.charts[0].version == "0.3.1");
  CHECK(lock.charts[0].digest == digest_of("upstream archive"));
  CHECK(lock.charts[0].dependencies[0].url == "https://charts.example.com/common-2.13.0.tgz");
  CHECK(lock.files[0].digest == digest_of("x"));
}

}
