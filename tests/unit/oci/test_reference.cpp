// Tests for oci/reference: the reference grammar, Docker Hub normalisation, transports.
// SPDX-License-Identifier: Apache-2.0
#include "oci/reference.hpp"

#include "core/error.hpp"
#include "support/test_support.hpp"

#include <string>
#include <vector>

using ferry::core::Digest;
using ferry::core::UsageError;
using ferry::oci::ImageSource;
using ferry::oci::Reference;
using ferry::test::contains;

namespace {

const std::string k_hex = "9c01ab3d9c01ab3d9c01ab3d9c01ab3d9c01ab3d9c01ab3d9c01ab3d9c01ab3d";
const std::string k_digest = "sha256:" + k_hex;

// The message of the UsageError that `fn` throws, or "" when it throws none.
template <typename Fn>
std::string usage_error_of(Fn&& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

} // namespace

TEST_SUITE("oci") {

TEST_CASE("Reference::parse normalises to registry, repository and tag") {
  struct Row {
    std::string text;
    std::string registry;
    std::string repository;
    std::string str;
  };
  const std::vector<Row> rows = {
      {"nginx", "docker.io", "library/nginx", "docker.io/library/nginx:latest"},
      {"nginx:1.27", "docker.io", "library/nginx", "docker.io/library/nginx:1.27"},
      {"bitnami/redis:7", "docker.io", "bitnami/redis", "docker.io/bitnami/redis:7"},
      {"docker.io/nginx", "docker.io", "library/nginx", "docker.io/library/nginx:latest"},
      {"docker.io/library/nginx", "docker.io", "library/nginx", "docker.io/library/nginx:latest"},
      {"index.docker.io/nginx", "docker.io", "library/nginx", "docker.io/library/nginx:latest"},
      {"index.docker.io/bitnami/redis:7", "docker.io", "bitnami/redis", "docker.io/bitnami/redis:7"},
      {"quay.io/minio/aistor/operator:RELEASE.2025-05-30T11-03-39Z", "quay.io", "minio/aistor/operator",
       "quay.io/minio/aistor/operator:RELEASE.2025-05-30T11-03-39Z"},
      {"localhost/app", "localhost", "app", "localhost/app:latest"},
      {"localhost:5000/team/app:1", "localhost:5000", "team/app", "localhost:5000/team/app:1"},
      {"registry:5000/app", "registry:5000", "app", "registry:5000/app:latest"},
      {"10.0.0.7:443/a/b:v2", "10.0.0.7:443", "a/b", "10.0.0.7:443/a/b:v2"},
      {"[::1]:5000/app:1", "[::1]:5000", "app", "[::1]:5000/app:1"},
      {"Registry.Example.COM/app", "Registry.Example.COM", "app", "Registry.Example.COM/app:latest"},
      {"ghcr.io/a.b/c_d/e__f/g--h---i", "ghcr.io", "a.b/c_d/e__f/g--h---i", "ghcr.io/a.b/c_d/e__f/g--h---i:latest"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.text);
    const Reference ref = Reference::parse(row.text);
    CHECK(ref.registry() == row.registry);
    CHECK(ref.repository() == row.repository);
    CHECK(ref.str() == row.str);
    CHECK(ref.name() == row.registry + "/" + row.repository);
  }
}

TEST_CASE("Reference::parse gives the same reference for every Docker Hub spelling") {
  const Reference expected = Reference::parse("docker.io/library/nginx:1.27");
  CHECK(Reference::parse("nginx:1.27") == expected);
  CHECK(Reference::parse("library/nginx:1.27") == expected);
  CHECK(Reference::parse("docker.io/nginx:1.27") == expected);
  CHECK(Reference::parse("index.docker.io/library/nginx:1.27") == expected);
  CHECK_FALSE(Reference::parse("quay.io/nginx:1.27") == expected);
}

TEST_CASE("Reference::parse defaults the tag to latest only without tag and digest") {
  SUBCASE("neither") {
    const Reference ref = Reference::parse("nginx");
    REQUIRE(ref.tag().has_value());
    CHECK(*ref.tag() == "latest");
    CHECK_FALSE(ref.digest().has_value());
  }
  SUBCASE("digest only") {
    const Reference ref = Reference::parse("localhost:5000/a/b@" + k_digest);
    CHECK_FALSE(ref.tag().has_value());
    REQUIRE(ref.digest().has_value());
    CHECK(ref.digest()->str() == k_digest);
    CHECK(ref.str() == "localhost:5000/a/b@" + k_digest);
  }
  SUBCASE("tag and digest") {
    const Reference ref = Reference::parse("quay.io/minio/minio:RELEASE.2025-05-30T11-03-39Z@" + k_digest);
    REQUIRE(ref.tag().has_value());
    CHECK(*ref.tag() == "RELEASE.2025-05-30T11-03-39Z");
    REQUIRE(ref.digest().has_value());
    CHECK(ref.digest()->str() == k_digest);
    CHECK(ref.str() == "quay.io/minio/minio:RELEASE.2025-05-30T11-03-39Z@" + k_digest);
  }
}

TEST_CASE("Reference::parse accepts tags of the distribution grammar") {
  SUBCASE("upper case and underscore") { CHECK(*Reference::parse("app:_Build_1.2-rc3").tag() == "_Build_1.2-rc3"); }
  SUBCASE("128 characters") {
    const std::string tag(128, 'a');
    CHECK(*Reference::parse("app:" + tag).tag() == tag);
  }
}

TEST_CASE("Reference::parse rejects an upper-case repository path") {
  const std::string message = usage_error_of([] { Reference::parse("quay.io/MinIO/minio"); });
  CHECK(contains(message, "quay.io/MinIO/minio"));
  CHECK(contains(message, "repository path must be lower-case"));
  SUBCASE("on Docker Hub too") { CHECK_THROWS_AS(Reference::parse("Nginx"), UsageError); }
}

TEST_CASE("Reference::parse rejects bad tags naming the reason") {
  struct Row {
    std::string text;
    std::string reason;
  };
  const std::vector<Row> rows = {
      {"nginx:", "tag is empty"},
      {"nginx:-rc", "tag '-rc' is invalid"},
      {"nginx:.1", "tag '.1' is invalid"},
      {"nginx:1+2", "tag '1+2' is invalid"},
      {"nginx:" + std::string(129, 'a'), "tag is 129 characters long, at most 128 allowed"},
      {"localhost:5000/app:", "tag is empty"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.text);
    const std::string message = usage_error_of([&] { Reference::parse(row.text); });
    CHECK(contains(message, row.reason));
    CHECK(contains(message, "'" + row.text + "'"));
  }
}

TEST_CASE("Reference::parse rejects malformed names and digests") {
  struct Row {
    std::string text;
    std::string reason;
  };
  const std::vector<Row> rows = {
      {"", "reference is empty"},
      {":1", "repository name is empty"},
      {"quay.io/", "repository path is empty"},
      {"quay.io/a//b", "repository path has an empty component"},
      {"a/-b", "repository path component '-b' is invalid"},
      {"a/b.", "repository path component 'b.' is invalid"},
      {"a/b___c", "repository path component 'b___c' is invalid"},
      {"a/b.-c", "repository path component 'b.-c' is invalid"},
      {"quay.io:/a", "registry port is empty"},
      {"quay.io:http/a", "registry port 'http' is not a number"},
      {"quay.io:70000/a", "registry port '70000' is not a number"},
      {"-bad.io/a", "registry host '-bad.io' is not a host name"},
      {"a..io/b", "registry host 'a..io' is not a host name"},
      {"[zz]:5000/a", "is not an IPv6 address"},
      {"docker://nginx", "without the 'docker://' prefix"},
      {"ngi nx", "white space"},
      {"nginx@", "digest is empty"},
      {"nginx@" + k_hex, "has no algorithm"},
      {"nginx@sha512:" + std::string(128, 'a'), "only sha256 is supported"},
      {"nginx@sha256:abc", "is not sha256: followed by 64 lower-case hex digits"},
      {"nginx@sha256:" + std::string(64, 'A'), "is not sha256: followed by 64 lower-case hex digits"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.text);
    const std::string message = usage_error_of([&] { Reference::parse(row.text); });
    CHECK(contains(message, row.reason));
  }
}

TEST_CASE("Reference::parse limits the normalised name to 255 characters") {
  // "quay.io/" (8) + path: the limit counts registry/repository, without tag or digest.
  const std::string at_limit = "quay.io/" + std::string(247, 'a');
  CHECK(Reference::parse(at_limit + ":1").repository().size() == 247);
  CHECK(contains(usage_error_of([&] { Reference::parse(at_limit + "b:1"); }),
                 "is 256 characters long, at most 255 allowed"));
  SUBCASE("Docker Hub names count docker.io/library/") {
    // "docker.io/library/" is 18 characters: 237 + 18 = 255 fits, 238 does not.
    CHECK(Reference::parse(std::string(237, 'a')).name().size() == 255);
    CHECK(contains(usage_error_of([&] { Reference::parse(std::string(238, 'a')); }),
                   "is 256 characters long, at most 255 allowed"));
  }
  SUBCASE("very long text") {
    CHECK(contains(usage_error_of([&] { Reference::parse("quay.io/" + std::string(100000, 'a')); }),
                   "at most 255 allowed"));
  }
}

TEST_CASE("Reference::parse errors are UsageErrors with a hint") {
  try {
    Reference::parse("Quay.io/A");
    FAIL("no exception");
  } catch (const UsageError& e) {
    CHECK(e.code() == ferry::core::ExitCode::usage);
    CHECK_FALSE(e.hint().empty());
  }
}

TEST_CASE("Reference::with_digest adds the digest and keeps the tag") {
  const Digest digest = Digest::parse(k_digest);
  const Reference tagged = Reference::parse("nginx:1.27").with_digest(digest);
  CHECK(tagged.str() == "docker.io/library/nginx:1.27@" + k_digest);
  REQUIRE(tagged.digest().has_value());
  CHECK(*tagged.digest() == digest);
  SUBCASE("replaces an earlier digest") {
    const Digest other = Digest::parse("sha256:" + std::string(64, '0'));
    CHECK(tagged.with_digest(other).str() == "docker.io/library/nginx:1.27@" + other.str());
  }
  SUBCASE("round trips through parse") { CHECK(Reference::parse(tagged.str()) == tagged); }
}

TEST_CASE("ImageSource::parse recognises skopeo's transports") {
  struct Row {
    std::string text;
    ImageSource::Kind kind;
    std::string location;
    std::string ref;
  };
  using K = ImageSource::Kind;
  const std::vector<Row> rows = {
      {"nginx", K::registry, "nginx", ""},
      {"nginx:1.27", K::registry, "nginx:1.27", ""},
      {"docker://nginx:1.27", K::registry, "nginx:1.27", ""},
      {"docker://quay.io/minio/minio@" + k_digest, K::registry, "quay.io/minio/minio@" + k_digest, ""},
      {"localhost:5000/app:1", K::registry, "localhost:5000/app:1", ""},
      {"quay.io/x:1", K::registry, "quay.io/x:1", ""},
      {"registry:5000/app", K::registry, "registry:5000/app", ""},
      // Docker Hub images named like a transport or its prefix: "docker:24-dind" is real.
      {"docker:24-dind", K::registry, "docker:24-dind", ""},
      {"oci:5000/app", K::registry, "oci:5000/app", ""},
      {"oci:./local-layout:tool", K::oci_layout, "./local-layout", "tool"},
      {"oci:/srv/layout", K::oci_layout, "/srv/layout", ""},
      {"oci:layout:app:1.0", K::oci_layout, "layout", "app:1.0"},
      {"docker-archive:./studio-frontend.tar", K::docker_archive, "./studio-frontend.tar", ""},
      {"docker-archive:img.tar:quay.io/x/y:2", K::docker_archive, "img.tar", "quay.io/x/y:2"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.text);
    const ImageSource source = ImageSource::parse(row.text);
    CHECK(source.kind == row.kind);
    CHECK(source.text == row.text);
    CHECK(source.location == row.location);
    CHECK(source.ref == row.ref);
  }
}

TEST_CASE("ImageSource::parse refuses transports ferry cannot read") {
  for (const std::string word : {"dir", "containers-storage", "docker-daemon", "oci-archive"}) {
    CAPTURE(word);
    const std::string message = usage_error_of([&] { ImageSource::parse(word + ":somewhere"); });
    CHECK(contains(message, "transport '" + word + "' is not supported; use oci:, docker-archive: or docker://"));
    CHECK(contains(message, word + ":somewhere"));
  }
  SUBCASE("URL schemes") {
    CHECK(contains(usage_error_of([] { ImageSource::parse("https://quay.io/x"); }),
                   "transport 'https' is not supported"));
  }
  SUBCASE("Helm's oci:// syntax") {
    CHECK(contains(usage_error_of([] { ImageSource::parse("oci://quay.io/x"); }), "docker://quay.io/x"));
  }
}

TEST_CASE("ImageSource::parse refuses an empty location") {
  CHECK(contains(usage_error_of([] { ImageSource::parse(""); }), "it is empty"));
  CHECK(contains(usage_error_of([] { ImageSource::parse("docker://"); }), "after docker:// is empty"));
  CHECK(contains(usage_error_of([] { ImageSource::parse("oci:"); }), "directory after oci: is empty"));
  CHECK(contains(usage_error_of([] { ImageSource::parse("oci::app"); }), "directory after oci: is empty"));
  CHECK(contains(usage_error_of([] { ImageSource::parse("docker-archive:"); }), "file after docker-archive: is empty"));
}

TEST_CASE("ImageSource::parse checks a registry reference") {
  CHECK(contains(usage_error_of([] { ImageSource::parse("docker://Quay.io/A"); }),
                 "repository path must be lower-case"));
  CHECK(contains(usage_error_of([] { ImageSource::parse("nginx:"); }), "tag is empty"));
}

}
