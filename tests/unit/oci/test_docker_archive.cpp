// Tests for oci/docker_archive: classic and OCI docker-save tars, compressed or not.
// SPDX-License-Identifier: Apache-2.0
#include "oci/docker_archive.hpp"

#include "core/c_handle.hpp"
#include "core/error.hpp"
#include "core/fs.hpp"
#include "core/io.hpp"
#include "oci/layout_reader.hpp"
#include "oci/manifest.hpp"
#include "oci/media_types.hpp"
#include "support/test_support.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace fs = std::filesystem;
namespace media_type = ferry::oci::media_type;
using ferry::core::Digest;
using ferry::core::IntegrityError;
using ferry::core::sha256_of;
using ferry::core::UsageError;
using ferry::oci::BlobRef;
using ferry::oci::BlobStore;
using ferry::oci::Checked;
using ferry::oci::Descriptor;
using ferry::oci::ImageIndex;
using ferry::oci::ImageManifest;
using ferry::oci::load_docker_archive_image;
using ferry::oci::PlatformFilter;
using ferry::oci::ResolvedImage;
using ferry::test::contains;
using ferry::test::have_tool;
using ferry::test::read_file;
using ferry::test::run_shell;
using ferry::test::shell_quote;
using ferry::test::Stderr;
using ferry::test::TestDir;
using ferry::test::write_file;
using nlohmann::json;

namespace {

class RecordingLog final : public ferry::core::LogSink {
public:
  void log(ferry::core::LogLevel, std::string_view message) override { lines.emplace_back(message); }
  std::vector<std::string> lines;
};

struct Entry {
  std::string path;
  std::string bytes;
  std::string symlink; // non-empty: a symbolic link to this target
};

enum class TarFormat { pax, gnu };
enum class Filter { none, gzip, zstd };

using ArchiveWrite = std::unique_ptr<archive, ferry::core::CDeleter<archive_write_free>>;
using ArchiveEntry = std::unique_ptr<archive_entry, ferry::core::CDeleter<archive_entry_free>>;

// Writes a tar the way docker and skopeo do (pax or GNU headers for long names).
void write_tar(const fs::path& file, const std::vector<Entry>& entries, TarFormat format = TarFormat::pax,
               Filter filter = Filter::none) {
  ArchiveWrite a(archive_write_new());
  REQUIRE(a);
  REQUIRE(ARCHIVE_OK == (format == TarFormat::pax ? archive_write_set_format_pax_restricted(a.get())
                                                  : archive_write_set_format_gnutar(a.get())));
  if (filter == Filter::gzip) REQUIRE(ARCHIVE_OK == archive_write_add_filter_gzip(a.get()));
  if (filter == Filter::zstd) REQUIRE(ARCHIVE_OK == archive_write_add_filter_zstd(a.get()));
  REQUIRE(ARCHIVE_OK == archive_write_open_filename(a.get(), file.c_str()));
  for (const auto& e : entries) {
    ArchiveEntry header(archive_entry_new());
    archive_entry_set_pathname(header.get(), e.path.c_str());
    archive_entry_set_perm(header.get(), 0644);
    if (e.symlink.empty()) {
      archive_entry_set_filetype(header.get(), AE_IFREG);
      archive_entry_set_size(header.get(), static_cast<la_int64_t>(e.bytes.size()));
    } else {
      archive_entry_set_filetype(header.get(), AE_IFLNK);
      archive_entry_set_symlink(header.get(), e.symlink.c_str());
    }
    REQUIRE(ARCHIVE_OK == archive_write_header(a.get(), header.get()));
    if (!e.bytes.empty()) {
      REQUIRE(archive_write_data(a.get(), e.bytes.data(), e.bytes.size()) == static_cast<la_ssize_t>(e.bytes.size()));
    }
  }
  REQUIRE(ARCHIVE_OK == archive_write_close(a.get()));
}

std::string read_range(const fs::path& file, std::uint64_t offset, std::uint64_t size) {
  ferry::core::FileSource source(file);
  source.seek(offset);
  ferry::core::ExactSource exact(source, size, file.string());
  return ferry::core::read_all(exact, static_cast<std::size_t>(size), file.string());
}

std::string bytes_of(const BlobRef& ref) { return read_range(ref.file, ref.offset, ref.descriptor.size); }

// A classic `docker save` archive with two images sharing a layer:
//   nginx:1.27            linux/arm64/v8, layers one + two (two has a 130-character name)
//   quay.io/example/tool:2  linux/amd64, layer one, listed through a symlink as skopeo writes
struct ClassicArchive {
  ClassicArchive() {
    layer_one = "LAYR" + ferry::test::random_bytes(996, 11); // 1000 bytes: padded in the tar
    layer_two = "LAYR" + ferry::test::random_bytes(1532, 12); // 1536 bytes: no padding
    const std::string d1 = sha256_of(layer_one).str();
    const std::string d2 = sha256_of(layer_two).str();
    config_a = R"({"architecture":"arm64","os":"linux","variant":"v8","rootfs":{"type":"layers","diff_ids":[")" + d1 +
               R"(",")" + d2 + R"("]},"config":{"Cmd":["nginx"]}})";
    config_b = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[")" + d1 + R"("]}})";
    config_a_path = std::string(sha256_of(config_a).hex()) + ".json";
    config_b_path = std::string(sha256_of(config_b).hex()) + ".json";
    layer_one_path = std::string(sha256_of("id1").hex()) + "/layer.tar";
    layer_two_path = std::string(sha256_of("id2").hex()) + "/" + std::string(120, 'x') + ".tar";
    link_path = std::string(sha256_of("id3").hex()) + "/layer.tar";
  }

  std::string manifest_json() const {
    return R"([{"Config":")" + config_a_path + R"(","RepoTags":["nginx:1.27"],"Layers":[")" + layer_one_path +
           R"(",")" + layer_two_path + R"("]},{"Config":")" + config_b_path +
           R"(","RepoTags":["quay.io/example/tool:2"],"Layers":[")" + link_path + R"("]}])";
  }

  std::vector<Entry> entries() const {
    return {
        {layer_one_path, layer_one, ""},
        {layer_two_path, layer_two, ""},
        {config_a_path, config_a, ""},
        {config_b_path, config_b, ""},
        {link_path, "", "../" + layer_one_path},
        {"manifest.json", manifest_json(), ""},
        {"repositories", R"({"nginx":{"1.27":"x"}})", ""},
    };
  }

  std::string layer_one, layer_two, config_a, config_b;
  std::string config_a_path, config_b_path, layer_one_path, layer_two_path, link_path;
};

template <typename E, typename Fn>
E error_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e;
  }
  FAIL("no exception of the expected type");
  return E("none");
}

} // namespace

TEST_SUITE("oci") {

TEST_CASE("load_docker_archive_image locates each layer's bytes in the tar") {
  TestDir tmp;
  const ClassicArchive fixture;
  TarFormat format = TarFormat::pax;
  SUBCASE("pax headers") { format = TarFormat::pax; }
  SUBCASE("GNU headers") { format = TarFormat::gnu; }
  write_tar(tmp / "app.tar", fixture.entries(), format);
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  const ResolvedImage image = load_docker_archive_image(tmp / "app.tar", "nginx:1.27", PlatformFilter(), store, log);
  REQUIRE(image.blobs.size() == 4);
  CHECK(image.blobs[2].file == tmp / "app.tar");
  CHECK(image.blobs[2].checked == Checked::no);
  CHECK(bytes_of(image.blobs[2]) == fixture.layer_one);
  CHECK(image.blobs[3].file == tmp / "app.tar");
  CHECK(bytes_of(image.blobs[3]) == fixture.layer_two);
  CHECK(image.blobs[3].descriptor.size == 1536);
}

TEST_CASE("load_docker_archive_image synthesises a deterministic OCI manifest") {
  TestDir tmp;
  const ClassicArchive fixture;
  write_tar(tmp / "app.tar", fixture.entries());
  BlobStore store(tmp / "store");
  BlobStore other_store(tmp / "other");
  ferry::core::NullLog log;
  const ResolvedImage image = load_docker_archive_image(tmp / "app.tar", "nginx:1.27", PlatformFilter(), store, log);
  const ResolvedImage again =
      load_docker_archive_image(tmp / "app.tar", "nginx:1.27", PlatformFilter(), other_store, log);
  CHECK(image.root.digest == again.root.digest);
  CHECK(image.ref_name == "nginx:1.27");
  CHECK_FALSE(image.source_digest);
  CHECK(image.platforms == std::vector<std::string>{"linux/arm64/v8"});
  CHECK(image.root.media_type == media_type::oci_manifest);

  // The manifest: stored, first, and exactly the expected document.
  REQUIRE(store.contains(image.root.digest));
  const std::string bytes = read_file(store.path(image.root.digest));
  CHECK(sha256_of(bytes) == image.root.digest);
  CHECK(bytes.size() == image.root.size);
  CHECK(image.blobs[0].descriptor.digest == image.root.digest);
  CHECK(image.blobs[0].checked == Checked::yes);
  const json doc = json::parse(bytes);
  CHECK(doc["mediaType"] == media_type::oci_manifest);
  CHECK(doc["config"]["mediaType"] == media_type::oci_config);
  CHECK(doc["config"]["digest"] == sha256_of(fixture.config_a).str());
  CHECK(doc["config"]["size"] == fixture.config_a.size());
  REQUIRE(doc["layers"].size() == 2);
  CHECK(doc["layers"][0]["digest"] == sha256_of(fixture.layer_one).str()); // the diff_ids
  CHECK(doc["layers"][1]["digest"] == sha256_of(fixture.layer_two).str());
  CHECK(doc["layers"][0]["mediaType"] == media_type::oci_layer);
  CHECK(doc["layers"][1]["size"] == 1536);
  CHECK(bytes == R"({"config":{"digest":")" + sha256_of(fixture.config_a).str() +
                     R"(","mediaType":"application/vnd.oci.image.config.v1+json","size":)" +
                     std::to_string(fixture.config_a.size()) + R"(},"layers":[{"digest":")" +
                     sha256_of(fixture.layer_one).str() +
                     R"(","mediaType":"application/vnd.oci.image.layer.v1.tar","size":1000},{"digest":")" +
                     sha256_of(fixture.layer_two).str() +
                     R"(","mediaType":"application/vnd.oci.image.layer.v1.tar","size":1536}],)"
                     R"("mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2})");

  // The config: its bytes exactly, so its digest is the image ID docker shows.
  const BlobRef& config = image.blobs[1];
  CHECK(config.descriptor.digest.hex() == fixture.config_a_path.substr(0, 64));
  CHECK(config.checked == Checked::yes);
  CHECK(read_file(config.file) == fixture.config_a);
}

TEST_CASE("load_docker_archive_image picks an image by RepoTag") {
  TestDir tmp;
  const ClassicArchive fixture;
  write_tar(tmp / "app.tar", fixture.entries());
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  const auto load = [&](std::string_view ref) {
    return load_docker_archive_image(tmp / "app.tar", ref, PlatformFilter(), store, log);
  };
  SUBCASE("a Docker Hub short name as recorded") { CHECK(load("nginx:1.27").platforms[0] == "linux/arm64/v8"); }
  SUBCASE("the full name of a short RepoTag") {
    const ResolvedImage image = load("docker.io/library/nginx:1.27");
    CHECK(image.ref_name == "nginx:1.27");
    CHECK(image.platforms[0] == "linux/arm64/v8");
  }
  SUBCASE("another registry") {
    const ResolvedImage image = load("quay.io/example/tool:2");
    CHECK(image.ref_name == "quay.io/example/tool:2");
    CHECK(image.platforms == std::vector<std::string>{"linux/amd64"});
  }
  SUBCASE("by position, as skopeo's @N") { CHECK(load("@1").ref_name == "quay.io/example/tool:2"); }
  SUBCASE("unknown tag: the tags are listed") {
    const auto e = error_of<UsageError>([&] { load("nginx:1.28"); });
    CHECK(contains(e.what(), "has no image nginx:1.28 (tags: nginx:1.27, quay.io/example/tool:2)"));
    CHECK(contains(e.hint(), ":nginx:1.27?"));
  }
  SUBCASE("no ref and two images") {
    const auto e = error_of<UsageError>([&] { load(""); });
    CHECK(contains(e.what(), "holds 2 images"));
    CHECK(contains(e.what(), "nginx:1.27, quay.io/example/tool:2"));
  }
}

TEST_CASE("load_docker_archive_image without a ref takes the only image") {
  TestDir tmp;
  const ClassicArchive fixture;
  std::vector<Entry> entries = fixture.entries();
  entries[5].bytes = R"([{"Config":")" + fixture.config_b_path + R"(","RepoTags":null,"Layers":[")" +
                     fixture.layer_one_path + R"("]}])";
  write_tar(tmp / "app.tar", entries);
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  const ResolvedImage image = load_docker_archive_image(tmp / "app.tar", "", PlatformFilter(), store, log);
  CHECK(image.ref_name.empty());
  CHECK(image.platforms == std::vector<std::string>{"linux/amd64"});
  CHECK(image.blobs.size() == 3);
}

TEST_CASE("load_docker_archive_image follows a symlinked layer to its bytes") {
  TestDir tmp;
  const ClassicArchive fixture;
  write_tar(tmp / "app.tar", fixture.entries());
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  const ResolvedImage a = load_docker_archive_image(tmp / "app.tar", "nginx:1.27", PlatformFilter(), store, log);
  const ResolvedImage b =
      load_docker_archive_image(tmp / "app.tar", "quay.io/example/tool:2", PlatformFilter(), store, log);
  REQUIRE(b.blobs.size() == 3);
  CHECK(b.blobs[2].offset == a.blobs[2].offset);
  CHECK(bytes_of(b.blobs[2]) == fixture.layer_one);
}

TEST_CASE("load_docker_archive_image hashes compressed layers of a classic archive") {
  TestDir tmp;
  ClassicArchive fixture;
  fixture.layer_two = std::string("\x1f\x8b\x08\x00", 4) + ferry::test::random_bytes(700, 5);
  write_tar(tmp / "app.tar", fixture.entries());
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  const ResolvedImage image = load_docker_archive_image(tmp / "app.tar", "nginx:1.27", PlatformFilter(), store, log);
  REQUIRE(image.blobs.size() == 4);
  CHECK(image.blobs[3].descriptor.media_type == media_type::oci_layer_gzip);
  CHECK(image.blobs[3].descriptor.digest == sha256_of(fixture.layer_two));
  CHECK(bytes_of(image.blobs[3]) == fixture.layer_two);
  CHECK(image.blobs[2].descriptor.media_type == media_type::oci_layer);
}

TEST_CASE("load_docker_archive_image refuses a config whose diff_ids do not match the layers") {
  TestDir tmp;
  ClassicArchive fixture;
  std::vector<Entry> entries = fixture.entries();
  entries[2].bytes = fixture.config_b; // one diff_id for two layers
  write_tar(tmp / "app.tar", entries);
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  const auto e = error_of<IntegrityError>(
      [&] { load_docker_archive_image(tmp / "app.tar", "nginx:1.27", PlatformFilter(), store, log); });
  CHECK(std::string(e.what()) == "corrupt docker-save archive " + (tmp / "app.tar").string() + ": config " +
                                     fixture.config_a_path + " lists 1 diff_ids, but manifest.json lists 2 layers");
}

TEST_CASE("load_docker_archive_image refuses a damaged archive") {
  TestDir tmp;
  const ClassicArchive fixture;
  const fs::path file = tmp / "app.tar";
  std::string expected = "corrupt docker-save archive " + file.string() + ": ";
  SUBCASE("truncated in a layer") {
    write_tar(file, fixture.entries());
    const std::string bytes = read_file(file);
    write_file(file, bytes.substr(0, 2000));
  }
  SUBCASE("truncated in the last entry") {
    write_tar(file, fixture.entries());
    const std::string bytes = read_file(file);
    const std::size_t at = bytes.find(R"({"nginx")");
    REQUIRE(at != std::string::npos);
    write_file(file, bytes.substr(0, at + 3));
  }
  SUBCASE("not a tar") { write_file(file, std::string(4096, 'z')); }
  SUBCASE("no manifest.json") {
    std::vector<Entry> entries = fixture.entries();
    entries.erase(entries.begin() + 5);
    write_tar(file, entries);
    expected += "entry manifest.json (the image list) is missing";
  }
  SUBCASE("a layer entry missing") {
    std::vector<Entry> entries = fixture.entries();
    entries.erase(entries.begin() + 1);
    write_tar(file, entries);
    expected += "entry " + fixture.layer_two_path + " (layer 2 of docker-archive:" + file.string() +
                ":nginx:1.27) is missing";
  }
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  const auto e =
      error_of<IntegrityError>([&] { load_docker_archive_image(file, "nginx:1.27", PlatformFilter(), store, log); });
  CHECK(std::string(e.what()).rfind(expected, 0) == 0);
  CHECK(std::string(e.what()).size() > std::string("corrupt docker-save archive " + file.string() + ": ").size());
}

TEST_CASE("load_docker_archive_image on a missing file is a UsageError") {
  TestDir tmp;
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  const auto e = error_of<UsageError>(
      [&] { load_docker_archive_image(tmp / "missing.tar", "", PlatformFilter(), store, log); });
  CHECK(std::string(e.what()) == "docker-save archive " + (tmp / "missing.tar").string() + " does not exist");
}

TEST_CASE("load_docker_archive_image reads a compressed archive from a decompressed copy") {
  TestDir tmp;
  const ClassicArchive fixture;
  Filter filter = Filter::gzip;
  SUBCASE("gzip") { filter = Filter::gzip; }
  SUBCASE("zstd") { filter = Filter::zstd; }
  write_tar(tmp / "app.tar.gz", fixture.entries(), TarFormat::pax, filter);
  BlobStore store(tmp / "store");
  RecordingLog log;
  const ResolvedImage image =
      load_docker_archive_image(tmp / "app.tar.gz", "nginx:1.27", PlatformFilter(), store, log);
  REQUIRE(image.blobs.size() == 4);
  const fs::path copy = image.blobs[2].file;
  CHECK(copy.parent_path() == tmp / "store");
  CHECK(bytes_of(image.blobs[2]) == fixture.layer_one);
  CHECK(bytes_of(image.blobs[3]) == fixture.layer_two);
  CHECK(image.blobs[3].file == copy);
  REQUIRE_FALSE(log.lines.empty());
  CHECK(contains(log.lines[0], "decompressing"));
  CHECK(contains(log.lines[0], (tmp / "app.tar.gz").string()));
}

TEST_CASE("load_docker_archive_image refuses a truncated compressed archive and leaves no copy") {
  TestDir tmp;
  const ClassicArchive fixture;
  write_tar(tmp / "app.tar.gz", fixture.entries(), TarFormat::pax, Filter::gzip);
  const std::string bytes = read_file(tmp / "app.tar.gz");
  write_file(tmp / "app.tar.gz", bytes.substr(0, bytes.size() / 2));
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  const auto e = error_of<IntegrityError>(
      [&] { load_docker_archive_image(tmp / "app.tar.gz", "nginx:1.27", PlatformFilter(), store, log); });
  CHECK(std::string(e.what()).rfind("corrupt docker-save archive " + (tmp / "app.tar.gz").string() + ": ", 0) == 0);
  CHECK(fs::is_empty(tmp / "store/blobs/sha256"));
  CHECK(std::distance(fs::directory_iterator(tmp / "store"), fs::directory_iterator()) == 1); // blobs/ only
}

TEST_CASE("load_docker_archive_image walks the OCI layout of a Docker 25 archive") {
  TestDir tmp;
  const std::string layer = ferry::test::random_bytes(1234, 21);
  const std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[")" +
                             sha256_of(layer).str() + R"("]}})";
  // Pretty-printed, as Docker writes it: the manifest must stay byte-exact.
  const std::string manifest = "{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"" +
                               std::string(media_type::oci_manifest) + "\",\n  \"config\": {\"mediaType\": \"" +
                               std::string(media_type::oci_config) + "\", \"digest\": \"" + sha256_of(config).str() +
                               "\", \"size\": " +
                               std::to_string(config.size()) + "},\n  \"layers\": [{\"mediaType\": \"" +
                               std::string(media_type::oci_layer) + "\", \"digest\": \"" + sha256_of(layer).str() +
                               "\", \"size\": 1234}]\n}\n";
  const std::string index = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
                            R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                            sha256_of(manifest).str() + R"(","size":)" + std::to_string(manifest.size()) +
                            R"(,"annotations":{"io.containerd.image.name":"docker.io/library/nginx:1.27",)"
                            R"("org.opencontainers.image.ref.name":"1.27"}}]})";
  const auto blob_path = [](const std::string& bytes) { return "blobs/sha256/" + std::string(sha256_of(bytes).hex()); };
  std::vector<Entry> entries = {
      {"blobs/sha256/", "", ""},
      {blob_path(layer), layer, ""},
      {blob_path(config), config, ""},
      {blob_path(manifest), manifest, ""},
      {"index.json", index, ""},
      {"manifest.json", R"([{"Config":")" + blob_path(config) + R"(","RepoTags":["nginx:1.27"],"Layers":[")" +
                            blob_path(layer) + R"("]}])",
       ""},
      {"oci-layout", R"({"imageLayoutVersion":"1.0.0"})", ""},
  };
  entries.erase(entries.begin()); // (a directory entry is no regular file; keep the list simple)
  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  SUBCASE("byte-exact manifests, blobs in place") {
    write_tar(tmp / "app.tar", entries);
    std::string ref = "nginx:1.27";
    SUBCASE("by containerd name") { ref = "nginx:1.27"; }
    SUBCASE("by ref.name") { ref = "1.27"; }
    const ResolvedImage image = load_docker_archive_image(tmp / "app.tar", ref, PlatformFilter(), store, log);
    CHECK(image.ref_name == "docker.io/library/nginx:1.27");
    CHECK(image.root.digest == sha256_of(manifest));
    CHECK_FALSE(image.source_digest);
    CHECK(image.platforms == std::vector<std::string>{"linux/amd64"});
    REQUIRE(image.blobs.size() == 3);
    CHECK(bytes_of(image.blobs[0]) == manifest);
    CHECK(bytes_of(image.blobs[1]) == config);
    CHECK(bytes_of(image.blobs[2]) == layer);
    for (const auto& blob : image.blobs) {
      CHECK(blob.file == tmp / "app.tar");
      CHECK(blob.checked == Checked::no);
    }
  }
  SUBCASE("a manifest blob with other bytes") {
    std::string damaged = manifest;
    damaged[damaged.size() - 1] = ' ';
    entries[2].bytes = damaged;
    write_tar(tmp / "app.tar", entries);
    const auto e = error_of<IntegrityError>(
        [&] { load_docker_archive_image(tmp / "app.tar", "", PlatformFilter(), store, log); });
    CHECK(contains(e.what(), "corrupt docker-save archive " + (tmp / "app.tar").string() + ": entry " +
                                 blob_path(manifest)));
    CHECK(contains(e.what(), "has digest " + sha256_of(damaged).str() + ", expected " + sha256_of(manifest).str()));
  }
}

TEST_CASE("load_docker_archive_image reads what skopeo writes from a umoci image") {
  if (!have_tool("skopeo") || !have_tool("umoci")) {
    MESSAGE("skipped: skopeo or umoci is not on PATH");
    return;
  }
  TestDir tmp;
  const fs::path layout = tmp / "layout";
  write_file(tmp / "hello.txt", "hello from ferry\n");
  write_file(tmp / "big.bin", ferry::test::random_bytes(300000, 31));
  const auto must = [](const std::string& command) {
    const auto r = run_shell(command);
    REQUIRE_MESSAGE(r.status == 0, command << "\n" << r.output);
  };
  must("umoci init --layout " + shell_quote(layout));
  must("umoci new --image " + shell_quote(layout) + ":t");
  must("umoci insert --image " + shell_quote(layout) + ":t " + shell_quote(tmp / "hello.txt") + " /hello.txt");
  must("umoci insert --image " + shell_quote(layout) + ":t " + shell_quote(tmp / "big.bin") + " /opt/big.bin");
  const fs::path archive_file = tmp / "app.tar";
  must("skopeo copy oci:" + shell_quote(layout) + ":t docker-archive:" + shell_quote(archive_file) + ":example/app:1");
  // Only stdout: it is parsed as JSON.
  const auto raw = run_shell("skopeo inspect --raw oci:" + shell_quote(layout) + ":t", Stderr::discard);
  const auto raw_config =
      run_shell("skopeo inspect --config --raw docker-archive:" + shell_quote(archive_file), Stderr::discard);
  REQUIRE(raw.status == 0);
  REQUIRE(raw_config.status == 0);
  const json oci_manifest = json::parse(raw.output);
  const json config = json::parse(raw_config.output);

  BlobStore store(tmp / "store");
  ferry::core::NullLog log;
  SUBCASE("the docker-save archive") {
    const ResolvedImage image =
        load_docker_archive_image(archive_file, "example/app:1", PlatformFilter(), store, log);
    CHECK(image.ref_name == "docker.io/example/app:1");
    REQUIRE(image.blobs.size() == 4);
    CHECK(image.blobs[1].descriptor.digest == sha256_of(raw_config.output));
    CHECK(image.blobs[1].descriptor.digest.str() == oci_manifest["config"]["digest"]);
    const json& diff_ids = config["rootfs"]["diff_ids"];
    REQUIRE(diff_ids.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
      const BlobRef& layer = image.blobs[2 + i];
      CHECK(layer.descriptor.digest.str() == diff_ids[i]);
      CHECK(sha256_of(bytes_of(layer)) == layer.descriptor.digest); // the offsets are right
    }
    CHECK(image.platforms == std::vector<std::string>{config["os"].get<std::string>() + "/" +
                                                      config["architecture"].get<std::string>()});
  }
  SUBCASE("the OCI layout itself") {
    const ResolvedImage image = ferry::oci::load_layout_image(layout, "t", PlatformFilter(), store, log);
    CHECK(image.ref_name == "t");
    REQUIRE(image.blobs.size() == 4);
    CHECK(image.blobs[1].descriptor.digest.str() == oci_manifest["config"]["digest"]);
    for (const auto& blob : image.blobs) CHECK(sha256_of(bytes_of(blob)) == blob.descriptor.digest);
    CHECK(image.blobs[2].descriptor.media_type == media_type::oci_layer_gzip);
  }
}

} // TEST_SUITE
