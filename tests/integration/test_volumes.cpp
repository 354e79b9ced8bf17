// Split bundles (pack --split): volumes within the size, checked with coreutils, tar and
// openssl, each verified alone, pushed one at a time in any order or all at once; missing,
// foreign, duplicate, corrupt and relabelled volumes named.
// SPDX-License-Identifier: Apache-2.0
#include "common/registry_fixture.hpp"
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <thread>

#include <unistd.h>
#include <memory>

namespace fs = std::filesystem;
using namespace ferry::itest;
using ferry::test::noise;
using ferry::test::RegistryServer;
using nlohmann::json;

namespace {

const std::vector<std::string> k_tools = {"docker-registry", "umoci", "skopeo", "openssl", "sha256sum", "tar", "zstd"};
constexpr std::uint64_t k_limit = 20ull << 20; // --split 20M
constexpr std::size_t k_big_layer = 50'000'000; // spans volumes
const std::string k_prefix = "mirror";


// An image or chart as it must appear in the target.
struct Artifact {
  std::string repository; // with the target prefix
  std::string tag;
  std::string digest;
  std::string repo_tag() const { return repository + ":" + tag; }
};

// Three images (one with the 50 MB layer, two sharing a base) and a chart, packed with
// --split 20M; and a volume of another bundle (the same images, another version).
struct Fixture {
  TestDir dir;
  fs::path pub;
  std::vector<fs::path> volumes; // in order
  fs::path checksums;
  fs::path foreign; // volume 000 of the other bundle
  std::vector<Artifact> artifacts;
  std::string pack_out;
};

std::string images_yaml() {
  std::string out;
  for (int i = 0; i < 3; ++i) {
    out += "  - {ref: \"oci:./layout:img" + std::to_string(i) + "\", name: example.com/split/img" + std::to_string(i) +
           ":1.0}\n";
  }
  return out;
}

std::string manifest_yaml(const std::string& version) {
  return "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: split, version: \"" + version + "\"}\nimages:\n" +
         images_yaml() + "charts:\n  - {name: split, path: ./charts/split, version: 1.0.0}\n" +
         "releases:\n  - {name: split, namespace: split, chart: split}\n";
}

// pack keeps its downloads out of the home directory.
RunOptions cache_env(const TestDir& dir) {
  return {.cwd = {}, .env = {{"XDG_CACHE_HOME", (dir / "cache").string()}}, .input = {}};
}

Fixture& fixture() {
  static std::unique_ptr<Fixture> made;
  if (made) return *made;
  auto f = std::make_unique<Fixture>();
  const TestDir& dir = f->dir;
  const std::string layout = (dir / "layout").string();
  must({"umoci", "init", "--layout", layout});
  write_file(dir / "content/big.bin", noise(k_big_layer, 1));
  write_file(dir / "content/base.bin", noise(6u << 20, 2));
  for (int i = 0; i < 3; ++i) {
    const std::string name = "img" + std::to_string(i);
    must({"umoci", "new", "--image", layout + ":" + name});
    if (i == 0) {
      must({"umoci", "insert", "--image", layout + ":" + name, (dir / "content/big.bin").string(), "/big.bin"});
    } else {
      must({"umoci", "insert", "--image", layout + ":" + name, (dir / "content/base.bin").string(), "/base.bin"});
      const fs::path own = dir / ("content/" + name + ".bin");
      write_file(own, noise((3u << 20) * static_cast<unsigned>(i), 10 + static_cast<std::uint64_t>(i)));
      must({"umoci", "insert", "--image", layout + ":" + name, own.string(), "/own.bin"});
    }
  }
  write_file(dir / "charts/split/Chart.yaml", "apiVersion: v2\nname: split\nversion: 1.0.0\n");
  write_file(dir / "charts/split/values.yaml", "replicas: 1\n");
  write_file(dir / "bundle.yaml", manifest_yaml("1.0.0"));
  write_file(dir / "other.yaml", manifest_yaml("2.0.0"));
  const RunResult keygen = run_ferry({"keygen", "--out", (dir / "release").string()});
  REQUIRE_MESSAGE(keygen.exit_code == 0, keygen.err);
  f->pub = dir / "release.pub";

  fs::create_directories(dir / "out");
  const RunResult pack = run_ferry({"pack", "-f", (dir / "bundle.yaml").string(), "-o", (dir / "out/split.tar.zst").string(),
                                    "--key", (dir / "release.key").string(), "--split", "20M"},
                              cache_env(dir));
  INFO(pack.err);
  REQUIRE(pack.exit_code == 0);
  f->pack_out = pack.out;
  for (int k = 0;; ++k) {
    char name[32];
    std::snprintf(name, sizeof name, "split.%03d.tar.zst", k);
    if (!fs::exists(dir / "out" / name)) break;
    f->volumes.push_back(dir / "out" / name);
  }
  f->checksums = dir / "out/split.sha256";
  fs::create_directories(dir / "other");
  const RunResult other = run_ferry({"pack", "-f", (dir / "other.yaml").string(), "-o", (dir / "other/other.tar.zst").string(),
                                     "--key", (dir / "release.key").string(), "--split", "20M"},
                              cache_env(dir));
  INFO(other.err);
  REQUIRE(other.exit_code == 0);
  f->foreign = dir / "other/other.000.tar.zst";

  const RunResult inspect = run_ferry({"inspect", f->volumes.front().string(), "--output", "json"});
  REQUIRE(inspect.exit_code == 0);
  const json info = json::parse(inspect.out);
  for (const auto& image : info["images"]) {
    const std::string ref = image["ref"]; // example.com/split/imgN:1.0
    const std::string path = ref.substr(ref.find('/') + 1);
    const auto colon = path.rfind(':');
    f->artifacts.push_back({k_prefix + "/" + path.substr(0, colon), path.substr(colon + 1), image["digest"]});
  }
  for (const auto& chart : info["charts"]) {
    f->artifacts.push_back({k_prefix + "/charts/" + chart["name"].get<std::string>(), chart["version"], chart["digest"]});
  }
  REQUIRE(f->artifacts.size() == 4);
  made = std::move(f);
  return *made;
}

std::vector<std::string> strings(const std::vector<fs::path>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) out.push_back(p.string());
  return out;
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ferry push FILES --registry TARGET/mirror, journal and staging in `state`.
RunResult push(const Fixture& f, const std::vector<fs::path>& files, const RegistryServer& target, const fs::path& state,
               std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"push"};
  for (const auto& file : files) args.push_back(file.string());
  args = concat(args, {"--registry", target.host() + "/" + k_prefix, "--pubkey", f.pub.string(), "--plain-http",
                       "--state-dir", state.string(), "--output", "json"});
  return run_ferry(concat(args, extra));
}

// ferry.json of a volume, read with tar.
std::string descriptor_of(const fs::path& volume) {
  return must({"tar", "--zstd", "-xOf", volume.string(), "ferry.json"});
}

// Every artifact is in the target under its tag with the bundle's digest, and skopeo can
// copy each image out of it (every blob is really there).
void check_complete(const Fixture& f, const RegistryServer& target, const fs::path& scratch) {
  for (const auto& a : f.artifacts) {
    CAPTURE(a.repo_tag());
    CHECK(ferry::test::registry_digest(target, a.repo_tag()) == a.digest);
    if (a.repository.find("/charts/") != std::string::npos) continue;
    std::vector<std::string> copy = {"skopeo", "copy", "--quiet"};
    for (const auto& flag : target.skopeo_src_flags()) copy.push_back(flag);
    copy.push_back(target.docker_ref(a.repo_tag()));
    copy.push_back("oci:" + (scratch / "copies").string() + ":" + a.tag + "-" +
                   a.repository.substr(a.repository.rfind('/') + 1));
    must(copy);
  }
}

// A copy of `volume` in `dir` with one byte flipped in the middle of the file.
fs::path flipped_copy(const fs::path& volume, const fs::path& dir) {
  const fs::path copy = dir / volume.filename();
  fs::create_directories(dir);
  fs::copy_file(volume, copy, fs::copy_options::overwrite_existing);
  std::fstream io(copy, std::ios::in | std::ios::out | std::ios::binary);
  const auto at = static_cast<std::streamoff>(fs::file_size(copy) / 2);
  io.seekg(at);
  char c = 0;
  io.read(&c, 1);
  c = static_cast<char>(c ^ 0x20);
  io.seekp(at);
  io.write(&c, 1);
  return copy;
}

} // namespace

TEST_CASE("pack --split writes volumes no larger than the limit, the large layer in pieces, each a whole bundle stream") {
  require_tools(k_tools);
  const Fixture& f = fixture();
  INFO(f.pack_out);
  REQUIRE(f.volumes.size() >= 4);
  const std::string first = descriptor_of(f.volumes.front());
  const json d = json::parse(first);
  CHECK(d["volumes"]["count"] == f.volumes.size());
  CHECK(d["volumes"]["limit"] == k_limit);
  bool big_in_pieces = false;
  for (const auto& b : d["blobs"]) {
    if (b["size"].get<std::uint64_t>() < k_big_layer) continue;
    REQUIRE(b.contains("pieces"));
    CHECK(b["pieces"].size() >= 3);
    for (std::size_t i = 1; i < b["pieces"].size(); ++i) {
      CHECK(b["pieces"][i]["volume"].get<int>() == b["pieces"][i - 1]["volume"].get<int>() + 1);
    }
    big_in_pieces = true;
  }
  CHECK(big_in_pieces);

  for (std::size_t k = 0; k < f.volumes.size(); ++k) {
    const fs::path& v = f.volumes[k];
    CAPTURE(v);
    CHECK(fs::file_size(v) <= k_limit);
    // tar lists it; the head comes first, then the layout and the manifests.
    const std::string listing = must({"tar", "--zstd", "-tf", v.string()});
    CHECK(listing.rfind("ferry.json\nferry.json.sig\nvolume.json\noci-layout\nindex.json\nblobs/sha256/", 0) == 0);
    // The same signed ferry.json in every volume; volume.json names it and the volume.
    CHECK(descriptor_of(v) == first);
    const json label = json::parse(must({"tar", "--zstd", "-xOf", v.string(), "volume.json"}));
    CHECK(label["volume"] == k);
    CHECK(label["count"] == f.volumes.size());
    CHECK(label["bundle"] == "sha256:" + must({"sh", "-c", "tar --zstd -xOf " + ferry::test::shell_quote(v) +
                                                                " ferry.json | sha256sum | cut -c1-64 | tr -d '\\n'"}));
  }
  // Pieces are listed in their volumes under pieces/sha256/<hex>/NNN.
  CHECK(contains(must({"tar", "--zstd", "-tf", f.volumes[1].string()}), "pieces/sha256/"));

  // coreutils check every volume.
  const RunResult sums = run({"sha256sum", "-c", f.checksums.filename().string()},
                               {.cwd = f.checksums.parent_path(), .env = {}, .input = {}});
  INFO(sums.out, sums.err);
  CHECK(sums.exit_code == 0);
  CHECK(std::count(sums.out.begin(), sums.out.end(), '\n') == static_cast<long>(f.volumes.size()));

  // openssl checks the signature of ferry.json taken from any volume.
  const TestDir scratch;
  must({"tar", "--zstd", "-xf", f.volumes.back().string(), "-C", scratch.path().string(), "ferry.json", "ferry.json.sig"});
  must({"sh", "-c", "base64 -d " + ferry::test::shell_quote(scratch / "ferry.json.sig") + " > " +
                        ferry::test::shell_quote(scratch / "sig.bin")});
  must({"openssl", "pkeyutl", "-verify", "-pubin", "-inkey", f.pub.string(), "-rawin", "-in",
        (scratch / "ferry.json").string(), "-sigfile", (scratch / "sig.bin").string()});
}

TEST_CASE("each volume verifies alone; the others are listed as not given") {
  require_tools(k_tools);
  const Fixture& f = fixture();
  for (std::size_t k = 0; k < f.volumes.size(); ++k) {
    CAPTURE(k);
    const RunResult r = run_ferry({"verify", f.volumes[k].string(), "--pubkey", f.pub.string(), "--output", "json"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const json report = json::parse(r.out);
    REQUIRE(report["volumes"]["given"].size() == 1);
    CHECK(report["volumes"]["given"][0]["volume"] == k);
    CHECK(report["volumes"]["given"][0]["verified"]["entries"].get<int>() > 0);
    CHECK(report["volumes"]["missing"].size() == f.volumes.size() - 1);
  }
  // Text: which were verified, which not given.
  const RunResult two = run_ferry({"verify", f.volumes[2].string(), f.volumes[0].string(), "--pubkey", f.pub.string()});
  INFO(two.err);
  REQUIRE(two.exit_code == 0);
  CHECK(contains(two.out, "2 of " + std::to_string(f.volumes.size()) + " verified (000, 002)"));
  CHECK(contains(two.out, f.volumes[1].string()));
  // A glob's worth: all of them, in any order.
  std::vector<std::string> all = strings(f.volumes);
  std::reverse(all.begin(), all.end());
  const RunResult every = run_ferry(concat({"verify"}, concat(all, {"--pubkey", f.pub.string()})));
  INFO(every.err);
  CHECK(every.exit_code == 0);
  CHECK_FALSE(contains(every.out, "not given"));
  const RunResult inspect = run_ferry({"inspect", f.volumes[1].string()});
  CHECK(inspect.exit_code == 0);
  CHECK(contains(inspect.out, "1 of " + std::to_string(f.volumes.size()) + " given (001)"));
}

TEST_CASE("pushing the volumes in reverse order, one at a time with --partial, completes every image") {
  require_tools(k_tools);
  const Fixture& f = fixture();
  RegistryServer target;
  const TestDir scratch;
  const fs::path state = scratch / "state";

  // Without --partial an incomplete push is an error naming the volumes it waits for.
  const RunResult strict = push(f, {f.volumes.back()}, target, state);
  CHECK(strict.exit_code == 1);
  CHECK(contains(strict.err, f.volumes.front().filename().string()));
  CHECK(contains(strict.err, "--partial"));

  std::size_t waiting_before = f.artifacts.size() + 1;
  for (std::size_t n = f.volumes.size(); n-- > 0;) {
    CAPTURE(n);
    const RunResult r = push(f, {f.volumes[n]}, target, state, {"--partial"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const json report = json::parse(r.out);
    const std::size_t waiting = report["waiting"].size();
    CHECK(waiting <= waiting_before);
    waiting_before = waiting;
    for (const auto& w : report["waiting"]) {
      // What waits, waits for volumes not pushed yet.
      for (const auto& k : w["volumes"]) CHECK(k.get<std::size_t>() < n);
    }
    // The staging directory holds only pieces of blobs not yet complete.
    if (n == 0) {
      CHECK(waiting == 0);
      CHECK(report["staging"]["joinedBlobs"] == 1);
    }
  }
  check_complete(f, target, scratch.path());
  // The staged pieces are gone once their blob is in the target.
  std::size_t staged = 0;
  for (const auto& e : fs::recursive_directory_iterator(state)) {
    if (e.is_regular_file() && e.path().parent_path().filename().string().rfind("pieces-", 0) == 0) ++staged;
  }
  CHECK(staged == 0);
}

TEST_CASE("a volume push killed with SIGKILL at any point is completed by pushing that volume again") {
  require_tools(k_tools);
  const Fixture& f = fixture();
  // The volumes holding pieces of the large layer.
  std::vector<std::size_t> piece_volumes;
  const json descriptor = json::parse(descriptor_of(f.volumes.front()));
  for (const auto& blob : descriptor["blobs"]) {
    if (!blob.contains("pieces")) continue;
    for (const auto& piece : blob["pieces"]) piece_volumes.push_back(piece["volume"].get<std::size_t>());
  }
  REQUIRE(piece_volumes.size() >= 2);
  const std::size_t last = f.volumes.size() - 1;

  // Counts the blobs the registry has stored (each has a `data` file).
  const auto stored_blobs = [](const RegistryServer& server) {
    std::size_t count = 0;
    std::error_code ec;
    const fs::path blobs = server.dir() / "storage/docker/registry/v2/blobs/sha256";
    for (fs::recursive_directory_iterator it(blobs, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->path().filename() == "data") ++count;
    }
    return count;
  };
  struct KillPoint {
    std::string name;
    std::size_t volume; // the volume whose push is killed
    std::function<bool(const RegistryServer&, const fs::path& state, std::chrono::steady_clock::duration)> reached;
  };
  using namespace std::chrono_literals;
  const std::vector<KillPoint> points = {
      {"30 ms into the first volume", 0, [](const RegistryServer&, const fs::path&, auto t) { return t >= 30ms; }},
      {"once a piece of the large layer is staged", piece_volumes.front(),
       [](const RegistryServer&, const fs::path& state, auto) {
         std::error_code ec;
         for (fs::recursive_directory_iterator it(state, ec), end; !ec && it != end; it.increment(ec)) {
           if (it->is_regular_file() && it->path().parent_path().filename().string().rfind("pieces-", 0) == 0) return true;
         }
         return false;
       }},
      {"when the last volume's first blob is stored", last,
       [&, before = std::size_t{0}](const RegistryServer& s, const fs::path&, auto) mutable {
         if (before == 0) before = stored_blobs(s) + 1;
         return stored_blobs(s) >= before;
       }},
  };
  int interrupted = 0;
  for (const auto& point : points) {
    CAPTURE(point.name);
    RegistryServer target;
    const TestDir scratch;
    const fs::path state = scratch / "state";
    for (std::size_t n = 0; n < f.volumes.size(); ++n) {
      if (n == point.volume) {
        const char* bin = std::getenv("FERRY_BIN");
        REQUIRE_MESSAGE(bin, "FERRY_BIN is not set (run the tests with `meson test`)");
        std::vector<std::string> argv = {bin, "push", f.volumes[n].string(), "--registry",
                                         target.host() + "/" + k_prefix, "--pubkey", f.pub.string(), "--plain-http",
                                         "--state-dir", state.string(), "--partial"};
        Background killed(argv);
        const auto began = std::chrono::steady_clock::now();
        while (killed.running() && !point.reached(target, state, std::chrono::steady_clock::now() - began) &&
               std::chrono::steady_clock::now() - began < 60s) {
          std::this_thread::sleep_for(200us);
        }
        killed.kill_now();
        const RunResult r = killed.wait();
        MESSAGE(point.name << ": exit " << r.exit_code);
        if (r.exit_code == 128 + 9) ++interrupted; // SIGKILL
      }
      // The volume pushed (again, after a kill): it completes what that volume brings.
      const RunResult r = push(f, {f.volumes[n]}, target, state, {"--partial"});
      INFO(r.err);
      REQUIRE(r.exit_code == 0);
    }
    check_complete(f, target, scratch.path());
  }
  // A fast machine may finish a push before its kill point; most must be interrupted.
  CHECK(interrupted >= 2);
}

TEST_CASE("push refuses before reading a volume when its pieces cannot be staged, with the numbers") {
  require_tools(k_tools);
  const Fixture& f = fixture();
  const json descriptor = json::parse(descriptor_of(f.volumes.front()));
  std::size_t piece_volume = 0;
  std::uint64_t piece_size = 0;
  for (const auto& blob : descriptor["blobs"]) {
    if (!blob.contains("pieces")) continue;
    piece_volume = blob["pieces"][0]["volume"].get<std::size_t>();
    piece_size = blob["pieces"][0]["size"].get<std::uint64_t>();
  }
  REQUIRE(piece_size > (4u << 20));
  RegistryServer target;
  const TestDir scratch;
  const fs::path mnt = scratch / "small";
  fs::create_directories(mnt);
  // The state directory (where pieces wait) on a 4 MiB tmpfs in a private mount namespace.
  const char* bin = std::getenv("FERRY_BIN");
  REQUIRE_MESSAGE(bin, "FERRY_BIN is not set (run the tests with `meson test`)");
  std::vector<std::string> argv = ::geteuid() == 0 ? std::vector<std::string>{"unshare", "-m"}
                                                   : std::vector<std::string>{"unshare", "-r", "-m"};
  argv.insert(argv.end(), {"sh", "-c", "mount -t tmpfs -o size=4m tmpfs \"$1\" || exit 90; shift; exec \"$@\"", "sh",
                           mnt.string(), bin, "push", f.volumes[piece_volume].string(), "--registry",
                           target.host() + "/" + k_prefix, "--pubkey", f.pub.string(), "--plain-http", "--state-dir",
                           (mnt / "state").string(), "--partial"});
  const RunResult r = run(argv);
  if (r.exit_code == 90) {
    const char* required = std::getenv("FERRY_REQUIRE_INTEGRATION");
    const std::string why = "cannot mount a tmpfs: " + r.err;
    REQUIRE_MESSAGE(!(required && std::string(required) == "1"), why);
    MESSAGE("SKIPPED: cannot mount a tmpfs in a private mount namespace: " << r.err);
    return;
  }
  INFO(r.out, r.err);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.err, "staging the pieces of blobs larger than a volume needs " + std::to_string(piece_size) + " bytes"));
  CHECK(contains(r.err, "--state-dir"));
  // Refused before anything was uploaded.
  CHECK_FALSE(fs::exists(target.dir() / "storage/docker/registry/v2/blobs"));
}

TEST_CASE("pushing all volumes in one command completes every image") {
  require_tools(k_tools);
  const Fixture& f = fixture();
  RegistryServer target;
  const TestDir scratch;
  std::vector<fs::path> shuffled = f.volumes;
  std::rotate(shuffled.begin(), shuffled.begin() + 2, shuffled.end());
  const RunResult r = push(f, shuffled, target, scratch / "state");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json report = json::parse(r.out);
  CHECK(report["waiting"].empty());
  CHECK(report["artifacts"].size() == f.artifacts.size());
  CHECK(report["volumes"]["missing"].empty());
  check_complete(f, target, scratch.path());
}

TEST_CASE("a missing volume is named: push without --partial, extract and unpack refuse") {
  require_tools(k_tools);
  const Fixture& f = fixture();
  // The operator's copy lacks volume 001.
  const TestDir scratch;
  std::vector<fs::path> copy;
  for (std::size_t k = 0; k < f.volumes.size(); ++k) {
    if (k == 1) continue;
    copy.push_back(scratch.path() / f.volumes[k].filename());
    fs::copy_file(f.volumes[k], copy.back());
  }
  const std::string missing = (scratch.path() / f.volumes[1].filename()).string();
  RegistryServer target;
  const RunResult pushed = push(f, copy, target, scratch / "state");
  CHECK(pushed.exit_code == 1);
  CHECK(contains(pushed.err, missing));

  const RunResult extracted =
      run_ferry(concat(concat({"extract"}, strings(copy)), {"-o", (scratch / "layout").string(), "--pubkey", f.pub.string()}));
  CHECK(extracted.exit_code == 3);
  CHECK(contains(extracted.err, missing));
  CHECK_FALSE(fs::exists(scratch / "layout"));

  const RunResult unpacked = run_ferry(concat(concat({"unpack"}, strings(copy)),
                                              {"--registry", target.host() + "/other", "--pubkey", f.pub.string(),
                                               "--plain-http", "--state-dir", (scratch / "state2").string(),
                                               "--skip-check", "--skip-upgrade"}));
  CHECK(unpacked.exit_code == 3);
  CHECK(contains(unpacked.err, missing));
  // Nothing was pushed by unpack: the repository it would have used does not exist.
  CHECK_FALSE(fs::exists(target.dir() / "storage/docker/registry/v2/repositories/other"));
}

TEST_CASE("every volume extracts into one OCI layout that skopeo reads") {
  require_tools(k_tools);
  const Fixture& f = fixture();
  const TestDir scratch;
  const RunResult r =
      run_ferry(concat(concat({"extract"}, strings(f.volumes)), {"-o", (scratch / "layout").string(), "--pubkey", f.pub.string()}));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  // The blob from pieces is one file with its digest.
  const std::string sums = must({"sh", "-c", "cd " + ferry::test::shell_quote(scratch / "layout/blobs/sha256") +
                                                 " && for f in *; do echo \"$f  $f\"; done | sha256sum -c --quiet && echo ok"});
  CHECK(contains(sums, "ok"));
  must({"skopeo", "inspect", "oci:" + (scratch / "layout").string() + ":example.com/split/img0:1.0"});
}

TEST_CASE("any one volume serves ferry values: every volume carries the chart archives") {
  require_tools(k_tools);
  const Fixture& f = fixture();
  const TestDir scratch;
  const RunResult r = run_ferry({"values", f.volumes.back().string(), "--registry", "registry.internal/mirror", "--pubkey",
                                 f.pub.string(), "-o", (scratch / "overlays").string()});
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(fs::exists(scratch / "overlays/split.yaml"));
}

TEST_CASE("a volume of another bundle is named as foreign, a volume given twice as a duplicate") {
  require_tools(k_tools);
  const Fixture& f = fixture();
  const RunResult foreign = run_ferry({"verify", f.volumes[0].string(), f.foreign.string(), "--pubkey", f.pub.string()});
  CHECK(foreign.exit_code == 3);
  CHECK(contains(foreign.err, f.foreign.string() + " is foreign"));
  CHECK(contains(foreign.err, "split 2.0.0"));
  CHECK(contains(foreign.err, "split 1.0.0"));

  const TestDir scratch;
  const fs::path again = scratch / "again.tar.zst";
  fs::copy_file(f.volumes[1], again);
  const RunResult twice = run_ferry({"verify", f.volumes[1].string(), again.string(), "--pubkey", f.pub.string()});
  CHECK(twice.exit_code == 2);
  CHECK(contains(twice.err, "are both volume 1"));
  CHECK(contains(twice.err, again.string()));
  CHECK(contains(twice.err, f.volumes[1].string()));
}

TEST_CASE("a flipped byte in a volume fails with exit 3 naming the entry") {
  require_tools(k_tools);
  const Fixture& f = fixture();
  const TestDir scratch;
  const fs::path bad = flipped_copy(f.volumes[1], scratch.path() / "bad");
  const RunResult r = run_ferry({"verify", bad.string(), "--pubkey", f.pub.string()});
  CHECK(r.exit_code == 3);
  const bool named = contains(r.err, "entry pieces/sha256/") || contains(r.err, "entry blobs/sha256/");
  INFO(r.err);
  CHECK(named);
  CHECK(contains(r.err, bad.string()));
}

TEST_CASE("a volume.json that claims another volume number is caught") {
  require_tools(k_tools);
  const Fixture& f = fixture();
  const TestDir scratch;
  std::vector<TarItem> items = read_tar(f.volumes[1]);
  REQUIRE(items.size() > 3);
  REQUIRE(items[2].path == "volume.json");
  json label = json::parse(items[2].data);
  label["volume"] = 2;
  items[2].data = label.dump() + "\n";
  const fs::path relabelled = scratch / "split.001.tar.zst";
  write_tar(relabelled, items);
  const RunResult r = run_ferry({"verify", relabelled.string(), "--pubkey", f.pub.string()});
  INFO(r.err);
  CHECK(r.exit_code == 3);
  CHECK(contains(r.err, "volume.json says"));
  CHECK(contains(r.err, "is volume 2"));
}

TEST_CASE("--split too small for what every volume repeats is a usage error giving the minimum") {
  require_tools(k_tools);
  const Fixture& f = fixture();
  const TestDir scratch;
  const RunResult r = run_ferry({"pack", "-f", (f.dir / "bundle.yaml").string(), "-o", (scratch / "tiny.tar.zst").string(),
                                 "--key", (f.dir / "release.key").string(), "--split", "4K"},
                                cache_env(scratch));
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "too small"));
  CHECK(contains(r.err, "smallest possible volume here is"));
  CHECK_FALSE(fs::exists(scratch / "tiny.000.tar.zst"));
}
