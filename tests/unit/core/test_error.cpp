// Tests for core/error.
// SPDX-License-Identifier: Apache-2.0
#include "core/error.hpp"
#include "support/test_support.hpp"

TEST_SUITE("core") {

TEST_CASE("with_context adds frames innermost first and keeps the error type") {
  try {
    ferry::core::with_context("verifying b.tar.zst", [] {
      ferry::core::with_context("reading entry x", [] { throw ferry::core::IntegrityError("bad", "do y"); });
    });
    FAIL("no exception");
  } catch (const ferry::core::IntegrityError& e) {
    REQUIRE(e.context().size() == 2);
    CHECK(e.context()[0] == "while reading entry x");
    CHECK(e.context()[1] == "while verifying b.tar.zst");
    CHECK(e.hint() == "do y");
    CHECK(e.code() == ferry::core::ExitCode::integrity);
  }
}

TEST_CASE("suggest finds a near match and nothing for a far one") {
  const std::vector<std::string> keys = {"platforms", "images", "charts", "files", "releases"};
  CHECK(ferry::core::suggest("plaforms", keys) == "platforms");
  CHECK(ferry::core::suggest("image", keys) == "images");
  CHECK(ferry::core::suggest("kubernetes", keys).empty());
}

} // TEST_SUITE
