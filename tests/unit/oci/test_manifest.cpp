// Tests for oci/manifest and oci/media_types: parsing others' JSON, writing byte-stable JSON.
// SPDX-License-Identifier: Apache-2.0
#include "oci/manifest.hpp"

#include "core/error.hpp"
#include "oci/media_types.hpp"
#include "support/test_support.hpp"

#include <string>
#include <vector>

namespace media_type = ferry::oci::media_type;
using ferry::core::Digest;
using ferry::core::IntegrityError;
using ferry::oci::AnyManifest;
using ferry::oci::Descriptor;
using ferry::oci::ImageIndex;
using ferry::oci::ImageManifest;
using ferry::oci::parse_manifest;
using ferry::oci::Platform;
using ferry::test::contains;

namespace {

std::string hex_of(char c) { return std::string(64, c); }
std::string digest_text(char c) { return "sha256:" + hex_of(c); }
Digest digest_of(char c) { return Digest::parse(digest_text(c)); }

ImageManifest as_manifest(const AnyManifest& any) {
  REQUIRE(std::holds_alternative<ImageManifest>(any));
  return std::get<ImageManifest>(any);
}

ImageIndex as_index(const AnyManifest& any) {
  REQUIRE(std::holds_alternative<ImageIndex>(any));
  return std::get<ImageIndex>(any);
}

// The IntegrityError `parse_manifest` throws for `json`, or a default one when it throws none.
IntegrityError parse_error(const std::string& json, std::string_view declared = {}) {
  try {
    parse_manifest(json, declared, "manifest M");
  } catch (const IntegrityError& e) {
    return e;
  }
  return IntegrityError("no error");
}

void check_same(const Descriptor& a, const Descriptor& b) {
  CHECK(a.media_type == b.media_type);
  CHECK(a.digest == b.digest);
  CHECK(a.size == b.size);
  CHECK(a.platform == b.platform);
  CHECK(a.annotations == b.annotations);
  CHECK(a.artifact_type == b.artifact_type);
  CHECK(a.urls == b.urls);
}

void check_same(const std::vector<Descriptor>& a, const std::vector<Descriptor>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) check_same(a[i], b[i]);
}

void check_same(const std::optional<Descriptor>& a, const std::optional<Descriptor>& b) {
  REQUIRE(a.has_value() == b.has_value());
  if (a) check_same(*a, *b);
}

Descriptor descriptor(std::string_view type, char digest, std::uint64_t size) {
  return Descriptor{.media_type = std::string(type),
                    .digest = digest_of(digest),
                    .size = size,
                    .platform = std::nullopt,
                    .annotations = {},
                    .artifact_type = {},
                    .urls = {}};
}

// A manifest as `skopeo copy --format oci` writes it (pretty-printed, unsorted keys).
const std::string k_oci_manifest = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {
    "mediaType": "application/vnd.oci.image.config.v1+json",
    "digest": "sha256:)" + hex_of('a') + R"(",
    "size": 1469
  },
  "layers": [
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
      "digest": "sha256:)" + hex_of('b') + R"(",
      "size": 3623807
    },
    {
      "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
      "digest": "sha256:)" + hex_of('c') + R"(",
      "size": 18446744073709551615,
      "annotations": {"org.opencontainers.image.title": "big.tar.zst"}
    }
  ],
  "annotations": {"org.opencontainers.image.created": "2025-05-30T11:03:39Z"},
  "unknownField": {"ignored": true}
})";

const std::string k_oci_index = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:)" + hex_of('1') + R"(",
      "size": 1234,
      "platform": {"architecture": "amd64", "os": "linux"}
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:)" + hex_of('2') + R"(",
      "size": 1235,
      "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
      "annotations": {"org.opencontainers.image.ref.name": "1.0"}
    },
    {
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "digest": "sha256:)" + hex_of('3') + R"(",
      "size": 1236,
      "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1879",
                   "os.features": ["win32k"]}
    }
  ],
  "annotations": {"org.opencontainers.image.ref.name": "app"}
})";

const std::string k_docker_manifest = R"({
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {
      "mediaType": "application/vnd.docker.container.image.v1+json",
      "size": 7023,
      "digest": "sha256:)" + hex_of('d') + R"("
   },
   "layers": [
      {
         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 32654,
         "digest": "sha256:)" + hex_of('e') + R"("
      },
      {
         "mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
         "size": 16724,
         "digest": "sha256:)" + hex_of('f') + R"(",
         "urls": ["https://mcr.microsoft.com/v2/windows/blobs/sha256:)" + hex_of('f') + R"("]
      }
   ]
})";

const std::string k_docker_manifest_list = R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "manifests": [
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "size": 7143,
      "digest": "sha256:)" + hex_of('4') + R"(",
      "platform": {"architecture": "ppc64le", "os": "linux"}
    },
    {
      "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
      "size": 7682,
      "digest": "sha256:)" + hex_of('5') + R"(",
      "platform": {"architecture": "arm", "os": "linux", "variant": "v7", "features": ["sse4"]}
    }
  ]
})";

// A manifest whose layer is `layer_json`, for the field-checking cases.
std::string manifest_with_layer(const std::string& layer_json) {
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
         R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
         digest_text('a') + R"(","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar",)"
                            R"("digest":")" +
         digest_text('b') + R"(","size":1},)" + layer_json + "]}";
}

} // namespace

TEST_SUITE("oci") {

TEST_CASE("media_type::is_index knows both index kinds") {
  CHECK(media_type::is_index(media_type::oci_index));
  CHECK(media_type::is_index(media_type::docker_manifest_list));
  CHECK(media_type::is_index("application/vnd.oci.image.index.v1+json; charset=utf-8"));
  CHECK_FALSE(media_type::is_index(media_type::oci_manifest));
  CHECK_FALSE(media_type::is_index(media_type::docker_manifest));
  CHECK_FALSE(media_type::is_index(""));
}

TEST_CASE("media_type::is_manifest knows both image manifest kinds") {
  CHECK(media_type::is_manifest(media_type::oci_manifest));
  CHECK(media_type::is_manifest(media_type::docker_manifest));
  CHECK_FALSE(media_type::is_manifest(media_type::docker_manifest_v1));
  CHECK_FALSE(media_type::is_manifest(media_type::docker_manifest_v1_signed));
  CHECK_FALSE(media_type::is_manifest(media_type::oci_index));
  CHECK_FALSE(media_type::is_manifest(media_type::oci_config));
}

TEST_CASE("media_type::is_compressed knows gzip and zstd in OCI, Docker and Helm spellings") {
  CHECK(media_type::is_compressed(media_type::oci_layer_gzip));
  CHECK(media_type::is_compressed(media_type::oci_layer_zstd));
  CHECK(media_type::is_compressed(media_type::docker_layer_gzip));
  CHECK(media_type::is_compressed(media_type::docker_foreign_layer_gzip));
  CHECK(media_type::is_compressed(media_type::helm_chart));
  CHECK(media_type::is_compressed("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"));
  CHECK(media_type::is_compressed("application/vnd.docker.image.rootfs.diff.tar.zstd"));
  CHECK_FALSE(media_type::is_compressed(media_type::oci_layer));
  CHECK_FALSE(media_type::is_compressed(media_type::oci_config));
  CHECK_FALSE(media_type::is_compressed(media_type::oci_manifest));
  CHECK_FALSE(media_type::is_compressed(media_type::helm_provenance));
  CHECK_FALSE(media_type::is_compressed(media_type::ferry_file));
  CHECK_FALSE(media_type::is_compressed("application/gzip-like+json"));
}

TEST_CASE("parse_manifest reads an OCI image manifest") {
  const ImageManifest m = as_manifest(parse_manifest(k_oci_manifest, "", "manifest M"));
  CHECK(m.media_type == media_type::oci_manifest);
  CHECK(m.artifact_type.empty());
  CHECK(m.config.media_type == media_type::oci_config);
  CHECK(m.config.digest == digest_of('a'));
  CHECK(m.config.size == 1469);
  REQUIRE(m.layers.size() == 2);
  CHECK(m.layers[0].media_type == media_type::oci_layer_gzip);
  CHECK(m.layers[0].digest == digest_of('b'));
  CHECK(m.layers[0].size == 3623807);
  CHECK(m.layers[0].annotations.empty());
  CHECK(m.layers[1].size == 18446744073709551615ULL);
  CHECK(m.layers[1].annotations.at("org.opencontainers.image.title") == "big.tar.zst");
  CHECK_FALSE(m.subject.has_value());
  CHECK(m.annotations == std::map<std::string, std::string>{{"org.opencontainers.image.created", "2025-05-30T11:03:39Z"}});
}

TEST_CASE("parse_manifest reads an OCI image index with platforms") {
  const ImageIndex index = as_index(parse_manifest(k_oci_index, "", "index I"));
  CHECK(index.media_type == media_type::oci_index);
  REQUIRE(index.manifests.size() == 3);
  REQUIRE(index.manifests[0].platform.has_value());
  CHECK(index.manifests[0].platform->str() == "linux/amd64");
  CHECK(index.manifests[0].digest == digest_of('1'));
  CHECK(index.manifests[0].size == 1234);
  REQUIRE(index.manifests[1].platform.has_value());
  CHECK(index.manifests[1].platform->str() == "linux/arm64/v8");
  CHECK(index.manifests[1].annotations.at("org.opencontainers.image.ref.name") == "1.0");
  REQUIRE(index.manifests[2].platform.has_value());
  CHECK(index.manifests[2].platform->os == "windows");
  CHECK(index.manifests[2].platform->os_version == "10.0.17763.1879");
  CHECK(index.annotations.at("org.opencontainers.image.ref.name") == "app");
}

TEST_CASE("parse_manifest reads a Docker schema 2 manifest") {
  const ImageManifest m = as_manifest(parse_manifest(k_docker_manifest, media_type::docker_manifest, "manifest M"));
  CHECK(m.media_type == media_type::docker_manifest);
  CHECK(m.config.media_type == media_type::docker_config);
  CHECK(m.config.digest == digest_of('d'));
  CHECK(m.config.size == 7023);
  REQUIRE(m.layers.size() == 2);
  CHECK(m.layers[0].media_type == media_type::docker_layer_gzip);
  CHECK(m.layers[1].media_type == media_type::docker_foreign_layer_gzip);
  CHECK(m.layers[1].urls == std::vector<std::string>{"https://mcr.microsoft.com/v2/windows/blobs/" + digest_text('f')});
}

TEST_CASE("parse_manifest reads a Docker manifest list") {
  const ImageIndex index = as_index(parse_manifest(k_docker_manifest_list, "", "index I"));
  CHECK(index.media_type == media_type::docker_manifest_list);
  REQUIRE(index.manifests.size() == 2);
  CHECK(index.manifests[0].media_type == media_type::docker_manifest);
  CHECK(index.manifests[0].size == 7143);
  REQUIRE(index.manifests[1].platform.has_value());
  CHECK(index.manifests[1].platform->str() == "linux/arm/v7");
  CHECK(index.manifests[1].digest == digest_of('5'));
}

TEST_CASE("parse_manifest reads an artifact manifest with empty layers and a subject") {
  const std::string json = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
                           R"("artifactType":"application/vnd.example.sbom.v1","config":{"mediaType":)"
                           R"("application/vnd.oci.empty.v1+json","digest":")" +
                           digest_text('4') + R"(","size":2},"layers":[],"subject":{"mediaType":)"
                                              R"("application/vnd.oci.image.manifest.v1+json","digest":")" +
                           digest_text('5') + R"(","size":99}})";
  const ImageManifest m = as_manifest(parse_manifest(json, "", "manifest M"));
  CHECK(m.artifact_type == "application/vnd.example.sbom.v1");
  CHECK(m.config.media_type == media_type::oci_empty);
  CHECK(m.layers.empty());
  REQUIRE(m.subject.has_value());
  CHECK(m.subject->digest == digest_of('5'));
  CHECK(m.subject->size == 99);
}

TEST_CASE("parse_manifest takes the kind from the declared media type when the document has none") {
  const std::string manifest_shape = R"({"schemaVersion":2,"config":{"mediaType":"c","digest":")" +
                                     digest_text('a') + R"(","size":1},"layers":[]})";
  SUBCASE("declared Docker manifest") {
    const ImageManifest m = as_manifest(parse_manifest(manifest_shape, media_type::docker_manifest, "manifest M"));
    CHECK(m.media_type == media_type::docker_manifest);
  }
  SUBCASE("nothing declared: the shape decides, recorded as OCI") {
    const ImageManifest m = as_manifest(parse_manifest(manifest_shape, "", "manifest M"));
    CHECK(m.media_type == media_type::oci_manifest);
  }
  SUBCASE("index shape without mediaType") {
    const std::string index_shape = R"({"schemaVersion":2,"manifests":[]})";
    const ImageIndex index = as_index(parse_manifest(index_shape, "", "index I"));
    CHECK(index.media_type == media_type::oci_index);
    CHECK(index.manifests.empty());
  }
  SUBCASE("declared index wins over the shape") {
    const IntegrityError e = parse_error(manifest_shape, media_type::oci_index);
    CHECK(std::string(e.what()) == "manifest M: has no \"manifests\"");
  }
  SUBCASE("the document's own mediaType wins over the declared one") {
    const ImageIndex index = as_index(parse_manifest(k_oci_index, media_type::oci_manifest, "index I"));
    CHECK(index.manifests.size() == 3);
  }
}

TEST_CASE("parse_manifest refuses Docker schema 1 with a hint to convert") {
  const std::string schema1 = R"({"schemaVersion":1,"name":"library/nginx","tag":"1.0","architecture":"amd64",)"
                              R"("fsLayers":[{"blobSum":")" +
                              digest_text('a') + R"("}],"history":[],"signatures":[]})";
  SUBCASE("schemaVersion 1") {
    const IntegrityError e = parse_error(schema1);
    CHECK(contains(e.what(), "manifest M is a Docker schema 1 manifest"));
    CHECK(contains(e.hint(), "skopeo copy --format v2s2"));
    CHECK(e.code() == ferry::core::ExitCode::integrity);
  }
  SUBCASE("a v1 mediaType in the document") {
    const IntegrityError e =
        parse_error(R"({"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws","fsLayers":[]})");
    CHECK(contains(e.what(), "schema 1"));
    CHECK(contains(e.hint(), "skopeo copy --format v2s2"));
  }
  SUBCASE("declared v1 and no schemaVersion") {
    const IntegrityError e = parse_error(R"({"fsLayers":[]})", media_type::docker_manifest_v1);
    CHECK(contains(e.what(), "schema 1"));
    CHECK(contains(e.hint(), "skopeo copy --format v2s2"));
  }
}

TEST_CASE("parse_manifest refuses other schema versions and unknown media types") {
  CHECK(std::string(parse_error(R"({"schemaVersion":3,"manifests":[]})").what()) ==
        "manifest M: schemaVersion is 3, expected 2");
  CHECK(std::string(parse_error(R"({"schemaVersion":"2","manifests":[]})").what()) ==
        "manifest M: schemaVersion is \"2\", expected 2");
  CHECK(std::string(parse_error(R"({"schemaVersion":2,"mediaType":"text/plain","manifests":[]})").what()) ==
        "manifest M: mediaType 'text/plain' is neither an image manifest nor an index media type");
  CHECK(std::string(parse_error(R"({"schemaVersion":2})").what()) ==
        "manifest M: is neither an image manifest nor an index (no mediaType, no \"config\", no \"manifests\")");
}

TEST_CASE("parse_manifest names a bad digest and where it is") {
  SUBCASE("not hex") {
    const std::string message =
        parse_error(manifest_with_layer(R"({"mediaType":"x","digest":"sha256:xyz","size":1})")).what();
    CHECK(message ==
          "manifest M: layers[1].digest 'sha256:xyz' is not a sha256 digest (expected sha256: and 64 lower-case hex "
          "digits)");
  }
  SUBCASE("another algorithm") {
    const std::string message = parse_error(manifest_with_layer(R"({"mediaType":"x","digest":"sha512:)" +
                                                                std::string(128, 'a') + R"(","size":1})"))
                                    .what();
    CHECK(contains(message, "manifest M: layers[1].digest 'sha512:"));
    CHECK(contains(message, "only sha256 is supported"));
  }
  SUBCASE("not a string") {
    const std::string message = parse_error(manifest_with_layer(R"({"mediaType":"x","digest":5,"size":1})")).what();
    CHECK(message == "manifest M: layers[1].digest is an integer, expected a string");
  }
}

TEST_CASE("parse_manifest names a bad size") {
  struct Row {
    std::string size;
    std::string message;
  };
  const std::vector<Row> rows = {
      {"-1", "manifest M: layers[1].size is -1, expected a non-negative integer"},
      {"1.5", "manifest M: layers[1].size is 1.5, expected a non-negative integer that fits in 64 bits"},
      {"18446744073709551616", "manifest M: layers[1].size is 1.8446744073709552e+19, expected a non-negative "
                               "integer that fits in 64 bits"},
      {"\"12\"", "manifest M: layers[1].size is a string (\"12\"), expected a non-negative integer"},
      {"null", "manifest M: layers[1].size is null, expected a non-negative integer"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.size);
    const std::string json =
        manifest_with_layer(R"({"mediaType":"x","digest":")" + digest_text('c') + R"(","size":)" + row.size + "}");
    CHECK(std::string(parse_error(json).what()) == row.message);
  }
}

TEST_CASE("parse_manifest names missing and mistyped fields") {
  struct Row {
    std::string json;
    std::string message;
  };
  const std::string oci = R"("schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json")";
  const std::string config =
      R"("config":{"mediaType":"c","digest":")" + digest_text('a') + R"(","size":1})";
  const std::vector<Row> rows = {
      {"{" + oci + R"(,"layers":[]})", "manifest M: has no \"config\""},
      {"{" + oci + "," + config + "}", "manifest M: has no \"layers\""},
      {"{" + oci + "," + config + R"(,"layers":{}})", "manifest M: layers is an object, expected an array"},
      {"{" + oci + R"(,"config":[],"layers":[]})", "manifest M: config is an array, expected an object"},
      {"{" + oci + R"(,"config":{"digest":")" + digest_text('a') + R"(","size":1},"layers":[]})",
       "manifest M: config has no \"mediaType\""},
      {"{" + oci + R"(,"config":{"mediaType":"c","size":1},"layers":[]})", "manifest M: config has no \"digest\""},
      {"{" + oci + R"(,"config":{"mediaType":"c","digest":")" + digest_text('a') + R"("},"layers":[]})",
       "manifest M: config has no \"size\""},
      {"{" + oci + R"(,"config":{"mediaType":7,"digest":")" + digest_text('a') + R"(","size":1},"layers":[]})",
       "manifest M: config.mediaType is an integer, expected a string"},
      {"{" + oci + "," + config + R"(,"layers":[],"annotations":{"a":1}})",
       "manifest M: annotations.a is an integer, expected a string"},
      {"{" + oci + "," + config + R"(,"layers":[],"annotations":[]})",
       "manifest M: annotations is an array, expected an object"},
      {"{" + oci + "," + config + R"(,"layers":[],"artifactType":true})",
       "manifest M: artifactType is a boolean, expected a string"},
      {"{" + oci + "," + config + R"(,"layers":[],"subject":"x"})", "manifest M: subject is a string, expected an object"},
      {"{" + oci + "," + config + R"(,"layers":[7]})", "manifest M: layers[0] is an integer, expected an object"},
      {R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"m",)"
       R"("digest":")" + digest_text('a') + R"(","size":1,"platform":{"os":"linux"}}]})",
       "manifest M: manifests[0].platform has no \"architecture\""},
      {R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"m",)"
       R"("digest":")" + digest_text('a') + R"(","size":1,"urls":["u",2]}]})",
       "manifest M: manifests[0].urls[1] is an integer, expected a string"},
      {R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"})",
       "manifest M: has no \"manifests\""},
  };
  for (const Row& row : rows) {
    CAPTURE(row.json);
    CHECK(std::string(parse_error(row.json).what()) == row.message);
  }
}

TEST_CASE("parse_manifest reports malformed JSON with the parser's message") {
  SUBCASE("truncated") {
    const std::string message = parse_error(R"({"schemaVersion":2,)").what();
    CHECK(contains(message, "manifest M is not valid JSON: parse error at line 1, column 20: "));
    CHECK_FALSE(contains(message, "[json.exception"));
  }
  SUBCASE("empty") { CHECK(contains(parse_error("").what(), "manifest M is not valid JSON: ")); }
  SUBCASE("trailing garbage") { CHECK(contains(parse_error(k_oci_manifest + "x").what(), "is not valid JSON")); }
  SUBCASE("not an object") {
    CHECK(std::string(parse_error("[1,2]").what()) == "manifest M: is an array, expected a JSON object");
  }
}

TEST_CASE("to_json writes compact JSON with sorted keys") {
  ImageManifest m{
      .media_type = std::string(media_type::oci_manifest),
      .artifact_type = {},
      .config = descriptor(media_type::oci_config, 'a', 2),
      .layers = {descriptor(media_type::oci_layer_gzip, 'b', 32)},
      .subject = std::nullopt,
      .annotations = {{"org.opencontainers.image.created", "1970-01-01T00:00:00Z"}},
  };
  const std::string expected =
      R"({"annotations":{"org.opencontainers.image.created":"1970-01-01T00:00:00Z"},)"
      R"("config":{"digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",)"
      R"("mediaType":"application/vnd.oci.image.config.v1+json","size":2},)"
      R"("layers":[{"digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",)"
      R"("mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":32}],)"
      R"("mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2})";
  CHECK(ferry::oci::to_json(m) == expected);

  SUBCASE("an index with a platform") {
    Descriptor child = descriptor(media_type::oci_manifest, 'c', 500);
    child.platform = Platform::parse("linux/arm64/v8");
    const ImageIndex index{.media_type = std::string(media_type::oci_index),
                           .artifact_type = {},
                           .manifests = {child},
                           .subject = std::nullopt,
                           .annotations = {}};
    CHECK(ferry::oci::to_json(index) ==
          R"({"manifests":[{"digest":"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",)"
          R"("mediaType":"application/vnd.oci.image.manifest.v1+json",)"
          R"("platform":{"architecture":"arm64","os":"linux","variant":"v8"},"size":500}],)"
          R"("mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2})");
  }
  SUBCASE("a descriptor with annotations") {
    Descriptor d = descriptor(media_type::oci_manifest, '7', 7);
    d.annotations = {{"org.opencontainers.image.ref.name", "docker.io/library/nginx:1.27"}};
    CHECK(ferry::oci::to_json(d) ==
          R"({"annotations":{"org.opencontainers.image.ref.name":"docker.io/library/nginx:1.27"},)"
          R"("digest":"sha256:7777777777777777777777777777777777777777777777777777777777777777",)"
          R"("mediaType":"application/vnd.oci.image.manifest.v1+json","size":7})");
  }
}

TEST_CASE("to_json leaves out empty optional fields but always writes layers") {
  const ImageManifest m{.media_type = std::string(media_type::oci_manifest),
                        .artifact_type = {},
                        .config = descriptor(media_type::oci_empty, 'a', 2),
                        .layers = {},
                        .subject = std::nullopt,
                        .annotations = {}};
  const std::string json = ferry::oci::to_json(m);
  CHECK(contains(json, R"("layers":[])"));
  CHECK_FALSE(contains(json, "annotations"));
  CHECK_FALSE(contains(json, "artifactType"));
  CHECK_FALSE(contains(json, "subject"));
  CHECK_FALSE(contains(json, "platform"));
  CHECK_FALSE(contains(json, "urls"));
  CHECK_FALSE(contains(json, " "));
  CHECK(contains(json, R"("schemaVersion":2)"));
}

TEST_CASE("parse_manifest reads back what to_json wrote") {
  Descriptor layer = descriptor(media_type::oci_layer_zstd, 'b', 18446744073709551615ULL);
  layer.annotations = {{"org.opencontainers.image.title", "layer \"one\" ü"}, {"a", ""}};
  layer.urls = {"https://example.com/a", "https://example.com/b"};
  Descriptor subject = descriptor(media_type::oci_manifest, 'c', 0);
  subject.artifact_type = "application/vnd.example+type";

  SUBCASE("a manifest") {
    const ImageManifest m{.media_type = std::string(media_type::oci_manifest),
                          .artifact_type = std::string(media_type::ferry_file_artifact),
                          .config = descriptor(media_type::oci_empty, 'a', 2),
                          .layers = {layer, descriptor(media_type::oci_layer, 'd', 1)},
                          .subject = subject,
                          .annotations = {{"k", "v"}}};
    const std::string json = ferry::oci::to_json(m);
    const ImageManifest back = as_manifest(parse_manifest(json, "", "round trip"));
    CHECK(back.media_type == m.media_type);
    CHECK(back.artifact_type == m.artifact_type);
    check_same(back.config, m.config);
    check_same(back.layers, m.layers);
    check_same(back.subject, m.subject);
    CHECK(back.annotations == m.annotations);
    CHECK(ferry::oci::to_json(back) == json);
  }
  SUBCASE("an index") {
    Descriptor child = descriptor(media_type::docker_manifest, 'e', 42);
    child.platform = Platform::parse("windows/amd64");
    child.platform->os_version = "10.0.20348.2340";
    const ImageIndex index{.media_type = std::string(media_type::docker_manifest_list),
                           .artifact_type = {},
                           .manifests = {child, layer},
                           .subject = subject,
                           .annotations = {}};
    const std::string json = ferry::oci::to_json(index);
    const ImageIndex back = as_index(parse_manifest(json, "", "round trip"));
    CHECK(back.media_type == index.media_type);
    CHECK(back.artifact_type.empty());
    check_same(back.manifests, index.manifests);
    check_same(back.subject, index.subject);
    CHECK(back.annotations.empty());
    CHECK(ferry::oci::to_json(back) == json);
  }
  SUBCASE("a document from elsewhere becomes stable after one pass") {
    const std::string once = ferry::oci::to_json(as_manifest(parse_manifest(k_oci_manifest, "", "m")));
    CHECK(ferry::oci::to_json(as_manifest(parse_manifest(once, "", "m"))) == once);
    CHECK_FALSE(contains(once, "unknownField"));
  }
}

}
