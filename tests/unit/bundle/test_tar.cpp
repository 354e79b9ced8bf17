// Tests for bundle/tar_writer and bundle/tar_reader: round trips, interop with tar and
// zstd, frame layout, determinism, truncation and damage.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/tar_reader.hpp"
#include "bundle/tar_writer.hpp"
#include "core/c_handle.hpp"
#include "core/error.hpp"
#include "core/io.hpp"
#include "support/test_support.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <zstd.h>

#include <sys/sysmacros.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using ferry::bundle::Compression;
using ferry::bundle::EntryType;
using ferry::bundle::TarEntry;
using ferry::bundle::TarReader;
using ferry::bundle::TarWriter;
using ferry::bundle::TarWriterOptions;
using ferry::test::have_tool;
using ferry::test::run_shell;
using ferry::test::shell_quote;

namespace {

struct Entry {
  std::string path;
  std::string bytes;
  Compression compression = Compression::normal;
  unsigned mode = 0644;
};

constexpr std::int64_t k_mtime = 1700000000; // 2023-11-14 22:13:20 UTC

// 151 bytes, split by ustar into prefix "charts/<140 a>" and name "values.yaml".
const std::string k_split_path = "charts/" + std::string(140, 'a') + "/values.yaml";
// One 200-byte component: does not fit ustar at all, needs a pax "path" record.
const std::string k_pax_path = "files/" + std::string(200, 'p');

std::vector<Entry> sample_entries() {
  std::string json = "{\"schemaVersion\":2,\"layers\":[";
  for (int i = 0; i < 200; ++i) json += "{\"digest\":\"sha256:" + std::to_string(i * 7919) + "\",\"size\":" + std::to_string(i) + "},";
  json += "{}]}";
  return {
      {"ferry.json", json, Compression::normal, 0644},
      {"blobs/sha256/" + std::string(64, 'c'), ferry::test::random_bytes(3 * 1024 * 1024 + 17, 1), Compression::fastest,
       0644},
      {"empty", "", Compression::normal, 0644},
      {k_split_path, "replicas: 3\n", Compression::normal, 0644},
      {k_pax_path, ferry::test::random_bytes(1000, 2), Compression::fastest, 0600},
      {"tools/helm", "#!/bin/sh\necho helm\n", Compression::normal, 0755},
  };
}

std::string write_tar(const std::vector<Entry>& entries, TarWriterOptions options = {.level = 3, .mtime = k_mtime}) {
  ferry::core::StringSink sink;
  TarWriter writer(sink, options);
  for (const Entry& e : entries) {
    writer.add({.path = e.path, .size = e.bytes.size(), .mode = e.mode, .compression = e.compression}, e.bytes);
  }
  writer.finish();
  CHECK(writer.bytes_out() == sink.bytes().size());
  return sink.take();
}

struct ReadEntry {
  TarEntry header;
  std::string bytes;
};

std::vector<ReadEntry> read_tar(std::string_view bytes, std::uint64_t* consumed = nullptr) {
  ferry::core::StringSource source(bytes);
  TarReader reader(source, "test.tar.zst");
  std::vector<ReadEntry> out;
  while (auto entry = reader.next()) {
    ReadEntry e{*entry, ferry::core::read_all(reader.body(), 16u << 20, entry->path)};
    out.push_back(std::move(e));
  }
  CHECK_FALSE(reader.next()); // stays at the end
  if (consumed) *consumed = reader.consumed();
  return out;
}

// The zstd frames of a stream, in order.
std::vector<std::string_view> zstd_frames(std::string_view bytes) {
  std::vector<std::string_view> frames;
  while (!bytes.empty()) {
    const std::size_t n = ZSTD_findFrameCompressedSize(bytes.data(), bytes.size());
    REQUIRE_MESSAGE(!ZSTD_isError(n), ZSTD_getErrorName(n));
    frames.push_back(bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
  return frames;
}

std::string decompress_frame(std::string_view frame) {
  std::unique_ptr<ZSTD_DCtx, ferry::core::CDeleter<ZSTD_freeDCtx>> ctx(ZSTD_createDCtx());
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  std::string out;
  std::vector<char> buffer(ZSTD_DStreamOutSize());
  std::size_t r = 1;
  while (r != 0) {
    ZSTD_outBuffer o{buffer.data(), buffer.size(), 0};
    r = ZSTD_decompressStream(ctx.get(), &o, &in);
    REQUIRE_MESSAGE(!ZSTD_isError(r), ZSTD_getErrorName(r));
    out.append(buffer.data(), o.pos);
    if (in.pos == in.size && o.pos == 0 && r != 0) FAIL("frame ended early");
  }
  return out;
}

// A source that gives `bytes` and then fails like a disk would.
class FailingSource final : public ferry::core::Source {
public:
  explicit FailingSource(std::string_view bytes) : m_inner(bytes) {}
  std::size_t read(char* data, std::size_t size) override {
    const std::size_t n = m_inner.read(data, size);
    if (n == 0) throw ferry::core::Error(ferry::core::ExitCode::failure, "cannot read disk.img: Input/output error");
    return n;
  }

private:
  ferry::core::StringSource m_inner;
};

// Counts write() calls; optionally fails on the n-th.
class CountingSink final : public ferry::core::Sink {
public:
  explicit CountingSink(int fail_at = -1) : m_fail_at(fail_at) {}
  void write(const char* data, std::size_t size) override {
    if (m_writes++ == m_fail_at) throw ferry::core::UsageError("disk full on the test sink");
    m_bytes.append(data, size);
  }
  using Sink::write;
  int writes() const { return m_writes; }
  const std::string& bytes() const { return m_bytes; }

private:
  int m_fail_at;
  int m_writes = 0;
  std::string m_bytes;
};

std::string error_text(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ferry::core::IntegrityError& e) {
    return e.what();
  }
  FAIL("no IntegrityError");
  return {};
}

// Non-regular entries, which TarWriter never writes, made with libarchive directly.
std::string special_tar(bool zstd) {
  std::string out;
  std::unique_ptr<archive, ferry::core::CDeleter<archive_write_free>> a(archive_write_new());
  REQUIRE(archive_write_set_format_pax_restricted(a.get()) == ARCHIVE_OK);
  if (zstd) REQUIRE(archive_write_add_filter_zstd(a.get()) == ARCHIVE_OK);
  // No zero padding of the last 10240-byte block after the compressed stream.
  REQUIRE(archive_write_set_bytes_in_last_block(a.get(), 1) == ARCHIVE_OK);
  auto write_cb = [](archive*, void* client, const void* buffer, size_t length) -> la_ssize_t {
    static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), length);
    return static_cast<la_ssize_t>(length);
  };
  REQUIRE(archive_write_open2(a.get(), &out, nullptr, write_cb, nullptr, nullptr) == ARCHIVE_OK);
  auto add = [&](const char* path, unsigned type, const std::string& data, auto&& setup) {
    std::unique_ptr<archive_entry, ferry::core::CDeleter<archive_entry_free>> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), path);
    archive_entry_set_filetype(e.get(), type);
    archive_entry_set_perm(e.get(), 0644);
    archive_entry_set_size(e.get(), static_cast<la_int64_t>(data.size()));
    setup(e.get());
    REQUIRE(archive_write_header(a.get(), e.get()) == ARCHIVE_OK);
    if (!data.empty()) REQUIRE(archive_write_data(a.get(), data.data(), data.size()) == static_cast<la_ssize_t>(data.size()));
  };
  auto none = [](archive_entry*) {};
  add("dir/", AE_IFDIR, "", none);
  add("dir/file.txt", AE_IFREG, "contents\n", none);
  add("dir/link", AE_IFLNK, "", [](archive_entry* e) { archive_entry_set_symlink(e, "file.txt"); });
  add("dir/hard", AE_IFREG, "", [](archive_entry* e) { archive_entry_set_hardlink(e, "dir/file.txt"); });
  add("dev/null", AE_IFCHR, "", [](archive_entry* e) { archive_entry_set_rdev(e, makedev(1, 3)); });
  add("dev/sda", AE_IFBLK, "", [](archive_entry* e) { archive_entry_set_rdev(e, makedev(8, 0)); });
  add("run/pipe", AE_IFIFO, "", none);
  REQUIRE(archive_write_close(a.get()) == ARCHIVE_OK);
  return out;
}

} // namespace

TEST_SUITE("bundle") {

TEST_CASE("TarWriter::add writes entries that TarReader reads back unchanged") {
  const std::vector<Entry> entries = sample_entries();
  const std::string bytes = write_tar(entries);
  std::uint64_t consumed = 0;
  const std::vector<ReadEntry> read = read_tar(bytes, &consumed);
  REQUIRE(read.size() == entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    CAPTURE(entries[i].path);
    CHECK(read[i].header.path == entries[i].path);
    CHECK(read[i].header.type == EntryType::regular);
    CHECK(read[i].header.size == entries[i].bytes.size());
    CHECK(read[i].header.link_target.empty());
    CHECK(read[i].bytes == entries[i].bytes);
  }
  CHECK(consumed == bytes.size());
}

TEST_CASE("TarWriter output is read by GNU tar and the zstd tool") {
  ferry::test::TestDir dir;
  const std::vector<Entry> entries = sample_entries();
  const fs::path file = dir / "bundle.tar.zst";
  ferry::test::write_file(file, write_tar(entries));

  SUBCASE("zstd -t accepts every frame and its checksum") {
    if (!have_tool("zstd")) {
      MESSAGE("skipped: zstd is not on PATH");
      return;
    }
    const auto [status, out] = run_shell("zstd -q -t " + shell_quote(file));
    CHECK_MESSAGE(status == 0, out);
  }
  SUBCASE("tar --zstd -tv lists every entry with owner 0/0, mode and mtime") {
    if (!have_tool("tar") || !have_tool("zstd")) {
      MESSAGE("skipped: tar or zstd is not on PATH");
      return;
    }
    const auto [status, out] = run_shell("TZ=UTC tar --zstd -tvf " + shell_quote(file));
    REQUIRE_MESSAGE(status == 0, out);
    std::vector<std::string> lines;
    for (std::size_t start = 0; start < out.size();) {
      const std::size_t end = out.find('\n', start);
      lines.push_back(out.substr(start, end - start));
      if (end == std::string::npos) break;
      start = end + 1;
    }
    REQUIRE(lines.size() >= entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i) {
      CAPTURE(lines[i]);
      const std::string mode = entries[i].mode == 0755 ? "-rwxr-xr-x" : entries[i].mode == 0600 ? "-rw-------" : "-rw-r--r--";
      CHECK(lines[i].rfind(mode + " 0/0 ", 0) == 0);
      CHECK(lines[i].find(" " + std::to_string(entries[i].bytes.size()) + " 2023-11-14 22:13 ") != std::string::npos);
      CHECK(lines[i].size() >= entries[i].path.size());
      CHECK(lines[i].substr(lines[i].size() - entries[i].path.size()) == entries[i].path);
    }
  }
  SUBCASE("tar --zstd -x extracts the same bytes") {
    if (!have_tool("tar") || !have_tool("zstd")) {
      MESSAGE("skipped: tar or zstd is not on PATH");
      return;
    }
    const fs::path out_dir = dir / "x";
    fs::create_directories(out_dir);
    const auto [status, out] = run_shell("tar --zstd -xf " + shell_quote(file) + " -C " + shell_quote(out_dir));
    REQUIRE_MESSAGE(status == 0, out);
    for (const Entry& e : entries) {
      CAPTURE(e.path);
      CHECK(ferry::test::read_file(out_dir / e.path) == e.bytes);
      CHECK((fs::status(out_dir / e.path).permissions() & fs::perms::all) == static_cast<fs::perms>(e.mode));
    }
  }
}

TEST_CASE("TarWriter writes one zstd frame per entry and one for the end-of-archive blocks") {
  const std::vector<Entry> entries = sample_entries();
  const std::string bytes = write_tar(entries);
  const std::vector<std::string_view> frames = zstd_frames(bytes);
  REQUIRE(frames.size() == entries.size() + 1);

  for (std::size_t i = 0; i < entries.size(); ++i) {
    CAPTURE(entries[i].path);
    const std::string tar = decompress_frame(frames[i]);
    // Whole records: header(s), data, padding.
    CHECK(tar.size() % 512 == 0);
    const std::size_t data_records = (entries[i].bytes.size() + 511) / 512;
    const bool pax = entries[i].path == k_pax_path;
    CHECK(tar.size() == 512 * (data_records + (pax ? 3 : 1)));
    REQUIRE(tar.size() >= 512);
    CHECK(tar[156] == (pax ? 'x' : '0')); // ustar typeflag: pax extended header, or a regular file
    CHECK(tar.substr(257, 5) == "ustar");
    // The data ends the frame: its last record is the body's tail plus zero padding.
    const std::size_t data_start = tar.size() - 512 * data_records;
    CHECK(tar.substr(data_start, entries[i].bytes.size()) == entries[i].bytes);
  }
  CHECK(decompress_frame(frames.back()) == std::string(1024, '\0'));

  SUBCASE("the fastest setting stores random bytes nearly as they are") {
    CHECK(frames[1].size() < entries[1].bytes.size() + 512 + 1024);
  }
}

TEST_CASE("TarWriter applies each entry's compression to that entry's frame") {
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "line " + std::to_string(i % 977) + " of a fairly repetitive file\n";
  // Level 19 against zstd's fastest setting: the frame sizes tell which one ran.
  const std::string bytes = write_tar({{"a", text, Compression::fastest, 0644},
                                       {"b", text, Compression::normal, 0644},
                                       {"c", text, Compression::fastest, 0644}},
                                      {.level = 19, .mtime = 0});
  const std::vector<std::string_view> frames = zstd_frames(bytes);
  REQUIRE(frames.size() == 4);
  CHECK(frames[1].size() < frames[0].size());
  CHECK(frames[0].size() == frames[2].size());
}

TEST_CASE("TarWriter sets uid and gid 0, no owner names, the given mtime and mode") {
  const std::vector<Entry> entries = sample_entries();
  const std::string bytes = write_tar(entries);
  std::unique_ptr<archive, ferry::core::CDeleter<archive_read_free>> a(archive_read_new());
  REQUIRE(archive_read_support_format_tar(a.get()) == ARCHIVE_OK);
  REQUIRE(archive_read_support_filter_zstd(a.get()) == ARCHIVE_OK);
  REQUIRE(archive_read_open_memory(a.get(), bytes.data(), bytes.size()) == ARCHIVE_OK);
  archive_entry* e = nullptr;
  std::size_t i = 0;
  while (archive_read_next_header(a.get(), &e) == ARCHIVE_OK) {
    REQUIRE(i < entries.size());
    CAPTURE(entries[i].path);
    CHECK(archive_entry_uid(e) == 0);
    CHECK(archive_entry_gid(e) == 0);
    CHECK(std::string(archive_entry_uname(e) ? archive_entry_uname(e) : "") == "");
    CHECK(std::string(archive_entry_gname(e) ? archive_entry_gname(e) : "") == "");
    CHECK(archive_entry_mtime(e) == k_mtime);
    CHECK(archive_entry_mtime_nsec(e) == 0);
    CHECK_FALSE(archive_entry_atime_is_set(e));
    CHECK_FALSE(archive_entry_ctime_is_set(e));
    CHECK(archive_entry_filetype(e) == AE_IFREG);
    CHECK(archive_entry_perm(e) == entries[i].mode);
    CHECK(archive_entry_xattr_count(e) == 0);
    ++i;
  }
  CHECK(i == entries.size());
}

TEST_CASE("TarWriter output is the same bytes for the same entries") {
  const std::vector<Entry> entries = sample_entries();
  const std::string first = write_tar(entries);
  CHECK(write_tar(entries) == first);
  SUBCASE("and differs when the mtime does") { CHECK(write_tar(entries, {.level = 3, .mtime = 1}) != first); }
}

TEST_CASE("TarWriter hands output to the sink in large pieces") {
  const std::vector<Entry> entries = sample_entries();
  CountingSink sink;
  {
    TarWriter writer(sink, {.level = 3, .mtime = k_mtime});
    for (const Entry& e : entries) {
      writer.add({.path = e.path, .size = e.bytes.size(), .mode = e.mode, .compression = e.compression}, e.bytes);
    }
    writer.finish();
    CHECK(writer.bytes_out() == sink.bytes().size());
  }
  // One write per frame end, plus one per full 1 MiB buffer inside the 3 MiB entry.
  CHECK(sink.writes() <= static_cast<int>(entries.size()) + 1 + 4);
  CHECK(sink.bytes() == write_tar(entries));
}

TEST_CASE("TarWriter::add refuses a body shorter than the header's size, naming the entry") {
  ferry::core::StringSink sink;
  TarWriter writer(sink, {});
  const std::string text = error_text([&] { writer.add({.path = "blobs/sha256/abc", .size = 10}, "123"); });
  CHECK(text == "bundle entry blobs/sha256/abc ended after 3 of 10 bytes");
  SUBCASE("the stream is unusable afterwards") {
    CHECK_THROWS_AS(writer.add({.path = "next", .size = 1}, "x"), ferry::core::Error);
    CHECK_THROWS_AS(writer.finish(), ferry::core::Error);
  }
}

TEST_CASE("TarWriter::add refuses a body longer than the header's size, naming the entry") {
  ferry::core::StringSink sink;
  TarWriter writer(sink, {});
  const std::string text = error_text([&] { writer.add({.path = "index.json", .size = 2}, "{}\n"); });
  CHECK(text.find("index.json") != std::string::npos);
  CHECK(text.find("more than the 2 bytes") != std::string::npos);
}

TEST_CASE("TarWriter passes on the sink's error unchanged") {
  CountingSink sink(0);
  TarWriter writer(sink, {});
  try {
    writer.add({.path = "ferry.json", .size = 2}, "{}");
    FAIL("no exception");
  } catch (const ferry::core::UsageError& e) {
    CHECK(std::string(e.what()) == "disk full on the test sink");
  }
  CHECK_THROWS_AS(writer.finish(), ferry::core::Error);
}

TEST_CASE("TarWriter abandoned without finish writes no end-of-archive blocks") {
  ferry::core::StringSink sink;
  std::size_t after_add = 0;
  {
    TarWriter writer(sink, {});
    writer.add({.path = "a", .size = 1}, "a");
    after_add = sink.bytes().size();
  }
  CHECK(after_add > 0);
  CHECK(sink.bytes().size() == after_add);
  CHECK(zstd_frames(sink.bytes()).size() == 1);
}

TEST_CASE("TarWriter::add refuses an empty path or one outside printable ASCII") {
  ferry::core::StringSink sink;
  TarWriter writer(sink, {});
  CHECK_THROWS_AS(writer.add({.path = "files/h\xc3\xa9llo", .size = 1}, "x"), ferry::core::Error);
  CHECK_THROWS_AS(writer.add({.path = "a\nb", .size = 1}, "x"), ferry::core::Error);
  CHECK_THROWS_AS(writer.add({.path = "", .size = 1}, "x"), ferry::core::Error);
  CHECK(sink.bytes().empty());
  // Nothing was written: the stream is still usable.
  writer.add({.path = "ok", .size = 1}, "x");
  writer.finish();
  REQUIRE(read_tar(sink.bytes()).size() == 1);
}

TEST_CASE("TarWriter refuses a zstd level outside 1..19") {
  ferry::core::StringSink sink;
  CHECK_THROWS_AS(TarWriter(sink, {.level = 0}), ferry::core::UsageError);
  CHECK_THROWS_AS(TarWriter(sink, {.level = 20}), ferry::core::UsageError);
}

TEST_CASE("TarReader reports a stream cut inside an entry's data as truncated, naming the entry") {
  const std::vector<Entry> entries = sample_entries();
  const std::string bytes = write_tar(entries);
  const std::vector<std::string_view> frames = zstd_frames(bytes);
  const std::string cut = bytes.substr(0, frames[0].size() + frames[1].size() / 2);
  const std::string expected = "bundle test.tar.zst is truncated: it ends after " + std::to_string(cut.size()) +
                               " bytes (noticed while ";

  SUBCASE("reading the data") {
    const std::string text = error_text([&] { read_tar(cut); });
    CHECK(text == expected + "reading entry " + entries[1].path + "): Truncated zstd input");
  }
  SUBCASE("skipping the data") {
    const std::string text = error_text([&] {
      ferry::core::StringSource source(cut);
      TarReader reader(source, "test.tar.zst");
      while (reader.next()) {
      }
    });
    // libarchive's words differ here ("Truncated input file (needed N bytes, only M
    // available)"): the read-ahead layer, not the zstd filter, saw the end.
    CHECK(text.find(expected + "skipping the rest of entry " + entries[1].path + "): Truncated ") == 0);
  }
}

TEST_CASE("TarReader reports a stream cut inside a header as truncated, naming the entry before it") {
  std::vector<Entry> entries = sample_entries();
  // A small entry first, then a 200 KiB one, so that the zstd filter's read-ahead (one
  // 128 KiB block) cannot reach the cut header while the small one is read.
  entries.insert(entries.begin() + 1, Entry{"big", ferry::test::random_bytes(200 * 1024, 9), Compression::fastest});
  const std::string bytes = write_tar(entries);
  const std::vector<std::string_view> frames = zstd_frames(bytes);
  std::size_t start = 0;
  for (std::size_t i = 0; i < 3; ++i) start += frames[i].size();
  const std::string cut = bytes.substr(0, start + 8); // into the 4th entry's header
  const std::string text = error_text([&] { read_tar(cut); });
  CHECK(text.find("bundle test.tar.zst is truncated: it ends after " + std::to_string(cut.size()) + " bytes") == 0);
  CHECK(text.find(entries[2].path) != std::string::npos);
}

TEST_CASE("TarReader::next reports a stream cut between two frames as truncated") {
  const std::vector<Entry> entries = sample_entries();
  const std::string bytes = write_tar(entries);
  const std::vector<std::string_view> frames = zstd_frames(bytes);
  SUBCASE("after an entry") {
    const std::size_t size = frames[0].size() + frames[1].size();
    const std::string text = error_text([&] { read_tar(bytes.substr(0, size)); });
    CHECK(text == "bundle test.tar.zst is truncated: it ends after " + std::to_string(size) + " bytes, after entry " +
                      entries[1].path + ", without the end-of-archive blocks");
  }
  SUBCASE("an empty stream") {
    const std::string text = error_text([&] { read_tar(""); });
    CHECK(text == "bundle test.tar.zst is truncated: it is empty");
  }
}

TEST_CASE("TarReader reports a damaged frame through zstd's checksum, naming the entry") {
  const std::vector<Entry> entries = sample_entries();
  std::string bytes = write_tar(entries);
  const std::vector<std::string_view> frames = zstd_frames(bytes);
  // The big entry is stored in raw blocks: a flipped byte there decodes "fine" and only
  // the frame checksum catches it.
  bytes[frames[0].size() + frames[1].size() / 2] ^= 0x20;
  const std::string text = error_text([&] { read_tar(bytes); });
  CHECK(text.find("bundle test.tar.zst: ") == 0);
  CHECK(text.find(entries[1].path) != std::string::npos);
  CHECK(text.find("checksum") != std::string::npos);
  CHECK(text.find("truncated") == std::string::npos);
}

TEST_CASE("TarReader::next reports directories, links, devices and fifos with their types") {
  for (const bool zstd : {false, true}) {
    CAPTURE(zstd);
    const std::string bytes = special_tar(zstd);
    const std::vector<ReadEntry> read = read_tar(bytes);
    REQUIRE(read.size() == 7);
    CHECK(read[0].header.path == "dir/");
    CHECK(read[0].header.type == EntryType::directory);
    CHECK(read[1].header.type == EntryType::regular);
    CHECK(read[1].bytes == "contents\n");
    CHECK(read[2].header.type == EntryType::symlink);
    CHECK(read[2].header.link_target == "file.txt");
    CHECK(read[2].header.size == 0);
    CHECK(read[3].header.path == "dir/hard");
    CHECK(read[3].header.type == EntryType::hardlink);
    CHECK(read[3].header.link_target == "dir/file.txt");
    CHECK(read[4].header.type == EntryType::character_device);
    CHECK(read[5].header.type == EntryType::block_device);
    CHECK(read[6].header.type == EntryType::fifo);
    for (const ReadEntry& e : read) CHECK(e.bytes.size() == e.header.size);
  }
}

TEST_CASE("TarReader reads a plain tar made by GNU tar") {
  if (!have_tool("tar")) {
    MESSAGE("skipped: tar is not on PATH");
    return;
  }
  ferry::test::TestDir dir;
  const std::string long_name = std::string(180, 'n');
  ferry::test::write_file(dir / "in/small.txt", "small\n");
  ferry::test::write_file(dir / "in" / long_name, ferry::test::random_bytes(5000, 3));
  const auto [status, out] =
      run_shell("tar --format=gnu -cf " + shell_quote(dir / "plain.tar") + " -C " + shell_quote(dir / "in") +
                " small.txt " + long_name);
  REQUIRE_MESSAGE(status == 0, out);
  const std::vector<ReadEntry> read = read_tar(ferry::test::read_file(dir / "plain.tar"));
  REQUIRE(read.size() == 2);
  CHECK(read[0].header.path == "small.txt");
  CHECK(read[0].bytes == "small\n");
  CHECK(read[1].header.path == long_name);
  CHECK(read[1].bytes == ferry::test::random_bytes(5000, 3));
}

TEST_CASE("TarReader::read stops at the entry's end and next skips what was not read") {
  const std::vector<Entry> entries = sample_entries();
  const std::string bytes = write_tar(entries);
  ferry::core::StringSource source(bytes);
  TarReader reader(source, "test.tar.zst");
  CHECK(reader.read(nullptr, 0) == 0); // no entry yet
  REQUIRE(reader.next());
  REQUIRE(reader.next()); // the big entry: read a little of it only
  char head[100];
  REQUIRE(reader.read(head, sizeof head) == sizeof head);
  CHECK(std::string(head, sizeof head) == entries[1].bytes.substr(0, sizeof head));
  const auto third = reader.next();
  REQUIRE(third);
  CHECK(third->path == "empty");
  char byte = 0;
  CHECK(reader.read(&byte, 1) == 0);
}

TEST_CASE("TarReader passes on the source's own error") {
  const std::string bytes = write_tar(sample_entries());
  FailingSource source(std::string_view(bytes).substr(0, bytes.size() / 2));
  try {
    TarReader reader(source, "test.tar.zst");
    while (auto entry = reader.next()) ferry::core::read_all(reader.body(), 16u << 20, entry->path);
    FAIL("no exception");
  } catch (const ferry::core::IntegrityError& e) {
    FAIL("the source error became an integrity error: " << e.what());
  } catch (const ferry::core::Error& e) {
    CHECK(std::string(e.what()) == "cannot read disk.img: Input/output error");
  }
}

TEST_CASE("TarReader refuses input that is not a tar stream") {
  const std::string text = error_text([&] {
    const std::string junk(4096, 'z');
    ferry::core::StringSource source(junk);
    TarReader reader(source, "junk.tar.zst");
    reader.next();
  });
  CHECK(text.find("bundle junk.tar.zst is not a zstd-compressed tar stream") == 0);
  CHECK(text.find("truncated") == std::string::npos);
}

} // TEST_SUITE
