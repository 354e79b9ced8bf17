// Inventory and differential bundles: `ferry inventory` of a target that received a full
// bundle, `pack --base` (a receipt, the old bundle, the old lock) carrying only the new
// blobs of a changed image, push completing the target from what it holds (and refusing a
// receipt that lies before any manifest is written), `ferry diff` of bundles and locks,
// and a differential split bundle. Images come from a real source registry, are pushed
// to real targets and read back with skopeo.
// SPDX-License-Identifier: Apache-2.0
#include "common/registry_fixture.hpp"
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <set>

namespace fs = std::filesystem;
using namespace ferry::itest;
using ferry::test::noise;
using ferry::test::RegistryServer;
using nlohmann::json;
using Strings = std::vector<std::string>;
using DigestSet = std::set<std::string>;

namespace {

const Strings k_tools = {"docker-registry", "umoci", "skopeo", "openssl", "base64", "sha256sum", "tar", "zstd"};
constexpr int k_usage = 2;
constexpr int k_registry = 4;
const std::string k_prefix = "site";
constexpr std::size_t k_new_layer = 2u << 20; // the change: a 2 MiB layer on top of web


Strings concat(Strings a, const Strings& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The manifest of release `version`: web at `web_tag`, api, tool and multi (an index of
// two platforms) unchanged, a chart and a file. Releases after 1 add shop/other, the
// same image as tool in a new repository (its blobs are in the target, under shop/tool).
std::string manifest_yaml(const std::string& source, const std::string& version, const std::string& web_tag) {
  return "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: shop, version: \"" + version + "\"}\nimages:\n" +
         "  - " + source + "/shop/web:" + web_tag + "\n" + "  - " + source + "/shop/api:1.0\n" + "  - " + source +
         "/shop/tool:1.0\n" + "  - " + source + "/shop/multi:1.0\n" +
         (version == "1" ? std::string() : "  - " + source + "/shop/other:1.0\n") +
         "charts:\n  - {name: shop, path: ./charts/shop, version: 1.0.0}\n" +
         "files:\n  - {path: docs/notes.txt, source: ./notes.txt}\n";
}

// An index of the layout's images `amd` and `arm` (linux/amd64, linux/arm64) under ref
// "multi", written by hand (not by ferry's own writer).
void add_index(const fs::path& layout) {
  json index = json::parse(read_file(layout / "index.json"));
  json children = json::array();
  for (const auto& m : index["manifests"]) {
    const std::string name = m["annotations"]["org.opencontainers.image.ref.name"];
    if (name != "amd" && name != "arm") continue;
    json child = m;
    child.erase("annotations");
    child["platform"] = {{"os", "linux"}, {"architecture", name == "amd" ? "amd64" : "arm64"}};
    children.push_back(child);
  }
  REQUIRE(children.size() == 2);
  const std::string blob =
      json{{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"}, {"manifests", children}}.dump();
  const fs::path tmp = layout / "multi-index.json";
  write_file(tmp, blob);
  const std::string hex = must({"sha256sum", tmp.string()}).substr(0, 64);
  fs::rename(tmp, layout / "blobs/sha256" / hex);
  index["manifests"].push_back({{"mediaType", "application/vnd.oci.image.index.v1+json"},
                                {"digest", "sha256:" + hex},
                                {"size", blob.size()},
                                {"annotations", {{"org.opencontainers.image.ref.name", "multi"}}}});
  write_file(layout / "index.json", index.dump());
}

// ferry.json of a bundle (or volume), read with tar.
json descriptor_of(const fs::path& bundle) { return json::parse(must({"tar", "--zstd", "-xOf", bundle.string(), "ferry.json"})); }

// The omitted blobs of a ferry.json, and the blobs it carries that are no manifest.
DigestSet omitted_of(const json& d) {
  DigestSet out;
  for (const auto& b : d["blobs"]) {
    if (b.contains("omitted")) out.insert(b["digest"].get<std::string>());
  }
  return out;
}
// The raw manifest of REPO:TAG in a registry, as skopeo reads it.
json raw_manifest(const RegistryServer& server, const std::string& repo_tag) {
  return json::parse(must(concat(concat({"skopeo", "inspect", "--raw"}, server.skopeo_flags()), {server.docker_ref(repo_tag)})));
}

// Config and layer digests of an image manifest.
DigestSet blobs_of(const json& manifest) {
  DigestSet out{manifest["config"]["digest"].get<std::string>()};
  for (const auto& l : manifest["layers"]) out.insert(l["digest"].get<std::string>());
  return out;
}

// "shop/web:1.1" -> "shop-web-1.1": a tag for a copy in an OCI layout.
std::string name_of(std::string repo_tag) {
  std::replace_if(repo_tag.begin(), repo_tag.end(), [](char c) { return c == '/' || c == ':'; }, '-');
  return repo_tag;
}

bool tag_exists(const RegistryServer& server, const std::string& repo_tag) {
  return run(concat(concat({"skopeo", "inspect", "--raw"}, server.skopeo_flags()), {server.docker_ref(repo_tag)})).exit_code ==
         0;
}

// A source registry with shop/web:1.0, 1.1 (a new 2 MiB layer on top) and 1.2 (another
// new layer, never pushed to a target), shop/api:1.0 (sharing web's base layer) and
// shop/tool:1.0; a chart; a file; a key; release 1 packed in full (and its lock), pushed
// to the target under PREFIX, and the target's signed inventory.
struct Fixture {
  TestDir dir;
  RegistryServer source;
  RegistryServer target;
  fs::path key;
  fs::path pub;
  fs::path full;   // release 1, full
  fs::path lock1;  // its lock
  fs::path receipt;
  std::uint64_t full_size = 0;
  std::string new_layer;   // web 1.1's own layer
  std::string new_config;  // web 1.1's config
  std::string lie_layer;   // web 1.2's own layer

  fs::path manifest(const std::string& version, const std::string& web_tag) {
    const fs::path file = dir / ("shop-" + version + ".yaml");
    write_file(file, manifest_yaml(source.host(), version, web_tag));
    return file;
  }
  RunResult pack(const fs::path& manifest_file, const fs::path& out, const Strings& extra = {}) const {
    return run_ferry(concat({"pack", "-f", manifest_file.string(), "-o", out.string(), "--key", key.string(), "--plain-http",
                             "--lock-file", (out.parent_path() / (out.stem().stem().string() + ".lock.json")).string()},
                            extra),
                     {.cwd = {}, .env = {{"XDG_CACHE_HOME", (dir / "cache").string()}, {"SOURCE_DATE_EPOCH", "1700000000"}},
                      .input = {}});
  }
  RunResult push(const std::vector<fs::path>& bundles, const RegistryServer& to, const fs::path& state,
                 const Strings& extra = {}) const {
    Strings args = {"push"};
    for (const auto& b : bundles) args.push_back(b.string());
    return run_ferry(concat(concat(args, {"--registry", to.host() + "/" + k_prefix, "--pubkey", pub.string(), "--plain-http",
                                          "--state-dir", state.string()}),
                            extra));
  }
};

Fixture& fixture() {
  static std::unique_ptr<Fixture> made;
  if (made) return *made;
  auto f = std::make_unique<Fixture>();
  const TestDir& dir = f->dir;
  const std::string layout = (dir / "layout").string();
  must({"umoci", "init", "--layout", layout});
  const Strings files = {"base.bin", "web.bin", "api.bin", "tool.bin", "new.bin", "lie.bin"};
  const std::vector<std::size_t> sizes = {4u << 20, 1u << 20, 3u << 20, 1u << 20, k_new_layer, 1u << 20};
  for (std::size_t i = 0; i < files.size(); ++i) write_file(dir / "content" / files[i], noise(sizes[i], 100 + i));
  auto insert = [&](const std::string& tag, const std::string& file, const std::string& new_tag = {}) {
    Strings args = {"umoci", "insert", "--image", layout + ":" + tag};
    if (!new_tag.empty()) args = concat(args, {"--tag", new_tag});
    must(concat(args, {(dir / "content" / file).string(), "/" + file}));
  };
  must({"umoci", "new", "--image", layout + ":web"});
  insert("web", "base.bin");
  must({"umoci", "tag", "--image", layout + ":web", "api"}); // api starts from web's base layer
  insert("web", "web.bin");
  insert("api", "api.bin");
  must({"umoci", "new", "--image", layout + ":tool"});
  insert("tool", "tool.bin");
  insert("web", "new.bin", "web11");
  insert("web11", "lie.bin", "web12");
  for (const std::string arch : {"amd", "arm"}) {
    must({"umoci", "new", "--image", layout + ":" + arch});
    must({"umoci", "config", "--image", layout + ":" + arch, "--architecture", arch == "amd" ? "amd64" : "arm64", "--os",
          "linux"});
    write_file(dir / "content" / (arch + ".txt"), arch + "\n");
    insert(arch, arch + ".txt");
  }
  add_index(layout);
  for (const auto& [tag, repo_tag] : std::vector<std::pair<std::string, std::string>>{
           {"web", "shop/web:1.0"}, {"web11", "shop/web:1.1"}, {"web12", "shop/web:1.2"}, {"api", "shop/api:1.0"},
           {"tool", "shop/tool:1.0"}, {"tool", "shop/other:1.0"}}) {
    ferry::test::push_with_skopeo(f->source, "oci:" + layout + ":" + tag, repo_tag);
  }
  ferry::test::push_with_skopeo(f->source, "oci:" + layout + ":multi", "shop/multi:1.0", ferry::test::Platforms::all);
  const DigestSet web10 = blobs_of(raw_manifest(f->source, "shop/web:1.0"));
  const json web11 = raw_manifest(f->source, "shop/web:1.1");
  f->new_config = web11["config"]["digest"];
  f->new_layer = web11["layers"].back()["digest"];
  REQUIRE(web10.count(f->new_layer) == 0);
  f->lie_layer = raw_manifest(f->source, "shop/web:1.2")["layers"].back()["digest"];

  write_file(dir / "charts/shop/Chart.yaml", "apiVersion: v2\nname: shop\nversion: 1.0.0\n");
  write_file(dir / "charts/shop/values.yaml", "replicas: 1\n");
  write_file(dir / "notes.txt", "release notes\n");
  const RunResult keygen = run_ferry({"keygen", "--out", (dir / "release").string()});
  REQUIRE_MESSAGE(keygen.exit_code == 0, keygen.err);
  f->key = dir / "release.key";
  f->pub = dir / "release.pub";

  fs::create_directories(dir / "out");
  f->full = dir / "out/shop-1.tar.zst";
  const RunResult pack = f->pack(f->manifest("1", "1.0"), f->full);
  INFO(pack.out, pack.err);
  REQUIRE(pack.exit_code == 0);
  f->lock1 = dir / "out/shop-1.lock.json";
  REQUIRE(fs::exists(f->lock1));
  f->full_size = fs::file_size(f->full);

  const RunResult pushed = f->push({f->full}, f->target, dir / "state");
  INFO(pushed.out, pushed.err);
  REQUIRE(pushed.exit_code == 0);

  f->receipt = dir / "inside/receipt.json";
  fs::create_directories(dir / "inside");
  const RunResult inventory =
      run_ferry({"inventory", "--registry", f->target.host() + "/" + k_prefix, "--plain-http", "-o", f->receipt.string(),
                 "--key", f->key.string()},
                {.cwd = {}, .env = {{"SOURCE_DATE_EPOCH", "1700000100"}}, .input = {}});
  INFO(inventory.out, inventory.err);
  REQUIRE(inventory.exit_code == 0);
  made = std::move(f);
  return *made;
}

// Release 2 (web 1.1) packed against `base` (extra flags) into DIR/out/NAME.tar.zst.
fs::path pack_release2(Fixture& f, const std::string& name, const Strings& base) {
  const fs::path out = f.dir / "out" / (name + ".tar.zst");
  if (fs::exists(out)) return out;
  const RunResult r = f.pack(f.manifest("2", "1.1"), out, base);
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  return out;
}

} // namespace

TEST_SUITE("differential") {

TEST_CASE("inventory lists every tag, manifest and blob of the target, signed like ferry.json") {
  require_tools(k_tools);
  Fixture& f = fixture();
  const json receipt = json::parse(read_file(f.receipt));
  CHECK(receipt["receiptVersion"] == 1);
  CHECK(receipt["registry"] == f.target.host() + "/" + k_prefix);
  CHECK(receipt["created"] == "2023-11-14T22:15:00Z"); // SOURCE_DATE_EPOCH 1700000100
  CHECK(receipt["problems"].empty());
  // What skopeo reads from the target, every config and layer of every image and chart.
  DigestSet expected;
  std::map<std::string, std::string> tags;
  for (const std::string repo : {"shop/web", "shop/api", "shop/tool"}) {
    const std::string repo_tag = k_prefix + "/" + repo + ":1.0";
    const DigestSet blobs = blobs_of(raw_manifest(f.target, repo_tag));
    expected.insert(blobs.begin(), blobs.end());
    tags[k_prefix + "/" + repo] = ferry::test::registry_digest(f.target, repo_tag);
  }
  const DigestSet chart = blobs_of(raw_manifest(f.target, k_prefix + "/charts/shop:1.0.0"));
  expected.insert(chart.begin(), chart.end());
  // The index: both platforms' manifests walked, by digest.
  const json index = raw_manifest(f.target, k_prefix + "/shop/multi:1.0");
  REQUIRE(index["manifests"].size() == 2);
  for (const auto& child : index["manifests"]) {
    const DigestSet blobs =
        blobs_of(raw_manifest(f.target, k_prefix + "/shop/multi@" + child["digest"].get<std::string>()));
    expected.insert(blobs.begin(), blobs.end());
  }
  DigestSet listed;
  for (const auto& b : receipt["blobs"]) listed.insert(b["digest"].get<std::string>());
  CHECK(listed == expected);
  std::size_t repositories_with_tags = 0;
  for (const auto& repo : receipt["repositories"]) {
    const std::string name = repo["name"];
    if (!tags.count(name)) continue;
    ++repositories_with_tags;
    CHECK(repo["tags"]["1.0"] == tags[name]);
    CHECK(repo["manifests"].size() == 1);
  }
  CHECK(repositories_with_tags == 3);
  bool saw_index = false;
  for (const auto& repo : receipt["repositories"]) {
    if (repo["name"] != k_prefix + "/shop/multi") continue;
    saw_index = true;
    CHECK(repo["tags"]["1.0"] == ferry::test::registry_digest(f.target, k_prefix + "/shop/multi:1.0"));
    CHECK(repo["manifests"].size() == 3); // the index and its two children, all confirmed
  }
  CHECK(saw_index);
  // The shared base layer is held by web and api.
  const std::string base_layer = raw_manifest(f.target, k_prefix + "/shop/api:1.0")["layers"][0]["digest"];
  for (const auto& b : receipt["blobs"]) {
    if (b["digest"] == base_layer) {
      CHECK(b["repositories"] == json::array({k_prefix + "/shop/api", k_prefix + "/shop/web"}));
    }
  }
  // The signature verifies with openssl alone (docs/bundle-format.md).
  const fs::path sig = f.dir / "inside/receipt.sig.bin";
  must({"sh", "-c", "base64 -d < '" + f.receipt.string() + ".sig' > '" + sig.string() + "'"});
  must({"openssl", "pkeyutl", "-verify", "-pubin", "-inkey", f.pub.string(), "-rawin", "-in", f.receipt.string(), "-sigfile",
        sig.string()});

  { // --bundle and --repos list the same blobs as the catalog
    const fs::path by_bundle = f.dir / "inside/by-bundle.json";
    const RunResult r = run_ferry({"inventory", "--registry", f.target.host() + "/" + k_prefix, "--plain-http", "-o",
                                   by_bundle.string(), "--bundle", f.full.string(), "--output", "json"});
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(json::parse(r.out)["repositoriesFrom"] == "--bundle");
    CHECK_FALSE(fs::exists(by_bundle.string() + ".sig"));
    DigestSet again;
    const json by_bundle_receipt = json::parse(read_file(by_bundle));
    for (const auto& b : by_bundle_receipt["blobs"]) again.insert(b["digest"].get<std::string>());
    CHECK(again == listed);
    const fs::path by_repos = f.dir / "inside/by-repos.json";
    const RunResult web = run_ferry({"inventory", "--registry", f.target.host() + "/" + k_prefix, "--plain-http", "-o",
                                     by_repos.string(), "--repos", "shop/web"});
    REQUIRE(web.exit_code == 0);
    const json only_web = json::parse(read_file(by_repos));
    REQUIRE(only_web["repositories"].size() == 1);
    CHECK(only_web["repositories"][0]["name"] == k_prefix + "/shop/web");
    DigestSet web_blobs;
    for (const auto& b : only_web["blobs"]) web_blobs.insert(b["digest"].get<std::string>());
    CHECK(web_blobs == blobs_of(raw_manifest(f.target, k_prefix + "/shop/web:1.0")));
  }
}

TEST_CASE("inventory reports a manifest whose blob is gone and lists none of its blobs") {
  require_tools(k_tools);
  Fixture& f = fixture();
  RegistryServer damaged;
  const RunResult pushed = f.push({f.full}, damaged, f.dir / "state-damaged");
  REQUIRE(pushed.exit_code == 0);
  // tool's layer (no other image has it) disappears from the registry's storage.
  const json tool = raw_manifest(damaged, k_prefix + "/shop/tool:1.0");
  const std::string layer = tool["layers"][0]["digest"];
  const std::string config = tool["config"]["digest"];
  const std::string hex = layer.substr(7);
  const fs::path data = damaged.dir() / "storage/docker/registry/v2/blobs/sha256" / hex.substr(0, 2) / hex / "data";
  REQUIRE(fs::exists(data));
  fs::remove(data);
  const fs::path out = f.dir / "inside/damaged.json";
  const RunResult r = run_ferry({"inventory", "--registry", damaged.host() + "/" + k_prefix, "--plain-http", "-o", out.string()});
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.err, layer));
  const json receipt = json::parse(read_file(out));
  REQUIRE(receipt["problems"].size() == 1);
  CHECK(receipt["problems"][0]["repository"] == k_prefix + "/shop/tool");
  CHECK(contains(receipt["problems"][0]["problem"].get<std::string>(), layer));
  DigestSet listed;
  for (const auto& b : receipt["blobs"]) listed.insert(b["digest"].get<std::string>());
  CHECK(listed.count(layer) == 0);
  CHECK(listed.count(config) == 0); // its manifest is not confirmed: none of its blobs is listed
  CHECK(listed.count(f.new_layer) == 0);
  for (const auto& repo : receipt["repositories"]) {
    if (repo["name"] == k_prefix + "/shop/tool") {
      CHECK(repo["tags"].contains("1.0")); // the tag is there, its manifest is not confirmed
      CHECK(repo["manifests"].empty());
    } else if (repo["name"] == k_prefix + "/shop/web") {
      CHECK(repo["manifests"].size() == 1);
    }
  }
}

TEST_CASE("pack --base RECEIPT carries only the changed image's new blobs, and push completes the target") {
  require_tools(k_tools);
  Fixture& f = fixture();
  const fs::path bundle = pack_release2(f, "shop-2-receipt", {"--base", f.receipt.string(), "--base-pubkey", f.pub.string()});
  const json d = descriptor_of(bundle);
  REQUIRE(d["bases"].size() == 1);
  CHECK(d["bases"][0]["kind"] == "receipt");
  CHECK(d["bases"][0]["registry"] == f.target.host() + "/" + k_prefix);
  CHECK(d["bases"][0]["signer"].is_string());
  // Of the images' configs and layers, only web 1.1's new ones travel; the chart's and the
  // file's blobs always do.
  DigestSet images_carried;
  for (const auto& b : d["blobs"]) {
    const std::string type = b["mediaType"];
    if (b.contains("omitted") || type.find("helm") != std::string::npos || type == "application/octet-stream" ||
        type == "application/vnd.oci.empty.v1+json" || type.find("manifest") != std::string::npos ||
        type.find("index") != std::string::npos) {
      continue;
    }
    images_carried.insert(b["digest"].get<std::string>());
  }
  CHECK(images_carried == DigestSet{f.new_layer, f.new_config});
  // The bundle's files hold exactly that: the stream lists no omitted blob.
  const std::string listing = must({"tar", "--zstd", "-tf", bundle.string()});
  for (const auto& digest : omitted_of(d)) CHECK_FALSE(contains(listing, digest.substr(7)));
  CHECK(contains(listing, f.new_layer.substr(7)));
  // About the new layer: far smaller than the full bundle.
  const std::uint64_t size = fs::file_size(bundle);
  CAPTURE(size);
  CAPTURE(f.full_size);
  CHECK(size > k_new_layer);
  CHECK(size < k_new_layer + (256u << 10));
  CHECK(size * 3 < f.full_size);

  // inspect shows the base and the saving.
  const RunResult inspect = run_ferry({"inspect", bundle.string(), "--pubkey", f.pub.string(), "--output", "json"});
  REQUIRE(inspect.exit_code == 0);
  const json info = json::parse(inspect.out);
  CHECK(info["bases"][0]["kind"] == "receipt");
  CHECK(info["differential"]["omittedBlobs"] == omitted_of(d).size());
  CHECK(info["differential"]["savedPercent"].get<double>() > 60.0);
  const RunResult text = run_ferry({"inspect", bundle.string()});
  CHECK(contains(text.out, "base       receipt receipt.json of " + f.target.host() + "/" + k_prefix));
  CHECK(contains(text.out, "omitted    " + std::to_string(omitted_of(d).size()) + " blobs"));

  // verify accepts it; extract refuses it (a layout would lack blobs).
  const RunResult verify = run_ferry({"verify", bundle.string(), "--pubkey", f.pub.string()});
  INFO(verify.out, verify.err);
  CHECK(verify.exit_code == 0);
  const RunResult extract = run_ferry({"extract", bundle.string(), "--pubkey", f.pub.string(), "-o", (f.dir / "x").string()});
  CHECK(extract.exit_code == k_usage);
  CHECK(contains(extract.err, "differential"));
  CHECK_FALSE(fs::exists(f.dir / "x"));

  const RunResult pushed = f.push({bundle}, f.target, f.dir / "state", {"--output", "json"});
  INFO(pushed.out, pushed.err);
  REQUIRE(pushed.exit_code == 0);
  const json result = json::parse(pushed.out);
  CHECK(result["omitted"]["blobs"] == omitted_of(d).size());
  CHECK(result["blobs"]["uploaded"] == 2); // web 1.1's config and new layer
  // shop/other's config and layer were left out (the target has them under shop/tool):
  // mounted into site/shop/other, not uploaded.
  CHECK(result["omitted"]["mounted"] == 2);
  // Every image is whole in the target: skopeo copies each out.
  for (const std::string repo_tag :
       {"shop/web:1.1", "shop/web:1.0", "shop/api:1.0", "shop/tool:1.0", "shop/multi:1.0", "shop/other:1.0"}) {
    CAPTURE(repo_tag);
    must(concat(concat({"skopeo", "copy", "--quiet"}, f.target.skopeo_src_flags()),
                {f.target.docker_ref(k_prefix + "/" + repo_tag), "oci:" + (f.dir / "copies").string() + ":" + name_of(repo_tag)}));
  }
  for (const auto& image : d["images"]) {
    const std::string ref = image["ref"];
    const std::string path = ref.substr(ref.find('/') + 1);
    CHECK(ferry::test::registry_digest(f.target, k_prefix + "/" + path) == image["digest"]);
  }
}

TEST_CASE("a receipt that lies stops push before any manifest is written, naming the blob") {
  require_tools(k_tools);
  Fixture& f = fixture();
  // The receipt, edited to claim web 1.2's new layer, and left unsigned.
  json receipt = json::parse(read_file(f.receipt));
  const json web12 = raw_manifest(f.source, "shop/web:1.2");
  receipt["blobs"].push_back({{"digest", f.lie_layer},
                              {"size", web12["layers"].back()["size"]},
                              {"repositories", json::array({k_prefix + "/shop/web"})}});
  const fs::path lie = f.dir / "inside/lie.json";
  write_file(lie, receipt.dump() + "\n");
  const fs::path bundle = f.dir / "out/shop-3-lie.tar.zst";
  const RunResult packed = f.pack(f.manifest("3", "1.2"), bundle, {"--base", lie.string()});
  INFO(packed.out, packed.err);
  REQUIRE(packed.exit_code == 0);
  CHECK(contains(packed.err, "unsigned"));
  REQUIRE(omitted_of(descriptor_of(bundle)).count(f.lie_layer) == 1);

  { // a signed receipt that was edited is refused by pack
    fs::copy_file(f.receipt.string() + ".sig", lie.string() + ".sig");
    const RunResult r = f.pack(f.manifest("3", "1.2"), f.dir / "out/refused.tar.zst",
                               {"--base", lie.string(), "--base-pubkey", f.pub.string()});
    CHECK(r.exit_code == 3);
    CHECK(contains(r.err, "does not verify"));
    fs::remove(lie.string() + ".sig");
  }

  const RunResult pushed = f.push({bundle}, f.target, f.dir / "state");
  INFO(pushed.out, pushed.err);
  CHECK(pushed.exit_code == k_registry);
  CHECK(contains(pushed.err, f.lie_layer));
  CHECK(contains(pushed.err, "image " + f.source.host() + "/shop/web:1.2"));
  CHECK(contains(pushed.err, "receipt lie.json"));
  CHECK(contains(pushed.err, "no manifest was pushed"));
  // Neither the new tag nor web 1.2's manifest by digest is in the target.
  CHECK_FALSE(tag_exists(f.target, k_prefix + "/shop/web:1.2"));
  const std::string digest = descriptor_of(bundle)["images"][0]["digest"];
  CHECK_FALSE(tag_exists(f.target, k_prefix + "/shop/web@" + digest));
  // --dry-run finds the same.
  const RunResult dry = f.push({bundle}, f.target, f.dir / "state", {"--dry-run"});
  CHECK(dry.exit_code == k_registry);
}

TEST_CASE("--base OLD.tar.zst and --base OLD.lock.json leave out what the receipt does") {
  require_tools(k_tools);
  Fixture& f = fixture();
  const DigestSet by_receipt =
      omitted_of(descriptor_of(pack_release2(f, "shop-2-receipt", {"--base", f.receipt.string(), "--base-pubkey", f.pub.string()})));
  REQUIRE_FALSE(by_receipt.empty());
  const json by_bundle = descriptor_of(pack_release2(f, "shop-2-bundle", {"--base", f.full.string(), "--base-pubkey", f.pub.string()}));
  CHECK(omitted_of(by_bundle) == by_receipt);
  CHECK(by_bundle["bases"][0]["kind"] == "bundle");
  CHECK(by_bundle["bases"][0]["version"] == "1");
  const json by_lock = descriptor_of(pack_release2(f, "shop-2-lock", {"--base", f.lock1.string()}));
  CHECK(omitted_of(by_lock) == by_receipt);
  CHECK(by_lock["bases"][0]["kind"] == "lock");
  // Where the bases saw the shared base layer: web's and api's repositories (under the prefix).
  for (const auto& b : by_lock["blobs"]) {
    if (b.contains("omitted") && b["omitted"]["repositories"].size() == 2) {
      CHECK(b["omitted"]["repositories"] == json::array({"shop/api", "shop/web"}));
    }
  }
  // Several bases are united: the bundle and the receipt give the same set, both named.
  const json both = descriptor_of(
      pack_release2(f, "shop-2-both", {"--base", f.full.string(), "--base", f.receipt.string(), "--base-pubkey", f.pub.string()}));
  CHECK(omitted_of(both) == by_receipt);
  CHECK(both["bases"].size() == 2);
  // A wrong key for a signed base is refused.
  const RunResult other = run_ferry({"keygen", "--out", (f.dir / "other").string()});
  REQUIRE(other.exit_code == 0);
  const RunResult refused =
      f.pack(f.manifest("2", "1.1"), f.dir / "out/wrong-key.tar.zst",
             {"--base", f.full.string(), "--base-pubkey", (f.dir / "other.pub").string()});
  CHECK(refused.exit_code == 3);
}

TEST_CASE("ferry diff names the changed image with byte counts, for bundles and for locks") {
  require_tools(k_tools);
  Fixture& f = fixture();
  const fs::path full2 = f.dir / "out/shop-2-full.tar.zst";
  const RunResult packed = f.pack(f.manifest("2", "1.1"), full2);
  REQUIRE(packed.exit_code == 0);
  const RunResult r = run_ferry({"diff", f.full.string(), full2.string(), "--output", "json"});
  INFO(r.out, r.err);
  REQUIRE(r.exit_code == 0);
  const json d = json::parse(r.out);
  REQUIRE(d["images"]["changed"].size() == 1);
  const json& change = d["images"]["changed"][0];
  CHECK(change["old"]["name"] == f.source.host() + "/shop/web:1.0");
  CHECK(change["new"]["name"] == f.source.host() + "/shop/web:1.1");
  CHECK(d["images"]["unchanged"] == 3);
  REQUIRE(d["images"]["added"].size() == 1);
  CHECK(d["images"]["added"][0]["name"] == f.source.host() + "/shop/other:1.0");
  CHECK(d["charts"]["unchanged"] == 1);
  CHECK(d["files"]["unchanged"] == 1);
  CHECK(d["sizesKnown"] == true);
  CHECK(d["blobs"]["added"] == 3); // web 1.1's manifest, config and new layer (other's are tool's)
  const std::uint64_t added = d["blobs"]["addedBytes"];
  CHECK(added > k_new_layer);
  CHECK(added < k_new_layer + (64u << 10));
  CHECK(d["blobs"]["removed"] == 2); // web 1.0's manifest and config
  const RunResult text = run_ferry({"diff", f.full.string(), full2.string()});
  CHECK(contains(text.out, "~ " + f.source.host() + "/shop/web:1.1 (was " + f.source.host() + "/shop/web:1.0)"));
  CHECK(contains(text.out, "images 1 changed, 1 added, 0 removed, 3 unchanged"));

  // Two locks: the same change, sizes unknown.
  const RunResult locks = run_ferry({"diff", f.lock1.string(), (f.dir / "out/shop-2-full.lock.json").string(), "--output", "json"});
  INFO(locks.out, locks.err);
  REQUIRE(locks.exit_code == 0);
  const json l = json::parse(locks.out);
  CHECK(l["old"]["kind"] == "lock");
  REQUIRE(l["images"]["changed"].size() == 1);
  CHECK(l["images"]["changed"][0]["new"]["name"] == f.source.host() + "/shop/web:1.1");
  CHECK(l["sizesKnown"] == false);
  CHECK(l["blobs"].is_null());
  const RunResult same = run_ferry({"diff", f.lock1.string(), f.lock1.string()});
  CHECK(same.exit_code == 0);
  CHECK(contains(same.out, "images 0 changed, 0 added, 0 removed, 4 unchanged"));
  CHECK(contains(same.out, "sizes unknown"));
}

TEST_CASE("a differential split bundle verifies volume by volume and pushes") {
  require_tools(k_tools);
  Fixture& f = fixture();
  const fs::path out = f.dir / "split/shop-2.tar.zst";
  fs::create_directories(out.parent_path());
  const RunResult packed = f.pack(f.manifest("2", "1.1"), out, {"--base", f.receipt.string(), "--split", "1M"});
  INFO(packed.out, packed.err);
  REQUIRE(packed.exit_code == 0);
  std::vector<fs::path> volumes;
  for (int k = 0;; ++k) {
    char name[32];
    std::snprintf(name, sizeof name, "shop-2.%03d.tar.zst", k);
    if (!fs::exists(out.parent_path() / name)) break;
    volumes.push_back(out.parent_path() / name);
  }
  REQUIRE(volumes.size() >= 3); // the 2 MiB layer spans volumes
  const json d = descriptor_of(volumes.front());
  CHECK(d["volumes"]["count"] == volumes.size());
  CHECK(omitted_of(d) == omitted_of(descriptor_of(pack_release2(f, "shop-2-receipt", {"--base", f.receipt.string(),
                                                                                        "--base-pubkey", f.pub.string()}))));
  for (const auto& b : d["blobs"]) {
    if (b.contains("omitted")) {
      CHECK_FALSE(b.contains("volume"));
      CHECK_FALSE(b.contains("pieces"));
    }
  }
  for (const auto& v : volumes) {
    const RunResult verify = run_ferry({"verify", v.string(), "--pubkey", f.pub.string()});
    INFO(v.string(), verify.out, verify.err);
    CHECK(verify.exit_code == 0);
  }
  // A second target that received release 1 in full: the volumes complete it, in reverse order.
  RegistryServer second;
  const RunResult full = f.push({f.full}, second, f.dir / "state2");
  REQUIRE(full.exit_code == 0);
  std::vector<fs::path> reversed(volumes.rbegin(), volumes.rend());
  const RunResult pushed = f.push(reversed, second, f.dir / "state2");
  INFO(pushed.out, pushed.err);
  REQUIRE(pushed.exit_code == 0);
  for (const auto& image : d["images"]) {
    const std::string ref = image["ref"];
    CHECK(ferry::test::registry_digest(second, k_prefix + "/" + ref.substr(ref.find('/') + 1)) == image["digest"]);
  }
  must(concat(concat({"skopeo", "copy", "--quiet"}, second.skopeo_src_flags()),
              {second.docker_ref(k_prefix + "/shop/web:1.1"), "oci:" + (f.dir / "copies2").string() + ":web"}));
}

} // TEST_SUITE
