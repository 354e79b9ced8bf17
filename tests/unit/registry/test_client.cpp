// Tests for registry/client: against a real docker-registry on 127.0.0.1 (RegistryServer:
// plain HTTP, TLS, htpasswd and token variants) and, for misbehaviour a real registry does
// not show (broken transfers, 503s, redirects to blob storage, lying digests), small
// scripted HTTP servers.
// SPDX-License-Identifier: Apache-2.0
#include "common/registry_fixture.hpp"
#include "common/token_server.hpp"
#include "core/digest.hpp"
#include "core/encoding.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/io.hpp"
#include "oci/media_types.hpp"
#include "registry/client.hpp"
#include "support/test_support.hpp"

#include <curl/curl.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ferry::core::Digest;
using ferry::registry::Client;
using ferry::registry::ClientOptions;
using ferry::registry::ContentCheck;
using ferry::test::contains;
using ferry::test::RegistryOptions;
using ferry::test::RegistryServer;

namespace {

// libcurl wants curl_global_init once before any thread; ferry's main() does it for the
// program. The credentials lookup of clients without explicit credentials reads
// $REGISTRY_AUTH_FILE first: point it at a file of our own, so that the tests never see
// the user's docker logins.
struct ProcessSetup {
  ferry::core::TempDir dir;
  fs::path auth_file = dir.path() / "auth.json";
  ProcessSetup() {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    ferry::test::write_file(auth_file, "{}");
    ::setenv("REGISTRY_AUTH_FILE", auth_file.c_str(), 1);
  }
  ~ProcessSetup() { curl_global_cleanup(); }
};
ProcessSetup g_setup;

// Sets the shared credentials file for one test, and empties it again afterwards. Owner-only,
// as docker and podman write it: ferry refuses passwords in a file others may read.
struct AuthFileContent {
  explicit AuthFileContent(const std::string& json) {
    ferry::test::write_file(g_setup.auth_file, json);
    fs::permissions(g_setup.auth_file, fs::perms::owner_read | fs::perms::owner_write);
  }
  ~AuthFileContent() { ferry::test::write_file(g_setup.auth_file, "{}"); }
};

using ferry::test::CaptureLog;

struct Blob {
  std::string bytes;
  Digest digest;
};

Blob make_blob(std::size_t size, unsigned seed) {
  Blob blob{ferry::test::random_bytes(size, seed), {}};
  blob.digest = ferry::core::sha256_of(blob.bytes);
  return blob;
}

// Fast retries, plain HTTP: for the plain registry and the scripted servers.
ClientOptions plain_options() {
  ClientOptions options;
  options.tls.plain_http = true;
  options.max_attempts = 4;
  options.initial_backoff = 1ms;
  return options;
}

ClientOptions options_for(const RegistryServer& server) {
  ClientOptions options = plain_options();
  options.tls.plain_http = !server.tls();
  if (server.tls()) options.tls.ca_file = server.ca_file();
  return options;
}

RegistryOptions registry_options(bool tls = false) {
  RegistryOptions options;
  options.tls = tls;
  return options;
}

void push(Client& client, const std::string& repository, const Blob& blob) {
  ferry::core::StringSource source(blob.bytes);
  client.push_blob(repository, blob.digest, blob.bytes.size(), source);
}

std::string pull(Client& client, const std::string& repository, const Blob& blob) {
  ferry::core::StringSink sink;
  client.get_blob(repository, blob.digest, blob.bytes.size(), sink);
  return sink.take();
}

// An image in `repository`: config and layer blobs pushed, the manifest's bytes returned
// (with unusual spacing, so that re-serialising anywhere would show).
std::string push_image(Client& client, const std::string& repository, unsigned seed) {
  const Blob config{R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}, "seed":)" +
                        std::to_string(seed) + "}",
                    {}};
  const Blob config_blob{config.bytes, ferry::core::sha256_of(config.bytes)};
  const Blob layer = make_blob(3000, seed);
  push(client, repository, config_blob);
  push(client, repository, layer);
  return "{\n   \"schemaVersion\" : 2,\n  \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\",\n"
         "  \"config\": {\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"" +
         config_blob.digest.str() + "\", \"size\": " + std::to_string(config_blob.bytes.size()) +
         "},\n  \"layers\": [ {\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\", \"digest\": \"" +
         layer.digest.str() + "\", \"size\": " + std::to_string(layer.bytes.size()) + "} ]\n}\n";
}

template <typename Fn>
ferry::core::Error error_of(Fn&& fn) {
  try {
    fn();
  } catch (const ferry::core::Error& e) {
    return e;
  }
  FAIL("no exception");
  return ferry::core::Error(ferry::core::ExitCode::ok, "");
}

std::string text_of(const ferry::core::Error& e) { return std::string(e.what()) + "\nhint: " + e.hint(); }

// A scripted HTTP server on 127.0.0.1 for behaviour a real registry does not show.
// `routes` registers the handlers (they run on the server's threads).
class ScriptedServer {
public:
  explicit ScriptedServer(const std::function<void(httplib::Server&)>& routes) {
    routes(m_server);
    m_port = m_server.bind_to_any_port("127.0.0.1");
    REQUIRE(m_port > 0);
    m_thread = std::thread([this] { m_server.listen_after_bind(); });
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!m_server.is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    REQUIRE(m_server.is_running());
  }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;
  ~ScriptedServer() {
    m_server.stop();
    m_thread.join();
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(m_port); }
  std::string url() const { return "http://" + host(); }

private:
  httplib::Server m_server;
  int m_port = 0;
  std::thread m_thread;
};

} // namespace

TEST_SUITE("registry") {

// --- against docker-registry ---

TEST_CASE("Client::push_blob uploads a small blob in one PUT and blob_exists sees it") {
  RegistryServer server;
  ferry::core::NullLog log;
  Client client(server.host(), options_for(server), log);
  const Blob blob = make_blob(5000, 1);
  CHECK_FALSE(client.blob_exists("team/app", blob.digest));
  push(client, "team/app", blob);
  CHECK(client.blob_exists("team/app", blob.digest));
  CHECK_FALSE(client.blob_exists("team/other", blob.digest));
  CHECK(pull(client, "team/app", blob) == blob.bytes);
  CHECK(client.stats().bytes_up >= blob.bytes.size());
  CHECK(client.stats().bytes_down >= blob.bytes.size());
}

TEST_CASE("Client::push_blob uploads in chunks above chunk_size") {
  RegistryServer server;
  ferry::core::NullLog log;
  ClientOptions options = options_for(server);
  options.chunk_size = 4096;
  Client client(server.host(), options, log);
  const Blob blob = make_blob(3 * 4096 + 123, 2); // four PATCHes
  const auto before = client.stats().requests;
  push(client, "team/app", blob);
  // POST, 4 PATCH, PUT at least
  CHECK(client.stats().requests - before >= 6);
  CHECK(client.blob_exists("team/app", blob.digest));
  CHECK(pull(client, "team/app", blob) == blob.bytes);
  SUBCASE("a blob of exactly one chunk goes in one PUT") {
    const Blob exact = make_blob(4096, 3);
    push(client, "team/app", exact);
    CHECK(pull(client, "team/app", exact) == exact.bytes);
  }
  SUBCASE("an empty blob") {
    const Blob empty = make_blob(0, 4);
    push(client, "team/app", empty);
    CHECK(client.blob_exists("team/app", empty.digest));
  }
}

TEST_CASE("Client::push_blob refuses a source whose content does not match the digest") {
  RegistryServer server;
  ferry::core::NullLog log;
  Client client(server.host(), options_for(server), log);
  const Blob blob = make_blob(2000, 5);
  const Digest wrong = ferry::core::sha256_of("something else");
  ferry::core::StringSource source(blob.bytes);
  CHECK_THROWS_AS(client.push_blob("team/app", wrong, blob.bytes.size(), source), ferry::core::IntegrityError);
  CHECK_FALSE(client.blob_exists("team/app", wrong));
  SUBCASE("nor one that ends early") {
    ferry::core::StringSource short_source(blob.bytes);
    CHECK_THROWS_AS(client.push_blob("team/app", blob.digest, blob.bytes.size() + 10, short_source),
                    ferry::core::IntegrityError);
  }
}

TEST_CASE("Client::push_blob with ContentCheck::trusted still cannot store bytes under a wrong digest") {
  // The registry checks the digest when the upload completes: with the client's own
  // hash skipped, a mismatch must still fail and leave nothing under that digest.
  RegistryServer server;
  ferry::core::NullLog log;
  ClientOptions options = options_for(server);
  const Blob blob = make_blob(9000, 6);
  const Digest wrong = ferry::core::sha256_of("not these bytes");
  SUBCASE("monolithic") {
    Client client(server.host(), options, log);
    ferry::core::StringSource source(blob.bytes);
    CHECK_THROWS_AS(client.push_blob("team/app", wrong, blob.bytes.size(), source, ContentCheck::trusted),
                    ferry::core::Error);
    CHECK_FALSE(client.blob_exists("team/app", wrong));
  }
  SUBCASE("chunked") {
    options.chunk_size = 4096;
    Client client(server.host(), options, log);
    ferry::core::StringSource source(blob.bytes);
    CHECK_THROWS_AS(client.push_blob("team/app", wrong, blob.bytes.size(), source, ContentCheck::trusted),
                    ferry::core::Error);
    CHECK_FALSE(client.blob_exists("team/app", wrong));
  }
  SUBCASE("and the right bytes go in") {
    options.chunk_size = 4096;
    Client client(server.host(), options, log);
    ferry::core::StringSource source(blob.bytes);
    client.push_blob("team/app", blob.digest, blob.bytes.size(), source, ContentCheck::trusted);
    CHECK(pull(client, "team/app", blob) == blob.bytes);
  }
}

TEST_CASE("Client::get_blob checks the size it was given") {
  RegistryServer server;
  ferry::core::NullLog log;
  Client client(server.host(), options_for(server), log);
  const Blob blob = make_blob(4000, 6);
  push(client, "team/app", blob);
  ferry::core::StringSink sink;
  SUBCASE("more bytes than expected") {
    const auto e = error_of([&] { client.get_blob("team/app", blob.digest, blob.bytes.size() - 1, sink); });
    CHECK(e.code() == ferry::core::ExitCode::integrity);
    CHECK(contains(e.what(), "larger than the expected 3999 bytes"));
  }
  SUBCASE("fewer bytes than expected") {
    const auto e = error_of([&] { client.get_blob("team/app", blob.digest, blob.bytes.size() + 1, sink); });
    CHECK(e.code() == ferry::core::ExitCode::integrity);
    CHECK(contains(e.what(), "has 4000 bytes, expected 4001"));
  }
}

TEST_CASE("Client::get_blob of an unknown digest is a RegistryError naming it") {
  RegistryServer server;
  ferry::core::NullLog log;
  Client client(server.host(), options_for(server), log);
  const Blob blob = make_blob(100, 7);
  ferry::core::StringSink sink;
  const auto e = error_of([&] { client.get_blob("team/app", blob.digest, 100, sink); });
  CHECK(e.code() == ferry::core::ExitCode::registry);
  const std::string text = e.what();
  CHECK(contains(text, "pulling blob " + blob.digest.str() + " of team/app failed: HTTP 404"));
  CHECK(contains(text, "BLOB_UNKNOWN"));
  CHECK(contains(text, "GET " + server.url() + "/v2/team/app/blobs/" + blob.digest.str()));
}

TEST_CASE("Client::get_blob detects content that does not match the digest") {
  RegistryServer server;
  ferry::core::NullLog log;
  Client client(server.host(), options_for(server), log);
  const Blob blob = make_blob(3000, 8);
  push(client, "team/app", blob);
  // Damage the stored blob behind the registry's back (same size, other bytes).
  const std::string hex(blob.digest.hex());
  const fs::path data =
      server.dir() / "storage/docker/registry/v2/blobs/sha256" / hex.substr(0, 2) / hex / "data";
  REQUIRE(fs::exists(data));
  const Blob other = make_blob(3000, 9);
  ferry::test::write_file(data, other.bytes);
  ferry::core::StringSink sink;
  const auto e = error_of([&] { client.get_blob("team/app", blob.digest, blob.bytes.size(), sink); });
  CHECK(e.code() == ferry::core::ExitCode::integrity);
  CHECK(contains(e.what(), "has digest " + other.digest.str() + ", expected " + blob.digest.str()));
}

TEST_CASE("Client::mount_blob mounts a blob from another repository") {
  RegistryServer server;
  ferry::core::NullLog log;
  Client client(server.host(), options_for(server), log);
  const Blob blob = make_blob(2500, 10);
  push(client, "base/img", blob);
  CHECK_FALSE(client.blob_exists("team/app", blob.digest));
  CHECK(client.mount_blob("team/app", blob.digest, "base/img"));
  CHECK(client.blob_exists("team/app", blob.digest));
  CHECK(pull(client, "team/app", blob) == blob.bytes);
  SUBCASE("a blob the source does not hold is not mounted") {
    const Blob absent = make_blob(100, 11);
    CHECK_FALSE(client.mount_blob("team/app", absent.digest, "base/img"));
    CHECK_FALSE(client.blob_exists("team/app", absent.digest));
  }
}

TEST_CASE("Client::put_manifest and get_manifest round-trip the exact bytes") {
  RegistryServer server;
  ferry::core::NullLog log;
  Client client(server.host(), options_for(server), log);
  const std::string manifest = push_image(client, "team/app", 12);
  const Digest digest = ferry::core::sha256_of(manifest);
  const std::string type(ferry::oci::media_type::oci_manifest);
  SUBCASE("by tag") { client.put_manifest("team/app", "1.0", type, manifest); }
  SUBCASE("by digest, then tagged") {
    client.put_manifest("team/app", digest.str(), type, manifest);
    client.put_manifest("team/app", "1.0", type, manifest);
  }
  for (const std::string& reference : {std::string("1.0"), digest.str()}) {
    CAPTURE(reference);
    const auto data = client.get_manifest("team/app", reference);
    CHECK(data.bytes == manifest);
    CHECK(data.digest == digest);
    CHECK(data.media_type == type);
    CHECK(data.size == manifest.size());
    const auto head = client.head_manifest("team/app", reference);
    REQUIRE(head);
    CHECK(head->digest == digest);
    CHECK(head->media_type == type);
    CHECK(head->size == manifest.size());
  }
  CHECK(ferry::test::registry_digest(server, "team/app:1.0") == digest.str());
}

TEST_CASE("Client::put_manifest by a digest that is not the content's refuses to send") {
  RegistryServer server;
  ferry::core::NullLog log;
  Client client(server.host(), options_for(server), log);
  const std::string manifest = push_image(client, "team/app", 13);
  const Digest wrong = ferry::core::sha256_of("other");
  CHECK_THROWS_AS(client.put_manifest("team/app", wrong.str(), std::string(ferry::oci::media_type::oci_manifest), manifest),
                  ferry::core::IntegrityError);
  CHECK_FALSE(client.head_manifest("team/app", wrong.str()).has_value());
}

TEST_CASE("Client::head_manifest gives nullopt for an unknown tag") {
  RegistryServer server;
  ferry::core::NullLog log;
  Client client(server.host(), options_for(server), log);
  CHECK_FALSE(client.head_manifest("team/app", "missing").has_value());
  CHECK_FALSE(client.head_manifest("team/app", ferry::core::sha256_of("x").str()).has_value());
}

TEST_CASE("Client::get_manifest of an unknown tag names the image, URL and registry error") {
  RegistryServer server;
  ferry::core::NullLog log;
  Client client(server.host(), options_for(server), log);
  const std::string manifest = push_image(client, "team/app", 14);
  client.put_manifest("team/app", "1.0", std::string(ferry::oci::media_type::oci_manifest), manifest);
  const auto e = error_of([&] { client.get_manifest("team/app", "2.0"); });
  CHECK(e.code() == ferry::core::ExitCode::registry);
  const std::string text = e.what();
  CHECK(contains(text, "pulling manifest team/app:2.0 failed: HTTP 404"));
  CHECK(contains(text, "MANIFEST_UNKNOWN"));
  CHECK(contains(text, "(GET " + server.url() + "/v2/team/app/manifests/2.0)"));
  CHECK(contains(e.hint(), "list-tags"));
}

TEST_CASE("Client::list_tags lists the tags of a repository") {
  RegistryServer server;
  ferry::core::NullLog log;
  ClientOptions options = options_for(server);
  options.tags_page_size = 2;
  Client client(server.host(), options, log);
  const std::string manifest = push_image(client, "team/app", 15);
  const std::vector<std::string> tags{"a1", "b2", "c3", "d4", "e5"};
  for (const auto& tag : tags) {
    client.put_manifest("team/app", tag, std::string(ferry::oci::media_type::oci_manifest), manifest);
  }
  // distribution 2.8 ignores `n` and answers in one page, in no particular order; the
  // pages are tested against a scripted server below.
  std::vector<std::string> listed = client.list_tags("team/app");
  std::sort(listed.begin(), listed.end());
  CHECK(listed == tags);
  SUBCASE("an unknown repository has no tags") { CHECK(client.list_tags("team/none").empty()); }
}

TEST_CASE("Client authenticates with basic credentials") {
  RegistryOptions registry;
  registry.htpasswd = true;
  RegistryServer server(registry);
  const Blob blob = make_blob(1000, 16);
  CaptureLog log;
  SUBCASE("given explicitly") {
    ClientOptions options = options_for(server);
    options.credentials = ferry::registry::Credentials{registry.username, registry.password, {}};
    Client client(server.host(), options, log);
    push(client, "team/app", blob);
    CHECK(pull(client, "team/app", blob) == blob.bytes);
  }
  SUBCASE("from the credentials file") {
    AuthFileContent file(R"({"auths":{")" + server.host() + R"(":{"username":")" + registry.username +
                         R"(","password":")" + registry.password + R"("}}})");
    Client client(server.host(), options_for(server), log);
    push(client, "team/app", blob);
    CHECK(client.blob_exists("team/app", blob.digest));
  }
  CHECK_FALSE(contains(log.text(), registry.password));
}

TEST_CASE("Client reports refused credentials with a hint and without the password") {
  RegistryOptions registry;
  registry.htpasswd = true;
  RegistryServer server(registry);
  const std::string password = "wrong-but-secret-passw0rd";
  CaptureLog log;
  ClientOptions options = options_for(server);
  options.credentials = ferry::registry::Credentials{registry.username, password, {}};
  Client client(server.host(), options, log);
  const auto e = error_of([&] { client.get_manifest("team/app", "1.0"); });
  CHECK(e.code() == ferry::core::ExitCode::registry);
  const std::string text = text_of(e) + "\n" + log.text();
  CHECK(contains(e.what(), "HTTP 401"));
  CHECK(contains(e.hint(), "refused the credentials"));
  CHECK(contains(e.hint(), "--username"));
  CHECK(contains(e.hint(), "--password-stdin"));
  CHECK_FALSE(contains(text, password));
  CHECK_FALSE(contains(text, ferry::core::base64_encode(registry.username + ":" + password)));
  SUBCASE("without credentials the hint says how to give them") {
    Client anonymous(server.host(), options_for(server), log);
    const auto anon = error_of([&] { anonymous.blob_exists("team/app", ferry::core::sha256_of("x")); });
    CHECK(contains(anon.hint(), "wants credentials"));
  }
}

TEST_CASE("Client gets bearer tokens with the scopes each operation needs") {
  RegistryOptions registry;
  registry.token_auth = true;
  RegistryServer server(registry);
  auto& tokens = server.token_server();
  ClientOptions options = options_for(server);
  options.credentials = ferry::registry::Credentials{registry.username, registry.password, {}};
  CaptureLog log;
  Client client(server.host(), options, log);
  const Blob blob = make_blob(1500, 17);
  push(client, "base/img", blob);
  CHECK(tokens.requested("base/img", "push"));
  CHECK(client.mount_blob("team/app", blob.digest, "base/img"));
  CHECK(tokens.requested("team/app", "push"));
  bool asked_source_pull = false;
  for (const auto& request : tokens.requests()) {
    CHECK(request.user == registry.username);
    CHECK(request.service == tokens.service());
    const bool has_target = std::find(request.scopes.begin(), request.scopes.end(), "repository:team/app:pull,push") !=
                            request.scopes.end();
    const bool has_source =
        std::find(request.scopes.begin(), request.scopes.end(), "repository:base/img:pull") != request.scopes.end();
    asked_source_pull |= has_target && has_source;
  }
  CHECK(asked_source_pull);
  tokens.clear_requests();
  CHECK(pull(client, "team/app", blob) == blob.bytes); // the cached pull,push token serves
  CHECK(tokens.requests().empty());
  CHECK_FALSE(contains(log.text(), registry.password));
}

TEST_CASE("Client says which permission a token lacks") {
  RegistryOptions registry;
  registry.token_auth = true;
  registry.token_deny_push = true;
  RegistryServer server(registry);
  ClientOptions options = options_for(server);
  options.credentials = ferry::registry::Credentials{registry.username, registry.password, {}};
  ferry::core::NullLog log;
  Client client(server.host(), options, log);
  const Blob blob = make_blob(700, 18);
  ferry::core::StringSource source(blob.bytes);
  const auto e = error_of([&] { client.push_blob("team/app", blob.digest, blob.bytes.size(), source); });
  CHECK(e.code() == ferry::core::ExitCode::registry);
  CHECK(contains(e.what(), "pushing blob " + blob.digest.str() + " to team/app failed: HTTP 401"));
  CHECK(contains(e.hint(), "does not allow pushing to team/app"));
}

TEST_CASE("Client pulls and pushes from several threads at once") {
  RegistryOptions registry;
  registry.token_auth = true;
  RegistryServer server(registry);
  ClientOptions options = options_for(server);
  options.credentials = ferry::registry::Credentials{registry.username, registry.password, {}};
  options.chunk_size = 20000; // some chunked uploads too
  ferry::core::NullLog log;
  Client client(server.host(), options, log);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (unsigned i = 0; i < 5; ++i) {
        const Blob blob = make_blob(10000 + 7000 * i, 100 + 10 * t + i);
        try {
          if (!client.blob_exists("team/app", blob.digest)) push(client, "team/app", blob);
          if (pull(client, "team/app", blob) != blob.bytes) ++failures;
        } catch (const std::exception& e) {
          MESSAGE(e.what());
          ++failures;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(failures == 0);
  // One token for pull and one for pull,push, whatever the number of threads.
  CHECK(server.token_server().requests().size() <= 2);
}

TEST_CASE("Client verifies TLS with the given CA") {
  SUBCASE("trusted through --ca-file") {
    RegistryServer server(registry_options(true));
    ferry::core::NullLog log;
    Client client(server.host(), options_for(server), log);
    CHECK(client.endpoint() == server.url());
    CHECK_FALSE(client.blob_exists("team/app", ferry::core::sha256_of("x")));
  }
  SUBCASE("without the CA: a TLS error with a hint for --ca-file") {
    RegistryServer server(registry_options(true));
    ferry::core::NullLog log;
    ClientOptions options = options_for(server);
    options.tls.ca_file.clear();
    Client client(server.host(), options, log);
    const auto e = error_of([&] { client.blob_exists("team/app", ferry::core::sha256_of("x")); });
    CHECK(e.code() == ferry::core::ExitCode::registry);
    CHECK(contains(e.what(), "TLS handshake with " + server.host() + " failed"));
    CHECK(contains(e.hint(), "--ca-file"));
    CHECK(client.stats().retries == 0); // not worth retrying
  }
  SUBCASE("signed by another CA") {
    RegistryOptions registry;
    registry.foreign_ca = true;
    RegistryServer server(registry);
    ferry::core::NullLog log;
    Client client(server.host(), options_for(server), log);
    CHECK(contains(error_of([&] { client.blob_exists("team/app", ferry::core::sha256_of("x")); }).what(), "TLS"));
  }
  SUBCASE("an expired certificate") {
    RegistryOptions registry;
    registry.expired_cert = true;
    RegistryServer server(registry);
    ferry::core::NullLog log;
    Client client(server.host(), options_for(server), log);
    CHECK(contains(error_of([&] { client.blob_exists("team/app", ferry::core::sha256_of("x")); }).what(), "TLS"));
  }
  SUBCASE("verification off: it works, with a warning") {
    RegistryOptions registry;
    registry.foreign_ca = true;
    RegistryServer server(registry);
    CaptureLog log;
    ClientOptions options = options_for(server);
    options.tls.ca_file.clear();
    options.tls.insecure_skip_verify = true;
    Client client(server.host(), options, log);
    CHECK_FALSE(client.blob_exists("team/app", ferry::core::sha256_of("x")));
    CHECK(contains(log.text(), "--insecure-skip-tls-verify"));
  }
}

TEST_CASE("Client hints at the scheme when it does not match the registry") {
  SUBCASE("HTTPS to a plain-HTTP registry") {
    RegistryServer server;
    ferry::core::NullLog log;
    ClientOptions options = options_for(server);
    options.tls.plain_http = false;
    Client client(server.host(), options, log);
    CHECK(contains(error_of([&] { client.blob_exists("a", ferry::core::sha256_of("x")); }).hint(), "--plain-http"));
  }
  SUBCASE("plain HTTP to a TLS registry") {
    RegistryServer server(registry_options(true));
    ferry::core::NullLog log;
    ClientOptions options = options_for(server);
    options.tls.plain_http = true;
    Client client(server.host(), options, log);
    const auto e = error_of([&] { client.blob_exists("a", ferry::core::sha256_of("x")); });
    CHECK(contains(e.hint(), "drop --plain-http"));
  }
}

TEST_CASE("Client retries a refused connection, then names the registry") {
  const std::uint16_t port = ferry::test::free_local_port(); // nothing listens there
  CaptureLog log;
  ClientOptions options = plain_options();
  options.max_attempts = 3;
  Client client("127.0.0.1:" + std::to_string(port), options, log);
  const auto e = error_of([&] { client.blob_exists("team/app", ferry::core::sha256_of("x")); });
  CHECK(e.code() == ferry::core::ExitCode::registry);
  CHECK(contains(e.what(), "127.0.0.1:" + std::to_string(port)));
  CHECK(contains(e.what(), "3 attempts"));
  CHECK(contains(e.hint(), "check that the registry runs at http://127.0.0.1:" + std::to_string(port)));
  CHECK(client.stats().retries == 2);
  CHECK(contains(log.text(), "attempt 3 of 3"));
}

TEST_CASE("Client refuses bad settings at once") {
  ferry::core::NullLog log;
  ferry::test::TestDir dir;
  CHECK_THROWS_AS(Client("", plain_options(), log), ferry::core::UsageError);
  CHECK_THROWS_AS(Client("host/path", plain_options(), log), ferry::core::UsageError);
  ClientOptions options;
  options.tls.ca_file = dir / "missing.pem";
  CHECK_THROWS_AS(Client("reg.example", options, log), ferry::core::UsageError);
  ferry::test::write_file(dir / "empty.pem", "not a certificate");
  options.tls.ca_file = dir / "empty.pem";
  CHECK_THROWS_AS(Client("reg.example", options, log), ferry::core::UsageError);
  SUBCASE("docker.io is reached at its API host") {
    Client hub("docker.io", ClientOptions{}, log);
    CHECK(hub.host() == "docker.io");
    CHECK(hub.endpoint() == "https://registry-1.docker.io");
  }
}

// --- against scripted servers ---

TEST_CASE("Client::list_tags follows the Link header across pages") {
  const std::vector<std::string> all{"a1", "b2", "c3", "d4", "e5"};
  std::mutex mutex;
  std::vector<std::string> queries;
  ScriptedServer server([&](httplib::Server& s) {
    s.Get("/v2/team/app/tags/list", [&](const httplib::Request& req, httplib::Response& res) {
      const std::size_t n = std::stoul(req.get_param_value("n"));
      const std::string last = req.get_param_value("last");
      {
        std::lock_guard lock(mutex);
        queries.push_back("n=" + std::to_string(n) + " last=" + last);
      }
      auto it = last.empty() ? all.begin() : std::upper_bound(all.begin(), all.end(), last);
      nlohmann::json page{{"name", "team/app"}, {"tags", nlohmann::json::array()}};
      for (std::size_t i = 0; i < n && it != all.end(); ++i, ++it) page["tags"].push_back(*it);
      if (it != all.end()) {
        res.set_header("Link", "</v2/team/app/tags/list?n=" + std::to_string(n) + "&last=" +
                                   page["tags"].back().get<std::string>() + R"(>; rel="next")");
      }
      res.set_content(page.dump(), "application/json");
    });
  });
  ferry::core::NullLog log;
  ClientOptions options = plain_options();
  options.tags_page_size = 2;
  Client client(server.host(), options, log);
  CHECK(client.list_tags("team/app") == all);
  std::lock_guard lock(mutex);
  CHECK(queries == std::vector<std::string>{"n=2 last=", "n=2 last=b2", "n=2 last=d4"});
}

TEST_CASE("Client retries 503 answers as Retry-After says") {
  const Blob blob = make_blob(1000, 20);
  std::atomic<int> calls{0};
  ScriptedServer server([&](httplib::Server& s) {
    s.Get("/v2/app/blobs/.*", [&](const httplib::Request&, httplib::Response& res) {
      if (++calls <= 2) {
        res.status = 503;
        res.set_header("Retry-After", "0");
        res.set_content(R"({"errors":[{"code":"UNAVAILABLE","message":"try later"}]})", "application/json");
        return;
      }
      res.set_content(blob.bytes, "application/octet-stream");
    });
  });
  CaptureLog log;
  Client client(server.host(), plain_options(), log);
  CHECK(pull(client, "app", blob) == blob.bytes);
  CHECK(calls == 3);
  CHECK(client.stats().retries == 2);
  CHECK(contains(log.text(), "HTTP 503"));
  CHECK(contains(log.text(), "UNAVAILABLE: try later"));
  CHECK(contains(log.text(), "attempt 2 of 4"));
}

TEST_CASE("Client::get_blob resumes a broken transfer with Range") {
  const Blob blob = make_blob(200000, 21);
  std::mutex mutex;
  std::vector<std::string> ranges;
  bool honour_range = true;
  ScriptedServer server([&](httplib::Server& s) {
    s.Get("/v2/app/blobs/.*", [&](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mutex);
      ranges.push_back(req.get_header_value("Range"));
      if (!req.has_header("Range")) {
        // Half the body, then the connection drops.
        res.set_content_provider(blob.bytes.size(), "application/octet-stream",
                                 [&](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                                   const std::size_t half = blob.bytes.size() / 2;
                                   if (offset >= half) return false;
                                   sink.write(blob.bytes.data() + offset, std::min(length, half - offset));
                                   return true;
                                 });
        return;
      }
      if (!honour_range) res.status = 200; // as if Range were ignored
      res.set_content(blob.bytes, "application/octet-stream"); // httplib answers the Range with 206
    });
  });
  ferry::core::NullLog log;
  Client client(server.host(), plain_options(), log);
  SUBCASE("a registry that honours Range") {
    CHECK(pull(client, "app", blob) == blob.bytes);
    REQUIRE(ranges.size() == 2);
    CHECK(ranges[1] == "bytes=" + std::to_string(blob.bytes.size() / 2) + "-");
  }
  SUBCASE("a registry that ignores Range cannot resume") {
    honour_range = false;
    const auto e = error_of([&] { pull(client, "app", blob); });
    CHECK(e.code() == ferry::core::ExitCode::registry);
    CHECK(contains(e.what(), "cannot resume it"));
  }
}

TEST_CASE("Client follows a blob redirect to another host without credentials") {
  const Blob blob = make_blob(5000, 22);
  const std::string password = "redirect-test-passw0rd";
  std::atomic<bool> storage_saw_authorization{false};
  std::atomic<int> storage_calls{0};
  ScriptedServer storage([&](httplib::Server& s) {
    s.Get("/bucket/data", [&](const httplib::Request& req, httplib::Response& res) {
      ++storage_calls;
      storage_saw_authorization = req.has_header("Authorization");
      res.set_content(blob.bytes, "application/octet-stream");
    });
  });
  ScriptedServer registry([&](httplib::Server& s) {
    s.Get("/v2/app/blobs/.*", [&](const httplib::Request& req, httplib::Response& res) {
      if (req.get_header_value("Authorization") != "Basic " + ferry::core::base64_encode("user:" + password)) {
        res.status = 401;
        res.set_header("WWW-Authenticate", R"(Basic realm="scripted")");
        return;
      }
      res.status = 307;
      res.set_header("Location", storage.url() + "/bucket/data?X-Amz-Signature=presigned-secret");
    });
  });
  CaptureLog log;
  ClientOptions options = plain_options();
  options.credentials = ferry::registry::Credentials{"user", password, {}};
  Client client(registry.host(), options, log);
  CHECK(pull(client, "app", blob) == blob.bytes);
  CHECK(storage_calls == 1);
  CHECK_FALSE(storage_saw_authorization);
  CHECK(contains(log.text(), "X-Amz-Signature=REDACTED"));
  CHECK_FALSE(contains(log.text(), "presigned-secret"));
  CHECK_FALSE(contains(log.text(), password));
}

TEST_CASE("Client refreshes a token the registry calls invalid") {
  std::atomic<int> token_calls{0};
  std::mutex mutex;
  std::vector<std::string> scopes;
  ScriptedServer server([&](httplib::Server& s) {
    s.Get("/token", [&](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mutex);
        scopes.push_back(req.get_param_value("scope"));
      }
      const int n = ++token_calls;
      res.set_content(R"({"token":"token-)" + std::to_string(n) + R"(","expires_in":300})", "application/json");
    });
    s.Get("/v2/app/manifests/1.0", [&](const httplib::Request& req, httplib::Response& res) {
      const std::string auth = req.get_header_value("Authorization");
      if (auth != "Bearer token-2") {
        res.status = 401;
        std::string challenge = R"(Bearer realm="http://)" + req.get_header_value("Host") +
                                R"(/token",service="scripted",scope="repository:app:pull")";
        if (!auth.empty()) challenge += R"(,error="invalid_token")";
        res.set_header("WWW-Authenticate", challenge);
        return;
      }
      res.set_content(R"({"schemaVersion":2,"manifests":[]})", "application/vnd.oci.image.index.v1+json");
    });
  });
  ferry::core::NullLog log;
  Client client(server.host(), plain_options(), log);
  const auto data = client.get_manifest("app", "1.0");
  CHECK(data.media_type == ferry::oci::media_type::oci_index);
  CHECK(token_calls == 2);
  CHECK(scopes == std::vector<std::string>{"repository:app:pull", "repository:app:pull"});
}

TEST_CASE("Client trades an identity token for an access token") {
  std::mutex mutex;
  std::string form;
  ScriptedServer server([&](httplib::Server& s) {
    s.Post("/token", [&](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mutex);
      form = req.body;
      if (req.get_param_value("grant_type") != "refresh_token" ||
          req.get_param_value("refresh_token") != "identity-token-value") {
        res.status = 401;
        return;
      }
      res.set_content(R"({"access_token":"granted","expires_in":300})", "application/json");
    });
    s.Get("/v2/app/tags/list", [&](const httplib::Request& req, httplib::Response& res) {
      if (req.get_header_value("Authorization") != "Bearer granted") {
        res.status = 401;
        res.set_header("WWW-Authenticate", R"(Bearer realm="http://)" + req.get_header_value("Host") +
                                               R"(/token",service="scripted")");
        return;
      }
      res.set_content(R"({"name":"app","tags":["x"]})", "application/json");
    });
  });
  ferry::core::NullLog log;
  ClientOptions options = plain_options();
  options.credentials = ferry::registry::Credentials{{}, {}, "identity-token-value"};
  Client client(server.host(), options, log);
  CHECK(client.list_tags("app") == std::vector<std::string>{"x"});
  std::lock_guard lock(mutex);
  CHECK(contains(form, "scope=repository%3Aapp%3Apull"));
  CHECK(contains(form, "service=scripted"));
}

TEST_CASE("Client::get_manifest refuses a Docker-Content-Digest that disagrees") {
  const std::string body = R"({"schemaVersion":2,"manifests":[]})";
  const Digest real = ferry::core::sha256_of(body);
  const Digest claimed = ferry::core::sha256_of("another manifest");
  ScriptedServer server([&](httplib::Server& s) {
    s.Get("/v2/app/manifests/.*", [&](const httplib::Request&, httplib::Response& res) {
      res.set_header("Docker-Content-Digest", claimed.str());
      res.set_content(body, "application/vnd.oci.image.index.v1+json");
    });
  });
  ferry::core::NullLog log;
  Client client(server.host(), plain_options(), log);
  SUBCASE("by tag: the header is checked") {
    const auto e = error_of([&] { client.get_manifest("app", "1.0"); });
    CHECK(e.code() == ferry::core::ExitCode::integrity);
    CHECK(contains(e.what(), "says manifest app:1.0 has digest " + claimed.str()));
    CHECK(contains(e.what(), real.str()));
  }
  SUBCASE("by digest: the content is checked against it") {
    const auto e = error_of([&] { client.get_manifest("app", claimed.str()); });
    CHECK(e.code() == ferry::core::ExitCode::integrity);
    CHECK(contains(e.what(), "expected " + claimed.str() + ", actual " + real.str()));
  }
}

TEST_CASE("Client::put_manifest refuses a Docker-Content-Digest that disagrees") {
  const Digest claimed = ferry::core::sha256_of("converted");
  ScriptedServer server([&](httplib::Server& s) {
    s.Put("/v2/app/manifests/.*", [&](const httplib::Request&, httplib::Response& res) {
      res.status = 201;
      res.set_header("Docker-Content-Digest", claimed.str());
    });
  });
  ferry::core::NullLog log;
  Client client(server.host(), plain_options(), log);
  const auto e = error_of([&] {
    client.put_manifest("app", "1.0", std::string(ferry::oci::media_type::oci_index), R"({"schemaVersion":2,"manifests":[]})");
  });
  CHECK(e.code() == ferry::core::ExitCode::integrity);
  CHECK(contains(e.what(), "stored manifest app:1.0 as " + claimed.str()));
}

TEST_CASE("Client keeps tokens out of messages and logs") {
  std::atomic<int> token_calls{0};
  ScriptedServer server([&](httplib::Server& s) {
    s.Get("/token", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"token":"tok-secret-)" + std::to_string(++token_calls) + R"("})", "application/json");
    });
    s.Get("/v2/app/manifests/.*", [&](const httplib::Request& req, httplib::Response& res) {
      res.status = 401; // every token is refused
      res.set_header("WWW-Authenticate", R"(Bearer realm="http://)" + req.get_header_value("Host") +
                                             R"(/token",service="scripted",error="invalid_token")");
      res.set_content(R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})",
                      "application/json");
    });
  });
  CaptureLog log;
  ClientOptions options = plain_options();
  options.credentials = ferry::registry::Credentials{"user", "token-test-passw0rd", {}};
  Client client(server.host(), options, log);
  const auto e = error_of([&] { client.get_manifest("app", "1.0"); });
  CHECK(e.code() == ferry::core::ExitCode::registry);
  CHECK(contains(e.what(), "UNAUTHORIZED: authentication required"));
  CHECK(token_calls >= 2); // a new token was tried before giving up
  const std::string text = text_of(e) + "\n" + log.text();
  CHECK_FALSE(contains(text, "tok-secret"));
  CHECK_FALSE(contains(text, "token-test-passw0rd"));
}

TEST_CASE("Client::get_manifest asks for every manifest type and refuses schema 1") {
  std::mutex mutex;
  std::string accept;
  ScriptedServer server([&](httplib::Server& s) {
    s.Get("/v2/app/manifests/.*", [&](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mutex);
        accept = req.get_header_value("Accept");
      }
      res.set_content(R"({"schemaVersion":1,"name":"app","tag":"old","fsLayers":[],"signatures":[]})",
                      "application/vnd.docker.distribution.manifest.v1+prettyjws");
    });
  });
  ferry::core::NullLog log;
  Client client(server.host(), plain_options(), log);
  const auto e = error_of([&] { client.get_manifest("app", "old"); });
  CHECK(e.code() == ferry::core::ExitCode::registry);
  CHECK(contains(e.what(), "manifest app:old from " + server.url() + " is a Docker schema 1 manifest"));
  CHECK(contains(e.hint(), "skopeo copy --format v2s2"));
  std::lock_guard lock(mutex);
  for (const auto type : {ferry::oci::media_type::oci_index, ferry::oci::media_type::oci_manifest,
                          ferry::oci::media_type::docker_manifest_list, ferry::oci::media_type::docker_manifest}) {
    CHECK(contains(accept, type));
  }
}

TEST_CASE("Client::get_manifest refuses a manifest over 16 MiB") {
  const std::string huge = R"({"schemaVersion":2,"manifests":[],"pad":")" + std::string(16u << 20, 'x') + R"("})";
  ScriptedServer server([&](httplib::Server& s) {
    s.Get("/v2/app/manifests/.*", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(huge, "application/vnd.oci.image.index.v1+json");
    });
  });
  ferry::core::NullLog log;
  Client client(server.host(), plain_options(), log);
  const auto e = error_of([&] { client.get_manifest("app", "big"); });
  CHECK(e.code() == ferry::core::ExitCode::registry);
  CHECK(contains(e.what(), "larger than 16 MiB"));
}

TEST_CASE("Client::head_manifest falls back to GET when HEAD lacks the digest") {
  const std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})";
  ScriptedServer server([&](httplib::Server& s) {
    // httplib answers HEAD with this handler's headers: no Docker-Content-Digest.
    s.Get("/v2/app/manifests/.*", [&](const httplib::Request&, httplib::Response& res) {
      res.set_content(body, "application/json");
    });
  });
  ferry::core::NullLog log;
  Client client(server.host(), plain_options(), log);
  const auto head = client.head_manifest("app", "1.0");
  REQUIRE(head);
  CHECK(head->digest == ferry::core::sha256_of(body));
  CHECK(head->media_type == ferry::oci::media_type::oci_index);
  CHECK(head->size == body.size());
  CHECK(head->bytes == body);
}

TEST_CASE("Client::push_blob resumes a chunk from the upload's Range") {
  const Blob blob = make_blob(2500, 23);
  std::mutex mutex;
  std::string received;
  int patches = 0;
  bool committed = false;
  ScriptedServer server([&](httplib::Server& s) {
    s.Post("/v2/app/blobs/uploads/", [&](const httplib::Request&, httplib::Response& res) {
      res.status = 202;
      res.set_header("Location", "/v2/app/blobs/uploads/s1"); // relative
      res.set_header("Range", "0-0");
    });
    s.Patch("/v2/app/blobs/uploads/s1", [&](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mutex);
      const std::string range = req.get_header_value("Content-Range");
      if (range.substr(0, range.find('-')) != std::to_string(received.size())) {
        res.status = 416;
        return;
      }
      if (++patches == 1) {
        received += req.body.substr(0, 400); // took part of the first chunk, then failed
        res.status = 503;
        return;
      }
      received += req.body;
      res.status = 202;
      res.set_header("Location", "http://" + req.get_header_value("Host") + "/v2/app/blobs/uploads/s1?n=" +
                                     std::to_string(patches)); // absolute, with a query
      res.set_header("Range", "0-" + std::to_string(received.size() - 1));
    });
    s.Get("/v2/app/blobs/uploads/s1", [&](const httplib::Request&, httplib::Response& res) {
      std::lock_guard lock(mutex);
      res.status = 204;
      res.set_header("Range", "0-" + std::to_string(received.empty() ? 0 : received.size() - 1));
      res.set_header("Location", "/v2/app/blobs/uploads/s1");
    });
    s.Put("/v2/app/blobs/uploads/s1", [&](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mutex);
      committed = req.get_param_value("digest") == blob.digest.str() && received == blob.bytes && req.body.empty();
      res.status = committed ? 201 : 400;
    });
  });
  ferry::core::NullLog log;
  ClientOptions options = plain_options();
  options.chunk_size = 1000;
  Client client(server.host(), options, log);
  push(client, "app", blob);
  std::lock_guard lock(mutex);
  CHECK(committed);
  CHECK(patches == 4); // the broken one, its rest, then two more chunks
  CHECK(client.stats().retries == 1);
}

TEST_CASE("Client explains a 413 with the chunk size") {
  ScriptedServer server([&](httplib::Server& s) {
    s.Post("/v2/app/blobs/uploads/", [&](const httplib::Request&, httplib::Response& res) {
      res.status = 202;
      res.set_header("Location", "/v2/app/blobs/uploads/s1");
    });
    s.Put("/v2/app/blobs/uploads/s1", [&](const httplib::Request&, httplib::Response& res) {
      res.status = 413;
      res.set_content("<html>Request Entity Too Large</html>", "text/html");
    });
  });
  ferry::core::NullLog log;
  Client client(server.host(), plain_options(), log);
  const auto e = error_of([&] { push(client, "app", make_blob(3000, 24)); });
  CHECK(e.code() == ferry::core::ExitCode::registry);
  CHECK(contains(e.what(), "HTTP 413"));
  CHECK(contains(e.hint(), "chunk size"));
}

} // TEST_SUITE
