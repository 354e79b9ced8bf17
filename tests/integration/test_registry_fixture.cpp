// The registry fixture itself: each RegistryServer variant takes an image pushed by skopeo
// and gives it back with the same digest, and refuses clients it should refuse.
// SPDX-License-Identifier: Apache-2.0
#include "common/registry_fixture.hpp"
#include "common/token_server.hpp"
#include "support/harness.hpp"

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

namespace {

using ferry::itest::must;
using ferry::itest::TestDir;
using ferry::test::contains;
using ferry::test::must_run;
using ferry::test::Platforms;
using ferry::test::registry_digest;
using ferry::test::RegistryOptions;
using ferry::test::RegistryServer;
using ferry::test::run_command;
using nlohmann::json;

struct Tools {
  Tools() { ferry::itest::require_tools({"docker-registry", "skopeo", "umoci", "openssl", "htpasswd"}); }
};
const Tools k_tools;

// A one-layer image built with umoci: "oci:DIR:app" and its manifest digest.
struct Image {
  std::string source;
  std::string digest;
};

std::string layout_digest(const std::filesystem::path& layout, const std::string& ref) {
  const json index = json::parse(ferry::test::read_file(layout / "index.json"));
  for (const auto& m : index["manifests"]) {
    if (m["annotations"].value("org.opencontainers.image.ref.name", "") == ref) return m["digest"];
  }
  FAIL("no ref " << ref << " in " << (layout / "index.json").string());
  return {};
}

Image make_image(const TestDir& dir) {
  const std::string layout = (dir / "layout").string();
  ferry::test::write_file(dir / "hello.txt", "hello from the registry fixture test\n");
  must({"umoci", "init", "--layout", layout});
  must({"umoci", "new", "--image", layout + ":app"});
  must({"umoci", "insert", "--image", layout + ":app", (dir / "hello.txt").string(), "/hello.txt"});
  return {"oci:" + layout + ":app", layout_digest(dir / "layout", "app")};
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// `skopeo inspect --raw` with `flags`; the result, for checking refusals.
ferry::test::CommandResult inspect(const RegistryServer& server, const std::vector<std::string>& flags,
                                   const std::string& repo_tag) {
  return run_command(concat(concat({"skopeo", "inspect", "--raw"}, flags), {server.docker_ref(repo_tag)}));
}

// The claims of a JWT (its middle part), decoded without checking anything.
json jwt_claims(const std::string& token) {
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  REQUIRE(second != std::string::npos);
  std::string part = token.substr(first + 1, second - first - 1);
  for (auto& c : part) {
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  while (part.size() % 4) part += '=';
  TestDir dir;
  ferry::test::write_file(dir / "claims.b64", part);
  return json::parse(must_run({"openssl", "base64", "-d", "-A", "-in", (dir / "claims.b64").string()}));
}

} // namespace

TEST_SUITE("registry-fixture") {

TEST_CASE("RegistryServer serves an image pushed by skopeo back with the same digest") {
  TestDir dir;
  const Image image = make_image(dir);
  RegistryOptions options;
  std::string scheme = "http://";
  SUBCASE("plain HTTP") {}
  SUBCASE("TLS with its own CA") {
    options.tls = true;
    scheme = "https://";
  }
  SUBCASE("basic auth over plain HTTP") { options.htpasswd = true; }
  SUBCASE("TLS and basic auth") {
    options.tls = true;
    options.htpasswd = true;
    scheme = "https://";
  }
  SUBCASE("bearer tokens") { options.token_auth = true; }

  const RegistryServer server(options);
  CHECK(server.url() == scheme + server.host());
  CHECK(server.host() == "127.0.0.1:" + std::to_string(server.port()));
  CHECK(server.ca_file().empty() == !options.tls);
  ferry::test::push_with_skopeo(server, image.source, "team/app:1.0");
  CHECK(registry_digest(server, "team/app:1.0") == image.digest);
  const json tags = json::parse(
      must_run(concat(concat({"skopeo", "list-tags"}, server.skopeo_flags()), {server.docker_ref("team/app")})));
  CHECK(tags["Tags"] == json::array({"1.0"}));
}

TEST_CASE("RegistryServer with Platforms::all copies every image of an index") {
  TestDir dir;
  const auto fixtures = ferry::itest::make_fixtures(dir.path());
  const std::string index_digest = layout_digest(fixtures.layout, "multi");
  const RegistryServer server;
  ferry::test::push_with_skopeo(server, "oci:" + fixtures.layout.string() + ":multi", "team/multi:2.0",
                                Platforms::all);
  CHECK(registry_digest(server, "team/multi:2.0") == index_digest);
  const json index = json::parse(ferry::test::read_file(fixtures.layout / "blobs/sha256" / index_digest.substr(7)));
  REQUIRE(index["manifests"].size() == 2);
  for (const auto& child : index["manifests"]) {
    const std::string digest = child["digest"];
    CHECK(registry_digest(server, "team/multi@" + digest) == digest);
  }
}

TEST_CASE("RegistryServer with tls is refused by skopeo without the CA") {
  const RegistryServer server({.tls = true});
  const auto r = inspect(server, {}, "team/app:1.0");
  CHECK(r.exit_code != 0);
  CHECK(contains(r.err, "certificate signed by unknown authority"));
}

TEST_CASE("RegistryServer with tls has a server certificate for 127.0.0.1 and localhost from ca_file()") {
  const RegistryServer server({.tls = true});
  const std::string pem = server.dir() / "pki/server.pem";
  CHECK(contains(must_run({"openssl", "verify", "-CAfile", server.ca_file().string(), pem}), ": OK"));
  const std::string san = must_run({"openssl", "x509", "-in", pem, "-noout", "-ext", "subjectAltName"});
  CHECK(contains(san, "IP Address:127.0.0.1"));
  CHECK(contains(san, "DNS:localhost"));
  CHECK(contains(must_run({"openssl", "x509", "-in", server.ca_file().string(), "-noout", "-subject"}),
                 "ferry test CA"));
}

TEST_CASE("RegistryServer with expired_cert is refused by skopeo that trusts ca_file()") {
  const RegistryServer server({.expired_cert = true});
  CHECK(server.tls());
  const auto r = inspect(server, server.skopeo_flags(), "team/app:1.0");
  CHECK(r.exit_code != 0);
  CHECK(contains(r.err, "certificate has expired"));
}

TEST_CASE("RegistryServer with foreign_ca is refused by skopeo that trusts ca_file()") {
  const RegistryServer server({.foreign_ca = true});
  CHECK(server.tls());
  const auto r = inspect(server, server.skopeo_flags(), "team/app:1.0");
  CHECK(r.exit_code != 0);
  CHECK(contains(r.err, "certificate signed by unknown authority"));
}

TEST_CASE("RegistryServer with htpasswd refuses a wrong password and a missing one") {
  TestDir dir;
  const Image image = make_image(dir);
  RegistryOptions options{.htpasswd = true};
  SUBCASE("plain HTTP") {}
  SUBCASE("TLS") { options.tls = true; }
  const RegistryServer server(options);
  std::vector<std::string> flags = server.skopeo_dest_flags();
  flags.back() = options.username + ":wrong";
  const auto wrong = run_command(concat(concat({"skopeo", "copy"}, flags), {image.source, server.docker_ref("a:1")}));
  CHECK(wrong.exit_code != 0);
  CHECK(contains(wrong.err, "authentication required"));
  flags.resize(flags.size() - 2);
  const auto missing =
      run_command(concat(concat({"skopeo", "copy"}, flags), {image.source, server.docker_ref("a:1")}));
  CHECK(missing.exit_code != 0);
  CHECK(contains(missing.err, "authentication required"));
}

TEST_CASE("RegistryServer with token_auth records the scopes skopeo asked for") {
  TestDir dir;
  const Image image = make_image(dir);
  const RegistryServer server({.token_auth = true});
  ferry::test::push_with_skopeo(server, image.source, "team/app:1.0");
  CHECK(server.token_server().requested("team/app", "push"));
  CHECK(server.token_server().requested("team/app", "pull"));
  CHECK_FALSE(server.token_server().requested("team/other", "pull"));
  for (const auto& request : server.token_server().requests()) {
    CHECK(request.method == "GET");
    CHECK(request.user == "ferry");
    CHECK(request.service == "ferry-test-registry");
    CHECK(request.status == 200);
  }
  server.token_server().clear_requests();
  CHECK(registry_digest(server, "team/app:1.0") == image.digest);
  CHECK(server.token_server().requested("team/app", "pull"));
  CHECK_FALSE(server.token_server().requested("team/app", "push"));
}

TEST_CASE("RegistryServer with token_deny_push lets skopeo pull but not push") {
  TestDir dir;
  const Image image = make_image(dir);
  const RegistryServer server({.token_auth = true});
  ferry::test::push_with_skopeo(server, image.source, "team/app:1.0");
  server.token_server().set_deny_push(true);
  server.token_server().clear_requests();
  const auto push = run_command(concat(concat({"skopeo", "copy"}, server.skopeo_dest_flags()),
                                       {image.source, server.docker_ref("team/app:2.0")}));
  CHECK(push.exit_code != 0);
  CHECK(contains(push.err, "denied"));
  CHECK(server.token_server().requested("team/app", "push"));
  for (const auto& request : server.token_server().requests()) {
    for (const auto& granted : request.granted) CHECK_FALSE(contains(granted, "push"));
  }
  CHECK(registry_digest(server, "team/app:1.0") == image.digest);
}

TEST_CASE("RegistryServer with token_auth refuses a wrong password at the token server") {
  TestDir dir;
  const Image image = make_image(dir);
  const RegistryServer server({.token_auth = true});
  const auto r = run_command({"skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", "ferry:wrong", image.source,
                              server.docker_ref("team/app:1.0")});
  CHECK(r.exit_code != 0);
  const auto requests = server.token_server().requests();
  REQUIRE_FALSE(requests.empty());
  CHECK(requests.front().status == 401);
  CHECK(requests.front().user == "ferry");
}

TEST_CASE("TokenServer issues a JWT for the scopes asked for, and 401 without credentials") {
  TestDir dir;
  ferry::test::TokenServer tokens(dir / "token");
  httplib::Client client("http://127.0.0.1:" + std::to_string(tokens.port()));
  const httplib::Params params{{"service", "ferry-test-registry"},
                               {"scope", "repository:team/app:pull,push"},
                               {"scope", "repository:team/base:pull"}};
  const auto refused = client.Get("/token", params, httplib::Headers{});
  REQUIRE(refused);
  CHECK(refused->status == 401);

  client.set_basic_auth("ferry", "ferry-test-secret");
  const auto granted = client.Get("/token", params, httplib::Headers{});
  REQUIRE(granted);
  CHECK(granted->status == 200);
  const json body = json::parse(granted->body);
  CHECK(body["expires_in"] == 300);
  CHECK(body["token"] == body["access_token"]);
  const json claims = jwt_claims(body["token"]);
  CHECK(claims["iss"] == "ferry-test-issuer");
  CHECK(claims["aud"] == "ferry-test-registry");
  CHECK(claims["sub"] == "ferry");
  CHECK(claims["exp"].get<long long>() - claims["iat"].get<long long>() == 300);
  CHECK(claims["access"] == json::parse(R"([{"type":"repository","name":"team/app","actions":["pull","push"]},
                                            {"type":"repository","name":"team/base","actions":["pull"]}])"));
  const auto requests = tokens.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].status == 401);
  CHECK(requests[1].scopes == std::vector<std::string>{"repository:team/app:pull,push", "repository:team/base:pull"});
}

TEST_CASE("TokenServer accepts the OAuth2 password grant by POST") {
  TestDir dir;
  ferry::test::TokenServer tokens(dir / "token", {.deny_push = true});
  httplib::Client client("http://127.0.0.1:" + std::to_string(tokens.port()));
  httplib::Params form{{"grant_type", "password"},
                       {"username", "ferry"},
                       {"password", "ferry-test-secret"},
                       {"service", "ferry-test-registry"},
                       {"scope", "repository:team/app:pull,push repository:team/base:pull"}};
  const auto granted = client.Post("/token", form);
  REQUIRE(granted);
  CHECK(granted->status == 200);
  const json claims = jwt_claims(json::parse(granted->body)["access_token"]);
  CHECK(claims["access"] == json::parse(R"([{"type":"repository","name":"team/app","actions":["pull"]},
                                            {"type":"repository","name":"team/base","actions":["pull"]}])"));
  form.erase("password");
  form.emplace("password", "wrong");
  const auto refused = client.Post("/token", form);
  REQUIRE(refused);
  CHECK(refused->status == 401);
  const auto requests = tokens.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].method == "POST");
  CHECK(requests[0].granted == std::vector<std::string>{"repository:team/app:pull", "repository:team/base:pull"});
  CHECK(tokens.requested("team/app", "push"));
}

TEST_CASE("RegistryServer destructor stops the server") {
  std::string ref;
  std::vector<std::string> flags;
  {
    const RegistryServer server;
    ref = server.docker_ref("team/app:1.0");
    flags = server.skopeo_flags();
  }
  const auto r = run_command(concat(concat({"skopeo", "inspect", "--retry-times", "0"}, flags), {ref}));
  CHECK(r.exit_code != 0);
  CHECK(contains(r.err, "connection refused"));
}

} // TEST_SUITE
