// The read-only distribution API of `ferry serve`, request by request (no sockets).
// SPDX-License-Identifier: Apache-2.0
#include "serve/distribution.hpp"

#include "core/error.hpp"
#include "support/test_support.hpp"

#include <nlohmann/json.hpp>

#include <vector>

using namespace ferry;
using ferry::test::contains;
using ferry::test::noise;
using nlohmann::json;

namespace {

struct Opened {
  core::Digest digest;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

// Two repositories; one layer blob whose bytes the opener serves (or a changed copy).
struct Fixture {
  std::string layer = noise(100000, 7);
  core::Digest layer_digest = core::sha256_of(layer);
  std::string manifest = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"})";
  core::Digest manifest_digest = core::sha256_of(manifest);
  std::string served_layer = layer; // what the opener reads (tests change it)
  std::vector<Opened> opened;

  serve::Distribution api() {
    serve::Catalog c;
    c.repositories["team/app"] = {{"1.0", manifest_digest}, {"latest", manifest_digest}, {"2.0", manifest_digest}};
    c.repositories["charts/demo"] = {{"0.3.1", manifest_digest}};
    c.repositories["digest/only"] = {};
    c.blobs[layer_digest] = {layer.size(), "application/vnd.oci.image.layer.v1.tar"};
    c.blobs[manifest_digest] = {manifest.size(), "application/vnd.oci.image.manifest.v1+json"};
    c.manifests[manifest_digest] = manifest;
    return serve::Distribution(std::move(c), [this](const core::Digest& d, std::uint64_t offset, std::uint64_t length) {
      opened.push_back({d, offset, length});
      struct Slice final : core::Source {
        std::string bytes;
        std::size_t at = 0;
        std::size_t read(char* data, std::size_t size) override {
          const std::size_t n = std::min(size, bytes.size() - at);
          std::copy_n(bytes.data() + at, n, data);
          at += n;
          return n;
        }
      };
      auto s = std::make_unique<Slice>();
      s->bytes = served_layer.substr(offset, length);
      return s;
    });
  }
};

serve::Request get(const std::string& target, std::vector<std::pair<std::string, std::string>> headers = {},
                   const std::string& method = "GET") {
  serve::Request r;
  r.method = method;
  r.version = "HTTP/1.1";
  const auto q = target.find('?');
  r.path = target.substr(0, q);
  if (q != std::string::npos) r.query = target.substr(q + 1);
  r.headers = std::move(headers);
  return r;
}

std::string header(const serve::Response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

std::string body(serve::Response& r) {
  if (!r.stream) return r.body;
  std::string out(r.length, '\0');
  std::size_t got = 0;
  while (got < out.size()) {
    const std::size_t n = r.stream->read(out.data() + got, out.size() - got);
    if (n == 0) break;
    got += n;
  }
  out.resize(got);
  return out;
}

std::string error_code(const serve::Response& r) { return json::parse(r.body)["errors"][0]["code"].get<std::string>(); }

} // namespace

TEST_SUITE("serve") {

TEST_CASE("/v2/ answers 200 with the API version header") {
  Fixture f;
  const auto api = f.api();
  for (const char* path : {"/v2/", "/v2"}) {
    const serve::Response r = api.handle(get(path));
    CHECK(r.status == 200);
    CHECK(header(r, "Docker-Distribution-API-Version") == "registry/2.0");
  }
}

TEST_CASE("manifests by tag and by digest carry their media type and digest") {
  Fixture f;
  const auto api = f.api();
  serve::Response by_tag = api.handle(get("/v2/team/app/manifests/1.0"));
  CHECK(by_tag.status == 200);
  CHECK(body(by_tag) == f.manifest);
  CHECK(header(by_tag, "Content-Type") == "application/vnd.oci.image.manifest.v1+json");
  CHECK(header(by_tag, "Docker-Content-Digest") == f.manifest_digest.str());

  serve::Response by_digest = api.handle(get("/v2/charts/demo/manifests/" + f.manifest_digest.str()));
  CHECK(by_digest.status == 200);
  CHECK(body(by_digest) == f.manifest);

  // A repository without tags still serves its manifests by digest.
  CHECK(api.handle(get("/v2/digest/only/manifests/" + f.manifest_digest.str())).status == 200);
}

TEST_CASE("unknown repositories, tags and digests are 404 with the spec's codes") {
  Fixture f;
  const auto api = f.api();
  serve::Response r = api.handle(get("/v2/team/nope/manifests/1.0"));
  CHECK(r.status == 404);
  CHECK(error_code(r) == "NAME_UNKNOWN");
  r = api.handle(get("/v2/team/app/manifests/9.9"));
  CHECK(r.status == 404);
  CHECK(error_code(r) == "MANIFEST_UNKNOWN");
  r = api.handle(get("/v2/team/app/manifests/" + f.layer_digest.str())); // a blob, not a manifest
  CHECK(r.status == 404);
  CHECK(error_code(r) == "MANIFEST_UNKNOWN");
  r = api.handle(get("/v2/team/app/blobs/" + core::sha256_of("other").str()));
  CHECK(r.status == 404);
  CHECK(error_code(r) == "BLOB_UNKNOWN");
  r = api.handle(get("/v2/team/app/blobs/md5:abc"));
  CHECK(r.status == 400);
  CHECK(error_code(r) == "DIGEST_INVALID");
  r = api.handle(get("/v3/whatever"));
  CHECK(r.status == 404);
  r = api.handle(get("/v2/team/app/manifests/"));
  CHECK(r.status == 404);
  CHECK(f.opened.empty());
}

TEST_CASE("a whole blob streams from the opener and is checked against its digest") {
  Fixture f;
  const auto api = f.api();
  serve::Response r = api.handle(get("/v2/team/app/blobs/" + f.layer_digest.str()));
  CHECK(r.status == 200);
  CHECK(r.length == f.layer.size());
  CHECK(header(r, "Accept-Ranges") == "bytes");
  CHECK(header(r, "Docker-Content-Digest") == f.layer_digest.str());
  CHECK(body(r) == f.layer);
  REQUIRE(f.opened.size() == 1);
  CHECK(f.opened[0].offset == 0);
  CHECK(f.opened[0].length == f.layer.size());

  SUBCASE("bytes that changed since verification fail before the last of them") {
    f.served_layer[f.layer.size() - 1] ^= 1;
    serve::Response changed = api.handle(get("/v2/team/app/blobs/" + f.layer_digest.str()));
    std::string buffer(f.layer.size(), '\0');
    std::size_t got = 0;
    bool threw = false;
    try {
      for (;;) {
        const std::size_t n = changed.stream->read(buffer.data() + got, buffer.size() - got);
        if (n == 0) break;
        got += n;
      }
    } catch (const core::IntegrityError& e) {
      threw = true;
      CHECK(contains(e.what(), "changed since it was verified"));
    }
    CHECK(threw);
    CHECK(got < f.layer.size());
  }
}

TEST_CASE("Range requests get 206 and exactly the bytes asked for") {
  Fixture f;
  const auto api = f.api();
  const std::string url = "/v2/team/app/blobs/" + f.layer_digest.str();
  const std::string size = std::to_string(f.layer.size());

  serve::Response r = api.handle(get(url, {{"range", "bytes=2-5"}}));
  CHECK(r.status == 206);
  CHECK(header(r, "Content-Range") == "bytes 2-5/" + size);
  CHECK(body(r) == f.layer.substr(2, 4));

  r = api.handle(get(url, {{"range", "bytes=99990-"}}));
  CHECK(r.status == 206);
  CHECK(body(r) == f.layer.substr(99990));

  r = api.handle(get(url, {{"range", "bytes=-3"}}));
  CHECK(r.status == 206);
  CHECK(header(r, "Content-Range") == "bytes 99997-99999/" + size);
  CHECK(body(r) == f.layer.substr(99997));

  r = api.handle(get(url, {{"range", "bytes=99990-200000"}})); // clipped to the end
  CHECK(header(r, "Content-Range") == "bytes 99990-99999/" + size);

  r = api.handle(get(url, {{"range", "bytes=100000-"}}));
  CHECK(r.status == 416);
  CHECK(header(r, "Content-Range") == "bytes */" + size);

  // Several ranges, another unit or nonsense: the whole blob, as RFC 9110 allows.
  for (const char* value : {"bytes=0-1,5-6", "items=0-1", "bytes=5-2", "bytes=x-"}) {
    r = api.handle(get(url, {{"range", value}}));
    CHECK_MESSAGE(r.status == 200, value);
  }

  SUBCASE("a manifest's bytes by range come from memory") {
    const std::size_t before = f.opened.size();
    serve::Response m = api.handle(get("/v2/team/app/blobs/" + f.manifest_digest.str(), {{"range", "bytes=0-9"}}));
    CHECK(m.status == 206);
    CHECK(body(m) == f.manifest.substr(0, 10));
    CHECK(f.opened.size() == before);
  }
}

TEST_CASE("HEAD of a blob gives its length without opening it") {
  Fixture f;
  const auto api = f.api();
  const serve::Response r = api.handle(get("/v2/team/app/blobs/" + f.layer_digest.str(), {}, "HEAD"));
  CHECK(r.status == 200);
  CHECK(r.length == f.layer.size());
  CHECK(f.opened.empty());
}

TEST_CASE("tag lists and the catalog are sorted and paginated with Link headers") {
  Fixture f;
  const auto api = f.api();
  serve::Response r = api.handle(get("/v2/team/app/tags/list"));
  CHECK(json::parse(r.body) == json{{"name", "team/app"}, {"tags", {"1.0", "2.0", "latest"}}});
  CHECK(header(r, "Link").empty());

  r = api.handle(get("/v2/team/app/tags/list?n=2"));
  CHECK(json::parse(r.body)["tags"] == json{"1.0", "2.0"});
  CHECK(header(r, "Link") == "</v2/team/app/tags/list?n=2&last=2.0>; rel=\"next\"");
  r = api.handle(get("/v2/team/app/tags/list?n=2&last=2.0"));
  CHECK(json::parse(r.body)["tags"] == json{"latest"});
  CHECK(header(r, "Link").empty());

  r = api.handle(get("/v2/_catalog"));
  CHECK(json::parse(r.body)["repositories"] == json{"charts/demo", "digest/only", "team/app"});
  r = api.handle(get("/v2/_catalog?n=1&last=charts%2Fdemo"));
  CHECK(json::parse(r.body)["repositories"] == json{"digest/only"});
  CHECK(contains(header(r, "Link"), "last=digest/only"));

  r = api.handle(get("/v2/_catalog?n=abc"));
  CHECK(r.status == 400);
  CHECK(error_code(r) == "PAGINATION_NUMBER_INVALID");
  r = api.handle(get("/v2/_catalog?n=1000000"));
  CHECK(r.status == 400);
}

TEST_CASE("writes are refused: the registry is read-only") {
  Fixture f;
  const auto api = f.api();
  for (const char* method : {"POST", "PUT", "PATCH", "DELETE"}) {
    const serve::Response r = api.handle(get("/v2/team/app/blobs/uploads/", {}, method));
    CHECK(r.status == 405);
    CHECK(error_code(r) == "UNSUPPORTED");
    CHECK(header(r, "Allow") == "GET, HEAD");
  }
}

TEST_CASE("parse_range") {
  using K = serve::RangeRequest::Kind;
  const std::string h = "bytes=0-0";
  CHECK(serve::parse_range(nullptr, 10).kind == K::whole);
  CHECK(serve::parse_range(&h, 10).kind == K::part);
  CHECK(serve::parse_range(&h, 10).length == 1);
  CHECK(serve::parse_range(&h, 0).kind == K::unsatisfiable);
  const std::string suffix_zero = "bytes=-0";
  CHECK(serve::parse_range(&suffix_zero, 10).kind == K::unsatisfiable);
  const std::string huge = "bytes=99999999999999999999-";
  CHECK(serve::parse_range(&huge, 10).kind == K::whole);
}

} // TEST_SUITE
