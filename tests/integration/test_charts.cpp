// pack takes charts from where charts live: Helm HTTP repositories served on 127.0.0.1
// (plain, basic auth, TLS) with charts made by real `helm package` and indexes by `helm
// repo index`, OCI charts `helm push`ed to a docker-registry, and local charts whose
// dependencies are vendored; the results are read back with helm, tar and sha256sum.
// SPDX-License-Identifier: Apache-2.0
#include "common/chart_repo_server.hpp"
#include "common/registry_fixture.hpp"
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace fs = std::filesystem;
using namespace ferry::itest;
using ferry::test::ChartRepoServer;
using ferry::test::RegistryServer;
using nlohmann::json;

namespace {

const std::vector<std::string> k_tools = {"helm", "openssl", "sha256sum", "tar"};
constexpr int k_usage = 2;
constexpr int k_integrity = 3;
constexpr int k_registry_failure = 4;
const std::vector<std::string> k_demo_versions = {"1.0.0", "1.2.0", "1.3.0-rc.1", "2.0.0"};

// helm with its cache, configuration and data under the test directory.
RunOptions helm_options(const TestDir& dir) {
  return {.cwd = {},
          .env = {{"HELM_CACHE_HOME", (dir / "helm/cache").string()},
                  {"HELM_CONFIG_HOME", (dir / "helm/config").string()},
                  {"HELM_DATA_HOME", (dir / "helm/data").string()}},
          .input = {}};
}

std::string helm(const TestDir& dir, std::vector<std::string> args) {
  args.insert(args.begin(), "helm");
  return must(args, helm_options(dir));
}

// A chart directory DIR/src/NAME-VERSION/NAME whose template is a ConfigMap named after
// the release and the chart, recording the chart's version.
fs::path write_chart(const TestDir& dir, const std::string& name, const std::string& version,
                     const std::string& extra_chart_yaml = {}, const std::string& values = "greeting: hello\n") {
  const fs::path chart = dir / ("src/" + name + "-" + version) / name;
  write_file(chart / "Chart.yaml", "apiVersion: v2\nname: " + name + "\nversion: " + version + "\n" + extra_chart_yaml);
  write_file(chart / "values.yaml", values);
  write_file(chart / "templates/configmap.yaml", "apiVersion: v1\n"
                                                 "kind: ConfigMap\n"
                                                 "metadata:\n"
                                                 "  name: {{ .Release.Name }}-{{ .Chart.Name }}\n"
                                                 "data:\n"
                                                 "  chart: \"{{ .Chart.Name }}-{{ .Chart.Version }}\"\n"
                                                 "  greeting: {{ .Values.greeting | quote }}\n");
  return chart;
}

// `helm package` of demo in every version of k_demo_versions into `repo`, then `helm repo
// index` (relative URLs, or absolute ones under `url`).
void fill_repository(const TestDir& dir, const fs::path& repo, const std::string& url = {}) {
  fs::create_directories(repo);
  for (const auto& version : k_demo_versions) {
    helm(dir, {"package", write_chart(dir, "demo", version).string(), "-d", repo.string()});
  }
  std::vector<std::string> index = {"repo", "index", repo.string()};
  if (!url.empty()) index.insert(index.end(), {"--url", url});
  helm(dir, index);
}

std::string sha256_file(const fs::path& file) { return "sha256:" + must({"sha256sum", file.string()}).substr(0, 64); }

// `helm dependency update` of `chart` against `repo` while the repository's index lists
// only the archives named in `visible` (so the lock helm writes pins those versions),
// then the repository as it was and the chart without the charts/ helm filled.
void helm_lock(const TestDir& dir, const fs::path& repo, const fs::path& chart, const std::vector<std::string>& visible) {
  const fs::path hidden = dir / "hidden";
  fs::create_directories(hidden);
  for (const auto& entry : fs::directory_iterator(repo)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() == ".tgz" && std::find(visible.begin(), visible.end(), name) == visible.end()) {
      fs::rename(entry.path(), hidden / name);
    }
  }
  helm(dir, {"repo", "index", repo.string()});
  helm(dir, {"dependency", "update", chart.string()});
  for (const auto& entry : fs::directory_iterator(hidden)) fs::rename(entry.path(), repo / entry.path().filename());
  helm(dir, {"repo", "index", repo.string()});
  fs::remove_all(chart / "charts");
}

fs::path keygen(const TestDir& dir) {
  if (!fs::exists(dir / "release.key")) {
    const RunResult r = run_ferry({"keygen", "--out", (dir / "release").string()});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  }
  return dir / "release.key";
}

// Writes the manifest (charts: `charts_yaml`) as DIR/NAME.yaml and packs it into
// DIR/NAME.tar.zst.
RunResult pack(const TestDir& dir, const std::string& name, const std::string& charts_yaml,
               std::vector<std::string> extra = {}, const std::string& input = {}) {
  const fs::path manifest = dir / (name + ".yaml");
  write_file(manifest, "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: " + name + ", version: \"1\"}\ncharts:\n" +
                           charts_yaml);
  std::vector<std::string> args = {"pack", "-f", manifest.string(), "-o", (dir / (name + ".tar.zst")).string(), "--key",
                                   keygen(dir).string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_ferry(args, {.cwd = {}, .env = {}, .input = input});
}

// ferry.json of a bundle, read with the test's own tar reader.
json ferry_json(const fs::path& bundle) {
  for (const auto& item : read_tar(bundle)) {
    if (item.path == "ferry.json") return json::parse(item.data);
  }
  FAIL("no ferry.json in " << bundle.string());
  return {};
}

// The chart archive (the Helm chart layer) of chart `index` in the bundle, written to `out`.
fs::path chart_archive(const fs::path& bundle, const json& chart, const fs::path& out) {
  const std::string digest = chart["archiveDigest"];
  for (const auto& item : read_tar(bundle)) {
    if (item.path == "blobs/sha256/" + digest.substr(7)) {
      write_file(out, item.data);
      return out;
    }
  }
  FAIL("no blob " << digest << " in " << bundle.string());
  return {};
}

} // namespace

TEST_SUITE("charts") {

TEST_CASE("pack takes the highest release a constraint allows from a Helm repository, archive byte for byte") {
  require_tools(k_tools);
  TestDir dir;
  fill_repository(dir, dir / "repo");
  ChartRepoServer server(dir / "repo");
  const RunResult r = pack(dir, "http", "  - {name: demo, repo: \"" + server.url() + "/\", version: \"^1.0.0\"}\n");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  const json chart = ferry_json(dir / "http.tar.zst")["charts"][0];
  CHECK(chart["version"] == "1.2.0"); // not 2.0.0, not 1.3.0-rc.1
  CHECK(chart["source"] == server.url() + "/");
  CHECK(chart["sourceUrl"] == server.url() + "/demo-1.2.0.tgz");
  // Nothing was vendored: the bundle carries the repository's own bytes.
  CHECK(chart["archiveDigest"] == sha256_file(dir / "repo/demo-1.2.0.tgz"));
  CHECK(chart["upstreamDigest"] == chart["archiveDigest"]);
  CHECK_FALSE(chart.contains("dependencies"));
  CHECK(server.served("/index.yaml"));
  CHECK(server.served("/demo-1.2.0.tgz"));
  CHECK_FALSE(server.served("/demo-2.0.0.tgz"));
  CHECK_FALSE(server.served("/demo-1.3.0-rc.1.tgz"));

  const RunResult inspect = run_ferry({"inspect", (dir / "http.tar.zst").string()});
  CHECK(contains(inspect.out, "demo 1.2.0"));
  CHECK(contains(inspect.out, "from " + server.url() + "/demo-1.2.0.tgz"));
  const json shown = json::parse(run_ferry({"inspect", (dir / "http.tar.zst").string(), "--output", "json"}).out);
  CHECK(shown["charts"][0]["sourceUrl"] == chart["sourceUrl"]);
  CHECK(shown["charts"][0]["upstreamDigest"] == chart["upstreamDigest"]);
  CHECK(shown["charts"][0]["dependencies"].empty());

  SUBCASE("an exact pre-release version is taken as it is") {
    const RunResult rc = pack(dir, "rc", "  - {name: demo, repo: \"" + server.url() + "\", version: 1.3.0-rc.1}\n");
    INFO(rc.err);
    REQUIRE(rc.exit_code == 0);
    CHECK(ferry_json(dir / "rc.tar.zst")["charts"][0]["version"] == "1.3.0-rc.1");
  }
}

TEST_CASE("a repository that requires basic auth is read with --username and --password-stdin") {
  require_tools(k_tools);
  TestDir dir;
  ChartRepoServer server(dir / "site", {.tls = false, .basic_auth = true});
  // Absolute URLs in the index, as `helm repo index --url` writes them.
  fill_repository(dir, dir / "site/charts", server.url() + "/charts");
  const std::string charts = "  - {name: demo, repo: \"" + server.url() + "/charts\", version: \"~1.0.0\"}\n";

  const RunResult anonymous = pack(dir, "anon", charts);
  CHECK(anonymous.exit_code == k_registry_failure);
  CHECK(contains(anonymous.err, server.url() + "/charts/index.yaml"));
  CHECK(contains(anonymous.err, "--username"));
  CHECK_FALSE(fs::exists(dir / "anon.tar.zst"));

  const RunResult r = pack(dir, "auth", charts, {"--username", "ferry", "--password-stdin"}, "ferry-test-secret\n");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json chart = ferry_json(dir / "auth.tar.zst")["charts"][0];
  CHECK(chart["version"] == "1.0.0");
  CHECK(chart["sourceUrl"] == server.url() + "/charts/demo-1.0.0.tgz");
  CHECK(chart["archiveDigest"] == sha256_file(dir / "site/charts/demo-1.0.0.tgz"));
  CHECK_FALSE(contains(r.out + r.err, "ferry-test-secret"));
  CHECK(server.served("/charts/demo-1.0.0.tgz"));
}

TEST_CASE("a repository over TLS is reached with --ca-file and refused without it") {
  require_tools(k_tools);
  TestDir dir;
  fill_repository(dir, dir / "repo");
  ChartRepoServer server(dir / "repo", {.tls = true});
  const std::string charts = "  - {name: demo, repo: \"" + server.url() + "\", version: \"^2\"}\n";

  const RunResult untrusted = pack(dir, "untrusted", charts);
  CHECK(untrusted.exit_code == k_registry_failure);
  CHECK(contains(untrusted.err, "--ca-file"));

  const RunResult r = pack(dir, "tls", charts, {"--ca-file", server.ca_file().string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json chart = ferry_json(dir / "tls.tar.zst")["charts"][0];
  CHECK(chart["version"] == "2.0.0");
  CHECK(chart["archiveDigest"] == sha256_file(dir / "repo/demo-2.0.0.tgz"));
}

TEST_CASE("an archive whose bytes differ from the index digest fails with exit 3 naming the chart and URL") {
  require_tools(k_tools);
  TestDir dir;
  fill_repository(dir, dir / "repo");
  // Same chart name and version, other content, put in place after the index was made.
  const fs::path other = dir / "other";
  helm(dir, {"package", write_chart(dir, "demo", "1.2.0", {}, "greeting: tampered\n").string(), "-d", other.string()});
  REQUIRE(read_file(other / "demo-1.2.0.tgz") != read_file(dir / "repo/demo-1.2.0.tgz"));
  fs::copy_file(other / "demo-1.2.0.tgz", dir / "repo/demo-1.2.0.tgz", fs::copy_options::overwrite_existing);
  ChartRepoServer server(dir / "repo");

  const RunResult r = pack(dir, "tampered", "  - {name: demo, repo: \"" + server.url() + "\", version: \"^1.0.0\"}\n");
  CHECK(r.exit_code == k_integrity);
  CHECK(contains(r.err, "chart demo 1.2.0"));
  CHECK(contains(r.err, server.url() + "/demo-1.2.0.tgz"));
  CHECK(contains(r.err, sha256_file(dir / "repo/demo-1.2.0.tgz")));
  CHECK_FALSE(fs::exists(dir / "tampered.tar.zst"));
}

TEST_CASE("a constraint no version satisfies fails with exit 2 listing the versions") {
  require_tools(k_tools);
  TestDir dir;
  fill_repository(dir, dir / "repo");
  ChartRepoServer server(dir / "repo");
  const RunResult r = pack(dir, "none", "  - {name: demo, repo: \"" + server.url() + "\", version: \"^3.0.0\"}\n");
  CHECK(r.exit_code == k_usage);
  CHECK(contains(r.err, "no version of chart 'demo'"));
  CHECK(contains(r.err, "\"^3.0.0\""));
  CHECK(contains(r.err, "2.0.0, 1.2.0, 1.0.0"));
  CHECK(contains(r.err, "1.3.0-rc.1"));
  CHECK_FALSE(server.served("/demo-2.0.0.tgz"));
  CHECK_FALSE(fs::exists(dir / "none.tar.zst"));

  SUBCASE("an unknown chart name is named with the similar ones") {
    const RunResult unknown = pack(dir, "unknown", "  - {name: dem, repo: \"" + server.url() + "\", version: \"1\"}\n");
    CHECK(unknown.exit_code == k_usage);
    CHECK(contains(unknown.err, "chart 'dem' is not in " + server.url() + "/index.yaml"));
    CHECK(contains(unknown.err, "demo"));
  }
}

TEST_CASE("an oci:// chart that helm pushed packs, and so does a dependency from that registry") {
  require_tools(k_tools);
  require_tools({"docker-registry"});
  TestDir dir;
  RegistryServer registry;
  const fs::path pushed = dir / "pushed";
  for (const std::string version : {"1.0.0", "1.2.0", "2.0.0"}) {
    helm(dir, {"package", write_chart(dir, "demo", version).string(), "-d", pushed.string()});
    // helm 3.10 talks plain HTTP to registries on 127.0.0.1 by itself (it has no --plain-http).
    helm(dir, {"push", (pushed / ("demo-" + version + ".tgz")).string(), "oci://" + registry.host() + "/helm-charts"});
  }
  const std::string repo = "oci://" + registry.host() + "/helm-charts";
  const RunResult r = pack(dir, "oci", "  - {name: demo, repo: \"" + repo + "\", version: \"^1.0.0\"}\n", {"--plain-http"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json chart = ferry_json(dir / "oci.tar.zst")["charts"][0];
  CHECK(chart["version"] == "1.2.0");
  CHECK(chart["sourceUrl"] == repo + "/demo:1.2.0");
  CHECK(chart["archiveDigest"] == sha256_file(pushed / "demo-1.2.0.tgz"));

  SUBCASE("a local chart depending on an oci:// chart gets it vendored") {
    const fs::path app = write_chart(dir, "app", "0.1.0",
                                     "dependencies:\n  - name: demo\n    version: \">=2.0.0\"\n    repository: \"" + repo +
                                         "\"\n");
    const RunResult with_dep = pack(dir, "ocidep", "  - {name: app, path: \"" + app.string() + "\"}\n", {"--plain-http"});
    INFO(with_dep.err);
    REQUIRE(with_dep.exit_code == 0);
    const json app_chart = ferry_json(dir / "ocidep.tar.zst")["charts"][0];
    REQUIRE(app_chart["dependencies"].size() == 1);
    CHECK(app_chart["dependencies"][0]["version"] == "2.0.0");
    CHECK(app_chart["dependencies"][0]["source"] == repo + "/demo:2.0.0");
    CHECK(app_chart["dependencies"][0]["digest"] == sha256_file(pushed / "demo-2.0.0.tgz"));
    const fs::path tgz = chart_archive(dir / "ocidep.tar.zst", app_chart, dir / "app-0.1.0.tgz");
    CHECK(contains(helm(dir, {"template", "rel", tgz.string()}), "chart: \"demo-2.0.0\""));
  }
}

TEST_CASE("a dependency Chart.yaml declares from the HTTP repository is vendored, and helm renders it") {
  require_tools(k_tools);
  require_tools({"docker-registry"});
  TestDir dir;
  fill_repository(dir, dir / "repo");
  ChartRepoServer server(dir / "repo");
  const fs::path app = write_chart(dir, "app", "0.1.0",
                                   "dependencies:\n  - name: demo\n    version: \"~1.2.0\"\n    repository: \"" +
                                       server.url() + "\"\n");
  const RunResult r = pack(dir, "deps", "  - {name: app, path: \"" + app.string() + "\", version: 0.1.0}\n");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const fs::path bundle = dir / "deps.tar.zst";
  const json chart = ferry_json(bundle)["charts"][0];
  REQUIRE(chart["dependencies"].size() == 1);
  const json& dep = chart["dependencies"][0];
  CHECK(dep["name"] == "demo");
  CHECK(dep["version"] == "1.2.0");
  CHECK(dep["source"] == server.url() + "/demo-1.2.0.tgz");
  CHECK(dep["digest"] == sha256_file(dir / "repo/demo-1.2.0.tgz"));
  CHECK(chart["upstreamDigest"] != chart["archiveDigest"]);
  CHECK_FALSE(chart.contains("sourceUrl"));
  CHECK_FALSE(fs::exists(app / "charts")); // the chart directory is left as it was

  const fs::path tgz = chart_archive(bundle, chart, dir / "app-0.1.0.tgz");
  CHECK(contains(must({"tar", "-tzf", tgz.string()}), "app/charts/demo-1.2.0.tgz"));
  // The vendored archive is the repository's, byte for byte.
  must({"tar", "-xzf", tgz.string(), "-C", dir.path().string(), "app/charts/demo-1.2.0.tgz"});
  CHECK(sha256_file(dir / "app/charts/demo-1.2.0.tgz") == dep["digest"]);
  const std::string rendered = helm(dir, {"template", "rel", tgz.string()});
  CHECK(contains(rendered, "name: rel-app"));
  CHECK(contains(rendered, "name: rel-demo"));
  CHECK(contains(rendered, "chart: \"demo-1.2.0\""));
  const RunResult inspect = run_ferry({"inspect", bundle.string()});
  CHECK(contains(inspect.out, "+ demo 1.2.0 vendored from " + server.url() + "/demo-1.2.0.tgz"));
  const json shown = json::parse(run_ferry({"inspect", bundle.string(), "--output", "json"}).out);
  CHECK(shown["charts"][0]["dependencies"] == chart["dependencies"]);

  // After ferry push the chart is an OCI chart that helm pulls and renders with its dependency.
  RegistryServer target;
  const RunResult push = run_ferry({"push", bundle.string(), "--registry", target.host(), "--plain-http", "--pubkey",
                                    (dir / "release.pub").string(), "--state-dir", (dir / "state").string()});
  INFO(push.err);
  REQUIRE(push.exit_code == 0);
  const fs::path pulled = dir / "pulled";
  fs::create_directories(pulled);
  helm(dir, {"pull", "oci://" + target.host() + "/charts/app", "--version", "0.1.0", "-d", pulled.string()});
  CHECK(sha256_file(pulled / "app-0.1.0.tgz") == chart["archiveDigest"]);
  CHECK(contains(helm(dir, {"template", "rel", (pulled / "app-0.1.0.tgz").string()}), "chart: \"demo-1.2.0\""));
}

TEST_CASE("Chart.lock pins a dependency's version, and a file:// dependency is packaged from its directory") {
  require_tools(k_tools);
  TestDir dir;
  fill_repository(dir, dir / "repo");
  ChartRepoServer server(dir / "repo");
  const fs::path app = write_chart(dir, "app", "0.1.0",
                                   "dependencies:\n"
                                   "  - name: demo\n    version: \"^1.0.0\"\n    repository: \"" + server.url() + "\"\n"
                                   "  - name: sub\n    version: \"0.2.x\"\n    repository: \"file://../../sub-0.2.3/sub\"\n");
  write_chart(dir, "sub", "0.2.3");
  // The lock helm writes while the repository has no newer 1.x than 1.0.0.
  helm_lock(dir, dir / "repo", app, {"demo-1.0.0.tgz"});
  REQUIRE(contains(read_file(app / "Chart.lock"), "version: 1.0.0"));
  const RunResult r = pack(dir, "locked", "  - {name: app, path: \"" + app.string() + "\"}\n");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json chart = ferry_json(dir / "locked.tar.zst")["charts"][0];
  REQUIRE(chart["dependencies"].size() == 2);
  CHECK(chart["dependencies"][0]["name"] == "demo");
  CHECK(chart["dependencies"][0]["version"] == "1.0.0"); // the lock's, not the newest 1.x
  CHECK(chart["dependencies"][1]["name"] == "sub");
  CHECK(chart["dependencies"][1]["version"] == "0.2.3");
  CHECK(chart["dependencies"][1]["source"] == "file://../../sub-0.2.3/sub");
  CHECK_FALSE(server.served("/demo-1.2.0.tgz"));
  const fs::path tgz = chart_archive(dir / "locked.tar.zst", chart, dir / "app-0.1.0.tgz");
  const std::string rendered = helm(dir, {"template", "rel", tgz.string()});
  CHECK(contains(rendered, "chart: \"demo-1.0.0\""));
  CHECK(contains(rendered, "chart: \"sub-0.2.3\""));
}

TEST_CASE("a Chart.lock out of sync with Chart.yaml is refused when a dependency is to be fetched") {
  require_tools(k_tools);
  TestDir dir;
  fill_repository(dir, dir / "repo");
  ChartRepoServer server(dir / "repo");
  const auto depending_on = [&](const std::string& constraint) {
    return write_chart(dir, "app", "0.1.0",
                       "dependencies:\n  - name: demo\n    version: \"" + constraint + "\"\n    repository: \"" +
                           server.url() + "\"\n");
  };
  const fs::path app = depending_on("^1.0.0");
  helm(dir, {"dependency", "update", app.string()}); // Chart.lock and charts/demo-1.2.0.tgz
  REQUIRE(fs::exists(app / "charts/demo-1.2.0.tgz"));
  // The constraint changes after the lock was written, as when a publisher forgets to run
  // `helm dependency update`; `helm dependency build` refuses the lock then (on a copy
  // without charts/, which it would fill if it took the lock).
  depending_on("^1.1.0");
  const fs::path copy = dir / "helm-build/app";
  fs::create_directories(copy.parent_path());
  fs::copy(app, copy, fs::copy_options::recursive);
  fs::remove_all(copy / "charts");
  const RunResult build = run({"helm", "dependency", "build", copy.string()}, helm_options(dir));
  const std::string refused = build.out + build.err;
  CHECK(build.exit_code != 0);
  CHECK(contains(refused, "out of sync"));

  SUBCASE("not vendored: pack refuses it, naming the lock file and what to do") {
    fs::remove_all(app / "charts");
    const std::size_t requests = server.requests().size();
    const RunResult r = pack(dir, "stale", "  - {name: app, path: \"" + app.string() + "\"}\n");
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "Chart.lock of chart app 0.1.0"));
    CHECK(contains(r.err, "out of sync"));
    CHECK(contains(r.err, "helm dependency update"));
    CHECK(server.requests().size() == requests); // nothing was fetched
    CHECK_FALSE(fs::exists(dir / "stale.tar.zst"));
  }
  SUBCASE("every dependency vendored: helm install does not read the lock, so pack only warns") {
    const RunResult r = pack(dir, "vendored", "  - {name: app, path: \"" + app.string() + "\"}\n");
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(contains(r.err, "Chart.lock of chart app 0.1.0"));
    CHECK(contains(r.err, "out of sync"));
    CHECK_FALSE(ferry_json(dir / "vendored.tar.zst")["charts"][0].contains("dependencies"));
  }
}

TEST_CASE("an apiVersion v1 chart's requirements.yaml dependencies are vendored at the versions requirements.lock pins") {
  require_tools(k_tools);
  TestDir dir;
  fill_repository(dir, dir / "repo");
  ChartRepoServer server(dir / "repo");
  const fs::path legacy = write_chart(dir, "legacy", "0.1.0");
  write_file(legacy / "Chart.yaml", "apiVersion: v1\nname: legacy\nversion: 0.1.0\n");
  // demo twice, the second under an alias: the lock pins each (by position).
  write_file(legacy / "requirements.yaml", "dependencies:\n"
                                           "  - name: demo\n    version: \"^1.0.0\"\n    repository: \"" + server.url() + "\"\n"
                                           "  - name: demo\n    alias: next\n    version: \"^2.0.0\"\n"
                                           "    repository: \"" + server.url() + "\"\n");
  helm_lock(dir, dir / "repo", legacy, {"demo-1.0.0.tgz", "demo-2.0.0.tgz"});
  REQUIRE(fs::exists(legacy / "requirements.lock")); // helm writes the Helm 2 name for v1 charts
  REQUIRE_FALSE(fs::exists(legacy / "Chart.lock"));
  const std::string lock = read_file(legacy / "requirements.lock");
  REQUIRE(lock.find("version: 1.0.0") < lock.find("version: 2.0.0"));

  const RunResult r = pack(dir, "legacy", "  - {name: legacy, path: \"" + legacy.string() + "\"}\n");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json chart = ferry_json(dir / "legacy.tar.zst")["charts"][0];
  REQUIRE(chart["dependencies"].size() == 2);
  CHECK(chart["dependencies"][0]["name"] == "demo");
  CHECK(chart["dependencies"][0]["version"] == "1.0.0"); // the lock's, not the newest 1.x
  CHECK(chart["dependencies"][0]["source"] == server.url() + "/demo-1.0.0.tgz");
  CHECK(chart["dependencies"][0]["digest"] == sha256_file(dir / "repo/demo-1.0.0.tgz"));
  CHECK(chart["dependencies"][1]["name"] == "demo");
  CHECK(chart["dependencies"][1]["version"] == "2.0.0");
  CHECK_FALSE(server.served("/demo-1.2.0.tgz"));
  const fs::path tgz = chart_archive(dir / "legacy.tar.zst", chart, dir / "legacy-0.1.0.tgz");
  const std::string listing = must({"tar", "-tzf", tgz.string()});
  CHECK(contains(listing, "legacy/charts/demo-1.0.0.tgz"));
  CHECK(contains(listing, "legacy/charts/demo-2.0.0.tgz"));
  CHECK(contains(listing, "legacy/requirements.yaml"));
  const std::string rendered = helm(dir, {"template", "rel", tgz.string()});
  CHECK(contains(rendered, "name: rel-legacy"));
  CHECK(contains(rendered, "chart: \"demo-1.0.0\""));
  CHECK(contains(rendered, "chart: \"next-2.0.0\""));
}

TEST_CASE("a dependency that cannot be found fails naming it") {
  require_tools(k_tools);
  TestDir dir;
  fill_repository(dir, dir / "repo");
  ChartRepoServer server(dir / "repo");
  SUBCASE("not in the repository") {
    const fs::path app = write_chart(dir, "app", "0.1.0",
                                     "dependencies:\n  - name: missing-dep\n    version: \"1.0.0\"\n    repository: \"" +
                                         server.url() + "\"\n");
    const RunResult r = pack(dir, "missing", "  - {name: app, path: \"" + app.string() + "\"}\n");
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "chart 'missing-dep' is not in " + server.url() + "/index.yaml"));
    CHECK(contains(r.err, "dependency missing-dep of chart app 0.1.0"));
    CHECK_FALSE(fs::exists(dir / "missing.tar.zst"));
  }
  SUBCASE("no version of it satisfies the dependency's constraint") {
    const fs::path app = write_chart(dir, "app", "0.1.0",
                                     "dependencies:\n  - name: demo\n    version: \"^5\"\n    repository: \"" +
                                         server.url() + "\"\n");
    const RunResult r = pack(dir, "old", "  - {name: app, path: \"" + app.string() + "\"}\n");
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "dependency demo of chart app 0.1.0"));
    CHECK(contains(r.err, "2.0.0, 1.2.0, 1.0.0"));
  }
  SUBCASE("no repository and not in charts/") {
    const fs::path app = write_chart(dir, "app", "0.1.0", "dependencies:\n  - name: local-only\n    version: \"1.0.0\"\n");
    const RunResult r = pack(dir, "norepo", "  - {name: app, path: \"" + app.string() + "\"}\n");
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "dependency local-only of chart app 0.1.0 is not in charts/"));
  }
}

} // TEST_SUITE
