// Tests for core/encoding.
// SPDX-License-Identifier: Apache-2.0
#include "core/encoding.hpp"
#include "support/test_support.hpp"

using ferry::core::base64_decode;
using ferry::core::base64_encode;

TEST_SUITE("core") {

TEST_CASE("base64_encode follows RFC 4648 test vectors") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  CHECK(base64_encode("fooba") == "Zm9vYmE=");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
}

TEST_CASE("base64_decode round-trips binary data") {
  for (std::size_t n : {0u, 1u, 2u, 3u, 64u, 1000u}) {
    const std::string data = ferry::test::random_bytes(n, static_cast<unsigned>(n));
    CHECK(base64_decode(base64_encode(data)) == data);
  }
}

TEST_CASE("base64_decode accepts one trailing newline") { CHECK(base64_decode("Zm9v\n") == "foo"); }

TEST_CASE("base64_decode rejects malformed text") {
  CHECK_FALSE(base64_decode("Zm9"));
  CHECK_FALSE(base64_decode("Zm9v!"));
  CHECK_FALSE(base64_decode("Z==="));
  CHECK_FALSE(base64_decode("Zg==Zm9v"));
  CHECK_FALSE(base64_decode("Zm 9v"));
  CHECK_FALSE(base64_decode("Zm9v\n\n"));
}

} // TEST_SUITE
