// `images: auto` against real helm and a real registry: a copy of the studio chart
// (DataChain Studio's shape, with subcharts) and the plain test chart (one image hard-coded
// in a template), their images seeded with skopeo into a docker-registry on 127.0.0.1 under
// the names the charts use (Docker Hub, quay.io and ghcr.io reached through --mirror).
// Checks what pack finds, how ferry.json says it found it, what --dry-run prints (and
// that it writes nothing), and that without helm the renders are skipped with a warning.
// SPDX-License-Identifier: Apache-2.0
#include "common/registry_fixture.hpp"
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using namespace ferry::itest;
using ferry::test::Platforms;
using ferry::test::RegistryServer;
using nlohmann::json;

namespace {

const std::vector<std::string> k_tools = {"helm", "docker-registry", "umoci", "skopeo"};
constexpr int k_usage = 2;

const std::string k_backend = "docker.io/iterativeai/studio-backend:v2.150.0";
const std::string k_frontend = "docker.io/iterativeai/studio-frontend:v2.150.0";
const std::string k_worker = "docker.io/iterativeai/studio-worker:v2.150.0";
const std::string k_postgresql = "docker.io/bitnami/postgresql:15.3.0-debian-11-r7";
const std::string k_redis = "docker.io/bitnami/redis:7.0.11-debian-11-r12";

const std::string k_nginx = "docker.io/library/nginx:1.25";
const std::string k_busybox = "quay.io/prometheus/busybox:latest";
const std::string k_tools_image = "ghcr.io/example/tools:2.1";
const std::string k_alpine = "docker.io/library/alpine:3.19"; // hard-coded in the plain chart's Job

fs::path source_root() {
  const char* data = std::getenv("FERRY_TEST_DATA");
  REQUIRE_MESSAGE(data, "FERRY_TEST_DATA is not set (run the tests with `meson test`)");
  return fs::path(data).parent_path().parent_path();
}

void copy_tree(const fs::path& from, const fs::path& to) {
  fs::create_directories(to.parent_path());
  fs::copy(from, to, fs::copy_options::recursive);
}

// Where the mirrors put each registry's images in the test registry.
std::string mirror_path(const std::string& ref) {
  const std::size_t slash = ref.find('/');
  const std::string host = ref.substr(0, slash);
  const std::string prefix = host == "docker.io" ? "hub" : host == "quay.io" ? "quay" : "ghcr";
  return prefix + "/" + ref.substr(slash + 1);
}

struct Source {
  Fixtures f;
  RegistryServer server;
};

// A registry holding `refs` (under their mirror paths), each a copy of one of the
// fixture's images (app1 and app2 alternately).
std::unique_ptr<Source> seeded(const TestDir& dir, const std::vector<std::string>& refs) {
  auto s = std::unique_ptr<Source>(new Source{make_fixtures(dir.path()), RegistryServer()});
  const std::string layout = "oci:" + s->f.layout.string();
  for (std::size_t i = 0; i < refs.size(); ++i) {
    ferry::test::push_with_skopeo(s->server, layout + (i % 2 == 0 ? ":app1" : ":app2"), mirror_path(refs[i]));
  }
  return s;
}

std::vector<std::string> mirror_flags(const Source& s) {
  return {"--plain-http",
          "--mirror", "docker.io=" + s.server.host() + "/hub",
          "--mirror", "quay.io=" + s.server.host() + "/quay",
          "--mirror", "ghcr.io=" + s.server.host() + "/ghcr"};
}

// The studio chart copied into DIR/studio, with an artifacthub.io/images annotation on
// the chart (backend) and a helm.sh/images one on its redis subchart.
void studio_chart(const TestDir& dir) {
  copy_tree(source_root() / "manifests/charts/studio", dir / "studio");
  const fs::path chart_yaml = dir / "studio/Chart.yaml";
  write_file(chart_yaml, read_file(chart_yaml) + "annotations:\n"
                                                 "  artifacthub.io/images: |\n"
                                                 "    - name: studio-backend\n"
                                                 "      image: " + k_backend + "\n");
  const fs::path redis_yaml = dir / "studio/charts/redis/Chart.yaml";
  write_file(redis_yaml, read_file(redis_yaml) + "annotations:\n"
                                                 "  helm.sh/images: |\n"
                                                 "    - name: redis\n"
                                                 "      image: " + k_redis + "\n");
}

// A manifest for the studio chart: postgresql also listed under `images:` (the discovered
// one must not be packed twice), a release with a values file.
fs::path studio_manifest(const TestDir& dir) {
  studio_chart(dir);
  write_file(dir / "values/studio.yaml", "worker:\n  replicas: 3\n");
  const fs::path manifest = dir / "studio.yaml";
  write_file(manifest, "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: studio, version: \"2.150.0\"}\n"
                       "images:\n  - " + k_postgresql + "\n"
                       "charts:\n  - {name: studio, path: ./studio, images: auto}\n"
                       "releases:\n  - {name: studio, namespace: studio, chart: studio, values: [values/studio.yaml]}\n");
  return manifest;
}

// A manifest for the plain chart; its release's values replace the tools image (whose
// digest in the chart's defaults names nothing) and add a templated image value.
fs::path plain_manifest(const TestDir& dir) {
  copy_tree(source_root() / "tests/data/values/charts/plain", dir / "plain");
  write_file(dir / "values/plain.yaml", "tools:\n  shellImage: " + k_tools_image + "\n"
                                        "sidecarImage: \"{{ .Values.image }}-sidecar\"\n");
  const fs::path manifest = dir / "plain.yaml";
  write_file(manifest, "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: plain, version: \"1\"}\n"
                       "charts:\n  - {name: plain, path: ./plain, images: auto}\n"
                       "releases:\n  - {name: plain, namespace: apps, chart: plain, values: [values/plain.yaml]}\n");
  return manifest;
}

RunResult pack(const Source& s, const fs::path& manifest, std::vector<std::string> extra, const RunOptions& options = {}) {
  std::vector<std::string> args = {"pack", "-f", manifest.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  const auto mirrors = mirror_flags(s);
  args.insert(args.end(), mirrors.begin(), mirrors.end());
  return run_ferry(args, options);
}

json ferry_json(const fs::path& bundle) {
  for (const auto& item : read_tar(bundle)) {
    if (item.path == "ferry.json") return json::parse(item.data);
  }
  FAIL("no ferry.json in " << bundle.string());
  return {};
}

const json* image_named(const json& images, const std::string& ref) {
  for (const auto& i : images) {
    if (i["ref"] == ref) return &i;
  }
  return nullptr;
}

// The methods of an image's foundBy, in order.
std::vector<std::string> methods(const json& image) {
  std::vector<std::string> out;
  if (!image.contains("foundBy")) return out;
  for (const auto& f : image["foundBy"]) out.push_back(f["method"]);
  return out;
}

const json* finding(const json& image, const std::string& method) {
  for (const auto& f : image["foundBy"]) {
    if (f["method"] == method) return &f;
  }
  return nullptr;
}

// PATH without the directories that hold helm.
std::string path_without_helm() {
  const char* path = std::getenv("PATH");
  std::string out;
  std::istringstream in(path ? path : "");
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty() || fs::exists(fs::path(dir) / "helm")) continue;
    out += (out.empty() ? "" : ":") + dir;
  }
  return out;
}

std::set<std::string> files_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) out.insert(entry.path().string());
  return out;
}

} // namespace

TEST_SUITE("discovery") {

TEST_CASE("images: auto on the studio chart packs its five images and records how each was found") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded(dir, {k_backend, k_frontend, k_worker, k_postgresql, k_redis});
  const fs::path manifest = studio_manifest(dir);
  const fs::path bundle = dir / "studio.tar.zst";
  const RunResult r = pack(*s, manifest, {"-o", bundle.string(), "--key", s->f.key.string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  const json j = ferry_json(bundle);
  REQUIRE(j["images"].size() == 5);
  for (const std::string& ref : {k_backend, k_frontend, k_worker, k_postgresql, k_redis}) {
    CAPTURE(ref);
    const json* image = image_named(j["images"], ref);
    REQUIRE(image);
    CHECK((*image)["digest"] == ferry::test::registry_digest(s->server, mirror_path(ref)));
    // Every image the chart's templates use is confirmed by the render of the release.
    const json* render = finding(*image, "render");
    REQUIRE(render);
    CHECK((*render)["release"] == "studio");
    CHECK((*render)["chart"] == "studio");
    CHECK(finding(*image, "values"));
  }
  const json& backend = *image_named(j["images"], k_backend);
  CHECK(methods(backend) == std::vector<std::string>{"annotation", "values", "render"});
  CHECK((*finding(backend, "annotation"))["where"] == "artifacthub.io/images of chart studio: studio-backend");
  CHECK((*finding(backend, "values"))["where"] ==
        "backend.image.repository (registry/repository map; tag from appVersion of studio)");
  CHECK((*finding(backend, "render"))["where"] == "Deployment/studio-backend spec.template.spec.containers[backend].image");
  CHECK(backend["source"] == k_backend);
  const json& redis = *image_named(j["images"], k_redis);
  CHECK(methods(redis) == std::vector<std::string>{"annotation", "values", "render"});
  CHECK((*finding(redis, "annotation"))["where"] == "helm.sh/images of chart studio/redis: redis");
  CHECK((*finding(redis, "values"))["where"] == "redis.image.repository (registry/repository map)");
  CHECK(methods(*image_named(j["images"], k_frontend)) == std::vector<std::string>{"values", "render"});
  // Listed in the manifest and found: packed once, under the manifest's entry.
  const json& postgresql = *image_named(j["images"], k_postgresql);
  CHECK(postgresql["source"] == k_postgresql);
  CHECK(methods(postgresql) == std::vector<std::string>{"values", "render"});
  CHECK((*finding(postgresql, "render"))["where"] ==
        "StatefulSet/studio-postgresql spec.template.spec.containers[postgresql].image");
  // The chart names every image it needs.
  REQUIRE(j["charts"].size() == 1);
  std::vector<std::string> chart_images = j["charts"][0]["images"];
  std::sort(chart_images.begin(), chart_images.end());
  std::vector<std::string> expected = {k_backend, k_frontend, k_worker, k_postgresql, k_redis};
  std::sort(expected.begin(), expected.end());
  CHECK(chart_images == expected);
  // The bundle verifies, foundBy and all.
  CHECK(run_ferry({"verify", bundle.string(), "--pubkey", s->f.pub.string()}).exit_code == 0);
}

TEST_CASE("an image hard-coded in a template is found by rendering alone; a templated value is reported, not packed") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded(dir, {k_nginx, k_busybox, k_tools_image, k_alpine});
  const fs::path manifest = plain_manifest(dir);
  const fs::path bundle = dir / "plain.tar.zst";
  const RunResult r = pack(*s, manifest, {"-o", bundle.string(), "--key", s->f.key.string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json j = ferry_json(bundle);
  CHECK(j["images"].size() == 4);
  const json* alpine = image_named(j["images"], k_alpine);
  REQUIRE(alpine);
  CHECK(methods(*alpine) == std::vector<std::string>{"render"});
  CHECK((*finding(*alpine, "render"))["where"] == "Job/plain-migrate spec.template.spec.containers[migrate].image");
  CHECK((*alpine)["digest"] == ferry::test::registry_digest(s->server, mirror_path(k_alpine)));
  // The release's values replaced the chart's tools image (digest and all).
  const json* tools = image_named(j["images"], k_tools_image);
  REQUIRE(tools);
  CHECK(methods(*tools) == std::vector<std::string>{"values", "render"});
  const json* busybox = image_named(j["images"], k_busybox);
  REQUIRE(busybox);
  CHECK((*finding(*busybox, "render"))["where"] == "Deployment/plain-plain spec.template.spec.initContainers[init].image");
  CHECK(image_named(j["images"], k_nginx));
  // The templated value: a warning naming it, and nothing packed for it.
  CHECK(contains(r.err, "not packed: '{{ .Values.image }}-sidecar' found by values at sidecarImage (release plain)"));
  for (const auto& image : j["images"]) CHECK_FALSE(contains(image["ref"].get<std::string>(), "sidecar"));
}

TEST_CASE("pack --dry-run resolves everything, prints the plan with where each image came from, and writes nothing") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded(dir, {k_backend, k_frontend, k_worker, k_postgresql, k_redis});
  const fs::path manifest = studio_manifest(dir);
  const fs::path bundle = dir / "studio.tar.zst";
  const std::set<std::string> before = files_in(dir.path());

  SUBCASE("text") {
    const RunResult r = pack(*s, manifest, {"-o", bundle.string(), "--key", s->f.key.string(), "--dry-run"});
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(contains(r.out, "plan for studio 2.150.0 (dry run"));
    CHECK(contains(r.out, "chart studio 2.150.0 from ./studio"));
    CHECK(contains(r.out, "images: auto (from annotation, values, render): 5"));
    CHECK(contains(r.out, "image " + k_worker + " " + ferry::test::registry_digest(s->server, mirror_path(k_worker))));
    CHECK(contains(r.out, "  found by values in chart studio, release studio: worker.image.repository"));
    CHECK(contains(r.out, "  found by render in chart studio, release studio: Deployment/studio-worker"));
    CHECK(contains(r.out, "  found by annotation in chart studio: artifacthub.io/images of chart studio: studio-backend"));
    CHECK(contains(r.out, "  listed in the manifest as " + k_postgresql));
    CHECK(contains(r.out, "5 images, 1 charts, 0 files"));
  }
  SUBCASE("json, without a key or an output") {
    const RunResult r = pack(*s, manifest, {"--dry-run", "--output", "json"});
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    const json plan = json::parse(r.out);
    CHECK(plan["dryRun"] == true);
    REQUIRE(plan["images"].size() == 5);
    for (const auto& image : plan["images"]) {
      CAPTURE(image["ref"]);
      CHECK(image["digest"] == ferry::test::registry_digest(s->server, mirror_path(image["ref"])));
      CHECK(image["size"].get<std::uint64_t>() > 200000); // the layers' sizes, read from the manifests
    }
    CHECK(methods(*image_named(plan["images"], k_redis)) == std::vector<std::string>{"annotation", "values", "render"});
    CHECK((*image_named(plan["images"], k_postgresql))["listed"] == true);
    CHECK((*image_named(plan["images"], k_redis))["listed"] == false);
    REQUIRE(plan["charts"].size() == 1);
    CHECK(plan["charts"][0]["version"] == "2.150.0");
    CHECK(plan["charts"][0]["images"].size() == 5);
    CHECK(plan["discovery"][0]["methods"] == json::array({"annotation", "values", "render"}));
    CHECK(plan["discovery"][0]["unresolved"].empty());
  }
  // Nothing written: no bundle, no checksum file, no work directory left behind.
  CHECK(files_in(dir.path()) == before);
  // No layer was downloaded: the registry served manifests and configs only.
  std::vector<std::string> inspect = {"skopeo", "inspect", "--raw"};
  for (const auto& flag : s->server.skopeo_flags()) inspect.push_back(flag);
  inspect.push_back(s->server.docker_ref(mirror_path(k_backend)));
  const json image = json::parse(ferry::test::must_run(inspect));
  const std::string log = s->server.log();
  REQUIRE(contains(log, "GET /v2/hub/iterativeai/studio-backend/manifests/v2.150.0"));
  for (const auto& layer : image["layers"]) {
    CAPTURE(layer["digest"]);
    CHECK_FALSE(contains(log, "GET /v2/hub/iterativeai/studio-backend/blobs/" + layer["digest"].get<std::string>()));
  }
}

TEST_CASE("without helm on PATH the render source is skipped with a warning, the other sources still read") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded(dir, {k_nginx, k_busybox, k_tools_image});
  const fs::path manifest = plain_manifest(dir);
  const RunResult r = pack(*s, manifest, {"--dry-run", "--output", "json"},
                           {.cwd = {}, .env = {{"PATH", path_without_helm()}}, .input = {}});
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.err, "warning: chart plain: helm is not in $PATH"));
  CHECK(contains(r.err, "images hard-coded in templates are not found"));
  const json plan = json::parse(r.out);
  CHECK(plan["discovery"][0]["methods"] == json::array({"annotation", "values"}));
  CHECK(plan["discovery"][0]["warnings"].size() == 1);
  CHECK(plan["images"].size() == 3);
  CHECK_FALSE(image_named(plan["images"], k_alpine)); // only a render finds it
  for (const std::string& ref : {k_nginx, k_busybox, k_tools_image}) {
    CAPTURE(ref);
    const json* image = image_named(plan["images"], ref);
    REQUIRE(image);
    CHECK(methods(*image) == std::vector<std::string>{"values"});
  }
}

TEST_CASE("pack refuses a --helm that does not exist, and a pack without --out or --key, with exit code 2") {
  require_tools(k_tools);
  TestDir dir;
  const fs::path manifest = plain_manifest(dir);
  SUBCASE("--helm") {
    const RunResult r = run_ferry({"pack", "-f", manifest.string(), "--dry-run", "--helm", (dir / "no-helm").string()});
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "no-helm is not an executable file"));
  }
  SUBCASE("--out and --key") {
    const RunResult r = run_ferry({"pack", "-f", manifest.string()});
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "pack needs --out and --key"));
  }
}

} // TEST_SUITE
