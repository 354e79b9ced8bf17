// ferry values against real helm: the overlay it writes for three small charts
// (bitnami-like with a subchart, ingress-nginx-like, plain image strings) makes
// `helm template` render every image from the internal registry — except one hard-coded
// in a template, which no value reaches and which must stay visibly external.
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

const std::string k_registry = "127.0.0.1:5000/mirror";
const std::string k_prefix = k_registry + "/";
constexpr int k_usage = 2;

fs::path chart_dir(const std::string& name) {
  const char* data = std::getenv("FERRY_TEST_DATA");
  REQUIRE_MESSAGE(data, "FERRY_TEST_DATA is not set (run the tests with `meson test`)");
  return fs::path(data) / "values" / "charts" / name;
}


std::vector<std::string> render(const fs::path& chart, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {"helm", "template", "rel", chart.string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return image_lines(must(argv));
}

// Runs `ferry values` for `chart`, renders with the overlay, returns the rendered images.
std::vector<std::string> rewrite_and_render(const TestDir& dir, const std::string& chart) {
  const fs::path overlay = dir / (chart + "-overlay.yaml");
  const RunResult r = run_ferry({"values", "--chart", chart_dir(chart).string(), "--registry", k_registry, "-o",
                                 overlay.string()});
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.out, "overlay written to " + overlay.string()));
  REQUIRE(fs::exists(overlay));
  return render(chart_dir(chart), {"-f", overlay.string()});
}

bool internal(const std::string& image) { return image.rfind(k_prefix, 0) == 0; }

} // namespace

TEST_SUITE("values") {

TEST_CASE("a bitnami-style chart with a subchart renders every image from the internal registry") {
  require_tools({"helm"});
  TestDir dir;
  const std::vector<std::string> before = render(chart_dir("webapp"));
  REQUIRE(before.size() == 4);
  for (const auto& image : before) CHECK_MESSAGE(!internal(image), image);

  const std::vector<std::string> after = rewrite_and_render(dir, "webapp");
  REQUIRE(after.size() == before.size());
  for (const auto& image : after) CHECK_MESSAGE(internal(image), image);
  // The source path is kept, Docker Hub's included (global.imageRegistry replaces docker.io).
  CHECK(std::find(after.begin(), after.end(), k_prefix + "bitnami/nginx:1.25.3-debian-11-r1") != after.end());
  CHECK(std::find(after.begin(), after.end(), k_prefix + "bitnami/postgresql:15.4.0-debian-11-r10") != after.end());
  CHECK(std::find(after.begin(), after.end(), k_prefix + "fluent/fluent-bit:2.2.0") != after.end());
}

TEST_CASE("an ingress-nginx-style chart renders every image from the internal registry, digests kept") {
  require_tools({"helm"});
  TestDir dir;
  const std::vector<std::string> after = rewrite_and_render(dir, "ingress");
  REQUIRE(after.size() == 3);
  for (const auto& image : after) CHECK_MESSAGE(internal(image), image);
  CHECK(std::find(after.begin(), after.end(),
                  k_prefix + "ingress-nginx/controller:v1.9.4@sha256:"
                             "5b161f051d017e55d358435f295f5e9a297e66158f136321d9b04520ec6c48a3") != after.end());
}

TEST_CASE("a plain chart is rewritten except for the image hard-coded in a template, which stays external") {
  require_tools({"helm"});
  TestDir dir;
  const std::vector<std::string> after = rewrite_and_render(dir, "plain");
  REQUIRE(after.size() == 4);
  const std::string hard_coded = "docker.io/library/alpine:3.19";
  int external = 0;
  for (const auto& image : after) {
    if (image == hard_coded) {
      ++external; // no value feeds it: ferry values cannot reach it, the check stage must report it
    } else {
      CHECK_MESSAGE(internal(image), image);
    }
  }
  CHECK(external == 1);
  CHECK(std::find(after.begin(), after.end(), k_prefix + "library/nginx:1.25") != after.end());
}

TEST_CASE("ferry values --output json reports every change and the overlay") {
  require_tools({"helm"});
  TestDir dir;
  const fs::path overlay = dir / "overlay.yaml";
  const RunResult r = run_ferry({"values", "--chart", chart_dir("webapp").string(), "--registry", k_registry, "-o",
                                 overlay.string(), "--output", "json"});
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  const json j = json::parse(r.out);
  CHECK(j["chart"] == chart_dir("webapp").string());
  CHECK(j["registry"] == k_registry);
  CHECK(j["pinDigests"] == false);
  CHECK(j["overlayFile"] == overlay.string());
  CHECK(j["overlay"] == read_file(overlay));
  REQUIRE(j["changes"].is_array());
  REQUIRE(j["skipped"].is_array());
  std::vector<std::string> paths;
  for (const auto& c : j["changes"]) {
    for (const char* key : {"path", "old", "new", "detector", "image"}) CHECK_MESSAGE(c[key].is_string(), key);
    paths.push_back(c["path"]);
  }
  CHECK(paths == std::vector<std::string>{"global.imageRegistry", "image.registry", "metrics.image.registry",
                                          "sidecars[0].image", "db.image.registry"});
  CHECK(j["changes"][0]["detector"] == "global.imageRegistry");
  CHECK(j["changes"][0]["old"] == "");
  CHECK(j["changes"][0]["new"] == k_registry);
  CHECK(j["changes"][3]["detector"] == "image string");
  CHECK(j["changes"][3]["new"] == k_prefix + "fluent/fluent-bit:2.2.0");
  CHECK(j["changes"][4]["detector"] == "registry/repository map");
  CHECK(j["changes"][4]["image"] == "docker.io/bitnami/postgresql:15.4.0-debian-11-r10");
}

TEST_CASE("ferry values prints the overlay on stdout without -o, the same bytes each run") {
  require_tools({"helm"});
  TestDir dir;
  const RunResult a = run_ferry({"values", "--chart", chart_dir("plain").string(), "--registry", k_registry});
  const RunResult b = run_ferry({"values", "--chart", chart_dir("plain").string(), "--registry", k_registry});
  INFO(a.err);
  REQUIRE(a.exit_code == 0);
  CHECK(a.out == b.out);
  CHECK(contains(a.err, "3 values rewritten")); // the report goes to stderr
  write_file(dir / "overlay.yaml", a.out);
  const std::vector<std::string> images = render(chart_dir("plain"), {"-f", (dir / "overlay.yaml").string()});
  CHECK(std::count_if(images.begin(), images.end(), internal) == 3);
}

TEST_CASE("ferry values refuses bad flags with exit code 2 and writes nothing") {
  require_tools({"helm"});
  TestDir dir;
  const fs::path overlay = dir / "overlay.yaml";
  const std::string chart = chart_dir("plain").string();
  SUBCASE("a registry with a scheme") {
    const RunResult r = run_ferry({"values", "--chart", chart, "--registry", "https://reg.example", "-o", overlay.string()});
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "https://reg.example"));
  }
  SUBCASE("no --registry") {
    CHECK(run_ferry({"values", "--chart", chart, "-o", overlay.string()}).exit_code == k_usage);
  }
  SUBCASE("a bundle argument (not accepted yet)") {
    CHECK(run_ferry({"values", "bundle.tar.zst", "--chart", chart, "--registry", k_registry, "-o", overlay.string()})
              .exit_code == k_usage);
  }
  SUBCASE("a chart that does not exist") {
    const RunResult r = run_ferry({"values", "--chart", (dir / "nope").string(), "--registry", k_registry, "-o",
                                   overlay.string()});
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "nope"));
  }
  SUBCASE("a values file that does not parse, named with its line") {
    write_file(dir / "bad.yaml", "image: nginx\nservice: : x\n");
    const RunResult r = run_ferry({"values", "--chart", chart, "-f", (dir / "bad.yaml").string(), "--registry",
                                   k_registry, "-o", overlay.string()});
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "bad.yaml:2:"));
  }
  CHECK_FALSE(fs::exists(overlay));
}

} // TEST_SUITE
