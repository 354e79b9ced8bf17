// Bad input: every case stops with a message naming the thing, the exit code of
// DESIGN §5, and no partial output.
// SPDX-License-Identifier: Apache-2.0
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace fs = std::filesystem;
using namespace ferry::itest;
using nlohmann::json;

namespace {

const std::vector<std::string> k_tools = {"umoci", "skopeo", "tar", "zstd", "sha256sum", "openssl"};
constexpr int k_usage = 2;
constexpr int k_integrity = 3;

struct Packed {
  Fixtures f;
  fs::path bundle;
};

Packed pack_fixtures(const TestDir& dir) {
  Packed p{make_fixtures(dir.path()), dir / "good.tar.zst"};
  const RunResult r = run_ferry({"pack", "-f", p.f.manifest.string(), "-o", p.bundle.string(), "--key", p.f.key.string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return p;
}

RunResult verify(const Packed& p, const fs::path& bundle) {
  return run_ferry({"verify", bundle.string(), "--pubkey", p.f.pub.string()});
}

// The bundle's entries, with one change applied, written as a new bundle.
fs::path altered(const TestDir& dir, const Packed& p, const std::string& name,
                 const std::function<void(std::vector<TarItem>&)>& change) {
  std::vector<TarItem> items = read_tar(p.bundle);
  change(items);
  const fs::path out = dir / name;
  write_tar(out, items);
  return out;
}

std::string first_layer_blob(const std::vector<TarItem>& items, std::string_view ref) {
  // The layer of `ref` that no other image shares: its last layer.
  const json descriptor = json::parse(items[0].data);
  std::string manifest_digest;
  for (const auto& i : descriptor["images"]) {
    if (i["ref"] == ref) manifest_digest = i["digest"];
  }
  REQUIRE(!manifest_digest.empty());
  for (const auto& item : items) {
    if (item.path == "blobs/sha256/" + manifest_digest.substr(7)) {
      return json::parse(item.data)["layers"].back()["digest"];
    }
  }
  FAIL("manifest not in bundle");
  return {};
}

void check_no_leftovers(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    CHECK_MESSAGE(e.path().filename().string().find(".ferry-") == std::string::npos, "leftover ", e.path());
    CHECK_MESSAGE(e.path().filename().string().find(".pack-") == std::string::npos, "leftover ", e.path());
    CHECK_MESSAGE(e.path().filename().string().find(".extract-") == std::string::npos, "leftover ", e.path());
  }
}

} // namespace

TEST_SUITE("bad-input") {

TEST_CASE("a flipped byte inside a layer is named with its digest and the image using it") {
  require_tools(k_tools);
  TestDir dir;
  const Packed p = pack_fixtures(dir);
  std::string layer;
  const fs::path bad = altered(dir, p, "bad.tar.zst", [&](std::vector<TarItem>& items) {
    layer = first_layer_blob(items, "example.com/team/app2:1.0");
    for (auto& item : items) {
      if (item.path == "blobs/sha256/" + layer.substr(7)) item.data[item.data.size() / 2] ^= 0x01;
    }
  });
  const RunResult r = verify(p, bad);
  CHECK(r.exit_code == k_integrity);
  CHECK(contains(r.err, "blobs/sha256/" + layer.substr(7)));
  CHECK(contains(r.err, "expected " + layer));
  CHECK(contains(r.err, "image example.com/team/app2:1.0"));
  CHECK(contains(r.err, "hint: "));

  SUBCASE("extract of it leaves no directory behind") {
    const RunResult x = run_ferry({"extract", bad.string(), "-o", (dir / "out").string(), "--pubkey", p.f.pub.string()});
    CHECK(x.exit_code == k_integrity);
    CHECK_FALSE(fs::exists(dir / "out"));
    check_no_leftovers(dir.path());
  }
}

TEST_CASE("a flipped byte in the compressed stream is refused") {
  require_tools(k_tools);
  TestDir dir;
  const Packed p = pack_fixtures(dir);
  std::string bytes = read_file(p.bundle);
  bytes[bytes.size() * 2 / 3] ^= 0x10;
  write_file(dir / "flipped.tar.zst", bytes);
  const RunResult r = verify(p, dir / "flipped.tar.zst");
  CHECK(r.exit_code == k_integrity);
  CHECK(contains(r.err, "flipped.tar.zst"));
}

TEST_CASE("a flipped byte in ferry.json breaks the signature") {
  require_tools(k_tools);
  TestDir dir;
  const Packed p = pack_fixtures(dir);
  const fs::path bad = altered(dir, p, "bad.tar.zst", [](std::vector<TarItem>& items) {
    auto& d = items[0].data;
    const auto at = d.find("\"version\":\"1.2.3\"");
    REQUIRE(at != std::string::npos);
    d[at + 15] = '4'; // 1.2.3 -> 1.2.4
  });
  const RunResult r = verify(p, bad);
  CHECK(r.exit_code == k_integrity);
  CHECK(contains(r.err, "signature of ferry.json"));
  CHECK(contains(r.err, "does not verify"));
}

TEST_CASE("a truncated bundle is refused as truncated") {
  require_tools(k_tools);
  TestDir dir;
  const Packed p = pack_fixtures(dir);
  const std::string bytes = read_file(p.bundle);
  write_file(dir / "cut.tar.zst", bytes.substr(0, bytes.size() / 2));
  const RunResult r = verify(p, dir / "cut.tar.zst");
  CHECK(r.exit_code == k_integrity);
  CHECK(contains(r.err, "truncated"));
}

TEST_CASE("a bundle signed by another key shows the expected and the found key ids") {
  require_tools(k_tools);
  TestDir dir;
  const Packed p = pack_fixtures(dir);
  REQUIRE(run_ferry({"keygen", "--out", (dir / "other").string()}).exit_code == 0);
  const RunResult r = run_ferry({"verify", p.bundle.string(), "--pubkey", (dir / "other.pub").string()});
  CHECK(r.exit_code == k_integrity);
  const json info = json::parse(run_ferry({"inspect", p.bundle.string(), "--output", "json"}).out);
  const std::string signer = info["signature"]["keyId"];
  CHECK(contains(r.err, "signed by key " + signer));
  const std::string other_id =
      must({"sh", "-c", "openssl pkey -pubin -in '" + (dir / "other.pub").string() + "' -outform DER | sha256sum"}).substr(0, 64);
  CHECK(contains(r.err, "sha256:" + other_id));
}

TEST_CASE("an unsigned bundle is refused unless the operator skips the signature loudly") {
  require_tools(k_tools);
  TestDir dir;
  const Packed p = pack_fixtures(dir);
  const fs::path bad = altered(dir, p, "unsigned.tar.zst", [](std::vector<TarItem>& items) {
    items.erase(std::remove_if(items.begin(), items.end(), [](const TarItem& i) { return i.path == "ferry.json.sig"; }),
                items.end());
  });
  const RunResult r = verify(p, bad);
  CHECK(r.exit_code == k_integrity);
  CHECK(contains(r.err, "is not signed"));
  const RunResult skipped = run_ferry({"verify", bad.string(), "--insecure-skip-signature"});
  CHECK(skipped.exit_code == 0);
  CHECK(contains(skipped.err, "warning: --insecure-skip-signature"));
  CHECK(contains(skipped.out, "NONE"));
}

TEST_CASE("tar entries that are not plain relative files are refused") {
  require_tools(k_tools);
  TestDir dir;
  const Packed p = pack_fixtures(dir);
  struct Case {
    const char* name;
    TarItem item;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"absolute", {"/etc/ferry-test", "x", TarItem::Type::file, ""}, "absolute path"},
      {"dotdot", {"blobs/../../escape", "x", TarItem::Type::file, ""}, "climbs out"},
      {"symlink", {"blobs/sha256/link", "", TarItem::Type::symlink, "/etc/passwd"}, "symbolic link"},
      {"hardlink", {"blobs/sha256/hard", "", TarItem::Type::hardlink, "index.json"}, "hard link"},
      {"device", {"blobs/sha256/dev", "", TarItem::Type::char_device, ""}, "character device"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    const fs::path bad = altered(dir, p, std::string(c.name) + ".tar.zst", [&](std::vector<TarItem>& items) {
      items.insert(items.begin() + 3, c.item);
    });
    const fs::path out = dir / (std::string("out-") + c.name);
    const RunResult r = run_ferry({"extract", bad.string(), "-o", out.string(), "--pubkey", p.f.pub.string()});
    CHECK(r.exit_code == k_integrity);
    CHECK(contains(r.err, c.message));
    CHECK_FALSE(fs::exists(out));
    CHECK_FALSE(fs::exists("/etc/ferry-test"));
  }
  check_no_leftovers(dir.path());
}

TEST_CASE("entries not in the blob table, duplicated, or missing are refused") {
  require_tools(k_tools);
  TestDir dir;
  const Packed p = pack_fixtures(dir);
  SUBCASE("an extra entry") {
    const std::string hex(64, 'a');
    const fs::path bad = altered(dir, p, "extra.tar.zst", [&](std::vector<TarItem>& items) {
      items.push_back({"blobs/sha256/" + hex, "surprise", TarItem::Type::file, ""});
    });
    const RunResult r = verify(p, bad);
    CHECK(r.exit_code == k_integrity);
    CHECK(contains(r.err, "blobs/sha256/" + hex + " is not listed in ferry.json"));
  }
  SUBCASE("a duplicate entry") {
    const fs::path bad = altered(dir, p, "dup.tar.zst", [](std::vector<TarItem>& items) { items.push_back(items[5]); });
    const RunResult r = verify(p, bad);
    CHECK(r.exit_code == k_integrity);
    CHECK(contains(r.err, "appears twice"));
  }
  SUBCASE("a missing blob") {
    std::string removed;
    const fs::path bad = altered(dir, p, "missing.tar.zst", [&](std::vector<TarItem>& items) {
      removed = items.back().path;
      items.pop_back();
    });
    const RunResult r = verify(p, bad);
    CHECK(r.exit_code == k_integrity);
    CHECK(contains(r.err, "lacks 1 entry"));
    CHECK(contains(r.err, removed));
  }
}

TEST_CASE("a manifest that does not parse is reported with file and line") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  write_file(dir / "broken.yaml", "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: x, version: \"1\"}\nimages:\n"
                                  "  - ref: oci:./layout:app1\n    nmae: example.com/a:1\n");
  const RunResult r = run_ferry({"pack", "-f", (dir / "broken.yaml").string(), "-o", (dir / "x.tar.zst").string(), "--key",
                             f.key.string()});
  CHECK(r.exit_code == k_usage);
  CHECK(contains(r.err, "broken.yaml:6:"));
  CHECK(contains(r.err, "nmae"));
  CHECK(contains(r.err, "name"));
  CHECK_FALSE(fs::exists(dir / "x.tar.zst"));
}

TEST_CASE("a source image that does not exist is named") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  SUBCASE("a missing layout directory") {
    write_file(dir / "m.yaml", "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: x, version: \"1\"}\n"
                               "images:\n  - {ref: \"oci:./nowhere:app\", name: example.com/a:1}\n");
    const RunResult r = run_ferry({"pack", "-f", (dir / "m.yaml").string(), "-o", (dir / "x.tar.zst").string(), "--key", f.key.string()});
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "nowhere"));
  }
  SUBCASE("a missing ref in an existing layout") {
    write_file(dir / "m.yaml", "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: x, version: \"1\"}\n"
                               "images:\n  - {ref: \"oci:./layout:app3\", name: example.com/a:1}\n");
    const RunResult r = run_ferry({"pack", "-f", (dir / "m.yaml").string(), "-o", (dir / "x.tar.zst").string(), "--key", f.key.string()});
    CHECK(r.exit_code == k_usage);
    CHECK(contains(r.err, "app3"));
  }
  CHECK_FALSE(fs::exists(dir / "x.tar.zst"));
  check_no_leftovers(dir.path());
}

TEST_CASE("a corrupt docker-save archive is refused and nothing is written") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  const std::string bytes = read_file(f.archive);
  write_file(dir / "cut.tar", bytes.substr(0, bytes.size() / 3));
  write_file(dir / "m.yaml", "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: x, version: \"1\"}\n"
                             "images:\n  - docker-archive:./cut.tar\n");
  const RunResult r = run_ferry({"pack", "-f", (dir / "m.yaml").string(), "-o", (dir / "x.tar.zst").string(), "--key", f.key.string()});
  CHECK(r.exit_code == k_integrity);
  CHECK(contains(r.err, "cut.tar"));
  CHECK_FALSE(fs::exists(dir / "x.tar.zst"));
  CHECK_FALSE(fs::exists(dir / "x.sha256"));
  check_no_leftovers(dir.path());
}

TEST_CASE("a layer that changed in the source after its manifest was written stops pack") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  // Corrupt one layer blob of the layout in place (same size, different bytes).
  const json index = json::parse(read_file(f.layout / "index.json"));
  std::string manifest_digest;
  for (const auto& m : index["manifests"]) {
    if (m["annotations"]["org.opencontainers.image.ref.name"] == "app2") manifest_digest = m["digest"];
  }
  const json manifest = json::parse(read_file(f.layout / "blobs/sha256" / manifest_digest.substr(7)));
  const std::string layer = manifest["layers"].back()["digest"];
  const fs::path blob = f.layout / "blobs/sha256" / layer.substr(7);
  std::string bytes = read_file(blob);
  bytes[bytes.size() / 2] ^= 0x01;
  write_file(blob, bytes);
  const RunResult r = run_ferry({"pack", "-f", f.manifest.string(), "-o", (dir / "x.tar.zst").string(), "--key", f.key.string()});
  CHECK(r.exit_code == k_integrity);
  CHECK(contains(r.err, layer));
  CHECK_FALSE(fs::exists(dir / "x.tar.zst"));
  check_no_leftovers(dir.path());
}

TEST_CASE("a wrong passphrase is refused without writing anything") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  write_file(dir / "pass", "correct horse\n");
  write_file(dir / "wrong", "battery staple\n");
  // Passphrase files are secrets: ferry refuses one that others may read.
  for (const char* name : {"pass", "wrong"}) fs::permissions(dir / name, fs::perms::owner_read | fs::perms::owner_write);
  REQUIRE(run_ferry({"keygen", "--out", (dir / "locked").string(), "--passphrase-file", (dir / "pass").string()}).exit_code == 0);
  CHECK(contains(read_file(dir / "locked.key"), "ENCRYPTED"));
  const RunResult r = run_ferry({"pack", "-f", f.manifest.string(), "-o", (dir / "x.tar.zst").string(), "--key",
                             (dir / "locked.key").string(), "--passphrase-file", (dir / "wrong").string()});
  CHECK(r.exit_code == k_usage);
  CHECK(contains(r.err, "wrong passphrase"));
  CHECK(contains(r.err, "locked.key"));
  CHECK_FALSE(fs::exists(dir / "x.tar.zst"));
  const RunResult ok = run_ferry({"pack", "-f", f.manifest.string(), "-o", (dir / "x.tar.zst").string(), "--key",
                              (dir / "locked.key").string()},
                             {.cwd = {}, .env = {{"FERRY_KEY_PASSPHRASE", "correct horse"}}, .input = {}});
  INFO(ok.err);
  CHECK(ok.exit_code == 0);
}

TEST_CASE("usage errors exit 2 and name the flag") {
  require_tools(k_tools);
  const RunResult r = run_ferry({"pack", "-f"});
  CHECK(r.exit_code == k_usage);
  const RunResult unknown = run_ferry({"frobnicate"});
  CHECK(unknown.exit_code == k_usage);
  const RunResult version = run_ferry({"--version"});
  CHECK(version.exit_code == 0);
  CHECK(contains(version.out, "ferry 0."));
}

} // TEST_SUITE
