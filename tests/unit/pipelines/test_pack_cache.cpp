// Tests for pack's cache location and the clean-up of what killed packs leave: real child
// processes make the temporaries (AtomicFile, TempDir, BlobStore writers) and are killed
// with SIGKILL, so no destructor runs, as after a real kill.
// SPDX-License-Identifier: Apache-2.0
#include "core/fs.hpp"
#include "oci/blob_store.hpp"
#include "pack.hpp"
#include "pack_cache.hpp"
#include "support/test_support.hpp"

#include <csignal>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using ferry::test::CaptureLog;
using ferry::test::contains;
using ferry::test::ScopedEnv;
using ferry::test::TestDir;

namespace {

// Runs `make` in a child process, which then reports on a pipe and waits to be killed.
// The child never returns into doctest.
class Child {
public:
  explicit Child(const std::function<void()>& make) {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    m_pid = ::fork();
    REQUIRE(m_pid >= 0);
    if (m_pid == 0) {
      ::close(ready[0]);
      try {
        make();
      } catch (...) {
        ::_exit(2);
      }
      (void)!::write(ready[1], "k", 1);
      for (;;) ::pause();
    }
    ::close(ready[1]);
    char c = 0;
    const bool made = ::read(ready[0], &c, 1) == 1;
    ::close(ready[0]);
    REQUIRE_MESSAGE(made, "the child process could not make its temporaries");
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { kill(); }

  long pid() const { return static_cast<long>(m_pid); }
  // SIGKILL and reap: afterwards no process has this pid (until the kernel reuses it).
  void kill() {
    if (m_pid <= 0) return;
    ::kill(m_pid, SIGKILL);
    int status = 0;
    ::waitpid(m_pid, &status, 0);
    m_pid = -1;
  }

private:
  pid_t m_pid = -1;
};

// Names of the entries of `dir` starting with `prefix`.
std::set<std::string> entries(const fs::path& dir, const std::string& prefix = "") {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.compare(0, prefix.size(), prefix) == 0) out.insert(name);
  }
  return out;
}

// What pack leaves beside `output` while it writes: the bundle and checksum temporaries
// with some bytes in them, and the work directory with a blob.
void make_pack_temporaries(const fs::path& output) {
  auto* bundle = new ferry::core::AtomicFile(output); // never destroyed: the process is killed
  bundle->sink().write(std::string(10000, 'b'));
  auto* checksum = new ferry::core::AtomicFile(ferry::checksum_path_for(output));
  checksum->sink().write("0000  x.tar.zst\n");
  auto* work = new ferry::core::TempDir(output, "pack");
  ferry::test::write_file(work->path() / "blobs/sha256/abc", std::string(5000, 'w'));
}

} // namespace

TEST_SUITE("pipelines") {

TEST_CASE("default_cache_dir follows XDG_CACHE_HOME, then HOME") {
  SUBCASE("XDG_CACHE_HOME") {
    ScopedEnv xdg("XDG_CACHE_HOME", "/var/cache/someone");
    ScopedEnv home("HOME", "/home/someone");
    CHECK(ferry::default_cache_dir() == "/var/cache/someone/ferry");
  }
  SUBCASE("a relative or empty XDG_CACHE_HOME is ignored") {
    ScopedEnv home("HOME", "/home/someone");
    for (const char* value : {"", "relative/cache"}) {
      ScopedEnv xdg("XDG_CACHE_HOME", value);
      CHECK(ferry::default_cache_dir() == "/home/someone/.cache/ferry");
    }
  }
  SUBCASE("neither") {
    ScopedEnv xdg("XDG_CACHE_HOME", "");
    ScopedEnv home("HOME", "");
    CHECK(ferry::default_cache_dir().empty());
  }
}

TEST_CASE("remove_pack_leftovers removes what a killed pack left beside its output, and nothing else") {
  TestDir dir;
  const fs::path output = dir / "app.tar.zst";
  ferry::test::write_file(dir / "app.sha256", "old\n"); // another run's results stay
  ferry::test::write_file(output, "old bundle");
  ferry::test::write_file(dir / ".app.tar.zst.ferry-XXXXXX", "no pid in the name");
  Child other([&] { make_pack_temporaries(dir / "other.tar.zst"); });
  long killed_pid = 0;
  {
    Child killed([&] { make_pack_temporaries(output); });
    killed_pid = killed.pid();
  }
  REQUIRE(entries(dir.path(), ".app.").size() == 4); // three temporaries and the odd name

  CaptureLog log;
  const auto removed = ferry::remove_pack_leftovers(output, log);
  REQUIRE(removed.size() == 3);
  std::uint64_t bytes = 0;
  for (const auto& l : removed) {
    CHECK(l.pid == killed_pid);
    CHECK(contains(log.text(), "removed " + l.path.string()));
    bytes += l.bytes;
  }
  CHECK(bytes == 10000 + 16 + 5000);
  CHECK(contains(log.text(), "interrupted pack (process " + std::to_string(killed_pid) + ", no longer running)"));
  CHECK(entries(dir.path(), ".app.") == std::set<std::string>{".app.tar.zst.ferry-XXXXXX"});
  CHECK(ferry::test::read_file(output) == "old bundle");
  CHECK(fs::exists(dir / "app.sha256"));
  CHECK(entries(dir.path(), ".other.").size() == 3); // another output's
}

TEST_CASE("remove_pack_leftovers keeps the temporaries of a pack still running, and removes them once it is killed") {
  TestDir dir;
  const fs::path output = dir / "app.tar.zst";
  Child running([&] { make_pack_temporaries(output); });
  CaptureLog log;
  CHECK(ferry::remove_pack_leftovers(output, log).empty());
  CHECK(entries(dir.path(), ".app.").size() == 3);
  CHECK(log.text().empty());
  running.kill();
  CHECK(ferry::remove_pack_leftovers(output, log).size() == 3);
  CHECK(entries(dir.path(), ".app.").empty());
}

TEST_CASE("core::remove_leftovers keeps an entry whose lock is held, whatever its pid says") {
  // A process of another pid namespace (a container sharing the directory) has a pid that
  // means nothing here; its lock still counts.
  TestDir dir;
  long dead_pid = 0;
  {
    Child gone([] {});
    dead_pid = gone.pid();
  }
  const fs::path file = dir / (".x.ferry-" + std::to_string(dead_pid) + "-abc123");
  ferry::test::write_file(file, "in use");
  {
    const ferry::core::UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    // flock locks belong to the open file: a second open (as remove_leftovers does) in
    // this same process conflicts with it like one in another process.
    REQUIRE(::flock(fd.get(), LOCK_EX) == 0);
    CHECK(ferry::core::remove_leftovers(dir.path(), ".x.ferry").empty());
    CHECK(fs::exists(file));
  }
  const auto removed = ferry::core::remove_leftovers(dir.path(), ".x.ferry");
  REQUIRE(removed.size() == 1);
  CHECK(removed[0].pid == dead_pid);
  CHECK_FALSE(fs::exists(file));
}

TEST_CASE("BlobStore::remove_leftovers removes a killed writer's temporary file and keeps the blobs") {
  TestDir dir;
  ferry::oci::BlobStore store(dir / "cache");
  const auto blob = store.put_bytes("kept");
  {
    Child killed([&] {
      ferry::oci::BlobStore shared(dir / "cache");
      auto* writer = shared.begin().release(); // never destroyed: the process is killed
      writer->write(std::string(3000, 'p'));
    });
  }
  Child running([&] {
    ferry::oci::BlobStore shared(dir / "cache");
    shared.begin().release()->write(std::string(10, 'r'));
  });
  REQUIRE(entries(dir / "cache", ".blob-").size() == 2);
  const auto removed = store.remove_leftovers();
  REQUIRE(removed.size() == 1);
  CHECK(removed[0].bytes == 3000);
  CHECK(removed[0].pid != running.pid());
  CHECK(entries(dir / "cache", ".blob-").size() == 1); // the running writer's
  CHECK(store.contains(blob.digest));
}

TEST_CASE("open_cache creates the cache, removes killed writers' files and logs them") {
  TestDir dir;
  CaptureLog log;
  std::vector<ferry::core::Leftover> removed;
  CHECK(ferry::open_cache({}, log, removed) == nullptr);
  {
    Child killed([&] {
      ferry::oci::BlobStore shared(dir / "c");
      shared.begin().release()->write("partial");
    });
  }
  const auto cache = ferry::open_cache(dir / "c", log, removed);
  REQUIRE(cache != nullptr);
  REQUIRE(removed.size() == 1);
  CHECK(removed[0].bytes == 7);
  CHECK(fs::is_directory(dir / "c/blobs/sha256"));
  CHECK(entries(dir / "c", ".blob-").empty());
  CHECK(contains(log.text(), "left by an interrupted pack"));
}

TEST_CASE("damaged_blob_hint tells to delete a cache file, and to recreate a source") {
  TestDir dir;
  ferry::oci::BlobStore cache(dir / "cache");
  const auto blob = cache.put_bytes("x");
  const std::string in_cache = ferry::damaged_blob_hint(cache.path(blob.digest), &cache);
  CHECK(contains(in_cache, "delete " + cache.path(blob.digest).string()));
  CHECK(contains(in_cache, (dir / "cache").string()));
  CHECK(contains(ferry::damaged_blob_hint(dir / "layout/blobs/sha256/abc", &cache), "recreate"));
  CHECK(contains(ferry::damaged_blob_hint(cache.path(blob.digest), nullptr), "recreate"));
}

} // TEST_SUITE
