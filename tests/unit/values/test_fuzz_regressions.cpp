// Regression tests for what fuzzing found in the values module (fuzz/README.md); the
// fuzzers' reproducers also run as-is in the fuzz-replay suite.
// SPDX-License-Identifier: Apache-2.0
#include "core/error.hpp"
#include "support/test_support.hpp"
#include "values/discover.hpp"
#include "values/rewrite.hpp"

#include <yaml-cpp/yaml.h>

#include <string>

using ferry::core::UsageError;
using ferry::test::contains;

TEST_SUITE("values") {

TEST_CASE("parse_rendered_images refuses a stray ',' between documents instead of looping") {
  // yaml-cpp's LoadAll never returned on this: each pass yielded an empty document and
  // left the ',' for the next.
  const std::string render = "kind: Pod\nspec: {containers: [{name: a, image: nginx}]}\n---\n,\n";
  try {
    (void)ferry::values::parse_rendered_images(render, "render of app");
    FAIL("no UsageError");
  } catch (const UsageError& e) {
    CHECK(contains(e.what(), "render of app:4"));
    CHECK(contains(e.what(), "not YAML"));
  }
}

TEST_CASE("rewrite writes a key that is long once escaped so that the overlay reads back") {
  // 300 control characters are written as 1200 characters of escapes: more than the 1024
  // YAML allows in an implicit key, so yaml-cpp refused the overlay it had just written
  // (fuzz/regressions/values_rewriter/overlay-key-too-long-once-escaped).
  std::string escaped;
  for (int i = 0; i < 300; ++i) escaped += "\\x0e";
  // An explicit key ("? KEY") has no length limit.
  const std::string values = "? \"init" + escaped + "Image\"\n: nginx:1.25\n";
  const std::string key = "init" + std::string(300, '\x0e') + "Image";
  ferry::values::Options options;
  options.target = {.host = "registry.internal:5000", .prefix = ""};
  const ferry::values::Result result = ferry::values::rewrite(values, options, "values.yaml");
  REQUIRE(result.changes.size() == 1);
  CHECK(result.changes[0].path == key);
  const YAML::Node overlay = YAML::Load(result.overlay_yaml);
  REQUIRE(overlay.IsMap());
  CHECK(overlay[key].as<std::string>() == "registry.internal:5000/library/nginx:1.25");
}

}
