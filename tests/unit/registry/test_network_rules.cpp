// Tests for the registry client's network rules against hostile servers (HostileServer):
// bounded error bodies, bounded resumption of trickled blobs, no plain HTTP without
// plain_http (redirects, upload locations, token realms), and the TLS hints for a
// certificate from another CA or for another name.
// SPDX-License-Identifier: Apache-2.0
#include "common/hostile_server.hpp"
#include "core/digest.hpp"
#include "core/error.hpp"
#include "core/io.hpp"
#include "registry/client.hpp"
#include "support/test_support.hpp"

#include <atomic>
#include <chrono>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ferry::registry::Client;
using ferry::registry::ClientOptions;
using ferry::test::contains;
using ferry::test::HostileAnswer;
using ferry::test::HostileExchange;
using ferry::test::HostileServer;

namespace {

using Clock = std::chrono::steady_clock;

ClientOptions fast_options() {
  ClientOptions options;
  options.tls.plain_http = true;
  options.max_attempts = 2;
  options.initial_backoff = 1ms;
  return options;
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

struct Blob {
  std::string bytes;
  ferry::core::Digest digest;
};

Blob make_blob(std::size_t size, unsigned seed) {
  Blob blob{ferry::test::random_bytes(size, seed), {}};
  blob.digest = ferry::core::sha256_of(blob.bytes);
  return blob;
}

std::string pull(Client& client, const Blob& blob) {
  ferry::core::StringSink sink;
  client.get_blob("app", blob.digest, blob.bytes.size(), sink);
  return sink.take();
}

// Answers a blob GET with `blob` from the byte its Range asks for (206), or whole (200).
HostileAnswer ranged(const HostileExchange& x, const Blob& blob, std::size_t& from) {
  HostileAnswer answer;
  answer.set_header("Content-Type", "application/octet-stream");
  from = 0;
  if (const auto range = x.request().header("range"); range && range->rfind("bytes=", 0) == 0) {
    from = static_cast<std::size_t>(std::stoull(range->substr(6)));
    answer.status = 206;
    answer.set_header("Content-Range", "bytes " + std::to_string(from) + "-" + std::to_string(blob.bytes.size() - 1) +
                                           "/" + std::to_string(blob.bytes.size()));
  }
  answer.body = blob.bytes.substr(from);
  return answer;
}

// A CA and a server certificate it signed for `san`, in `dir`.
struct Tls {
  ferry::test::TestCa ca;
  ferry::test::TlsIdentity identity;
};
Tls make_tls(const fs::path& dir, const std::string& san) {
  Tls tls{ferry::test::make_test_ca(dir, "ca"), {}};
  tls.identity = ferry::test::make_server_identity(dir, "server", tls.ca, san);
  return tls;
}

} // namespace

TEST_SUITE("registry") {

TEST_CASE("Client stops reading an endless error body and goes on with its status") {
  // 503 with a chunked body that never ends, far faster than the low-speed limit.
  HostileServer server([](HostileExchange& x) {
    if (!x.send_raw("HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n")) return;
    const std::string chunk = "4000\r\n" + std::string(0x4000, 'e') + "\r\n"; // 16 KiB
    for (int i = 0; i < 4000 && x.send_raw(chunk) && x.pause(10ms); ++i) {
    }
  });
  ferry::core::NullLog log;
  Client client(server.host(), fast_options(), log);
  const auto start = Clock::now();
  const auto e = error_of([&] { client.get_manifest("app", "1.0"); });
  const auto elapsed = Clock::now() - start;
  CHECK(e.code() == ferry::core::ExitCode::registry);
  CHECK(contains(e.what(), "HTTP 503"));
  CHECK(contains(e.what(), "2 attempts"));
  CHECK(server.count("GET", "/manifests/1.0") == 2);
  // 64 KiB per attempt take about 40 ms here; the whole body would take 40 s.
  CHECK(elapsed < 10s);
}

TEST_CASE("Client::get_blob gives up after max_attempts when each attempt brings only a few bytes") {
  const Blob blob = make_blob(300, 31);
  HostileServer server([&](HostileExchange& x) {
    std::size_t from = 0;
    const HostileAnswer answer = ranged(x, blob, from);
    if (x.send_raw(x.head_of(answer))) x.trickle(answer.body, 3, 300ms);
  });
  ClientOptions options = fast_options();
  options.max_attempts = 3;
  options.stall_timeout = 1s;
  ferry::core::NullLog log;
  Client client(server.host(), options, log);
  const auto start = Clock::now();
  const auto e = error_of([&] { pull(client, blob); });
  CHECK(e.code() == ferry::core::ExitCode::registry);
  CHECK(contains(e.what(), "3 attempts"));
  CHECK(contains(e.hint(), "--timeout"));
  const auto requests = server.requests();
  CHECK(requests.size() == 3);
  REQUIRE(requests.size() >= 2);
  CHECK(requests[1].header("range").has_value()); // resumed, and still counted
  CHECK(Clock::now() - start < 15s);
}

TEST_CASE("Client::get_blob starts the count of attempts over after an attempt that brought 1 MiB") {
  const Blob blob = make_blob(5u << 20, 32);
  constexpr std::size_t k_per_connection = 3u << 19; // 1.5 MiB, then the connection is cut
  HostileServer server([&](HostileExchange& x) {
    std::size_t from = 0;
    const HostileAnswer answer = ranged(x, blob, from);
    x.send_raw(x.head_of(answer) + answer.body.substr(0, k_per_connection));
  });
  ClientOptions options = fast_options();
  options.max_attempts = 2;
  ferry::core::NullLog log;
  Client client(server.host(), options, log);
  CHECK(pull(client, blob) == blob.bytes);
  CHECK(server.requests().size() == 4);
}

TEST_CASE("Client refuses a redirect from https to http, and follows one to https") {
  ferry::test::TestDir dir;
  const Tls tls = make_tls(dir.path(), "IP:127.0.0.1");
  const Blob blob = make_blob(2000, 33);
  HostileServer plain_storage([&](HostileExchange& x) {
    HostileAnswer answer;
    answer.body = blob.bytes;
    x.send(answer);
  });
  HostileServer tls_storage([&](HostileExchange& x) {
    HostileAnswer answer;
    answer.body = blob.bytes;
    x.send(answer);
  }, tls.identity);
  std::atomic<bool> to_tls{false};
  HostileServer registry([&](HostileExchange& x) {
    HostileAnswer answer;
    answer.status = 307;
    answer.set_header("Location", (to_tls ? tls_storage.url() : plain_storage.url()) +
                                      "/bucket/data?X-Amz-Signature=presigned-secret");
    x.send(answer);
  }, tls.identity);
  ClientOptions options = fast_options();
  options.tls.plain_http = false;
  options.tls.ca_file = tls.ca.cert_file;
  ferry::test::CaptureLog log;
  Client client(registry.host(), options, log);

  const auto e = error_of([&] { pull(client, blob); });
  CHECK(e.code() == ferry::core::ExitCode::registry);
  CHECK(contains(e.what(), "refusing plain HTTP"));
  CHECK(contains(e.what(), registry.url() + "/v2/app/blobs/" + blob.digest.str() + " redirects to " +
                               plain_storage.url() + "/bucket/data"));
  CHECK_FALSE(contains(e.what(), "presigned-secret"));
  CHECK(contains(e.hint(), "--plain-http"));
  CHECK(plain_storage.requests().empty());

  to_tls = true;
  CHECK(pull(client, blob) == blob.bytes);
  CHECK(tls_storage.requests().size() == 1);

  SUBCASE("with plain_http the registry and its redirects may be plain HTTP") {
    HostileServer plain_registry([&](HostileExchange& x) {
      HostileAnswer answer;
      answer.status = 307;
      answer.set_header("Location", plain_storage.url() + "/bucket/data");
      x.send(answer);
    });
    Client plain_client(plain_registry.host(), fast_options(), log);
    CHECK(pull(plain_client, blob) == blob.bytes);
    CHECK(plain_storage.requests().size() == 1);
  }
}

TEST_CASE("Client refuses an upload location on http without plain_http") {
  ferry::test::TestDir dir;
  const Tls tls = make_tls(dir.path(), "IP:127.0.0.1");
  HostileServer plain_uploads([](HostileExchange& x) {
    HostileAnswer answer;
    answer.status = 201;
    x.send(answer);
  });
  HostileServer registry([&](HostileExchange& x) {
    HostileAnswer answer;
    answer.status = 202;
    answer.set_header("Location", plain_uploads.url() + "/v2/app/blobs/uploads/session-1");
    x.send(answer);
  }, tls.identity);
  ClientOptions options = fast_options();
  options.tls.plain_http = false;
  options.tls.ca_file = tls.ca.cert_file;
  ferry::core::NullLog log;
  Client client(registry.host(), options, log);
  const Blob blob = make_blob(100, 34);
  ferry::core::StringSource source(blob.bytes);
  const auto e = error_of([&] { client.push_blob("app", blob.digest, blob.bytes.size(), source); });
  CHECK(e.code() == ferry::core::ExitCode::registry);
  CHECK(contains(e.what(), "refusing plain HTTP: the registry points to " + plain_uploads.url()));
  CHECK(plain_uploads.requests().empty());
}

TEST_CASE("Client refuses a plain-HTTP token realm unless plain_http") {
  std::atomic<int> token_calls{0};
  HostileServer tokens([&](HostileExchange& x) {
    ++token_calls;
    HostileAnswer answer;
    answer.set_header("Content-Type", "application/json");
    answer.body = R"({"token":"tok-123","expires_in":300})";
    x.send(answer);
  });
  // Answers 401 with the realm until a request carries the token.
  const auto registry_handler = [&](HostileExchange& x) {
    HostileAnswer answer;
    if (x.request().header("authorization") != "Bearer tok-123") {
      answer.status = 401;
      answer.set_header("WWW-Authenticate",
                        "Bearer realm=\"" + tokens.url() + "/token\",service=\"reg\",scope=\"repository:app:pull\"");
    } else {
      answer.status = 404;
    }
    x.send(answer);
  };
  ClientOptions options = fast_options();
  options.credentials = ferry::registry::Credentials{"user", "realm-password", {}};

  SUBCASE("over TLS: refused, nothing sent to the realm") {
    ferry::test::TestDir dir;
    const Tls tls = make_tls(dir.path(), "IP:127.0.0.1");
    HostileServer registry(registry_handler, tls.identity);
    options.tls.plain_http = false;
    options.tls.ca_file = tls.ca.cert_file;
    ferry::core::NullLog log;
    Client client(registry.host(), options, log);
    const auto e = error_of([&] { client.blob_exists("app", ferry::core::sha256_of("x")); });
    CHECK(e.code() == ferry::core::ExitCode::registry);
    CHECK(contains(e.what(), "plain-HTTP token endpoint " + tokens.url() + "/token"));
    CHECK(contains(e.hint(), "--plain-http"));
    CHECK_FALSE(contains(std::string(e.what()) + e.hint(), "realm-password"));
    CHECK(token_calls == 0);
  }
  SUBCASE("with plain_http: the token is fetched and used") {
    HostileServer registry(registry_handler);
    ferry::core::NullLog log;
    Client client(registry.host(), options, log);
    CHECK_FALSE(client.blob_exists("app", ferry::core::sha256_of("x")));
    CHECK(token_calls == 1);
    const auto asked = tokens.requests();
    REQUIRE(asked.size() == 1);
    CHECK(asked[0].header("authorization").has_value());
  }
}

TEST_CASE("Client's TLS hints tell a certificate for another name from one of another CA") {
  ferry::test::TestDir dir;
  const Tls tls = make_tls(dir.path(), "DNS:registry.example.invalid");
  const auto foreign_ca = ferry::test::make_test_ca(dir / "foreign", "foreign");
  const auto foreign = ferry::test::make_server_identity(dir / "foreign", "server", foreign_ca, "IP:127.0.0.1");
  const auto answer_ok = [](HostileExchange& x) { x.send(HostileAnswer{}); };
  ClientOptions options = fast_options();
  options.tls.plain_http = false;
  options.tls.ca_file = tls.ca.cert_file;
  ferry::core::NullLog log;

  SUBCASE("another name") {
    HostileServer server(answer_ok, tls.identity);
    Client client(server.host(), options, log);
    const auto e = error_of([&] { client.ping(); });
    CHECK(e.code() == ferry::core::ExitCode::registry);
    CHECK(contains(e.what(), "TLS handshake with " + server.host() + " failed"));
    CHECK(contains(e.hint(), "made out for another name"));
    CHECK_FALSE(contains(e.hint(), "not signed by the CA"));
    CHECK(client.stats().retries == 0);
    // curl checks the name once the handshake is done, then hangs up without a request.
    CHECK(server.requests().empty());
    CHECK(server.connections() == 1);
  }
  SUBCASE("another CA") {
    HostileServer server(answer_ok, foreign);
    Client client(server.host(), options, log);
    const auto e = error_of([&] { client.ping(); });
    CHECK(contains(e.hint(), "not signed by the CA in --ca-file " + tls.ca.cert_file.string()));
    CHECK(contains(e.hint(), "intercepting"));
    CHECK(server.requests().empty());
    CHECK(server.tls_failures() == 1);
  }
}

} // TEST_SUITE
