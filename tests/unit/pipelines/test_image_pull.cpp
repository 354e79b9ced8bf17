// Tests for ImagePuller's ordered downloads against a scripted registry: the window ahead
// of the consumer, and stopping (a consumer that fails must not leave threads waiting).
// SPDX-License-Identifier: Apache-2.0
#include "core/digest.hpp"
#include "core/fs.hpp"
#include "image_pull.hpp"
#include "oci/blob_store.hpp"
#include "support/test_support.hpp"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <thread>

using namespace std::chrono_literals;

namespace {

// A registry serving one image (a config and three 64 KiB layers) over plain HTTP.
class TinyRegistry {
public:
  TinyRegistry() {
    config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
    blobs[ferry::core::sha256_of(config).str()] = config;
    nlohmann::json layers = nlohmann::json::array();
    for (unsigned i = 0; i < 3; ++i) {
      const std::string bytes = ferry::test::random_bytes(64 << 10, i + 1);
      const std::string digest = ferry::core::sha256_of(bytes).str();
      blobs[digest] = bytes;
      layer_digests.push_back(digest);
      layers.push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar+gzip"}, {"digest", digest},
                        {"size", bytes.size()}});
    }
    manifest = nlohmann::json{{"schemaVersion", 2},
                              {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                              {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                                          {"digest", ferry::core::sha256_of(config).str()},
                                          {"size", config.size()}}},
                              {"layers", layers}}
                   .dump();
    m_server.Get("/v2/", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
    m_server.Get(R"(/v2/app/manifests/(.+))", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(manifest, "application/vnd.oci.image.manifest.v1+json");
    });
    m_server.Get(R"(/v2/app/blobs/(sha256:[0-9a-f]+))", [this](const httplib::Request& req, httplib::Response& res) {
      const auto it = blobs.find(req.matches[1]);
      if (it == blobs.end()) {
        res.status = 404;
        return;
      }
      ++served;
      res.set_content(it->second, "application/octet-stream");
    });
    m_port = m_server.bind_to_any_port("127.0.0.1");
    REQUIRE(m_port > 0);
    m_thread = std::thread([this] { m_server.listen_after_bind(); });
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!m_server.is_running() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    REQUIRE(m_server.is_running());
  }
  ~TinyRegistry() {
    m_server.stop();
    m_thread.join();
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(m_port); }

  std::string config;
  std::string manifest;
  std::map<std::string, std::string> blobs;
  std::vector<std::string> layer_digests;
  std::atomic<int> served{0};

private:
  httplib::Server m_server;
  int m_port = 0;
  std::thread m_thread;
};

ferry::PullOptions options(std::uint64_t ahead) {
  ferry::PullOptions o;
  o.client.tls.plain_http = true;
  o.jobs = 3;
  o.download_ahead = ahead;
  return o;
}

std::vector<ferry::core::Digest> order_of(const TinyRegistry& r) {
  std::vector<ferry::core::Digest> order;
  for (const auto& d : r.layer_digests) order.push_back(ferry::core::Digest::parse(d));
  return order;
}

} // namespace

TEST_SUITE("pipelines") {

TEST_CASE("ImagePuller with a consumer order downloads no further ahead than allowed, and gets everything when consumed") {
  TinyRegistry registry;
  ferry::test::TestDir dir;
  ferry::oci::BlobStore store(dir.path());
  ferry::test::CaptureLog log;
  ferry::core::NullProgress progress;
  ferry::ImagePuller puller(options(1), store, log); // one byte: only the consumer's blob may go
  (void)puller.resolve(ferry::oci::Reference::parse(registry.host() + "/app:1"), ferry::oci::PlatformFilter(std::vector<ferry::oci::Platform>{}));
  const int before = registry.served;
  const auto order = order_of(registry);
  puller.start(progress, order);
  std::this_thread::sleep_for(300ms);
  CHECK(registry.served - before == 1); // the first layer only: the others wait for the consumer
  for (const auto& digest : order) {
    puller.wait_for(digest);
    CHECK(store.contains(digest));
  }
  puller.finish();
  CHECK(registry.served - before == 3);
}

TEST_CASE("ImagePuller stops downloads that wait for the consumer when the consumer gives up") {
  TinyRegistry registry;
  ferry::test::TestDir dir;
  ferry::oci::BlobStore store(dir.path());
  ferry::test::CaptureLog log;
  ferry::core::NullProgress progress;
  std::atomic<bool> destroyed{false};
  std::thread consumer([&] {
    ferry::ImagePuller puller(options(1), store, log);
    (void)puller.resolve(ferry::oci::Reference::parse(registry.host() + "/app:1"), ferry::oci::PlatformFilter(std::vector<ferry::oci::Platform>{}));
    puller.start(progress, order_of(registry));
    std::this_thread::sleep_for(100ms);
    // The consumer fails here (as pack does when writing the bundle fails): the puller
    // is destroyed while two downloads wait for the consumer to move on.
  });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  std::thread watchdog([&] {
    consumer.join();
    destroyed = true;
  });
  while (!destroyed && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  if (!destroyed) {
    // The threads cannot be joined: say so and end the test run here.
    std::fprintf(stderr, "FAILED: the ImagePuller's destructor did not return within 10 s (threads left waiting)\n");
    std::fflush(stderr);
    std::_Exit(1);
  }
  watchdog.join();
}

} // TEST_SUITE
