// Tests for bundle/zstd_frames (FrameWalker) and BundleReader::read_entries_parallel:
// frame boundaries against zstd's own, and the parallel reader against read_entries.
// SPDX-License-Identifier: Apache-2.0
#include "bundle/bundle_reader.hpp"
#include "bundle/tar_writer.hpp"
#include "bundle/zstd_frames.hpp"
#include "bundle_fixture.hpp"
#include "core/c_handle.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/io.hpp"
#include "support/test_support.hpp"

#include <zstd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace ferry;
using bundle::FrameExtent;
using bundle::FrameWalker;
using test::BundleEntry;
using test::BundleShape;
using test::Built;
using test::contains;
using test::make_bundle;
using test::message_of;
using test::TestDir;
using test::write_file;

namespace fs = std::filesystem;

namespace {

const std::string k_display = "test.tar.zst";

using ZstdDCtx = std::unique_ptr<ZSTD_DCtx, core::CDeleter<ZSTD_freeDCtx>>;
using ZstdCCtx = std::unique_ptr<ZSTD_CCtx, core::CDeleter<ZSTD_freeCCtx>>;

// --- zstd, independently of the code under test ---------------------------------------

// Decompresses `bytes`, a whole number of frames, with zstd's streaming decoder.
std::string zstd_decompress(std::string_view bytes) {
  ZstdDCtx ctx(ZSTD_createDCtx());
  REQUIRE(ctx);
  ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
  std::string out;
  std::vector<char> buffer(ZSTD_DStreamOutSize());
  std::size_t left = 0; // 0: the last frame ended
  for (;;) {
    ZSTD_outBuffer o{buffer.data(), buffer.size(), 0};
    left = ZSTD_decompressStream(ctx.get(), &o, &in);
    REQUIRE_MESSAGE(!ZSTD_isError(left), ZSTD_getErrorName(left));
    out.append(buffer.data(), o.pos);
    if (in.pos == in.size && o.pos < o.size) break; // all input taken, all output flushed
  }
  REQUIRE_MESSAGE(left == 0, "the input ends inside a zstd frame");
  return out;
}

// One frame of `bytes` at `level` (zstd's one-shot API: content size in the header,
// no checksum).
std::string zstd_compress(std::string_view bytes, int level) {
  std::string out(ZSTD_compressBound(bytes.size()), '\0');
  const std::size_t n = ZSTD_compress(out.data(), out.size(), bytes.data(), bytes.size(), level);
  REQUIRE_MESSAGE(!ZSTD_isError(n), ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

// One frame written by the streaming API without a pledged size: no content size,
// a window descriptor, and (when asked) a checksum.
std::string zstd_compress_stream(std::string_view bytes, bool checksum, bool content_size) {
  ZstdCCtx ctx(ZSTD_createCCtx());
  REQUIRE(ctx);
  REQUIRE(!ZSTD_isError(ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_checksumFlag, checksum ? 1 : 0)));
  REQUIRE(!ZSTD_isError(ZSTD_CCtx_setParameter(ctx.get(), ZSTD_c_contentSizeFlag, content_size ? 1 : 0)));
  if (content_size) REQUIRE(!ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(ctx.get(), bytes.size())));
  std::string out;
  std::vector<char> buffer(ZSTD_CStreamOutSize());
  ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
  for (;;) {
    ZSTD_outBuffer o{buffer.data(), buffer.size(), 0};
    const std::size_t left = ZSTD_compressStream2(ctx.get(), &o, &in, ZSTD_e_end);
    REQUIRE_MESSAGE(!ZSTD_isError(left), ZSTD_getErrorName(left));
    out.append(buffer.data(), o.pos);
    if (left == 0) break;
  }
  return out;
}

// A skippable frame (RFC 8878 §3.1.2) holding `payload`.
std::string skippable_frame(std::string_view payload) {
  std::string frame;
  const auto put32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) frame.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  put32(0x184D2A53u);
  put32(static_cast<std::uint32_t>(payload.size()));
  frame.append(payload);
  return frame;
}

// --- FrameWalker helpers ------------------------------------------------------------------

std::vector<FrameExtent> walk(const fs::path& file) {
  core::FileSource in(file);
  FrameWalker walker(in.fd(), in.size(), k_display);
  std::vector<FrameExtent> frames;
  while (auto frame = walker.next()) {
    frames.push_back(*frame);
    CHECK(walker.offset() == frame->offset + frame->length);
  }
  return frames;
}

std::vector<FrameExtent> walk_bytes(const TestDir& dir, std::string_view bytes) {
  const fs::path file = dir / "frames.zst";
  write_file(file, bytes);
  return walk(file);
}

// How far a walk got before the IntegrityError it ended with.
struct WalkFailure {
  std::size_t frames_before = 0;
  std::string message;
};

WalkFailure walk_to_error(const TestDir& dir, std::string_view bytes) {
  const fs::path file = dir / "broken.zst";
  write_file(file, bytes);
  core::FileSource in(file);
  FrameWalker walker(in.fd(), in.size(), k_display);
  WalkFailure result;
  result.message = message_of([&] {
    while (walker.next()) ++result.frames_before;
  });
  return result;
}

// The N of "... at byte N: ..." in a FrameWalker message.
std::optional<std::uint64_t> byte_named(const std::string& message) {
  const std::string marker = "at byte ";
  const auto at = message.find(marker);
  if (at == std::string::npos) return std::nullopt;
  return std::stoull(message.substr(at + marker.size()));
}

std::string at_byte(std::uint64_t offset) { return "at byte " + std::to_string(offset) + ":"; }

std::size_t index_of(const Built& b, const std::string& path) {
  for (std::size_t i = 0; i < b.entries.size(); ++i) {
    if (b.entries[i].path == path) return i;
  }
  FAIL("no entry " << path);
  return 0;
}

// --- reading helpers ------------------------------------------------------------------------

// Watches every call the reader makes into the target and the sinks: which thread made
// it, and whether target() or commit() ever ran twice at once. Its own mutex keeps the
// maps sane even if the reader broke its promise; the atomic counters are what detect it.
class Recorder {
public:
  // The first write() into each sink waits this long, so that one worker is busy while
  // the next frame is handed out.
  std::chrono::milliseconds first_write_delay{0};

  std::unique_ptr<bundle::EntrySink> target(const bundle::StreamEntry& entry);

  std::map<std::string, std::string> committed() const {
    std::lock_guard lock(m_mutex);
    return m_committed;
  }
  bool has_committed(const std::string& path) const {
    std::lock_guard lock(m_mutex);
    return m_committed.count(path) != 0;
  }
  std::map<std::string, std::thread::id> asked_by() const {
    std::lock_guard lock(m_mutex);
    return m_asked_by;
  }
  std::map<std::string, std::set<std::thread::id>> written_by() const {
    std::lock_guard lock(m_mutex);
    return m_written_by;
  }
  bool target_overlapped() const noexcept { return m_target_overlapped; }
  bool commit_overlapped() const noexcept { return m_commit_overlapped; }

private:
  class Sink final : public bundle::EntrySink {
  public:
    Sink(Recorder& recorder, std::string path) : m_recorder(recorder), m_path(std::move(path)) {}
    void write(const char* data, std::size_t size) override {
      if (m_bytes.empty() && m_recorder.first_write_delay.count() > 0) {
        std::this_thread::sleep_for(m_recorder.first_write_delay);
      }
      m_threads.insert(std::this_thread::get_id());
      m_bytes.append(data, size);
    }
    void commit() override { m_recorder.on_commit(m_path, std::move(m_bytes), std::move(m_threads)); }

  private:
    Recorder& m_recorder;
    std::string m_path;
    std::string m_bytes;
    std::set<std::thread::id> m_threads;
  };

  void on_commit(const std::string& path, std::string bytes, std::set<std::thread::id> threads) {
    if (++m_in_commit > 1) m_commit_overlapped = true;
    std::this_thread::sleep_for(std::chrono::microseconds(200)); // widen the window
    {
      std::lock_guard lock(m_mutex);
      m_committed[path] = std::move(bytes);
      m_written_by[path] = std::move(threads);
    }
    --m_in_commit;
  }

  mutable std::mutex m_mutex;
  std::map<std::string, std::string> m_committed;
  std::map<std::string, std::thread::id> m_asked_by;
  std::map<std::string, std::set<std::thread::id>> m_written_by;
  std::atomic<int> m_in_target{0};
  std::atomic<int> m_in_commit{0};
  std::atomic<bool> m_target_overlapped{false};
  std::atomic<bool> m_commit_overlapped{false};
};

std::unique_ptr<bundle::EntrySink> Recorder::target(const bundle::StreamEntry& entry) {
  if (++m_in_target > 1) m_target_overlapped = true;
  std::this_thread::sleep_for(std::chrono::microseconds(200)); // widen the window
  {
    std::lock_guard lock(m_mutex);
    m_asked_by[entry.path] = std::this_thread::get_id();
  }
  --m_in_target;
  return std::make_unique<Sink>(*this, entry.path);
}

// The largest progress count reported.
class MaxProgress final : public core::ProgressSink {
public:
  void progress(const core::ProgressEvent& event) override {
    std::lock_guard lock(m_mutex);
    m_done = std::max(m_done, event.done_bytes);
    m_total = event.total_bytes;
  }
  std::uint64_t done() const {
    std::lock_guard lock(m_mutex);
    return m_done;
  }
  std::uint64_t total() const {
    std::lock_guard lock(m_mutex);
    return m_total;
  }

private:
  mutable std::mutex m_mutex;
  std::uint64_t m_done = 0;
  std::uint64_t m_total = 0;
};

bundle::StreamStats read_sequential(const fs::path& file, const Built& b, Recorder& recorder) {
  core::FileSource in(file);
  bundle::BundleReader reader(in, k_display);
  reader.open(b.keys, bundle::SignaturePolicy::require);
  core::NullProgress progress;
  return reader.read_entries([&](const bundle::StreamEntry& e) { return recorder.target(e); }, progress);
}

bundle::StreamStats read_parallel(const fs::path& file, const Built& b, int jobs, Recorder& recorder,
                                  const std::function<bool()>& stop_early = {}) {
  core::FileSource in(file);
  bundle::BundleReader reader(in, k_display);
  reader.open(b.keys, bundle::SignaturePolicy::require);
  core::NullProgress progress;
  return reader.read_entries_parallel(
      file, jobs, [&](const bundle::StreamEntry& e) { return recorder.target(e); }, progress, stop_early);
}

std::uint64_t total_bytes(const std::map<std::string, std::string>& entries) {
  std::uint64_t total = 0;
  for (const auto& [path, bytes] : entries) total += bytes.size();
  return total;
}

// Compares two committed maps entry by entry, naming the first difference (a map of
// several MiB per entry is not worth printing).
void check_same_entries(const std::map<std::string, std::string>& actual,
                        const std::map<std::string, std::string>& expected) {
  CHECK(actual.size() == expected.size());
  for (const auto& [path, bytes] : expected) {
    const auto it = actual.find(path);
    if (it == actual.end()) {
      CHECK_MESSAGE(false, "not committed: " << path);
      continue;
    }
    CHECK_MESSAGE(it->second == bytes, "different bytes for " << path);
  }
  for (const auto& [path, bytes] : actual) CHECK_MESSAGE(expected.count(path) == 1, "unexpected entry " << path);
}

// Three images of two 3 MiB-ish layers each: nine blobs for the workers, plenty of
// frames for four of them. Built once: signing and hashing 18 MiB takes a moment.
const Built& large_bundle() {
  static const Built b = make_bundle({.images = 3, .layers_per_image = 2, .layer_size = 3u << 20, .seed = 40});
  return b;
}

} // namespace

TEST_SUITE("bundle") {

// --- FrameWalker ---------------------------------------------------------------------------

TEST_CASE("FrameWalker::next finds one frame per TarWriter entry and the end-of-archive frame") {
  TestDir dir;
  const Built& b = large_bundle();
  const fs::path file = dir / "bundle.tar.zst";
  write_file(file, b.bytes);
  const std::vector<FrameExtent> frames = walk(file);
  REQUIRE(frames.size() == b.entries.size() + 1);

  std::uint64_t expected_offset = 0;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    CAPTURE(i);
    CHECK(frames[i].offset == expected_offset); // contiguous, from byte 0
    CHECK(frames[i].length > 0);
    expected_offset = frames[i].offset + frames[i].length;
    // zstd's own idea of where the frame ends, given everything after its start.
    const std::size_t zstd_length =
        ZSTD_findFrameCompressedSize(b.bytes.data() + frames[i].offset, b.bytes.size() - frames[i].offset);
    REQUIRE_MESSAGE(!ZSTD_isError(zstd_length), ZSTD_getErrorName(zstd_length));
    CHECK(zstd_length == frames[i].length);

    // The frame alone decompresses to whole tar records: one entry, or the end blocks.
    const std::string tar = zstd_decompress(std::string_view(b.bytes).substr(frames[i].offset, frames[i].length));
    CHECK(tar.size() % 512 == 0);
    if (i < b.entries.size()) {
      const BundleEntry& entry = b.entries[i];
      CHECK(tar.size() == 512 + (entry.bytes.size() + 511) / 512 * 512);
      CHECK(std::string(tar.c_str()) == entry.path); // ustar name field, NUL-terminated
      CHECK_MESSAGE(tar.compare(512, entry.bytes.size(), entry.bytes) == 0, "data of " << entry.path);
    } else {
      CHECK(tar.size() >= 1024);
      CHECK(tar.find_first_not_of('\0') == std::string::npos);
    }
  }
  CHECK(expected_offset == b.bytes.size()); // the frames cover the file exactly
}

TEST_CASE("FrameWalker::next agrees with zstd on frames of every header shape") {
  TestDir dir;
  const std::string random = test::random_bytes(300000, 5);
  // Each frame exercises another part of the header: single segment with a 1-byte
  // content size, 2- and 4-byte content sizes, a window descriptor without content
  // size, a checksum, raw blocks (random bytes), RLE or compressed blocks (one byte
  // repeated), an empty frame.
  const std::vector<std::string> frames = {
      zstd_compress("", 3),
      zstd_compress("hello, frames", 3),
      zstd_compress(random.substr(0, 1000), 3),
      zstd_compress(std::string(1u << 20, 'z'), 3),
      zstd_compress(random, 1),
      zstd_compress_stream(random.substr(0, 200000), true, false),
      zstd_compress_stream(std::string(70000, 'q') + random.substr(0, 70000), false, false),
      zstd_compress_stream(random.substr(0, 5000), true, true),
      zstd_compress_stream("", true, false),
  };
  std::string bytes;
  for (const auto& f : frames) bytes += f;

  const std::vector<FrameExtent> walked = walk_bytes(dir, bytes);
  REQUIRE(walked.size() == frames.size());
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    CAPTURE(i);
    CHECK(walked[i].offset == offset);
    CHECK(walked[i].length == frames[i].size());
    CHECK(ZSTD_findFrameCompressedSize(bytes.data() + offset, bytes.size() - offset) == walked[i].length);
    offset += frames[i].size();
  }
}

TEST_CASE("FrameWalker::next on an empty file finds no frame") {
  TestDir dir;
  CHECK(walk_bytes(dir, "").empty());
}

TEST_CASE("FrameWalker::next reports a file cut inside a frame as an IntegrityError naming the byte") {
  TestDir dir;
  const Built b = test::build_bundle();
  const std::vector<FrameExtent> frames = walk_bytes(dir, b.bytes);
  const std::size_t k = index_of(b, test::blob_path(b.layer_digest));
  const FrameExtent layer = frames.at(k);
  REQUIRE(layer.length > 1000);

  SUBCASE("inside the frame header") {
    const auto cut = layer.offset + 3;
    const WalkFailure failure = walk_to_error(dir, std::string_view(b.bytes).substr(0, cut));
    CHECK(failure.frames_before == k);
    CHECK(contains(failure.message, k_display));
    CHECK(contains(failure.message, at_byte(layer.offset)));
    CHECK(contains(failure.message, "truncated"));
  }
  SUBCASE("in the middle of its blocks") {
    const auto cut = layer.offset + layer.length / 2;
    const WalkFailure failure = walk_to_error(dir, std::string_view(b.bytes).substr(0, cut));
    CHECK(failure.frames_before == k);
    CHECK(contains(failure.message, "truncated"));
    // The byte named lies inside the cut frame: where the missing block was to be.
    const auto named = byte_named(failure.message);
    REQUIRE(named);
    CHECK(*named > layer.offset);
    CHECK(*named <= cut);
  }
  SUBCASE("inside its checksum") {
    const auto cut = layer.offset + layer.length - 2;
    const WalkFailure failure = walk_to_error(dir, std::string_view(b.bytes).substr(0, cut));
    CHECK(failure.frames_before == k);
    CHECK(contains(failure.message, at_byte(cut)));
    CHECK(contains(failure.message, "checksum"));
  }
  SUBCASE("inside the end-of-archive frame") {
    const FrameExtent end = frames.back();
    const auto cut = end.offset + end.length - 1;
    const WalkFailure failure = walk_to_error(dir, std::string_view(b.bytes).substr(0, cut));
    CHECK(failure.frames_before == frames.size() - 1);
    CHECK(contains(failure.message, "truncated"));
  }
}

TEST_CASE("FrameWalker::next refuses what is not a zstd frame, naming the byte where it starts") {
  TestDir dir;
  const Built b = test::build_bundle();
  const std::vector<FrameExtent> frames = walk_bytes(dir, b.bytes);
  const std::size_t k = 4; // the manifest's frame
  const FrameExtent frame = frames.at(k);

  SUBCASE("garbage where a frame should start") {
    std::string bytes = b.bytes;
    bytes.replace(frame.offset, 4, "GARB");
    const WalkFailure failure = walk_to_error(dir, bytes);
    CHECK(failure.frames_before == k);
    CHECK(contains(failure.message, k_display));
    CHECK(contains(failure.message, at_byte(frame.offset)));
    CHECK(contains(failure.message, "no zstd frame starts here"));
  }
  SUBCASE("garbage after the last frame") {
    const WalkFailure failure = walk_to_error(dir, b.bytes + "trailing bytes");
    CHECK(failure.frames_before == frames.size());
    CHECK(contains(failure.message, at_byte(b.bytes.size())));
  }
  SUBCASE("a skippable frame between two frames") {
    std::string bytes = b.bytes;
    bytes.insert(frame.offset, skippable_frame("ferry never writes this"));
    const WalkFailure failure = walk_to_error(dir, bytes);
    CHECK(failure.frames_before == k);
    CHECK(contains(failure.message, at_byte(frame.offset)));
    CHECK(contains(failure.message, "skippable"));
  }
  SUBCASE("a skippable frame at the start") {
    const WalkFailure failure = walk_to_error(dir, skippable_frame("x") + b.bytes);
    CHECK(failure.frames_before == 0);
    CHECK(contains(failure.message, at_byte(0)));
    CHECK(contains(failure.message, "skippable"));
  }
  SUBCASE("the frame header's reserved bit") {
    std::string bytes = b.bytes;
    bytes[frame.offset + 4] = static_cast<char>(bytes[frame.offset + 4] | 0x08);
    const WalkFailure failure = walk_to_error(dir, bytes);
    CHECK(failure.frames_before == k);
    CHECK(contains(failure.message, at_byte(frame.offset + 4)));
    CHECK(contains(failure.message, "reserved bit"));
  }
}

TEST_CASE("FrameWalker::next refuses a block of the reserved type") {
  TestDir dir;
  const std::string first = zstd_compress("one frame first", 3);
  std::string second = zstd_compress("then the damaged one", 3);
  // A 20-byte input: single segment, 1-byte content size, no checksum, no dictionary
  // (descriptor 0x20), so the header is magic, descriptor and size: 6 bytes.
  REQUIRE(static_cast<unsigned char>(second[4]) == 0x20);
  second[6] = static_cast<char>(second[6] | 0x06); // block type 3
  const WalkFailure failure = walk_to_error(dir, first + second);
  CHECK(failure.frames_before == 1);
  CHECK(contains(failure.message, at_byte(first.size() + 6)));
  CHECK(contains(failure.message, "reserved type"));
}

// --- read_entries_parallel ---------------------------------------------------------------------

TEST_CASE("BundleReader::read_entries_parallel commits what read_entries commits, the layers from workers") {
  TestDir dir;
  const Built& b = large_bundle();
  const fs::path file = dir / "bundle.tar.zst";
  write_file(file, b.bytes);

  Recorder sequential;
  const bundle::StreamStats expected = read_sequential(file, b, sequential);
  check_same_entries(sequential.committed(), b.listed);

  Recorder parallel;
  parallel.first_write_delay = std::chrono::milliseconds(20);
  MaxProgress progress;
  bundle::StreamStats stats;
  {
    core::FileSource in(file);
    bundle::BundleReader reader(in, k_display);
    reader.open(b.keys, bundle::SignaturePolicy::require);
    stats = reader.read_entries_parallel(
        file, 4, [&](const bundle::StreamEntry& e) { return parallel.target(e); }, progress);
    CHECK(progress.total() == reader.descriptor().blob_bytes());
  }
  check_same_entries(parallel.committed(), sequential.committed());
  CHECK(stats.entries == expected.entries);
  CHECK(stats.entries == b.listed.size());
  CHECK(stats.bytes == expected.bytes);
  CHECK(stats.bytes == total_bytes(b.listed));
  CHECK(stats.complete);
  // Progress counts the blob bytes and ends at the total (100 %); the metadata entries
  // (ferry.json, index.json, oci-layout) are the difference to stats.bytes.
  CHECK(progress.done() == progress.total());
  CHECK(progress.done() < stats.bytes);

  // One thread at a time in target() and commit().
  CHECK_FALSE(parallel.target_overlapped());
  CHECK_FALSE(parallel.commit_overlapped());

  // The layout and the manifests on this thread, configs and layers on workers.
  const auto asked_by = parallel.asked_by();
  const auto written_by = parallel.written_by();
  const auto self = std::this_thread::get_id();
  for (const std::string path : {"oci-layout", "index.json"}) CHECK(asked_by.at(path) == self);
  for (const auto& path : b.manifest_paths) {
    CAPTURE(path);
    CHECK(asked_by.at(path) == self);
    CHECK(written_by.at(path) == std::set<std::thread::id>{self});
  }
  std::set<std::thread::id> workers;
  for (const auto& path : b.layer_paths) {
    CAPTURE(path);
    CHECK(asked_by.at(path) != self);
    CHECK(written_by.at(path).count(self) == 0);
    workers.insert(written_by.at(path).begin(), written_by.at(path).end());
  }
  CHECK(workers.size() >= 2); // several workers really ran
  CHECK(workers.size() <= 4); // and no more than `jobs`
}

TEST_CASE("BundleReader::read_entries_parallel names a corrupt layer and its digest and never commits it") {
  TestDir dir;
  // 0 ferry.json, 1 .sig, 2 oci-layout, 3 index.json, 4-5 the manifests, 6 the first
  // image's config, 7-8 its layers, 9 the second image's config, 10-11 its layers.
  std::size_t tampered = 0;
  SUBCASE("the first blob the workers get (the first image's config)") { tampered = 6; }
  SUBCASE("a layer of the second image") { tampered = 10; }
  REQUIRE(tampered != 0);
  std::string path;
  const Built b = make_bundle({.images = 2, .layers_per_image = 2, .layer_size = 2u << 20, .seed = 70},
                              [&](std::vector<BundleEntry>& entries) {
                                path = entries.at(tampered).path;
                                std::string& bytes = entries.at(tampered).bytes;
                                bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x40);
                              });
  REQUIRE(b.listed.count(path) == 1);
  const std::string expected_digest = "sha256:" + path.substr(std::string("blobs/sha256/").size());
  const fs::path file = dir / "bundle.tar.zst";
  write_file(file, b.bytes);

  Recorder recorder;
  const std::string message = message_of([&] { read_parallel(file, b, 4, recorder); });
  CHECK(contains(message, "bundle entry " + path));
  CHECK(contains(message, "expected " + expected_digest));
  CHECK(contains(message, tampered == 6 ? b.image_refs[0] : b.image_refs[1]));
  CHECK_FALSE(recorder.has_committed(path));
  // Whatever was committed before the failure is intact.
  for (const auto& [committed_path, bytes] : recorder.committed()) {
    CAPTURE(committed_path);
    CHECK(bytes == b.listed.at(committed_path));
  }
}

TEST_CASE("BundleReader::read_entries_parallel reads a bundle recompressed as one zstd frame") {
  TestDir dir;
  const Built& b = large_bundle();
  const fs::path file = dir / "bundle.tar.zst";
  SUBCASE("one frame") {
    write_file(file, zstd_compress(zstd_decompress(b.bytes), 3));
    REQUIRE(walk(file).size() == 1);
  }
  SUBCASE("no compression at all") { write_file(file, zstd_decompress(b.bytes)); }

  Recorder recorder;
  const bundle::StreamStats stats = read_parallel(file, b, 4, recorder);
  check_same_entries(recorder.committed(), b.listed);
  CHECK(stats.entries == b.listed.size());
  CHECK(stats.bytes == total_bytes(b.listed));
  CHECK(stats.complete);
  // read_entries ran: every sink was asked for on this thread.
  for (const auto& [path, thread] : recorder.asked_by()) {
    CAPTURE(path);
    CHECK(thread == std::this_thread::get_id());
  }
}

TEST_CASE("BundleReader::read_entries_parallel with one job reads sequentially") {
  TestDir dir;
  const Built b = test::build_bundle();
  const fs::path file = dir / "bundle.tar.zst";
  write_file(file, b.bytes);
  Recorder recorder;
  const bundle::StreamStats stats = read_parallel(file, b, 1, recorder);
  check_same_entries(recorder.committed(), b.listed);
  CHECK(stats.entries == b.listed.size());
  for (const auto& [path, thread] : recorder.asked_by()) CHECK(thread == std::this_thread::get_id());
}

TEST_CASE("BundleReader::read_entries_parallel refuses a bundle cut short") {
  TestDir dir;
  const Built& b = large_bundle();
  const fs::path file = dir / "bundle.tar.zst";
  write_file(file, b.bytes);
  const std::vector<FrameExtent> frames = walk(file);
  REQUIRE(frames.size() == b.entries.size() + 1);

  SUBCASE("in the middle of a layer's frame") {
    const std::string path = b.layer_paths.at(4);
    const FrameExtent frame = frames.at(index_of(b, path));
    const auto cut = frame.offset + frame.length / 2;
    write_file(file, std::string_view(b.bytes).substr(0, cut));
    Recorder recorder;
    const std::string message = message_of([&] { read_parallel(file, b, 4, recorder); });
    CHECK(contains(message, k_display));
    CHECK(contains(message, "truncated"));
    CHECK_FALSE(recorder.has_committed(path));
  }
  SUBCASE("exactly before the end-of-archive frame") {
    write_file(file, std::string_view(b.bytes).substr(0, frames.back().offset));
    Recorder recorder;
    const std::string message = message_of([&] { read_parallel(file, b, 4, recorder); });
    CHECK(contains(message, k_display));
    CHECK(contains(message, "end-of-archive"));
  }
}

TEST_CASE("BundleReader::read_entries_parallel refuses frames after the end of the archive") {
  TestDir dir;
  const Built& b = large_bundle();
  const fs::path file = dir / "bundle.tar.zst";
  std::string appended;
  std::string expected;
  SUBCASE("a frame with an entry ferry.json does not list") {
    core::StringSink out;
    bundle::TarWriter tar(out, {});
    tar.add({.path = "extra.txt", .size = 6}, std::string_view("extra\n"));
    tar.finish();
    const std::string stream = out.take();
    appended = stream.substr(0, ZSTD_findFrameCompressedSize(stream.data(), stream.size())); // the entry's frame
    expected = "extra.txt";
  }
  SUBCASE("a second copy of a layer's frame") {
    const std::vector<FrameExtent> frames = walk_bytes(dir, b.bytes);
    const std::string path = b.layer_paths.at(1);
    const FrameExtent frame = frames.at(index_of(b, path));
    appended = b.bytes.substr(frame.offset, frame.length);
    expected = path;
  }
  SUBCASE("a second end-of-archive frame") {
    core::StringSink out;
    bundle::TarWriter tar(out, {});
    tar.finish();
    appended = out.take();
    expected = "end-of-archive";
  }
  SUBCASE("an empty zstd frame") {
    appended = zstd_compress("", 3);
    expected = k_display;
  }
  REQUIRE(!appended.empty());
  REQUIRE(walk_bytes(dir, appended).size() == 1); // exactly one valid zstd frame
  write_file(file, b.bytes + appended);

  Recorder recorder;
  const std::string message = message_of([&] { read_parallel(file, b, 4, recorder); });
  CHECK(contains(message, expected));
}

TEST_CASE("BundleReader::read_entries_parallel stops where stop_early says") {
  TestDir dir;
  // Two images of twelve small layers: 26 blobs for the workers, far more than four
  // workers and their queue hold at once.
  static const Built b = make_bundle({.images = 2, .layers_per_image = 12, .layer_size = 256u << 10, .seed = 90});
  const fs::path file = dir / "bundle.tar.zst";
  write_file(file, b.bytes);
  std::set<std::string> metadata = {"oci-layout", "index.json"};
  metadata.insert(b.manifest_paths.begin(), b.manifest_paths.end());

  Recorder recorder;
  auto committed_manifests = [&] {
    return std::all_of(b.manifest_paths.begin(), b.manifest_paths.end(),
                       [&](const std::string& p) { return recorder.has_committed(p); });
  };
  auto committed_layers = [&] {
    return std::count_if(b.layer_paths.begin(), b.layer_paths.end(),
                         [&](const std::string& p) { return recorder.has_committed(p); });
  };

  SUBCASE("before the first entry") {
    const bundle::StreamStats stats = read_parallel(file, b, 4, recorder, [] { return true; });
    CHECK_FALSE(stats.complete);
    CHECK(stats.entries == 0);
    CHECK(recorder.committed().empty());
  }
  SUBCASE("once the manifests are committed: no layer is read") {
    // The manifests come before every other blob and are read on the calling thread,
    // which asks stop_early before each frame: nothing was handed to a worker yet.
    const bundle::StreamStats stats = read_parallel(file, b, 4, recorder, committed_manifests);
    CHECK_FALSE(stats.complete);
    CHECK(stats.entries == metadata.size());
    const auto committed = recorder.committed();
    CHECK(committed.size() == metadata.size());
    for (const auto& path : metadata) CHECK(committed.count(path) == 1);
    CHECK(recorder.asked_by().size() == metadata.size()); // no sink was even asked for
  }
  SUBCASE("once two layers are committed: exactly the frames already handed out follow") {
    // In the worker phase stop_early is asked before each frame is queued, and every
    // queued frame is still read and committed. The calling thread also asks once for
    // the first layer's frame before the workers start (it finds the frame is a layer
    // and hands it over), so the frames queued are the `false` answers given after the
    // manifests, minus one.
    int false_after_manifests = 0;
    const bundle::StreamStats stats = read_parallel(file, b, 4, recorder, [&] {
      const bool stop = committed_layers() >= 2;
      if (!stop && committed_manifests()) ++false_after_manifests;
      return stop;
    });
    CHECK_FALSE(stats.complete);
    const auto layers = static_cast<std::size_t>(committed_layers());
    CHECK(layers >= 2);
    CHECK(layers < b.layer_paths.size());
    CHECK(layers == static_cast<std::size_t>(false_after_manifests - 1));
    CHECK(stats.entries == metadata.size() + layers);
    // The committed blobs are the first ones in stream order, with their bytes.
    const auto committed = recorder.committed();
    for (std::size_t i = 0; i < b.layer_paths.size(); ++i) {
      CAPTURE(i);
      CHECK(committed.count(b.layer_paths[i]) == (i < layers ? 1u : 0u));
    }
    for (const auto& [path, bytes] : committed) CHECK(bytes == b.listed.at(path));
  }
}

TEST_CASE("BundleReader::read_entries_parallel refuses a manifest after the layers") {
  TestDir dir;
  // Image by image instead of the manifests first: 4 the first manifest, 5 its config,
  // 6-7 its layers, 8 the second manifest, 9 its config, 10-11 its layers.
  std::string moved;
  const Built b = make_bundle({.images = 2, .layers_per_image = 2, .layer_size = 1u << 20, .seed = 120},
                              [&](std::vector<BundleEntry>& entries) {
                                BundleEntry manifest = entries.at(5);
                                moved = manifest.path;
                                entries.erase(entries.begin() + 5);
                                entries.insert(entries.begin() + 8, std::move(manifest));
                              });
  REQUIRE(b.entries.at(8).path == moved);
  const fs::path file = dir / "bundle.tar.zst";
  write_file(file, b.bytes);

  SUBCASE("read_entries accepts the order") {
    Recorder recorder;
    read_sequential(file, b, recorder);
    check_same_entries(recorder.committed(), b.listed);
  }
  SUBCASE("read_entries_parallel does not") {
    Recorder recorder;
    const std::string message = message_of([&] { read_parallel(file, b, 4, recorder); });
    CHECK(contains(message, moved));
    CHECK(contains(message, "manifest after the layers"));
    CHECK_FALSE(recorder.has_committed(moved));
  }
}

} // TEST_SUITE
