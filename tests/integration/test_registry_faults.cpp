// Registry trouble, made on purpose: docker-registry on 127.0.0.1 behind a FaultProxy that
// answers errors, cuts and corrupts transfers and stalls; registries with bad TLS
// certificates; and that no password or token leaks while things go wrong.
// SPDX-License-Identifier: Apache-2.0
#include "common/fault_proxy.hpp"
#include "common/registry_fixture.hpp"
#include "common/token_server.hpp"
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <map>
#include <set>

namespace fs = std::filesystem;
using namespace ferry::itest;
using namespace std::chrono_literals;
using ferry::test::Fault;
using ferry::test::FaultProxy;
using ferry::test::corrupt_at;
using ferry::test::cut_after;
using ferry::test::fail_with;
using ferry::test::rate_limit;
using ferry::test::stall_for;
using ferry::test::k_every_time;
using ferry::test::Platforms;
using ferry::test::ProxiedRequest;
using ferry::test::RegistryOptions;
using ferry::test::RegistryServer;
using nlohmann::json;

namespace {

const std::vector<std::string> k_tools = {"docker-registry", "umoci", "skopeo", "openssl", "htpasswd"};
constexpr int k_integrity_failure = 3;
constexpr int k_registry_failure = 4;

// Request targets of the OCI distribution API.
const std::string k_manifests = "^/v2/.+/manifests/";
const std::string k_blobs = "^/v2/.+/blobs/sha256:";
const std::string k_uploads = "^/v2/.+/blobs/uploads/";

const std::vector<std::string> k_repo_tags = {"team/app1:1.0", "team/app2:1.0", "team/multi:2.0"};

using Clock = std::chrono::steady_clock;

// A source registry holding app1, app2 (sharing a 200 kB layer) and a two-platform index.
struct Source {
  Fixtures f;
  RegistryServer server;
};

std::unique_ptr<Source> seeded_source(const TestDir& dir, RegistryOptions options = {}) {
  auto s = std::unique_ptr<Source>(new Source{make_fixtures(dir.path()), RegistryServer(std::move(options))});
  const std::string layout = "oci:" + s->f.layout.string();
  ferry::test::push_with_skopeo(s->server, layout + ":app1", "team/app1:1.0", Platforms::host);
  ferry::test::push_with_skopeo(s->server, layout + ":app2", "team/app2:1.0", Platforms::host);
  ferry::test::push_with_skopeo(s->server, layout + ":multi", "team/multi:2.0", Platforms::all);
  return s;
}

// A bundle manifest naming the three images on `host` (the proxy), and the chart.
fs::path write_manifest(const TestDir& dir, const std::string& host) {
  const fs::path file = dir / "registry.yaml";
  std::string images;
  for (const auto& repo_tag : k_repo_tags) images += "  - " + host + "/" + repo_tag + "\n";
  write_file(file, "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: faults, version: \"1\"}\nimages:\n" +
                       images + "charts:\n  - {name: demo, path: ./charts/demo, version: 0.3.1}\n");
  return file;
}

struct Timed {
  RunResult result;
  std::chrono::milliseconds elapsed{0};
};

Timed timed_ferry(const std::vector<std::string>& args, const RunOptions& options) {
  const auto start = Clock::now();
  Timed t;
  t.result = run_ferry(args, options);
  t.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return t;
}

// `ferry pack` of `manifest` over plain HTTP into `bundle`.
Timed pack(const TestDir& dir, const Source& s, const fs::path& manifest, const fs::path& bundle,
           std::vector<std::string> extra = {}, std::string input = {}) {
  std::vector<std::string> args = {"pack", "-f", manifest.string(), "-o", bundle.string(), "--key", s.f.key.string(),
                                   "--plain-http"};
  args.insert(args.end(), extra.begin(), extra.end());
  return timed_ferry(args, {.cwd = {}, .env = isolated_env(dir), .input = std::move(input)});
}

// `ferry push` of `bundle` to `host` + `prefix` over plain HTTP.
Timed push(const TestDir& dir, const Source& s, const fs::path& bundle, const std::string& target,
           std::vector<std::string> extra = {}, std::string input = {}) {
  std::vector<std::string> args = {"push", bundle.string(), "--registry", target, "--pubkey", s.f.pub.string(),
                                   "--plain-http"};
  args.insert(args.end(), extra.begin(), extra.end());
  return timed_ferry(args, {.cwd = {}, .env = isolated_env(dir), .input = std::move(input)});
}

struct Layer {
  std::string digest;
  std::uint64_t size = 0;
};

// The largest layer of an image manifest in `server`, as skopeo reads it.
Layer largest_layer(const RegistryServer& server, const std::string& repo_tag) {
  std::vector<std::string> argv = {"skopeo", "inspect", "--raw"};
  for (const auto& flag : server.skopeo_flags()) argv.push_back(flag);
  argv.push_back(server.docker_ref(repo_tag));
  const json manifest = json::parse(must(argv));
  Layer largest;
  for (const auto& layer : manifest.at("layers")) {
    if (layer.at("size").get<std::uint64_t>() > largest.size) {
      largest = Layer{layer.at("digest").get<std::string>(), layer.at("size").get<std::uint64_t>()};
    }
  }
  REQUIRE(largest.size > 0);
  return largest;
}

// Whether skopeo finds `repo_tag` in `server`.
bool tag_exists(const RegistryServer& server, const std::string& repo_tag) {
  std::vector<std::string> argv = {"skopeo", "inspect", "--raw"};
  for (const auto& flag : server.skopeo_flags()) argv.push_back(flag);
  argv.push_back(server.docker_ref(repo_tag));
  return ferry::test::run_command(argv).exit_code == 0;
}

// Names of the entries of `dir` (not recursive), sorted.
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Every regular file below `dir`, for grepping.
std::vector<fs::path> files_below(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  return files;
}

// For every request that got `fault`, whether the same method and target came again
// later and succeeded (2xx): the client retried it.
bool retried_after(const std::vector<ProxiedRequest>& requests, Fault fault) {
  bool any = false;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].fault != fault) continue;
    any = true;
    const auto again = std::find_if(requests.begin() + static_cast<std::ptrdiff_t>(i) + 1, requests.end(),
                                    [&](const ProxiedRequest& r) {
                                      return r.method == requests[i].method && r.target == requests[i].target &&
                                             r.status / 100 == 2;
                                    });
    if (again == requests.end()) return false;
  }
  return any;
}

// The bearer tokens the client sent through the proxy.
std::set<std::string> bearer_tokens(const FaultProxy& proxy) {
  std::set<std::string> tokens;
  for (const auto& r : proxy.requests()) {
    if (const auto value = r.header("authorization"); value && value->rfind("Bearer ", 0) == 0) {
      tokens.insert(value->substr(7));
    }
  }
  return tokens;
}

// Fails the test for every secret found in the output of `run` or in a file below `dirs`.
void check_no_secret(const RunResult& run, const std::vector<std::string>& secrets, const std::vector<fs::path>& dirs) {
  for (const auto& secret : secrets) {
    REQUIRE(!secret.empty());
    CAPTURE(secret);
    CHECK_FALSE(contains(run.out, secret));
    CHECK_FALSE(contains(run.err, secret));
    for (const auto& dir : dirs) {
      for (const auto& file : files_below(dir)) {
        CAPTURE(file);
        CHECK_FALSE(contains(read_file(file), secret));
      }
    }
  }
}

} // namespace

TEST_SUITE("registry-faults") {

TEST_CASE("FaultProxy carries a 20 MiB layer up and down byte for byte") {
  require_tools(k_tools);
  TestDir dir;
  std::string data(20u << 20, '\0'); // incompressible: the layer stays this large
  std::uint64_t state = 0x2545f4914f6cdd1du;
  for (auto& c : data) {
    state = state * 6364136223846793005u + 1442695040888963407u;
    c = static_cast<char>(state >> 56);
  }
  write_file(dir / "big.bin", data);
  const std::string layout = (dir / "layout").string();
  must({"umoci", "init", "--layout", layout});
  must({"umoci", "new", "--image", layout + ":big"});
  must({"umoci", "insert", "--image", layout + ":big", (dir / "big.bin").string(), "/big.bin"});
  RegistryServer server;
  FaultProxy proxy(server.host());

  // Up: skopeo uploads through the proxy; the registry holds the same manifest.
  must({"skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:" + layout + ":big",
        "docker://" + proxy.host() + "/big/image:1"});
  const std::string local = must({"skopeo", "inspect", "--raw", "oci:" + layout + ":big"});
  const Layer layer = largest_layer(server, "big/image:1");
  CHECK(layer.size > data.size());
  std::vector<std::string> inspect = {"skopeo", "inspect", "--raw"};
  for (const auto& flag : server.skopeo_flags()) inspect.push_back(flag);
  inspect.push_back(server.docker_ref("big/image:1"));
  CHECK(must(inspect) == local);

  // Down: skopeo (which checks every digest) copies it back through the proxy.
  must({"skopeo", "copy", "--quiet", "--src-tls-verify=false", "docker://" + proxy.host() + "/big/image:1",
        "oci:" + (dir / "back").string() + ":big"});
  const fs::path blob = dir / "back/blobs/sha256" / layer.digest.substr(std::string("sha256:").size());
  CHECK(fs::file_size(blob) == layer.size);
  const auto gets = proxy.requests();
  CHECK(std::any_of(gets.begin(), gets.end(), [&](const ProxiedRequest& r) {
    return r.method == "GET" && contains(r.target, layer.digest) && r.status == 200 && r.body_bytes == layer.size;
  }));
}

TEST_CASE("pack rides out 503s, a 429, a cut blob and a stall, and the bundle holds the source's digests") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  FaultProxy proxy(s->server.host());
  const Layer big = largest_layer(s->server, "team/app1:1.0");
  REQUIRE(big.size > 100000);
  constexpr std::uint64_t k_cut_at = 65536;
  proxy.add_rule(fail_with("GET", k_manifests, 503, 2));
  proxy.add_rule(cut_after("GET", "/blobs/" + big.digest, k_cut_at));
  proxy.add_rule(rate_limit("GET", k_blobs, 1s));
  proxy.add_rule(stall_for("GET", "/team/app2/manifests/", 2s));

  const fs::path bundle = dir / "faults.tar.zst";
  const Timed run = pack(dir, *s, write_manifest(dir, proxy.host()), bundle);
  MESSAGE("pack through transient faults took " << run.elapsed.count() << " ms");
  INFO(run.result.err);
  REQUIRE(run.result.exit_code == 0);
  CHECK(run.elapsed >= 2s); // the stall was waited out, not skipped
  CHECK(contains(run.result.err, "retrying"));

  // The bundle verifies, and holds exactly the source registry's images.
  const RunResult verify = run_ferry({"verify", bundle.string(), "--pubkey", s->f.pub.string()});
  INFO(verify.err);
  CHECK(verify.exit_code == 0);
  const json info = json::parse(run_ferry({"inspect", bundle.string(), "--output", "json"}).out);
  REQUIRE(info["images"].size() == k_repo_tags.size());
  for (const auto& image : info["images"]) {
    const std::string ref = image["ref"];
    CAPTURE(ref);
    CHECK(image["digest"] == ferry::test::registry_digest(s->server, ref.substr(ref.find('/') + 1)));
  }

  const auto requests = proxy.requests();
  // Both 503s and the 429 were retried until the same request succeeded.
  CHECK(proxy.count("GET", k_manifests, Fault::status) == 2);
  CHECK(proxy.count("GET", k_blobs, Fault::status) == 1);
  CHECK(retried_after(requests, Fault::status));
  // The 429 said Retry-After: 1, and the client waited that long.
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].status != 429) continue;
    const auto again = std::find_if(requests.begin() + static_cast<std::ptrdiff_t>(i) + 1, requests.end(),
                                    [&](const ProxiedRequest& r) { return r.target == requests[i].target; });
    REQUIRE(again != requests.end());
    CHECK(again->arrived - requests[i].arrived >= 950ms);
  }
  // The cut blob: k_cut_at bytes, then the rest asked for with Range and answered 206.
  std::vector<ProxiedRequest> big_gets;
  std::copy_if(requests.begin(), requests.end(), std::back_inserter(big_gets),
               [&](const ProxiedRequest& r) { return r.method == "GET" && contains(r.target, big.digest); });
  REQUIRE(big_gets.size() >= 2);
  CHECK(big_gets.front().fault == Fault::cut);
  CHECK(big_gets.front().status == 200);
  CHECK(big_gets.front().body_bytes == k_cut_at);
  const auto resumed = std::find_if(big_gets.begin(), big_gets.end(),
                                    [](const ProxiedRequest& r) { return r.status == 206; });
  REQUIRE(resumed != big_gets.end());
  CHECK(resumed->header("range").value_or("") == "bytes=" + std::to_string(k_cut_at) + "-");
  CHECK(resumed->body_bytes == big.size - k_cut_at);
  // The stalled request was answered after the stall.
  CHECK(proxy.count("GET", "/team/app2/manifests/", Fault::stall) == 1);
}

TEST_CASE("--timeout gives up on a stalled request early and retries it; --retries bounds a permanent stall") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  FaultProxy proxy(s->server.host());
  // Once: stalled far longer than the timeout, then answered normally.
  proxy.add_rule(stall_for("GET", "/team/app2/manifests/", 5s));
  const Timed once = pack(dir, *s, write_manifest(dir, proxy.host()), dir / "once.tar.zst", {"--timeout", "1s"});
  MESSAGE("pack with one 5 s stall and --timeout 1s took " << once.elapsed.count() << " ms");
  INFO(once.result.err);
  REQUIRE(once.result.exit_code == 0);
  CHECK(once.elapsed < 4s); // the stall was cut short, not waited out
  CHECK(contains(once.result.err, "retrying"));
  CHECK(proxy.count("GET", "/team/app2/manifests/", Fault::stall) == 1);
  CHECK(proxy.count("GET", "/team/app2/manifests/") >= 2);

  // Every time: one try and one retry, each given up after the timeout, then a clear error.
  FaultProxy stuck(s->server.host());
  stuck.add_rule(stall_for("GET", "/team/app2/manifests/", 5s, k_every_time));
  const Timed failed = pack(dir, *s, write_manifest(dir, stuck.host()), dir / "stuck.tar.zst",
                            {"--timeout", "1s", "--retries", "1"});
  MESSAGE("pack against a permanent stall with --timeout 1s --retries 1 took " << failed.elapsed.count() << " ms");
  INFO(failed.result.err);
  CHECK(failed.result.exit_code == k_registry_failure);
  CHECK(failed.elapsed < 4s);
  CHECK(stuck.count("GET", "/team/app2/manifests/") == 2);
  CHECK(contains(failed.result.err, "team/app2"));
  CHECK(contains(failed.result.err, "2 attempts"));
  CHECK(contains(failed.result.err, "--timeout"));
  CHECK(!fs::exists(dir / "stuck.tar.zst"));

  const RunResult bad = run_ferry({"pack", "-f", "x.yaml", "-o", "y.tar.zst", "--key", s->f.key.string(), "--timeout", "soon"});
  CHECK(bad.exit_code == 2);
  CHECK(contains(bad.err, "--timeout 'soon'"));
}

TEST_CASE("push rides out 500s on blob uploads, a 502 on HEAD and a 503 on a manifest PUT") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  const fs::path bundle = dir / "faults.tar.zst";
  const Timed packed = pack(dir, *s, write_manifest(dir, s->server.host()), bundle);
  INFO(packed.result.err);
  REQUIRE(packed.result.exit_code == 0);

  RegistryServer target;
  FaultProxy proxy(target.host());
  // Blobs this small go up in one PUT (PATCH chunks start at ClientOptions::chunk_size, 64 MiB).
  proxy.add_rule(fail_with("PUT", k_uploads, 500, 2));
  proxy.add_rule(fail_with("HEAD", k_blobs, 502));
  proxy.add_rule(fail_with("PUT", k_manifests, 503));

  const Timed run = push(dir, *s, bundle, proxy.host() + "/mirror", {"--output", "json"});
  MESSAGE("push through transient faults took " << run.elapsed.count() << " ms");
  INFO(run.result.err);
  REQUIRE(run.result.exit_code == 0);
  const json report = json::parse(run.result.out);
  const auto uploaded = report["blobs"]["uploaded"].get<std::size_t>();
  CHECK(uploaded > 0);

  // skopeo reads every image back from the target itself with the source's digest, and
  // copies the index with all its blobs.
  for (const auto& repo_tag : k_repo_tags) {
    CAPTURE(repo_tag);
    CHECK(ferry::test::registry_digest(target, "mirror/" + repo_tag) ==
          ferry::test::registry_digest(s->server, repo_tag));
  }
  std::vector<std::string> copy = {"skopeo", "copy", "--quiet", "--all"};
  for (const auto& flag : target.skopeo_src_flags()) copy.push_back(flag);
  copy.push_back(target.docker_ref("mirror/team/multi:2.0"));
  copy.push_back("oci:" + (dir / "back").string() + ":multi");
  must(copy);
  CHECK(tag_exists(target, "mirror/charts/demo:0.3.1"));

  // Each fault happened and the request was sent again until it succeeded.
  const auto requests = proxy.requests();
  CHECK(proxy.count("PUT", k_uploads, Fault::status) == 2);
  CHECK(proxy.count("HEAD", k_blobs, Fault::status) == 1);
  CHECK(proxy.count("PUT", k_manifests, Fault::status) == 1);
  // A failed upload PUT is retried in a new session (another URL): one more PUT per
  // failure, and the broken sessions are cancelled.
  CHECK(proxy.count("PUT", k_uploads) == uploaded + 2);
  CHECK(proxy.count("DELETE", k_uploads) >= 2);
  // The HEAD and the manifest PUT were sent again as they were, and the registry answered
  // (a HEAD of a missing blob with 404).
  for (const auto& r : requests) {
    if (r.fault != Fault::status || (r.method == "PUT" && contains(r.target, "/blobs/uploads/"))) continue;
    CAPTURE(r.method + " " + r.target);
    CHECK(std::any_of(requests.begin(), requests.end(), [&](const ProxiedRequest& again) {
      return again.method == r.method && again.target == r.target && again.fault == Fault::none &&
             again.status != 0 && again.status < 500;
    }));
  }
}

TEST_CASE("a registry that always answers 500 fails pack and push with exit 4 within bounded time") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);

  SUBCASE("pack leaves no bundle") {
    FaultProxy proxy(s->server.host());
    proxy.add_rule(fail_with({}, ".", 500, k_every_time));
    fs::create_directories(dir / "out");
    const Timed run = pack(dir, *s, write_manifest(dir, proxy.host()), dir / "out/faults.tar.zst");
    MESSAGE("pack against a registry answering 500 gave up after " << run.elapsed.count() << " ms, "
                                                                    << proxy.requests().size() << " requests");
    INFO(run.result.err);
    CHECK(run.result.exit_code == k_registry_failure);
    CHECK(run.elapsed < 30s);
    CHECK(contains(run.result.err, proxy.url()));
    CHECK(contains(run.result.err, "HTTP 500"));
    const std::size_t seen = proxy.requests().size();
    CHECK(seen >= 2);
    CHECK(seen <= 10);
    CHECK(contains(run.result.err, std::to_string(seen) + " attempts"));
    CHECK(listing(dir / "out").empty());
  }
  SUBCASE("push stores no manifest") {
    const fs::path bundle = dir / "faults.tar.zst";
    REQUIRE(pack(dir, *s, write_manifest(dir, s->server.host()), bundle).result.exit_code == 0);
    RegistryServer target;
    FaultProxy proxy(target.host());
    proxy.add_rule(fail_with({}, ".", 500, k_every_time));
    const Timed run = push(dir, *s, bundle, proxy.host() + "/mirror");
    MESSAGE("push against a registry answering 500 gave up after " << run.elapsed.count() << " ms, "
                                                                    << proxy.requests().size() << " requests");
    INFO(run.result.err);
    CHECK(run.result.exit_code == k_registry_failure);
    CHECK(run.elapsed < 30s);
    CHECK(contains(run.result.err, proxy.url()));
    CHECK(contains(run.result.err, "HTTP 500"));
    CHECK(proxy.requests().size() <= 60);
    CHECK(proxy.count("PUT", k_manifests) == 0);
    for (const auto& repo_tag : k_repo_tags) {
      CAPTURE(repo_tag);
      CHECK_FALSE(tag_exists(target, "mirror/" + repo_tag));
    }
  }
}

TEST_CASE("a corrupted answer from the source registry fails pack with exit 3 naming the digest") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  FaultProxy proxy(s->server.host());
  fs::create_directories(dir / "out");
  const fs::path bundle = dir / "out/faults.tar.zst";

  SUBCASE("a flipped byte in a layer") {
    const Layer big = largest_layer(s->server, "team/app1:1.0");
    proxy.add_rule(corrupt_at("GET", "/blobs/" + big.digest, big.size / 2));
    const Timed run = pack(dir, *s, write_manifest(dir, proxy.host()), bundle);
    INFO(run.result.err);
    CHECK(run.result.exit_code == k_integrity_failure);
    CHECK(contains(run.result.err, big.digest));
    CHECK(proxy.count("GET", "/blobs/" + big.digest, Fault::corrupt) == 1);
  }
  SUBCASE("a flipped byte in a manifest") {
    proxy.add_rule(corrupt_at("GET", "/team/app1/manifests/1.0", 40));
    const Timed run = pack(dir, *s, write_manifest(dir, proxy.host()), bundle);
    INFO(run.result.err);
    CHECK(run.result.exit_code == k_integrity_failure);
    CHECK(contains(run.result.err, ferry::test::registry_digest(s->server, "team/app1:1.0")));
  }
  CHECK(listing(dir / "out").empty());
}

TEST_CASE("a registry certificate that is expired or from another CA is refused with exit 4") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  const fs::path bundle = dir / "local.tar.zst";
  const RunResult packed = run_ferry({"pack", "-f", f.manifest.string(), "-o", bundle.string(), "--key", f.key.string()});
  INFO(packed.err);
  REQUIRE(packed.exit_code == 0);

  // An unknown CA: the hint says the certificate is not signed by the CA in --ca-file.
  // An expired certificate: the hint says so (renew it, or check the clock), and does not
  // send the operator after another --ca-file.
  enum class HintsCaFile { no, yes };
  struct Case {
    std::string name;
    RegistryOptions options;
    std::vector<std::string> problem; // one of these words names the problem
    HintsCaFile hint;
  };
  for (const Case& c : {Case{"expired", {.tls = true, .expired_cert = true}, {"expired"}, HintsCaFile::no},
                        Case{"foreign CA", {.tls = true, .foreign_ca = true},
                             {"unable to get local issuer", "self-signed", "self signed", "unknown ca"},
                             HintsCaFile::yes}}) {
    CAPTURE(c.name);
    RegistryServer target(c.options);
    const auto names_problem = [&](const std::string& err) {
      return std::any_of(c.problem.begin(), c.problem.end(), [&](const std::string& w) { return contains(err, w); });
    };
    const RunResult pushed = run_ferry({"push", bundle.string(), "--registry", target.host(), "--pubkey",
                                        f.pub.string(), "--ca-file", target.ca_file().string()},
                                       {.cwd = {}, .env = isolated_env(dir), .input = {}});
    INFO(pushed.err);
    CHECK(pushed.exit_code == k_registry_failure);
    CHECK(contains(pushed.err, target.host()));
    CHECK(names_problem(pushed.err));
    if (c.hint == HintsCaFile::yes) CHECK(contains(pushed.err, "not signed by the CA in --ca-file"));
    if (c.hint == HintsCaFile::no) CHECK(contains(pushed.err, "hint: the certificate of " + target.host() + " has expired"));

    write_file(dir / "tls.yaml", "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: tls, version: \"1\"}\n"
                                 "images:\n  - " + target.host() + "/team/app1:1.0\n");
    const RunResult pulled = run_ferry({"pack", "-f", (dir / "tls.yaml").string(), "-o", (dir / "tls.tar.zst").string(),
                                        "--key", f.key.string(), "--ca-file", target.ca_file().string()},
                                       {.cwd = {}, .env = isolated_env(dir), .input = {}});
    INFO(pulled.err);
    CHECK(pulled.exit_code == k_registry_failure);
    CHECK(names_problem(pulled.err));
    if (c.hint == HintsCaFile::yes) CHECK(contains(pulled.err, "--ca-file"));
    CHECK_FALSE(fs::exists(dir / "tls.tar.zst"));
  }
}

TEST_CASE("failing pack and push runs show no password and no token, on screen or in files") {
  require_tools(k_tools);
  const std::string password = "Pw-9f3c1e-never-shown";
  const std::vector<std::string> password_forms = {password, base64("ferry:" + password)};

  struct Auth {
    std::string name;
    RegistryOptions options;
  };
  for (const Auth& auth : {Auth{"htpasswd", {.htpasswd = true, .password = password}},
                           Auth{"token", {.password = password, .token_auth = true}}}) {
    CAPTURE(auth.name);
    TestDir run_dir;
    auto s = seeded_source(run_dir, auth.options);
    const fs::path out = run_dir / "out";
    fs::create_directories(out);

    // pack from the registry: a layer is forbidden (403, not retried; its hint talks
    // about credentials).
    FaultProxy source_proxy(s->server.host());
    const Layer big = largest_layer(s->server, "team/app1:1.0");
    source_proxy.add_rule(fail_with("GET", "/blobs/" + big.digest, 403, k_every_time));
    const Timed packed = pack(run_dir, *s, write_manifest(run_dir, source_proxy.host()), out / "faults.tar.zst",
                              {"--username", "ferry", "--password-stdin", "-v"}, password + "\n");
    INFO(packed.result.err);
    CHECK(packed.result.exit_code == k_registry_failure);
    CHECK(contains(packed.result.err, "HTTP 403"));
    CHECK(listing(out).empty());

    // push into the registry: every manifest PUT fails (500 every time: retried, with a
    // warning each time).
    const fs::path bundle = run_dir / "good.tar.zst";
    REQUIRE(pack(run_dir, *s, write_manifest(run_dir, s->server.host()), bundle,
                 {"--username", "ferry", "--password-stdin"}, password + "\n")
                .result.exit_code == 0);
    FaultProxy target_proxy(s->server.host());
    target_proxy.add_rule(fail_with("PUT", k_manifests, 500, k_every_time));
    const Timed pushed = push(run_dir, *s, bundle, target_proxy.host() + "/mirror",
                              {"--username", "ferry", "--password-stdin", "-v"}, password + "\n");
    INFO(pushed.result.err);
    CHECK(pushed.result.exit_code == k_registry_failure);
    CHECK(contains(pushed.result.err, "HTTP 500"));
    CHECK(target_proxy.count("PUT", k_manifests, Fault::status) > 0);
    CHECK_FALSE(tag_exists(s->server, "mirror/team/app1:1.0"));

    std::vector<std::string> secrets = password_forms;
    if (auth.options.token_auth) {
      std::set<std::string> tokens = bearer_tokens(source_proxy);
      const std::set<std::string> more = bearer_tokens(target_proxy);
      tokens.insert(more.begin(), more.end());
      CHECK(tokens.size() >= 2); // a pull token for pack, a push token for push at least
      secrets.insert(secrets.end(), tokens.begin(), tokens.end());
      secrets.push_back("eyJ"); // any JWT
    } else {
      CHECK(bearer_tokens(target_proxy).empty());
    }
    const std::vector<fs::path> written = {out, run_dir / "home", run_dir / "state", run_dir / "docker"};
    check_no_secret(packed.result, secrets, written);
    check_no_secret(pushed.result, secrets, written);
  }
}

TEST_CASE("push resumes a chunked upload after a failed PATCH from the offset the upload session reports") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  const fs::path bundle = dir / "faults.tar.zst";
  REQUIRE(pack(dir, *s, write_manifest(dir, s->server.host()), bundle).result.exit_code == 0);
  const Layer big = largest_layer(s->server, "team/app1:1.0");
  constexpr std::uint64_t k_chunk = 64u << 10;
  REQUIRE(big.size > 3 * k_chunk); // at least four PATCHes; every other blob is smaller than a chunk

  RegistryServer target;
  FaultProxy proxy(target.host());
  // The first PATCH passes, the second is answered 500 without reaching the registry.
  proxy.add_rule({.method = "PATCH", .path = k_uploads, .fault = Fault::none, .times = 1});
  proxy.add_rule(fail_with("PATCH", k_uploads, 500));

  const Timed run = push(dir, *s, bundle, proxy.host() + "/mirror", {"--chunk-size", "64K"});
  INFO(run.result.err);
  REQUIRE(run.result.exit_code == 0);

  // "Content-Range: FIRST-LAST" of a PATCH (distribution spec: no unit).
  const auto range_of = [](const ProxiedRequest& r) {
    const std::string value = r.header("content-range").value_or("");
    const auto dash = value.find('-');
    REQUIRE_MESSAGE(dash != std::string::npos, "PATCH " << r.target << " has Content-Range \"" << value << "\"");
    return std::pair<std::uint64_t, std::uint64_t>{std::stoull(value.substr(0, dash)),
                                                   std::stoull(value.substr(dash + 1))};
  };
  const auto upload_path = [](const std::string& url) { return url.substr(0, url.find('?')); };
  const auto requests = proxy.requests();
  std::vector<std::size_t> patches;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].method == "PATCH") patches.push_back(i);
  }
  REQUIRE(patches.size() >= 5); // four chunks and the one sent again
  const ProxiedRequest& failed = requests[patches[1]];
  REQUIRE(failed.fault == Fault::status);
  CHECK(failed.status == 500);
  // What arrived before the failure: the first chunk, whole.
  const ProxiedRequest& first = requests[patches[0]];
  CHECK(first.status == 202);
  CHECK(range_of(first) == std::pair<std::uint64_t, std::uint64_t>{0, k_chunk - 1});
  const std::uint64_t arrived = range_of(first).second + 1;
  CHECK(range_of(failed) == std::pair<std::uint64_t, std::uint64_t>{arrived, arrived + k_chunk - 1});

  // After the failure: the status query (GET on the upload), then the PATCH from the offset
  // the registry reported, on the same upload.
  const auto after_failed = requests.begin() + static_cast<std::ptrdiff_t>(patches[1]) + 1;
  const auto at_resumed = requests.begin() + static_cast<std::ptrdiff_t>(patches[2]);
  const auto status_query = std::find_if(after_failed, at_resumed, [&](const ProxiedRequest& r) {
    return r.method == "GET" && upload_path(r.target) == upload_path(failed.target);
  });
  REQUIRE(status_query != at_resumed);
  CHECK(status_query->status == 204);
  const ProxiedRequest& resumed = requests[patches[2]];
  CHECK(upload_path(resumed.target) == upload_path(failed.target));
  CHECK(resumed.fault == Fault::none);
  CHECK(resumed.status == 202);
  CHECK(range_of(resumed).first == arrived);
  // The rest follows without gaps up to the last byte of the layer, then the final PUT.
  std::uint64_t next = arrived;
  for (std::size_t k = 2; k < patches.size(); ++k) {
    const auto [from, to] = range_of(requests[patches[k]]);
    CAPTURE(k);
    CHECK(from == next);
    CHECK(requests[patches[k]].status == 202);
    next = to + 1;
  }
  CHECK(next == big.size);
  CHECK(std::any_of(requests.begin() + static_cast<std::ptrdiff_t>(patches.back()) + 1, requests.end(),
                    [&](const ProxiedRequest& r) {
                      return r.method == "PUT" && upload_path(r.target) == upload_path(failed.target) &&
                             contains(r.target, "digest=sha256%3A" + big.digest.substr(7)) && r.status == 201;
                    }));

  // skopeo reads the images back from the registry itself with the source's digests, and
  // copies app1 (the resumed layer included) out of it.
  for (const auto& repo_tag : k_repo_tags) {
    CAPTURE(repo_tag);
    CHECK(ferry::test::registry_digest(target, "mirror/" + repo_tag) ==
          ferry::test::registry_digest(s->server, repo_tag));
  }
  std::vector<std::string> copy = {"skopeo", "copy", "--quiet"};
  for (const auto& flag : target.skopeo_src_flags()) copy.push_back(flag);
  copy.push_back(target.docker_ref("mirror/team/app1:1.0"));
  copy.push_back("oci:" + (dir / "back").string() + ":app1");
  must(copy);
  CHECK(fs::file_size(dir / "back/blobs/sha256" / big.digest.substr(7)) == big.size);
}

TEST_CASE("a PATCH that always fails ends push with exit 4 naming the repository and the blob, and no manifest") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  const fs::path bundle = dir / "faults.tar.zst";
  REQUIRE(pack(dir, *s, write_manifest(dir, s->server.host()), bundle).result.exit_code == 0);
  const Layer big = largest_layer(s->server, "team/app1:1.0");

  RegistryServer target;
  FaultProxy proxy(target.host());
  proxy.add_rule(fail_with("PATCH", k_uploads, 500, k_every_time));
  const Timed run = push(dir, *s, bundle, proxy.host() + "/mirror", {"--chunk-size", "64K", "--retries", "1"});
  MESSAGE("push against PATCHes answered 500 gave up after " << run.elapsed.count() << " ms");
  INFO(run.result.err);
  CHECK(run.result.exit_code == k_registry_failure);
  CHECK(run.elapsed < 30s);

  // The layer went to one repository (and would be mounted into the others): the error
  // names that one and the layer's digest.
  const auto requests = proxy.requests();
  const auto patch = std::find_if(requests.begin(), requests.end(),
                                  [](const ProxiedRequest& r) { return r.method == "PATCH"; });
  REQUIRE(patch != requests.end());
  const std::string repository = patch->target.substr(4, patch->target.find("/blobs/uploads/") - 4);
  CAPTURE(repository);
  CHECK(repository.rfind("mirror/team/", 0) == 0);
  CHECK(contains(run.result.err, "pushing blob " + big.digest + " to " + repository));
  CHECK(contains(run.result.err, "HTTP 500"));
  // --retries 1: the PATCH was sent twice (the status query in between), then ferry gave up.
  CHECK(proxy.count("PATCH", k_uploads, Fault::status) == 2);
  CHECK(proxy.count("PATCH", k_uploads) == 2);
  CHECK(proxy.count("GET", k_uploads) == 1);
  CHECK(proxy.count("PUT", k_manifests) == 0);
  for (const auto& repo_tag : k_repo_tags) {
    CAPTURE(repo_tag);
    CHECK_FALSE(tag_exists(target, "mirror/" + repo_tag));
  }
}

} // TEST_SUITE
