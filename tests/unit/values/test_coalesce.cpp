// Tests for values/coalesce: Helm's coalescing, a chart's effective values with
// subcharts (directories, nested archives, aliases, globals), and rewrite_chart() on a
// bitnami-style chart.
// SPDX-License-Identifier: Apache-2.0
#include "values/rewrite.hpp"

#include "chart/chart_archive.hpp"
#include "core/digest.hpp"
#include "core/error.hpp"
#include "support/test_support.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string>
#include <vector>

using ferry::chart::ArchiveFile;
using ferry::core::UsageError;
using ferry::test::contains;
using ferry::test::TestDir;
using ferry::test::write_file;
namespace values = ferry::values;

namespace {

std::string tgz(const std::string& name, std::vector<ArchiveFile> files) {
  return ferry::chart::write_chart_archive(name, std::move(files), 0, name + ".tgz");
}

ArchiveFile file(std::string path, std::string data) { return {std::move(path), std::move(data), false}; }

const std::string k_postgresql_chart = "apiVersion: v2\nname: postgresql\nversion: 12.1.0\n";
const std::string k_postgresql_values = "global:\n  imageRegistry: \"\"\n  postgresql:\n    auth: {}\n"
                                        "image:\n  registry: docker.io\n  repository: bitnami/postgresql\n"
                                        "  tag: 15.4.0-debian-11-r10\n  digest: \"\"\n"
                                        "auth:\n  database: postgres\n  username: postgres\n";

// A bitnami-style chart: global.imageRegistry, an image map with a digest key, and
// postgresql as a nested archive (as `helm dependency build` leaves it).
std::vector<ArchiveFile> bitnami_files() {
  return {
      file("Chart.yaml", "apiVersion: v2\nname: webapp\nversion: 1.0.0\n"
                         "dependencies:\n  - name: postgresql\n    version: 12.x.x\n    repository: oci://registry-1.docker.io/bitnamicharts\n"),
      file("values.yaml", "global:\n  imageRegistry: \"\"\n  storageClass: fast\n"
                          "image:\n  registry: docker.io\n  repository: bitnami/nginx\n  tag: 1.25.3\n  digest: \"\"\n"
                          "postgresql:\n  auth:\n    database: app\n"),
      file("charts/postgresql-12.1.0.tgz",
           tgz("postgresql", {file("Chart.yaml", k_postgresql_chart), file("values.yaml", k_postgresql_values)})),
      file("templates/deployment.yaml", "kind: Deployment\n"),
  };
}

YAML::Node load(const std::string& yaml) { return YAML::Load(yaml); }

} // namespace

TEST_SUITE("values") {

TEST_CASE("coalesce merges maps key by key and lets later documents win") {
  const std::string out = values::coalesce("image:\n  repository: nginx\n  tag: \"1.0\"\nreplicas: 1\nports: [80, 443]\n",
                                           {"image:\n  tag: \"1.1\"\nports: [8080]\n", "image:\n  tag: \"1.2\"\n"},
                                           {"a.yaml", "b.yaml"});
  const YAML::Node v = load(out);
  CHECK(v["image"]["repository"].as<std::string>() == "nginx");
  CHECK(v["image"]["tag"].as<std::string>() == "1.2");
  CHECK(v["replicas"].as<int>() == 1);
  REQUIRE(v["ports"].size() == 1); // lists are replaced, not merged
  CHECK(v["ports"][0].as<int>() == 8080);
  SUBCASE("keys keep the base's order, then the new ones") {
    CHECK(out.find("image:") < out.find("replicas:"));
    CHECK(out.find("replicas:") < out.find("ports:"));
  }
}

TEST_CASE("coalesce deletes a key given as null") {
  const YAML::Node v = load(values::coalesce("a:\n  b: 1\n  c: 2\nd: 3\n", {"a:\n  b: null\nd: ~\n"}, {"site.yaml"}));
  CHECK_FALSE(v["a"]["b"]);
  CHECK(v["a"]["c"].as<int>() == 2);
  CHECK_FALSE(v["d"]);
  SUBCASE("as Helm does, files are merged first: a later map brings a key back") {
    const YAML::Node w =
        load(values::coalesce("a:\n  b: 1\n  c: 2\n", {"a: null\n", "a:\n  b: 5\n"}, {"one.yaml", "two.yaml"}));
    CHECK(w["a"]["b"].as<int>() == 5);
    CHECK(w["a"]["c"].as<int>() == 2);
  }
}

TEST_CASE("coalesce keeps the YAML type of every scalar it writes back") {
  const std::string out = values::coalesce("quoted: \"1.10\"\nplain: 1.10\nword: \"yes\"\nflag: yes\n"
                                           "text: |\n  line one\n  line two\nname: \"h\u00e9llo\"\nempty: \"\"\n"
                                           "nothing: ~\nport: 8080\nhost: \"10.0.0.1:5000\"\n",
                                           {}, {});
  const YAML::Node v = load(out);
  CHECK(v["quoted"].Tag() == "!"); // still quoted: Helm reads a string
  CHECK(v["quoted"].Scalar() == "1.10");
  CHECK(v["plain"].Tag() == "?"); // still plain: Helm reads a number
  CHECK(v["word"].Tag() == "!");
  CHECK(v["flag"].Tag() == "?");
  CHECK(v["flag"].as<bool>());
  CHECK(v["text"].as<std::string>() == "line one\nline two\n");
  CHECK(v["name"].as<std::string>() == "h\u00e9llo");
  CHECK(v["empty"].IsScalar());
  CHECK(v["empty"].Scalar().empty());
  CHECK(v["nothing"].IsNull());
  CHECK(v["port"].as<int>() == 8080);
  CHECK(v["host"].Tag() == "!");
}

TEST_CASE("coalesce refuses a document that expands without bound (recursive aliases)") {
  std::string yaml = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 7; ++i) {
    yaml += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) yaml += std::string(k ? ", " : "") + "*l" + std::to_string(i - 1);
    yaml += "]\n";
  }
  CHECK_THROWS_WITH_AS(values::coalesce(yaml, {}, {}), doctest::Contains("too large"), UsageError);
}

TEST_CASE("coalesce names the document and line that does not parse") {
  CHECK_THROWS_WITH_AS(values::coalesce("a: 1\n", {"a: 1\n", "x: 1\ny: [\n"}, {"ok.yaml", "site.yaml"}),
                       doctest::Contains("site.yaml:"), UsageError);
  CHECK_THROWS_WITH_AS(values::coalesce("a: 1\n", {"- 1\n"}, {"list.yaml"}),
                       doctest::Contains("list.yaml is not a YAML map"), UsageError);
}

TEST_CASE("chart_values puts a subchart's values under its name, the parent's winning") {
  const YAML::Node v = load(values::chart_values(tgz("webapp", bitnami_files()), "webapp-1.0.0.tgz"));
  CHECK(v["image"]["repository"].as<std::string>() == "bitnami/nginx");
  CHECK(v["postgresql"]["image"]["repository"].as<std::string>() == "bitnami/postgresql");
  CHECK(v["postgresql"]["auth"]["database"].as<std::string>() == "app");      // the parent's
  CHECK(v["postgresql"]["auth"]["username"].as<std::string>() == "postgres"); // the subchart's
  SUBCASE("the parent's globals are merged into the subchart's") {
    CHECK(v["postgresql"]["global"]["storageClass"].as<std::string>() == "fast");
    CHECK(v["postgresql"]["global"]["imageRegistry"].as<std::string>().empty());
    CHECK(v["postgresql"]["global"]["postgresql"]["auth"].IsMap()); // the subchart's own global stays
  }
}

TEST_CASE("chart_values reads subchart directories and aliases from Chart.yaml") {
  const std::vector<ArchiveFile> files = {
      file("Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n"
                         "  - name: redis\n    version: 1.0.0\n    alias: cache\n"
                         "  - name: redis\n    version: 1.0.0\n    alias: queue\n"),
      file("values.yaml", "global:\n  imageRegistry: corp.example\nqueue:\n  image:\n    tag: \"7.2-queue\"\n"),
      file("charts/redis/Chart.yaml", "apiVersion: v2\nname: redis\nversion: 1.0.0\n"),
      file("charts/redis/values.yaml", "image:\n  repository: bitnami/redis\n  tag: \"7.2\"\n"),
      file("charts/redis/charts/exporter/Chart.yaml", "apiVersion: v2\nname: exporter\nversion: 0.2.0\n"),
      file("charts/redis/charts/exporter/values.yaml", "image: quay.io/oliver006/redis_exporter:v1.55.0\n"),
  };
  const YAML::Node v = load(values::chart_values(tgz("app", files), "app.tgz"));
  CHECK(v["cache"]["image"]["tag"].as<std::string>() == "7.2");
  CHECK(v["queue"]["image"]["tag"].as<std::string>() == "7.2-queue");
  CHECK_FALSE(v["redis"]); // only under its aliases
  CHECK(v["cache"]["exporter"]["image"].as<std::string>() == "quay.io/oliver006/redis_exporter:v1.55.0");
  CHECK(v["queue"]["exporter"]["global"]["imageRegistry"].as<std::string>() == "corp.example"); // two levels down
}

TEST_CASE("chart_values takes aliases from requirements.yaml, which replaces Chart.yaml's dependencies as in Helm") {
  const std::vector<ArchiveFile> files = {
      file("Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n"
                         "  - name: redis\n    version: 1.0.0\n    alias: ignored\n"),
      file("requirements.yaml", "dependencies:\n  - name: redis\n    version: 1.0.0\n    alias: cache\n"),
      file("charts/redis/Chart.yaml", "apiVersion: v2\nname: redis\nversion: 1.0.0\n"),
      file("charts/redis/values.yaml", "image:\n  repository: bitnami/redis\n"),
  };
  const YAML::Node v = load(values::chart_values(tgz("app", files), "app.tgz"));
  CHECK(v["cache"]["image"]["repository"].as<std::string>() == "bitnami/redis");
  CHECK_FALSE(v["ignored"]);
  CHECK_FALSE(v["redis"]);
}

TEST_CASE("chart_values names the file of a subchart whose values do not parse") {
  const std::vector<ArchiveFile> files = {
      file("Chart.yaml", "apiVersion: v2\nname: app\nversion: 0.1.0\n"),
      file("charts/broken/Chart.yaml", "apiVersion: v2\nname: broken\nversion: 1.0.0\n"),
      file("charts/broken/values.yaml", "a: 1\nb: : 2\n"),
  };
  CHECK_THROWS_WITH_AS(values::chart_values(tgz("app", files), "app.tgz"),
                       doctest::Contains("app.tgz: charts/broken: values.yaml:2:"), UsageError);
}

TEST_CASE("rewrite of a bitnami-style chart's values sets global.imageRegistry and every image map") {
  const std::string chart = tgz("webapp", bitnami_files());
  const std::string merged = values::chart_values(chart, "webapp.tgz");
  const std::string nginx_digest = ferry::core::sha256_of("nginx").str();
  values::Options options;
  options.target = {"10.0.0.5:5000", ""};
  options.images = {{"docker.io/bitnami/nginx:1.25.3", nginx_digest},
                    {"docker.io/bitnami/postgresql:15.4.0-debian-11-r10", ferry::core::sha256_of("pg").str()},
                    {"docker.io/bitnami/os-shell:12", ferry::core::sha256_of("shell").str()}};
  options.images_given = true;
  options.pin_digests = true;
  const values::Result r = values::rewrite(merged, options, "webapp.tgz");
  std::vector<std::string> paths;
  for (const auto& c : r.changes) paths.push_back(c.path);
  CHECK(paths == std::vector<std::string>{"global.imageRegistry", "image.registry", "image.digest",
                                          "postgresql.image.registry", "postgresql.image.digest"});
  const YAML::Node o = YAML::Load(r.overlay_yaml);
  CHECK(o["global"]["imageRegistry"].as<std::string>() == "10.0.0.5:5000");
  CHECK(o["image"]["registry"].as<std::string>() == "10.0.0.5:5000");
  CHECK(o["image"]["digest"].as<std::string>() == nginx_digest);
  CHECK(o["postgresql"]["image"]["registry"].as<std::string>() == "10.0.0.5:5000");
  CHECK_FALSE(o["postgresql"]["global"]); // Helm copies the top-level global down
  CHECK(r.unplaced == std::vector<std::string>{"docker.io/bitnami/os-shell:12"});
}

TEST_CASE("rewrite_chart reads a chart directory and the release's values files") {
  TestDir dir;
  write_file(dir / "chart/Chart.yaml", "apiVersion: v2\nname: plain\nversion: 0.1.0\n");
  write_file(dir / "chart/values.yaml", "image: nginx:1.25\nextra:\n  image: \"\"\n");
  write_file(dir / "chart/templates/x.yaml", "kind: ConfigMap\n");
  write_file(dir / "site.yaml", "image: nginx:1.27\nextra:\n  image: quay.io/org/extra:2\n");
  values::Options options;
  options.target = {"registry.corp", "m"};
  const values::Result r =
      values::rewrite_chart({.chart = dir / "chart", .values_files = {dir / "site.yaml"}}, options);
  REQUIRE(r.changes.size() == 2);
  CHECK(r.changes[0].path == "image");
  CHECK(r.changes[0].old_value == "nginx:1.27");
  CHECK(r.changes[0].new_value == "registry.corp/m/library/nginx:1.27");
  CHECK(r.changes[1].new_value == "registry.corp/m/org/extra:2");
  SUBCASE("a missing values file is a usage error naming it") {
    CHECK_THROWS_WITH_AS(values::rewrite_chart({.chart = dir / "chart", .values_files = {dir / "nope.yaml"}}, options),
                         doctest::Contains("nope.yaml"), UsageError);
  }
}

} // TEST_SUITE
