// A hostile network between ferry and its registries: a man in the middle with a
// certificate of its own, a certificate for another name, registries that answer another
// manifest than the one asked for, a tag moved while pack works, answers trickled a byte
// at a time, redirects to other hosts that must not see the credentials, and downgrades
// to plain HTTP. Real docker-registry servers on 127.0.0.1 behind HostileServer.
// SPDX-License-Identifier: Apache-2.0
#include "common/hostile_server.hpp"
#include "common/registry_fixture.hpp"
#include "common/token_server.hpp"
#include "support/harness.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace fs = std::filesystem;
using namespace ferry::itest;
using namespace std::chrono_literals;
using ferry::test::HostileAnswer;
using ferry::test::HostileExchange;
using ferry::test::HostileRequest;
using ferry::test::HostileServer;
using ferry::test::Platforms;
using ferry::test::RegistryOptions;
using ferry::test::RegistryServer;
using ferry::test::TestCa;
using ferry::test::TlsIdentity;
using nlohmann::json;

namespace {

const std::vector<std::string> k_tools = {"docker-registry", "umoci", "skopeo", "openssl", "htpasswd", "tar"};
constexpr int k_integrity_failure = 3;
constexpr int k_registry_failure = 4;
// Longer than any run here should take: a run still going then is hanging, and fails.
constexpr auto k_run_limit = 120s;

using Clock = std::chrono::steady_clock;

const std::string k_manifest_accept =
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

// A registry holding team/app1:1.0 and team/app2:1.0 (sharing a 200 kB layer) and the
// two-platform index team/multi:2.0.
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

// A bundle manifest `name`.yaml in `dir` listing `refs`.
fs::path write_manifest(const TestDir& dir, const std::string& name, const std::vector<std::string>& refs) {
  const fs::path file = dir / (name + ".yaml");
  std::string images;
  for (const auto& ref : refs) images += "  - " + ref + "\n";
  write_file(file, "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: " + name + ", version: \"1\"}\nimages:\n" +
                       images);
  return file;
}

struct Timed {
  RunResult result;
  std::chrono::milliseconds elapsed{0};
};

// Runs ferry, killed after k_run_limit (a hang fails the test instead of blocking it).
Timed run_bounded(const std::vector<std::string>& args, const TestDir& dir, std::string input = {}) {
  const char* bin = std::getenv("FERRY_BIN");
  REQUIRE_MESSAGE(bin != nullptr, "FERRY_BIN is not set (run the tests with `meson test`)");
  std::vector<std::string> argv{bin};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto start = Clock::now();
  Background process(argv, {.cwd = {}, .env = isolated_env(dir), .input = std::move(input)});
  bool killed = false;
  while (process.running()) {
    if (Clock::now() - start > k_run_limit) {
      process.kill_now();
      killed = true;
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  Timed t;
  t.result = process.wait();
  t.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  CHECK_MESSAGE(!killed, "ferry " << args.front() << " still ran after " << k_run_limit.count() << " s: killed");
  return t;
}

Timed pack(const TestDir& dir, const Fixtures& f, const fs::path& manifest, const fs::path& bundle,
           std::vector<std::string> extra = {}, std::string input = {}) {
  std::vector<std::string> args = {"pack", "-f", manifest.string(), "-o", bundle.string(), "--key", f.key.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_bounded(args, dir, std::move(input));
}

Timed push(const TestDir& dir, const Fixtures& f, const fs::path& bundle, const std::string& target,
           std::vector<std::string> extra = {}, std::string input = {}) {
  std::vector<std::string> args = {"push", bundle.string(), "--registry", target, "--pubkey", f.pub.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  return run_bounded(args, dir, std::move(input));
}

// A bundle of team/app1:1.0 packed straight from `s` (plain HTTP), for push tests.
fs::path packed_bundle(const TestDir& dir, const Source& s, std::vector<std::string> extra = {},
                       std::string input = {}) {
  const fs::path bundle = dir / "good.tar.zst";
  extra.push_back("--plain-http");
  const Timed run = pack(dir, s.f, write_manifest(dir, "good", {s.server.host() + "/team/app1:1.0"}), bundle,
                         std::move(extra), std::move(input));
  INFO(run.result.err);
  REQUIRE(run.result.exit_code == 0);
  return bundle;
}

std::vector<std::string> skopeo(const RegistryServer& server, std::vector<std::string> argv,
                                const std::string& repo_ref) {
  for (const auto& flag : server.skopeo_flags()) argv.push_back(flag);
  argv.push_back(server.docker_ref(repo_ref));
  return argv;
}

json raw_manifest(const RegistryServer& server, const std::string& repo_ref) {
  return json::parse(must(skopeo(server, {"skopeo", "inspect", "--raw"}, repo_ref)));
}

bool tag_exists(const RegistryServer& server, const std::string& repo_tag) {
  return ferry::test::run_command(skopeo(server, {"skopeo", "inspect", "--raw"}, repo_tag)).exit_code == 0;
}

// A manifest as a plain-HTTP registry without authentication serves it: the exact bytes
// and the headers that matter.
HostileAnswer manifest_answer(const RegistryServer& server, const std::string& repository, const std::string& ref) {
  httplib::Client client("127.0.0.1", server.port());
  const auto result = client.Get("/v2/" + repository + "/manifests/" + ref, {{"Accept", k_manifest_accept}});
  REQUIRE(result);
  REQUIRE(result->status == 200);
  HostileAnswer answer;
  answer.set_header("Content-Type", result->get_header_value("Content-Type"));
  answer.set_header("Docker-Content-Digest", result->get_header_value("Docker-Content-Digest"));
  answer.body = result->body;
  return answer;
}

// The largest layer of an image manifest.
std::pair<std::string, std::uint64_t> largest_layer(const json& manifest) {
  std::pair<std::string, std::uint64_t> best{"", 0};
  for (const auto& layer : manifest.at("layers")) {
    if (layer.at("size").get<std::uint64_t>() > best.second) {
      best = {layer.at("digest").get<std::string>(), layer.at("size").get<std::uint64_t>()};
    }
  }
  REQUIRE(best.second > 0);
  return best;
}

// Every digest an image or index in `server` refers to, itself included.
void closure(const RegistryServer& server, const std::string& repository, const std::string& digest,
             std::set<std::string>& out) {
  out.insert(digest);
  const json m = raw_manifest(server, repository + "@" + digest);
  if (m.contains("manifests")) {
    for (const auto& child : m.at("manifests")) closure(server, repository, child.at("digest").get<std::string>(), out);
    return;
  }
  out.insert(m.at("config").at("digest").get<std::string>());
  for (const auto& layer : m.at("layers")) out.insert(layer.at("digest").get<std::string>());
}

// The blob digests in a bundle, as tar lists its entries.
std::set<std::string> bundle_blobs(const fs::path& bundle) {
  std::set<std::string> blobs;
  const std::string listing = must({"tar", "--zstd", "-tf", bundle.string()});
  std::size_t pos = 0;
  while ((pos = listing.find("blobs/sha256/", pos)) != std::string::npos) {
    pos += std::string("blobs/sha256/").size();
    const std::size_t end = listing.find('\n', pos);
    blobs.insert("sha256:" + listing.substr(pos, end - pos));
  }
  return blobs;
}

std::vector<std::string> entries_of(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.push_back(entry.path().filename().string());
  return names;
}

// The value of query parameter `name` in a request target.
std::string query_value(const std::string& target, const std::string& name) {
  const auto start = target.find(name + "=");
  if (start == std::string::npos) return {};
  const auto from = start + name.size() + 1;
  return target.substr(from, target.find('&', from) - from);
}

// Blob storage behind "presigned" redirects: the front stores a blob's bytes under a
// random signature and redirects there; the storage serves them to whoever brings it.
struct PresignedStore {
  std::mutex mutex;
  std::map<std::string, std::string> blobs; // signature -> bytes
  std::atomic<int> next{0};

  std::string put(std::string bytes) {
    const std::string signature = "presigned-" + std::to_string(++next) + "-c0ffee";
    std::lock_guard lock(mutex);
    blobs[signature] = std::move(bytes);
    return signature;
  }
  void serve(HostileExchange& x) {
    const std::string signature = query_value(x.request().target, "X-Amz-Signature");
    HostileAnswer answer;
    {
      std::lock_guard lock(mutex);
      const auto it = blobs.find(signature);
      if (it == blobs.end()) {
        answer.status = 403;
        answer.body = "AccessDenied";
      } else {
        answer.set_header("Content-Type", "application/octet-stream");
        answer.body = it->second;
      }
    }
    x.send(answer);
  }
};

// A front that forwards to `upstream` but answers every successful blob GET with a 307 to
// `storage_origin` ("http://localhost:PORT"), whose PresignedStore then serves the bytes.
ferry::test::HostileHandler redirecting_blobs(const std::string& upstream, PresignedStore& store,
                                              const std::string& storage_origin) {
  return [upstream, &store, storage_origin](HostileExchange& x) {
    HostileAnswer answer = x.forward(upstream);
    const HostileRequest& r = x.request();
    const auto blob = r.path().find("/blobs/sha256:");
    if (r.method == "GET" && blob != std::string::npos && answer.status == 200) {
      const std::string digest = r.path().substr(blob + 7);
      HostileAnswer redirect;
      redirect.status = 307;
      redirect.set_header("Location", storage_origin + "/bucket/" + digest +
                                          "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=" +
                                          store.put(std::move(answer.body)));
      x.send(redirect);
      return;
    }
    x.send(answer);
  };
}

// The test PKI: the registry's CA (what --ca-file names), an intruder's CA, and server
// certificates.
struct Pki {
  TestCa ca;
  TestCa intruder;
  explicit Pki(const fs::path& dir)
      : ca(ferry::test::make_test_ca(dir, "registry-ca")), intruder(ferry::test::make_test_ca(dir, "intruder-ca")) {}
};

} // namespace

TEST_SUITE("network-hostile") {

TEST_CASE("a man in the middle with a certificate of its own gets no request from pack or push (exit 4)") {
  require_tools(k_tools);
  TestDir dir;
  const std::string password = "Mitm-pw-7d1e";
  auto s = seeded_source(dir, {.htpasswd = true, .password = password});
  const Pki pki(dir / "pki");
  const std::string san = "IP:127.0.0.1, DNS:localhost";
  const std::vector<std::string> login = {"--username", "ferry", "--password-stdin", "--ca-file",
                                          pki.ca.cert_file.string()};

  // The genuine TLS front of the registry: pack through it works (the control).
  HostileServer genuine(ferry::test::forward_to(s->server.host()),
                        ferry::test::make_server_identity(dir / "pki", "genuine", pki.ca, san));
  const fs::path bundle = dir / "genuine.tar.zst";
  const Timed control = pack(dir, s->f, write_manifest(dir, "genuine", {genuine.host() + "/team/app1:1.0"}), bundle,
                             login, password + "\n");
  INFO(control.result.err);
  REQUIRE(control.result.exit_code == 0);
  CHECK(genuine.count("GET", "/manifests/1.0") >= 1);

  struct Intruder {
    std::string name;
    TlsIdentity identity;
  };
  for (const Intruder& intruder :
       {Intruder{"certificate from another CA",
                 ferry::test::make_server_identity(dir / "pki", "intruder", pki.intruder, san)},
        Intruder{"self-signed certificate", ferry::test::make_self_signed_identity(dir / "pki", "self", san)}}) {
    CAPTURE(intruder.name);
    // It relays to the real registry, if anything gets through.
    HostileServer mitm(ferry::test::forward_to(s->server.host()), intruder.identity);
    fs::create_directories(dir / "out");

    const Timed pulled = pack(dir, s->f, write_manifest(dir, "mitm", {mitm.host() + "/team/app1:1.0"}),
                              dir / "out/mitm.tar.zst", login, password + "\n");
    INFO(pulled.result.err);
    CHECK(pulled.result.exit_code == k_registry_failure);
    CHECK(contains(pulled.result.err, "TLS handshake with " + mitm.host() + " failed"));
    CHECK(contains(pulled.result.err, "--ca-file " + pki.ca.cert_file.string()));
    CHECK(contains(pulled.result.err, "intercepting"));
    CHECK(entries_of(dir / "out").empty());

    const Timed pushed = push(dir, s->f, bundle, mitm.host() + "/mirror", login, password + "\n");
    INFO(pushed.result.err);
    CHECK(pushed.result.exit_code == k_registry_failure);
    CHECK(contains(pushed.result.err, "TLS handshake with " + mitm.host() + " failed"));
    CHECK(contains(pushed.result.err, "--ca-file"));

    // Every connection ended in the handshake: no request, so no credentials, passed.
    CHECK(mitm.requests().empty());
    CHECK(mitm.tls_failures() >= 2);
    CHECK(mitm.plain_connections() == 0);
    CHECK_FALSE(tag_exists(s->server, "mirror/team/app1:1.0"));
  }
}

TEST_CASE("a certificate from the trusted CA for another name is refused by pack and push, with no fallback") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  const Pki pki(dir / "pki");
  const fs::path bundle = packed_bundle(dir, *s);

  struct Case {
    std::string name;
    std::string san;      // what the certificate holds
    std::string hostname; // what ferry is told to reach
  };
  for (const Case& c : {Case{"made out for another DNS name", "DNS:registry.example.invalid", "127.0.0.1"},
                        Case{"made out for the IP address, reached as localhost", "IP:127.0.0.1", "localhost"}}) {
    CAPTURE(c.name);
    HostileServer front(ferry::test::forward_to(s->server.host()),
                        ferry::test::make_server_identity(dir / "pki", "other-name", pki.ca, c.san));
    const std::string host = c.hostname + ":" + std::to_string(front.port());
    fs::create_directories(dir / "out");

    const Timed pulled = pack(dir, s->f, write_manifest(dir, "name", {host + "/team/app1:1.0"}),
                              dir / "out/name.tar.zst", {"--ca-file", pki.ca.cert_file.string()});
    INFO(pulled.result.err);
    CHECK(pulled.result.exit_code == k_registry_failure);
    CHECK(contains(pulled.result.err, "TLS handshake with " + host + " failed"));
    CHECK(contains(pulled.result.err, "subject name"));
    CHECK(contains(pulled.result.err, "made out for another name"));
    CHECK_FALSE(contains(pulled.result.err, "retrying"));
    CHECK(entries_of(dir / "out").empty());

    const Timed pushed = push(dir, s->f, bundle, host + "/mirror", {"--ca-file", pki.ca.cert_file.string()});
    INFO(pushed.result.err);
    CHECK(pushed.result.exit_code == k_registry_failure);
    CHECK(contains(pushed.result.err, "made out for another name"));
    CHECK_FALSE(contains(pushed.result.err, "retrying"));

    // No fallback: not tried over plain HTTP, not tried without verification (which would
    // have got a request through); curl checks the name after the handshake, then hangs up
    // before sending anything.
    MESSAGE(c.name << ": " << front.connections() << " connections, no request");
    CHECK(front.requests().empty());
    CHECK(front.plain_connections() == 0);
    CHECK(front.connections() >= 2);
    CHECK_FALSE(tag_exists(s->server, "mirror/team/app1:1.0"));
  }
}

TEST_CASE("a manifest whose digest is not the one asked for fails pack with exit 3 naming both digests") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  const std::string app1 = ferry::test::registry_digest(s->server, "team/app1:1.0");
  const std::string app2 = ferry::test::registry_digest(s->server, "team/app2:1.0");
  REQUIRE(app1 != app2);
  const HostileAnswer app2_manifest = manifest_answer(s->server, "team/app2", "1.0");
  const json index = raw_manifest(s->server, "team/multi:2.0");
  REQUIRE(index.at("manifests").size() == 2);
  const std::string child0 = index.at("manifests")[0].at("digest");
  const std::string child1 = index.at("manifests")[1].at("digest");
  const HostileAnswer child1_manifest = manifest_answer(s->server, "team/multi", child1);
  fs::create_directories(dir / "out");

  struct Case {
    std::string name;
    std::string ref;                  // the image pack is given (on the front)
    std::string path;                 // the request the front answers falsely
    std::optional<HostileAnswer> swap; // another manifest, whole (with its own headers)
    std::string claimed;              // else: the Docker-Content-Digest it sends with the real body
    std::string asked;                // the digest asked for / the content's
    std::string got;                  // the other one
  };
  const std::vector<Case> cases = {
      {"by digest: another valid manifest", "/team/app1@" + app1, "/v2/team/app1/manifests/" + app1, app2_manifest, {},
       app1, app2},
      {"an index's child by digest: its sibling", "/team/multi:2.0", "/v2/team/multi/manifests/" + child0,
       child1_manifest, {}, child0, child1},
      {"by tag: Docker-Content-Digest not the body's", "/team/app1:1.0", "/v2/team/app1/manifests/1.0", std::nullopt,
       app2, app1, app2},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    std::atomic<int> lied{0};
    HostileServer front([&](HostileExchange& x) {
      if (x.request().path() != c.path || (x.request().method != "GET" && x.request().method != "HEAD")) {
        x.send(x.forward(s->server.host()));
        return;
      }
      ++lied;
      if (c.swap) {
        x.send(*c.swap);
        return;
      }
      HostileAnswer answer = x.forward(s->server.host());
      answer.set_header("Docker-Content-Digest", c.claimed);
      x.send(answer);
    });
    const Timed run = pack(dir, s->f, write_manifest(dir, "digest", {front.host() + c.ref}), dir / "out/digest.tar.zst",
                           {"--plain-http"});
    INFO(run.result.err);
    CHECK(lied >= 1);
    CHECK(run.result.exit_code == k_integrity_failure);
    CHECK(contains(run.result.err, c.asked));
    CHECK(contains(run.result.err, c.got));
    CHECK(entries_of(dir / "out").empty());
  }
}

TEST_CASE("a registry reporting another digest for a pushed or present manifest fails push with exit 3 naming both") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  const fs::path bundle = packed_bundle(dir, *s);
  const std::string app1 = ferry::test::registry_digest(s->server, "team/app1:1.0");
  const std::string bogus = ferry::test::registry_digest(s->server, "team/app2:1.0");

  SUBCASE("the answer to the manifest PUT") {
    RegistryServer target;
    std::mutex mutex;
    std::vector<std::string> put_targets;
    HostileServer front([&](HostileExchange& x) {
      HostileAnswer answer = x.forward(target.host());
      if (x.request().method == "PUT" && contains(x.request().path(), "/manifests/")) {
        std::lock_guard lock(mutex);
        put_targets.push_back(x.request().path());
        answer.set_header("Docker-Content-Digest", bogus);
      }
      x.send(answer);
    });
    const Timed run = push(dir, s->f, bundle, front.host() + "/mirror", {"--plain-http"});
    INFO(run.result.err);
    CHECK(run.result.exit_code == k_integrity_failure);
    CHECK(contains(run.result.err, bogus));
    REQUIRE(put_targets.size() == 1); // the first lie ends the push
    CHECK(put_targets.front() == "/v2/mirror/team/app1/manifests/" + app1);
    CHECK(contains(run.result.err, app1));
    CHECK_FALSE(tag_exists(target, "mirror/team/app1:1.0"));
  }
  SUBCASE("a HEAD that says the manifest is there under another digest") {
    RegistryServer target;
    std::atomic<int> lied{0};
    HostileServer front([&](HostileExchange& x) {
      if (x.request().method == "HEAD" && x.request().path() == "/v2/mirror/team/app1/manifests/" + app1) {
        ++lied;
        HostileAnswer answer;
        answer.set_header("Content-Type", "application/vnd.oci.image.manifest.v1+json");
        answer.set_header("Content-Length", "500");
        answer.set_header("Docker-Content-Digest", bogus);
        x.send(answer);
        return;
      }
      x.send(x.forward(target.host()));
    });
    const Timed run = push(dir, s->f, bundle, front.host() + "/mirror", {"--plain-http"});
    INFO(run.result.err);
    CHECK(lied >= 1);
    CHECK(run.result.exit_code == k_integrity_failure);
    CHECK(contains(run.result.err, app1));
    CHECK(contains(run.result.err, bogus));
    CHECK_FALSE(tag_exists(target, "mirror/team/app1:1.0"));
  }
}

TEST_CASE("tags moved right after pack resolved them: the bundle holds the images of the digests resolved, whole") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  const std::string multi_before = ferry::test::registry_digest(s->server, "team/multi:2.0");
  const std::string app1_before = ferry::test::registry_digest(s->server, "team/app1:1.0");
  const std::string app2 = ferry::test::registry_digest(s->server, "team/app2:1.0");
  std::set<std::string> expected;
  closure(s->server, "team/multi", multi_before, expected);
  closure(s->server, "team/app1", app1_before, expected);
  std::set<std::string> app2_blobs;
  closure(s->server, "team/app2", app2, app2_blobs);

  // On the first request naming either tag, the answer is taken from the registry, then
  // the tag is moved there (to app2, with another layer), then the old answer is sent.
  const std::string layout = "oci:" + s->f.layout.string();
  std::mutex mutex;
  std::set<std::string> moved;
  std::map<std::string, int> tag_requests;
  HostileServer front([&](HostileExchange& x) {
    const std::string path = x.request().path();
    HostileAnswer answer = x.forward(s->server.host());
    for (const std::string repo_tag : {"team/multi:2.0", "team/app1:1.0"}) {
      const auto colon = repo_tag.find(':');
      if (path != "/v2/" + repo_tag.substr(0, colon) + "/manifests/" + repo_tag.substr(colon + 1)) continue;
      std::lock_guard lock(mutex);
      ++tag_requests[repo_tag];
      if (moved.insert(repo_tag).second) {
        ferry::test::push_with_skopeo(s->server, layout + ":app2", repo_tag, Platforms::host);
      }
    }
    x.send(answer);
  });

  const fs::path manifest =
      write_manifest(dir, "moving", {front.host() + "/team/multi:2.0", front.host() + "/team/app1:1.0"});
  const fs::path bundle = dir / "moving.tar.zst";
  const Timed run = pack(dir, s->f, manifest, bundle, {"--plain-http"});
  INFO(run.result.err);
  REQUIRE(run.result.exit_code == 0);
  MESSAGE("requests naming the tags: multi " << tag_requests["team/multi:2.0"] << ", app1 "
                                             << tag_requests["team/app1:1.0"]);
  // The tags did move, while pack was running.
  REQUIRE(moved.size() == 2);
  CHECK(ferry::test::registry_digest(s->server, "team/multi:2.0") == app2);
  CHECK(ferry::test::registry_digest(s->server, "team/app1:1.0") == app2);

  // ferry.json, the lock and the bundle's blobs all say the digests resolved first.
  const RunResult verify = run_ferry({"verify", bundle.string(), "--pubkey", s->f.pub.string()});
  INFO(verify.err);
  CHECK(verify.exit_code == 0);
  const json info = json::parse(run_ferry({"inspect", bundle.string(), "--output", "json"}).out);
  REQUIRE(info["images"].size() == 2);
  std::map<std::string, std::string> digests;
  for (const auto& image : info["images"]) {
    digests[image["ref"].get<std::string>()] = image["digest"].get<std::string>();
  }
  CHECK(digests[front.host() + "/team/multi:2.0"] == multi_before);
  CHECK(digests[front.host() + "/team/app1:1.0"] == app1_before);
  const std::string lock = read_file(dir / "moving.lock.json");
  CHECK(contains(lock, multi_before));
  CHECK(contains(lock, app1_before));
  CHECK_FALSE(contains(lock, app2));
  const std::set<std::string> blobs = bundle_blobs(bundle);
  for (const auto& digest : expected) {
    CAPTURE(digest);
    CHECK(blobs.count(digest) == 1);
  }
  for (const auto& digest : app2_blobs) {
    if (expected.count(digest)) continue; // shared with the old images (the base layer)
    CAPTURE(digest);
    CHECK(blobs.count(digest) == 0);
  }
  CHECK(blobs.size() == expected.size());
}

TEST_CASE("slow-loris answers: --timeout cuts each request, --retries bounds them, pack and push end in time") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  const auto [layer, layer_size] = largest_layer(raw_manifest(s->server, "team/app1:1.0"));
  REQUIRE(layer_size > 100000);
  const std::string tag_path = "/v2/team/app1/manifests/1.0";
  fs::create_directories(dir / "out");

  struct Case {
    std::string name;
    std::string path;     // the request answered slowly
    int retries;          // --retries
    std::size_t requests; // expected requests of `path`: retries + 1
    std::string says;     // in the error
  };
  // Each case's handler: true when it answered the request itself.
  using Slow = std::function<bool(HostileExchange&)>;
  const std::vector<std::pair<Case, Slow>> cases = {
      {{"headers a byte per second", tag_path, 1, 2, "--timeout"},
       [&](HostileExchange& x) {
         x.trickle("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nX-Slow: " +
                       std::string(4096, 'z'),
                   1, 1000ms);
         return true;
       }},
      {{"a manifest body a byte every half second", tag_path, 1, 2, "--timeout"},
       [&](HostileExchange& x) {
         const HostileAnswer answer = x.forward(s->server.host());
         if (x.send_raw(x.head_of(answer))) x.trickle(answer.body, 1, 500ms);
         return true;
       }},
      {{"a layer a few bytes per connection, resumable", "/v2/team/app1/blobs/" + layer, 2, 3, "--timeout"},
       [&](HostileExchange& x) {
         // Range requests are honoured, so every attempt makes a little progress.
         HostileAnswer answer = x.forward(s->server.host());
         std::uint64_t from = 0;
         if (const auto range = x.request().header("range"); range && range->rfind("bytes=", 0) == 0) {
           from = std::stoull(range->substr(6));
           answer.status = 206;
           answer.set_header("Content-Range", "bytes " + std::to_string(from) + "-" +
                                                  std::to_string(answer.body.size() - 1) + "/" +
                                                  std::to_string(answer.body.size()));
         }
         const std::string rest = answer.body.substr(static_cast<std::size_t>(from));
         answer.body = rest;
         if (x.send_raw(x.head_of(answer))) x.trickle(rest, 3, 300ms);
         return true;
       }},
      {{"an endless error body, fast enough for the low-speed check", tag_path, 1, 2, "HTTP 503"},
       [&](HostileExchange& x) {
         if (!x.send_raw("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                         "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")) {
           return true;
         }
         const std::string chunk = "1000\r\n" + std::string(4096, 'e') + "\r\n"; // 4 KiB every 125 ms: 32 KiB/s
         while (x.send_raw(chunk) && x.pause(125ms)) {
         }
         return true;
       }},
  };
  SUBCASE("pack") {
    for (const auto& [c, slow] : cases) {
      CAPTURE(c.name);
      HostileServer front([&, path = c.path, slow = slow](HostileExchange& x) {
        if (x.request().method == "GET" && x.request().path() == path && slow(x)) return;
        x.send(x.forward(s->server.host()));
      });
      const Timed run = pack(dir, s->f, write_manifest(dir, "slow", {front.host() + "/team/app1:1.0"}),
                             dir / "out/slow.tar.zst",
                             {"--plain-http", "--timeout", "2s", "--retries", std::to_string(c.retries)});
      MESSAGE(c.name << ": pack gave up after " << run.elapsed.count() << " ms, "
                     << front.count("GET", c.path) << " requests of " << c.path);
      INFO(run.result.err);
      CHECK(run.result.exit_code == k_registry_failure);
      CHECK(front.count("GET", c.path) == c.requests);
      CHECK(contains(run.result.err, std::to_string(c.requests) + " attempts"));
      CHECK(contains(run.result.err, c.says));
      // Each attempt ends within about --timeout (the endless body: 64 KiB at 32 KiB/s).
      CHECK(run.elapsed < std::chrono::seconds(5 * c.requests + 10));
      CHECK(entries_of(dir / "out").empty());
    }
  }

  SUBCASE("push: the answer to a manifest PUT trickles in") {
    const fs::path bundle = packed_bundle(dir, *s);
    RegistryServer target;
    HostileServer front([&](HostileExchange& x) {
      if (x.request().method == "PUT" && contains(x.request().path(), "/manifests/")) {
        x.trickle("HTTP/1.1 201 Created\r\nX-Slow: " + std::string(4096, 'z'), 1, 1000ms);
        return;
      }
      x.send(x.forward(target.host()));
    });
    const Timed run = push(dir, s->f, bundle, front.host() + "/mirror",
                           {"--plain-http", "--timeout", "2s", "--retries", "1"});
    const std::size_t puts = front.count("PUT", "/manifests/");
    MESSAGE("push gave up after " << run.elapsed.count() << " ms, " << puts << " manifest PUTs");
    INFO(run.result.err);
    CHECK(run.result.exit_code == k_registry_failure);
    CHECK(puts == 2);
    CHECK(contains(run.result.err, "2 attempts"));
    CHECK(contains(run.result.err, "--timeout"));
    CHECK(run.elapsed < 30s);
    CHECK_FALSE(tag_exists(target, "mirror/team/app1:1.0"));
  }
}

TEST_CASE("credentials never follow a redirect to another host; the presigned redirect itself works") {
  require_tools(k_tools);
  const std::string password = "Redirect-pw-4b2a";

  SUBCASE("pack: blob GETs redirected to storage on another host name or port") {
    struct Auth {
      std::string name;
      RegistryOptions options;
    };
    for (const Auth& auth : {Auth{"basic", {.htpasswd = true, .password = password}},
                             Auth{"bearer", {.password = password, .token_auth = true}}}) {
      for (const std::string storage_name : {"localhost", "127.0.0.1"}) {
        CAPTURE(auth.name);
        CAPTURE(storage_name);
        TestDir dir;
        auto s = seeded_source(dir, auth.options);
        PresignedStore store;
        HostileServer storage([&](HostileExchange& x) { store.serve(x); });
        const std::string storage_origin = "http://" + storage_name + ":" + std::to_string(storage.port());
        HostileServer front(redirecting_blobs(s->server.host(), store, storage_origin));
        const fs::path bundle = dir / "redirect.tar.zst";
        const Timed run = pack(dir, s->f,
                               write_manifest(dir, "redirect",
                                              {front.host() + "/team/app1:1.0", front.host() + "/team/multi:2.0"}),
                               bundle, {"--plain-http", "--username", "ferry", "--password-stdin", "-v"},
                               password + "\n");
        INFO(run.result.err);
        REQUIRE(run.result.exit_code == 0);

        // The registry got the credentials (Basic, or the bearer tokens bought with them).
        std::set<std::string> secrets = {password, base64("ferry:" + password)};
        bool front_saw_credentials = false;
        for (const auto& r : front.requests()) {
          if (const auto value = r.header("authorization")) {
            front_saw_credentials = true;
            if (value->rfind("Bearer ", 0) == 0) secrets.insert(value->substr(7));
          }
        }
        CHECK(front_saw_credentials);
        // The storage served every blob, and saw none of them.
        const auto stored = storage.requests();
        CHECK(stored.size() >= 4);
        for (const auto& r : stored) {
          CAPTURE(r.target);
          CHECK_FALSE(r.header("authorization").has_value());
          CHECK(contains(r.target, "X-Amz-Signature=presigned-"));
          for (const auto& [name, value] : r.headers) {
            for (const auto& secret : secrets) CHECK_FALSE(contains(value, secret));
          }
        }
        // The presigned signature is a secret of its own: not in the output.
        CHECK_FALSE(contains(run.result.err, "-c0ffee"));
        CHECK_FALSE(contains(run.result.out, "-c0ffee"));
        // And the bundle holds the registry's images.
        const json info = json::parse(run_ferry({"inspect", bundle.string(), "--output", "json"}).out);
        for (const auto& image : info["images"]) {
          const std::string ref = image["ref"];
          CAPTURE(ref);
          CHECK(image["digest"] == ferry::test::registry_digest(s->server, ref.substr(ref.find('/') + 1)));
        }
      }
    }
  }

  SUBCASE("push: uploads sent to a session location on another host") {
    TestDir dir;
    auto s = seeded_source(dir, {.htpasswd = true, .password = password});
    const fs::path bundle = packed_bundle(dir, *s, {"--username", "ferry", "--password-stdin"}, password + "\n");
    RegistryServer target({.htpasswd = true, .password = password});
    // The upload host authorises by the session in its URL; here it adds the credentials
    // itself on the way to the registry.
    const std::string basic = "Basic " + base64("ferry:" + password);
    HostileServer uploads([&](HostileExchange& x) { x.send(x.forward(target.host(), {{"authorization", basic}})); });
    const std::string uploads_origin = "http://localhost:" + std::to_string(uploads.port());
    HostileServer front([&](HostileExchange& x) {
      HostileAnswer answer = x.forward(target.host());
      const auto location = answer.header("Location");
      if (x.request().method == "POST" && answer.status == 202 && location) {
        const auto path = location->find("/v2/");
        REQUIRE(path != std::string::npos);
        answer.set_header("Location", uploads_origin + location->substr(path));
      }
      x.send(answer);
    });
    const Timed run = push(dir, s->f, bundle, front.host() + "/mirror",
                           {"--plain-http", "--username", "ferry", "--password-stdin"}, password + "\n");
    INFO(run.result.err);
    REQUIRE(run.result.exit_code == 0);
    CHECK(ferry::test::registry_digest(target, "mirror/team/app1:1.0") ==
          ferry::test::registry_digest(s->server, "team/app1:1.0"));
    bool front_saw_credentials = false;
    for (const auto& r : front.requests()) front_saw_credentials |= r.header("authorization").has_value();
    CHECK(front_saw_credentials);
    const auto sent = uploads.requests();
    CHECK(std::count_if(sent.begin(), sent.end(), [](const HostileRequest& r) { return r.method == "PUT"; }) >= 2);
    for (const auto& r : sent) {
      CAPTURE(r.method + " " + r.target);
      CHECK_FALSE(r.header("authorization").has_value());
      for (const auto& [name, value] : r.headers) {
        CHECK_FALSE(contains(value, password));
        CHECK_FALSE(contains(value, base64("ferry:" + password)));
      }
    }
  }
}

TEST_CASE("downgrades to plain HTTP are refused without --plain-http, and work as documented with it") {
  require_tools(k_tools);
  TestDir dir;
  const Pki pki(dir / "pki");
  const TlsIdentity identity = ferry::test::make_server_identity(dir / "pki", "front", pki.ca, "IP:127.0.0.1");
  const std::vector<std::string> ca = {"--ca-file", pki.ca.cert_file.string()};
  fs::create_directories(dir / "out");

  SUBCASE("pack: a blob redirect from https to http") {
    auto s = seeded_source(dir);
    PresignedStore store;
    HostileServer plain_storage([&](HostileExchange& x) { store.serve(x); });
    HostileServer tls_storage([&](HostileExchange& x) { store.serve(x); }, identity);
    {
      HostileServer front(redirecting_blobs(s->server.host(), store, plain_storage.url()), identity);
      const Timed run = pack(dir, s->f, write_manifest(dir, "down", {front.host() + "/team/app1:1.0"}),
                             dir / "out/down.tar.zst", ca);
      INFO(run.result.err);
      CHECK(run.result.exit_code == k_registry_failure);
      CHECK(contains(run.result.err, "refusing plain HTTP"));
      CHECK(contains(run.result.err, plain_storage.url() + "/bucket/"));
      CHECK(contains(run.result.err, "--plain-http"));
      CHECK_FALSE(contains(run.result.err, "-c0ffee"));
      CHECK(plain_storage.requests().empty());
      CHECK(entries_of(dir / "out").empty());
    }
    // The same redirect to https storage is followed: it was the scheme that was refused.
    HostileServer front(redirecting_blobs(s->server.host(), store, tls_storage.url()), identity);
    const Timed run = pack(dir, s->f, write_manifest(dir, "up", {front.host() + "/team/app1:1.0"}),
                           dir / "out/up.tar.zst", ca);
    INFO(run.result.err);
    CHECK(run.result.exit_code == 0);
    CHECK(tls_storage.requests().size() >= 2);
    // With --plain-http the registry itself is plain HTTP, and so may its storage be.
    HostileServer plain_front(redirecting_blobs(s->server.host(), store, plain_storage.url()));
    fs::remove_all(dir / "cache");
    const Timed allowed = pack(dir, s->f, write_manifest(dir, "plain", {plain_front.host() + "/team/app1:1.0"}),
                               dir / "out/plain.tar.zst", {"--plain-http"});
    INFO(allowed.result.err);
    CHECK(allowed.result.exit_code == 0);
    CHECK(plain_storage.requests().size() >= 2);
  }

  SUBCASE("push: an upload location on http") {
    auto s = seeded_source(dir);
    const fs::path bundle = packed_bundle(dir, *s);
    RegistryServer target;
    HostileServer plain_uploads(ferry::test::forward_to(target.host()));
    HostileServer front([&](HostileExchange& x) {
      HostileAnswer answer = x.forward(target.host());
      const auto location = answer.header("Location");
      if (x.request().method == "POST" && answer.status == 202 && location) {
        answer.set_header("Location", plain_uploads.url() + location->substr(location->find("/v2/")));
      }
      x.send(answer);
    }, identity);
    const Timed run = push(dir, s->f, bundle, front.host() + "/mirror", ca);
    INFO(run.result.err);
    CHECK(run.result.exit_code == k_registry_failure);
    CHECK(contains(run.result.err, "refusing plain HTTP"));
    CHECK(contains(run.result.err, plain_uploads.url() + "/v2/mirror/"));
    CHECK(plain_uploads.requests().empty());
    CHECK(front.count("POST", "/blobs/uploads/") >= 1);
    CHECK_FALSE(tag_exists(target, "mirror/team/app1:1.0"));
  }

  SUBCASE("pack and push: a token realm on http") {
    const std::string password = "Realm-pw-93ce";
    auto s = seeded_source(dir, {.password = password, .token_auth = true});
    auto& tokens = s->server.token_server();
    // Straight to the plain-HTTP registry with --plain-http: the http realm is fine.
    const fs::path bundle = packed_bundle(dir, *s, {"--username", "ferry", "--password-stdin"}, password + "\n");
    CHECK_FALSE(tokens.requests().empty());
    tokens.clear_requests();
    HostileServer front(ferry::test::forward_to(s->server.host()), identity);
    std::vector<std::string> login = ca;
    login.insert(login.end(), {"--username", "ferry", "--password-stdin"});

    const Timed pulled = pack(dir, s->f, write_manifest(dir, "realm", {front.host() + "/team/app1:1.0"}),
                              dir / "out/realm.tar.zst", login, password + "\n");
    INFO(pulled.result.err);
    CHECK(pulled.result.exit_code == k_registry_failure);
    CHECK(contains(pulled.result.err, "plain-HTTP token endpoint " + tokens.realm()));
    CHECK(contains(pulled.result.err, "--plain-http"));
    CHECK(entries_of(dir / "out").empty());

    const Timed pushed = push(dir, s->f, bundle, front.host() + "/mirror", login, password + "\n");
    INFO(pushed.result.err);
    CHECK(pushed.result.exit_code == k_registry_failure);
    CHECK(contains(pushed.result.err, "plain-HTTP token endpoint " + tokens.realm()));

    // Neither the credentials nor a request for a token went over plain HTTP.
    CHECK(tokens.requests().empty());
    CHECK(front.count("", "/v2/") >= 2); // the challenges came through the TLS front
    CHECK_FALSE(tag_exists(s->server, "mirror/team/app1:1.0"));
    CHECK_FALSE(contains(pulled.result.err, password));
    CHECK_FALSE(contains(pushed.result.err, password));
  }
}

} // TEST_SUITE
