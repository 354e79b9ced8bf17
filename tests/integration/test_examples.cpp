// The example manifests as shipped (manifests/aistor.yaml, manifests/datachain.yaml), end
// to end against real servers: their images served by a source docker-registry (reached
// through --mirror, so the manifests keep their quay.io and docker.io references), their
// charts by a Helm HTTP repository holding several versions of each (`repo:` pointed at it),
// then `ferry unpack` into a TLS registry with basic auth: verify, push, values and check
// with the real helm. The result is then checked without ferry: skopeo reads every image
// back, and `helm template` with the overlays renders only images that are in the internal
// registry. The upgrade stage needs a cluster; here it is planned (`--skip-upgrade`, then
// `ferry upgrade --plan`).
// SPDX-License-Identifier: Apache-2.0
#include "common/chart_repo_server.hpp"
#include "common/registry_fixture.hpp"
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using namespace ferry::itest;
using ferry::test::ChartRepoServer;
using ferry::test::RegistryOptions;
using ferry::test::RegistryServer;
using nlohmann::json;
using Strings = std::vector<std::string>;

namespace {

const Strings k_tools = {"docker-registry", "umoci", "skopeo", "helm", "sha256sum"};
const std::string k_licence = "LICENCE-7d1e-SITE-ONLY";
constexpr int k_usage = 2;

fs::path repo_root() {
  const char* data = std::getenv("FERRY_TEST_DATA");
  REQUIRE_MESSAGE(data, "FERRY_TEST_DATA is not set (run the tests with `meson test`)");
  return fs::path(data).parent_path().parent_path();
}

// The image references a manifest lists under `images:` (read with a line regex, not
// with ferry's parser).
Strings manifest_images(const std::string& manifest) {
  static const std::regex k_item(R"(^  - ((?:quay\.io|docker\.io)/\S+)\s*$)");
  Strings out;
  std::istringstream in(manifest);
  std::string line;
  bool in_images = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != ' ' && line[0] != '#') in_images = line.rfind("images:", 0) == 0;
    std::smatch m;
    if (in_images && std::regex_match(line, m, k_item)) out.push_back(m[1]);
  }
  return out;
}

// quay.io/minio/aistor/minio:T -> minio/aistor/minio:T (the path ferry push keeps).
std::string source_path(const std::string& ref) { return ref.substr(ref.find('/') + 1); }


std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// Everything both examples need: the source registry seeded with one distinct small image
// per reference, the chart repository, the internal registry, a signing key, and the
// manifests copied with `repo:` pointed at the chart repository.
class Site {
public:
  Site() : m_internal(RegistryOptions{.tls = true, .htpasswd = true}) {
    const std::string layout = (m_dir / "layout").string();
    must({"umoci", "init", "--layout", layout});
    std::set<std::string> seeded;
    for (const char* name : {"aistor", "datachain"}) {
      for (const auto& ref : manifest_images(read_file(repo_root() / "manifests" / (std::string(name) + ".yaml")))) {
        if (!seeded.insert(ref).second) continue;
        // Each image carries its own name, so that each has its own digest.
        const std::string tag = "i" + std::to_string(seeded.size());
        write_file(m_dir / "content" / tag / "name.txt", ref + "\n");
        must({"umoci", "new", "--image", layout + ":" + tag});
        must({"umoci", "insert", "--image", layout + ":" + tag, (m_dir / "content" / tag / "name.txt").string(),
              "/etc/image-name"});
        const std::string mirror = ref.rfind("quay.io/", 0) == 0 ? "quay/" : "docker/";
        ferry::test::push_with_skopeo(m_source, "oci:" + layout + ":" + tag, mirror + source_path(ref));
      }
    }
    REQUIRE(seeded.size() == 8);

    // The chart repository: every example chart, plus versions the constraints must skip
    // (aistor-operator 6.0.0 is outside ^5.2.0, aistor-objectstore 5.3.0 outside ~5.2.1,
    // studio 2.151.0-rc.1 is a pre-release).
    package("aistor", "aistor-operator", "");
    package("aistor", "aistor-operator", "6.0.0");
    package("aistor", "aistor-objectstore", "");
    package("aistor", "aistor-objectstore", "5.3.0");
    package("datachain", "studio", "");
    package("datachain", "studio", "2.151.0-rc.1");
    for (const char* repo : {"aistor", "datachain"}) must({"helm", "repo", "index", (m_dir / "repo" / repo).string()});
    m_charts = std::make_unique<ChartRepoServer>(m_dir / "repo");

    for (const char* name : {"aistor", "datachain"}) {
      const std::string text = read_file(repo_root() / "manifests" / (std::string(name) + ".yaml"));
      write_file(m_dir / "manifests" / (std::string(name) + ".yaml"),
                 replace_all(text, "https://charts.example.com", m_charts->url()));
    }
    fs::copy(repo_root() / "manifests/values", m_dir / "manifests/values", fs::copy_options::recursive);
    write_file(m_dir / "licence.txt", k_licence);
    const RunResult keygen = run_ferry({"keygen", "--out", (m_dir / "release").string()});
    REQUIRE_MESSAGE(keygen.exit_code == 0, keygen.err);
  }

  const TestDir& dir() const { return m_dir; }
  const RegistryServer& internal() const { return m_internal; }
  std::string target() const { return m_internal.host() + "/mirror"; }
  fs::path pub() const { return m_dir / "release.pub"; }
  fs::path chart_archive(const std::string& repo, const std::string& chart, const std::string& version) const {
    return m_dir / "repo" / repo / (chart + "-" + version + ".tgz");
  }

  // ferry pack of manifests/NAME.yaml; the bundle is NAME.tar.zst.
  RunResult pack(const std::string& name, Strings extra = {}) const {
    Strings args = {"pack", "-f", (m_dir / "manifests" / (name + ".yaml")).string(), "-o",
                    (m_dir / (name + ".tar.zst")).string(), "--key", (m_dir / "release.key").string(),
                    "--plain-http", "--mirror", "quay.io=" + m_source.host() + "/quay",
                    "--mirror", "docker.io=" + m_source.host() + "/docker"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_ferry(args, {.cwd = {}, .env = {{"SOURCE_DATE_EPOCH", "1700000000"}}, .input = {}});
  }
  fs::path bundle(const std::string& name) const { return m_dir / (name + ".tar.zst"); }

  // ferry unpack into the internal registry, password on standard input.
  RunResult unpack(const std::string& name, Strings extra) const {
    Strings args = {"unpack", bundle(name).string(), "--registry", target(), "--pubkey", pub().string(),
                    "--ca-file", m_internal.ca_file().string(), "--username", m_internal.options().username,
                    "--password-stdin", "--state-dir", (m_dir / "state").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_ferry(args, {.cwd = {}, .env = {}, .input = m_internal.options().password + "\n"});
  }

private:
  // helm package of manifests/charts/CHART into repo/REPO, at `version` (empty: as it is).
  void package(const std::string& repo, const std::string& chart, const std::string& version) {
    fs::path source = repo_root() / "manifests/charts" / chart;
    if (!version.empty()) {
      const fs::path copy = m_dir / "variants" / (chart + "-" + version) / chart;
      fs::create_directories(copy.parent_path());
      fs::copy(source, copy, fs::copy_options::recursive);
      must({"helm", "package", copy.string(), "--version", version, "-d", (m_dir / "repo" / repo).string()});
      return;
    }
    must({"helm", "package", source.string(), "-d", (m_dir / "repo" / repo).string()});
  }

  TestDir m_dir;
  RegistryServer m_source;
  RegistryServer m_internal;
  std::unique_ptr<ChartRepoServer> m_charts;
};

const json* chart_named(const json& charts, const std::string& name) {
  for (const auto& c : charts) {
    if (c["name"] == name) return &c;
  }
  return nullptr;
}

// helm template of a chart archive with values files and --set-file pairs; the image
// references it renders.
Strings helm_template(const std::string& release, const fs::path& chart, const std::vector<fs::path>& values,
                      const Strings& extra = {}) {
  Strings argv = {"helm", "template", release, chart.string()};
  for (const auto& v : values) argv.insert(argv.end(), {"-f", v.string()});
  argv.insert(argv.end(), extra.begin(), extra.end());
  return image_lines(must(argv));
}

// Every rendered image is under the internal registry and readable there by skopeo.
void check_internal(const Site& site, const Strings& images) {
  REQUIRE_FALSE(images.empty());
  for (const auto& image : images) {
    CAPTURE(image);
    REQUIRE(image.rfind(site.target() + "/", 0) == 0);
    const std::string repo_tag = image.substr(site.internal().host().size() + 1);
    CHECK(ferry::test::registry_digest(site.internal(), repo_tag).rfind("sha256:", 0) == 0);
  }
}

} // namespace

TEST_SUITE("examples") {

TEST_CASE("manifests/aistor.yaml: pack from a registry and a chart repository, unpack, and prove the images internal") {
  require_tools(k_tools);
  Site site;
  const RunResult packed = site.pack("aistor");
  INFO(packed.out, packed.err);
  REQUIRE(packed.exit_code == 0);
  must({"sh", "-c", "cd '" + site.dir().path().string() + "' && sha256sum -c aistor.sha256"});

  // The constraints picked 5.2.1 of both charts (not 6.0.0, not 5.3.0), from the repository.
  const json shown = json::parse(run_ferry({"inspect", site.bundle("aistor").string(), "--output", "json"}).out);
  const json* op = chart_named(shown["charts"], "aistor-operator");
  const json* store = chart_named(shown["charts"], "aistor-objectstore");
  REQUIRE(op);
  REQUIRE(store);
  CHECK((*op)["version"] == "5.2.1");
  CHECK((*store)["version"] == "5.2.1");
  CHECK(contains((*store)["sourceUrl"].get<std::string>(), "/aistor/aistor-objectstore-5.2.1.tgz"));
  CHECK(shown["images"].size() == 3);

  SUBCASE("without the licence (needed by the upgrade) nothing is pushed") {
    const RunResult r = site.unpack("aistor", {});
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "release aistor (namespace aistor): license"));
    CHECK_FALSE(fs::exists(site.internal().dir() / "storage/docker/registry/v2/repositories"));
  }

  SUBCASE("with the licence: push, values and check pass; helm template agrees") {
    const RunResult r = site.unpack("aistor", {"--skip-upgrade", "--set-file",
                                               "aistor:license=" + (site.dir() / "licence.txt").string()});
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(contains(r.out, "check      aistor-operator: 1 rendered image from the bundle under " + site.target()));
    CHECK(contains(r.out, "check      aistor: 3 rendered images from the bundle under " + site.target()));
    CHECK_FALSE(contains(r.out + r.err, k_licence));
    // check rendered with the site's licence, not a placeholder; the rules placed both images.
    CHECK_FALSE(contains(r.err, "placeholder values"));
    CHECK(contains(r.out, "placed by rule repositories.*.hostname (repositories.minio.hostname was its registry): "
                          "quay.io/minio/aistor/minio:RELEASE.2025-05-30T11-03-39Z"));
    CHECK_FALSE(contains(r.out, "no value places"));

    // Without ferry: the overlays (from `ferry values`) + helm template render only images
    // that skopeo finds in the internal registry.
    const fs::path overlays = site.dir() / "overlays";
    const RunResult values = run_ferry({"values", site.bundle("aistor").string(), "--registry", site.target(), "-o",
                                        overlays.string(), "--pubkey", site.pub().string()});
    INFO(values.err);
    REQUIRE(values.exit_code == 0);
    check_internal(site, helm_template("aistor-operator", site.chart_archive("aistor", "aistor-operator", "5.2.1"),
                                       {overlays / "aistor-operator.yaml"}));
    const Strings store_images =
        helm_template("aistor", site.chart_archive("aistor", "aistor-objectstore", "5.2.1"), {overlays / "aistor.yaml"},
                      {"--set-file", "license=" + (site.dir() / "licence.txt").string()});
    CHECK(store_images.size() == 3);
    check_internal(site, store_images);
    // Without the overlay the same render names quay.io: the overlay is what moved them.
    for (const auto& image : helm_template("aistor", site.chart_archive("aistor", "aistor-objectstore", "5.2.1"), {},
                                           {"--set-file", "license=" + (site.dir() / "licence.txt").string()})) {
      CHECK(image.rfind("quay.io/", 0) == 0);
    }

    // The upgrade, planned: CRDs first, the operator, then the object store.
    const RunResult plan = run_ferry({"upgrade", site.bundle("aistor").string(), "--registry", site.target(),
                                      "--pubkey", site.pub().string(), "--plan", "--set-file",
                                      "aistor:license=" + (site.dir() / "licence.txt").string()});
    INFO(plan.out, plan.err);
    REQUIRE(plan.exit_code == 0);
    const auto crds = plan.out.find("kubectl apply --server-side");
    const auto op_upgrade = plan.out.find("upgrade --install aistor-operator ");
    const auto store_upgrade = plan.out.find("upgrade --install aistor ");
    REQUIRE(crds != std::string::npos);
    REQUIRE(op_upgrade != std::string::npos);
    REQUIRE(store_upgrade != std::string::npos);
    CHECK(crds < op_upgrade);
    CHECK(op_upgrade < store_upgrade);
    CHECK(contains(plan.out, "--wait --timeout 10m"));
    CHECK_FALSE(contains(plan.out + plan.err, k_licence));
  }
}

TEST_CASE("manifests/datachain.yaml: images: auto with subcharts, pack, unpack, and prove the images internal") {
  require_tools(k_tools);
  Site site;
  const RunResult plan = site.pack("datachain", {"--dry-run"});
  INFO(plan.out, plan.err);
  REQUIRE(plan.exit_code == 0);
  CHECK(contains(plan.out, "studio 2.150.0"));
  CHECK_FALSE(fs::exists(site.bundle("datachain")));

  const RunResult packed = site.pack("datachain");
  INFO(packed.out, packed.err);
  REQUIRE(packed.exit_code == 0);
  must({"sh", "-c", "cd '" + site.dir().path().string() + "' && sha256sum -c datachain.sha256"});

  // Every image the manifest lists was also found in the chart, by values and by the
  // render (helm is on PATH), subcharts included.
  const json shown = json::parse(run_ferry({"inspect", site.bundle("datachain").string(), "--output", "json"}).out);
  REQUIRE(shown["images"].size() == 5);
  for (const auto& image : shown["images"]) {
    CAPTURE(image["ref"]);
    std::set<std::string> methods;
    for (const auto& f : image["foundBy"]) methods.insert(f["method"].get<std::string>());
    CHECK(methods.count("values") == 1);
    CHECK(methods.count("render") == 1);
  }

  const RunResult r = site.unpack("datachain", {"--skip-upgrade"});
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.out, "check      studio: 5 rendered images from the bundle under " + site.target()));

  const fs::path overlays = site.dir() / "overlays";
  const RunResult values = run_ferry({"values", site.bundle("datachain").string(), "--registry", site.target(), "-o",
                                      overlays.string(), "--pubkey", site.pub().string()});
  INFO(values.err);
  REQUIRE(values.exit_code == 0);
  // global.imageRegistry carries it for every subchart.
  CHECK(contains(read_file(overlays / "studio.yaml"), "imageRegistry: " + site.target()));
  const Strings images = helm_template("studio", site.chart_archive("datachain", "studio", "2.150.0"),
                                       {site.dir() / "manifests/values/studio.yaml", overlays / "studio.yaml"});
  CHECK(std::set<std::string>(images.begin(), images.end()).size() == 5);
  check_internal(site, images);
}

}
