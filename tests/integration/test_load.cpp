// Load: a bundle of 200 small images and a bundle of one 5 GiB image, pushed with -j 16
// through a FaultProxy that answers errors, rate limits and stalls in front of a real
// docker-registry. Every blob must arrive once and intact, every manifest under the
// bundle's digest, and ferry's peak memory must not grow with the bundle.
// The image sources are OCI layouts written here (uncompressed tar layers of
// pseudo-random bytes), so the load is generated, not stored in the repository.
// SPDX-License-Identifier: Apache-2.0
#include "common/fault_proxy.hpp"
#include "common/registry_fixture.hpp"
#include "support/harness.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using namespace ferry::itest;
using namespace std::chrono_literals;
using ferry::test::Fault;
using ferry::test::FaultProxy;
using ferry::test::fail_with;
using ferry::test::rate_limit;
using ferry::test::stall_for;
using ferry::test::RegistryServer;
using nlohmann::json;

namespace {

const std::vector<std::string> k_tools = {"docker-registry", "curl", "sha256sum"};
const std::string k_manifests = "^/v2/.+/manifests/";
const std::string k_blobs = "^/v2/.+/blobs/sha256:";
const std::string k_uploads = "^/v2/.+/blobs/uploads/";

using Clock = std::chrono::steady_clock;

// SHA-256 over data given piece by piece.
class Sha256 {
public:
  Sha256() : m_ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    REQUIRE(m_ctx);
    REQUIRE(EVP_DigestInit_ex(m_ctx.get(), EVP_sha256(), nullptr) == 1);
  }
  void update(const void* data, std::size_t size) { REQUIRE(EVP_DigestUpdate(m_ctx.get(), data, size) == 1); }
  // "sha256:<hex>".
  std::string finish() {
    unsigned char md[32];
    unsigned int length = 0;
    REQUIRE(EVP_DigestFinal_ex(m_ctx.get(), md, &length) == 1);
    std::string hex = "sha256:";
    char two[3];
    for (unsigned i = 0; i < length; ++i) {
      std::snprintf(two, sizeof two, "%02x", md[i]);
      hex += two;
    }
    return hex;
  }

private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> m_ctx;
};

struct Blob {
  std::string digest;
  std::uint64_t size = 0;
};

// xorshift64*: fast incompressible bytes, different for every seed.
class Noise {
public:
  explicit Noise(std::uint64_t seed) : m_state(seed * 0x9E3779B97F4A7C15ull + 1) {}
  void fill(char* out, std::size_t size) {
    std::size_t i = 0;
    for (; i + 8 <= size; i += 8) {
      const std::uint64_t v = next();
      std::memcpy(out + i, &v, 8);
    }
    if (i < size) {
      const std::uint64_t v = next();
      std::memcpy(out + i, &v, size - i);
    }
  }

private:
  std::uint64_t next() {
    m_state ^= m_state >> 12;
    m_state ^= m_state << 25;
    m_state ^= m_state >> 27;
    return m_state * 0x2545F4914F6CDD1Dull;
  }
  std::uint64_t m_state;
};

// A ustar header for one regular file `name` of `size` bytes.
std::string tar_header(const std::string& name, std::uint64_t size) {
  REQUIRE(name.size() < 100);
  REQUIRE(size < (1ull << 33)); // 11 octal digits
  std::string h(512, '\0');
  auto put = [&](std::size_t offset, const std::string& text) { h.replace(offset, text.size(), text); };
  auto octal = [](std::uint64_t value, int digits) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%0*llo", digits, static_cast<unsigned long long>(value));
    return std::string(buffer);
  };
  put(0, name);
  put(100, octal(0644, 7));
  put(108, octal(0, 7));
  put(116, octal(0, 7));
  put(124, octal(size, 11));
  put(136, octal(0, 11));
  put(148, std::string(8, ' '));
  h[156] = '0';
  put(257, std::string("ustar\0" "00", 8));
  unsigned sum = 0;
  for (const unsigned char c : h) sum += c;
  put(148, octal(sum, 6));
  h[154] = '\0';
  return h;
}

// Writes OCI image layouts: blobs by digest, index.json naming each image.
class LayoutWriter {
public:
  explicit LayoutWriter(fs::path dir) : m_dir(std::move(dir)) {
    fs::create_directories(m_dir / "blobs" / "sha256");
    write_file(m_dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  }

  Blob add(const std::string& bytes) {
    Sha256 sha;
    sha.update(bytes.data(), bytes.size());
    const Blob blob{sha.finish(), bytes.size()};
    write_file(path_of(blob.digest), bytes);
    return blob;
  }

  // A layer: a tar with one file `name` of `size` pseudo-random bytes from `seed`,
  // streamed to disk while hashed (a 5 GiB one never sits in memory).
  Blob add_layer(const std::string& name, std::uint64_t size, std::uint64_t seed) {
    const fs::path temp = m_dir / "blobs" / "layer.partial";
    std::ofstream out(temp, std::ios::binary);
    REQUIRE(out);
    Sha256 sha;
    std::uint64_t total = 0;
    auto emit = [&](const char* data, std::size_t n) {
      out.write(data, static_cast<std::streamsize>(n));
      sha.update(data, n);
      total += n;
    };
    const std::string header = tar_header(name, size);
    emit(header.data(), header.size());
    Noise noise(seed);
    std::vector<char> buffer(1 << 20);
    for (std::uint64_t left = size; left > 0;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buffer.size()));
      noise.fill(buffer.data(), n);
      emit(buffer.data(), n);
      left -= n;
    }
    const std::string tail(static_cast<std::size_t>((512 - size % 512) % 512) + 1024, '\0');
    emit(tail.data(), tail.size());
    out.close();
    REQUIRE(out);
    const Blob blob{sha.finish(), total};
    fs::rename(temp, path_of(blob.digest));
    return blob;
  }

  // An amd64 image of `layers`, named `tag` in index.json; returns its manifest.
  Blob add_image(const std::string& tag, const std::vector<Blob>& layers) {
    json diff_ids = json::array();
    json layer_list = json::array();
    for (const auto& l : layers) {
      diff_ids.push_back(l.digest);
      layer_list.push_back(
          {{"mediaType", "application/vnd.oci.image.layer.v1.tar"}, {"digest", l.digest}, {"size", l.size}});
    }
    const Blob config = add(json{{"architecture", "amd64"},
                                 {"os", "linux"},
                                 {"config", json::object()},
                                 {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}}
                                .dump());
    const std::string media_type = "application/vnd.oci.image.manifest.v1+json";
    const Blob manifest = add(json{{"schemaVersion", 2},
                                   {"mediaType", media_type},
                                   {"config", {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                                               {"digest", config.digest},
                                               {"size", config.size}}},
                                   {"layers", layer_list}}
                                  .dump());
    m_index.push_back({{"mediaType", media_type},
                       {"digest", manifest.digest},
                       {"size", manifest.size},
                       {"annotations", {{"org.opencontainers.image.ref.name", tag}}}});
    write_file(m_dir / "index.json", json{{"schemaVersion", 2}, {"manifests", m_index}}.dump());
    return manifest;
  }

private:
  fs::path path_of(const std::string& digest) const { return m_dir / "blobs" / "sha256" / digest.substr(7); }

  fs::path m_dir;
  json m_index = json::array();
};

struct Keys {
  fs::path key;
  fs::path pub;
};

Keys make_keys(const TestDir& dir) {
  const RunResult r = run_ferry({"keygen", "--out", (dir / "load").string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return {dir / "load.key", dir / "load.pub"};
}

struct Timed {
  RunResult result;
  double seconds = 0;
};

Timed timed_ferry(const std::vector<std::string>& args, const TestDir& dir) {
  const auto start = Clock::now();
  Timed t;
  t.result = run_ferry(args, {.cwd = dir.path(), .env = isolated_env(dir), .input = {}});
  t.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  INFO(t.result.err);
  REQUIRE(t.result.exit_code == 0);
  return t;
}

// The registry's Docker-Content-Digest of each reference ("repo:tag"), asked with one
// curl run straight at `server` (not through the proxy).
std::vector<std::string> served_digests(const RegistryServer& server, const std::vector<std::string>& refs) {
  std::vector<std::string> argv = {"curl", "-sS", "--head",
                                   "-H", "Accept: application/vnd.oci.image.manifest.v1+json"};
  for (const auto& ref : refs) {
    const auto colon = ref.rfind(':');
    argv.push_back(server.url() + "/v2/" + ref.substr(0, colon) + "/manifests/" + ref.substr(colon + 1));
  }
  std::istringstream lines(must(argv));
  std::vector<std::string> digests;
  std::string line;
  while (std::getline(lines, line)) {
    std::string lower = line;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower.rfind("docker-content-digest:", 0) != 0) continue;
    std::string value = line.substr(line.find(':') + 1);
    value.erase(0, value.find_first_not_of(' '));
    while (!value.empty() && (value.back() == '\r' || value.back() == ' ')) value.pop_back();
    digests.push_back(value);
  }
  return digests;
}

// Each completed upload (PUT .../blobs/uploads/...?digest=D answered 201), by digest.
std::map<std::string, int> completed_uploads(const FaultProxy& proxy) {
  std::map<std::string, int> done;
  for (const auto& r : proxy.requests()) {
    if (r.method != "PUT" || r.status != 201 || !contains(r.target, "/blobs/uploads/")) continue;
    const auto at = r.target.find("digest=sha256");
    REQUIRE(at != std::string::npos);
    std::string digest = r.target.substr(at + 7, 9 + 64);
    const auto pos = digest.find("%3A");
    if (pos != std::string::npos) digest.replace(pos, 3, ":");
    ++done[digest.substr(0, 71)];
  }
  return done;
}

std::size_t faults_applied(const FaultProxy& proxy) {
  std::size_t n = 0;
  for (const auto& r : proxy.requests()) n += r.fault != Fault::none ? 1 : 0;
  return n;
}

double mib(long kib) { return static_cast<double>(kib) / 1024.0; }

} // namespace

TEST_SUITE("load") {

TEST_CASE("200 small images sharing a base layer, pushed with -j 16 through faults: each blob once, all intact") {
  require_tools(k_tools);
  TestDir dir;
  constexpr int k_images = 200;
  LayoutWriter layout(dir / "layout");
  const Blob base = layout.add_layer("base/os-release", 48 << 10, 1);
  std::vector<std::string> names;
  std::map<std::string, std::string> manifest_of; // target ref -> manifest digest
  std::set<std::string> blobs{base.digest};
  std::string images;
  for (int i = 0; i < k_images; ++i) {
    char tag[16];
    std::snprintf(tag, sizeof tag, "img-%03d", i);
    const Blob own = layout.add_layer("app/" + std::string(tag), 4096 + static_cast<std::uint64_t>(i) * 97, 100 + i);
    const Blob manifest = layout.add_image(tag, {base, own});
    blobs.insert(own.digest);
    const std::string name = "load.example/team/" + std::string(tag) + ":1.0";
    images += "  - {ref: \"oci:./layout:" + std::string(tag) + "\", name: " + name + "}\n";
    manifest_of["mirror/team/" + std::string(tag) + ":1.0"] = manifest.digest;
  }
  write_file(dir / "load.yaml",
             "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: load-small, version: \"1\"}\nimages:\n" + images);
  const Keys keys = make_keys(dir);
  const fs::path bundle = dir / "small.tar.zst";
  const Timed packed = timed_ferry({"pack", "-f", "load.yaml", "-o", bundle.string(), "--key", keys.key.string()}, dir);

  RegistryServer target;
  FaultProxy proxy(target.host());
  proxy.set_request_limit(20000);
  proxy.add_rule(fail_with("POST", k_uploads, 502, 4));
  proxy.add_rule(fail_with("PUT", k_uploads, 503, 6));
  proxy.add_rule(rate_limit("HEAD", k_blobs, 1s, 3));
  proxy.add_rule(stall_for("HEAD", k_blobs, 1500ms, 4));
  proxy.add_rule(fail_with("PUT", k_manifests, 500, 5));

  const Timed pushed = timed_ferry({"push", bundle.string(), "--registry", proxy.host() + "/mirror", "--plain-http",
                                    "--pubkey", keys.pub.string(), "-j", "16", "--output", "json"},
                                   dir);
  const json report = json::parse(pushed.result.out);
  const std::size_t faults = faults_applied(proxy);
  MESSAGE(k_images << " images (" << blobs.size() << " layers, " << k_images << " configs): pack " << packed.seconds << " s, push -j 16 "
                         << pushed.seconds << " s, peak RSS pack " << mib(packed.result.peak_rss_kib)
                         << " MiB, push " << mib(pushed.result.peak_rss_kib) << " MiB; " << faults
                         << " faults injected, " << report["retries"] << " retries in " << report["requests"]
                         << " requests");

  // Every blob arrived once: config and layer blobs all uploaded, each completed once;
  // the base layer once, then mounted into the other repositories.
  const std::size_t unique_blobs = blobs.size() + k_images; // layers + configs (all distinct)
  CHECK(report["blobs"]["uploaded"].get<std::size_t>() == unique_blobs);
  CHECK(report["manifests"]["pushed"].get<int>() == k_images);
  const auto completed = completed_uploads(proxy);
  CHECK(completed.size() == unique_blobs);
  for (const auto& [digest, times] : completed) {
    CAPTURE(digest);
    CHECK(times == 1);
  }
  CHECK(completed.count(base.digest) == 1);
  // Each fault was met and ridden out: every rule used all its uses.
  CHECK(faults == 4 + 6 + 3 + 4 + 5);
  CHECK(report["retries"].get<std::size_t>() >= 4 + 6 + 3 + 5);

  // Intact: the registry serves each tag under the bundle's manifest digest (the registry
  // itself checked every blob's digest when its upload completed).
  std::vector<std::string> refs;
  for (const auto& [ref, digest] : manifest_of) refs.push_back(ref);
  const auto served = served_digests(target, refs);
  REQUIRE(served.size() == refs.size());
  for (std::size_t i = 0; i < refs.size(); ++i) {
    CAPTURE(refs[i]);
    CHECK(served[i] == manifest_of[refs[i]]);
  }
  // Bounded memory: 16 transfers of small blobs need far less than the bundle.
  CHECK(pushed.result.peak_rss_kib < 512 * 1024);
}

TEST_CASE("one 5 GiB image pushed with -j 16 through faults arrives once and intact in bounded memory") {
  require_tools(k_tools);
  TestDir dir;
  // FERRY_LOAD_BYTES shrinks the layer for a quick local run; CI uses the default.
  std::uint64_t size = 5ull << 30;
  if (const char* env = std::getenv("FERRY_LOAD_BYTES")) size = std::stoull(env);
  const auto generate_start = Clock::now();
  Blob layer;
  Blob manifest;
  {
    LayoutWriter layout(dir / "layout");
    layer = layout.add_layer("data/blob.bin", size, 42);
    manifest = layout.add_image("big", {layer});
  }
  const double generated = std::chrono::duration<double>(Clock::now() - generate_start).count();
  write_file(dir / "big.yaml", "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: load-big, version: \"1\"}\n"
                               "images:\n  - {ref: \"oci:./layout:big\", name: load.example/data/big:1.0}\n");
  const Keys keys = make_keys(dir);
  const fs::path bundle = dir / "big.tar.zst";
  const Timed packed = timed_ferry({"pack", "-f", "big.yaml", "-o", bundle.string(), "--key", keys.key.string(),
                                    "--no-cache"},
                                   dir);
  fs::remove_all(dir / "layout"); // the disk holds the bundle and the registry's copy, not a third

  RegistryServer target;
  FaultProxy proxy(target.host());
  proxy.set_request_limit(20000);
  // A failed chunk, a failed completion, a rate limit and a stall on the way.
  proxy.add_rule(fail_with("PATCH", k_uploads, 500, 3));
  proxy.add_rule(rate_limit("PATCH", k_uploads, 1s, 1));
  proxy.add_rule(stall_for("PATCH", k_uploads, 2s, 2));
  proxy.add_rule(fail_with("PUT", k_uploads, 503, 1));
  proxy.add_rule(fail_with("PUT", k_manifests, 502, 1));

  const Timed pushed = timed_ferry({"push", bundle.string(), "--registry", proxy.host() + "/mirror", "--plain-http",
                                    "--pubkey", keys.pub.string(), "-j", "16", "--output", "json"},
                                   dir);
  const json report = json::parse(pushed.result.out);
  const std::size_t faults = faults_applied(proxy);
  const double gib = static_cast<double>(layer.size) / (1 << 30);
  MESSAGE(gib << " GiB layer: generated in " << generated << " s, pack " << packed.seconds << " s ("
              << gib / packed.seconds << " GiB/s), push -j 16 through the proxy " << pushed.seconds << " s ("
              << gib / pushed.seconds << " GiB/s); peak RSS pack " << mib(packed.result.peak_rss_kib) << " MiB, push "
              << mib(pushed.result.peak_rss_kib) << " MiB; " << faults << " faults injected, " << report["retries"]
              << " retries in " << report["requests"] << " requests");

  CHECK(faults == 3 + 1 + 2 + 1 + 1);
  CHECK(report["blobs"]["uploaded"].get<int>() == 2); // the layer and the config
  const auto completed = completed_uploads(proxy);
  CHECK(completed.size() == 2);
  CHECK(completed.count(layer.digest) == 1);
  for (const auto& [digest, times] : completed) {
    CAPTURE(digest);
    CHECK(times == 1);
  }
  // The layer's bytes went up about once: a failed chunk is sent again from the offset
  // the upload session reports, never the whole blob.
  std::uint64_t patched = 0;
  for (const auto& r : proxy.requests()) {
    if (r.method != "PATCH" || r.status / 100 != 2) continue;
    if (const auto length = r.header("content-length")) patched += std::stoull(*length);
  }
  CHECK(patched >= layer.size);
  CHECK(patched < layer.size + layer.size / 10);

  // Intact, checked without ferry: the tag's digest, and the layer read back through
  // curl into sha256sum.
  const auto served = served_digests(target, {"mirror/data/big:1.0"});
  REQUIRE(served.size() == 1);
  CHECK(served[0] == manifest.digest);
  const RunResult sum = run({"sh", "-c", "curl -sS \"$0\" | sha256sum",
                             target.url() + "/v2/mirror/data/big/blobs/" + layer.digest});
  REQUIRE(sum.exit_code == 0);
  CHECK(sum.out.substr(0, 64) == layer.digest.substr(7));
  // Bounded memory: a fraction of a 5 GiB blob, independent of it.
  CHECK(packed.result.peak_rss_kib < 512 * 1024);
  CHECK(pushed.result.peak_rss_kib < 512 * 1024);
}

} // TEST_SUITE
