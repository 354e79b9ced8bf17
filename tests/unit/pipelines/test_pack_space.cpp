// Tests for pack's disk-space pre-flight: the bundle's size bound against what TarWriter
// really writes, what pack needs where, and the free-space check with stand-in file systems.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/tar_writer.hpp"
#include "core/error.hpp"
#include "core/io.hpp"
#include "pack_space.hpp"
#include "support/test_support.hpp"

#include <map>
#include <string>
#include <vector>

using ferry::DownloadStore;
using ferry::PackSpace;
using ferry::SpaceNeed;
using ferry::core::FileSystemSpace;
using ferry::test::contains;

namespace {

// Byte patterns at both ends of what zstd can do: incompressible (its worst case: stored
// raw blocks) and a long run of one byte.
std::string content(std::size_t size, bool incompressible, unsigned seed) {
  return incompressible ? ferry::test::random_bytes(size, seed) : std::string(size, 'a');
}

// A probe for check_free_space over made-up file systems: directory -> (device, free).
ferry::SpaceProbe probe_of(std::map<std::string, FileSystemSpace> table) {
  return [table = std::move(table)](const std::filesystem::path& dir) {
    const auto it = table.find(dir.string());
    REQUIRE_MESSAGE(it != table.end(), "probed an unexpected directory " << dir);
    return it->second;
  };
}

std::string message_of(const std::vector<SpaceNeed>& needs, const ferry::SpaceProbe& probe, std::string* hint = nullptr) {
  try {
    ferry::check_free_space(needs, probe);
  } catch (const ferry::core::Error& e) {
    CHECK(e.code() == ferry::core::ExitCode::failure);
    if (hint) *hint = e.hint();
    return e.what();
  }
  return {};
}

constexpr std::uint64_t k_mib = 1u << 20;

} // namespace

TEST_SUITE("pipelines") {

TEST_CASE("bundle_entry_bound is never below what TarWriter writes for an entry, and close to it for incompressible data") {
  const std::vector<std::size_t> sizes = {0, 1, 511, 512, 513, 4096, (128u << 10) - 1, 128u << 10, (128u << 10) + 1,
                                          (1u << 20) + 7, 3u << 20};
  for (const bool incompressible : {true, false}) {
    for (const auto compression : {ferry::bundle::Compression::normal, ferry::bundle::Compression::fastest}) {
      ferry::core::StringSink out;
      ferry::bundle::TarWriter tar(out, {.level = 3, .mtime = 0});
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        CAPTURE(sizes[i]);
        CAPTURE(incompressible);
        const std::string bytes = content(sizes[i], incompressible, static_cast<unsigned>(i) + 1);
        const std::uint64_t before = tar.bytes_out();
        tar.add({.path = "blobs/sha256/" + std::string(64, 'a'), .size = bytes.size(), .mode = 0644,
                 .compression = compression},
                bytes);
        const std::uint64_t written = tar.bytes_out() - before;
        CHECK(written <= ferry::bundle_entry_bound(bytes.size()));
        if (incompressible) {
          // Not a loose guess: zstd's margin (1/256 plus a few bytes) and the headers.
          CHECK(ferry::bundle_entry_bound(bytes.size()) <= written + bytes.size() / 256 + 2048);
        }
      }
      tar.finish();
    }
  }
}

TEST_CASE("bundle_size_bound covers a whole bundle with its end-of-archive frame") {
  std::vector<std::uint64_t> sizes;
  ferry::core::StringSink out;
  {
    ferry::bundle::TarWriter tar(out, {.level = 3, .mtime = 0});
    for (unsigned i = 0; i < 6; ++i) {
      const std::string bytes = ferry::test::random_bytes((i + 1) * 70001u, i + 10);
      tar.add({.path = "entry-" + std::to_string(i), .size = bytes.size(), .mode = 0644,
               .compression = ferry::bundle::Compression::fastest},
              bytes);
      sizes.push_back(bytes.size());
    }
    tar.finish();
  }
  const std::string bundle = out.take();
  CHECK(bundle.size() <= ferry::bundle_size_bound(sizes));
  CHECK(ferry::bundle_size_bound(sizes) > ferry::bundle_size_bound({}));
  CHECK(ferry::bundle_size_bound({}) >= 1024); // the end-of-archive blocks alone
}

TEST_CASE("pack_space_needs counts every download into the cache, and the window into the work directory") {
  PackSpace space{.output_dir = "out",
                  .entry_sizes = {1000, 50 * k_mib},
                  .download_dir = "cache",
                  .download_store = DownloadStore::cache,
                  .download_blobs = 3,
                  .download_bytes = 900 * k_mib,
                  .largest_download = 600 * k_mib,
                  .window = 64 * k_mib};
  SUBCASE("cache") {
    const auto needs = ferry::pack_space_needs(space);
    REQUIRE(needs.size() == 2);
    CHECK(needs[0].dir == "out");
    CHECK(needs[0].bytes >= ferry::bundle_size_bound(space.entry_sizes));
    CHECK(needs[0].bytes < ferry::bundle_size_bound(space.entry_sizes) + 16384);
    CHECK(needs[1].dir == "cache");
    CHECK(needs[1].bytes >= 900 * k_mib);
    CHECK(needs[1].bytes < 900 * k_mib + 16384);
    CHECK(contains(needs[1].remedy, "--cache"));
  }
  SUBCASE("work directory: the window and the largest blob at most") {
    space.download_store = DownloadStore::work;
    space.download_dir = "out/.work";
    const auto needs = ferry::pack_space_needs(space);
    REQUIRE(needs.size() == 2);
    CHECK(needs[1].bytes >= 664 * k_mib);
    CHECK(needs[1].bytes < 664 * k_mib + 16384);
    SUBCASE("less to download than the window: all of it") {
      space.download_bytes = 10 * k_mib;
      space.largest_download = 8 * k_mib;
      CHECK(ferry::pack_space_needs(space)[1].bytes < 10 * k_mib + 16384);
    }
  }
  SUBCASE("nothing to download") {
    space.download_blobs = 0;
    space.download_bytes = 0;
    CHECK(ferry::pack_space_needs(space).size() == 1);
  }
}

TEST_CASE("check_free_space passes when every file system has room") {
  const std::vector<SpaceNeed> needs = {{"out", "the bundle", "use -o", 100 * k_mib},
                                        {"cache", "the downloads", "use --cache", 200 * k_mib}};
  CHECK(message_of(needs, probe_of({{"out", {1, 100 * k_mib}}, {"cache", {2, 300 * k_mib}}})).empty());
  // On one file system: exactly their sum is enough.
  CHECK(message_of(needs, probe_of({{"out", {1, 300 * k_mib}}, {"cache", {1, 300 * k_mib}}})).empty());
}

TEST_CASE("check_free_space refuses a short file system with the numbers, the directory and what to do") {
  const std::vector<SpaceNeed> needs = {{"out", "the bundle", "write the bundle elsewhere with -o", 100 * k_mib},
                                        {"cache", "the downloads", "keep the cache elsewhere with --cache DIR", 200 * k_mib}};
  std::string hint;
  const std::string text = message_of(needs, probe_of({{"out", {1, 40 * k_mib}}, {"cache", {2, 300 * k_mib}}}), &hint);
  INFO(text);
  CHECK(text == "not enough free space in out for the bundle: up to 100.0 MiB (104857600 bytes) needed, "
               "40.0 MiB (41943040 bytes) free");
  CHECK_FALSE(contains(text, "cache"));
  CHECK(contains(hint, "free 60.0 MiB (62914560 bytes) on the file system of out"));
  CHECK(contains(hint, "-o"));
  CHECK_FALSE(contains(hint, "--cache"));
}

TEST_CASE("check_free_space adds up needs on the same file system, counting its free space once") {
  const std::vector<SpaceNeed> needs = {{"out", "the bundle", "use -o", 100 * k_mib},
                                        {"cache", "the downloads", "use --cache", 200 * k_mib}};
  // Each alone would fit in 250 MiB; together they do not.
  std::string hint;
  const std::string text = message_of(needs, probe_of({{"out", {7, 250 * k_mib}}, {"cache", {7, 250 * k_mib}}}), &hint);
  INFO(text);
  CHECK(text == "not enough free space on the file system of out and cache: up to 300.0 MiB (314572800 bytes) needed "
               "for the bundle (up to 100.0 MiB) and the downloads (up to 200.0 MiB), 250.0 MiB (262144000 bytes) free");
  CHECK(contains(hint, "free 50.0 MiB"));
  CHECK(contains(hint, "use -o"));
  CHECK(contains(hint, "use --cache"));
}

TEST_CASE("check_free_space names every short file system") {
  const std::vector<SpaceNeed> needs = {{"out", "the bundle", "use -o", 100 * k_mib},
                                        {"cache", "the downloads", "use --cache", 200 * k_mib}};
  const std::string text = message_of(needs, probe_of({{"out", {1, 10 * k_mib}}, {"cache", {2, 20 * k_mib}}}));
  CHECK(contains(text, "in out for the bundle"));
  CHECK(contains(text, "; not enough free space in cache for the downloads"));
}

TEST_CASE("size_text gives a rounded size and the exact bytes") {
  CHECK(ferry::size_text(0) == "0 bytes");
  CHECK(ferry::size_text(1023) == "1023 bytes");
  CHECK(ferry::size_text(1536) == "1.5 KiB (1536 bytes)");
  CHECK(ferry::size_text(5ull << 30) == "5.0 GiB (5368709120 bytes)");
}

} // TEST_SUITE
