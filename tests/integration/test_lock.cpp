// The lock file and reproducibility: pack writes MANIFEST.lock.json, `ferry lock` writes
// the same without downloading a layer, `pack --locked` packs exactly what it records
// (a newer chart release is not taken) and fails naming what moved upstream (a tag pushed
// again, a file changed), and the same lock gives the same bundle bytes whatever -j, the
// cache's state or the directory packed from. Images come from a real docker-registry,
// charts from a Helm repository served on 127.0.0.1.
// SPDX-License-Identifier: Apache-2.0
#include "common/chart_repo_server.hpp"
#include "common/registry_fixture.hpp"
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <sstream>

namespace fs = std::filesystem;
using namespace ferry::itest;
using ferry::test::ChartRepoServer;
using ferry::test::RegistryServer;
using nlohmann::json;
using Strings = std::vector<std::string>;

namespace {

const Strings k_tools = {"docker-registry", "umoci", "skopeo", "helm", "sha256sum"};
constexpr int k_failure = 1;
constexpr int k_usage = 2;

std::string sha256_file(const fs::path& file) { return must({"sha256sum", file.string()}).substr(0, 64); }

// A source registry with two images (one of them a 2-platform index), a chart repository,
// a file, a signing key and a manifest using them all, in DIR/inputs.
class Inputs {
public:
  Inputs() {
    const std::string layout = (m_dir / "layout").string();
    must({"umoci", "init", "--layout", layout});
    for (const std::string tag : {"web", "api", "api2"}) {
      write_file(m_dir / "content" / tag / "id.txt", tag + "\n");
      must({"umoci", "new", "--image", layout + ":" + tag});
      must({"umoci", "insert", "--image", layout + ":" + tag, (m_dir / "content" / tag / "id.txt").string(), "/id.txt"});
    }
    ferry::test::push_with_skopeo(m_registry, "oci:" + layout + ":web", "shop/web:1.0");
    ferry::test::push_with_skopeo(m_registry, "oci:" + layout + ":api", "shop/api:1.0");

    for (const std::string version : {"1.0.0", "1.1.0"}) add_chart_version(version);
    m_charts = std::make_unique<ChartRepoServer>(m_dir / "repo");

    fs::create_directories(m_dir / "inputs");
    write_file(m_dir / "inputs/files/notes.txt", "release notes\n");
    write_file(m_dir / "inputs/bundle.yaml",
               "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: shop, version: \"1\"}\n"
               "images:\n"
               "  - " + m_registry.host() + "/shop/web:1.0\n"
               "  - " + m_registry.host() + "/shop/api:1.0\n"
               "charts:\n"
               "  - {name: shop, repo: \"" + m_charts->url() + "\", version: \"^1.0.0\"}\n"
               "files:\n"
               "  - {path: docs/notes.txt, source: ./files/notes.txt}\n");
    const RunResult keygen = run_ferry({"keygen", "--out", (m_dir / "release").string()});
    REQUIRE_MESSAGE(keygen.exit_code == 0, keygen.err);
  }

  fs::path manifest() const { return m_dir / "inputs/bundle.yaml"; }
  fs::path lock() const { return m_dir / "inputs/bundle.lock.json"; }
  const TestDir& dir() const { return m_dir; }
  const RegistryServer& registry() const { return m_registry; }

  // `helm package` of chart shop at `version` into the repository, and its index again.
  void add_chart_version(const std::string& version) {
    const fs::path chart = m_dir / "charts" / version / "shop";
    write_file(chart / "Chart.yaml", "apiVersion: v2\nname: shop\nversion: " + version + "\n");
    write_file(chart / "templates/cm.yaml",
               "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shop}\ndata: {v: \"" + version + "\"}\n");
    fs::create_directories(m_dir / "repo");
    must({"helm", "package", chart.string(), "-d", (m_dir / "repo").string()});
    must({"helm", "repo", "index", (m_dir / "repo").string()});
  }
  // Pushes another image under shop/api:1.0: the tag moves.
  void move_api_tag() {
    ferry::test::push_with_skopeo(m_registry, "oci:" + (m_dir / "layout").string() + ":api2", "shop/api:1.0");
  }

  RunResult pack(const fs::path& out, Strings extra = {}, const fs::path& manifest = {}) const {
    Strings args = {"pack", "-f", (manifest.empty() ? this->manifest() : manifest).string(), "-o", out.string(), "--key",
                    (m_dir / "release.key").string(), "--plain-http"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_ferry(args, {.cwd = {}, .env = {{"SOURCE_DATE_EPOCH", "1700000000"}}, .input = {}});
  }

private:
  TestDir m_dir;
  RegistryServer m_registry;
  std::unique_ptr<ChartRepoServer> m_charts;
};

} // namespace

TEST_SUITE("lock") {

TEST_CASE("pack writes the lock beside the manifest; ferry lock writes the same bytes without downloading a layer") {
  require_tools(k_tools);
  Inputs in;
  const RunResult packed = in.pack(in.dir() / "a.tar.zst");
  INFO(packed.out, packed.err);
  REQUIRE(packed.exit_code == 0);
  CHECK(contains(packed.out, "wrote " + in.lock().string()));
  REQUIRE(fs::exists(in.lock()));
  const json lock = json::parse(read_file(in.lock()));
  CHECK(lock["lockVersion"] == 1);
  REQUIRE(lock["images"].size() == 2);
  CHECK(lock["images"][0]["source"] == in.registry().host() + "/shop/web:1.0");
  // The digest the registry serves for the tag, as skopeo reads it.
  CHECK(lock["images"][0]["digest"] == ferry::test::registry_digest(in.registry(), "shop/web:1.0"));
  REQUIRE(lock["charts"].size() == 1);
  CHECK(lock["charts"][0]["constraint"] == "^1.0.0");
  CHECK(lock["charts"][0]["version"] == "1.1.0");
  CHECK(contains(lock["charts"][0]["url"].get<std::string>(), "/shop-1.1.0.tgz"));
  CHECK(lock["charts"][0]["digest"] == "sha256:" + sha256_file(in.dir() / "repo/shop-1.1.0.tgz"));
  CHECK(lock["files"][0]["digest"] == "sha256:" + sha256_file(in.dir() / "inputs/files/notes.txt"));

  // ferry lock: the same file, and no layer GET at the registry.
  const std::string log_before = in.registry().log();
  const fs::path second = in.dir() / "second.lock.json";
  const RunResult locked = run_ferry({"lock", "-f", in.manifest().string(), "-o", second.string(), "--plain-http"});
  INFO(locked.out, locked.err);
  REQUIRE(locked.exit_code == 0);
  CHECK(read_file(second) == read_file(in.lock()));
  const std::string log_after = in.registry().log().substr(log_before.size());
  std::size_t blob_gets = 0;
  std::istringstream lines(log_after);
  for (std::string line; std::getline(lines, line);) {
    // The access-log line of each request: `127.0.0.1 - - [...] "GET /v2/REPO/blobs/sha256:… HTTP/1.1" 200 …`.
    if (line.rfind("127.0.0.1 - -", 0) == 0 && contains(line, "\"GET /v2/") && contains(line, "/blobs/sha256:")) ++blob_gets;
  }
  // Configs are read (2), layers are not (2 more would make 4).
  CHECK(blob_gets == 2);

  SUBCASE("--no-lock writes none; --lock-file names another place") {
    fs::remove(in.lock());
    REQUIRE(in.pack(in.dir() / "b.tar.zst", {"--no-lock"}).exit_code == 0);
    CHECK_FALSE(fs::exists(in.lock()));
    REQUIRE(in.pack(in.dir() / "c.tar.zst", {"--lock-file", (in.dir() / "elsewhere.json").string()}).exit_code == 0);
    CHECK(read_file(in.dir() / "elsewhere.json") == read_file(second));
  }
}

TEST_CASE("pack --locked keeps the locked chart version when a newer one appears, and gives the same bytes") {
  require_tools(k_tools);
  Inputs in;
  REQUIRE(in.pack(in.dir() / "first.tar.zst").exit_code == 0);
  in.add_chart_version("1.2.0");
  const std::string lock_before = read_file(in.lock());

  const RunResult locked = in.pack(in.dir() / "again.tar.zst", {"--locked"});
  INFO(locked.out, locked.err);
  REQUIRE(locked.exit_code == 0);
  CHECK(contains(locked.out, "packed as locked"));
  CHECK(sha256_file(in.dir() / "again.tar.zst") == sha256_file(in.dir() / "first.tar.zst"));
  CHECK(read_file(in.lock()) == lock_before); // --locked reads the lock, never rewrites it

  // Without --locked the constraint takes the new release (and the lock follows).
  const RunResult fresh = in.pack(in.dir() / "fresh.tar.zst");
  REQUIRE(fresh.exit_code == 0);
  CHECK(json::parse(read_file(in.lock()))["charts"][0]["version"] == "1.2.0");
}

TEST_CASE("pack --locked fails before downloading anything when a tag moved or a file changed, naming each") {
  require_tools(k_tools);
  Inputs in;
  REQUIRE(in.pack(in.dir() / "first.tar.zst").exit_code == 0);
  const std::string locked_api = ferry::test::registry_digest(in.registry(), "shop/api:1.0");
  in.move_api_tag();
  write_file(in.dir() / "inputs/files/notes.txt", "release notes, edited\n");

  const RunResult r = in.pack(in.dir() / "moved.tar.zst", {"--locked"});
  INFO(r.out, r.err);
  CHECK(r.exit_code == k_failure);
  CHECK(contains(r.err, "2 sources differ from the lock (--locked)"));
  CHECK(contains(r.err, "image " + in.registry().host() + "/shop/api:1.0: the lock has " + locked_api +
                            ", the source now " + ferry::test::registry_digest(in.registry(), "shop/api:1.0")));
  CHECK(contains(r.err, "file docs/notes.txt (./files/notes.txt): the lock has"));
  CHECK(contains(r.err, "ferry lock -f"));
  CHECK_FALSE(fs::exists(in.dir() / "moved.tar.zst"));
  CHECK_FALSE(fs::exists(in.dir() / "moved.sha256"));

  SUBCASE("without a lock file --locked is a usage error naming it") {
    fs::remove(in.lock());
    const RunResult none = in.pack(in.dir() / "none.tar.zst", {"--locked"});
    CHECK(none.exit_code == k_usage);
    CHECK(contains(none.err, "no lock file " + in.lock().string()));
  }
}

TEST_CASE("the same lock gives byte-identical bundles across -j, cache states and directories") {
  require_tools(k_tools);
  Inputs in;
  const fs::path cache = in.dir() / "cache";
  const RunResult first = in.pack(in.dir() / "j1.tar.zst", {"-j", "1", "--cache", cache.string()});
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  const std::string expected = sha256_file(in.dir() / "j1.tar.zst");
  // Warm cache, 8 jobs, locked.
  REQUIRE(in.pack(in.dir() / "j8.tar.zst", {"-j", "8", "--cache", cache.string(), "--locked"}).exit_code == 0);
  CHECK(sha256_file(in.dir() / "j8.tar.zst") == expected);
  // No cache at all.
  REQUIRE(in.pack(in.dir() / "nocache.tar.zst", {"--no-cache", "--locked"}).exit_code == 0);
  CHECK(sha256_file(in.dir() / "nocache.tar.zst") == expected);
  // The inputs copied elsewhere (another machine's paths), with the lock.
  fs::create_directories(in.dir() / "elsewhere/deeper");
  fs::copy(in.dir() / "inputs", in.dir() / "elsewhere/deeper/inputs", fs::copy_options::recursive);
  const RunResult moved = in.pack(in.dir() / "elsewhere/out.tar.zst", {"--locked", "--no-cache"},
                                  in.dir() / "elsewhere/deeper/inputs/bundle.yaml");
  INFO(moved.err);
  REQUIRE(moved.exit_code == 0);
  CHECK(sha256_file(in.dir() / "elsewhere/out.tar.zst") == expected);
}

}
