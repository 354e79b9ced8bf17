// ferry push killed with SIGKILL at several points: the target registry never holds a
// manifest whose blobs are missing, and the same push run again completes it, moving only
// what the registry lacks.
// SPDX-License-Identifier: Apache-2.0
#include "common/registry_fixture.hpp"
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <set>
#include <thread>

namespace fs = std::filesystem;
using namespace ferry::itest;
using ferry::test::noise;
using namespace std::chrono_literals;
using ferry::test::RegistryServer;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

const std::vector<std::string> k_tools = {"docker-registry", "umoci", "skopeo"};
constexpr int k_killed = 128 + SIGKILL;
// Six images sharing a 16 MiB base layer, each with 10 MiB of its own: 76 MiB of
// incompressible layers, about a second and a half of pushing on loopback.
constexpr int k_images = 6;
constexpr std::size_t k_base_size = std::size_t{16} << 20;
constexpr std::size_t k_own_size = std::size_t{10} << 20;
const std::string k_prefix = "mirror";


// An image or chart of the bundle as it must appear in the target: REPOSITORY:TAG (the
// repository with the target prefix) and the bundle's digest.
struct Artifact {
  std::string repository;
  std::string tag;
  std::string digest;
  std::string repo_tag() const { return repository + ":" + tag; }
};

struct Bundle {
  fs::path file;
  fs::path pub;
  std::vector<Artifact> artifacts;
};

// Images built with umoci into an OCI layout, one chart, packed and signed by ferry; the
// expected targets come from `ferry inspect --output json` and the documented mapping
// (PREFIX/<path without host>, PREFIX/charts/NAME:VERSION).
Bundle make_bundle(const TestDir& dir) {
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
    images += "  - {ref: \"oci:./layout:" + name + "\", name: example.com/resume/" + name + ":1.0}\n";
  }
  write_file(dir / "charts/resume/Chart.yaml", "apiVersion: v2\nname: resume\nversion: 1.0.0\n");
  write_file(dir / "charts/resume/values.yaml", "replicas: 1\n");
  write_file(dir / "bundle.yaml", "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: resume, version: \"1.0.0\"}\n"
                                  "images:\n" + images +
                                  "charts:\n  - {name: resume, path: ./charts/resume, version: 1.0.0}\n");
  const RunResult keygen = run_ferry({"keygen", "--out", (dir / "release").string()});
  REQUIRE_MESSAGE(keygen.exit_code == 0, keygen.err);

  Bundle b{dir / "resume.tar.zst", dir / "release.pub", {}};
  const RunResult pack = run_ferry({"pack", "-f", (dir / "bundle.yaml").string(), "-o", b.file.string(), "--key",
                                    (dir / "release.key").string()});
  INFO(pack.err);
  REQUIRE(pack.exit_code == 0);
  const RunResult inspect = run_ferry({"inspect", b.file.string(), "--output", "json"});
  REQUIRE(inspect.exit_code == 0);
  const json info = json::parse(inspect.out);
  for (const auto& image : info["images"]) {
    const std::string ref = image["ref"];            // example.com/resume/imgN:1.0
    const std::string path = ref.substr(ref.find('/') + 1);
    const auto colon = path.rfind(':');
    b.artifacts.push_back({k_prefix + "/" + path.substr(0, colon), path.substr(colon + 1), image["digest"]});
  }
  for (const auto& chart : info["charts"]) {
    const std::string name = chart["name"];
    b.artifacts.push_back({k_prefix + "/charts/" + name, chart["version"], chart["digest"]});
  }
  REQUIRE(b.artifacts.size() == k_images + 1);
  return b;
}

std::vector<std::string> push_args(const Bundle& b, const RegistryServer& target) {
  // The journal goes beside the bundle, not into the home directory; the killed run
  // and the re-run share it, as an operator's two runs would.
  return {"push", b.file.string(), "--registry", target.host() + "/" + k_prefix, "--pubkey", b.pub.string(),
          "--plain-http", "--output", "json", "--state-dir", (b.file.parent_path() / ("state-" + target.host())).string()};
}

std::vector<std::string> ferry_argv(const std::vector<std::string>& args) {
  const char* bin = std::getenv("FERRY_BIN");
  REQUIRE_MESSAGE(bin != nullptr, "FERRY_BIN is not set (run the tests with `meson test`)");
  std::vector<std::string> argv{bin};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

// The JSON report of a push that must have succeeded.
json push_report(const RunResult& r) {
  INFO("ferry push stderr: ", r.err);
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out);
}

std::uint64_t uploaded_bytes(const json& report) { return report["blobs"]["uploadedBytes"].get<std::uint64_t>(); }

long long millis(Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

// The registry's storage, in the layout of distribution's filesystem driver: committed
// blobs at blobs/sha256/XX/HEX/data (uploads in progress live under the repository's
// _uploads until their final PUT), repositories/REPO/{_layers,_manifests,_uploads}.
fs::path storage(const RegistryServer& server) { return server.dir() / "storage/docker/registry/v2"; }

// How many blobs the registry has committed. Safe while the registry writes: entries
// that vanish or appear during the walk are simply counted or not.
std::size_t stored_blobs(const RegistryServer& server) {
  std::size_t count = 0;
  std::error_code ec;
  for (fs::directory_iterator outer(storage(server) / "blobs/sha256", ec), end; !ec && outer != end;
       outer.increment(ec)) {
    std::error_code inner_ec;
    for (fs::directory_iterator inner(outer->path(), inner_ec); !inner_ec && inner != end; inner.increment(inner_ec)) {
      std::error_code exists_ec;
      if (fs::exists(inner->path() / "data", exists_ec)) ++count;
    }
  }
  return count;
}

// Whether any repository has an entry of `kind` under _manifests yet: "revisions" once a
// manifest is stored (ferry pushes manifests only after every blob is in place, so this
// marks the start of its manifest phase), "tags" once a tag is.
bool has_manifest_entry(const RegistryServer& server, const std::string& kind) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(storage(server) / "repositories", ec), end; !ec && it != end;
       it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.filename() == kind && p.parent_path().filename() == "_manifests") return true;
    if (p.filename() == "_layers" || p.filename() == "_uploads") it.disable_recursion_pending();
  }
  return false;
}

// Every repository the registry knows (a directory holding _layers, _manifests or
// _uploads), so a repository ferry should not have touched is seen too.
std::set<std::string> stored_repositories(const RegistryServer& server) {
  const fs::path root = storage(server) / "repositories";
  std::set<std::string> repos;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name.front() == '_') {
      repos.insert(it->path().parent_path().lexically_relative(root).generic_string());
      it.disable_recursion_pending();
    }
  }
  return repos;
}

// skopeo HEAD... FLAGS... TAIL...
std::vector<std::string> skopeo(std::initializer_list<std::string> head, const std::vector<std::string>& flags,
                                std::initializer_list<std::string> tail) {
  std::vector<std::string> argv{"skopeo"};
  argv.insert(argv.end(), head);
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.insert(argv.end(), tail);
  return argv;
}

// The tags of `repo`; none when the registry answers 404 (a repository with blobs but no
// tag yet, or none at all).
std::vector<std::string> tags_of(const RegistryServer& server, const std::string& repo) {
  const auto r = ferry::test::run_command(skopeo({"list-tags"}, server.skopeo_flags(), {server.docker_ref(repo)}));
  if (r.exit_code != 0) {
    INFO("skopeo list-tags ", repo, ": ", r.err);
    CHECK(contains(r.err, "404"));
    return {};
  }
  return json::parse(r.out)["Tags"].get<std::vector<std::string>>();
}

bool manifest_exists(const RegistryServer& server, const std::string& reference) {
  return ferry::test::run_command(
             skopeo({"inspect", "--raw"}, server.skopeo_flags(), {server.docker_ref(reference)}))
             .exit_code == 0;
}

// skopeo copies `reference` (REPO:TAG or REPO@DIGEST) out of the registry into a fresh
// dir: directory: it fetches every blob the manifest names from that repository and
// checks each digest, so it fails if one is missing or wrong.
void check_copyable(const RegistryServer& server, const fs::path& scratch, const std::string& reference) {
  const fs::path out = scratch / "copy";
  fs::remove_all(out);
  const auto r = ferry::test::run_command(skopeo({"copy", "--quiet"}, server.skopeo_src_flags(),
                                                 {server.docker_ref(reference), "dir:" + out.string()}));
  INFO("skopeo copy ", reference, ": ", r.err);
  CHECK(r.exit_code == 0);
  fs::remove_all(out);
}

// Checks what the target holds now: every tag there belongs to the bundle and points at
// the bundle's digest, and every manifest there, by tag or by digest alone, can be copied
// out whole. Returns the tags found (REPO:TAG).
std::set<std::string> check_consistent(const RegistryServer& target, const Bundle& b, const fs::path& scratch) {
  std::set<std::string> tags;
  for (const auto& repo : stored_repositories(target)) {
    for (const auto& tag : tags_of(target, repo)) {
      const std::string repo_tag = repo + ":" + tag;
      CAPTURE(repo_tag);
      tags.insert(repo_tag);
      const auto a = std::find_if(b.artifacts.begin(), b.artifacts.end(),
                                  [&](const Artifact& x) { return x.repo_tag() == repo_tag; });
      REQUIRE_MESSAGE(a != b.artifacts.end(), "a tag that is not in the bundle");
      CHECK(ferry::test::registry_digest(target, repo_tag) == a->digest);
      check_copyable(target, scratch, repo_tag);
    }
  }
  // Manifests pushed by digest whose tag is not there yet.
  for (const auto& a : b.artifacts) {
    const std::string by_digest = a.repository + "@" + a.digest;
    if (tags.count(a.repo_tag()) || !manifest_exists(target, by_digest)) continue;
    CAPTURE(by_digest);
    check_copyable(target, scratch, by_digest);
  }
  return tags;
}

std::set<std::string> all_tags(const Bundle& b) {
  std::set<std::string> out;
  for (const auto& a : b.artifacts) out.insert(a.repo_tag());
  return out;
}

// When to kill: `reached` is asked about every half millisecond with the time since the
// push started.
struct KillPoint {
  std::string name;
  std::function<bool(const RegistryServer&, Clock::duration)> reached;
  bool must_interrupt; // the push cannot have finished by then, whatever the machine
};

} // namespace

TEST_SUITE("push-resume") {

TEST_CASE("push killed with SIGKILL leaves a consistent registry, and running it again completes it") {
  require_tools(k_tools);
  TestDir dir;
  const Bundle bundle = make_bundle(dir);
  const std::set<std::string> expected_tags = all_tags(bundle);

  const std::vector<KillPoint> points = {
      {"50 ms after start", [](const RegistryServer&, Clock::duration t) { return t >= 50ms; }, true},
      {"200 ms after start", [](const RegistryServer&, Clock::duration t) { return t >= 200ms; }, false},
      {"500 ms after start", [](const RegistryServer&, Clock::duration t) { return t >= 500ms; }, false},
      {"when the first blob is stored", [](const RegistryServer& s, Clock::duration) { return stored_blobs(s) >= 1; },
       true},
      // An image has two blobs of its own, plus the shared base and the chart's two.
      {"when half of the blobs are stored",
       [](const RegistryServer& s, Clock::duration) { return stored_blobs(s) >= (k_images * 2 + 3) / 2; }, true},
      {"when the first manifest is stored",
       [](const RegistryServer& s, Clock::duration) { return has_manifest_entry(s, "revisions"); }, false},
      {"when the first tag is stored",
       [](const RegistryServer& s, Clock::duration) { return has_manifest_entry(s, "tags"); }, false},
  };

  std::uint64_t full_bytes = 0; // what a push into an empty registry uploads
  int interrupted_count = 0;
  for (const auto& point : points) {
    CAPTURE(point.name);
    RegistryServer target;
    if (full_bytes == 0) {
      std::vector<std::string> dry = push_args(bundle, target);
      dry.push_back("--dry-run");
      full_bytes = uploaded_bytes(push_report(run_ferry(dry)));
      REQUIRE(full_bytes > k_base_size + k_images * k_own_size);
      REQUIRE(stored_repositories(target).empty());
    }

    Background push(ferry_argv(push_args(bundle, target)));
    const auto began = Clock::now();
    while (push.running() && !point.reached(target, Clock::now() - began) && Clock::now() - began < 60s) {
      std::this_thread::sleep_for(500us);
    }
    const auto killed_at = Clock::now() - began;
    REQUIRE_MESSAGE((!push.running() || point.reached(target, killed_at)),
                    "ferry push ran for a minute without reaching the kill point");
    push.kill_now();
    const RunResult killed = push.wait();
    const bool interrupted = killed.exit_code == k_killed;
    if (interrupted) {
      ++interrupted_count;
    } else {
      INFO("ferry push stderr: ", killed.err);
      REQUIRE(killed.exit_code == 0); // it finished before the kill
      CHECK_FALSE(point.must_interrupt);
    }
    const std::size_t blobs_at_kill = stored_blobs(target);
    const bool manifests_started = has_manifest_entry(target, "revisions");

    const std::set<std::string> tags_after_kill = check_consistent(target, bundle, dir.path());
    if (!interrupted) CHECK(tags_after_kill == expected_tags);
    const std::size_t blobs_before_rerun = stored_blobs(target);

    const json rerun = push_report(run_ferry(push_args(bundle, target)));
    const std::uint64_t reuploaded = uploaded_bytes(rerun);
    if (!interrupted) {
      CHECK(reuploaded == 0);
    } else if (manifests_started) {
      // ferry pushes manifests only once every blob is in every repository that needs it.
      CHECK(reuploaded == 0);
    } else if (blobs_before_rerun == 0) {
      CHECK(reuploaded == full_bytes);
    } else {
      CHECK(reuploaded < full_bytes);
    }
    CHECK(rerun["artifacts"].size() == bundle.artifacts.size());
    CHECK(check_consistent(target, bundle, dir.path()) == expected_tags);

    MESSAGE("kill " << point.name << ": " << std::string(interrupted ? "killed" : "had finished") << " at "
                    << millis(killed_at) << " ms, " << blobs_at_kill << " blobs and " << tags_after_kill.size()
                    << " of " << expected_tags.size() << " tags in the registry; re-run uploaded " << reuploaded
                    << " of " << full_bytes << " bytes (" << rerun["blobs"]["uploaded"] << " blobs), "
                    << rerun["blobs"]["presentBytes"] << " bytes present, " << rerun["blobs"]["mounted"]
                    << " mounted, " << rerun["manifests"]["pushed"] << " manifests pushed");
  }
  // The fixed delays may outlast the push on a fast machine; most points must hit it.
  CHECK(interrupted_count >= 5);
}

TEST_CASE("push run again on a complete registry uploads nothing and takes less time than the first push") {
  require_tools(k_tools);
  TestDir dir;
  const Bundle bundle = make_bundle(dir);
  RegistryServer target;

  const auto first_began = Clock::now();
  const json first = push_report(run_ferry(push_args(bundle, target)));
  const auto first_time = Clock::now() - first_began;
  const auto again_began = Clock::now();
  const json again = push_report(run_ferry(push_args(bundle, target)));
  const auto again_time = Clock::now() - again_began;

  MESSAGE("first push " << millis(first_time) << " ms (" << uploaded_bytes(first) << " bytes uploaded), again "
                        << millis(again_time) << " ms (" << uploaded_bytes(again) << " bytes uploaded)");
  CHECK(uploaded_bytes(first) > k_base_size + k_images * k_own_size);
  CHECK(first["blobs"]["present"] == 0);
  CHECK(again["blobs"]["uploaded"] == 0);
  CHECK(uploaded_bytes(again) == 0);
  CHECK(again["blobs"]["presentBytes"] == first["blobs"]["uploadedBytes"]);
  CHECK(again["manifests"]["pushed"] == 0);
  CHECK(again_time < first_time);
  CHECK(check_consistent(target, bundle, dir.path()) == all_tags(bundle));
}

} // TEST_SUITE
