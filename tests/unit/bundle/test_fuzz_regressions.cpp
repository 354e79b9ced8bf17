// Regression tests for what fuzzing found in the bundle module (fuzz/README.md); the
// fuzzers' reproducers also run as-is in the fuzz-replay suite.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/bundle_manifest.hpp"
#include "core/error.hpp"
#include "support/test_support.hpp"

#include <string>

using ferry::bundle::parse_bundle_manifest;
using ferry::core::UsageError;
using ferry::test::contains;

TEST_SUITE("bundle") {

TEST_CASE("parse_bundle_manifest refuses a stray ',' at the top level instead of looping") {
  // yaml-cpp's LoadAll never returned on these: each pass yielded an empty document and
  // left the ',' for the next (fuzz/regressions/manifest_yaml/stray-comma-loadall-loop).
  for (const std::string& text : {std::string(","), std::string("apiVersion: ferry/v1\n---\n,\n")}) {
    CAPTURE(text);
    try {
      parse_bundle_manifest(text, "m.yaml");
      FAIL("no UsageError");
    } catch (const UsageError& e) {
      CHECK(contains(e.what(), "m.yaml:"));
      CHECK(contains(e.what(), "YAML syntax error"));
    }
  }
}

}
