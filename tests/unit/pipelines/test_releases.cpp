// Tests for releases: values files embedded by pack, read back on the isolated side.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/bundle_manifest.hpp"
#include "core/error.hpp"
#include "releases.hpp"
#include "support/test_support.hpp"

#include <fstream>

namespace fs = std::filesystem;

namespace {

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

const std::string k_manifest = "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: demo, version: \"1\"}\n"
                               "charts:\n  - {name: app, path: ./app}\n"
                               "releases:\n  - name: app\n    namespace: apps\n    chart: app\n"
                               "    values: [values/a.yaml, values/b.yaml]\n    set: {license: \"\", tier: gold}\n"
                               "    imagePullSecrets: [pull]\n    upgradeCRDs: true\n    atomic: true\n"
                               "    timeout: 10m\n    wait: true\n"
                               "    rules:\n      - {path: repositories.*.hostname, set: \"{registry}\"}\n";

} // namespace

TEST_SUITE("pipelines") {

TEST_CASE("pack embeds each release's values files; the isolated side reads them back with the plan") {
  ferry::test::TestDir dir;
  write(dir / "values/a.yaml", "replicas: 2\nimage: {tag: \"1.10\"}\n");
  write(dir / "values/b.yaml", "replicas: 3\n");
  write(dir / "m.yaml", k_manifest);
  const auto manifest = ferry::bundle::load_bundle_manifest(dir / "m.yaml");
  ferry::bundle::BundleDescriptor descriptor;
  descriptor.releases_json = ferry::releases_for_bundle(manifest);
  const auto releases = ferry::bundle_releases(descriptor);
  REQUIRE(releases.size() == 1);
  const auto& r = releases[0];
  CHECK(r.name == "app");
  CHECK(r.namespace_name == "apps");
  CHECK(r.chart == "app");
  REQUIRE(r.values.size() == 2);
  CHECK(r.values[0].file == "values/a.yaml");
  CHECK(r.values[0].content == "replicas: 2\nimage: {tag: \"1.10\"}\n"); // byte for byte
  CHECK(r.values[1].file == "values/b.yaml");
  CHECK(r.set.at("license").empty());
  CHECK(r.set.at("tier") == "gold");
  CHECK(r.image_pull_secrets == std::vector<std::string>{"pull"});
  REQUIRE(r.rules.size() == 1);
  CHECK(r.rules[0].path == "repositories.*.hostname");
  CHECK(r.rules[0].set == "{registry}");
  CHECK(r.upgrade_crds);
  CHECK(r.atomic);
  CHECK(r.wait);
  CHECK(r.timeout == "10m");
  CHECK_FALSE(r.create_namespace);
}

TEST_CASE("pack refuses a values file that is missing or not YAML, naming it") {
  ferry::test::TestDir dir;
  write(dir / "m.yaml", k_manifest);
  write(dir / "values/a.yaml", "replicas: 2\n");
  const auto manifest = ferry::bundle::load_bundle_manifest(dir / "m.yaml");
  try {
    (void)ferry::releases_for_bundle(manifest);
    FAIL("no error for a missing values file");
  } catch (const ferry::core::Error& e) {
    CHECK(std::string(e.what()).find("values/b.yaml") != std::string::npos);
  }
  write(dir / "values/b.yaml", "replicas: 3\n  bad: [\n");
  try {
    (void)ferry::releases_for_bundle(manifest);
    FAIL("no error for bad YAML");
  } catch (const ferry::core::UsageError& e) {
    CHECK(std::string(e.what()).find("b.yaml:") != std::string::npos);
  }
}

TEST_CASE("a bundle whose releases name values files without content is refused on the isolated side") {
  ferry::bundle::BundleDescriptor descriptor;
  descriptor.name = "old";
  descriptor.releases_json = R"([{"name":"app","namespace":"a","chart":"app","values":["values/a.yaml"]}])";
  try {
    (void)ferry::bundle_releases(descriptor);
    FAIL("no error");
  } catch (const ferry::core::UsageError& e) {
    CHECK(std::string(e.what()).find("release 'app'") != std::string::npos);
    CHECK(std::string(e.hint()).find("pack it again") != std::string::npos);
  }
}

} // TEST_SUITE
