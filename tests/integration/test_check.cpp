// ferry values BUNDLE and ferry check against real helm: bundles packed from the example
// charts (studio with subcharts and global.imageRegistry, aistor-objectstore with rules)
// and a plain chart with an image hard-coded in a template; images from a local OCI
// layout named as the charts expect (no registry needed: nothing is pushed).
// SPDX-License-Identifier: Apache-2.0
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;
using namespace ferry::itest;
using nlohmann::json;

namespace {

const std::vector<std::string> k_tools = {"helm", "umoci", "zstd"};
const std::string k_registry = "registry.corp:5000/mirror";
const std::string k_prefix = k_registry + "/";
constexpr int k_failure = 1;
constexpr int k_usage = 2;
constexpr int k_integrity = 3;

fs::path test_data() {
  const char* data = std::getenv("FERRY_TEST_DATA");
  REQUIRE_MESSAGE(data, "FERRY_TEST_DATA is not set (run the tests with `meson test`)");
  return fs::path(data);
}

// The example charts of manifests/ (the repository's root is two levels above tests/data).
fs::path example_chart(const std::string& name) { return test_data() / ".." / ".." / "manifests" / "charts" / name; }

const std::vector<std::string> k_studio_images = {
    "docker.io/iterativeai/studio-backend:v2.150.0", "docker.io/iterativeai/studio-frontend:v2.150.0",
    "docker.io/iterativeai/studio-worker:v2.150.0", "docker.io/bitnami/postgresql:15.3.0-debian-11-r7",
    "docker.io/bitnami/redis:7.0.11-debian-11-r12"};
const std::vector<std::string> k_aistor_images = {"quay.io/minio/aistor/minio:RELEASE.2025-05-30T11-03-39Z",
                                                  "quay.io/minio/aistor/minio-sidecar:v1.0.5"};
const std::vector<std::string> k_plain_images = {"docker.io/library/nginx:1.25", "quay.io/prometheus/busybox:latest",
                                                 "ghcr.io/example/tools:2.1"};

// A signing key, an OCI layout with one small image under a ref per name, and the charts.
struct Workspace {
  fs::path key;
  fs::path pub;
};

Workspace prepare(const TestDir& dir, std::size_t images) {
  const std::string layout = (dir / "layout").string();
  // Incompressible and larger than a reader's buffer, so that the chart blobs come well
  // after the start of the stream.
  std::string noise(3u << 20, '\0');
  std::uint64_t state = 0x9e3779b97f4a7c15u;
  for (auto& c : noise) {
    state = state * 6364136223846793005u + 1442695040888963407u;
    c = static_cast<char>(state >> 56);
  }
  write_file(dir / "content/noise.bin", noise);
  must({"umoci", "init", "--layout", layout});
  must({"umoci", "new", "--image", layout + ":img"});
  must({"umoci", "insert", "--image", layout + ":img", (dir / "content/noise.bin").string(), "/noise.bin"});
  for (std::size_t i = 0; i < images; ++i) must({"umoci", "tag", "--image", layout + ":img", "t" + std::to_string(i)});
  must({"cp", "-r", example_chart("studio").string(), example_chart("aistor-objectstore").string(),
        (test_data() / "values" / "charts" / "plain").string(), dir.path().string()});
  const RunResult keygen = run_ferry({"keygen", "--out", (dir / "release").string()});
  REQUIRE_MESSAGE(keygen.exit_code == 0, keygen.err);
  return {dir / "release.key", dir / "release.pub"};
}

std::string images_yaml(const std::vector<std::string>& names) {
  std::string out = "images:\n";
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += "  - {ref: \"oci:./layout:t" + std::to_string(i) + "\", name: \"" + names[i] + "\"}\n";
  }
  return out;
}

fs::path pack(const TestDir& dir, const Workspace& ws, const std::string& name, const std::string& manifest) {
  const fs::path file = dir / (name + ".yaml");
  write_file(file, "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: " + name + ", version: \"1\"}\n" + manifest);
  const fs::path bundle = dir / (name + ".tar.zst");
  const RunResult r = run_ferry({"pack", "-f", file.string(), "-o", bundle.string(), "--key", ws.key.string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return bundle;
}

const std::string k_studio_values = "# the bundle's own values for studio\nworker:\n  replicas: 3\nredis:\n  architecture: standalone\n";

// studio (no images declared: every bundle image counts) and aistor (its images
// declared, its registry given by rules, a licence required on site).
fs::path pack_good(const TestDir& dir, const Workspace& ws) {
  write_file(dir / "values/studio.yaml", k_studio_values);
  std::vector<std::string> images = k_studio_images;
  images.insert(images.end(), k_aistor_images.begin(), k_aistor_images.end());
  return pack(dir, ws, "good",
              images_yaml(images) +
                  "charts:\n"
                  "  - {name: studio, path: ./studio}\n"
                  "  - name: aistor-objectstore\n"
                  "    path: ./aistor-objectstore\n"
                  "    images: [" + k_aistor_images[0] + ", " + k_aistor_images[1] + "]\n"
                  "releases:\n"
                  "  - {name: studio, namespace: studio, chart: studio, values: [values/studio.yaml]}\n"
                  "  - name: aistor\n"
                  "    namespace: aistor\n"
                  "    chart: aistor-objectstore\n"
                  "    set: {license: \"\"}\n"
                  "    rules:\n"
                  "      - {path: \"repositories.*.hostname\", set: \"{registry}\"}\n"
                  "      - {path: \"repositories.*.pathPrefix\", set: \"{prefix/}{value}\"}\n");
}

fs::path pack_plain(const TestDir& dir, const Workspace& ws) {
  return pack(dir, ws, "plain",
              images_yaml(k_plain_images) + "charts:\n  - {name: plain, path: ./plain}\n"
                                            "releases:\n  - {name: plain, namespace: apps, chart: plain}\n");
}

std::vector<std::string> trust(const Workspace& ws) { return {"--pubkey", ws.pub.string()}; }

RunResult run_trusted(std::vector<std::string> args, const Workspace& ws) {
  const auto t = trust(ws);
  args.insert(args.end(), t.begin(), t.end());
  return run_ferry(args);
}


const json* find_image(const json& release, const std::string& container) {
  for (const auto& i : release["images"]) {
    if (i["container"] == container) return &i;
  }
  return nullptr;
}

const json* find_release(const json& report, const std::string& name) {
  for (const auto& r : report["releases"]) {
    if (r["name"] == name) return &r;
  }
  return nullptr;
}

bool has(const json& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// One tar entry of a decompressed bundle: its bytes [start, end) and where its data is.
struct RawEntry {
  std::string path;
  std::size_t start = 0;
  std::size_t end = 0;
  std::size_t data = 0;
};

std::uint64_t octal(const std::string& tar, std::size_t at, std::size_t len) {
  std::uint64_t v = 0;
  for (std::size_t i = at; i < at + len && tar[i] >= '0' && tar[i] <= '7'; ++i) v = v * 8 + static_cast<unsigned>(tar[i] - '0');
  return v;
}

// Splits a plain tar into entries (pax extended headers belong to the entry they precede).
std::vector<RawEntry> split_tar(const std::string& tar, std::size_t& end_of_entries) {
  std::vector<RawEntry> out;
  std::size_t offset = 0;
  while (offset + 512 <= tar.size() && tar.compare(offset, 512, std::string(512, '\0')) != 0) {
    RawEntry e;
    e.start = offset;
    for (;;) {
      const char type = tar[offset + 156];
      const std::uint64_t size = octal(tar, offset + 124, 12);
      const std::size_t data = offset + 512;
      offset = data + (size + 511) / 512 * 512;
      if (type == 'x') {
        const std::string records = tar.substr(data, size);
        const auto at = records.find(" path=");
        if (at != std::string::npos) e.path = records.substr(at + 6, records.find('\n', at) - at - 6);
        continue;
      }
      if (e.path.empty()) e.path = tar.substr(data - 512, tar.find('\0', data - 512) - (data - 512));
      e.data = data;
      break;
    }
    e.end = offset;
    out.push_back(e);
  }
  end_of_entries = offset;
  return out;
}

std::string compress(const TestDir& dir, const std::string& bytes) {
  write_file(dir / "frame.bin", bytes);
  must({"zstd", "-q", "-f", (dir / "frame.bin").string(), "-o", (dir / "frame.zst").string()});
  return read_file(dir / "frame.zst");
}

// The bundle written again one zstd frame per entry (as ferry writes it), after
// `change` altered the plain tar.
void reframe(const TestDir& dir, const fs::path& bundle, const fs::path& out,
             const std::function<void(std::string&, const std::vector<RawEntry>&)>& change) {
  must({"zstd", "-q", "-d", "-f", bundle.string(), "-o", (dir / "plain.tar").string()});
  std::string tar = read_file(dir / "plain.tar");
  std::size_t end = 0;
  const std::vector<RawEntry> entries = split_tar(tar, end);
  REQUIRE(entries.size() > 3);
  REQUIRE(entries[0].path == "ferry.json");
  change(tar, entries);
  std::string framed;
  for (const auto& e : entries) framed += compress(dir, tar.substr(e.start, e.end - e.start));
  framed += compress(dir, tar.substr(end));
  write_file(out, framed);
}

std::string chart_blob_path(const fs::path& bundle, const Workspace& ws) {
  const RunResult r = run_trusted({"inspect", bundle.string(), "--output", "json"}, ws);
  REQUIRE(r.exit_code == 0);
  const json j = json::parse(r.out);
  REQUIRE(j["charts"].size() == 1);
  return "blobs/sha256/" + j["charts"][0]["archiveDigest"].get<std::string>().substr(7);
}

} // namespace

TEST_SUITE("check") {

TEST_CASE("ferry values writes one overlay per release; with them ferry check passes for studio and aistor") {
  require_tools(k_tools);
  TestDir dir;
  const Workspace ws = prepare(dir, 7);
  const fs::path bundle = pack_good(dir, ws);
  const fs::path out = dir / "overlays" / "new"; // created, parents too

  const RunResult values = run_trusted({"values", bundle.string(), "--registry", k_registry, "-o", out.string()}, ws);
  INFO(values.out, values.err);
  REQUIRE(values.exit_code == 0);
  REQUIRE(fs::exists(out / "studio.yaml"));
  REQUIRE(fs::exists(out / "aistor.yaml"));
  CHECK(read_file(dir / "values/studio.yaml") == k_studio_values); // the user's file is left alone
  CHECK(contains(values.out, "studio (chart studio 2.150.0)"));
  CHECK(contains(values.out, "global.imageRegistry: \"\" -> " + k_registry + "  (global.imageRegistry)"));
  CHECK(contains(values.out, "repositories.minio.hostname: quay.io -> registry.corp:5000  (rule repositories.*.hostname)"));
  CHECK(contains(read_file(out / "aistor.yaml"), "pathPrefix: mirror/minio/aistor"));

  // helm itself, with the bundle's values and the overlay: every image is internal.
  for (const auto& [release, chart, extra] :
       std::vector<std::tuple<std::string, std::string, std::vector<std::string>>>{
           {"studio", "studio", {"-f", (dir / "values/studio.yaml").string()}},
           {"aistor", "aistor-objectstore", {"--set", "license=x"}}}) {
    std::vector<std::string> argv = {"helm", "template", release, (dir / chart).string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.insert(argv.end(), {"-f", (out / (release + ".yaml")).string()});
    const auto images = image_lines(must(argv));
    CHECK(images.size() == (release == "studio" ? 5u : 3u));
    for (const auto& image : images) CHECK_MESSAGE(image.rfind(k_prefix, 0) == 0, image);
  }

  const RunResult check =
      run_trusted({"check", bundle.string(), "--registry", k_registry, "--values-dir", out.string()}, ws);
  INFO(check.out, check.err);
  CHECK(check.exit_code == 0);
  CHECK(contains(check.out, "studio (chart studio 2.150.0, overlay " + (out / "studio.yaml").string() +
                                "): 5 images rendered, all from the bundle under the registry"));
  CHECK(contains(check.out, "aistor (chart aistor-objectstore 5.2.1, overlay " + (out / "aistor.yaml").string() +
                                "): 3 images rendered, all from the bundle under the registry"));
  CHECK(contains(check.out, "placeholder values given for the site keys: license"));
}

TEST_CASE("ferry check computes the overlays itself and traces each image to the values feeding it") {
  require_tools(k_tools);
  TestDir dir;
  const Workspace ws = prepare(dir, 7);
  const fs::path bundle = pack_good(dir, ws);
  const RunResult r = run_trusted({"check", bundle.string(), "--registry", k_registry, "--output", "json"}, ws);
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  const json j = json::parse(r.out);
  CHECK(j["ok"] == true);
  CHECK(j["registry"] == k_registry);
  REQUIRE(j["releases"].size() == 2);

  const json* studio = find_release(j, "studio");
  REQUIRE(studio);
  CHECK((*studio)["overlay"] == "computed");
  CHECK((*studio)["namespace"] == "studio");
  REQUIRE((*studio)["images"].size() == 5);
  const json* backend = find_image(*studio, "backend");
  REQUIRE(backend);
  CHECK((*backend)["kind"] == "Deployment");
  CHECK((*backend)["name"] == "studio-backend");
  CHECK((*backend)["image"] == k_prefix + "iterativeai/studio-backend:v2.150.0");
  CHECK((*backend)["ok"] == true);
  CHECK((*backend)["problem"].is_null());
  CHECK((*backend)["hardCoded"] == false);
  // global.imageRegistry wins over backend.image.registry in this chart's template.
  CHECK(has((*backend)["fedBy"], "global.imageRegistry"));
  CHECK(has((*backend)["fedBy"], "backend.image.repository"));
  CHECK(has((*backend)["fedBy"], "backend.image.tag")); // "" defaulted to appVersion
  CHECK_FALSE(has((*backend)["fedBy"], "backend.image.registry"));
  const json* redis = find_image(*studio, "redis");
  REQUIRE(redis);
  CHECK(has((*redis)["fedBy"], "redis.image.tag"));
  // The detectors' changes, double-checked with the sentinels.
  bool global_checked = false;
  bool backend_registry_checked = false;
  for (const auto& c : (*studio)["changes"]) {
    if (c["path"] == "global.imageRegistry") global_checked = c["feedsImage"] == true;
    if (c["path"] == "backend.image.registry") backend_registry_checked = c["feedsImage"] == false;
  }
  CHECK(global_checked);
  CHECK(backend_registry_checked);
  bool feed_listed = false;
  for (const auto& f : (*studio)["feeds"]) {
    feed_listed |= f["path"] == "global.imageRegistry" && f["field"] == "Deployment/studio-backend container backend";
  }
  CHECK(feed_listed);

  const json* aistor = find_release(j, "aistor");
  REQUIRE(aistor);
  CHECK((*aistor)["placeholders"] == json::array({"license"}));
  const json* minio = find_image(*aistor, "minio");
  REQUIRE(minio);
  CHECK((*minio)["image"] == k_prefix + "minio/aistor/minio:RELEASE.2025-05-30T11-03-39Z");
  CHECK((*minio)["fedBy"] == json::array({"repositories.minio.hostname", "repositories.minio.pathPrefix",
                                          "images.minio.name", "images.minio.tag"}));
  const json* init = find_image(*aistor, "sidecar-init");
  REQUIRE(init);
  CHECK((*init)["field"] == "spec.template.spec.initContainers[0].image");
  CHECK(has((*init)["fedBy"], "repositories.sidecar.hostname"));
  CHECK((*aistor)["renders"].get<int>() >= 2);
}

TEST_CASE("ferry check renders with the site's values: a site tag the bundle lacks fails, a given licence needs no placeholder") {
  require_tools(k_tools);
  TestDir dir;
  const Workspace ws = prepare(dir, 7);
  const fs::path bundle = pack_good(dir, ws);
  write_file(dir / "site-studio.yaml", "backend:\n  image:\n    tag: v2.151.0\n");
  write_file(dir / "licence.txt", "LICENCE-CHECK-SECRET");
  const RunResult r = run_trusted({"check", bundle.string(), "--registry", k_registry, "--output", "json", "--values",
                                   "studio=" + (dir / "site-studio.yaml").string(), "--set-file",
                                   "aistor:license=" + (dir / "licence.txt").string()},
                                  ws);
  INFO(r.out, r.err);
  // The site's tag reaches the render: the bundle has no v2.151.0 of studio-backend.
  CHECK(r.exit_code == k_failure);
  CHECK(contains(r.err, "Deployment/studio-backend container backend: " + k_prefix + "iterativeai/studio-backend:v2.151.0"));
  CHECK(contains(r.err, "backend.image.tag"));
  CHECK_FALSE(contains(r.out + r.err, "LICENCE-CHECK-SECRET"));
  // The licence was given, so aistor rendered without a placeholder.
  CHECK_FALSE(contains(r.err, "placeholder values for the site keys license"));

  SUBCASE("without the site's values the same bundle passes, with a placeholder licence") {
    const RunResult plain = run_trusted({"check", bundle.string(), "--registry", k_registry}, ws);
    INFO(plain.out, plain.err);
    CHECK(plain.exit_code == 0);
    CHECK(contains(plain.err, "aistor: placeholder values for the site keys license"));
  }
  SUBCASE("a release the bundle lacks is a usage error") {
    const RunResult typo = run_trusted({"check", bundle.string(), "--registry", k_registry, "--set", "studoi:a=b"}, ws);
    CHECK(typo.exit_code == k_usage);
    CHECK(contains(typo.err, "did you mean 'studio'?"));
  }
}

TEST_CASE("ferry check fails for a chart whose template hard-codes an image, naming it and its template") {
  require_tools(k_tools);
  TestDir dir;
  const Workspace ws = prepare(dir, 3);
  const fs::path bundle = pack_plain(dir, ws);
  const fs::path out = dir / "overlays";
  REQUIRE(run_trusted({"values", bundle.string(), "--registry", k_registry, "-o", out.string()}, ws).exit_code == 0);

  const RunResult r = run_trusted({"check", bundle.string(), "--registry", k_registry, "--values-dir", out.string()}, ws);
  INFO(r.out, r.err);
  CHECK(r.exit_code == k_failure);
  CHECK(contains(r.err, "1 rendered image is not a bundle image under " + k_registry));
  CHECK(contains(r.err, "release plain: Job/plain-migrate container migrate: docker.io/library/alpine:3.19: not under " +
                            k_prefix + "; no value feeds it: hard-coded in the chart's templates "
                                       "(plain/templates/deployment.yaml)"));
  CHECK(contains(r.out, "ok   Deployment/plain-plain container app: " + k_prefix + "library/nginx:1.25  (from image)"));

  const RunResult j = run_trusted({"check", bundle.string(), "--registry", k_registry, "--values-dir", out.string(),
                             "--output", "json"}, ws);
  CHECK(j.exit_code == k_failure);
  const json report = json::parse(j.out);
  CHECK(report["ok"] == false);
  const json* plain = find_release(report, "plain");
  REQUIRE(plain);
  const json* migrate = find_image(*plain, "migrate");
  REQUIRE(migrate);
  CHECK((*migrate)["hardCoded"] == true);
  CHECK((*migrate)["ok"] == false);
  CHECK((*migrate)["kind"] == "Job");
  CHECK((*migrate)["source"] == "plain/templates/deployment.yaml");
  const json* tools = find_image(*plain, "tools");
  REQUIRE(tools);
  CHECK((*tools)["fedBy"] == json::array({"tools.shellImage"}));
  CHECK((*tools)["ok"] == true);
}

TEST_CASE("ferry check names the values that feed an image left external") {
  require_tools(k_tools);
  TestDir dir;
  const Workspace ws = prepare(dir, 3);
  const fs::path bundle = pack_plain(dir, ws);
  write_file(dir / "empty/plain.yaml", "{}\n"); // an overlay that changes nothing
  const RunResult r = run_trusted({"check", bundle.string(), "--registry", k_registry, "--values-dir",
                             (dir / "empty").string()}, ws);
  INFO(r.out, r.err);
  CHECK(r.exit_code == k_failure);
  CHECK(contains(r.err, "4 rendered images are not a bundle image"));
  CHECK(contains(r.err, "Deployment/plain-plain container app: nginx:1.25: not under " + k_prefix + "; fed by values image"));
  CHECK(contains(r.err, "Deployment/plain-plain container init: quay.io/prometheus/busybox:latest: not under " + k_prefix +
                            "; fed by values initImage"));
  CHECK(contains(r.err, "hard-coded in the chart's templates"));
}

TEST_CASE("ferry check catches an overlay pointing at a tag the bundle does not carry") {
  require_tools(k_tools);
  TestDir dir;
  const Workspace ws = prepare(dir, 3);
  const fs::path bundle = pack_plain(dir, ws);
  const fs::path out = dir / "overlays";
  REQUIRE(run_trusted({"values", bundle.string(), "--registry", k_registry, "-o", out.string()}, ws).exit_code == 0);
  std::string overlay = read_file(out / "plain.yaml");
  const auto at = overlay.find("library/nginx:1.25");
  REQUIRE(at != std::string::npos);
  overlay.replace(at, 18, "library/nginx:1.26");
  write_file(out / "plain.yaml", overlay);
  const RunResult r = run_trusted({"check", bundle.string(), "--registry", k_registry, "--values-dir", out.string()}, ws);
  INFO(r.out, r.err);
  CHECK(r.exit_code == k_failure);
  CHECK(contains(r.err, "container app: " + k_prefix + "library/nginx:1.26: tag 1.26 is not the bundle's (1.25); fed by "
                                                      "values image"));
}

TEST_CASE("ferry values --output json reports each release's changes, skipped values and unplaced images") {
  require_tools(k_tools);
  TestDir dir;
  const Workspace ws = prepare(dir, 7);
  const fs::path bundle = pack_good(dir, ws);
  const fs::path out = dir / "overlays";
  const RunResult r = run_trusted({"values", bundle.string(), "--registry", k_registry, "-o", out.string(), "--output", "json"}, ws);
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  const json j = json::parse(r.out);
  CHECK(j["bundle"] == bundle.string());
  CHECK(j["registry"] == k_registry);
  CHECK(j["pinDigests"] == false);
  CHECK(j["outputDir"] == out.string());
  REQUIRE(j["releases"].size() == 2);
  for (const auto& release : j["releases"]) {
    for (const char* key : {"name", "namespace", "chart", "overlayFile", "overlay"}) CHECK_MESSAGE(release[key].is_string(), key);
    for (const char* key : {"changes", "skipped", "unplaced"}) CHECK_MESSAGE(release[key].is_array(), key);
    CHECK(release["overlay"] == read_file(release["overlayFile"].get<std::string>()));
    for (const auto& c : release["changes"]) {
      for (const char* key : {"path", "old", "new", "detector", "image"}) CHECK_MESSAGE(c[key].is_string(), key);
    }
  }
  const json& studio = j["releases"][0];
  CHECK(studio["name"] == "studio");
  CHECK(studio["overlayFile"] == (out / "studio.yaml").string());
  CHECK(studio["changes"][0]["path"] == "global.imageRegistry");
  // studio declares no images, so every bundle image counts for it: aistor's are not placed.
  CHECK(studio["unplaced"] == json::array({k_aistor_images[0], k_aistor_images[1]}));
  const json& aistor = j["releases"][1];
  // aistor declares its two images; its rules rewrote their registry (quay.io).
  CHECK(aistor["unplaced"].empty());
  REQUIRE(aistor["placedByRules"].size() == 2);
  CHECK(aistor["placedByRules"][0]["image"] == k_aistor_images[0]);
  CHECK(aistor["placedByRules"][0]["rule"] == "repositories.*.hostname");
  CHECK(aistor["placedByRules"][1]["image"] == k_aistor_images[1]);
  CHECK(aistor["changes"].size() == 4);
  CHECK(aistor["changes"][1]["new"] == "mirror/minio/aistor");
}

TEST_CASE("ferry values --pin-digests pins plain image strings to the bundle's digests") {
  require_tools(k_tools);
  TestDir dir;
  const Workspace ws = prepare(dir, 3);
  const fs::path bundle = pack_plain(dir, ws);
  const json info = json::parse(run_trusted({"inspect", bundle.string(), "--output", "json"}, ws).out);
  const std::string digest = info["images"][0]["digest"];
  const fs::path out = dir / "overlays";
  const RunResult r = run_trusted({"values", bundle.string(), "--registry", k_registry, "-o", out.string(), "--pin-digests"}, ws);
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(read_file(out / "plain.yaml"), "image: " + k_prefix + "library/nginx:1.25@" + digest));
}

TEST_CASE("a tampered chart blob is refused with exit 3, framed per entry or not") {
  require_tools(k_tools);
  TestDir dir;
  const Workspace ws = prepare(dir, 3);
  const fs::path bundle = pack_plain(dir, ws);
  const std::string chart_blob = chart_blob_path(bundle, ws);

  SUBCASE("one frame per entry: only the chart frames are read, and the digest check catches it") {
    const fs::path tampered = dir / "tampered.tar.zst";
    reframe(dir, bundle, tampered, [&](std::string& tar, const std::vector<RawEntry>& entries) {
      bool found = false;
      for (const auto& e : entries) {
        if (e.path != chart_blob) continue;
        tar[e.data + 20] = static_cast<char>(tar[e.data + 20] ^ 0x01);
        found = true;
      }
      REQUIRE(found);
    });
    const RunResult values = run_trusted({"values", tampered.string(), "--registry", k_registry, "-o", (dir / "out").string()}, ws);
    INFO(values.err);
    CHECK(values.exit_code == k_integrity);
    CHECK(contains(values.err, "bundle entry " + chart_blob + " (chart charts/plain:0.1.0) has digest"));
    CHECK_FALSE(fs::exists(dir / "out" / "plain.yaml"));
    const RunResult check = run_trusted({"check", tampered.string(), "--registry", k_registry}, ws);
    INFO(check.err);
    CHECK(check.exit_code == k_integrity);
    CHECK(contains(check.err, "bundle entry " + chart_blob + " (chart charts/plain:0.1.0) has digest"));
  }
  SUBCASE("the same bundle, untouched but reframed, still reads") {
    const fs::path same = dir / "same.tar.zst";
    reframe(dir, bundle, same, [](std::string&, const std::vector<RawEntry>&) {});
    const RunResult r = run_trusted({"values", same.string(), "--registry", k_registry, "-o", (dir / "out").string()}, ws);
    INFO(r.err);
    CHECK(r.exit_code == 0);
    CHECK(fs::exists(dir / "out" / "plain.yaml"));
  }
  SUBCASE("recompressed as one frame: read front to back, each entry verified") {
    std::vector<TarItem> items = read_tar(bundle);
    bool found = false;
    for (auto& item : items) {
      if (item.path != chart_blob) continue;
      item.data[20] = static_cast<char>(item.data[20] ^ 0x01);
      found = true;
    }
    REQUIRE(found);
    const fs::path tampered = dir / "one-frame.tar.zst";
    write_tar(tampered, items);
    const RunResult r = run_trusted({"values", tampered.string(), "--registry", k_registry, "-o", (dir / "out").string()}, ws);
    INFO(r.err);
    CHECK(r.exit_code == k_integrity);
    CHECK(contains(r.err, chart_blob));
    CHECK_FALSE(fs::exists(dir / "out" / "plain.yaml"));
  }
  SUBCASE("recompressed as one frame, untouched: the overlay is the same as from the original") {
    const fs::path one = dir / "one-frame.tar.zst";
    write_tar(one, read_tar(bundle));
    REQUIRE(run_trusted({"values", one.string(), "--registry", k_registry, "-o", (dir / "a").string()}, ws).exit_code == 0);
    REQUIRE(run_trusted({"values", bundle.string(), "--registry", k_registry, "-o", (dir / "b").string()}, ws).exit_code == 0);
    CHECK(read_file(dir / "a" / "plain.yaml") == read_file(dir / "b" / "plain.yaml"));
    CHECK(contains(read_file(dir / "a" / "plain.yaml"), k_prefix + "library/nginx:1.25"));
  }
}

TEST_CASE("ferry values and ferry check refuse bad usage with exit 2") {
  require_tools(k_tools);
  TestDir dir;
  const Workspace ws = prepare(dir, 3);
  const fs::path bundle = pack_plain(dir, ws);
  SUBCASE("values BUNDLE without -o") {
    const RunResult r = run_trusted({"values", bundle.string(), "--registry", k_registry}, ws);
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "-o DIR"));
  }
  SUBCASE("values with both a bundle and --chart") {
    const RunResult r = run_trusted({"values", bundle.string(), "--chart", (dir / "plain").string(), "--registry", k_registry,
                               "-o", (dir / "out").string()}, ws);
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "not both"));
  }
  SUBCASE("values without a trusted key") {
    const RunResult r = run_ferry({"values", bundle.string(), "--registry", k_registry, "-o", (dir / "out").string()});
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "--pubkey"));
  }
  SUBCASE("check without helm names --helm") {
    const RunResult r = run_trusted({"check", bundle.string(), "--registry", k_registry, "--helm", (dir / "no-helm").string()}, ws);
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "helm not found"));
    CHECK(contains(r.err, "--helm"));
  }
  SUBCASE("check with a --values-dir lacking a release's overlay") {
    fs::create_directories(dir / "empty");
    const RunResult r = run_trusted({"check", bundle.string(), "--registry", k_registry, "--values-dir", (dir / "empty").string()}, ws);
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "no overlay " + (dir / "empty" / "plain.yaml").string() + " for release plain"));
  }
  SUBCASE("a bad --registry") {
    CHECK(run_trusted({"check", bundle.string(), "--registry", "https://x"}, ws).exit_code == k_usage);
  }
}

TEST_CASE("a bundle signed by another key is refused before anything is written") {
  require_tools(k_tools);
  TestDir dir;
  const Workspace ws = prepare(dir, 3);
  const fs::path bundle = pack_plain(dir, ws);
  REQUIRE(run_ferry({"keygen", "--out", (dir / "other").string()}).exit_code == 0);
  const RunResult r = run_ferry({"values", bundle.string(), "--registry", k_registry, "-o", (dir / "out").string(),
                                 "--pubkey", (dir / "other.pub").string()});
  CHECK(r.exit_code == k_integrity);
  CHECK_FALSE(fs::exists(dir / "out"));
}

}
