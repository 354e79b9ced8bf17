// Tests for bundle/bundle_manifest: the YAML manifest of DESIGN §3 and plain image lists.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/bundle_manifest.hpp"
#include "core/error.hpp"
#include "support/test_support.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace fs = std::filesystem;
using ferry::bundle::load_bundle_manifest;
using ferry::bundle::parse_bundle_manifest;
using ferry::core::UsageError;
using ferry::test::contains;

namespace {

// The first three lines of most test manifests: what follows starts at line 4.
const std::string k_head = "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: demo, version: \"1.0\"}\n";

struct Failure {
  std::string message;
  std::string hint;
};

Failure failure_of(const std::string& text, const fs::path& file = "m.yaml") {
  try {
    parse_bundle_manifest(text, file);
  } catch (const UsageError& e) {
    return {e.what(), e.hint()};
  }
  FAIL("no UsageError for:\n" << text);
  return {};
}

bool starts_with(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

} // namespace

TEST_SUITE("bundle") {

TEST_CASE("load_bundle_manifest reads the DESIGN example into its parts") {
  const fs::path file = ferry::test::data_path("manifests/aistor.yaml");
  const auto m = load_bundle_manifest(file);
  CHECK(m.file == file);
  CHECK(m.base_dir == fs::absolute(file).parent_path().lexically_normal());
  CHECK(m.name == "aistor");
  CHECK(m.version == "2025.05.30");
  REQUIRE(m.platforms.size() == 1);
  CHECK(m.platforms[0].str() == "linux/amd64");

  REQUIRE(m.images.size() == 4);
  CHECK(m.images[0].ref == "quay.io/minio/aistor/operator:RELEASE.2025-05-30T11-03-39Z");
  CHECK(m.images[0].name.empty());
  CHECK(m.images[0].platforms.empty());
  CHECK(m.images[0].line == 7);
  CHECK(m.images[1].ref == "quay.io/minio/aistor/minio:RELEASE.2025-05-30T11-03-39Z");
  REQUIRE(m.images[1].platforms.size() == 2);
  CHECK(m.images[1].platforms[1].str() == "linux/arm64");
  CHECK(m.images[1].line == 8);
  CHECK(m.images[2].ref == "oci:./local-layout:tool");
  CHECK(m.images[2].name == "tools/tool:1.0");
  CHECK(m.images[2].line == 10);
  CHECK(m.images[3].ref == "docker-archive:./studio-frontend.tar");
  CHECK(m.images[3].line == 12);

  REQUIRE(m.charts.size() == 1);
  CHECK(m.charts[0].name == "aistor-objectstore-operator");
  CHECK(m.charts[0].repo == "https://helm.min.io/");
  CHECK(m.charts[0].path.empty());
  CHECK(m.charts[0].version == "^5.2.0");
  CHECK(m.charts[0].images_auto);
  CHECK(m.charts[0].images.empty());
  CHECK(m.charts[0].line == 14);

  REQUIRE(m.files.size() == 1);
  CHECK(m.files[0].path == "tools/helm");
  CHECK(m.files[0].source == "./bin/helm");
  CHECK(m.files[0].mode == 0755);
  CHECK(m.files[0].line == 19);

  CHECK(m.releases_json ==
        R"([{"chart":"aistor-objectstore-operator","imagePullSecrets":["private-repo-pull-secret"],"name":"aistor",)"
        R"("namespace":"aistor","set":{"license":""},"timeout":"10m","values":["values/operator.yaml"],"wait":true}])");
  const auto source = nlohmann::json::parse(m.source_json);
  CHECK(source["metadata"] == nlohmann::json({{"name", "aistor"}, {"version", "2025.05.30"}}));
  CHECK(source["images"].size() == 4);
  CHECK(source["releases"][0]["wait"] == true);
}

TEST_CASE("parse_bundle_manifest records the manifest as JSON with sorted keys") {
  const auto m = parse_bundle_manifest("kind: Bundle\n"
                                       "apiVersion: ferry/v1\n"
                                       "metadata:\n"
                                       "  version: 1.10\n"
                                       "  name: demo\n"
                                       "images: [nginx:1.27]\n"
                                       "mirrors: {docker.io: mirror.example.com}\n"
                                       "rules:\n"
                                       "  - {match: 'repositories.*.hostname', prefix: pathPrefix, enabled: true}\n"
                                       "files:\n"
                                       "  - {path: a, source: b, mode: 0644}\n",
                                       "m.yaml");
  CHECK(m.version == "1.10");
  CHECK(m.files[0].mode == 0644);
  CHECK(m.source_json == R"({"apiVersion":"ferry/v1","files":[{"mode":"0644","path":"a","source":"b"}],)"
                         R"("images":["nginx:1.27"],"kind":"Bundle","metadata":{"name":"demo","version":"1.10"},)"
                         R"("mirrors":{"docker.io":"mirror.example.com"},)"
                         R"("rules":[{"enabled":true,"match":"repositories.*.hostname","prefix":"pathPrefix"}]})");
}

TEST_CASE("parse_bundle_manifest keeps releases in order with set values as strings") {
  const auto m = parse_bundle_manifest(k_head + "charts:\n"
                                                "  - {name: app, path: ./charts/app}\n"
                                                "  - {name: db, repo: oci://registry.example.com/charts, version: 1.2.3}\n"
                                                "releases:\n"
                                                "  - name: db\n"
                                                "    namespace: data\n"
                                                "    chart: db\n"
                                                "    atomic: false\n"
                                                "    createNamespace: true\n"
                                                "  - name: app\n"
                                                "    namespace: web\n"
                                                "    chart: app\n"
                                                "    set: {replicas: 3, debug: true, image.tag: '1.2', empty: }\n"
                                                "    timeout: 1h30m\n",
                                       "m.yaml");
  CHECK(m.releases_json ==
        R"([{"atomic":false,"chart":"db","createNamespace":true,"name":"db","namespace":"data"},)"
        R"({"chart":"app","name":"app","namespace":"web",)"
        R"("set":{"debug":"true","empty":"","image.tag":"1.2","replicas":"3"},"timeout":"1h30m"}])");
  REQUIRE(m.charts.size() == 2);
  CHECK(m.charts[0].path == "./charts/app");
  CHECK(m.charts[0].version.empty());
  CHECK(m.charts[1].repo == "oci://registry.example.com/charts");
  CHECK(m.charts[1].version == "1.2.3");
}

TEST_CASE("parse_bundle_manifest reads a list of chart images") {
  const auto m = parse_bundle_manifest(k_head + "charts:\n"
                                                "  - name: app\n"
                                                "    path: ./app-1.0.0.tgz\n"
                                                "    images: [quay.io/example/app:1.0, busybox]\n",
                                       "m.yaml");
  REQUIRE(m.charts.size() == 1);
  CHECK_FALSE(m.charts[0].images_auto);
  CHECK(m.charts[0].images == std::vector<std::string>{"quay.io/example/app:1.0", "busybox"});
}

TEST_CASE("parse_bundle_manifest reports errors at the offending key or value") {
  SUBCASE("unknown key, with a suggestion") {
    const auto f = failure_of(k_head + "imagse:\n  - nginx\n");
    CHECK(f.message == "m.yaml:4:1: unknown key 'imagse' in the manifest");
    CHECK(f.hint == "did you mean 'images'?");
  }
  SUBCASE("unknown key inside an image") {
    const auto f = failure_of(k_head + "images:\n  - ref: nginx\n    platfroms: [linux/amd64]\n");
    CHECK(f.message == "m.yaml:6:5: unknown key 'platfroms' in image at line 5");
    CHECK(f.hint == "did you mean 'platforms'?");
  }
  SUBCASE("bad apiVersion") {
    const auto f = failure_of("apiVersion: v1\nkind: Bundle\nmetadata: {name: demo, version: \"1\"}\n");
    CHECK(f.message == "m.yaml:1:13: apiVersion is 'v1', expected 'ferry/v1'");
  }
  SUBCASE("upper-case image reference") {
    const auto f = failure_of(k_head + "images:\n  - quay.io/MinIO/minio:1\n");
    CHECK(starts_with(f.message, "m.yaml:5:5: images: "));
    CHECK(contains(f.message, "'quay.io/MinIO/minio:1'"));
  }
  SUBCASE("name on a registry image") {
    const auto f = failure_of(k_head + "images:\n  - ref: nginx:1.27\n    name: tools/x:1\n");
    CHECK(starts_with(f.message, "m.yaml:6:5: 'name' is only allowed for oci: and docker-archive: sources"));
    CHECK(contains(f.message, "'nginx:1.27'"));
  }
  SUBCASE("chart with both repo and path") {
    const auto f = failure_of(k_head + "charts:\n  - name: c\n    repo: https://charts.example.com/\n"
                                       "    path: ./c\n    version: 1.0.0\n");
    CHECK(f.message == "m.yaml:7:5: chart 'c' has both 'repo' and 'path'");
  }
  SUBCASE("chart without a name") {
    const auto f = failure_of(k_head + "charts:\n  - path: ./c\n");
    CHECK(f.message == "m.yaml:5:5: chart at line 5 has no 'name'");
  }
  SUBCASE("repository chart without a version") {
    const auto f = failure_of(k_head + "charts:\n  - name: c\n    repo: https://charts.example.com/\n");
    CHECK(f.message == "m.yaml:5:5: chart 'c' at line 5 has no 'version'");
  }
  SUBCASE("bad file mode") {
    const auto f = failure_of(k_head + "files:\n  - {path: tools/helm, source: ./helm, mode: \"0855\"}\n");
    CHECK(f.message == "m.yaml:5:46: mode '0855' of file 'tools/helm' is not an octal mode up to 07777");
  }
  SUBCASE("file mode above 07777") {
    const auto f = failure_of(k_head + "files:\n  - {path: a, source: b, mode: 17777}\n");
    CHECK(starts_with(f.message, "m.yaml:5:32: mode '17777'"));
  }
  SUBCASE("file path with ..") {
    const auto f = failure_of(k_head + "files:\n  - path: ../etc/x\n    source: ./x\n");
    CHECK(f.message == "m.yaml:5:11: file path '../etc/x' has a '..' component");
  }
  SUBCASE("absolute file path") {
    const auto f = failure_of(k_head + "files:\n  - path: /etc/x\n    source: ./x\n");
    CHECK(f.message == "m.yaml:5:11: file path '/etc/x' is absolute");
  }
  SUBCASE("duplicate image") {
    const auto f = failure_of(k_head + "images:\n  - nginx:1.27\n  - redis:7\n  - nginx:1.27\n");
    CHECK(f.message == "m.yaml:7:5: image 'nginx:1.27' is listed twice (lines 5 and 7)");
  }
  SUBCASE("release naming an unknown chart") {
    const auto f = failure_of(k_head + "charts:\n  - {name: web-app, path: ./web}\n"
                                       "releases:\n  - name: web\n    namespace: web\n    chart: webapp\n");
    CHECK(f.message == "m.yaml:9:12: release 'web' names chart 'webapp', which is not listed in 'charts'");
    CHECK(f.hint == "did you mean 'web-app'?");
  }
  SUBCASE("bad timeout") {
    const auto f = failure_of(k_head + "charts:\n  - {name: web, path: ./web}\n"
                                       "releases:\n  - {name: web, namespace: web, chart: web, timeout: 10 minutes}\n");
    CHECK(f.message == "m.yaml:7:54: timeout '10 minutes' of release 'web' is not a duration");
  }
  SUBCASE("non-boolean wait") {
    const auto f = failure_of(k_head + "charts:\n  - {name: web, path: ./web}\n"
                                       "releases:\n  - {name: web, namespace: web, chart: web, wait: yes}\n");
    CHECK(f.message == "m.yaml:7:51: wait of release 'web' must be true or false, found 'yes'");
  }
  SUBCASE("duplicate release") {
    const auto f = failure_of(k_head + "charts:\n  - {name: web, path: ./web}\n"
                                       "releases:\n  - {name: web, namespace: a, chart: web}\n"
                                       "  - {name: web, namespace: b, chart: web}\n");
    CHECK(f.message == "m.yaml:8:12: release 'web' is listed twice (lines 7 and 8)");
  }
  SUBCASE("YAML syntax error") {
    const auto f = failure_of(k_head + "images: [nginx, redis\nfiles: []\n");
    CHECK(starts_with(f.message, "m.yaml:5:"));
    CHECK(contains(f.message, ": YAML syntax error: "));
  }
  SUBCASE("wrong type") {
    const auto f = failure_of(k_head + "images:\n  nginx: 1.27\n");
    CHECK(f.message == "m.yaml:5:3: images must be a list, found a map");
  }
  SUBCASE("duplicate key") {
    const auto f = failure_of(k_head + "images: [nginx]\nimages: [redis]\n");
    CHECK(f.message == "m.yaml:5:1: duplicate key 'images' in the manifest (first at line 4)");
  }
  SUBCASE("bad metadata name") {
    const auto f = failure_of("apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: My_Bundle, version: \"1\"}\n");
    CHECK(f.message == "m.yaml:3:18: metadata.name 'My_Bundle' is not a valid bundle name");
  }
  SUBCASE("missing metadata version") {
    const auto f = failure_of("apiVersion: ferry/v1\nkind: Bundle\nmetadata:\n  name: demo\n");
    CHECK(f.message == "m.yaml:4:3: metadata has no 'version'");
  }
  SUBCASE("bad platform") {
    const auto f = failure_of(k_head + "platforms: [linux]\n");
    CHECK(starts_with(f.message, "m.yaml:4:13: platforms: "));
    CHECK(contains(f.message, "'linux'"));
  }
}

TEST_CASE("parse_bundle_manifest asks for apiVersion and kind in other YAML") {
  SUBCASE("a map without them") {
    const auto f = failure_of("images:\n  - nginx\n");
    CHECK(f.message == "m.yaml:1:1: not a ferry bundle manifest: it has no 'apiVersion' and no 'kind'");
    CHECK(contains(f.hint, "`apiVersion: ferry/v1`"));
    CHECK(contains(f.hint, "`kind: Bundle`"));
    CHECK(contains(f.hint, "Hauler"));
  }
  SUBCASE("an apiVersion of neither") {
    const auto f = failure_of("apiVersion: example.com/v1\nkind: Images\nspec: {}\n");
    CHECK(f.message == "m.yaml:1:13: apiVersion is 'example.com/v1', expected 'ferry/v1'");
  }
  SUBCASE("a list") {
    const auto f = failure_of("- nginx\n- redis\n");
    CHECK(f.message == "m.yaml:1:1: expected a bundle manifest (a YAML map), found a list");
  }
}

TEST_CASE("parse_bundle_manifest refuses recursive and exploding aliases") {
  SUBCASE("a recursive alias") {
    CHECK(contains(failure_of(k_head + "rules:\n  - &r {x: [*r]}\n").message, "nested too deeply"));
  }
  SUBCASE("a billion laughs") {
    std::string text = k_head + "rules:\n  - &a0 {x: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n";
    for (int i = 1; i <= 9; ++i) {
      const std::string prev = "*a" + std::to_string(i - 1);
      text += "  - &a" + std::to_string(i) + " {x: [" + prev + ", " + prev + ", " + prev + ", " + prev + ", " + prev +
              ", " + prev + ", " + prev + ", " + prev + ", " + prev + ", " + prev + "]}\n";
    }
    CHECK(contains(failure_of(text).message, "too large"));
  }
}

TEST_CASE("load_bundle_manifest reads a plain image list") {
  const fs::path file = ferry::test::data_path("manifests/images.txt");
  const auto m = load_bundle_manifest(file);
  CHECK(m.name == "images");
  CHECK(m.version == "0");
  REQUIRE(m.images.size() == 3);
  CHECK(m.images[0].ref == "quay.io/minio/minio:RELEASE.2025-05-30T11-03-39Z");
  CHECK(m.images[0].line == 2);
  CHECK(m.images[1].ref == "nginx:1.27");
  CHECK(m.images[1].line == 4);
  CHECK(m.images[2].ref == "docker.io/bitnami/redis:7.2");
  CHECK(m.images[2].line == 5);
  CHECK(m.charts.empty());
  CHECK(m.releases_json == "[]");
  CHECK(m.source_json == R"({"apiVersion":"ferry/v1","images":["quay.io/minio/minio:RELEASE.2025-05-30T11-03-39Z",)"
                         R"("nginx:1.27","docker.io/bitnami/redis:7.2"],"kind":"Bundle",)"
                         R"("metadata":{"name":"images","version":"0"}})");
}

TEST_CASE("parse_bundle_manifest names a plain list after the file stem") {
  CHECK(parse_bundle_manifest("nginx\n", "Site A images.list").name == "site-a-images");
  CHECK(parse_bundle_manifest("nginx\n", "_x.txt").name == "x");
}

TEST_CASE("parse_bundle_manifest reports a bad line of a plain list by number") {
  const auto f = failure_of("# site images\nnginx:1.27\n\nquay.io/Upper/x:1   # bad\n", "list.txt");
  CHECK(starts_with(f.message, "list.txt:4: "));
  CHECK(contains(f.message, "'quay.io/Upper/x:1'"));
  SUBCASE("and a duplicate with both lines") {
    const auto d = failure_of("nginx:1.27\nredis\nnginx:1.27\n", "list.txt");
    CHECK(d.message == "list.txt:3: image 'nginx:1.27' is listed twice (lines 1 and 3)");
  }
}

TEST_CASE("parse_bundle_manifest refuses an empty file") {
  CHECK(failure_of("# nothing here\n\n").message == "m.yaml:1:1: the manifest is empty");
}

TEST_CASE("load_bundle_manifest refuses files over 4 MiB before parsing") {
  ferry::test::TestDir dir;
  ferry::test::write_file(dir / "big.yaml", k_head + "rules:\n" + std::string(4u << 20, '#'));
  try {
    load_bundle_manifest(dir / "big.yaml");
    FAIL("no exception");
  } catch (const UsageError& e) {
    CHECK(std::string(e.what()) == "bundle manifest " + (dir / "big.yaml").string() + " is larger than 4 MiB");
  }
}

TEST_CASE("BundleManifest::resolve makes relative paths absolute against the manifest's directory") {
  ferry::test::TestDir dir;
  ferry::test::write_file(dir / "site/bundle.yaml", k_head);
  const auto m = load_bundle_manifest(dir / "site/bundle.yaml");
  CHECK(m.base_dir == dir.path() / "site");
  CHECK(m.resolve("./charts/app") == dir.path() / "site/charts/app");
  CHECK(m.resolve("../bin/helm") == dir.path() / "bin/helm");
  CHECK(m.resolve("/opt/helm") == fs::path("/opt/helm"));
}

TEST_CASE("releases take values rewriting rules and upgradeCRDs") {
  const auto m = parse_bundle_manifest(k_head + "charts:\n  - {name: store, path: ./store}\nreleases:\n"
                                                "  - name: store\n    namespace: s\n    chart: store\n"
                                                "    upgradeCRDs: true\n    rules:\n"
                                                "      - {path: \"repositories.*.hostname\", set: \"{registry}\"}\n"
                                                "      - {path: repositories.*.pathPrefix, set: \"{prefix/}{value}\"}\n",
                                        "m.yaml");
  const auto releases = nlohmann::json::parse(m.releases_json);
  REQUIRE(releases.size() == 1);
  CHECK(releases[0]["upgradeCRDs"] == true);
  REQUIRE(releases[0]["rules"].size() == 2);
  CHECK(releases[0]["rules"][0]["path"] == "repositories.*.hostname");
  CHECK(releases[0]["rules"][0]["set"] == "{registry}");
  CHECK(releases[0]["rules"][1]["set"] == "{prefix/}{value}");

  const std::string rel = k_head + "charts:\n  - {name: store, path: ./store}\nreleases:\n"
                                   "  - name: store\n    namespace: s\n    chart: store\n    rules:\n";
  const Failure no_set = failure_of(rel + "      - {path: a.b}\n");
  INFO(no_set.message);
  CHECK(contains(no_set.message, "m.yaml:11"));
  CHECK(contains(no_set.message, "set"));
  const Failure extra = failure_of(rel + "      - {path: a.b, set: x, value: y}\n");
  CHECK(contains(extra.message, "value"));
  const Failure not_map = failure_of(rel + "      - a.b\n");
  CHECK(contains(not_map.message, "must be a map"));
}

TEST_CASE("the example manifests in manifests/ parse") {
  // tests/data/manifests -> the repository's root.
  const fs::path root = ferry::test::data_path("manifests").parent_path().parent_path().parent_path() / "manifests";
  for (const char* name : {"example.yaml", "aistor.yaml", "datachain.yaml"}) {
    CAPTURE(name);
    const auto m = load_bundle_manifest(root / name);
    CHECK_FALSE(m.images.empty());
    CHECK_FALSE(m.charts.empty());
  }
  const auto aistor = load_bundle_manifest(root / "aistor.yaml");
  const auto releases = nlohmann::json::parse(aistor.releases_json);
  REQUIRE(releases.size() == 2);
  CHECK(releases[1]["rules"].size() == 2);
  CHECK(releases[1]["set"]["license"] == "");
}

} // TEST_SUITE

TEST_CASE("parse_bundle_manifest reads Hauler Images, Charts and Files as the equivalent ferry manifest") {
  const std::string text = "apiVersion: content.hauler.cattle.io/v1\n"
                           "kind: Images\n"
                           "metadata: {name: imgs}\n"
                           "spec:\n"
                           "  images:\n"
                           "    - name: busybox\n"
                           "    - name: quay.io/minio/minio:RELEASE.2025-05-30T11-03-39Z\n"
                           "      platform: linux/arm64\n"
                           "---\n"
                           "apiVersion: content.hauler.cattle.io/v1alpha1\n"
                           "kind: Charts\n"
                           "metadata: {name: charts}\n"
                           "spec:\n"
                           "  charts:\n"
                           "    - name: rancher\n"
                           "      repoURL: https://releases.rancher.com/server-charts/stable\n"
                           "      version: 2.8.4\n"
                           "      add-images: true\n"
                           "    - name: hauler-helm\n"
                           "      repoURL: oci://ghcr.io/hauler-dev\n"
                           "      version: \"^1.0.0\"\n"
                           "---\n"
                           "apiVersion: content.hauler.cattle.io/v1\n"
                           "kind: Files\n"
                           "metadata: {name: files}\n"
                           "spec:\n"
                           "  files:\n"
                           "    - path: bin/install.sh\n"
                           "    - path: ./licence.txt\n"
                           "      name: docs/licence.txt\n";
  const auto m = parse_bundle_manifest(text, "Site content.yaml");
  CHECK(m.name == "site-content");
  CHECK(m.version == "0");
  REQUIRE(m.images.size() == 2);
  CHECK(m.images[0].ref == "busybox");
  CHECK(m.images[1].ref == "quay.io/minio/minio:RELEASE.2025-05-30T11-03-39Z");
  REQUIRE(m.images[1].platforms.size() == 1);
  CHECK(m.images[1].platforms[0].str() == "linux/arm64");
  REQUIRE(m.charts.size() == 2);
  CHECK(m.charts[0].name == "rancher");
  CHECK(m.charts[0].repo == "https://releases.rancher.com/server-charts/stable");
  CHECK(m.charts[0].version == "2.8.4");
  CHECK(m.charts[0].images_auto);
  CHECK(m.charts[1].repo == "oci://ghcr.io/hauler-dev");
  CHECK(!m.charts[1].images_auto);
  REQUIRE(m.files.size() == 2);
  CHECK(m.files[0].path == "install.sh");
  CHECK(m.files[0].source == "bin/install.sh");
  CHECK(m.files[1].path == "docs/licence.txt");
  // Recorded in ferry.json as the ferry manifest it stands for.
  const auto source = nlohmann::json::parse(m.source_json);
  CHECK(source["kind"] == "Bundle");
  CHECK(source["charts"][0]["images"] == "auto");
  CHECK(source["images"][1]["platforms"] == nlohmann::json{"linux/arm64"});
}

TEST_CASE("parse_bundle_manifest refuses what it cannot honour in a Hauler manifest, at the line") {
  const std::string head = "apiVersion: content.hauler.cattle.io/v1\nkind: Images\nspec:\n  images:\n";
  auto f = failure_of(head + "    - name: nginx\n      key: cosign.pub\n");
  CHECK(f.message == "m.yaml:6:7: Hauler's 'key' asks for a cosign verification of the source image, which ferry "
                     "does not do");
  CHECK(contains(f.hint, "cosign verify"));
  f = failure_of(head + "    - name: nginx\n      rewrite: other/nginx\n");
  CHECK(contains(f.message, "m.yaml:6:7: unknown key 'rewrite'"));
  f = failure_of("apiVersion: content.hauler.cattle.io/v1\nkind: Files\nspec:\n  files:\n    - path: https://get.rke2.io\n");
  CHECK(contains(f.message, "m.yaml:5:13: file 'https://get.rke2.io' is a URL"));
  f = failure_of("apiVersion: content.hauler.cattle.io/v1\nkind: Charts\nspec:\n  charts:\n    - name: x\n      repoURL: "
                 "https://c.example.com\n");
  CHECK(contains(f.message, "m.yaml:5:7: chart at line 5 has no 'version'"));
  f = failure_of("apiVersion: content.hauler.cattle.io/v1\nkind: ThickCharts\nspec: {}\n");
  CHECK(contains(f.message, "Hauler kind 'ThickCharts' is not supported"));
  f = failure_of("apiVersion: content.hauler.cattle.io/v1\nkind: Images\nspec: {}\n---\n" + k_head);
  CHECK(contains(f.message, "may hold only Hauler documents"));
}

TEST_CASE("one_off_manifest writes the ferry manifest that --image and --chart describe, and it parses back") {
  using ferry::bundle::one_off_manifest;
  const std::string text = one_off_manifest(
      {.name = "quick",
       .version = "2026.11",
       .images = {"busybox:1.36", "quay.io/minio/minio@sha256:" + std::string(64, 'a'), "ghcr.io/a/b:\"q\" #x"},
       .charts = {"oci://ghcr.io/org/charts/app:1.2.0", "https://charts.example.com:8443/stable/web:^2.1 || 3.x"}});
  // The last image is no valid reference: the text must still be valid YAML, and the
  // parser then names the reference.
  CHECK_THROWS_WITH_AS(parse_bundle_manifest(text, "quick.manifest.yaml"), doctest::Contains("ghcr.io/a/b"), UsageError);

  const std::string good = one_off_manifest(
      {.name = "quick",
       .version = "2026.11",
       .images = {"busybox:1.36", "quay.io/minio/minio@sha256:" + std::string(64, 'a')},
       .charts = {"oci://ghcr.io/org/charts/app:1.2.0", "https://charts.example.com:8443/stable/web:^2.1 || 3.x"}});
  const auto m = parse_bundle_manifest(good, "quick.manifest.yaml");
  CHECK(m.name == "quick");
  CHECK(m.version == "2026.11");
  REQUIRE(m.images.size() == 2);
  CHECK(m.images[0].ref == "busybox:1.36");
  CHECK(m.images[1].ref == "quay.io/minio/minio@sha256:" + std::string(64, 'a'));
  REQUIRE(m.charts.size() == 2);
  CHECK(m.charts[0].name == "app");
  CHECK(m.charts[0].repo == "oci://ghcr.io/org/charts");
  CHECK(m.charts[0].version == "1.2.0");
  CHECK(m.charts[0].images_auto);
  CHECK(m.charts[1].name == "web");
  CHECK(m.charts[1].repo == "https://charts.example.com:8443/stable");
  CHECK(m.charts[1].version == "^2.1 || 3.x");
  CHECK(m.charts[1].images_auto);
  CHECK(text.rfind("# Written by `ferry pack --image/--chart`", 0) == 0);

  SUBCASE("charts without a repository, a name or a version, and nothing at all, are refused") {
    for (const char* bad : {"./charts/app", "app:1.0", "oci://ghcr.io/app", "oci://ghcr.io/org/", "oci://ghcr.io/org/app",
                            "https://charts.example.com/app:"}) {
      CAPTURE(bad);
      CHECK_THROWS_AS(one_off_manifest({.name = "q", .version = "0", .images = {}, .charts = {bad}}), UsageError);
    }
    CHECK_THROWS_WITH_AS(one_off_manifest({.name = "q", .version = "0", .images = {}, .charts = {}}),
                         doctest::Contains("nothing to pack"), UsageError);
  }
}
