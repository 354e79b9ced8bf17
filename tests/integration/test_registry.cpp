// pack from registries and push into registries: real docker-registry servers on
// 127.0.0.1 (plain HTTP or mutual TLS as the source; TLS with htpasswd, token auth or a
// required client certificate as the target), images seeded and read back with skopeo.
// SPDX-License-Identifier: Apache-2.0
#include "common/registry_fixture.hpp"
#include "common/token_server.hpp"
#include "support/harness.hpp"

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;
using namespace ferry::itest;
using ferry::test::Platforms;
using ferry::test::RegistryOptions;
using ferry::test::RegistryServer;
using nlohmann::json;

namespace {

const std::vector<std::string> k_tools = {"docker-registry", "umoci", "skopeo", "openssl", "htpasswd"};
constexpr int k_registry_failure = 4;

// A source registry holding app1, app2 (sharing a layer) and a two-platform index.
struct Source {
  Fixtures f;
  RegistryServer server;
  fs::path manifest;
};

std::unique_ptr<Source> seeded_source(const TestDir& dir, RegistryOptions options = {}) {
  auto s = std::unique_ptr<Source>(new Source{make_fixtures(dir.path()), RegistryServer(std::move(options)), {}});
  const std::string layout = "oci:" + s->f.layout.string();
  ferry::test::push_with_skopeo(s->server, layout + ":app1", "team/app1:1.0", Platforms::host);
  ferry::test::push_with_skopeo(s->server, layout + ":app2", "team/app2:1.0", Platforms::host);
  ferry::test::push_with_skopeo(s->server, layout + ":multi", "team/multi:2.0", Platforms::all);
  s->manifest = dir / "registry.yaml";
  write_file(s->manifest, "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: reg, version: \"1\"}\n"
                          "images:\n"
                          "  - " + s->server.host() + "/team/app1:1.0\n"
                          "  - docker://" + s->server.host() + "/team/app2:1.0\n"
                          "  - " + s->server.host() + "/team/multi:2.0\n"
                          "charts:\n  - {name: demo, path: ./charts/demo, version: 0.3.1}\n");
  return s;
}

// The flags that reach `server` as it is meant to be reached: --ca-file (TLS) or
// --plain-http.
std::vector<std::string> connection_flags(const RegistryServer& server) {
  if (server.tls()) return {"--ca-file", server.ca_file().string()};
  return {"--plain-http"};
}

// --cert-file and --key-file with the client certificate of a mutual-TLS `server`.
std::vector<std::string> client_cert_flags(const RegistryServer& server) {
  REQUIRE(!server.client_cert_file().empty());
  return {"--cert-file", server.client_cert_file().string(), "--key-file", server.client_key_file().string()};
}

RunResult pack_from(const Source& s, const fs::path& bundle, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"pack", "-f", s.manifest.string(), "-o", bundle.string(), "--key",
                                   s.f.key.string()};
  const auto connection = connection_flags(s.server);
  args.insert(args.end(), connection.begin(), connection.end());
  args.insert(args.end(), extra.begin(), extra.end());
  return run_ferry(args);
}

// The source's images packed into DIR/reg.tar.zst (the pack must succeed).
fs::path packed(const Source& s, const TestDir& dir) {
  const fs::path bundle = dir / "reg.tar.zst";
  const RunResult r = pack_from(s, bundle);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return bundle;
}

RunResult push_to(const Source& s, const fs::path& bundle, const RegistryServer& target, const std::string& prefix,
                  std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"push", bundle.string(), "--registry", target.host() + prefix, "--pubkey",
                                   s.f.pub.string(), "--output", "json", "--state-dir",
                                   (s.f.key.parent_path() / "state").string()};
  const auto connection = connection_flags(target);
  args.insert(args.end(), connection.begin(), connection.end());
  args.insert(args.end(), extra.begin(), extra.end());
  return run_ferry(args, {.cwd = {}, .env = {}, .input = "ferry-test-secret\n"});
}

} // namespace

TEST_SUITE("registry") {

TEST_CASE("pack pulls images by tag from a registry and records their digests") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  const fs::path bundle = dir / "reg.tar.zst";
  const RunResult r = pack_from(*s, bundle);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json info = json::parse(run_ferry({"inspect", bundle.string(), "--output", "json"}).out);
  REQUIRE(info["images"].size() == 3);
  for (const auto& image : info["images"]) {
    const std::string ref = image["ref"];
    const std::string repo_tag = ref.substr(ref.find('/') + 1);
    CAPTURE(ref);
    CHECK(image["digest"] == ferry::test::registry_digest(s->server, repo_tag));
    // Without a platform filter the index is carried byte-exact: no rewritten root.
    CHECK_FALSE(image.contains("sourceDigest"));
  }
  CHECK(info["savedBySharing"].get<std::uint64_t>() > 200000);
  // The extracted layout holds the same images, as skopeo sees them.
  const fs::path out = dir / "x";
  REQUIRE(run_ferry({"extract", bundle.string(), "-o", out.string(), "--pubkey", s->f.pub.string()}).exit_code == 0);
  const json multi = json::parse(must({"skopeo", "inspect", "--raw", "oci:" + out.string() + ":" + s->server.host() +
                                                                         "/team/multi:2.0"}));
  CHECK(multi["manifests"].size() == 2);
}

TEST_CASE("pack through a mirror records the original references") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  write_file(s->manifest, "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: mirrored, version: \"1\"}\n"
                          "images:\n  - quay.example.invalid/team/app1:1.0\n");
  const fs::path bundle = dir / "m.tar.zst";
  const RunResult r = pack_from(*s, bundle, {"--mirror", "quay.example.invalid=" + s->server.host()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const json info = json::parse(run_ferry({"inspect", bundle.string(), "--output", "json"}).out);
  CHECK(info["images"][0]["ref"] == "quay.example.invalid/team/app1:1.0");
  CHECK(info["images"][0]["digest"] == ferry::test::registry_digest(s->server, "team/app1:1.0"));
}

TEST_CASE("a missing image in the source registry is named with exit 4") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  write_file(s->manifest, "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: x, version: \"1\"}\n"
                          "images:\n  - " + s->server.host() + "/team/nothing:9.9\n");
  const RunResult r = pack_from(*s, dir / "x.tar.zst");
  CHECK(r.exit_code == k_registry_failure);
  CHECK(contains(r.err, "team/nothing"));
  CHECK_FALSE(fs::exists(dir / "x.tar.zst"));
}

TEST_CASE("push puts images and charts into a TLS registry with basic auth, digests unchanged") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  const fs::path bundle = packed(*s, dir);
  RegistryServer target({.tls = true, .htpasswd = true});

  const RunResult first = push_to(*s, bundle, target, "/mirror", {"--username", "ferry", "--password-stdin"});
  INFO(first.err);
  REQUIRE(first.exit_code == 0);
  const json report = json::parse(first.out);
  CHECK(report["blobs"]["uploaded"].get<int>() > 0);
  CHECK(report["artifacts"].size() == 4);
  CHECK_FALSE(contains(first.out + first.err, "ferry-test-secret"));

  for (const char* repo_tag : {"team/app1:1.0", "team/app2:1.0", "team/multi:2.0"}) {
    CAPTURE(repo_tag);
    CHECK(ferry::test::registry_digest(target, std::string("mirror/") + repo_tag) ==
          ferry::test::registry_digest(s->server, repo_tag));
  }
  // skopeo copies an image out of the target: every blob is really there.
  std::vector<std::string> copy = {"skopeo", "copy", "--quiet"};
  for (const auto& flag : target.skopeo_src_flags()) copy.push_back(flag);
  copy.push_back(target.docker_ref("mirror/team/multi:2.0"));
  copy.push_back("oci:" + (dir / "back").string() + ":multi");
  copy.insert(copy.begin() + 2, "--all");
  must(copy);
  // The chart is an OCI chart under charts/.
  const json chart = json::parse(ferry::test::must_run([&] {
    std::vector<std::string> a = {"skopeo", "inspect", "--raw"};
    for (const auto& flag : target.skopeo_flags()) a.push_back(flag);
    a.push_back(target.docker_ref("mirror/charts/demo:0.3.1"));
    return a;
  }()));
  CHECK(chart["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json");

  SUBCASE("a second push moves no blob bytes") {
    const RunResult again = push_to(*s, bundle, target, "/mirror", {"--username", "ferry", "--password-stdin"});
    INFO(again.err);
    REQUIRE(again.exit_code == 0);
    const json second = json::parse(again.out);
    CHECK(second["blobs"]["uploaded"] == 0);
    CHECK(second["blobs"]["uploadedBytes"] == 0);
    CHECK(second["manifests"]["pushed"] == 0);
    // The journal of the first run was found and its entries re-checked.
    CHECK(second["journalEntriesBefore"].get<int>() > 0);
    const std::string journal = read_file(second["journal"].get<std::string>());
    CHECK(journal.find("complete\n") != std::string::npos);
    CHECK(journal.find("tag mirror/team/app1 1.0 " + ferry::test::registry_digest(target, "mirror/team/app1:1.0")) !=
          std::string::npos);
  }
  SUBCASE("--dry-run pushes nothing into an empty prefix and says what it would") {
    const RunResult dry = push_to(*s, bundle, target, "/other", {"--username", "ferry", "--password-stdin", "--dry-run"});
    INFO(dry.err);
    REQUIRE(dry.exit_code == 0);
    const json plan = json::parse(dry.out);
    CHECK(plan["dryRun"] == true);
    // It predicts exactly what the first real push into an empty prefix did.
    CHECK(plan["blobs"]["uploaded"] == report["blobs"]["uploaded"]);
    CHECK(plan["blobs"]["uploadedBytes"] == report["blobs"]["uploadedBytes"]);
    CHECK(plan["blobs"]["mounted"] == report["blobs"]["mounted"]);
    CHECK(plan["manifests"]["pushed"] == report["manifests"]["pushed"]);
    std::vector<std::string> tags = {"skopeo", "list-tags"};
    for (const auto& flag : target.skopeo_flags()) tags.push_back(flag);
    tags.push_back(target.docker_ref("other/team/app1"));
    CHECK(ferry::test::run_command(tags).exit_code != 0);
  }
}

TEST_CASE("push with a wrong password fails with exit 4 and never shows the password") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  const fs::path bundle = packed(*s, dir);
  RegistryServer target({.tls = true, .htpasswd = true});
  std::vector<std::string> args = {"push", bundle.string(), "--registry", target.host(), "--pubkey", s->f.pub.string(),
                                   "--ca-file", target.ca_file().string(), "--username", "ferry", "--password-stdin",
                                   "--state-dir", (dir / "state").string()};
  const RunResult r = run_ferry(args, {.cwd = {}, .env = {}, .input = "not-the-password-4711\n"});
  CHECK(r.exit_code == k_registry_failure);
  CHECK(contains(r.err, target.host()));
  CHECK_FALSE(contains(r.out + r.err, "not-the-password-4711"));
}

TEST_CASE("push to a TLS registry without its CA is refused, naming TLS and --ca-file") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  const fs::path bundle = packed(*s, dir);
  RegistryServer target({.tls = true});
  const RunResult r = run_ferry({"push", bundle.string(), "--registry", target.host(), "--pubkey", s->f.pub.string(),
                                 "--state-dir", (dir / "state").string()});
  CHECK(r.exit_code == k_registry_failure);
  CHECK(contains(r.err, "--ca-file"));
}

TEST_CASE("push through bearer token auth asks for push scopes") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  const fs::path bundle = packed(*s, dir);
  RegistryServer target({.token_auth = true});
  const RunResult r = push_to(*s, bundle, target, "", {"--username", "ferry", "--password-stdin"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(target.token_server().requested("team/app1", "push"));
  CHECK(ferry::test::registry_digest(target, "team/app1:1.0") == ferry::test::registry_digest(s->server, "team/app1:1.0"));
}

TEST_CASE("pack and push reach registries that require a client certificate with --cert-file and --key-file") {
  require_tools(k_tools);
  TestDir dir;
  // pack from a mutual-TLS source: the bundle holds the source's digests.
  auto s = seeded_source(dir, {.mutual_tls = true});
  const fs::path bundle = dir / "reg.tar.zst";
  const RunResult pack = pack_from(*s, bundle, client_cert_flags(s->server));
  INFO(pack.err);
  REQUIRE(pack.exit_code == 0);
  const json info = json::parse(run_ferry({"inspect", bundle.string(), "--output", "json"}).out);
  REQUIRE(info["images"].size() == 3);
  for (const auto& image : info["images"]) {
    const std::string ref = image["ref"];
    CAPTURE(ref);
    CHECK(image["digest"] == ferry::test::registry_digest(s->server, ref.substr(ref.find('/') + 1)));
  }

  // push into a mutual-TLS target: skopeo (presenting the client certificate too) reads
  // every image back with the source's digest and copies it out, blobs and all.
  RegistryServer target({.mutual_tls = true});
  const RunResult push = push_to(*s, bundle, target, "/mirror", client_cert_flags(target));
  INFO(push.err);
  REQUIRE(push.exit_code == 0);
  CHECK(json::parse(push.out)["blobs"]["uploaded"].get<int>() > 0);
  for (const auto& [repo, tag] : {std::pair{"team/app1", "1.0"}, {"team/app2", "1.0"}, {"team/multi", "2.0"}}) {
    const std::string repo_tag = std::string(repo) + ":" + tag;
    CAPTURE(repo_tag);
    CHECK(ferry::test::registry_digest(target, "mirror/" + repo_tag) ==
          ferry::test::registry_digest(s->server, repo_tag));
    std::vector<std::string> copy = {"skopeo", "copy", "--quiet", "--all"};
    for (const auto& flag : target.skopeo_src_flags()) copy.push_back(flag);
    copy.push_back(target.docker_ref("mirror/" + repo_tag));
    copy.push_back("oci:" + (dir / "back").string() + ":" + repo);
    must(copy);
  }
  std::vector<std::string> inspect = {"skopeo", "inspect", "--raw"};
  for (const auto& flag : target.skopeo_flags()) inspect.push_back(flag);
  inspect.push_back(target.docker_ref("mirror/charts/demo:0.3.1"));
  CHECK(json::parse(must(inspect))["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json");
}

TEST_CASE("push to a mutual-TLS registry without a client certificate fails with exit 4 naming the certificate") {
  require_tools(k_tools);
  TestDir dir;
  auto s = seeded_source(dir);
  const fs::path bundle = packed(*s, dir);
  RegistryServer target({.mutual_tls = true});
  const RunResult r = push_to(*s, bundle, target, "/mirror");
  INFO(r.err);
  CHECK(r.exit_code == k_registry_failure);
  CHECK(contains(r.err, target.host()));
  // TLS 1.3: the client's handshake completes before the server checks the (missing)
  // certificate, so the refusal arrives as an alert on the first read. Go 1.19 sends
  // bad_certificate (OpenSSL: "sslv3 alert bad certificate"), newer Go certificate_required.
  CHECK((contains(r.err, "alert bad certificate") || contains(r.err, "certificate required")));
  CHECK(contains(target.log(), "client didn't provide a certificate"));
  // The hint names the flags: from the alert, or (when the server closed the connection
  // before its alert could be read) from the bare close after the handshake.
  CHECK(contains(r.err, "--cert-file"));
  std::vector<std::string> tags = {"skopeo", "list-tags"};
  for (const auto& flag : target.skopeo_flags()) tags.push_back(flag);
  tags.push_back(target.docker_ref("mirror/team/app1"));
  CHECK(ferry::test::run_command(tags).exit_code != 0);
}

} // TEST_SUITE

TEST_SUITE("registry") {

TEST_CASE("doctor passes a healthy registry and names the fix for each failure") {
  require_tools(k_tools);
  TestDir dir;
  RegistryServer target({.tls = true, .htpasswd = true});
  const std::vector<std::string> base = {"doctor", "--registry", target.host() + "/team", "--output", "json",
                                         "--state-dir", (dir / "state").string()};
  auto doctor = [&](std::vector<std::string> extra, const std::string& input) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return run_ferry(args, {.cwd = {}, .env = {}, .input = input});
  };
  auto status_of = [](const json& report, const std::string& name) {
    for (const auto& c : report["checks"]) {
      if (c["check"] == name) return c["status"].get<std::string>();
    }
    return std::string("missing");
  };

  const RunResult healthy = doctor({"--ca-file", target.ca_file().string(), "--username", "ferry", "--password-stdin"},
                                   "ferry-test-secret\n");
  INFO(healthy.err);
  REQUIRE(healthy.exit_code == 0);
  const json ok = json::parse(healthy.out);
  for (const char* check : {"dns", "tcp", "api", "push", "body-size", "mount"}) {
    CAPTURE(check);
    CHECK(status_of(ok, check) == "ok");
  }

  const RunResult no_ca = doctor({"--username", "ferry", "--password-stdin"}, "ferry-test-secret\n");
  CHECK(no_ca.exit_code == k_registry_failure);
  const json tls = json::parse(no_ca.out);
  CHECK(status_of(tls, "api") == "FAILED");
  CHECK(status_of(tls, "push") == "skipped");
  CHECK(contains(no_ca.out, "--ca-file"));

  const RunResult wrong = doctor({"--ca-file", target.ca_file().string(), "--username", "ferry", "--password-stdin"},
                                 "wrong-password-99\n");
  CHECK(wrong.exit_code == k_registry_failure);
  CHECK(status_of(json::parse(wrong.out), "api") == "FAILED");
  CHECK_FALSE(contains(wrong.out + wrong.err, "wrong-password-99"));
}

TEST_CASE("doctor passes a mutual-TLS registry with --cert-file and --key-file and fails it without") {
  require_tools(k_tools);
  TestDir dir;
  RegistryServer target({.mutual_tls = true});
  auto doctor = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"doctor", "--registry", target.host() + "/team", "--ca-file",
                                     target.ca_file().string(), "--output", "json", "--state-dir",
                                     (dir / "state").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_ferry(args);
  };
  auto check_of = [](const json& report, const std::string& name) {
    for (const auto& c : report["checks"]) {
      if (c["check"] == name) return c;
    }
    return json{{"status", "missing"}};
  };

  const RunResult healthy = doctor(client_cert_flags(target));
  INFO(healthy.err);
  REQUIRE(healthy.exit_code == 0);
  const json ok = json::parse(healthy.out);
  CHECK(ok["ok"] == true);
  for (const char* check : {"dns", "tcp", "api", "push", "body-size", "mount"}) {
    CAPTURE(check);
    CHECK(check_of(ok, check)["status"] == "ok");
  }
  // The probe went through the mutual-TLS handshake, so the registry saw it.
  CHECK(contains(target.log(), "/v2/team/ferry-doctor/blobs/uploads/"));

  const RunResult refused = doctor({});
  INFO(refused.err);
  CHECK(refused.exit_code == k_registry_failure);
  const json failed = json::parse(refused.out);
  CHECK(failed["ok"] == false);
  CHECK(check_of(failed, "tcp")["status"] == "ok");
  const json api = check_of(failed, "api");
  CHECK(api["status"] == "FAILED");
  CHECK(contains(api["detail"].get<std::string>(), target.url() + "/v2/"));
  CHECK(check_of(failed, "push")["status"] == "skipped");
  CHECK(contains(api["fix"].get<std::string>(), "--cert-file"));
  CHECK(contains(refused.err, "registry " + target.host() + "/team failed the checks above"));
}

TEST_CASE("doctor reports missing push rights under token auth") {
  require_tools(k_tools);
  TestDir dir;
  RegistryServer target({.token_auth = true, .token_deny_push = true});
  const RunResult r = run_ferry({"doctor", "--registry", target.host(), "--plain-http", "--output", "json",
                                 "--username", "ferry", "--password-stdin", "--state-dir", (dir / "state").string()},
                                {.cwd = {}, .env = {}, .input = "ferry-test-secret\n"});
  CHECK(r.exit_code == k_registry_failure);
  const json report = json::parse(r.out);
  bool push_failed = false;
  for (const auto& c : report["checks"]) {
    if (c["check"] == "api") CHECK(c["status"] == "ok");
    if (c["check"] == "push") push_failed = c["status"] == "FAILED";
  }
  CHECK(push_failed);
}

} // TEST_SUITE
