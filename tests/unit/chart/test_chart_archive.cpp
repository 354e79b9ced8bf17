// Tests for chart/chart_archive: packaging chart directories and reading .tgz charts.
// SPDX-License-Identifier: Apache-2.0
#include "chart/chart_archive.hpp"
#include "core/c_handle.hpp"
#include "core/error.hpp"
#include "support/test_support.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <vector>

namespace fs = std::filesystem;
using ferry::chart::load_chart;
using ferry::chart::package_chart_directory;
using ferry::chart::read_chart_archive;
using ferry::core::UsageError;
using ferry::test::contains;
using ferry::test::TestDir;
using ferry::test::write_file;

namespace {

using ArchiveReader = std::unique_ptr<archive, ferry::core::CDeleter<archive_read_free>>;
using ArchiveWriter = std::unique_ptr<archive, ferry::core::CDeleter<archive_write_free>>;
using ArchiveEntry = std::unique_ptr<archive_entry, ferry::core::CDeleter<archive_entry_free>>;

struct TarEntry {
  std::string path;
  std::string data;
  unsigned mode = 0;
  mode_t type = 0;
  std::int64_t mtime = 0;
  std::int64_t uid = 0;
  std::int64_t gid = 0;
  std::string uname;
  std::string gname;
};

// Lists a .tgz with libarchive, independently of the code under test.
std::vector<TarEntry> list_tgz(const std::string& bytes) {
  ArchiveReader a(archive_read_new());
  REQUIRE(archive_read_support_filter_gzip(a.get()) == ARCHIVE_OK);
  REQUIRE(archive_read_support_format_tar(a.get()) == ARCHIVE_OK);
  REQUIRE(archive_read_open_memory(a.get(), bytes.data(), bytes.size()) == ARCHIVE_OK);
  std::vector<TarEntry> out;
  archive_entry* entry = nullptr;
  // ARCHIVE_WARN: in the C locale a non-ASCII name has no multibyte form (see below).
  for (int r = archive_read_next_header(a.get(), &entry); r == ARCHIVE_OK || r == ARCHIVE_WARN;
       r = archive_read_next_header(a.get(), &entry)) {
    TarEntry e;
    // The tests run in the C locale, where libarchive cannot convert a non-ASCII name:
    // it then keeps the header's bytes as the multibyte form.
    const char* path = archive_entry_pathname_utf8(entry);
    if (!path) path = archive_entry_pathname(entry);
    REQUIRE(path != nullptr);
    e.path = path;
    e.mode = archive_entry_perm(entry);
    e.type = archive_entry_filetype(entry);
    e.mtime = archive_entry_mtime(entry);
    e.uid = archive_entry_uid(entry);
    e.gid = archive_entry_gid(entry);
    e.uname = archive_entry_uname(entry) ? archive_entry_uname(entry) : "";
    e.gname = archive_entry_gname(entry) ? archive_entry_gname(entry) : "";
    char buffer[4096];
    la_ssize_t n = 0;
    while ((n = archive_read_data(a.get(), buffer, sizeof buffer)) > 0) e.data.append(buffer, static_cast<std::size_t>(n));
    out.push_back(std::move(e));
  }
  return out;
}

struct RawEntry {
  std::string path;
  std::string data;
  mode_t type = AE_IFREG;
};

la_ssize_t append_output(archive*, void* client, const void* buffer, size_t length) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buffer), length);
  return static_cast<la_ssize_t>(length);
}

// Gzip-compresses `data` as it is (no tar inside).
std::string gzip_raw(const std::string& data) {
  std::string out;
  ArchiveWriter a(archive_write_new());
  REQUIRE(archive_write_set_format_raw(a.get()) == ARCHIVE_OK);
  REQUIRE(archive_write_add_filter_gzip(a.get()) == ARCHIVE_OK);
  REQUIRE(archive_write_open(a.get(), &out, nullptr, append_output, nullptr) == ARCHIVE_OK);
  ArchiveEntry entry(archive_entry_new());
  archive_entry_set_filetype(entry.get(), AE_IFREG);
  archive_entry_set_size(entry.get(), static_cast<la_int64_t>(data.size()));
  REQUIRE(archive_write_header(a.get(), entry.get()) == ARCHIVE_OK);
  REQUIRE(archive_write_data(a.get(), data.data(), data.size()) == static_cast<la_ssize_t>(data.size()));
  REQUIRE(archive_write_close(a.get()) == ARCHIVE_OK);
  return out;
}

// Writes a gzip tar with exactly these entries (for malformed archives).
std::string make_tgz(const std::vector<RawEntry>& entries) {
  std::string out;
  ArchiveWriter a(archive_write_new());
  REQUIRE(archive_write_set_format_pax_restricted(a.get()) == ARCHIVE_OK);
  REQUIRE(archive_write_add_filter_gzip(a.get()) == ARCHIVE_OK);
  REQUIRE(archive_write_open(a.get(), &out, nullptr, append_output, nullptr) == ARCHIVE_OK);
  for (const auto& raw : entries) {
    ArchiveEntry entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), raw.path.c_str());
    archive_entry_set_filetype(entry.get(), raw.type);
    archive_entry_set_perm(entry.get(), raw.type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_size(entry.get(), raw.type == AE_IFREG ? static_cast<la_int64_t>(raw.data.size()) : 0);
    REQUIRE(archive_write_header(a.get(), entry.get()) == ARCHIVE_OK);
    if (raw.type == AE_IFREG && !raw.data.empty()) {
      REQUIRE(archive_write_data(a.get(), raw.data.data(), raw.data.size()) == static_cast<la_ssize_t>(raw.data.size()));
    }
  }
  REQUIRE(archive_write_close(a.get()) == ARCHIVE_OK);
  return out;
}

const char* const k_chart_yaml = "apiVersion: v2\n"
                                 "name: demo\n"
                                 "version: 1.2.3\n"
                                 "appVersion: \"4.5\"\n"
                                 "description: A demo chart\n"
                                 "type: application\n"
                                 "annotations:\n"
                                 "  artifacthub.io/images: |\n"
                                 "    - name: app\n"
                                 "      image: quay.io/example/app:4.5\n"
                                 "  category: Storage\n";

const char* const k_deployment = "apiVersion: apps/v1\n"
                                  "kind: Deployment\n"
                                  "metadata:\n"
                                  "  name: {{ .Release.Name }}\n"
                                  "spec:\n"
                                  "  selector: {matchLabels: {app: demo}}\n"
                                  "  template:\n"
                                  "    metadata: {labels: {app: demo}}\n"
                                  "    spec:\n"
                                  "      containers:\n"
                                  "        - name: app\n"
                                  "          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n";

// A chart directory with ignored files, a hidden template and an executable script.
fs::path write_demo_chart(const TestDir& dir) {
  const fs::path chart = dir / "demo";
  write_file(chart / "Chart.yaml", k_chart_yaml);
  write_file(chart / "values.yaml", "image:\n  repository: quay.io/example/app\n  tag: \"4.5\"\n");
  write_file(chart / "templates/deployment.yaml", k_deployment);
  write_file(chart / "templates/.editor-swap", "hidden");
  write_file(chart / ".helmignore", "# editor files\n*.bak\n\ntmp/\n");
  write_file(chart / "values.yaml.bak", "old values");
  write_file(chart / "tmp/scratch.txt", "scratch");
  write_file(chart / "scripts/run.sh", "#!/bin/sh\necho hi\n");
  fs::permissions(chart / "scripts/run.sh", fs::perms::owner_exec, fs::perm_options::add);
  return chart;
}

std::vector<std::string> paths_of(const std::vector<TarEntry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.path);
  return out;
}

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UsageError& e) {
    return e.what();
  }
  FAIL("no UsageError");
  return {};
}

} // namespace

TEST_SUITE("chart") {

TEST_CASE("package_chart_directory writes sorted file entries under the chart name") {
  TestDir dir;
  const auto chart = package_chart_directory(write_demo_chart(dir), 1700000000);
  const auto entries = list_tgz(chart.archive);
  const std::vector<std::string> expected = {"demo/.helmignore", "demo/Chart.yaml", "demo/scripts/run.sh",
                                             "demo/templates/deployment.yaml", "demo/values.yaml"};
  CHECK(paths_of(entries) == expected);
  for (const auto& e : entries) {
    CAPTURE(e.path);
    CHECK(e.type == AE_IFREG);
    CHECK(e.mtime == 1700000000);
    CHECK(e.uid == 0);
    CHECK(e.gid == 0);
    CHECK(e.uname.empty());
    CHECK(e.gname.empty());
    CHECK(e.mode == (e.path == "demo/scripts/run.sh" ? 0755u : 0644u));
  }
  CHECK(entries[1].data == k_chart_yaml);
  CHECK(entries[2].data == "#!/bin/sh\necho hi\n");
}

TEST_CASE("package_chart_directory applies .helmignore rules as Helm does") {
  TestDir dir;
  const fs::path chart = dir / "demo";
  write_file(chart / "Chart.yaml", "name: demo\nversion: 0.1.0\n");
  write_file(chart / "docs/a.txt", "a");
  write_file(chart / "docs/keep.md", "k");
  write_file(chart / "tmp", "a file named like an ignored directory");
  write_file(chart / "sub/tmp/x", "x");
  write_file(chart / "root.txt", "r");
  write_file(chart / "sub/root.txt", "s");
  write_file(chart / "templates/.hidden", "h");
  write_file(chart / "templates/ok.yaml", "o");
  SUBCASE("a trailing slash matches directories only, at any depth") {
    write_file(chart / ".helmignore", "tmp/\n");
    const auto paths = paths_of(list_tgz(package_chart_directory(chart, 0).archive));
    CHECK(std::find(paths.begin(), paths.end(), "demo/tmp") != paths.end());
    CHECK(std::find(paths.begin(), paths.end(), "demo/sub/tmp/x") == paths.end());
  }
  SUBCASE("a pattern with a slash matches the whole relative path") {
    write_file(chart / ".helmignore", "docs/*.txt\n/root.txt\n");
    const std::vector<std::string> expected = {"demo/.helmignore", "demo/Chart.yaml",     "demo/docs/keep.md",
                                               "demo/sub/root.txt", "demo/sub/tmp/x", "demo/templates/ok.yaml",
                                               "demo/tmp"};
    CHECK(paths_of(list_tgz(package_chart_directory(chart, 0).archive)) == expected);
  }
  SUBCASE("a pattern without a slash matches base names, with ? and [...] globs") {
    write_file(chart / ".helmignore", "r??t.txt\n[a-c].txt\n");
    const std::vector<std::string> expected = {"demo/.helmignore", "demo/Chart.yaml", "demo/docs/keep.md",
                                               "demo/sub/tmp/x", "demo/templates/ok.yaml", "demo/tmp"};
    CHECK(paths_of(list_tgz(package_chart_directory(chart, 0).archive)) == expected);
  }
}

TEST_CASE("package_chart_directory keeps long and non-ASCII names") {
  TestDir dir;
  const fs::path chart = dir / "demo";
  const std::string long_name = "templates/" + std::string(120, 'l') + ".yaml";
  write_file(chart / "Chart.yaml", "name: demo\nversion: 0.1.0\n");
  write_file(chart / long_name, "long");
  write_file(chart / "templates/caf\xC3\xA9.yaml", "accent");
  const auto packaged = package_chart_directory(chart, 0);
  const auto entries = list_tgz(packaged.archive);
  const std::vector<std::string> expected = {"demo/Chart.yaml", "demo/templates/caf\xC3\xA9.yaml", "demo/" + long_name};
  CHECK(paths_of(entries) == expected);
  write_file(dir / "demo.tgz", packaged.archive);
  CHECK(read_chart_archive(dir / "demo.tgz").metadata.name == "demo");
}

TEST_CASE("package_chart_directory refuses a negated .helmignore pattern") {
  TestDir dir;
  const fs::path chart = dir / "demo";
  write_file(chart / "Chart.yaml", "name: demo\nversion: 0.1.0\n");
  write_file(chart / ".helmignore", "*.txt\n!keep.txt\n");
  const std::string message = message_of([&] { package_chart_directory(chart, 0); });
  CHECK(contains(message, ".helmignore:2: "));
  CHECK(contains(message, "'!keep.txt'"));
  CHECK(contains(message, "not supported"));
}

TEST_CASE("package_chart_directory gives the same bytes for the same contents") {
  TestDir dir;
  const fs::path chart = write_demo_chart(dir);
  const auto first = package_chart_directory(chart, 0).archive;
  CHECK(package_chart_directory(chart, 0).archive == first);
  SUBCASE("after the files' times and non-execute permission bits change") {
    for (const auto& entry : fs::recursive_directory_iterator(chart)) {
      fs::last_write_time(entry.path(), fs::file_time_type::clock::now() - std::chrono::hours(100));
    }
    fs::permissions(chart / "values.yaml", fs::perms::owner_read | fs::perms::owner_write);
    CHECK(package_chart_directory(chart, 0).archive == first);
  }
  SUBCASE("but not for another mtime") { CHECK(package_chart_directory(chart, 1).archive != first); }
}

TEST_CASE("package_chart_directory writes a gzip header without timestamp or file name") {
  TestDir dir;
  const auto bytes = package_chart_directory(write_demo_chart(dir), 1700000000).archive;
  REQUIRE(bytes.size() > 10);
  CHECK(static_cast<unsigned char>(bytes[0]) == 0x1f);
  CHECK(static_cast<unsigned char>(bytes[1]) == 0x8b);
  CHECK(bytes[3] == 0); // FLG: no FNAME, FCOMMENT, FEXTRA
  CHECK(bytes.substr(4, 4) == std::string(4, '\0'));
}

TEST_CASE("package_chart_directory output is listed by tar") {
  if (std::system("tar --version >/dev/null 2>&1") != 0) {
    MESSAGE("skipped: tar is not on PATH");
    return;
  }
  TestDir dir;
  const auto chart = package_chart_directory(write_demo_chart(dir), 0);
  write_file(dir / "demo-1.2.3.tgz", chart.archive);
  const std::string command = "tar -tzf '" + (dir / "demo-1.2.3.tgz").string() + "'";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  REQUIRE(pipe);
  std::string listing;
  char buffer[256];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe.get())) listing.append(buffer, n);
  CHECK(listing ==
        "demo/.helmignore\ndemo/Chart.yaml\ndemo/scripts/run.sh\ndemo/templates/deployment.yaml\ndemo/values.yaml\n");
}

TEST_CASE("package_chart_directory follows symlinks inside the chart and refuses others") {
  TestDir dir;
  const fs::path chart = dir / "demo";
  write_file(chart / "Chart.yaml", "name: demo\nversion: 0.1.0\n");
  write_file(chart / "files/real.txt", "real");
  write_file(dir / "outside.txt", "secret");
  SUBCASE("a link inside the chart is packaged as the file it points to") {
    fs::create_symlink("files/real.txt", chart / "link.txt");
    const auto entries = list_tgz(package_chart_directory(chart, 0).archive);
    REQUIRE(entries.size() == 3);
    CHECK(entries[2].path == "demo/link.txt");
    CHECK(entries[2].type == AE_IFREG);
    CHECK(entries[2].data == "real");
  }
  SUBCASE("a link leaving the chart is refused") {
    fs::create_symlink("../outside.txt", chart / "leak.txt");
    const std::string message = message_of([&] { package_chart_directory(chart, 0); });
    CHECK(contains(message, "symlink leak.txt"));
    CHECK(contains(message, "points outside the chart"));
  }
  SUBCASE("a link leaving the chart is fine when .helmignore lists it") {
    fs::create_symlink("../outside.txt", chart / "leak.txt");
    write_file(chart / ".helmignore", "leak.txt\n");
    CHECK(list_tgz(package_chart_directory(chart, 0).archive).size() == 3);
  }
  SUBCASE("a link to a parent directory is a loop") {
    fs::create_directory_symlink("..", chart / "files/up");
    const std::string message = message_of([&] { package_chart_directory(chart, 0); });
    CHECK(contains(message, "symlink files/up"));
    CHECK(contains(message, "loop"));
  }
}

TEST_CASE("package_chart_directory needs a Chart.yaml") {
  TestDir dir;
  write_file(dir / "demo/values.yaml", "a: 1\n");
  const std::string message = message_of([&] { package_chart_directory(dir / "demo", 0); });
  CHECK(message == (dir / "demo").string() + " is not a chart directory (no Chart.yaml)");
}

TEST_CASE("read_chart_archive reads what package_chart_directory wrote") {
  TestDir dir;
  const auto packaged = package_chart_directory(write_demo_chart(dir), 0);
  write_file(dir / "demo-1.2.3.tgz", packaged.archive);
  const auto chart = read_chart_archive(dir / "demo-1.2.3.tgz");
  CHECK(chart.archive == packaged.archive);
  CHECK(chart.metadata.api_version == "v2");
  CHECK(chart.metadata.name == "demo");
  CHECK(chart.metadata.version == "1.2.3");
  CHECK(chart.metadata.app_version == "4.5");
  CHECK(chart.metadata.description == "A demo chart");
  CHECK(chart.metadata.type == "application");
  REQUIRE(chart.metadata.annotations.size() == 2);
  CHECK(chart.metadata.annotations.at("category") == "Storage");
  CHECK(chart.metadata.annotations.at("artifacthub.io/images") ==
        "- name: app\n  image: quay.io/example/app:4.5\n");
  CHECK(chart.metadata.config_json == packaged.metadata.config_json);
}

TEST_CASE("read_chart_archive converts Chart.yaml to the Helm config JSON") {
  TestDir dir;
  const std::string chart_yaml = "name: demo\n"
                                 "version: 1.10\n"
                                 "apiVersion: v2\n"
                                 "deprecated: true\n"
                                 "keywords: [storage, \"true\"]\n"
                                 "maintainers:\n"
                                 "  - {name: Ops, email: ops@example.com}\n"
                                 "annotations: {b: \"2\", a: x}\n";
  write_file(dir / "demo.tgz", make_tgz({{"demo/Chart.yaml", chart_yaml}}));
  CHECK(read_chart_archive(dir / "demo.tgz").metadata.config_json ==
        R"({"annotations":{"a":"x","b":"2"},"apiVersion":"v2","deprecated":true,"keywords":["storage","true"],)"
        R"("maintainers":[{"email":"ops@example.com","name":"Ops"}],"name":"demo","version":"1.10"})");
}

TEST_CASE("read_chart_archive ignores the Chart.yaml of subcharts") {
  TestDir dir;
  write_file(dir / "demo.tgz", make_tgz({{"demo/charts/sub/Chart.yaml", "name: sub\nversion: 9.9.9\n"},
                                         {"demo/Chart.yaml", "name: demo\nversion: 1.0.0\n"}}));
  const auto chart = read_chart_archive(dir / "demo.tgz");
  CHECK(chart.metadata.name == "demo");
  CHECK(chart.metadata.version == "1.0.0");
}

TEST_CASE("read_chart_archive accepts directory entries") {
  TestDir dir;
  write_file(dir / "demo.tgz", make_tgz({{"demo/", "", AE_IFDIR},
                                         {"demo/Chart.yaml", "name: demo\nversion: 1.0.0\n"},
                                         {"demo/templates/", "", AE_IFDIR}}));
  CHECK(read_chart_archive(dir / "demo.tgz").metadata.name == "demo");
}

TEST_CASE("read_chart_archive refuses malformed charts naming the file and the problem") {
  TestDir dir;
  const fs::path tgz = dir / "bad.tgz";
  SUBCASE("no Chart.yaml") {
    write_file(tgz, make_tgz({{"demo/values.yaml", "a: 1\n"}}));
    CHECK(message_of([&] { read_chart_archive(tgz); }) == tgz.string() + " has no demo/Chart.yaml");
  }
  SUBCASE("Chart.yaml only in a subchart") {
    write_file(tgz, make_tgz({{"demo/charts/sub/Chart.yaml", "name: sub\nversion: 1.0.0\n"}}));
    CHECK(message_of([&] { read_chart_archive(tgz); }) == tgz.string() + " has no demo/Chart.yaml");
  }
  SUBCASE("no version") {
    write_file(tgz, make_tgz({{"demo/Chart.yaml", "name: demo\n"}}));
    CHECK(message_of([&] { read_chart_archive(tgz); }) == tgz.string() + ": demo/Chart.yaml has no 'version'");
  }
  SUBCASE("no name") {
    write_file(tgz, make_tgz({{"demo/Chart.yaml", "version: 1.0.0\n"}}));
    CHECK(message_of([&] { read_chart_archive(tgz); }) == tgz.string() + ": demo/Chart.yaml has no 'name'");
  }
  SUBCASE("top directory differs from the chart name") {
    write_file(tgz, make_tgz({{"other/Chart.yaml", "name: demo\nversion: 1.0.0\n"}}));
    CHECK(message_of([&] { read_chart_archive(tgz); }) ==
          tgz.string() + ": top directory 'other' does not match the chart name 'demo' in other/Chart.yaml");
  }
  SUBCASE("two top directories") {
    write_file(tgz, make_tgz({{"demo/Chart.yaml", "name: demo\nversion: 1.0.0\n"}, {"extra/x", "x"}}));
    CHECK(contains(message_of([&] { read_chart_archive(tgz); }), "more than one top-level directory ('demo' and 'extra')"));
  }
  SUBCASE("an entry with ..") {
    write_file(tgz, make_tgz({{"demo/Chart.yaml", "name: demo\nversion: 1.0.0\n"}, {"demo/../../etc/passwd", "x"}}));
    CHECK(message_of([&] { read_chart_archive(tgz); }) ==
          tgz.string() + ": entry 'demo/../../etc/passwd' has a '..' component");
  }
  SUBCASE("an absolute entry") {
    write_file(tgz, make_tgz({{"/demo/Chart.yaml", "name: demo\nversion: 1.0.0\n"}}));
    CHECK(message_of([&] { read_chart_archive(tgz); }) == tgz.string() + ": entry '/demo/Chart.yaml' has an absolute path");
  }
  SUBCASE("a symlink entry") {
    write_file(tgz, make_tgz({{"demo/Chart.yaml", "name: demo\nversion: 1.0.0\n"}, {"demo/link", "", AE_IFLNK}}));
    CHECK(contains(message_of([&] { read_chart_archive(tgz); }), "entry 'demo/link' is not a regular file or directory"));
  }
  SUBCASE("not gzip") {
    write_file(tgz, "name: demo\nversion: 1.0.0\n");
    CHECK(message_of([&] { read_chart_archive(tgz); }) == tgz.string() + " is not a gzip-compressed chart archive");
  }
  SUBCASE("gzip but not tar") {
    write_file(tgz, gzip_raw(std::string(2048, 'x')));
    CHECK(contains(message_of([&] { read_chart_archive(tgz); }), tgz.string() + " is not a valid chart archive"));
  }
  SUBCASE("Chart.yaml with a syntax error") {
    write_file(tgz, make_tgz({{"demo/Chart.yaml", "name: demo\nversion: [1.0.0\n"}}));
    CHECK(contains(message_of([&] { read_chart_archive(tgz); }), tgz.string() + ": demo/Chart.yaml:3:1: YAML syntax error"));
  }
}

TEST_CASE("load_chart packages directories and reads files") {
  TestDir dir;
  const fs::path chart_dir = write_demo_chart(dir);
  const auto packaged = load_chart(chart_dir, 0);
  CHECK(packaged.archive == package_chart_directory(chart_dir, 0).archive);
  write_file(dir / "demo.tgz", packaged.archive);
  const auto read = load_chart(dir / "demo.tgz", 0);
  CHECK(read.archive == packaged.archive);
  CHECK(read.metadata.name == "demo");
  CHECK_THROWS_AS(load_chart(dir / "missing", 0), UsageError);
}

TEST_CASE("package_chart_directory output passes helm lint and helm show chart") {
  if (std::system("helm version >/dev/null 2>&1") != 0) {
    const char* required = std::getenv("FERRY_REQUIRE_INTEGRATION");
    REQUIRE_MESSAGE(!(required && std::string(required) == "1"), "helm is not on PATH and FERRY_REQUIRE_INTEGRATION=1");
    MESSAGE("skipped: helm is not on PATH (scripts/install-deps.sh installs it into .tools/helm)");
    return;
  }
  TestDir dir;
  const auto chart = package_chart_directory(write_demo_chart(dir), 0);
  const fs::path tgz = dir / "demo-1.2.3.tgz";
  write_file(tgz, chart.archive);
  CHECK(std::system(("helm lint '" + tgz.string() + "' >/dev/null").c_str()) == 0);
  const std::string command = "helm show chart '" + tgz.string() + "'";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
  REQUIRE(pipe);
  std::string shown;
  char buffer[256];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe.get())) shown.append(buffer, n);
  CHECK(contains(shown, "name: demo"));
  CHECK(contains(shown, "version: 1.2.3"));
}

} // TEST_SUITE
