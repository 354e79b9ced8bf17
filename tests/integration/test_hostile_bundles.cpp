// Hostile bundles: crafted inputs that ferry verify, extract, push and inspect must each
// refuse with the exit code of DESIGN §5 and a message naming the thing, without writing
// outside the output directory or leaving anything behind, in bounded memory and time.
// The tar headers and zstd frames are written by hand here, so that they can say what no
// archiver would.
// SPDX-License-Identifier: Apache-2.0
#include "common/registry_fixture.hpp"
#include "support/harness.hpp"

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>

namespace fs = std::filesystem;
using namespace ferry::itest;
using ferry::test::RegistryServer;
using nlohmann::json;

namespace {

const std::vector<std::string> k_tools = {"umoci", "skopeo", "openssl", "docker-registry"};
constexpr int k_ok = 0;
constexpr int k_usage = 2;
constexpr int k_integrity = 3;

// Generous bounds that a bomb still breaks: ferry refuses each of these bundles in some
// 20 MiB and well under a second (AddressSanitizer takes about three times as much of
// both), while what the bombs hold, decompressed or kept, is gigabytes and minutes.
constexpr long k_max_rss_kib = 512 * 1024;
constexpr double k_max_seconds = 10.0;

// 8 GiB - 512: the largest multiple of 512 an octal ustar size field holds.
constexpr std::uint64_t k_huge = (std::uint64_t{1} << 33) - 512;

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  REQUIRE(EVP_Digest(bytes.data(), bytes.size(), md, &n, EVP_sha256(), nullptr) == 1);
  static constexpr char k_hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out += k_hex[md[i] >> 4];
    out += k_hex[md[i] & 0x0f];
  }
  return out;
}

std::string blob_path(const std::string& digest) { return "blobs/sha256/" + digest.substr(7); }

// --- tar, by hand (POSIX ustar: IEEE 1003.1-2008, pax interchange format) -------------

struct Header {
  std::string name;           // the 100-byte name field (cut at 100)
  std::uint64_t size = 0;     // octal, up to 8 GiB - 1
  char type = '0';            // '0' file, '1' hard link, '2' symlink, '3' character device, '4' block
                              // device, '5' directory, '6' FIFO, 'x' pax header, 'L' GNU long name
  std::string link = {};      // link target (cut at 100)
  std::string prefix = {};    // the 155-byte ustar prefix, joined to name with '/' by readers
};

std::string header_block(const Header& h) {
  std::string b(512, '\0');
  auto put = [&](std::size_t at, std::size_t width, const std::string& text) {
    std::memcpy(b.data() + at, text.data(), std::min(width, text.size()));
  };
  auto octal = [&](std::size_t at, std::size_t width, std::uint64_t value) {
    char text[32];
    std::snprintf(text, sizeof text, "%0*llo", static_cast<int>(width - 1), static_cast<unsigned long long>(value));
    put(at, width - 1, text);
  };
  put(0, 100, h.name);
  octal(100, 8, 0644);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, h.size);
  octal(136, 12, 0);
  b[156] = h.type;
  put(157, 100, h.link);
  put(257, 6, std::string("ustar\0", 6));
  put(263, 2, "00");
  put(345, 155, h.prefix);
  // The checksum counts its own field as eight spaces; written as six digits, NUL, space.
  std::memset(b.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (const char c : b) sum += static_cast<unsigned char>(c);
  char text[8];
  std::snprintf(text, sizeof text, "%06o", sum);
  std::memcpy(b.data() + 148, text, 7);
  return b;
}

std::string padded(std::string data) {
  data.resize((data.size() + 511) / 512 * 512, '\0');
  return data;
}

std::string file_entry(const std::string& name, const std::string& data) {
  return header_block({name, data.size()}) + padded(data);
}

// A pax extended header ('x'): its records apply to the entry after it.
std::string pax_header(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string body;
  for (const auto& [key, value] : records) {
    const std::string record = " " + key + "=" + value + "\n";
    std::size_t n = record.size() + 1; // the length counts its own digits
    while (std::to_string(n).size() + record.size() != n) ++n;
    body += std::to_string(n) + record;
  }
  return header_block({"PaxHeader", body.size(), 'x'}) + padded(body);
}

// A GNU long name ('L'): the name of the entry after it.
std::string gnu_long_name(const std::string& name) {
  return header_block({"././@LongLink", name.size() + 1, 'L'}) + padded(name + '\0');
}

const std::string k_end_blocks(1024, '\0');

// --- zstd frames, by hand (RFC 8878 §3.1.1) ------------------------------------------

constexpr std::size_t k_block = 128 << 10;

// No checksum, no content size, a 128 KiB window (exponent 7): blocks of up to 128 KiB.
std::string frame_header() { return std::string("\x28\xb5\x2f\xfd\x00\x38", 6); }

void block_header(std::string& out, bool last, unsigned type, std::size_t size) {
  const auto v = static_cast<std::uint32_t>((last ? 1u : 0u) | (type << 1) | (size << 3));
  out += static_cast<char>(v & 0xff);
  out += static_cast<char>((v >> 8) & 0xff);
  out += static_cast<char>((v >> 16) & 0xff);
}

// `data` in raw (stored) blocks.
std::string raw_frame(const std::string& data) {
  std::string out = frame_header();
  if (data.empty()) block_header(out, true, 0, 0);
  for (std::size_t at = 0; at < data.size(); at += k_block) {
    const std::size_t n = std::min(k_block, data.size() - at);
    block_header(out, at + n == data.size(), 0, n);
    out.append(data, at, n);
  }
  return out;
}

// `size` zero bytes in RLE blocks: 4 bytes per 128 KiB, 256 KiB per 8 GiB.
std::string zero_frame(std::uint64_t size) {
  std::string out = frame_header();
  while (size > 0) {
    const std::uint64_t n = std::min<std::uint64_t>(k_block, size);
    size -= n;
    block_header(out, size == 0, 1, static_cast<std::size_t>(n));
    out += '\0';
  }
  return out;
}

// --- the bundle under attack --------------------------------------------------------

// A signed bundle of the fixtures, taken apart, and a registry to push hostile ones to.
struct Site {
  TestDir dir;
  Fixtures f;
  fs::path good;
  std::vector<TarItem> items; // ferry.json, ferry.json.sig, oci-layout, index.json, blobs
  json descriptor;            // ferry.json
  std::unique_ptr<RegistryServer> registry;

  const TarItem& item(const std::string& path) const {
    for (const auto& i : items) {
      if (i.path == path) return i;
    }
    FAIL("no entry " << path);
    return items.front();
  }
  std::string image_digest(const std::string& ref) const {
    for (const auto& i : descriptor["images"]) {
      if (i["ref"] == ref) return i["digest"];
    }
    FAIL("no image " << ref);
    return {};
  }
  json manifest(const std::string& digest) const { return json::parse(item(blob_path(digest)).data); }
};

enum class Push { yes, no };

std::unique_ptr<Site> make_site(Push push) {
  auto s = std::make_unique<Site>();
  s->f = make_fixtures(s->dir.path());
  s->good = s->dir / "good.tar.zst";
  const RunResult r =
      run_ferry({"pack", "-f", s->f.manifest.string(), "-o", s->good.string(), "--key", s->f.key.string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  s->items = read_tar(s->good);
  REQUIRE(s->items.size() > 5);
  REQUIRE(s->items[0].path == "ferry.json");
  REQUIRE(s->items[1].path == "ferry.json.sig");
  s->descriptor = json::parse(s->items[0].data);
  if (push == Push::yes) s->registry = std::make_unique<RegistryServer>();
  return s;
}

// One tar piece per entry, then the end-of-archive blocks.
std::vector<std::string> pieces_of(const std::vector<TarItem>& items) {
  std::vector<std::string> pieces;
  for (const auto& i : items) pieces.push_back(file_entry(i.path, i.data));
  pieces.push_back(k_end_blocks);
  return pieces;
}

// Each piece its own zstd frame, as ferry writes bundles (so push reads them in parallel).
std::vector<std::string> frames_of(const std::vector<std::string>& pieces) {
  std::vector<std::string> frames;
  for (const auto& p : pieces) frames.push_back(raw_frame(p));
  return frames;
}

fs::path write_bundle(const Site& s, const std::string& name, const std::vector<std::string>& frames) {
  std::string bytes;
  for (const auto& f : frames) bytes += f;
  const fs::path file = s.dir / (name + ".tar.zst");
  write_file(file, bytes);
  return file;
}

// `descriptor` as ferry.json, signed with the release key by openssl (DESIGN §2: the
// signature is verifiable, and so makeable, without ferry), so that the reader trusts it
// and goes on to the deeper checks.
void sign_with(const Site& s, std::vector<TarItem>& items, const std::string& descriptor, const fs::path& key) {
  const fs::path text = s.dir / "to-sign";
  const fs::path signature = s.dir / "signature";
  write_file(text, descriptor);
  must({"openssl", "pkeyutl", "-sign", "-inkey", key.string(), "-rawin", "-in", text.string(), "-out",
        signature.string()});
  std::string base64 = must({"openssl", "base64", "-A", "-in", signature.string()});
  while (!base64.empty() && (base64.back() == '\n' || base64.back() == '\r')) base64.pop_back();
  items[0].data = descriptor;
  items[1].data = base64;
}

void resign(const Site& s, std::vector<TarItem>& items, const json& descriptor) {
  sign_with(s, items, descriptor.dump() + "\n", s.f.key);
}

// index.json replaced by `bytes`, ferry.json's layout table updated to it and signed.
std::vector<TarItem> with_index(const Site& s, const std::string& bytes) {
  std::vector<TarItem> items = s.items;
  for (auto& i : items) {
    if (i.path == "index.json") i.data = bytes;
  }
  json d = s.descriptor;
  for (auto& e : d["layout"]) {
    if (e["path"] == "index.json") {
      e["digest"] = "sha256:" + sha256_hex(bytes);
      e["size"] = bytes.size();
    }
  }
  resign(s, items, d);
  return items;
}

// Manifest `old` replaced by `bytes`: its entry, ferry.json's blob table and image record,
// and index.json follow the new digest, and ferry.json is signed again, so that the
// reader gets as far as reading the manifest.
std::vector<TarItem> with_manifest(const Site& s, const std::string& old, const std::string& bytes) {
  const std::string digest = "sha256:" + sha256_hex(bytes);
  std::vector<TarItem> items = s.items;
  json d = s.descriptor;
  for (auto& i : items) {
    if (i.path == blob_path(old)) {
      i.path = blob_path(digest);
      i.data = bytes;
    }
  }
  for (auto& b : d["blobs"]) {
    if (b["digest"] == old) {
      b["digest"] = digest;
      b["size"] = bytes.size();
    }
  }
  for (auto& i : d["images"]) {
    if (i["digest"] == old) i["digest"] = digest;
  }
  json index = json::parse(s.item("index.json").data);
  for (auto& m : index["manifests"]) {
    if (m["digest"] == old) {
      m["digest"] = digest;
      m["size"] = bytes.size();
    }
  }
  const std::string index_bytes = index.dump();
  for (auto& i : items) {
    if (i.path == "index.json") i.data = index_bytes;
  }
  for (auto& e : d["layout"]) {
    if (e["path"] == "index.json") {
      e["digest"] = "sha256:" + sha256_hex(index_bytes);
      e["size"] = index_bytes.size();
    }
  }
  resign(s, items, d);
  return items;
}

// JSON text with the string value "@RAW@" replaced by `raw` (which JSON libraries would
// not write: 1e400, 18446744073709551616, deep nesting).
std::string with_raw(const json& doc, const std::string& raw) {
  std::string text = doc.dump();
  const auto at = text.find("\"@RAW@\"");
  REQUIRE(at != std::string::npos);
  return text.replace(at, 7, raw);
}

std::string nested(std::size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

// --- running ferry against a case ---------------------------------------------------

// Where the hostile part is: inspect reads only the head of a bundle (DESIGN §4), so it
// must refuse a hostile head and show the head of a bundle whose hostile part is later.
enum class Part { head, body };

struct Case {
  std::string name;                 // file name and push prefix: lower-case, digits, '-'
  fs::path bundle;
  Part part = Part::body;
  std::vector<std::string> says = {};         // in what each refusal prints
  fs::path canary = {};                       // where the bundle aims, outside the output directory
  std::vector<std::string> unkeyed_says = {}; // head cases: inspect without --pubkey refuses, saying this
  // push reads a bundle one zstd frame per entry, several at once: where that meets the
  // hostile part first, it may say something else (still naming the thing).
  std::vector<std::string> push_says = {};
  // What follows the last blob push needs: push stops reading there once the target
  // holds everything (DESIGN §4, resume), so it refuses only what it happens to read.
  bool after_push_reads = false;
};

// Runs ferry; checks it was not killed (a crash or a stack overflow), its time and its
// peak memory.
RunResult bounded(const std::vector<std::string>& args, const RunOptions& options = {}) {
  const auto start = std::chrono::steady_clock::now();
  RunResult r = run_ferry(args, options);
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  INFO("ferry ", args.front(), " said: ", r.err);
  CHECK_MESSAGE(r.exit_code < 128, "killed by signal ", r.exit_code - 128);
  CHECK_MESSAGE(took.count() < k_max_seconds, "took ", took.count(), " s");
  CHECK_MESSAGE(r.peak_rss_kib < k_max_rss_kib, "peak resident set ", r.peak_rss_kib, " KiB");
  return r;
}

void check_said(const RunResult& r, int code, const std::vector<std::string>& says, const std::string& command) {
  INFO("ferry ", command, " said: ", r.err);
  CHECK(r.exit_code == code);
  for (const auto& s : says) CHECK_MESSAGE(contains(r.err, s), "expected: ", s);
}

// Manifests the registry holds under `prefix`: none may appear for a refused bundle
// (blobs uploaded before the refusal are unreferenced, as after an interrupted push).
std::vector<std::string> manifests_under(const RegistryServer& registry, const std::string& prefix) {
  std::vector<std::string> found;
  const fs::path root = registry.dir() / "storage/docker/registry/v2/repositories" / prefix;
  if (!fs::exists(root)) return found;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.path().filename() == "_manifests") found.push_back(e.path().string());
  }
  return found;
}

void check_refused(const Site& s, const Case& c) {
  CAPTURE(c.name);
  const std::string pub = s.f.pub.string();
  check_said(bounded({"verify", c.bundle.string(), "--pubkey", pub}), k_integrity, c.says, "verify");

  // Extraction: OUT is never created, its parent keeps nothing (no staging directory),
  // and nothing appears where the bundle aimed.
  const fs::path parent = s.dir / ("extract-" + c.name);
  fs::create_directories(parent);
  const fs::path out = parent / "out";
  check_said(bounded({"extract", c.bundle.string(), "-o", out.string(), "--pubkey", pub}), k_integrity, c.says,
             "extract");
  CHECK_FALSE(fs::exists(out));
  CHECK_MESSAGE(fs::is_empty(parent), "extract left something in ", parent);
  if (!c.canary.empty()) CHECK_FALSE(fs::exists(fs::symlink_status(c.canary)));

  if (s.registry) {
    const std::string prefix = "hostile/" + c.name;
    const RunResult pushed = bounded({"push", c.bundle.string(), "--registry", s.registry->host() + "/" + prefix,
                                      "--pubkey", pub, "--plain-http", "--state-dir",
                                      (s.dir / ("state-" + c.name)).string()});
    if (c.after_push_reads && pushed.exit_code == k_ok) {
      // Everything it pushed was verified; it says it did not read the rest.
      CHECK_MESSAGE(contains(pushed.err, "the rest of it was not read"), pushed.err);
    } else {
      check_said(pushed, k_integrity, c.push_says.empty() ? c.says : c.push_says, "push");
      std::string manifests;
      for (const auto& m : manifests_under(*s.registry, prefix)) manifests += " " + m;
      CHECK_MESSAGE(manifests.empty(), "push left manifests:", manifests);
    }
  }

  const RunResult inspected = bounded({"inspect", c.bundle.string(), "--pubkey", pub});
  if (c.part == Part::head) {
    check_said(inspected, k_integrity, c.says, "inspect");
    const RunResult unkeyed = bounded({"inspect", c.bundle.string()});
    if (!c.unkeyed_says.empty()) {
      check_said(unkeyed, k_integrity, c.unkeyed_says, "inspect (no --pubkey)");
    } else {
      CHECK((unkeyed.exit_code == k_ok || unkeyed.exit_code == k_integrity));
    }
  } else {
    INFO("ferry inspect said: ", inspected.err);
    CHECK(inspected.exit_code == k_ok);
  }
}

// Temporaries ferry names .ferry-*, .pack-*, .extract-* must all be gone.
void check_no_leftovers(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    for (const char* stem : {".ferry-", ".pack-", ".extract-"}) {
      CHECK_MESSAGE(name.find(stem) == std::string::npos, "leftover ", e.path());
    }
  }
}

// `piece` (raw tar: headers and data) inserted after ferry.json, its signature and
// oci-layout, where a reader meets it before any blob.
fs::path with_piece(const Site& s, const std::string& name, const std::string& piece) {
  std::vector<std::string> pieces = pieces_of(s.items);
  pieces.insert(pieces.begin() + 3, piece);
  return write_bundle(s, name, frames_of(pieces));
}

} // namespace

TEST_SUITE("hostile-bundles") {

TEST_CASE("entry paths that leave the output directory are refused by verify, extract, push and inspect") {
  require_tools(k_tools);
  const auto s = make_site(Push::yes);
  const fs::path canary = s->dir / "canary";
  // From OUT's staging directory (or OUT) four levels up is the test directory.
  const std::string climb = "blobs/sha256/../../../../canary";
  const std::string long_climb = "blobs/sha256/" + std::string(120, 'a') + "/../../../../../canary";
  const std::string long_name = "blobs/sha256/" + std::string(300, 'a');
  std::string beyond_path_max = "blobs/";
  for (int i = 0; i < 2500; ++i) beyond_path_max += "a/";
  beyond_path_max += "x";

  const std::vector<Case> cases = {
      {"pax-path-climbs", with_piece(*s, "pax-path-climbs", pax_header({{"path", climb}}) + file_entry("harmless", "x")),
       Part::body, {"climbs out with '..'", climb}, canary},
      {"pax-path-absolute",
       with_piece(*s, "pax-path-absolute", pax_header({{"path", canary.string()}}) + file_entry("harmless", "x")),
       Part::body, {"absolute path", canary.string()}, canary},
      {"ustar-prefix-climbs",
       with_piece(*s, "ustar-prefix-climbs",
                  header_block({.name = "../../canary", .size = 1, .prefix = "blobs/sha256/../.."}) + padded("x")),
       Part::body, {"climbs out with '..'", climb}, canary},
      {"ustar-prefix-absolute",
       with_piece(*s, "ustar-prefix-absolute",
                  header_block({.name = "canary", .size = 1, .prefix = s->dir.path().string()}) + padded("x")),
       Part::body, {"absolute path", canary.string()}, canary},
      {"gnu-long-name-climbs",
       with_piece(*s, "gnu-long-name-climbs", gnu_long_name(long_climb) + file_entry("harmless", "x")), Part::body,
       {"climbs out with '..'", long_climb.substr(0, 150)}, canary},
      {"long-name-unlisted",
       with_piece(*s, "long-name-unlisted", pax_header({{"path", long_name}}) + file_entry("harmless", "x")),
       Part::body, {"is not listed in ferry.json", long_name.substr(0, 200) + "…"}},
      {"name-beyond-path-max",
       with_piece(*s, "name-beyond-path-max", pax_header({{"path", beyond_path_max}}) + file_entry("harmless", "x")),
       Part::body, {"is not listed in ferry.json", beyond_path_max.substr(0, 200) + "…"}},
  };
  for (const auto& c : cases) check_refused(*s, c);
  check_no_leftovers(s->dir.path());
}

TEST_CASE("symlinks, hard links, devices, FIFOs and directories are refused by verify, extract, push and inspect") {
  require_tools(k_tools);
  const auto s = make_site(Push::yes);
  const fs::path canary = s->dir / "canary";
  const std::string unlisted = "blobs/sha256/" + std::string(64, 'd');
  std::vector<std::string> symlink_head = pieces_of(s->items);
  symlink_head[0] = header_block({.name = "ferry.json", .type = '2', .link = canary.string()});

  const std::vector<Case> cases = {
      {"symlink-as-ferry-json", write_bundle(*s, "symlink-as-ferry-json", frames_of(symlink_head)), Part::head,
       {"bundle entry ferry.json is a symbolic link to " + canary.string()}, canary,
       {"bundle entry ferry.json is a symbolic link"}},
      {"symlink-out",
       with_piece(*s, "symlink-out", header_block({.name = unlisted, .type = '2', .link = canary.string()})),
       Part::body, {"bundle entry " + unlisted + " is a symbolic link to " + canary.string()}, canary},
      {"hardlink-climbs",
       with_piece(*s, "hardlink-climbs", header_block({.name = unlisted, .type = '1', .link = "../../../../canary"})),
       Part::body, {"bundle entry " + unlisted + " is a hard link to ../../../../canary"}, canary},
      {"character-device", with_piece(*s, "character-device", header_block({.name = unlisted, .type = '3'})),
       Part::body, {"bundle entry " + unlisted + " is a character device"}},
      {"block-device", with_piece(*s, "block-device", header_block({.name = unlisted, .type = '4'})), Part::body,
       {"bundle entry " + unlisted + " is a block device"}},
      {"fifo", with_piece(*s, "fifo", header_block({.name = unlisted, .type = '6'})), Part::body,
       {"bundle entry " + unlisted + " is a FIFO"}},
      {"directory", with_piece(*s, "directory", header_block({.name = "blobs/sha256/", .type = '5'})), Part::body,
       {"bundle entry blobs/sha256/ is a directory"}},
  };
  for (const auto& c : cases) check_refused(*s, c);
  check_no_leftovers(s->dir.path());
}

TEST_CASE("zstd decompression bombs are refused early, in bounded memory and time") {
  require_tools(k_tools);
  const auto s = make_site(Push::yes);
  const std::vector<std::string> pieces = pieces_of(s->items);
  const std::vector<std::string> frames = frames_of(pieces);
  // A bomb entry (header, then k_huge zeros in a few hundred KiB) where the reader meets
  // it after ferry.json, its signature and oci-layout; the rest of the bundle follows.
  auto bomb_at_3 = [&](const std::string& name, const std::string& header) {
    std::vector<std::string> out(frames.begin(), frames.begin() + 3);
    out.push_back(raw_frame(header));
    out.push_back(zero_frame(k_huge));
    out.insert(out.end(), frames.begin() + 3, frames.end());
    return write_bundle(*s, name, out);
  };
  const std::string listed = s->items[4].path;
  const std::string unlisted = "blobs/sha256/" + std::string(64, 'c');
  const std::string huge = std::to_string(k_huge);

  // ferry.json of 8 GiB of zeros: refused at its header.
  std::vector<std::string> descriptor_bomb = {raw_frame(header_block({"ferry.json", k_huge})), zero_frame(k_huge)};
  descriptor_bomb.insert(descriptor_bomb.end(), frames.begin() + 1, frames.end());
  // ferry.json of 60 MiB of zeros, under the limit: read, and refused by its signature.
  constexpr std::uint64_t k_zeros = 60u << 20;
  std::vector<std::string> descriptor_zeros = {raw_frame(header_block({"ferry.json", k_zeros})), zero_frame(k_zeros)};
  descriptor_zeros.insert(descriptor_zeros.end(), frames.begin() + 1, frames.end());
  // ferry.json of 20 MiB of empty lists, signed: as a document, millions of values.
  std::vector<TarItem> values_bomb = s->items;
  std::string lists = "[";
  for (int i = 0; i < (20 << 20) / 3; ++i) lists += "[],";
  lists += "[]]";
  json d = s->descriptor;
  d["manifest"]["x"] = "@RAW@";
  sign_with(*s, values_bomb, with_raw(d, lists) + "\n", s->f.key);
  // 64 GiB of zeros after the end-of-archive blocks.
  std::vector<std::string> trailing_zeros = frames;
  for (int i = 0; i < 8; ++i) trailing_zeros.push_back(zero_frame(k_huge + 512));

  std::vector<Case> cases = {
      {"ferry-json-8-gib", write_bundle(*s, "ferry-json-8-gib", descriptor_bomb), Part::head,
       {"ferry.json in ", "is " + huge + " bytes, more than the limit of"}, {},
       {"is " + huge + " bytes, more than the limit of"}},
      {"ferry-json-60-mib-zeros", write_bundle(*s, "ferry-json-60-mib-zeros", descriptor_zeros), Part::head,
       {"the signature of ferry.json", "does not verify"}, {}, {"ferry.json is not valid JSON"}},
      {"ferry-json-values", write_bundle(*s, "ferry-json-values", frames_of(pieces_of(values_bomb))), Part::head,
       {"ferry.json holds more than 1000000 JSON values"}, {}, {"ferry.json holds more than 1000000 JSON values"}},
      {"listed-entry-8-gib", bomb_at_3("listed-entry-8-gib", header_block({listed, k_huge})), Part::body,
       {"bundle entry " + listed + " is " + huge + " bytes, ferry.json says"}},
      {"unlisted-entry-8-gib", bomb_at_3("unlisted-entry-8-gib", header_block({unlisted, k_huge})), Part::body,
       {"bundle entry " + unlisted + " is not listed in ferry.json"}},
      // libarchive refuses these at their header ("Special header too large"); push reads
      // the frame alone, so its reader has not seen oci-layout.
      {"pax-header-8-gib", bomb_at_3("pax-header-8-gib", header_block({"PaxHeader", k_huge, 'x'})), Part::body,
       {"pax-header-8-gib.tar.zst: reading the header after entry oci-layout", "too large"}, {}, {},
       {"pax-header-8-gib.tar.zst: reading the first header", "too large"}},
      {"gnu-long-name-8-gib", bomb_at_3("gnu-long-name-8-gib", header_block({"././@LongLink", k_huge, 'L'})),
       Part::body, {"gnu-long-name-8-gib.tar.zst: reading the header after entry oci-layout", "too large"}, {}, {},
       {"gnu-long-name-8-gib.tar.zst: reading the first header", "too large"}},
      {"zeros-after-end-64-gib", write_bundle(*s, "zeros-after-end-64-gib", trailing_zeros), Part::body,
       {"holds more than 1048576 bytes after the end of its archive"}},
  };
  cases.back().after_push_reads = true;
  for (const auto& c : cases) check_refused(*s, c);
  check_no_leftovers(s->dir.path());
}

TEST_CASE("sizes that disagree between tar header, blob table and data are refused") {
  require_tools(k_tools);
  const auto s = make_site(Push::yes);
  // The config of app1: a few hundred bytes, used by one image.
  const std::string config = s->manifest(s->image_digest("example.com/team/app1:1.0"))["config"]["digest"];
  const std::string path = blob_path(config);
  const std::string data = s->item(path).data;
  const std::uint64_t size = data.size();
  REQUIRE(size > 100);
  auto replaced = [&](const std::string& name, const std::string& piece) {
    std::vector<std::string> pieces = pieces_of(s->items);
    for (std::size_t i = 0; i < s->items.size(); ++i) {
      if (s->items[i].path == path) pieces[i] = piece;
    }
    return write_bundle(*s, name, frames_of(pieces));
  };
  auto table_says = [&](const std::string& name, std::uint64_t claimed) {
    std::vector<TarItem> items = s->items;
    json d = s->descriptor;
    for (auto& b : d["blobs"]) {
      if (b["digest"] == config) b["size"] = claimed;
    }
    resign(*s, items, d);
    return write_bundle(*s, name, frames_of(pieces_of(items)));
  };
  const std::string is = "bundle entry " + path + " is ";
  const std::string table = " bytes, ferry.json says ";
  // The manifest naming the config comes first: its size disagrees with the table.
  const std::string named = " names " + config + " with " + std::to_string(size) + " bytes, but ferry.json says ";

  const std::vector<Case> cases = {
      {"header-over-table", replaced("header-over-table", file_entry(path, data + "extra")), Part::body,
       {is + std::to_string(size + 5) + table + std::to_string(size)}},
      {"header-under-table", replaced("header-under-table", file_entry(path, data.substr(0, size - 5))), Part::body,
       {is + std::to_string(size - 5) + table + std::to_string(size)}},
      // The header says `size`, the data that follows is shorter: the reader takes the
      // padding (and whatever follows) for data, and the digest tells.
      {"data-under-header",
       replaced("data-under-header", header_block({path, size}) + padded(data.substr(0, size / 2))), Part::body,
       {"bundle entry " + path + " has digest", "expected " + config}},
      // The data is longer than the header says: the reader finds the next header in it.
      {"data-over-header",
       replaced("data-over-header", header_block({path, size}) + padded(data + std::string(700, 'x'))), Part::body,
       {"reading the header after entry " + path}},
      {"table-over-data", table_says("table-over-data", size + 5), Part::body, {named + std::to_string(size + 5)}},
      {"table-under-data", table_says("table-under-data", size - 5), Part::body, {named + std::to_string(size - 5)}},
  };
  for (const auto& c : cases) check_refused(*s, c);
  check_no_leftovers(s->dir.path());
}

TEST_CASE("sizes beyond 64 bits, negative, fractional or text in ferry.json are refused") {
  require_tools(k_tools);
  const auto s = make_site(Push::yes);
  // A layer of app1: only its manifest names it.
  const std::string blob = s->manifest(s->image_digest("example.com/team/app1:1.0"))["layers"].back()["digest"];
  std::size_t at = 0;
  while (s->descriptor["blobs"][at]["digest"] != blob) ++at;
  auto with_size = [&](const std::string& name, const std::string& raw) {
    std::vector<TarItem> items = s->items;
    json d = s->descriptor;
    d["blobs"][at]["size"] = "@RAW@";
    sign_with(*s, items, with_raw(d, raw) + "\n", s->f.key);
    return write_bundle(*s, name, frames_of(pieces_of(items)));
  };
  const std::string field = "ferry.json: document.blobs[" + std::to_string(at) +
                            "].size is not a non-negative whole number that fits in 64 bits";
  std::vector<TarItem> split = s->items;
  json d = s->descriptor;
  d["volumes"] = {{"count", "@RAW@"}, {"limit", 1}};
  sign_with(*s, split, with_raw(d, "18446744073709551615") + "\n", s->f.key);

  const std::vector<Case> cases = {
      // The manifest, read before the layer, names it with its real size.
      {"size-u64-max", with_size("size-u64-max", "18446744073709551615"), Part::body,
       {"names " + blob + " with ", " bytes, but ferry.json says 18446744073709551615"}},
      {"size-2-pow-64", with_size("size-2-pow-64", "18446744073709551616"), Part::head, {field}, {}, {field}},
      {"size-negative", with_size("size-negative", "-1"), Part::head, {field}, {}, {field}},
      {"size-1e400", with_size("size-1e400", "1e400"), Part::head, {"ferry.json is not valid JSON", "1e400"}, {},
       {"ferry.json is not valid JSON"}},
      {"size-text", with_size("size-text", "\"515\""), Part::head, {field}, {}, {field}},
      {"size-fraction", with_size("size-fraction", "1.5"), Part::head, {field}, {}, {field}},
      {"volume-count-u64-max", write_bundle(*s, "volume-count-u64-max", frames_of(pieces_of(split))), Part::head,
       {"ferry.json: volumes.count is 18446744073709551615, expected 1 to 1000"}, {},
       {"volumes.count is 18446744073709551615"}},
  };
  for (const auto& c : cases) check_refused(*s, c);
  check_no_leftovers(s->dir.path());
}

TEST_CASE("sizes beyond 64 bits, negative or text in index.json and in a manifest are refused") {
  require_tools(k_tools);
  const auto s = make_site(Push::yes);
  const std::string app1 = s->image_digest("example.com/team/app1:1.0");
  const json manifest = s->manifest(app1);
  const std::string layer = manifest["layers"][0]["digest"];
  auto layer_size = [&](const std::string& name, const std::string& raw) {
    json m = manifest;
    m["layers"][0]["size"] = "@RAW@";
    return write_bundle(*s, name, frames_of(pieces_of(with_manifest(*s, app1, with_raw(m, raw)))));
  };
  auto index_size = [&](const std::string& name, const std::string& raw) {
    json index = json::parse(s->item("index.json").data);
    for (auto& m : index["manifests"]) {
      if (m["digest"] == app1) m["size"] = "@RAW@";
    }
    return write_bundle(*s, name, frames_of(pieces_of(with_index(*s, with_raw(index, raw)))));
  };
  const std::string named = " names " + layer + " with 18446744073709551615 bytes, but ferry.json says ";

  const std::vector<Case> cases = {
      {"manifest-size-u64-max", layer_size("manifest-size-u64-max", "18446744073709551615"), Part::body, {named}},
      {"manifest-size-2-pow-64", layer_size("manifest-size-2-pow-64", "18446744073709551616"), Part::body,
       {"layers[0].size is 1.8446744073709552e+19, expected a non-negative integer that fits in 64 bits"}},
      {"manifest-size-negative", layer_size("manifest-size-negative", "-1"), Part::body,
       {"layers[0].size is -1, expected a non-negative integer"}},
      {"manifest-size-1e400", layer_size("manifest-size-1e400", "1e400"), Part::body,
       {"is not valid JSON", "1e400"}},
      {"manifest-size-text", layer_size("manifest-size-text", "\"12\""), Part::body,
       {"layers[0].size is a string (\"12\"), expected a non-negative integer"}},
      {"index-size-u64-max", index_size("index-size-u64-max", "18446744073709551615"), Part::body,
       {"index.json of bundle", " names " + app1 + " with 18446744073709551615 bytes, but ferry.json says"}},
      {"index-size-negative", index_size("index-size-negative", "-1"), Part::body,
       {"index.json of bundle", "size is -1, expected a non-negative integer"}},
      {"index-size-1e400", index_size("index-size-1e400", "1e400"), Part::body,
       {"index.json of bundle", "is not valid JSON", "1e400"}},
  };
  for (const auto& c : cases) check_refused(*s, c);
  check_no_leftovers(s->dir.path());
}

TEST_CASE("JSON nested 100 000 levels deep in ferry.json, index.json or a manifest is refused without a stack overflow") {
  require_tools(k_tools);
  const auto s = make_site(Push::yes);
  const std::string deep = nested(100000);
  json d = s->descriptor;
  d["manifest"]["deep"] = "@RAW@";
  const std::string deep_descriptor = with_raw(d, deep) + "\n";
  std::vector<TarItem> signed_deep = s->items;
  sign_with(*s, signed_deep, deep_descriptor, s->f.key);
  // The same ferry.json, with the signature of the good one: it is parsed before anyone
  // knows it is not signed, to name the signer it claims.
  std::vector<TarItem> unsigned_deep = s->items;
  unsigned_deep[0].data = deep_descriptor;

  const std::string app1 = s->image_digest("example.com/team/app1:1.0");
  json manifest = s->manifest(app1);
  manifest["annotations"] = {{"deep", "@RAW@"}};
  json index = json::parse(s->item("index.json").data);
  index["annotations"] = {{"deep", "@RAW@"}};

  const std::vector<Case> cases = {
      {"ferry-json-deep", write_bundle(*s, "ferry-json-deep", frames_of(pieces_of(signed_deep))), Part::head,
       {"ferry.json nests JSON more than 128 levels deep"}, {}, {"ferry.json nests JSON more than 128 levels deep"}},
      {"ferry-json-deep-unsigned", write_bundle(*s, "ferry-json-deep-unsigned", frames_of(pieces_of(unsigned_deep))),
       Part::head, {"the signature of ferry.json", "does not verify"}, {},
       {"ferry.json nests JSON more than 128 levels deep"}},
      {"index-json-deep",
       write_bundle(*s, "index-json-deep", frames_of(pieces_of(with_index(*s, with_raw(index, deep))))), Part::body,
       {"index.json of bundle", "nests JSON more than 64 levels deep"}},
      {"manifest-deep",
       write_bundle(*s, "manifest-deep", frames_of(pieces_of(with_manifest(*s, app1, with_raw(manifest, deep))))),
       Part::body, {"manifest sha256:", "nests JSON more than 64 levels deep"}},
  };
  for (const auto& c : cases) check_refused(*s, c);
  check_no_leftovers(s->dir.path());
}

TEST_CASE("index.json naming a missing or unrelated manifest, and manifests naming themselves, are refused") {
  require_tools(k_tools);
  const auto s = make_site(Push::yes);
  const std::string app1 = s->image_digest("example.com/team/app1:1.0");
  const json manifest = s->manifest(app1);
  const std::string layer = manifest["layers"].back()["digest"];
  const std::uint64_t layer_size = manifest["layers"].back()["size"];
  const std::string missing = "sha256:" + sha256_hex("no such manifest");
  auto index_points = [&](const std::string& name, const std::string& digest, std::uint64_t size) {
    json index = json::parse(s->item("index.json").data);
    for (auto& m : index["manifests"]) {
      if (m["digest"] == app1) {
        m["digest"] = digest;
        m["size"] = size;
      }
    }
    return write_bundle(*s, name, frames_of(pieces_of(with_index(*s, index.dump()))));
  };
  // A manifest whose config is itself, and an index that lists itself, stored under the
  // digest they name (the only way to write one: no document contains its own digest).
  // ferry.json is the original, still validly signed.
  auto self_named = [&](const std::string& name, const std::string& digest, const std::string& bytes) {
    std::vector<TarItem> items = s->items;
    for (auto& i : items) {
      if (i.path == blob_path(digest)) i.data = bytes;
    }
    return write_bundle(*s, name, frames_of(pieces_of(items)));
  };
  const std::string original = s->item(blob_path(app1)).data;
  auto naming_itself = [&](const char* field) {
    json itself = manifest;
    json& slot = std::string(field) == "config" ? itself["config"] : itself["layers"][0];
    slot["digest"] = app1;
    slot["size"] = original.size();
    std::string bytes = itself.dump();
    REQUIRE(bytes.size() <= original.size());
    bytes.append(original.size() - bytes.size(), ' '); // the same size: the digest must tell
    return bytes;
  };
  const std::string multi = s->image_digest("example.com/team/multi:2.0");
  json index_itself = s->manifest(multi);
  index_itself["manifests"].push_back({{"mediaType", "application/vnd.oci.image.index.v1+json"},
                                       {"digest", multi},
                                       {"size", s->item(blob_path(multi)).data.size()}});

  const std::vector<Case> cases = {
      {"index-names-missing-manifest", index_points("index-names-missing-manifest", missing, 500), Part::body,
       {"index.json of bundle", "names " + missing + ", which is not in the bundle"}},
      {"index-names-layer-as-manifest", index_points("index-names-layer-as-manifest", layer, layer_size), Part::body,
       {"index.json of bundle", "names " + layer + " as a manifest",
        "ferry.json lists it as application/vnd.oci.image.layer"}},
      {"manifest-config-is-itself", self_named("manifest-config-is-itself", app1, naming_itself("config")), Part::body,
       {"bundle entry " + blob_path(app1) + " has digest", "expected " + app1}},
      {"manifest-layer-is-itself", self_named("manifest-layer-is-itself", app1, naming_itself("layer")), Part::body,
       {"bundle entry " + blob_path(app1) + " has digest", "expected " + app1}},
      {"index-lists-itself", self_named("index-lists-itself", multi, index_itself.dump()), Part::body,
       {"bundle entry " + blob_path(multi) + " is ", " bytes, ferry.json says "}},
  };
  for (const auto& c : cases) check_refused(*s, c);
  check_no_leftovers(s->dir.path());
}

TEST_CASE("signatures over other bytes or by an untrusted key, and other format versions, are refused") {
  require_tools(k_tools);
  const auto s = make_site(Push::yes);
  const std::string release_id = s->descriptor["signer"]["keyId"];
  REQUIRE(run_ferry({"keygen", "--out", (s->dir / "attacker").string()}).exit_code == 0);
  const fs::path attacker = s->dir / "attacker.key";
  const std::string attacker_id =
      "sha256:" + must({"sh", "-c", "openssl pkey -pubin -in '" + (s->dir / "attacker.pub").string() +
                                        "' -outform DER | sha256sum"})
                      .substr(0, 64);
  REQUIRE(attacker_id != release_id);

  // The release key's signature of another ferry.json, beside the original one.
  std::vector<TarItem> other_bytes = s->items;
  json renamed = s->descriptor;
  renamed["name"] = "not-demo";
  sign_with(*s, other_bytes, renamed.dump() + "\n", s->f.key);
  other_bytes[0].data = s->items[0].data;
  // Signed by the attacker, who names itself as the signer ...
  std::vector<TarItem> untrusted = s->items;
  json claims_attacker = s->descriptor;
  claims_attacker["signer"]["keyId"] = attacker_id;
  sign_with(*s, untrusted, claims_attacker.dump() + "\n", attacker);
  // ... or claims to be the release key.
  std::vector<TarItem> forged = s->items;
  sign_with(*s, forged, s->items[0].data, attacker);
  auto version = [&](const std::string& name, const json& value) {
    std::vector<TarItem> items = s->items;
    json d = s->descriptor;
    d["formatVersion"] = value;
    resign(*s, items, d);
    return write_bundle(*s, name, frames_of(pieces_of(items)));
  };

  const std::vector<Case> cases = {
      {"signature-of-other-bytes", write_bundle(*s, "signature-of-other-bytes", frames_of(pieces_of(other_bytes))),
       Part::head, {"the signature of ferry.json", "does not verify with the trusted key " + release_id}},
      {"signed-by-untrusted-key", write_bundle(*s, "signed-by-untrusted-key", frames_of(pieces_of(untrusted))),
       Part::head, {"is signed by key " + attacker_id + ", which is not among the trusted keys (" + release_id + ")"}},
      {"forged-release-signature", write_bundle(*s, "forged-release-signature", frames_of(pieces_of(forged))),
       Part::head, {"the signature of ferry.json", "does not verify with the trusted key " + release_id}},
      {"format-version-future", version("format-version-future", 2), Part::head,
       {"ferry.json has bundle format version 2; this ferry reads version 1"}, {}, {"format version 2"}},
      {"format-version-past", version("format-version-past", 0), Part::head,
       {"ferry.json has bundle format version 0; this ferry reads version 1"}, {}, {"format version 0"}},
      {"format-version-text", version("format-version-text", "1"), Part::head,
       {"ferry.json: document.formatVersion is not a whole number"}, {}, {"formatVersion is not a whole number"}},
  };
  for (const auto& c : cases) check_refused(*s, c);
  check_no_leftovers(s->dir.path());
}

TEST_CASE("data after the end-of-archive blocks is refused, zero padding is not") {
  require_tools(k_tools);
  const auto s = make_site(Push::yes);
  const std::vector<std::string> pieces = pieces_of(s->items);
  auto ending = [&](const std::string& name, const std::vector<std::string>& last) {
    std::vector<std::string> frames = frames_of(pieces);
    frames.pop_back(); // the end-of-archive frame
    frames.insert(frames.end(), last.begin(), last.end());
    return write_bundle(*s, name, frames);
  };
  const std::string unlisted = "blobs/sha256/" + std::string(64, 'e');
  // The last blob, moved after the end: every listed entry is still in the file.
  std::vector<std::string> moved(pieces.begin(), pieces.end() - 2);
  moved.push_back(k_end_blocks);
  moved.push_back(pieces[pieces.size() - 2]);
  moved.push_back(k_end_blocks);
  const std::string after = "holds data after the end of its archive";
  // push reads each zstd frame alone, several at once: it notices what follows the end
  // as a frame that is not tar, an entry ferry.json does not list, or a second end.

  // Zero padding, as GNU tar's 10240-byte records leave it, is read as the end.
  const fs::path padded_end = ending("padded", {raw_frame(k_end_blocks + std::string(10240 - 1024, '\0'))});
  const RunResult v = bounded({"verify", padded_end.string(), "--pubkey", s->f.pub.string()});
  CHECK_MESSAGE(v.exit_code == k_ok, v.err);
  const RunResult x =
      bounded({"extract", padded_end.string(), "-o", (s->dir / "padded-out").string(), "--pubkey", s->f.pub.string()});
  CHECK_MESSAGE(x.exit_code == k_ok, x.err);
  CHECK(fs::exists(s->dir / "padded-out/index.json"));

  std::vector<Case> cases = {
      {"text-in-end-frame", ending("text-in-end-frame", {raw_frame(k_end_blocks + "not the end")}), Part::body,
       {after}},
      {"frame-after-end", ending("frame-after-end", {raw_frame(k_end_blocks), raw_frame(padded("trailing"))}),
       Part::body, {after}, {}, {}, {"holds a zstd frame that is not part of its tar stream"}},
      {"archive-after-end",
       ending("archive-after-end", {raw_frame(k_end_blocks), raw_frame(file_entry(unlisted, "x") + k_end_blocks)}),
       Part::body, {after}, {}, {}, {"bundle entry " + unlisted + " is not listed in ferry.json"}},
      {"listed-entry-after-end", write_bundle(*s, "listed-entry-after-end", frames_of(moved)), Part::body, {after}, {},
       {}, {"has a second end-of-archive frame"}},
  };
  for (auto& c : cases) c.after_push_reads = true;
  for (const auto& c : cases) check_refused(*s, c);
  check_no_leftovers(s->dir.path());
}

// YAML: yaml-cpp shares an alias's node, so loading a "billion laughs" document is cheap;
// walking it is what explodes. Each of these must stop with a usage error naming the file.
std::string alias_bomb() {
  std::string text = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (char level = 'b'; level <= 'j'; ++level) {
    text += std::string(1, level) + ": &" + level + " [";
    for (int i = 0; i < 9; ++i) text += std::string(i ? "," : "") + "*" + static_cast<char>(level - 1);
    text += "]\n";
  }
  return text; // *j: 9^10 = 3.5 billion strings
}

std::string block_nesting(std::size_t levels) {
  std::string text;
  for (std::size_t i = 0; i < levels; ++i) text += std::string(2 * i, ' ') + "- \n";
  return text;
}

struct YamlCase {
  std::string name;
  std::vector<std::string> args; // ferry's arguments, run in the test directory
  std::vector<std::string> says;
  fs::path output = {};          // what the command would write: must not exist
};

void check_yaml_refused(const TestDir& dir, const YamlCase& c) {
  CAPTURE(c.name);
  const RunResult r = bounded(c.args, {.cwd = dir.path(), .env = {}, .input = {}});
  check_said(r, k_usage, c.says, c.args.front());
  if (!c.output.empty()) CHECK_FALSE(fs::exists(c.output));
}

TEST_CASE("YAML nested thousands of levels deep and alias bombs in a bundle manifest are refused by pack") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  const std::string head = "apiVersion: ferry/v1\nkind: Bundle\nmetadata: {name: x, version: \"1\"}\n";
  write_file(dir / "deep-flow.yaml", head + "rules: " + nested(100000) + "\n");
  write_file(dir / "deep-block.yaml", head + "rules:\n" + block_nesting(1000));
  std::string bomb = alias_bomb();
  std::string indented;
  for (std::size_t at = 0; at < bomb.size();) {
    const std::size_t end = bomb.find('\n', at);
    indented += "    " + bomb.substr(at, end - at + 1);
    at = end + 1;
  }
  write_file(dir / "alias-bomb.yaml", head + "rules:\n  - lols:\n" + indented + "    all: *j\n");
  auto pack = [&](const std::string& manifest) {
    return std::vector<std::string>{"pack", "-f", manifest, "-o", (dir / "x.tar.zst").string(), "--key", f.key.string()};
  };
  const std::vector<YamlCase> cases = {
      {"deep-flow", pack("deep-flow.yaml"), {"deep-flow.yaml:4:", "the YAML is nested too deeply"}, dir / "x.tar.zst"},
      {"deep-block", pack("deep-block.yaml"), {"deep-block.yaml:", "the YAML is nested too deeply"}, dir / "x.tar.zst"},
      {"alias-bomb", pack("alias-bomb.yaml"), {"alias-bomb.yaml:", "nested too deeply or too large"}, dir / "x.tar.zst"},
  };
  for (const auto& c : cases) check_yaml_refused(dir, c);
  check_no_leftovers(dir.path());
}

TEST_CASE("YAML nested thousands of levels deep and alias bombs in values files are refused") {
  require_tools(k_tools);
  TestDir dir;
  const Fixtures f = make_fixtures(dir.path());
  write_file(dir / "values/bomb.yaml", alias_bomb() + "image: *j\n");
  write_file(dir / "values/deep.yaml", "image:\n" + block_nesting(1000));
  // Bundle values: carried in the bundle, read by pack.
  const std::string manifest = read_file(f.manifest);
  write_file(dir / "bomb-values.yaml", manifest + "    values: [values/bomb.yaml]\n");
  write_file(dir / "deep-values.yaml", manifest + "    values: [values/deep.yaml]\n");
  auto pack = [&](const std::string& file) {
    return std::vector<std::string>{"pack", "-f", file, "-o", (dir / "x.tar.zst").string(), "--key", f.key.string()};
  };
  // Site values: given at upgrade time, here with --plan (no helm, no cluster).
  const fs::path bundle = dir / "good.tar.zst";
  REQUIRE(run_ferry(pack(f.manifest.string())).exit_code == 0);
  fs::rename(dir / "x.tar.zst", bundle);
  auto upgrade = [&](const std::string& values) {
    return std::vector<std::string>{"upgrade", bundle.string(), "--registry", "registry.example:5000", "--pubkey",
                                    f.pub.string(), "--values", "demo=" + values, "--plan"};
  };
  auto values = [&](const std::string& file) {
    return std::vector<std::string>{"values", "--chart", f.chart.string(), "-f", file, "--registry",
                                    "registry.example:5000", "-o", (dir / "overlay.yaml").string()};
  };
  const std::string bomb_says = "nested too deeply or too large";
  const std::string deep_says = "the YAML is nested too deeply";
  const std::vector<YamlCase> cases = {
      {"bundle-values-bomb", pack("bomb-values.yaml"), {"values/bomb.yaml", bomb_says}, dir / "x.tar.zst"},
      {"bundle-values-deep", pack("deep-values.yaml"), {"values/deep.yaml", deep_says}, dir / "x.tar.zst"},
      {"site-values-bomb", upgrade("values/bomb.yaml"), {"values/bomb.yaml", bomb_says}},
      {"site-values-deep", upgrade("values/deep.yaml"), {"values/deep.yaml", deep_says}},
      {"chart-values-bomb", values("values/bomb.yaml"), {"values/bomb.yaml", bomb_says}, dir / "overlay.yaml"},
  };
  for (const auto& c : cases) check_yaml_refused(dir, c);
  check_no_leftovers(dir.path());
}

} // TEST_SUITE
