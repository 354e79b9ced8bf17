// `ferry serve` answering real clients: skopeo copies images out of it, helm pulls the
// chart, curl fetches ranges, ferry's own registry client packs from it (as a mirror) and
// its push is refused. Each is checked against the bundle's signed digests.
// SPDX-License-Identifier: Apache-2.0
#include "common/hostile_server.hpp"
#include "common/registry_fixture.hpp"
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <csignal>
#include <thread>

namespace fs = std::filesystem;
using namespace ferry::itest;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

const std::vector<std::string> k_tools = {"umoci", "skopeo", "helm", "curl", "openssl", "sha256sum", "tar"};
const RunOptions k_epoch{.cwd = {}, .env = {{"SOURCE_DATE_EPOCH", "1700000000"}}, .input = {}};

struct Packed {
  Fixtures f;
  fs::path bundle;
  json descriptor; // `ferry inspect --output json`
};

Packed pack_fixtures(const TestDir& dir) {
  Packed p{make_fixtures(dir.path()), dir / "demo.tar.zst", {}};
  const RunResult r =
      run_ferry({"pack", "-f", p.f.manifest.string(), "-o", p.bundle.string(), "--key", p.f.key.string()}, k_epoch);
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const RunResult i = run_ferry({"inspect", p.bundle.string(), "--pubkey", p.f.pub.string(), "--output", "json"});
  REQUIRE_MESSAGE(i.exit_code == 0, i.err);
  p.descriptor = json::parse(i.out);
  return p;
}

// `ferry serve ARGS --listen 127.0.0.1:PORT` in the background, ready once /v2/ answers.
class Served {
public:
  Served(const TestDir& dir, std::vector<std::string> args, const std::string& scheme = "http",
         const fs::path& ca = {})
      : m_port(ferry::test::free_local_port()), m_scheme(scheme) {
    const char* bin = std::getenv("FERRY_BIN");
    REQUIRE(bin != nullptr);
    std::vector<std::string> argv{bin, "serve"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--listen", host(), "-v"});
    m_process = std::make_unique<Background>(argv, RunOptions{.cwd = {}, .env = isolated_env(dir), .input = {}});
    std::vector<std::string> probe{"curl", "-sf", "-o", "/dev/null"};
    if (!ca.empty()) probe.insert(probe.end(), {"--cacert", ca.string()});
    probe.push_back(url() + "/v2/");
    for (int i = 0; i < 200; ++i) {
      if (run(probe).exit_code == 0) return;
      if (!m_process->running()) break;
      std::this_thread::sleep_for(50ms);
    }
    const RunResult r = stop();
    FAIL("ferry serve did not answer on " << url() << "; exit " << r.exit_code << "\n" << r.out << r.err);
  }
  ~Served() {
    if (!m_stopped) stop();
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(m_port); }
  std::string url() const { return m_scheme + "://" + host(); }
  // SIGTERM, then what it printed.
  RunResult stop() {
    m_stopped = true;
    m_process->signal(SIGTERM);
    return m_process->wait();
  }

private:
  std::uint16_t m_port;
  std::string m_scheme;
  std::unique_ptr<Background> m_process;
  bool m_stopped = false;
};

std::string sha256_of_file(const fs::path& file) {
  const std::string out = must({"sha256sum", file.string()});
  return "sha256:" + out.substr(0, 64);
}

// The digest skopeo reads for REF from the served registry (its raw manifest, hashed).
std::string served_digest(const std::string& ref, const std::vector<std::string>& tls_flags) {
  std::vector<std::string> argv{"skopeo", "inspect", "--raw"};
  argv.insert(argv.end(), tls_flags.begin(), tls_flags.end());
  argv.push_back("docker://" + ref);
  const std::string raw = must(argv);
  const TestDir scratch;
  write_file(scratch / "raw", raw);
  return sha256_of_file(scratch / "raw");
}

} // namespace

TEST_SUITE("serve") {

TEST_CASE("serve BUNDLE: skopeo copies every image, helm pulls the chart, curl gets ranges; all match the bundle") {
  require_tools(k_tools);
  TestDir dir;
  const Packed p = pack_fixtures(dir);
  Served served(dir, {p.bundle.string(), "--pubkey", p.f.pub.string()});
  const std::vector<std::string> plain = {"--tls-verify=false"};

  SUBCASE("every image by tag, with the bundle's digest, copied whole (indexes with every platform)") {
    REQUIRE(p.descriptor["images"].size() == 4);
    for (const auto& image : p.descriptor["images"]) {
      const std::string ref = image["ref"];
      const std::string path = ref.substr(ref.find('/') + 1); // the source path without its host
      INFO(ref);
      CHECK(served_digest(served.host() + "/" + path, plain) == image["digest"]);
      const fs::path out = dir / ("copy-" + std::to_string(std::hash<std::string>{}(ref)));
      must({"skopeo", "copy", "--all", "--src-tls-verify=false", "docker://" + served.host() + "/" + path,
            "dir:" + out.string()});
      // skopeo verified every blob it copied against its digest; dir: keeps the manifest
      // (or index) as served, byte for byte.
      CHECK(sha256_of_file(out / "manifest.json") == image["digest"]);
    }
  }
  SUBCASE("helm pulls the chart by its version, and the archive is the one the bundle signed") {
    const json& chart = p.descriptor["charts"][0];
    const fs::path out = dir / "helm-pull";
    fs::create_directories(out);
    const RunResult r = run({"helm", "pull", "oci://" + served.host() + "/charts/demo", "--version", "0.3.1",
                             "--destination", out.string()},
                            {.cwd = {}, .env = isolated_env(dir), .input = {}});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK(sha256_of_file(out / "demo-0.3.1.tgz") == chart["archiveDigest"]);
  }
  SUBCASE("catalog, tags, Range and HEAD as the distribution spec says") {
    const json catalog = json::parse(must({"curl", "-sf", served.url() + "/v2/_catalog"}));
    CHECK(catalog["repositories"] == json{"charts/demo", "example/app1", "team/app1", "team/app2", "team/multi"});
    const json tags = json::parse(must({"curl", "-sf", served.url() + "/v2/team/multi/tags/list"}));
    CHECK(tags == json{{"name", "team/multi"}, {"tags", {"2.0"}}});

    // The largest blob, fetched in two ranges, joins into bytes with its digest.
    const json signed_descriptor = json::parse(must({"tar", "--zstd", "-xOf", p.bundle.string(), "ferry.json"}));
    json largest;
    for (const auto& b : signed_descriptor["blobs"]) {
      if (largest.is_null() || b["size"] > largest["size"]) largest = b;
    }
    const std::string digest = largest["digest"];
    const std::uint64_t size = largest["size"];
    const std::string blob_url = served.url() + "/v2/team/app1/blobs/" + digest;
    const fs::path joined = dir / "joined";
    must({"sh", "-c", "curl -sf -r 0-999 \"$0\" > \"$1\" && curl -sf -r 1000- \"$0\" >> \"$1\"", blob_url,
          joined.string()});
    CHECK(fs::file_size(joined) == size);
    CHECK(sha256_of_file(joined) == digest);
    const std::string head = must({"curl", "-sfI", blob_url});
    CHECK(ferry::test::contains(head, "Content-Length: " + std::to_string(size)));
    CHECK(ferry::test::contains(head, "Docker-Content-Digest: " + digest));
    const std::string outside =
        must({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-r", std::to_string(size) + "-", blob_url});
    CHECK(outside == "416");
  }
  SUBCASE("writes are refused with 405, and ferry push names the refusal") {
    const std::string code = must({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                                   served.url() + "/v2/team/app1/blobs/uploads/"});
    CHECK(code == "405");
    const RunResult push = run_ferry({"push", p.bundle.string(), "--pubkey", p.f.pub.string(), "--registry",
                                      served.host() + "/copy", "--plain-http", "--retries", "0"},
                                     {.cwd = {}, .env = isolated_env(dir), .input = {}});
    CHECK(push.exit_code == 4);
    CHECK(ferry::test::contains(push.err, "405"));
  }
  const RunResult end = served.stop();
  CHECK(end.exit_code == 0);
  CHECK(ferry::test::contains(end.out, "serving 5 repositories on " + served.url()));
}

TEST_CASE("serve DIR over TLS: ferry pack pulls through it as a mirror and gets the same digests") {
  require_tools(k_tools);
  TestDir dir;
  const Packed p = pack_fixtures(dir);
  const fs::path extracted = dir / "extracted";
  const RunResult x = run_ferry({"extract", p.bundle.string(), "--pubkey", p.f.pub.string(), "-o", extracted.string()});
  REQUIRE_MESSAGE(x.exit_code == 0, x.err);
  const ferry::test::TestCa ca = ferry::test::make_test_ca(dir / "pki", "ca");
  const ferry::test::TlsIdentity id =
      ferry::test::make_server_identity(dir / "pki", "server", ca, "IP:127.0.0.1, DNS:localhost");
  fs::permissions(id.key_file, fs::perms::owner_read | fs::perms::owner_write);
  Served served(dir,
                {extracted.string(), "--pubkey", p.f.pub.string(), "--cert-file", id.cert_file.string(), "--key-file",
                 id.key_file.string(), "--prefix", "mirror"},
                "https", ca.cert_file);

  // skopeo trusts the CA and reads the image under the prefix.
  const fs::path certs = dir / "skopeo-certs";
  fs::create_directories(certs);
  fs::copy_file(ca.cert_file, certs / "ca.crt");
  const json& app2 = p.descriptor["images"][1];
  REQUIRE(app2["ref"] == "example.com/team/app2:1.0");
  CHECK(served_digest(served.host() + "/mirror/team/app2:1.0", {"--cert-dir", certs.string()}) == app2["digest"]);

  // ferry's registry client: a manifest of the bundle's images, pulled through the
  // served registry as the mirror of their registries.
  const fs::path manifest = dir / "again.yaml";
  write_file(manifest, "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: again, version: \"1\"}\nimages:\n"
                       "  - example.com/team/app1:1.0\n  - example.com/team/app2:1.0\n  - example.com/team/multi:2.0\n"
                       "  - example/app1:1.0\n");
  const RunResult again = run_ferry({"pack", "-f", manifest.string(), "-o", (dir / "again.tar.zst").string(), "--key",
                                     p.f.key.string(), "--no-cache", "--ca-file", ca.cert_file.string(), "--mirror",
                                     "example.com=" + served.host() + "/mirror", "--mirror",
                                     "docker.io=" + served.host() + "/mirror"},
                                    {.cwd = {}, .env = isolated_env(dir), .input = {}});
  REQUIRE_MESSAGE(again.exit_code == 0, again.err);
  const RunResult i = run_ferry({"inspect", (dir / "again.tar.zst").string(), "--output", "json"});
  REQUIRE_MESSAGE(i.exit_code == 0, i.err);
  std::map<std::string, std::string> original;
  for (const auto& image : p.descriptor["images"]) original[image["ref"]] = image["digest"];
  std::map<std::string, std::string> repacked;
  const json repacked_descriptor = json::parse(i.out);
  for (const auto& image : repacked_descriptor["images"]) repacked[image["ref"]] = image["digest"];
  CHECK(repacked == original);
}

TEST_CASE("serve refuses what it cannot vouch for, before it listens") {
  require_tools(k_tools);
  TestDir dir;
  const Packed p = pack_fixtures(dir);
  const auto env = RunOptions{.cwd = {}, .env = isolated_env(dir), .input = {}};
  const std::string listen = "127.0.0.1:" + std::to_string(ferry::test::free_local_port());

  SUBCASE("a blob changed in an extracted directory: exit 3 naming it") {
    const fs::path extracted = dir / "extracted";
    REQUIRE(run_ferry({"extract", p.bundle.string(), "--pubkey", p.f.pub.string(), "-o", extracted.string()}).exit_code == 0);
    const std::string layer = p.descriptor["images"][0]["digest"];
    fs::path victim;
    for (const auto& e : fs::directory_iterator(extracted / "blobs/sha256")) {
      if (fs::file_size(e.path()) > 1000) victim = e.path();
    }
    REQUIRE(!victim.empty());
    std::string bytes = read_file(victim);
    bytes[bytes.size() / 2] ^= 1;
    write_file(victim, bytes);
    const RunResult r = run_ferry({"serve", extracted.string(), "--pubkey", p.f.pub.string(), "--listen", listen}, env);
    CHECK(r.exit_code == 3);
    CHECK(ferry::test::contains(r.err, victim.filename().string()));
    CHECK(ferry::test::contains(r.err, "hashes to"));
  }
  SUBCASE("a directory without ferry.json, an unsigned run without a key, a split bundle") {
    fs::create_directories(dir / "empty");
    RunResult r = run_ferry({"serve", (dir / "empty").string(), "--pubkey", p.f.pub.string(), "--listen", listen}, env);
    CHECK(r.exit_code == 2);
    CHECK(ferry::test::contains(r.err, "ferry extract"));
    r = run_ferry({"serve", p.bundle.string(), "--listen", listen}, env);
    CHECK(r.exit_code == 2);
    const fs::path split = dir / "split.tar.zst";
    const RunResult s = run_ferry({"pack", "-f", p.f.manifest.string(), "-o", split.string(), "--key", p.f.key.string(),
                                   "--split", "300K"},
                                  k_epoch);
    REQUIRE_MESSAGE(s.exit_code == 0, s.err);
    r = run_ferry({"serve", (dir / "split.000.tar.zst").string(), "--pubkey", p.f.pub.string(), "--listen", listen}, env);
    CHECK(r.exit_code == 2);
    CHECK(ferry::test::contains(r.err, "split bundle"));
    CHECK(ferry::test::contains(r.err, "ferry extract"));
  }
  SUBCASE("a bundle recompressed as one zstd stream: use extract") {
    const fs::path tar = dir / "plain.tar";
    must({"sh", "-c", "zstd -dc \"$0\" > \"$1\" && zstd -q -19 \"$1\" -o \"$2\"", p.bundle.string(), tar.string(),
          (dir / "recompressed.tar.zst").string()});
    const RunResult r = run_ferry(
        {"serve", (dir / "recompressed.tar.zst").string(), "--pubkey", p.f.pub.string(), "--listen", listen}, env);
    CHECK(r.exit_code == 2);
    CHECK(ferry::test::contains(r.err, "one zstd frame per entry"));
  }
  SUBCASE("a TLS key others can read") {
    const ferry::test::TestCa ca = ferry::test::make_test_ca(dir / "pki", "ca");
    const ferry::test::TlsIdentity id =
        ferry::test::make_server_identity(dir / "pki", "server", ca, "IP:127.0.0.1, DNS:localhost");
    fs::permissions(id.key_file, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                     fs::perms::others_read);
    const RunResult r = run_ferry({"serve", p.bundle.string(), "--pubkey", p.f.pub.string(), "--listen", listen,
                                   "--cert-file", id.cert_file.string(), "--key-file", id.key_file.string()},
                                  env);
    CHECK(r.exit_code == 2);
    CHECK(ferry::test::contains(r.err, "chmod 600"));
  }
}

TEST_CASE("a blob changed on disk after serve verified it never arrives whole") {
  require_tools(k_tools);
  TestDir dir;
  const Packed p = pack_fixtures(dir);
  const fs::path extracted = dir / "extracted";
  REQUIRE(run_ferry({"extract", p.bundle.string(), "--pubkey", p.f.pub.string(), "-o", extracted.string()}).exit_code == 0);
  Served served(dir, {extracted.string(), "--pubkey", p.f.pub.string()});
  const json signed_descriptor = json::parse(read_file(extracted / "ferry.json"));
  json largest;
  for (const auto& b : signed_descriptor["blobs"]) {
    if (largest.is_null() || b["size"] > largest["size"]) largest = b;
  }
  const std::string digest = largest["digest"];
  const fs::path file = extracted / "blobs/sha256" / digest.substr(7);
  std::string bytes = read_file(file);
  bytes[bytes.size() - 1] ^= 1; // the last byte: everything before it still matches
  write_file(file, bytes);
  const fs::path got = dir / "got";
  const RunResult r = run({"curl", "-sS", "-o", got.string(), served.url() + "/v2/team/app1/blobs/" + digest});
  CHECK(r.exit_code != 0); // curl: the transfer ended short of Content-Length
  CHECK((!fs::exists(got) || fs::file_size(got) < bytes.size())); // curl keeps no file when no byte came
  const RunResult end = served.stop();
  CHECK(ferry::test::contains(end.err, "changed since it was verified"));
}

} // TEST_SUITE

TEST_SUITE("mirror-config") {

// Nodes whose runtime cannot be reached through values (an image hard-coded in a
// template, one an operator starts) pull through a mirror: the files `ferry values
// --mirror-config` writes must parse (Python's tomllib for TOML) and lead to the images
// where they are served. containers/image (what CRI-O and podman use) is driven through
// skopeo with the written registries.conf; containerd's hosts.toml is followed by hand:
// the URL it names plus /REPOSITORY/manifests/TAG, as containerd requests it.
TEST_CASE("mirror configs parse and lead every source registry to the served images") {
  require_tools(k_tools);
  require_tools({"python3"});
  TestDir dir;
  const Packed p = pack_fixtures(dir);
  Served served(dir, {p.bundle.string(), "--pubkey", p.f.pub.string(), "--prefix", "mirror"});
  const fs::path out = dir / "values";
  const RunResult r = run_ferry({"values", p.bundle.string(), "--pubkey", p.f.pub.string(), "--registry",
                                 served.host() + "/mirror", "--plain-http", "--mirror-config", "containerd",
                                 "--mirror-config", "k3s", "--mirror-config", "cri-o", "-o", out.string(), "--output",
                                 "json"},
                                {.cwd = {}, .env = isolated_env(dir), .input = {}});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  const json report = json::parse(r.out);
  REQUIRE(report["mirrorConfigs"].size() == 3);
  CHECK(report["mirrorConfigs"][0]["registries"] == json{"docker.io", "example.com"});
  CHECK(fs::exists(out / "registries.yaml"));

  auto toml = [](const fs::path& file) {
    return json::parse(must({"python3", "-c", "import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], 'rb'))))",
                             file.string()}));
  };
  SUBCASE("containerd: hosts.toml per registry, its host URL serves each image under the registry") {
    for (const auto& image : p.descriptor["images"]) {
      const std::string ref = image["ref"];
      const std::string registry = ref.substr(0, ref.find('/'));
      const std::string rest = ref.substr(ref.find('/') + 1);
      const std::string repository = rest.substr(0, rest.rfind(':'));
      const std::string tag = rest.substr(rest.rfind(':') + 1);
      const json hosts = toml(out / "certs.d" / registry / "hosts.toml");
      INFO(hosts.dump());
      REQUIRE(hosts["host"].size() == 1);
      const std::string host = hosts["host"].begin().key();
      CHECK(hosts["host"][host]["override_path"] == true);
      CHECK(hosts["host"][host]["capabilities"] == json{"pull", "resolve"});
      const fs::path manifest = dir / "fetched-manifest";
      must({"curl", "-sf", "-o", manifest.string(), "-H",
            "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
            "application/vnd.docker.distribution.manifest.v2+json",
            host + "/" + repository + "/manifests/" + tag});
      CHECK(sha256_of_file(manifest) == image["digest"]);
    }
  }
  SUBCASE("cri-o: skopeo with the written registries.conf pulls example.com's image from the mirror") {
    const fs::path conf = out / "registries.conf.d/50-ferry-mirrors.conf";
    const json parsed = toml(conf);
    REQUIRE(parsed["registry"].size() == 2);
    CHECK(parsed["registry"][1]["prefix"] == "example.com");
    CHECK(parsed["registry"][1]["mirror"][0]["location"] == served.host() + "/mirror");
    // skopeo 1.9 takes the file with its (hidden) --registries-conf flag.
    const RunResult raw = run({"skopeo", "--registries-conf", conf.string(), "inspect", "--raw",
                               "docker://example.com/team/app2:1.0"},
                              {.cwd = {}, .env = isolated_env(dir), .input = {}});
    REQUIRE_MESSAGE(raw.exit_code == 0, raw.err);
    write_file(dir / "raw", raw.out);
    CHECK(sha256_of_file(dir / "raw") == p.descriptor["images"][1]["digest"]);
  }
}

} // TEST_SUITE

TEST_SUITE("inputs") {

// What a bundle holds, without its name or source manifest: images (ref, digest,
// platforms), charts (name, version, digests), files (path, digest) and the blob table.
json content_of(const fs::path& bundle) {
  const json d = json::parse(must({"tar", "--zstd", "-xOf", bundle.string(), "ferry.json"}));
  json images = json::array();
  for (const auto& i : d["images"]) images.push_back({i["ref"], i["digest"], i["platforms"]});
  json charts = json::array();
  for (const auto& c : d["charts"]) charts.push_back({c["name"], c["version"], c["digest"], c["archiveDigest"]});
  json files = json::array();
  for (const auto& f : d["files"]) files.push_back({f["path"], f["contentDigest"], f["digest"]});
  return {{"images", images}, {"charts", charts}, {"files", files}, {"blobs", d["blobs"]}};
}

// A Hauler manifest and a plain image list, each packed from a registry (ferry serve of
// the fixtures), hold exactly what the equivalent ferry manifest packs.
TEST_CASE("Hauler manifests and image lists pack the same content as the equivalent ferry manifest") {
  require_tools(k_tools);
  TestDir dir;
  const Packed p = pack_fixtures(dir);
  Served served(dir, {p.bundle.string(), "--pubkey", p.f.pub.string()});
  const std::string r = served.host();
  const fs::path manifests = p.f.manifest.parent_path(); // beside bin/install.sh
  auto pack = [&](const std::string& name, const std::string& text) {
    const fs::path file = manifests / name;
    write_file(file, text);
    const fs::path out = dir / (file.stem().string() + ".tar.zst");
    const RunResult result = run_ferry({"pack", "-f", file.string(), "-o", out.string(), "--key", p.f.key.string(),
                                        "--plain-http", "--no-cache", "--no-lock"},
                                       {.cwd = {}, .env = [&] {
                                          auto env = isolated_env(dir);
                                          env["SOURCE_DATE_EPOCH"] = "1700000000";
                                          return env;
                                        }(),
                                        .input = {}});
    REQUIRE_MESSAGE(result.exit_code == 0, name << ": " << result.err);
    return content_of(out);
  };

  SUBCASE("Hauler Images, Charts and Files") {
    const json ferry_form = pack("ferry-form.yaml", "apiVersion: ferry/v1\nkind: Bundle\n"
                                                    "metadata: {name: ferry-form, version: \"0\"}\n"
                                                    "images:\n"
                                                    "  - " + r + "/team/app1:1.0\n"
                                                    "  - ref: " + r + "/team/multi:2.0\n"
                                                    "    platforms: [linux/arm64]\n"
                                                    "charts:\n"
                                                    "  - name: demo\n"
                                                    "    repo: oci://" + r + "/charts\n"
                                                    "    version: 0.3.1\n"
                                                    "files:\n"
                                                    "  - {path: install.sh, source: bin/install.sh}\n");
    const json hauler_form = pack("hauler-form.yaml", "apiVersion: content.hauler.cattle.io/v1\nkind: Images\n"
                                                      "metadata: {name: images}\n"
                                                      "spec:\n  images:\n"
                                                      "    - name: " + r + "/team/app1:1.0\n"
                                                      "    - name: " + r + "/team/multi:2.0\n"
                                                      "      platform: linux/arm64\n"
                                                      "---\n"
                                                      "apiVersion: content.hauler.cattle.io/v1\nkind: Charts\n"
                                                      "metadata: {name: charts}\n"
                                                      "spec:\n  charts:\n"
                                                      "    - name: demo\n"
                                                      "      repoURL: oci://" + r + "/charts\n"
                                                      "      version: 0.3.1\n"
                                                      "---\n"
                                                      "apiVersion: content.hauler.cattle.io/v1\nkind: Files\n"
                                                      "metadata: {name: files}\n"
                                                      "spec:\n  files:\n"
                                                      "    - path: bin/install.sh\n");
    CHECK(ferry_form["images"].size() == 2);
    CHECK(ferry_form["charts"].size() == 1);
    CHECK(ferry_form["files"].size() == 1);
    CHECK(hauler_form == ferry_form);
  }
  SUBCASE("a plain image list, Rancher's rancher-images.txt style") {
    const json ferry_form = pack("list-form.yaml", "apiVersion: ferry/v1\nkind: Bundle\n"
                                                   "metadata: {name: list-form, version: \"0\"}\n"
                                                   "images:\n  - " + r + "/team/app1:1.0\n  - " + r +
                                                       "/team/app2:1.0\n  - " + r + "/team/multi:2.0\n");
    const json list_form =
        pack("images.txt", "# rancher-images.txt style\n" + r + "/team/app1:1.0\n" + r + "/team/app2:1.0\n\n" + r +
                               "/team/multi:2.0   # the index, every platform\n");
    CHECK(list_form["images"].size() == 3);
    CHECK(list_form == ferry_form);
  }
  SUBCASE("--image and --chart flags, and the manifest they leave beside the bundle") {
    // The chart's image (docker.io/example/app1) comes through --mirror from the same server.
    const std::vector<std::string> common = {"--key", p.f.key.string(), "--plain-http", "--no-cache", "--no-lock",
                                             "--mirror", "docker.io=" + r};
    auto env = isolated_env(dir);
    env["SOURCE_DATE_EPOCH"] = "1700000000";
    const fs::path manifest = manifests / "ferry-form.yaml";
    write_file(manifest, "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: quick, version: \"7\"}\n"
                         "images:\n  - " + r + "/team/app2:1.0\n"
                         "charts:\n  - {name: demo, repo: \"oci://" + r + "/charts\", version: 0.3.1, images: auto}\n");
    std::vector<std::string> args = {"pack", "-f", manifest.string(), "-o", (dir / "ferry-form.tar.zst").string()};
    args.insert(args.end(), common.begin(), common.end());
    const RunResult from_manifest = run_ferry(args, {.cwd = {}, .env = env, .input = {}});
    REQUIRE_MESSAGE(from_manifest.exit_code == 0, from_manifest.err);

    const fs::path quick = dir / "quick-7.tar.zst";
    args = {"pack", "--image", r + "/team/app2:1.0", "--chart", "oci://" + r + "/charts/demo:0.3.1", "--name", "quick",
            "--bundle-version", "7", "-o", quick.string()};
    args.insert(args.end(), common.begin(), common.end());
    const RunResult from_flags = run_ferry(args, {.cwd = {}, .env = env, .input = {}});
    REQUIRE_MESSAGE(from_flags.exit_code == 0, from_flags.err);
    const json flags_form = content_of(quick);
    CHECK(flags_form["images"].size() == 2); // app2, and example/app1 found in the chart
    CHECK(flags_form["charts"].size() == 1);
    CHECK(flags_form == content_of(dir / "ferry-form.tar.zst"));
    const json head = json::parse(must({"tar", "--zstd", "-xOf", quick.string(), "ferry.json"}));
    CHECK(head["name"] == "quick");
    CHECK(head["version"] == "7");

    // The manifest written beside the bundle packs the same bundle again with -f.
    const fs::path written = dir / "quick-7.manifest.yaml";
    REQUIRE(fs::exists(written));
    CHECK(contains(from_flags.err, written.string()));
    args = {"pack", "-f", written.string(), "-o", (dir / "again.tar.zst").string()};
    args.insert(args.end(), common.begin(), common.end());
    const RunResult again = run_ferry(args, {.cwd = {}, .env = env, .input = {}});
    REQUIRE_MESSAGE(again.exit_code == 0, again.err);
    CHECK(content_of(dir / "again.tar.zst") == flags_form);

    // A file of that name holding something else is the user's: refused, left alone.
    write_file(written, "# mine\n");
    args = {"pack", "--image", r + "/team/app2:1.0", "-o", quick.string()};
    args.insert(args.end(), common.begin(), common.end());
    const RunResult clash = run_ferry(args, {.cwd = {}, .env = env, .input = {}});
    CHECK(clash.exit_code == 2);
    CHECK(contains(clash.err, "move it away"));
    CHECK(read_file(written) == "# mine\n");
    // -f and --image exclude each other; neither is a usage error.
    CHECK(run_ferry({"pack", "-f", manifest.string(), "--image", "x:1", "--dry-run"}).exit_code == 2);
    const RunResult nothing = run_ferry({"pack", "--dry-run"});
    CHECK(nothing.exit_code == 2);
    CHECK(contains(nothing.err, "--image"));
  }
}

} // TEST_SUITE
