// Tests for chart/chart_lock and the dependency reading of chart/chart_archive: the lock
// digest against locks real `helm dependency update` wrote (tests/data/charts/locks),
// requirements.yaml and requirements.lock, and dependency strings as Helm reads them.
// SPDX-License-Identifier: Apache-2.0
#include "chart/chart_archive.hpp"
#include "chart/chart_lock.hpp"
#include "core/error.hpp"
#include "support/test_support.hpp"

#include <string>
#include <vector>

using ferry::chart::ArchiveFile;
using ferry::chart::ChartLock;
using ferry::chart::ChartMetadata;
using ferry::chart::find_chart_lock;
using ferry::chart::go_json_string;
using ferry::chart::helm2_lock_digest;
using ferry::chart::lock_digest;
using ferry::chart::lock_in_sync;
using ferry::chart::package_chart_directory;
using ferry::chart::read_chart_archive;
using ferry::chart::read_chart_files;
using ferry::chart::read_chart_metadata;
using ferry::core::UsageError;
using ferry::test::data_path;

namespace {

// A chart of tests/data/charts/locks as ferry loads it, and the lock it carries.
struct LockedChart {
  ChartMetadata metadata;
  ChartLock lock;
};

LockedChart load_locked(const std::string& name) {
  const auto chart = package_chart_directory(data_path("charts/locks/" + name), 0);
  const auto lock = find_chart_lock(read_chart_files(chart.archive, name), name);
  REQUIRE(lock.has_value());
  return {chart.metadata, *lock};
}

// The dependencies Chart.yaml `chart_yaml` and requirements.yaml `requirements` (none when
// empty) give, read as the files of a chart.
ChartMetadata metadata_of(const std::string& chart_yaml, const std::string& requirements = {}) {
  std::vector<ArchiveFile> files = {{.path = "Chart.yaml", .data = chart_yaml, .executable = false}};
  if (!requirements.empty()) files.push_back({.path = "requirements.yaml", .data = requirements, .executable = false});
  return read_chart_metadata(files, "demo");
}

} // namespace

TEST_SUITE("chart") {

TEST_CASE("lock_digest equals the digest helm dependency update wrote") {
  // constraints: >=, <, ~, ^, an unquoted 0.1, aliases, condition, tags with '&',
  // import-values, enabled. escapes: a file:// dependency, ||, a tab in the condition
  // (Helm turns it into a space), '<' '>' '&' and a non-ASCII tag. v1-requirements: an
  // apiVersion v1 chart with requirements.yaml and requirements.lock. yaml11:
  // import-values with YAML 1.1 scalars (010, yes, ~, the key n) and numbers Go writes
  // as float64 (1.50, 1e21, 0.0000001).
  for (const std::string name : {"constraints", "escapes", "v1-requirements", "yaml11"}) {
    CAPTURE(name);
    const LockedChart chart = load_locked(name);
    REQUIRE_FALSE(chart.metadata.dependencies.empty());
    CHECK(chart.lock.digest.rfind("sha256:", 0) == 0);
    CHECK(lock_digest(chart.metadata.dependencies, chart.lock.dependencies) == chart.lock.digest);
    CHECK(lock_in_sync(chart.metadata, chart.lock));
  }
}

TEST_CASE("lock_digest changes when one constraint changes") {
  for (const std::string name : {"constraints", "escapes", "v1-requirements", "yaml11"}) {
    CAPTURE(name);
    LockedChart chart = load_locked(name);
    chart.metadata.dependencies.back().version += ".0";
    CHECK(lock_digest(chart.metadata.dependencies, chart.lock.dependencies) != chart.lock.digest);
    CHECK_FALSE(lock_in_sync(chart.metadata, chart.lock));
  }
  SUBCASE("and when the lock pins another version") {
    LockedChart chart = load_locked("constraints");
    chart.lock.dependencies.front().version = "1.0.0";
    CHECK_FALSE(lock_in_sync(chart.metadata, chart.lock));
  }
}

TEST_CASE("lock_in_sync accepts a Helm 2 digest for apiVersion v1 charts only") {
  // helm 3.10 `dependency build` accepts this requirements.lock (after warning that it
  // found no Helm 3 digest) and refuses it once its digest changes or apiVersion is v2.
  LockedChart chart = load_locked("v1-helm2");
  CHECK(chart.metadata.api_version == "v1");
  CHECK(chart.lock.file == "requirements.lock");
  CHECK(helm2_lock_digest(chart.metadata.dependencies) == chart.lock.digest);
  CHECK(lock_digest(chart.metadata.dependencies, chart.lock.dependencies) != chart.lock.digest);
  CHECK(lock_in_sync(chart.metadata, chart.lock));
  chart.metadata.api_version = "v2";
  CHECK_FALSE(lock_in_sync(chart.metadata, chart.lock));
}

TEST_CASE("read_chart_metadata takes the dependencies of requirements.yaml") {
  const LockedChart chart = load_locked("v1-requirements");
  CHECK(chart.metadata.dependencies_file == "requirements.yaml");
  REQUIRE(chart.metadata.dependencies.size() == 2);
  const auto& demo = chart.metadata.dependencies[0];
  CHECK(demo.name == "demo");
  CHECK(demo.version == "~1.2.0");
  CHECK(demo.repository == "http://charts.example.com");
  CHECK(demo.condition == "demo.enabled");
  CHECK(chart.metadata.dependencies[1].import_values == R"(["data"])");
  REQUIRE(chart.lock.dependencies.size() == 2);
  CHECK(chart.lock.dependencies[1].name == "other");
  CHECK(chart.lock.dependencies[1].version == "0.2.0");

  SUBCASE("so does read_chart_archive, and the config JSON lists them as helm push writes it") {
    const auto packaged = package_chart_directory(data_path("charts/locks/v1-requirements"), 0);
    const auto read = read_chart_archive(packaged.archive, "v1-requirements.tgz");
    REQUIRE(read.metadata.dependencies.size() == 2);
    CHECK(read.metadata.dependencies[1].name == "other");
    CHECK(read.metadata.config_json.find(R"("dependencies":[{"condition":"demo.enabled","name":"demo",)") !=
          std::string::npos);
  }
}

TEST_CASE("read_chart_metadata lets requirements.yaml replace Chart.yaml's dependencies whatever the apiVersion") {
  // helm 3.10 does so for v2 charts too (warning "Dependencies are handled in Chart.yaml
  // since apiVersion v2"), and `helm template` then wants them in charts/.
  const std::string chart_yaml = "apiVersion: v2\nname: demo\nversion: 1.0.0\n"
                                 "dependencies:\n  - {name: from-chart, repository: \"https://a.example\"}\n";
  const ChartMetadata replaced = metadata_of(chart_yaml, "dependencies:\n  - {name: from-requirements, version: 1.x}\n");
  REQUIRE(replaced.dependencies.size() == 1);
  CHECK(replaced.dependencies[0].name == "from-requirements");
  CHECK(replaced.dependencies_file == "requirements.yaml");

  SUBCASE("a requirements.yaml without a dependencies key leaves them") {
    const ChartMetadata kept = metadata_of(chart_yaml, "other: value\n");
    REQUIRE(kept.dependencies.size() == 1);
    CHECK(kept.dependencies[0].name == "from-chart");
    CHECK(kept.dependencies_file == "Chart.yaml");
  }
  SUBCASE("a Chart.yaml without apiVersion is v1, as Helm takes it") {
    CHECK(metadata_of("name: demo\nversion: 1.0.0\n").api_version == "v1");
  }
}

TEST_CASE("find_chart_lock takes the later of Chart.lock and requirements.lock") {
  const std::string chart_lock = "dependencies:\n- {name: a, repository: \"\", version: 1.0.0}\ndigest: sha256:aa\n";
  const std::string requirements_lock = "dependencies:\n- {name: b, repository: \"\", version: 2.0.0}\ndigest: sha256:bb\n";
  std::vector<ArchiveFile> files = {{.path = "Chart.lock", .data = chart_lock, .executable = false},
                                    {.path = "Chart.yaml", .data = "name: demo\nversion: 1.0.0\n", .executable = false},
                                    {.path = "requirements.lock", .data = requirements_lock, .executable = false}};
  auto lock = find_chart_lock(files, "demo");
  REQUIRE(lock.has_value());
  CHECK(lock->file == "requirements.lock");
  CHECK(lock->digest == "sha256:bb");
  REQUIRE(lock->dependencies.size() == 1);
  CHECK(lock->dependencies[0].name == "b");

  std::swap(files.front(), files.back());
  lock = find_chart_lock(files, "demo");
  REQUIRE(lock.has_value());
  CHECK(lock->file == "Chart.lock");
  CHECK(lock->digest == "sha256:aa");

  files.erase(files.begin());
  files.pop_back();
  CHECK_FALSE(find_chart_lock(files, "demo").has_value());
}

TEST_CASE("ChartDependency strings are read as Helm reads them") {
  // What `helm dependency list` (helm 3.10) shows for these versions: a plain YAML number
  // or boolean becomes Go's text of it.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"1.10", "1.1"}, {"010", "8"},       {"0x10", "16"},   {"yes", "true"},           {"1e7", "1e+07"},
      {"1_000", "1000"}, {"1.0", "1"},     {"08", "8"},      {"0.1234567", "0.1234567"}, {"\"1.10\"", "1.10"},
      {"~1.2.0", "~1.2.0"}, {"off", "false"}, {"'1.0'", "1.0"}, {"-0.5", "-0.5"},
  };
  std::string chart_yaml = "name: demo\nversion: 1.0.0\ndependencies:\n";
  for (const auto& [written, read] : cases) chart_yaml += "  - {name: d, version: " + written + "}\n";
  const ChartMetadata meta = metadata_of(chart_yaml);
  REQUIRE(meta.dependencies.size() == cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    CAPTURE(cases[i].first);
    CHECK(meta.dependencies[i].version == cases[i].second);
  }

  SUBCASE("white space in Chart.yaml's strings becomes a space, other control characters go") {
    const ChartMetadata sanitized =
        metadata_of("name: demo\nversion: 1.0.0\ndependencies:\n  - {name: d, condition: \"a\\tb\\x01c\", tags: [\"x\\ny\"]}\n");
    CHECK(sanitized.dependencies[0].condition == "a bc");
    CHECK(sanitized.dependencies[0].tags == std::vector<std::string>{"x y"});
  }
  SUBCASE("import-values are kept as Go's JSON, map keys sorted and numbers as float64") {
    // YAML 1.1 reads the key n as false, and so does Helm (tests/data/charts/locks/yaml11).
    const ChartMetadata values = metadata_of("name: demo\nversion: 1.0.0\ndependencies:\n"
                                             "  - name: d\n    import-values:\n      - {parent: p, child: c}\n"
                                             "      - {n: 010, f: 1.50, big: 1e21, t: yes, z: ~, s: \"1\"}\n"
                                             "  - {name: e, import-values: []}\n");
    CHECK(values.dependencies[0].import_values ==
          R"([{"child":"c","parent":"p"},{"big":1e+21,"f":1.5,"false":8,"s":"1","t":true,"z":null}])");
    CHECK(values.dependencies[1].import_values.empty());
  }
  SUBCASE("an alias Helm refuses is refused") {
    CHECK_THROWS_AS(metadata_of("name: demo\nversion: 1.0.0\ndependencies:\n  - {name: d, alias: my.alias}\n"),
                    UsageError);
  }
}

TEST_CASE("go_json_string escapes as Go's encoding/json does by default") {
  CHECK(go_json_string("plain") == "\"plain\"");
  CHECK(go_json_string(">= 1.0.0 < 2 && a") == R"("\u003e= 1.0.0 \u003c 2 \u0026\u0026 a")");
  CHECK(go_json_string("q\"b\\\n\r\t") == R"("q\"b\\\n\r\t")");
  CHECK(go_json_string(std::string("\x01\b\f\x1f\x7f", 5)) == "\"\\u0001\\u0008\\u000c\\u001f\x7f\"");
  CHECK(go_json_string("é \u2028 \u2029 €") == "\"é \\u2028 \\u2029 €\"");
  CHECK(go_json_string("a\xff" "b\xc0\xaf" "c\xed\xa0\x80") == R"("a\ufffdb\ufffd\ufffdc\ufffd\ufffd\ufffd")");
}

} // TEST_SUITE
