// Regression tests for what fuzzing found in the chart module (fuzz/README.md); the
// fuzzers' reproducers also run as-is in the fuzz-replay suite.
// SPDX-License-Identifier: Apache-2.0
#include "chart/chart_archive.hpp"
#include "core/error.hpp"
#include "support/test_support.hpp"

#include <string>
#include <vector>

using ferry::chart::ArchiveFile;
using ferry::chart::read_chart_metadata;
using ferry::core::UsageError;
using ferry::test::contains;

TEST_SUITE("chart") {

TEST_CASE("read_chart_metadata refuses a requirements.yaml that is not UTF-8, naming it") {
  // The config JSON was serialised outside the check, so nlohmann's type_error escaped
  // (fuzz/regressions/chart_archive/requirements-not-utf8).
  const std::vector<ArchiveFile> files = {
      {.path = "Chart.yaml", .data = "apiVersion: v1\nname: app\nversion: 0.1.0\n", .executable = false},
      {.path = "requirements.yaml",
       .data = "dependencies:\n  - name: demo\n    version: \"*\"\n    repository: http://c\x80harts.example.com\n",
       .executable = false},
  };
  try {
    (void)read_chart_metadata(files, "app.tgz");
    FAIL("no UsageError");
  } catch (const UsageError& e) {
    CHECK(contains(e.what(), "app.tgz: requirements.yaml cannot be converted to JSON"));
    CHECK(contains(e.hint(), "UTF-8"));
  }
}

}
