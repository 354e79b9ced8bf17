// pack's content cache, resume after SIGKILL and disk-space pre-flight: a docker-registry
// on 127.0.0.1 behind a FaultProxy that counts every blob download (and slows them so a
// kill lands mid-way); bundles compared byte for byte with sha256sum; small file systems
// made with tmpfs in a private mount namespace.
// SPDX-License-Identifier: Apache-2.0
#include "common/fault_proxy.hpp"
#include "common/registry_fixture.hpp"
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace ferry::itest;
using ferry::test::noise;
using namespace std::chrono_literals;
using ferry::test::FaultProxy;
using ferry::test::k_every_time;
using ferry::test::Platforms;
using ferry::test::RegistryServer;
using ferry::test::stall_for;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

const std::vector<std::string> k_tools = {"docker-registry", "umoci", "skopeo", "sha256sum"};
constexpr int k_failure = 1;
constexpr int k_integrity_failure = 3;
constexpr int k_killed = 128 + SIGKILL;
// Four images sharing a 4 MiB base layer, each with 3 MiB of its own: 16 MiB of
// incompressible layers, so a bundle does not fit in 8 MiB.
constexpr int k_images = 4;
constexpr std::size_t k_base_size = std::size_t{4} << 20;
constexpr std::size_t k_own_size = std::size_t{3} << 20;
const std::string k_manifests = "^/v2/.+/manifests/";


long long millis(Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

std::string sha256_of(const fs::path& file) { return must({"sha256sum", file.string()}).substr(0, 64); }

// The source registry with its images, a FaultProxy in front, the signing key and a
// bundle manifest naming the images through the proxy.
struct Source {
  RegistryServer server;
  FaultProxy proxy{server.host()};
  fs::path key;
  fs::path manifest;
  std::set<std::string> layers;                // "sha256:<hex>" of every layer
  std::set<std::string> blobs;                 // layers and configs: what pack GETs under /blobs/
  std::map<std::string, std::uint64_t> sizes;  // of every blob
};

std::unique_ptr<Source> make_source(const TestDir& dir) {
  auto s = std::make_unique<Source>();
  const std::string layout = (dir / "layout").string();
  write_file(dir / "content/base.bin", noise(k_base_size, 1));
  must({"umoci", "init", "--layout", layout});
  std::string images;
  for (int i = 0; i < k_images; ++i) {
    const std::string name = "img" + std::to_string(i);
    const fs::path own = dir / ("content/" + name + ".bin");
    write_file(own, noise(k_own_size, static_cast<std::uint64_t>(i) + 2));
    must({"umoci", "new", "--image", layout + ":" + name});
    must({"umoci", "insert", "--image", layout + ":" + name, (dir / "content/base.bin").string(), "/base.bin"});
    must({"umoci", "insert", "--image", layout + ":" + name, own.string(), "/own.bin"});
    ferry::test::push_with_skopeo(s->server, "oci:" + layout + ":" + name, "resume/" + name + ":1.0", Platforms::host);
    // The digests as the registry serves them.
    std::vector<std::string> inspect = {"skopeo", "inspect", "--raw"};
    for (const auto& f : s->server.skopeo_flags()) inspect.push_back(f);
    inspect.push_back(s->server.docker_ref("resume/" + name + ":1.0"));
    const json manifest = json::parse(must(inspect));
    s->blobs.insert(manifest["config"]["digest"].get<std::string>());
    s->sizes[manifest["config"]["digest"]] = manifest["config"]["size"];
    for (const auto& layer : manifest["layers"]) {
      s->layers.insert(layer["digest"].get<std::string>());
      s->blobs.insert(layer["digest"].get<std::string>());
      s->sizes[layer["digest"]] = layer["size"];
    }
    images += "  - " + s->proxy.host() + "/resume/" + name + ":1.0\n";
  }
  REQUIRE(s->layers.size() == k_images + 1);
  fs::remove_all(dir / "layout");
  fs::remove_all(dir / "content");
  s->manifest = dir / "bundle.yaml";
  write_file(s->manifest, "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: resume, version: \"1.0.0\"}\n"
                          "images:\n" + images);
  const RunResult keygen = run_ferry({"keygen", "--out", (dir / "release").string()});
  REQUIRE_MESSAGE(keygen.exit_code == 0, keygen.err);
  s->key = dir / "release.key";
  return s;
}

// HOME inside the test directory (no cache in the real home), no XDG cache directory
// unless a test sets one, no HTTP proxy from the environment.
std::map<std::string, std::string> test_env(const TestDir& dir) {
  fs::create_directories(dir / "home");
  return {{"HOME", (dir / "home").string()},
          {"XDG_CACHE_HOME", ""},
          {"NO_PROXY", "127.0.0.1,localhost"},
          {"no_proxy", "127.0.0.1,localhost"}};
}

std::vector<std::string> pack_args(const Source& s, const fs::path& out, const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"pack", "-f", s.manifest.string(), "-o", out.string(), "--key", s.key.string(),
                                   "--plain-http"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::vector<std::string> ferry_argv(const std::vector<std::string>& args) {
  const char* bin = std::getenv("FERRY_BIN");
  REQUIRE_MESSAGE(bin != nullptr, "FERRY_BIN is not set (run the tests with `meson test`)");
  std::vector<std::string> argv{bin};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// A pack that must succeed, with its JSON report.
json pack_ok(const TestDir& dir, const Source& s, const fs::path& out, std::vector<std::string> extra,
             std::map<std::string, std::string> env = {}) {
  extra.insert(extra.end(), {"--output", "json"});
  std::map<std::string, std::string> full = test_env(dir);
  for (auto& [k, v] : env) full[k] = v;
  const RunResult r = run_ferry(pack_args(s, out, extra), {.cwd = {}, .env = full, .input = {}});
  INFO("ferry pack stderr: ", r.err);
  REQUIRE(r.exit_code == 0);
  json report = json::parse(r.out);
  report["stderr"] = r.err;
  return report;
}

// How often each blob was downloaded (GET .../blobs/<digest>) through the proxy since its
// requests were last cleared.
std::map<std::string, int> blob_gets(const FaultProxy& proxy) {
  static const std::regex blob_target("^/v2/.+/blobs/(sha256:[0-9a-f]{64})");
  std::map<std::string, int> out;
  for (const auto& r : proxy.requests()) {
    std::smatch m;
    if (r.method == "GET" && std::regex_search(r.target, m, blob_target)) ++out[m[1]];
  }
  return out;
}

// The same, restricted to layers.
int layer_gets(const Source& s) {
  int n = 0;
  for (const auto& [digest, count] : blob_gets(s.proxy)) {
    if (s.layers.count(digest)) n += count;
  }
  return n;
}

// Every digest of `digests` exactly once.
std::map<std::string, int> once_each(const std::set<std::string>& digests) {
  std::map<std::string, int> out;
  for (const auto& d : digests) out[d] = 1;
  return out;
}

// The blobs the cache holds under their names ("sha256:<hex>").
std::set<std::string> cached(const fs::path& cache) {
  std::set<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(cache / "blobs/sha256", ec), end; !ec && it != end; it.increment(ec)) {
    out.insert("sha256:" + it->path().filename().string());
  }
  return out;
}

std::size_t count_in(const std::set<std::string>& digests, const std::set<std::string>& of) {
  return static_cast<std::size_t>(std::count_if(digests.begin(), digests.end(), [&](const auto& d) { return of.count(d); }));
}

// Entries of `dir` whose name starts with `prefix` (temporaries: ".NAME.ferry-…", ".blob-…").
std::vector<fs::path> entries(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().rfind(prefix, 0) == 0) out.push_back(it->path());
  }
  return out;
}

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The checksum file beside `bundle` names it with the bundle's sha256 (sha256sum -c).
void check_checksum_file(const fs::path& bundle) {
  const fs::path sums = bundle.parent_path() / (bundle.stem().stem().string() + ".sha256");
  CHECK(read_file(sums) == sha256_of(bundle) + "  " + bundle.filename().string() + "\n");
}

// A stall on every layer download: the run lasts long enough for the kill points.
void slow_layers(Source& s, std::chrono::milliseconds stall) {
  std::string alternatives;
  for (const auto& d : s.layers) alternatives += (alternatives.empty() ? "" : "|") + d;
  s.proxy.add_rule(stall_for("GET", "/blobs/(" + alternatives + ")$", stall, k_every_time));
}

} // namespace

TEST_SUITE("pack-resume") {

TEST_CASE("a warm cache downloads no blob and gives the same bundle; --no-cache downloads them all; -j 1 and -j 8 agree") {
  require_tools(k_tools);
  TestDir dir;
  const auto s = make_source(dir);
  const fs::path cache = dir / "cache";

  const json cold = pack_ok(dir, *s, dir / "cold.tar.zst", {"--cache", cache.string(), "-j", "1"});
  CHECK(blob_gets(s->proxy) == once_each(s->blobs));
  CHECK(cold["registryBlobs"]["fromCache"] == 0);
  CHECK(cold["registryBlobs"]["cache"] == cache.string());
  // Everything downloaded is in the cache, under its own digest (checked with sha256sum).
  const std::set<std::string> kept = cached(cache);
  for (const auto& d : s->blobs) {
    CAPTURE(d);
    REQUIRE(kept.count(d));
    CHECK("sha256:" + sha256_of(cache / "blobs/sha256" / d.substr(7)) == d);
  }
  CHECK(entries(cache, ".blob-").empty());
  const std::string reference = sha256_of(dir / "cold.tar.zst");
  check_checksum_file(dir / "cold.tar.zst");

  {
    INFO("warm, -j 8");
    s->proxy.clear_requests();
    const json warm = pack_ok(dir, *s, dir / "warm.tar.zst", {"--cache", cache.string(), "-j", "8"});
    CHECK(blob_gets(s->proxy).empty());
    std::uint64_t bytes = 0;
    for (const auto& d : s->blobs) bytes += s->sizes.at(d);
    CHECK(warm["registryBlobs"]["fromCache"] == s->blobs.size());
    CHECK(warm["registryBlobs"]["fromCacheBytes"] == bytes);
    // Only the manifests named by tag were asked for again (tags move).
    CHECK(warm["registryBlobs"]["downloaded"] == k_images);
    CHECK(contains(warm["stderr"].get<std::string>(),
                   std::to_string(s->blobs.size()) + " blobs come from the cache " + cache.string()));
    CHECK(sha256_of(dir / "warm.tar.zst") == reference);
    check_checksum_file(dir / "warm.tar.zst");
  }
  {
    INFO("another empty cache, -j 8");
    s->proxy.clear_requests();
    pack_ok(dir, *s, dir / "other.tar.zst", {"--cache", (dir / "cache2").string(), "-j", "8"});
    CHECK(blob_gets(s->proxy) == once_each(s->blobs));
    CHECK(sha256_of(dir / "other.tar.zst") == reference);
  }
  {
    INFO("--no-cache, -j 1 and -j 8");
    for (const std::string jobs : {"1", "8"}) {
      CAPTURE(jobs);
      s->proxy.clear_requests();
      const fs::path out = dir / ("nocache-" + jobs + ".tar.zst");
      const json r = pack_ok(dir, *s, out, {"--no-cache", "-j", jobs});
      CHECK(blob_gets(s->proxy) == once_each(s->blobs));
      CHECK(r["registryBlobs"]["cache"].is_null());
      CHECK(sha256_of(out) == reference);
    }
    CHECK_FALSE(fs::exists(dir / "home/.cache"));
  }
  {
    INFO("the default cache: $XDG_CACHE_HOME/ferry, else ~/.cache/ferry");
    pack_ok(dir, *s, dir / "xdg.tar.zst", {}, {{"XDG_CACHE_HOME", (dir / "xdg").string()}});
    CHECK(cached(dir / "xdg/ferry") == kept);
    CHECK_FALSE(fs::exists(dir / "home/.cache"));
    pack_ok(dir, *s, dir / "home.tar.zst", {});
    CHECK(cached(dir / "home/.cache/ferry") == kept);
    CHECK(sha256_of(dir / "home.tar.zst") == reference);
  }
  {
    INFO("--cache and --no-cache together are refused");
    const RunResult r = run_ferry(pack_args(*s, dir / "x.tar.zst", {"--cache", cache.string(), "--no-cache"}),
                                  {.cwd = {}, .env = test_env(dir), .input = {}});
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, "--no-cache"));
  }
}

TEST_CASE("a damaged file in the cache fails pack with exit 3 naming it; deleted, it is downloaded again") {
  require_tools(k_tools);
  TestDir dir;
  const auto s = make_source(dir);
  const fs::path cache = dir / "cache";
  pack_ok(dir, *s, dir / "first.tar.zst", {"--cache", cache.string()});
  const std::string reference = sha256_of(dir / "first.tar.zst");
  fs::create_directories(dir / "out");
  const fs::path out = dir / "out/again.tar.zst";
  const std::string layer = *s->layers.begin();
  const fs::path layer_file = cache / "blobs/sha256" / layer.substr(7);

  {
    INFO("a flipped byte in a layer");
    std::string bytes = read_file(layer_file);
    bytes[bytes.size() / 2] ^= 0x20;
    write_file(layer_file, bytes);
    s->proxy.clear_requests();
    const RunResult r =
        run_ferry(pack_args(*s, out, {"--cache", cache.string()}), {.cwd = {}, .env = test_env(dir), .input = {}});
    INFO(r.err);
    CHECK(r.exit_code == k_integrity_failure);
    CHECK(contains(r.err, layer));
    CHECK(contains(r.err, "delete " + layer_file.string()));
    CHECK(listing(dir / "out").empty()); // no bundle, no checksum file, no temporaries
    CHECK(layer_gets(*s) == 0);

    fs::remove(layer_file);
    s->proxy.clear_requests();
    pack_ok(dir, *s, out, {"--cache", cache.string()});
    CHECK(blob_gets(s->proxy) == std::map<std::string, int>{{layer, 1}});
    CHECK(sha256_of(out) == reference);
    CHECK(listing(dir / "out") == std::vector<std::string>{"again.sha256", "again.tar.zst"});
    fs::remove(out);
    fs::remove(dir / "out/again.sha256");
  }
  {
    INFO("a truncated layer is removed with a warning and downloaded again");
    std::string bytes = read_file(layer_file);
    write_file(layer_file, bytes.substr(0, bytes.size() / 2));
    s->proxy.clear_requests();
    const json r = pack_ok(dir, *s, out, {"--cache", cache.string()});
    CHECK(contains(r["stderr"].get<std::string>(), layer_file.string() + " holds"));
    CHECK(blob_gets(s->proxy) == std::map<std::string, int>{{layer, 1}});
    CHECK(sha256_of(out) == reference);
  }
  {
    INFO("a flipped byte in a config");
    fs::remove(out);
    fs::remove(dir / "out/again.sha256");
    const auto config = std::find_if(s->blobs.begin(), s->blobs.end(), [&](const auto& d) { return !s->layers.count(d); });
    REQUIRE(config != s->blobs.end());
    const fs::path config_file = cache / "blobs/sha256" / config->substr(7);
    std::string bytes = read_file(config_file);
    bytes[bytes.size() / 2] ^= 0x01;
    write_file(config_file, bytes);
    const RunResult r =
        run_ferry(pack_args(*s, out, {"--cache", cache.string()}), {.cwd = {}, .env = test_env(dir), .input = {}});
    INFO(r.err);
    CHECK(r.exit_code == k_integrity_failure);
    CHECK(contains(r.err, "delete " + config_file.string()));
    CHECK(listing(dir / "out").empty());
  }
}

TEST_CASE("pack killed with SIGKILL leaves nothing under the bundle's name; run again, it downloads what the cache lacks") {
  require_tools(k_tools);
  TestDir dir;
  const auto s = make_source(dir);
  const std::string reference = [&] {
    pack_ok(dir, *s, dir / "reference.tar.zst", {"--cache", (dir / "reference-cache").string()});
    return sha256_of(dir / "reference.tar.zst");
  }();
  const std::uint64_t bundle_size = fs::file_size(dir / "reference.tar.zst");

  struct Where {
    fs::path out;
    fs::path cache;
    const Source& s;
    // The temporary bundle being written, if any, and its size.
    std::uint64_t writing() const {
      for (const auto& p : entries(out.parent_path(), "." + out.filename().string() + ".ferry-")) {
        std::error_code ec;
        const auto size = fs::file_size(p, ec);
        if (!ec) return size;
      }
      return 0;
    }
    std::size_t layers_cached() const { return count_in(cached(cache), s.layers); }
  };
  struct KillPoint {
    std::string name;
    std::string jobs;           // of the killed run; the re-run uses the other
    bool stall_manifests;       // the first manifest request waits a second
    std::function<bool(const Where&)> reached;
  };
  const std::size_t layers = s->layers.size();
  const std::vector<KillPoint> points = {
      {"while resolving (a manifest request under way)", "8", true,
       [&](const Where& w) { return w.s.proxy.count("GET", k_manifests) >= 1; }},
      {"once the first layer is in the cache", "1", false, [](const Where& w) { return w.layers_cached() >= 1; }},
      {"once half of the layers are in the cache", "1", false,
       [&](const Where& w) { return w.layers_cached() >= layers / 2; }},
      {"while writing the bundle (its first MiB written)", "1", false,
       [](const Where& w) { return w.writing() >= (1u << 20); }},
      {"late in writing the bundle (the last layer downloading)", "1", false,
       [&](const Where& w) { return w.layers_cached() + 1 >= layers && w.writing() > 0; }},
      {"as soon as the bundle file is created, -j 8", "8", false,
       [](const Where& w) { return !entries(w.out.parent_path(), "." + w.out.filename().string() + ".ferry-").empty(); }},
  };

  bool removed_bundle_temporary = false;
  bool removed_work_directory = false;
  bool removed_blob_temporary = false;
  for (std::size_t n = 0; n < points.size(); ++n) {
    const KillPoint& point = points[n];
    CAPTURE(point.name);
    const fs::path out_dir = dir / ("out" + std::to_string(n));
    fs::create_directories(out_dir);
    const Where where{out_dir / "resume.tar.zst", dir / ("cache" + std::to_string(n)), *s};
    const fs::path sums = out_dir / "resume.sha256";
    s->proxy.clear_rules();
    s->proxy.clear_requests();
    slow_layers(*s, 250ms);
    if (point.stall_manifests) s->proxy.add_rule(stall_for("GET", k_manifests, 1s));

    Background pack(ferry_argv(pack_args(*s, where.out, {"--cache", where.cache.string(), "-j", point.jobs})),
                    {.cwd = {}, .env = test_env(dir), .input = {}});
    const auto began = Clock::now();
    while (pack.running() && !point.reached(where) && Clock::now() - began < 60s) std::this_thread::sleep_for(500us);
    pack.kill_now();
    const RunResult killed = pack.wait();
    REQUIRE_MESSAGE(killed.exit_code == k_killed, // each point comes before the end: layers are stalled
                    "killed run's stderr: " << killed.err);

    // Nothing under the final names; what the killed run left is there for the next one.
    CHECK_FALSE(fs::exists(where.out));
    CHECK_FALSE(fs::exists(sums));
    std::vector<fs::path> left = entries(out_dir, ".resume.");
    const std::vector<fs::path> blob_temporaries = entries(where.cache, ".blob-");
    left.insert(left.end(), blob_temporaries.begin(), blob_temporaries.end());
    const std::set<std::string> cached_at_kill = cached(where.cache);

    s->proxy.clear_rules();
    s->proxy.clear_requests();
    const std::string rerun_jobs = point.jobs == "1" ? "8" : "1";
    const json rerun = pack_ok(dir, *s, where.out, {"--cache", where.cache.string(), "-j", rerun_jobs});
    const std::string log = rerun["stderr"];

    // The re-run downloaded exactly the blobs the cache lacked, each once.
    std::map<std::string, int> expected;
    for (const auto& d : s->blobs) {
      if (!cached_at_kill.count(d)) expected[d] = 1;
    }
    CHECK(blob_gets(s->proxy) == expected);
    CHECK(rerun["registryBlobs"]["fromCache"] == count_in(cached_at_kill, s->blobs));
    CHECK(sha256_of(where.out) == reference);
    check_checksum_file(where.out);
    // The killed run's temporaries are gone, and the log said so.
    CHECK(listing(out_dir) == std::vector<std::string>{"resume.sha256", "resume.tar.zst"});
    CHECK(entries(where.cache, ".blob-").empty());
    CHECK(rerun["removedLeftovers"].size() == left.size());
    for (const auto& p : left) {
      CAPTURE(p);
      CHECK(contains(log, "removed " + p.string() + ", "));
      const std::string name = p.filename().string();
      removed_bundle_temporary |= name.rfind(".resume.tar.zst.ferry-", 0) == 0;
      removed_work_directory |= name.rfind(".resume.tar.zst.pack-", 0) == 0;
      removed_blob_temporary |= name.rfind(".blob-", 0) == 0;
    }
    MESSAGE("kill " << point.name << " (-j " << point.jobs << ") after " << millis(Clock::now() - began)
                    << " ms: " << count_in(cached_at_kill, s->layers) << " of " << layers << " layers cached, "
                    << left.size() << " temporaries left; re-run (-j " << rerun_jobs << ") downloaded "
                    << expected.size() << " blobs, bundle " << bundle_size << " bytes");
  }
  CHECK(removed_bundle_temporary);
  CHECK(removed_work_directory);
  CHECK(removed_blob_temporary);
}

TEST_CASE("two packs of one output sharing a cache both finish; neither removes what the other writes") {
  require_tools(k_tools);
  TestDir dir;
  const auto s = make_source(dir);
  const fs::path cache = dir / "cache";
  const fs::path out = dir / "shared.tar.zst";
  slow_layers(*s, 200ms);

  Background first(ferry_argv(pack_args(*s, out, {"--cache", cache.string(), "-j", "1"})),
                   {.cwd = {}, .env = test_env(dir), .input = {}});
  const auto began = Clock::now();
  // Wait until the first pack writes its bundle and downloads into the cache.
  while (first.running() && Clock::now() - began < 60s &&
         (entries(dir.path(), ".shared.tar.zst.ferry-").empty() || entries(cache, ".blob-").empty())) {
    std::this_thread::sleep_for(1ms);
  }
  REQUIRE(first.running());
  const std::vector<fs::path> first_temporaries = entries(dir.path(), ".shared.");
  const json second = pack_ok(dir, *s, out, {"--cache", cache.string(), "-j", "8"});
  CHECK_FALSE(contains(second["stderr"].get<std::string>(), "removed"));
  const std::string second_sha = sha256_of(out);
  for (const auto& p : first_temporaries) {
    CAPTURE(p);
    CHECK(fs::exists(p));
  }
  const RunResult first_result = first.wait();
  INFO(first_result.err);
  CHECK(first_result.exit_code == 0);
  CHECK(sha256_of(out) == second_sha);
  check_checksum_file(out);
  // Nothing else under the output's names: both packs' temporaries are gone.
  CHECK(entries(dir.path(), ".").empty());
  CHECK(entries(cache, ".blob-").empty());
}

TEST_CASE("pack refuses before downloading when the disk is too small, naming the numbers and the directory") {
  require_tools(k_tools);
  TestDir dir;
  // Small file systems: tmpfs mounted in a private mount namespace (unshare -m; as a
  // user without the right, in a new user namespace), gone when the command ends.
  const std::vector<std::string> unshare =
      ::geteuid() == 0 ? std::vector<std::string>{"unshare", "-m"} : std::vector<std::string>{"unshare", "-r", "-m"};
  {
    fs::create_directories(dir / "probe");
    std::vector<std::string> argv = unshare;
    argv.insert(argv.end(), {"sh", "-c", "mount -t tmpfs -o size=1m tmpfs \"$1\"", "sh", (dir / "probe").string()});
    const RunResult probe = run(argv);
    if (probe.exit_code != 0) {
      const char* required = std::getenv("FERRY_REQUIRE_INTEGRATION");
      const std::string why = "cannot mount a tmpfs in a private mount namespace (" + unshare[0] + " " + unshare[1] +
                              "): " + probe.err;
      REQUIRE_MESSAGE(!(required && std::string(required) == "1"), why);
      MESSAGE("SKIPPED: " << why);
      return;
    }
  }
  const auto s = make_source(dir);
  const fs::path cache = dir / "cache";
  pack_ok(dir, *s, dir / "reference.tar.zst", {"--no-cache"});
  const std::string reference = sha256_of(dir / "reference.tar.zst");
  const fs::path mnt = dir / "small";
  fs::create_directories(mnt);
  fs::create_directories(dir / "out");

  // ferry pack ARGS inside a tmpfs of `size` on `mnt`; prints what is on it afterwards,
  // and the sha256 of mnt/out.tar.zst if there is one.
  struct Small {
    RunResult result;
    std::vector<std::string> files; // relative to the mount
    std::string sha;
  };
  auto on_tmpfs = [&](const std::string& size, const std::vector<std::string>& args) {
    std::vector<std::string> argv = unshare;
    argv.insert(argv.end(), {"sh", "-c",
                             "mount -t tmpfs -o size=\"$1\" tmpfs \"$2\" || exit 90; m=$2; shift 2; \"$@\"; rc=$?; "
                             "echo @@files; (cd \"$m\" && find . -mindepth 1 | sort); echo @@sha; "
                             "if [ -f \"$m/out.tar.zst\" ]; then sha256sum \"$m/out.tar.zst\"; fi; exit $rc",
                             "sh", size, mnt.string()});
    const auto ferry = ferry_argv(args);
    argv.insert(argv.end(), ferry.begin(), ferry.end());
    s->proxy.clear_requests();
    Small small;
    small.result = run(argv, {.cwd = {}, .env = test_env(dir), .input = {}});
    REQUIRE_MESSAGE(small.result.exit_code != 90, small.result.err);
    const std::string& text = small.result.out;
    const auto files = text.find("@@files\n");
    const auto sha = text.find("@@sha\n");
    REQUIRE((files != std::string::npos && sha != std::string::npos));
    std::string line;
    std::istringstream list(text.substr(files + 8, sha - files - 8));
    while (std::getline(list, line)) small.files.push_back(line);
    small.sha = text.substr(sha + 6, 64);
    return small;
  };
  auto has_layer = [&](const std::vector<std::string>& files) {
    return std::any_of(files.begin(), files.end(), [&](const std::string& f) {
      return std::any_of(s->layers.begin(), s->layers.end(), [&](const std::string& d) { return contains(f, d.substr(7)); });
    });
  };
  const std::string small_out = (mnt / "out.tar.zst").string();

  {
    INFO("the output's file system");
    const Small r = on_tmpfs("8m", pack_args(*s, small_out, {"--cache", cache.string()}));
    INFO(r.result.err);
    CHECK(r.result.exit_code == k_failure);
    CHECK(contains(r.result.err, "not enough free space in " + mnt.string() + " for the bundle: up to 16."));
    // Rounded and exact: about 8 MiB free (tmpfs counts its pages).
    CHECK(std::regex_search(r.result.err, std::regex(R"(MiB \(\d+ bytes\) needed, (7\.\d|8\.0) MiB \(\d+ bytes\) free)")));
    CHECK(contains(r.result.err, "write the bundle elsewhere with -o"));
    CHECK(r.files.empty());          // no bundle, no checksum file, no work directory
    CHECK(layer_gets(*s) == 0);      // only manifests and configs were read
    CHECK(count_in(cached(cache), s->layers) == 0);
  }
  {
    INFO("the cache's file system");
    const Small r = on_tmpfs("8m", pack_args(*s, (dir / "out/out.tar.zst").string(),
                                             {"--cache", (mnt / "cache").string()}));
    INFO(r.result.err);
    CHECK(r.result.exit_code == k_failure);
    CHECK(contains(r.result.err, "not enough free space in " + (mnt / "cache").string() +
                                     " for the blobs to download into the cache: up to 16."));
    CHECK(contains(r.result.err, "--cache DIR"));
    CHECK(listing(dir / "out").empty());
    CHECK(layer_gets(*s) == 0);
    CHECK_FALSE(has_layer(r.files));
  }
  {
    INFO("bundle and cache on one file system: each would fit alone, not both");
    const Small r = on_tmpfs("24m", pack_args(*s, small_out, {"--cache", (mnt / "cache").string()}));
    INFO(r.result.err);
    CHECK(r.result.exit_code == k_failure);
    CHECK(contains(r.result.err, "not enough free space on the file system of " + mnt.string() + " and " +
                                     (mnt / "cache").string() + ": up to 32."));
    CHECK(contains(r.result.err, "for the bundle (up to 16."));
    CHECK(layer_gets(*s) == 0);
    CHECK_FALSE(has_layer(r.files));
    for (const auto& f : r.files) CHECK(f.rfind("./cache", 0) == 0); // nothing beside the output
  }
  {
    INFO("enough room: the same bundle");
    const Small r = on_tmpfs("48m", pack_args(*s, small_out, {"--cache", (mnt / "cache").string(), "-j", "8"}));
    INFO(r.result.err);
    CHECK(r.result.exit_code == 0);
    CHECK(r.sha == reference);
    CHECK(layer_gets(*s) == static_cast<int>(s->layers.size()));
  }
}

} // TEST_SUITE
