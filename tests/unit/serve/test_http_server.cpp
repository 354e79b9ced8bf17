// The HTTP/1.1 transport of `ferry serve`: request heads, keep-alive, limits and
// timeouts, against a live server on 127.0.0.1 and a raw socket client.
// SPDX-License-Identifier: Apache-2.0
#include "serve/http_server.hpp"

#include "core/error.hpp"
#include "support/test_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

using namespace ferry;
using namespace std::chrono_literals;
using ferry::test::contains;
using ferry::test::noise;

namespace {

// A server on 127.0.0.1:0 running in a thread until the fixture ends.
struct Live {
  core::NullLog log;
  serve::Server server;
  std::thread thread;
  explicit Live(serve::Handler handler, serve::ServerOptions options = {})
      : server((options.listen = "127.0.0.1:0", options), std::move(handler), log),
        thread([this] { server.run(); }) {}
  ~Live() {
    server.stop();
    thread.join();
  }
};

class Client {
public:
  explicit Client(std::uint16_t port) {
    m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(m_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  }
  ~Client() { ::close(m_fd); }
  // Errors are ignored: a server that closed shows in what receive() gets.
  void send(const std::string& bytes) { (void)::send(m_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL); }
  // Everything until the server closes or `quiet` passes without a byte.
  std::string receive(std::chrono::milliseconds quiet = 2000ms) {
    std::string out;
    char buffer[65536];
    for (;;) {
      pollfd p{m_fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(quiet.count())) <= 0) break;
      const ssize_t n = ::recv(m_fd, buffer, sizeof buffer, 0);
      if (n <= 0) {
        m_closed = true;
        break;
      }
      out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
  }
  bool closed() const { return m_closed; }

private:
  int m_fd = -1;
  bool m_closed = false;
};

serve::Response text(const std::string& body) {
  serve::Response r;
  r.body = body;
  return r;
}

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

} // namespace

TEST_SUITE("serve") {

TEST_CASE("parse_request_head accepts HTTP/1.x heads and refuses malformed ones") {
  int status = 0;
  auto r = serve::parse_request_head("GET /v2/a/b/tags/list?n=2&last=x HTTP/1.1\r\nHost: h\r\nRange:  bytes=0-1 \r\n\r\n", status);
  REQUIRE(r);
  CHECK(r->method == "GET");
  CHECK(r->path == "/v2/a/b/tags/list");
  CHECK(r->query == "n=2&last=x");
  CHECK(r->version == "HTTP/1.1");
  REQUIRE(r->header("range"));
  CHECK(*r->header("range") == "bytes=0-1");
  CHECK(r->query_value("n") == "2");
  CHECK(!r->query_value("m"));

  struct Bad {
    const char* head;
    int status;
  };
  for (const Bad& bad : {Bad{"GET /v2/ HTTP/2.0\r\n\r\n", 505}, Bad{"GET /v2/\r\n\r\n", 400},
                         Bad{"GET v2 HTTP/1.1\r\n\r\n", 400}, Bad{"GET /v2/ HTTP/1.1\r\nNoColon\r\n\r\n", 400},
                         Bad{"GET /v2/ HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400},
                         Bad{"G(T /v2/ HTTP/1.1\r\n\r\n", 400}, Bad{"GET /v2/  HTTP/1.1\r\n\r\n", 400},
                         Bad{"GET /v2/ HTTP/1.1\r\nA b: c\r\n\r\n", 400}}) {
    CHECK_MESSAGE(!serve::parse_request_head(bad.head, status), bad.head);
    CHECK_MESSAGE(status == bad.status, bad.head);
  }
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) many += "X-" + std::to_string(i) + ": y\r\n";
  CHECK(!serve::parse_request_head(many + "\r\n", status));
  CHECK(status == 431);
  CHECK(!serve::parse_request_head("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n", status));
  CHECK(status == 414);
}

TEST_CASE("keep-alive: several requests on one connection, pipelined ones in order; HEAD has no body") {
  Live live([](const serve::Request& r) { return text("path " + r.path + "\n"); });
  Client c(live.server.port());
  c.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string first = c.receive(300ms);
  CHECK(contains(first, "HTTP/1.1 200 OK\r\n"));
  CHECK(contains(first, "Content-Length: 8\r\n"));
  CHECK(contains(first, "\r\n\r\npath /a\n"));
  c.send("GET /b HTTP/1.1\r\n\r\nHEAD /c HTTP/1.1\r\n\r\nGET /d HTTP/1.1\r\nConnection: close\r\n\r\n");
  const std::string rest = c.receive();
  CHECK(c.closed());
  CHECK(count(rest, "HTTP/1.1 200 OK") == 3);
  CHECK(rest.find("path /b") < rest.find("path /d"));
  CHECK(!contains(rest, "path /c")); // HEAD: headers only
  CHECK(contains(rest, "Connection: close"));
}

TEST_CASE("HTTP/1.0 closes after the response unless it asks for keep-alive") {
  Live live([](const serve::Request&) { return text("x"); });
  Client c(live.server.port());
  c.send("GET / HTTP/1.0\r\n\r\n");
  CHECK(contains(c.receive(), "200 OK"));
  CHECK(c.closed());
}

TEST_CASE("a request with a body is refused and the connection closed, its bytes never read as a request") {
  std::atomic<int> calls{0};
  Live live([&](const serve::Request&) {
    ++calls;
    return text("x");
  });
  Client c(live.server.port());
  c.send("PUT /v2/a/manifests/t HTTP/1.1\r\nContent-Length: 36\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string got = c.receive();
  CHECK(contains(got, "405 Method Not Allowed"));
  CHECK(count(got, "HTTP/1.1") == 1);
  CHECK(c.closed());
  CHECK(calls == 0);

  Client chunked(live.server.port());
  chunked.send("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  CHECK(contains(chunked.receive(), "400 Bad Request"));
  CHECK(chunked.closed());
}

TEST_CASE("malformed and oversized heads get 400 and 431, then the connection closes") {
  Live live([](const serve::Request&) { return text("x"); });
  Client bad(live.server.port());
  bad.send("NONSENSE\r\n\r\n");
  CHECK(contains(bad.receive(), "400 Bad Request"));
  CHECK(bad.closed());

  Client big(live.server.port());
  big.send("GET / HTTP/1.1\r\nX: " + std::string(20000, 'a'));
  CHECK(contains(big.receive(), "431 "));
  CHECK(big.closed());
}

TEST_CASE("slow and idle clients are cut off by the timeouts") {
  serve::ServerOptions options;
  options.head_timeout = 1s;
  options.idle_timeout = 1s;
  Live live([](const serve::Request&) { return text("x"); }, options);

  Client slow(live.server.port());
  const auto start = std::chrono::steady_clock::now();
  slow.send("GET / HTTP/1.1\r\n");
  std::string got;
  for (int i = 0; i < 10 && !slow.closed(); ++i) {
    slow.send("X: y\r\n"); // a header line now and then, never the blank line
    got += slow.receive(300ms);
  }
  CHECK(slow.closed());
  CHECK(contains(got, "408 Request Timeout"));
  CHECK(std::chrono::steady_clock::now() - start < 3s);

  Client idle(live.server.port());
  CHECK(idle.receive(3000ms).empty());
  CHECK(idle.closed());
}

TEST_CASE("clients beyond max_connections get 503; the first is still served") {
  serve::ServerOptions options;
  options.max_connections = 1;
  Live live([](const serve::Request&) { return text("x"); }, options);
  Client first(live.server.port());
  first.send("GET / HTTP/1.1\r\n\r\n");
  CHECK(contains(first.receive(300ms), "200 OK"));
  Client second(live.server.port());
  CHECK(contains(second.receive(), "503 Service Unavailable"));
  CHECK(second.closed());
  first.send("GET / HTTP/1.1\r\n\r\n");
  CHECK(contains(first.receive(300ms), "200 OK"));
}

TEST_CASE("streamed bodies arrive whole; one that fails part-way closes the connection short") {
  const std::string blob = noise(3u << 20, 11);
  Live live([&](const serve::Request& r) {
    struct Source final : core::Source {
      std::string_view bytes;
      bool fail = false;
      std::size_t at = 0;
      std::size_t read(char* data, std::size_t size) override {
        if (fail && at >= bytes.size() / 2) throw core::IntegrityError("blob changed");
        const std::size_t n = std::min<std::size_t>({size, bytes.size() - at, 100000});
        std::copy_n(bytes.data() + at, n, data);
        at += n;
        return n;
      }
    };
    auto s = std::make_unique<Source>();
    s->bytes = blob;
    s->fail = r.path == "/fail";
    serve::Response out;
    out.length = blob.size();
    out.stream = std::move(s);
    return out;
  });
  Client c(live.server.port());
  c.send("GET /ok HTTP/1.1\r\n\r\n");
  const std::string got = c.receive(500ms);
  const auto body_at = got.find("\r\n\r\n");
  REQUIRE(body_at != std::string::npos);
  CHECK(contains(got.substr(0, body_at), "Content-Length: " + std::to_string(blob.size())));
  CHECK(got.substr(body_at + 4) == blob);

  c.send("GET /fail HTTP/1.1\r\n\r\n");
  const std::string cut = c.receive();
  CHECK(c.closed());
  const auto cut_at = cut.find("\r\n\r\n");
  REQUIRE(cut_at != std::string::npos);
  CHECK(cut.size() - cut_at - 4 < blob.size());
}

TEST_CASE("a handler that throws gives 500 and the connection closes") {
  Live live([](const serve::Request&) -> serve::Response { throw std::runtime_error("boom"); });
  Client c(live.server.port());
  c.send("GET / HTTP/1.1\r\n\r\n");
  CHECK(contains(c.receive(), "500 Internal Server Error"));
  CHECK(c.closed());
}

TEST_CASE("stop() ends run() while connections are open") {
  core::NullLog log;
  serve::ServerOptions options;
  options.listen = "127.0.0.1:0";
  serve::Server server(options, [](const serve::Request&) { return text("x"); }, log);
  std::thread t([&] { server.run(); });
  Client c(server.port());
  c.send("GET / HTTP/1.1\r\n\r\n");
  CHECK(contains(c.receive(300ms), "200 OK"));
  const auto start = std::chrono::steady_clock::now();
  server.stop();
  t.join();
  CHECK(std::chrono::steady_clock::now() - start < 3s);
  c.receive(500ms);
  CHECK(c.closed());
}

TEST_CASE("--listen: malformed addresses are usage errors, a taken port says so") {
  core::NullLog log;
  auto make = [&](const std::string& listen) {
    serve::ServerOptions options;
    options.listen = listen;
    serve::Server s(options, [](const serve::Request&) { return text("x"); }, log);
    return s.port();
  };
  for (const char* bad : {"5000", "127.0.0.1:99999", "::1:5000", "[::1]5000", "127.0.0.1:http"}) {
    CHECK_THROWS_AS_MESSAGE(make(bad), core::UsageError, bad);
  }
  serve::ServerOptions options;
  options.listen = "127.0.0.1:0";
  serve::Server first(options, [](const serve::Request&) { return text("x"); }, log);
  try {
    make("127.0.0.1:" + std::to_string(first.port()));
    FAIL("a second server bound the same port");
  } catch (const core::Error& e) {
    CHECK(contains(e.what(), "cannot listen on 127.0.0.1:"));
    CHECK(contains(e.hint(), "another program uses that port"));
  }
  CHECK(first.url() == "http://127.0.0.1:" + std::to_string(first.port()));
}

} // TEST_SUITE
