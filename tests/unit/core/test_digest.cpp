// Tests for core/digest.
// SPDX-License-Identifier: Apache-2.0
#include "core/digest.hpp"
#include "core/error.hpp"
#include "core/io.hpp"
#include "support/test_support.hpp"

using ferry::core::Digest;

TEST_SUITE("core") {

TEST_CASE("sha256_of matches the FIPS 180-2 test vectors") {
  CHECK(ferry::core::sha256_of("").str() == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(ferry::core::sha256_of("abc").str() == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("Sha256::update in pieces gives the same digest as one call") {
  const std::string data = ferry::test::random_bytes(3 * 1024 * 1024 + 17, 7);
  ferry::core::Sha256 h;
  for (std::size_t i = 0; i < data.size(); i += 65537) h.update(std::string_view(data).substr(i, 65537));
  CHECK(h.finish() == ferry::core::sha256_of(data));
}

TEST_CASE("Digest::try_parse accepts only sha256 with 64 lower-case hex digits") {
  const std::string good = "sha256:" + std::string(64, 'a');
  CHECK(Digest::try_parse(good).has_value());
  CHECK(Digest::try_parse(good)->hex() == std::string(64, 'a'));
  SUBCASE("upper-case hex") { CHECK_FALSE(Digest::try_parse("sha256:" + std::string(64, 'A'))); }
  SUBCASE("too short") { CHECK_FALSE(Digest::try_parse("sha256:" + std::string(63, 'a'))); }
  SUBCASE("too long") { CHECK_FALSE(Digest::try_parse("sha256:" + std::string(65, 'a'))); }
  SUBCASE("other algorithm") { CHECK_FALSE(Digest::try_parse("sha512:" + std::string(64, 'a'))); }
  SUBCASE("non-hex") { CHECK_FALSE(Digest::try_parse("sha256:" + std::string(63, 'a') + "g")); }
}

TEST_CASE("Digest::parse throws IntegrityError naming the text") {
  try {
    Digest::parse("sha256:nothex");
    FAIL("no exception");
  } catch (const ferry::core::IntegrityError& e) {
    CHECK(std::string(e.what()).find("sha256:nothex") != std::string::npos);
    CHECK(e.code() == ferry::core::ExitCode::integrity);
  }
}

TEST_CASE("HashingSource hashes what passes through") {
  const std::string data = ferry::test::random_bytes(100000, 3);
  ferry::core::StringSource in(data);
  ferry::core::HashingSource hashing(in);
  ferry::core::StringSink out;
  CHECK(ferry::core::copy(hashing, out) == data.size());
  CHECK(out.bytes() == data);
  CHECK(hashing.count() == data.size());
  CHECK(hashing.finish() == ferry::core::sha256_of(data));
}

TEST_CASE("ExactSource reports a short stream naming the thing") {
  ferry::core::StringSource in("abc");
  ferry::core::ExactSource exact(in, 5, "blob X");
  ferry::core::StringSink out;
  try {
    ferry::core::copy(exact, out);
    FAIL("no exception");
  } catch (const ferry::core::IntegrityError& e) {
    CHECK(std::string(e.what()) == "blob X ended after 3 of 5 bytes");
  }
}

TEST_CASE("ExactSource stops at its size and leaves the rest unread") {
  ferry::core::StringSource in("abcdef");
  ferry::core::ExactSource exact(in, 4, "x");
  ferry::core::StringSink out;
  CHECK(ferry::core::copy(exact, out) == 4);
  CHECK(out.bytes() == "abcd");
  char rest[8];
  CHECK(in.read(rest, sizeof rest) == 2);
}

TEST_CASE("read_all refuses input over its limit") {
  const std::string bytes(100, 'x'); // StringSource does not own what it reads
  ferry::core::StringSource in(bytes);
  CHECK_THROWS_AS(ferry::core::read_all(in, 99, "thing"), ferry::core::IntegrityError);
}

} // TEST_SUITE

TEST_SUITE("core") {
TEST_CASE("Digest default-constructs to the digest of empty content") {
  CHECK(Digest() == ferry::core::sha256_of(""));
}
}
