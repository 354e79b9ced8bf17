// Tests for registry/http: the status table and the header and body parsers.
// SPDX-License-Identifier: Apache-2.0
#include "core/error.hpp"
#include "oci/media_types.hpp"
#include "registry/http.hpp"
#include "support/test_support.hpp"

using ferry::registry::Outcome;

TEST_SUITE("registry") {

TEST_CASE("classify_status sorts statuses into outcomes") {
  const std::vector<std::pair<long, Outcome>> table = {
      {200, Outcome::success},       {201, Outcome::success},      {202, Outcome::success},
      {204, Outcome::success},       {206, Outcome::success},      {301, Outcome::redirect},
      {302, Outcome::redirect},      {303, Outcome::redirect},     {307, Outcome::redirect},
      {308, Outcome::redirect},      {400, Outcome::failed},       {401, Outcome::unauthorized},
      {403, Outcome::forbidden},     {404, Outcome::not_found},    {405, Outcome::failed},
      {408, Outcome::transient},     {413, Outcome::too_large},    {416, Outcome::failed},
      {429, Outcome::transient},     {500, Outcome::transient},    {501, Outcome::failed},
      {502, Outcome::transient},     {503, Outcome::transient},    {504, Outcome::transient},
  };
  for (const auto& [status, outcome] : table) {
    CAPTURE(status);
    CHECK(ferry::registry::classify_status(status) == outcome);
  }
}

TEST_CASE("parse_retry_after reads seconds and HTTP dates, capped") {
  using std::chrono::seconds;
  using ferry::registry::parse_retry_after;
  const std::time_t now = 1445412480; // Wed, 21 Oct 2015 07:28:00 GMT
  CHECK(parse_retry_after("5", now, seconds(60)) == seconds(5));
  CHECK(parse_retry_after(" 120 ", now, seconds(60)) == seconds(60));
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now, seconds(60)) == seconds(30));
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now, seconds(60)) == seconds(0)); // past
  CHECK(parse_retry_after("Wed, 21 Oct 2015 09:28:00 GMT", now, seconds(60)) == seconds(60));
  CHECK_FALSE(parse_retry_after("soon", now, seconds(60)));
  CHECK_FALSE(parse_retry_after("", now, seconds(60)));
  CHECK_FALSE(parse_retry_after("-3", now, seconds(60)));
}

TEST_CASE("parse_link_next finds the rel=\"next\" target") {
  using ferry::registry::parse_link_next;
  CHECK(parse_link_next(R"(</v2/app/tags/list?n=2&last=b>; rel="next")") == "/v2/app/tags/list?n=2&last=b");
  CHECK(parse_link_next("<https://reg/v2/x?last=c>;rel=next") == "https://reg/v2/x?last=c");
  CHECK(parse_link_next(R"(</first>; rel="prev", </second>; title="a, b"; rel="last next")") == "/second");
  CHECK_FALSE(parse_link_next(R"(</prev>; rel="prev")"));
  CHECK_FALSE(parse_link_next("garbage"));
  CHECK_FALSE(parse_link_next(""));
}

TEST_CASE("parse_upload_range gives the bytes an upload holds") {
  using ferry::registry::parse_upload_range;
  CHECK(parse_upload_range("0-4") == 5u);
  CHECK(parse_upload_range("0-0") == 0u); // distribution's ambiguous "nothing yet"
  CHECK(parse_upload_range("bytes=0-1048575") == 1048576u);
  CHECK_FALSE(parse_upload_range("5-9"));
  CHECK_FALSE(parse_upload_range("0-"));
  CHECK_FALSE(parse_upload_range("junk"));
}

TEST_CASE("parse_content_range_start reads the first byte") {
  using ferry::registry::parse_content_range_start;
  CHECK(parse_content_range_start("bytes 100-199/200") == 100u);
  CHECK(parse_content_range_start("bytes 0-0/*") == 0u);
  CHECK_FALSE(parse_content_range_start("100-199/200"));
  CHECK_FALSE(parse_content_range_start("bytes x-1/2"));
}

TEST_CASE("registry_error_text joins the registry's errors") {
  using ferry::registry::registry_error_text;
  CHECK(registry_error_text(R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v9"}}]})") ==
        R"(MANIFEST_UNKNOWN: manifest unknown (detail {"Tag":"v9"}))");
  CHECK(registry_error_text(R"({"errors":[{"code":"DENIED","message":"no"},{"code":"UNAUTHORIZED"}]})") ==
        "DENIED: no; UNAUTHORIZED");
  CHECK(registry_error_text("<html>bad gateway</html>").empty());
  CHECK(registry_error_text(R"({"errors":"x"})").empty());
}

TEST_CASE("manifest_media_type prefers the Content-Type without parameters") {
  using ferry::registry::manifest_media_type;
  const std::string oci = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}})";
  CHECK(manifest_media_type("application/vnd.docker.distribution.manifest.v2+json; charset=utf-8", oci, "m") ==
        ferry::oci::media_type::docker_manifest);
  SUBCASE("a generic Content-Type gives way to the document's mediaType") {
    CHECK(manifest_media_type("application/json", oci, "m") == ferry::oci::media_type::oci_manifest);
    CHECK(manifest_media_type("", oci, "m") == ferry::oci::media_type::oci_manifest);
  }
  SUBCASE("without mediaType the shape decides") {
    CHECK(manifest_media_type("", R"({"schemaVersion":2,"manifests":[]})", "m") == ferry::oci::media_type::oci_index);
    CHECK(manifest_media_type("text/plain", R"({"schemaVersion":2,"config":{},"layers":[]})", "m") ==
          ferry::oci::media_type::oci_manifest);
  }
  SUBCASE("nothing to go by") {
    CHECK_THROWS_AS(manifest_media_type("application/json", "[]", "m"), ferry::core::RegistryError);
  }
}

TEST_CASE("manifest_media_type refuses Docker schema 1 with a hint to convert") {
  using ferry::registry::manifest_media_type;
  std::string content_type;
  std::string body = R"({"schemaVersion":2,"config":{}})";
  SUBCASE("signed, by Content-Type") { content_type = "application/vnd.docker.distribution.manifest.v1+prettyjws"; }
  SUBCASE("unsigned, by Content-Type") { content_type = "application/vnd.docker.distribution.manifest.v1+json"; }
  SUBCASE("by schemaVersion under a generic type") {
    content_type = "application/json";
    body = R"({"schemaVersion":1,"name":"app","tag":"1","fsLayers":[]})";
  }
  try {
    manifest_media_type(content_type, body, "manifest app:1 from https://reg");
    FAIL("no exception");
  } catch (const ferry::core::RegistryError& e) {
    CHECK(ferry::test::contains(e.what(), "manifest app:1 from https://reg is a Docker schema 1 manifest"));
    CHECK(ferry::test::contains(e.hint(), "skopeo copy --format v2s2"));
  }
}

TEST_CASE("percent_encode keeps only unreserved characters") {
  CHECK(ferry::registry::percent_encode("repository:a/b:pull,push") == "repository%3Aa%2Fb%3Apull%2Cpush");
  CHECK(ferry::registry::percent_encode("A-z_0.9~") == "A-z_0.9~");
  CHECK(ferry::registry::percent_encode("a b+c") == "a%20b%2Bc");
}

TEST_CASE("append_query adds a parameter with ? or &") {
  using ferry::registry::append_query;
  CHECK(append_query("http://r/v2/a/blobs/uploads/u", "digest=d") == "http://r/v2/a/blobs/uploads/u?digest=d");
  CHECK(append_query("http://r/u?_state=x", "digest=d") == "http://r/u?_state=x&digest=d");
  CHECK(append_query("/u?", "digest=d") == "/u?digest=d");
  CHECK(append_query("/u?a=1&", "digest=d") == "/u?a=1&digest=d");
}

} // TEST_SUITE
