// pack -> verify -> inspect -> extract on fixtures made by umoci and skopeo, checked with
// tools ferry did not write: tar, zstd, sha256sum, openssl, skopeo.
// SPDX-License-Identifier: Apache-2.0
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace fs = std::filesystem;
using namespace ferry::itest;
using nlohmann::json;

namespace {

const std::vector<std::string> k_tools = {"umoci", "skopeo", "tar", "zstd", "sha256sum", "openssl", "base64", "cmp"};

const RunOptions k_epoch{.cwd = {}, .env = {{"SOURCE_DATE_EPOCH", "1700000000"}}, .input = {}};

RunResult pack(const Fixtures& f, const fs::path& out, const fs::path& manifest = {}) {
  return run_ferry({"pack", "-f", (manifest.empty() ? f.manifest : manifest).string(), "-o", out.string(), "--key",
                f.key.string()},
               k_epoch);
}

} // namespace

TEST_SUITE("roundtrip") {

TEST_CASE("pack writes a bundle that tar, sha256sum and openssl accept") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  const fs::path bundle = dir / "demo-1.2.3.tar.zst";
  const RunResult r = pack(f, bundle);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.out, "wrote " + bundle.string()));

  SUBCASE("tar lists ferry.json first, its signature second, then the OCI layout") {
    const std::string listing = must({"tar", "--zstd", "-tf", bundle.string()});
    CHECK(listing.rfind("ferry.json\nferry.json.sig\noci-layout\nindex.json\nblobs/sha256/", 0) == 0);
  }
  SUBCASE("zstd reads it as a series of frames, one per entry") {
    must({"zstd", "-t", "-q", bundle.string()});
    const std::string frames = must({"zstd", "-lv", bundle.string()});
    const std::string listing = must({"tar", "--zstd", "-tf", bundle.string()});
    const auto entries = std::count(listing.begin(), listing.end(), '\n');
    INFO(frames);
    CHECK(contains(frames, "# Zstandard Frames: " + std::to_string(entries + 1)));
  }
  SUBCASE("sha256sum -c accepts the checksum file written beside it") {
    const fs::path sums = dir / "demo-1.2.3.sha256";
    REQUIRE(fs::exists(sums));
    const std::string out = must({"sha256sum", "-c", sums.filename().string()}, {.cwd = dir.path(), .env = {}, .input = {}});
    CHECK(contains(out, "demo-1.2.3.tar.zst: OK"));
  }
  SUBCASE("openssl verifies ferry.json.sig with the public key, and the key id is the sha256 of its DER") {
    const fs::path x = dir / "x";
    fs::create_directories(x);
    must({"tar", "--zstd", "-xf", bundle.string(), "-C", x.string(), "ferry.json", "ferry.json.sig"});
    must({"sh", "-c", "base64 -d ferry.json.sig > sig.bin"}, {.cwd = x, .env = {}, .input = {}});
    const std::string ok = must({"openssl", "pkeyutl", "-verify", "-pubin", "-inkey", f.pub.string(), "-rawin", "-in",
                                 (x / "ferry.json").string(), "-sigfile", (x / "sig.bin").string()});
    CHECK(contains(ok, "Signature Verified Successfully"));
    const std::string der_sum =
        must({"sh", "-c", "openssl pkey -pubin -in '" + f.pub.string() + "' -outform DER | sha256sum"}).substr(0, 64);
    const json descriptor = json::parse(read_file(x / "ferry.json"));
    CHECK(descriptor["signer"]["keyId"] == "sha256:" + der_sum);
    CHECK(descriptor["signer"]["algorithm"] == "ed25519");
  }
  SUBCASE("every blob entry is named by the sha256 of its bytes") {
    const fs::path x = dir / "all";
    fs::create_directories(x);
    must({"tar", "--zstd", "-xf", bundle.string(), "-C", x.string()});
    const std::string sums = must({"sh", "-c", "cd blobs/sha256 && for f in *; do echo \"$f  $f\"; done | sha256sum -c --quiet && echo all-ok"},
                                  {.cwd = x, .env = {}, .input = {}});
    CHECK(contains(sums, "all-ok"));
  }
}

TEST_CASE("verify, inspect and extract accept the bundle and skopeo reads the extracted layout") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  const fs::path bundle = dir / "demo.tar.zst";
  REQUIRE(pack(f, bundle).exit_code == 0);

  const RunResult verify = run_ferry({"verify", bundle.string(), "--pubkey", f.pub.string()});
  INFO(verify.err);
  CHECK(verify.exit_code == 0);
  CHECK(contains(verify.out, "OK"));

  const RunResult inspect = run_ferry({"inspect", bundle.string(), "--pubkey", f.pub.string(), "--output", "json"});
  REQUIRE(inspect.exit_code == 0);
  const json info = json::parse(inspect.out);
  CHECK(info["signature"]["status"] == "verified");
  CHECK(info["images"].size() == 4);
  CHECK(info["charts"].size() == 1);
  CHECK(info["charts"][0]["version"] == "0.3.1");
  CHECK(info["files"].size() == 1);
  CHECK(info["files"][0]["mode"] == "0755");
  // app1, app2 and both arches of multi share the base layer; app1 from the docker archive
  // is the same image again: sharing must save bytes.
  CHECK(info["savedBySharing"].get<std::uint64_t>() > 200000);
  json multi;
  for (const auto& i : info["images"]) {
    if (i["ref"] == "example.com/team/multi:2.0") multi = i;
  }
  REQUIRE(!multi.is_null());
  CHECK(multi["platforms"] == json::array({"linux/amd64", "linux/arm64"}));

  const fs::path out = dir / "extracted";
  const RunResult extract = run_ferry({"extract", bundle.string(), "-o", out.string(), "--pubkey", f.pub.string()});
  INFO(extract.err);
  REQUIRE(extract.exit_code == 0);
  CHECK(fs::exists(out / "ferry.json"));
  CHECK(fs::exists(out / "ferry.json.sig"));

  for (const char* ref : {"example.com/team/app1:1.0", "example.com/team/app2:1.0", "example.com/team/multi:2.0",
                          "docker.io/example/app1:1.0"}) {
    CAPTURE(ref);
    const std::string raw = must({"skopeo", "inspect", "--raw", "oci:" + out.string() + ":" + ref});
    CHECK(!raw.empty());
    must({"skopeo", "copy", "--quiet", "oci:" + out.string() + ":" + ref, "dir:" + (dir / "copy").string()});
    fs::remove_all(dir / "copy");
  }
  // The original layout and the extracted one give the same manifest digest for app2.
  const json original = json::parse(must({"skopeo", "inspect", "oci:" + f.layout.string() + ":app2"}));
  const json carried = json::parse(must({"skopeo", "inspect", "oci:" + out.string() + ":example.com/team/app2:1.0"}));
  CHECK(original["Digest"] == carried["Digest"]);
}

TEST_CASE("a docker-save archive keeps its image ID (the config digest)") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  // The fixture is real: skopeo reads it.
  const json archive = json::parse(must({"skopeo", "inspect", "--config", "docker-archive:" + f.archive.string()}));
  CHECK(archive["rootfs"]["diff_ids"].size() == 2);
  const std::string config_in_archive =
      must({"sh", "-c", "skopeo inspect --config --raw docker-archive:'" + f.archive.string() + "' | sha256sum"}).substr(0, 64);

  const fs::path bundle = dir / "demo.tar.zst";
  REQUIRE(pack(f, bundle).exit_code == 0);
  const fs::path out = dir / "extracted";
  REQUIRE(run_ferry({"extract", bundle.string(), "-o", out.string(), "--pubkey", f.pub.string()}).exit_code == 0);
  const std::string config_in_bundle =
      must({"sh", "-c", "skopeo inspect --config --raw oci:'" + out.string() + "':docker.io/example/app1:1.0 | sha256sum"})
          .substr(0, 64);
  CHECK(config_in_bundle == config_in_archive);
}

TEST_CASE("packing the same inputs twice gives byte-identical bundles") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  REQUIRE(pack(f, dir / "a.tar.zst").exit_code == 0);
  // Touch every source so only content, not file times, can matter.
  must({"sh", "-c", "find . -exec touch -d '2001-02-03 04:05:06' {} +"}, {.cwd = dir.path(), .env = {}, .input = {}});
  REQUIRE(pack(f, dir / "b.tar.zst").exit_code == 0);
  must({"cmp", (dir / "a.tar.zst").string(), (dir / "b.tar.zst").string()});
}

TEST_CASE("an ECDSA P-256 signature verifies with openssl dgst") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  REQUIRE(run_ferry({"keygen", "--out", (dir / "fips").string(), "--type", "ecdsa-p256"}).exit_code == 0);
  const fs::path bundle = dir / "ec.tar.zst";
  REQUIRE(run_ferry({"pack", "-f", f.manifest.string(), "-o", bundle.string(), "--key", (dir / "fips.key").string()}).exit_code == 0);
  must({"tar", "--zstd", "-xf", bundle.string(), "-C", dir.path().string(), "ferry.json", "ferry.json.sig"});
  must({"sh", "-c", "base64 -d ferry.json.sig > sig.der"}, {.cwd = dir.path(), .env = {}, .input = {}});
  const std::string ok = must({"openssl", "dgst", "-sha256", "-verify", (dir / "fips.pub").string(), "-signature",
                               (dir / "sig.der").string(), (dir / "ferry.json").string()});
  CHECK(contains(ok, "Verified OK"));
  CHECK(run_ferry({"verify", bundle.string(), "--pubkey", (dir / "fips.pub").string()}).exit_code == 0);
  // Any of several trusted keys may have signed.
  CHECK(run_ferry({"verify", bundle.string(), "--pubkey", f.pub.string(), "--pubkey", (dir / "fips.pub").string()}).exit_code == 0);
}

TEST_CASE("a platform filter narrows a multi-arch index and records the source digest") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  const fs::path manifest = dir / "amd64.yaml";
  write_file(manifest, "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: amd, version: \"1\"}\n"
                       "platforms: [linux/amd64]\n"
                       "images:\n  - ref: oci:./layout:multi\n    name: example.com/team/multi:2.0\n");
  const fs::path bundle = dir / "amd.tar.zst";
  const RunResult r = pack(f, bundle, manifest);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json info = json::parse(run_ferry({"inspect", bundle.string(), "--output", "json"}).out);
  REQUIRE(info["images"].size() == 1);
  CHECK(info["images"][0]["platforms"] == json::array({"linux/amd64"}));
  const json original = json::parse(must({"skopeo", "inspect", "--raw", "oci:" + f.layout.string() + ":multi"}));
  CHECK(original["manifests"].size() == 2);
  CHECK(info["images"][0].contains("sourceDigest"));
  CHECK(info["images"][0]["sourceDigest"] != info["images"][0]["digest"]);
  const fs::path out = dir / "x";
  REQUIRE(run_ferry({"extract", bundle.string(), "-o", out.string(), "--pubkey", f.pub.string()}).exit_code == 0);
  const json narrowed = json::parse(must({"skopeo", "inspect", "--raw", "oci:" + out.string() + ":example.com/team/multi:2.0"}));
  REQUIRE(narrowed["manifests"].size() == 1);
  CHECK(narrowed["manifests"][0]["platform"]["architecture"] == "amd64");
}

TEST_CASE("the chart carried in the bundle is a chart helm renders") {
  require_tools(k_tools);
  require_tools({"helm"});
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  const fs::path bundle = dir / "demo.tar.zst";
  REQUIRE(pack(f, bundle).exit_code == 0);
  const fs::path out = dir / "x";
  REQUIRE(run_ferry({"extract", bundle.string(), "-o", out.string(), "--pubkey", f.pub.string()}).exit_code == 0);
  // Find the chart layer through the Helm OCI manifest, as helm pull would.
  const json info = json::parse(run_ferry({"inspect", bundle.string(), "--output", "json"}).out);
  const std::string manifest_digest = info["charts"][0]["digest"];
  const json manifest = json::parse(read_file(out / "blobs/sha256" / manifest_digest.substr(7)));
  CHECK(manifest["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json");
  REQUIRE(manifest["layers"].size() == 1);
  CHECK(manifest["layers"][0]["mediaType"] == "application/vnd.cncf.helm.chart.content.v1.tar+gzip");
  const std::string layer = manifest["layers"][0]["digest"];
  const fs::path tgz = dir / "demo-0.3.1.tgz";
  fs::copy_file(out / "blobs/sha256" / layer.substr(7), tgz);
  const std::string shown = must({"helm", "show", "chart", tgz.string()});
  CHECK(contains(shown, "name: demo"));
  CHECK(contains(shown, "version: 0.3.1"));
  const std::string rendered = must({"helm", "template", "demo", tgz.string()});
  CHECK(contains(rendered, "image: \"example/app1:1.0\""));
  must({"helm", "lint", tgz.string()});
}

TEST_CASE("a plain image list packs like a manifest") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  write_file(dir / "images.txt", "# images for the lab\ndocker-archive:./app1-docker.tar\n\n");
  const fs::path bundle = dir / "list.tar.zst";
  const RunResult r = pack(f, bundle, dir / "images.txt");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json info = json::parse(run_ferry({"inspect", bundle.string(), "--output", "json"}).out);
  CHECK(info["name"] == "images");
  REQUIRE(info["images"].size() == 1);
  CHECK(info["images"][0]["ref"] == "docker.io/example/app1:1.0");
}

} // TEST_SUITE

TEST_SUITE("roundtrip") {
TEST_CASE("pack --platform overrides the manifest's default platforms") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  const fs::path bundle = dir / "arm.tar.zst";
  const RunResult r = run_ferry({"pack", "-f", f.manifest.string(), "-o", bundle.string(), "--key", f.key.string(),
                                 "--platform", "linux/arm64"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json info = json::parse(run_ferry({"inspect", bundle.string(), "--output", "json"}).out);
  for (const auto& image : info["images"]) {
    if (image["ref"] == "example.com/team/multi:2.0") CHECK(image["platforms"] == json::array({"linux/arm64"}));
  }
}
}
